; nanobox: a structural checker for the Seatbelt profiles the generator writes (seatbelt/mod.rs).
;
; Run with TinyScheme on a file made of this prelude, one (sbpl-declare ...) form naming the
; parameters given to sandbox-exec with -D and the run's tag, the profile, and (sbpl-end). The
; profile's forms are evaluated as CHECKS, not as a sandbox: every operation name is a variable
; (an unknown one is an unbound variable, which stops TinyScheme), every filter and modifier is
; a procedure that checks its arguments, and allow/deny check each rule as a whole. TinyScheme
; stops reading a file at its first error, and at an unclosed parenthesis it silently stops too,
; so (sbpl-end), which prints the sentinel SBPL-CHECK-OK, runs only when the whole profile was
; read and every form in it passed.
;
; Written for Debian's TinyScheme (1.42, package 1.42.svn.2020.06.04), whose string-ref (and so string=?, string->list) is
; unusable: strings are compared as interned symbols, characters as one-character substrings.

(define (sbpl-fail . what) (apply error (cons "SBPL-CHECK-FAIL:" what)))

(define (str= a b) (eq? (string->symbol a) (string->symbol b)))
(define (str-member s l)
  (cond ((null? l) #f) ((str= s (car l)) #t) (else (str-member s (cdr l)))))

; ---------------------------------------------------------------------------------------------
; What the run declares.

(define *params* '())
(define *tag* #f)
(define *used* '())
(define *declared* #f)
(define *version-seen* #f)
(define *default-denied* #f)
(define *rules* 0)

(define (sbpl-declare params tag)
  (if *declared* (sbpl-fail "declared twice"))
  (for-each (lambda (p) (if (not (string? p)) (sbpl-fail "parameter name not a string" p))) params)
  (if (not (string? tag)) (sbpl-fail "the tag is not a string" tag))
  (set! *params* params)
  (set! *tag* tag)
  (set! *declared* #t))

; ---------------------------------------------------------------------------------------------
; Operations: (sbpl-op NAME CLASS BARE-ALLOW-OK). CLASS says which filters apply; BARE-ALLOW-OK
; whether an allow without any filter is acceptable (it is for forking, not for reading files).

(define-macro (defop name class bare)
  `(define ,name (list 'sbpl-op ',name ',class ,bare)))

(defop default default #f)
(defop file-read* file #f)
(defop file-read-data file #f)
(defop file-read-metadata file #f)
(defop file-read-xattr file #f)
(defop file-write* file #f)
(defop file-write-data file #f)
(defop file-write-create file #f)
(defop file-write-unlink file #f)
(defop file-write-mode file #f)
(defop file-write-flags file #f)
(defop file-write-owner file #f)
(defop file-write-times file #f)
(defop file-write-xattr file #f)
(defop file-write-setugid file #f)
(defop file-map-executable file #f)
(defop file-ioctl file #f)
(defop file-link file #f)
(defop file-clone file #f)
(defop file-test-existence file #f)
(defop process-fork bare #t)
(defop process-exec file #t)
(defop process-exec* file #t)
(defop process-info* target #f)
(defop signal target #f)
(defop sysctl-read sysctl #f)
(defop sysctl-write sysctl #f)
(defop sysctl* sysctl #f)
(defop mach-lookup mach #f)
(defop ipc-posix-sem bare #t)
(defop ipc-posix-shm* ipc #f)
(defop ipc-posix-shm-read-data ipc #f)
(defop pseudo-tty bare #t)
(defop network-outbound network #f)
(defop network-inbound network #f)
(defop network-bind network #f)
(defop network* network #f)
(defop syscall-unix syscall #t)
(defop iokit-open iokit #f)
(defop user-preference-read preference #f)
(defop system-socket socket #f)

(define (op? x) (and (pair? x) (eq? (car x) 'sbpl-op)))
(define (op-name x) (cadr x))
(define (op-class x) (caddr x))
(define (op-bare-ok x) (car (cdddr x)))

; ---------------------------------------------------------------------------------------------
; Constants that filters and modifiers take.

(define-macro (defconst name kind)
  `(define ,name (list 'sbpl-const ',kind ',name)))
(defconst same-sandbox target)
(defconst self target)
(defconst ip address)
(defconst message modifier)
(defconst CHARACTER-DEVICE vnode)
(defconst REGULAR-FILE vnode)
(defconst DIRECTORY vnode)
(define (const? x kind) (and (pair? x) (eq? (car x) 'sbpl-const) (eq? (cadr x) kind)))

(define SYS_setsid (list 'sbpl-syscall 'setsid))
(define SYS_setpgid (list 'sbpl-syscall 'setpgid))

; ---------------------------------------------------------------------------------------------
; Paths are parameters, declared by the run.

(define (param name)
  (if (not (string? name)) (sbpl-fail "param takes a string" name))
  (if (not (str-member name *params*)) (sbpl-fail "undeclared param" name))
  (set! *used* (cons name *used*))
  (list 'sbpl-path name))

(define (path-arg who p)
  (if (not (and (pair? p) (eq? (car p) 'sbpl-path)))
      (sbpl-fail who "takes (param ...), never a path written into the profile" p)))

; ---------------------------------------------------------------------------------------------
; Filters: (sbpl-filter CLASS KIND); CLASS any fits every operation.

(define (filter class kind) (list 'sbpl-filter class kind))
(define (filter? x) (and (pair? x) (eq? (car x) 'sbpl-filter)))
(define (filter-class x) (cadr x))

(define (one-string who args)
  (if (not (and (= (length args) 1) (string? (car args))))
      (sbpl-fail who "takes one string" args)))

(define (literal . a) (if (not (= (length a) 1)) (sbpl-fail "literal takes one path")) (path-arg 'literal (car a)) (filter 'file 'literal))
(define (subpath . a) (if (not (= (length a) 1)) (sbpl-fail "subpath takes one path")) (path-arg 'subpath (car a)) (filter 'file 'subpath))
(define (prefix . a) (if (not (= (length a) 1)) (sbpl-fail "prefix takes one path")) (path-arg 'prefix (car a)) (filter 'file 'prefix))
(define (regex . a) (one-string 'regex a) (filter 'file 'regex))
(define (vnode-type . a)
  (if (not (and (= (length a) 1) (const? (car a) 'vnode))) (sbpl-fail "vnode-type takes a vnode type" a))
  (filter 'file 'vnode-type))
(define (extension . a) (one-string 'extension a) (filter 'any 'extension))
(define (target . a)
  (if (not (and (= (length a) 1) (const? (car a) 'target))) (sbpl-fail "target takes same-sandbox or self" a))
  (filter 'target 'target))
(define (sysctl-name . a)
  (if (null? a) (sbpl-fail "sysctl-name takes names"))
  (for-each (lambda (s) (if (not (string? s)) (sbpl-fail "sysctl-name takes strings" s))) a)
  (filter 'sysctl 'sysctl-name))
(define (sysctl-name-prefix . a) (one-string 'sysctl-name-prefix a) (filter 'sysctl 'sysctl-name-prefix))
(define (global-name . a) (one-string 'global-name a) (filter 'mach 'global-name))
(define (syscall-number . a)
  (if (null? a) (sbpl-fail "syscall-number takes syscalls"))
  (for-each (lambda (s) (if (not (and (pair? s) (eq? (car s) 'sbpl-syscall))) (sbpl-fail "not a known syscall" s))) a)
  (filter 'syscall 'syscall-number))

(define digits (map string->symbol '("0" "1" "2" "3" "4" "5" "6" "7" "8" "9")))
(define (char-at s i) (string->symbol (substring s i (+ i 1))))
(define (all-digits? s)
  (let loop ((i 0))
    (cond ((= i (string-length s)) (> i 0))
          ((memq (char-at s i) digits) (loop (+ i 1)))
          (else #f))))
(define (last-colon s)
  (let loop ((i (- (string-length s) 1)))
    (cond ((< i 0) #f) ((eq? (char-at s i) (string->symbol ":")) i) (else (loop (- i 1))))))

; "HOST:PORT": HOST only localhost or *, PORT * or 1..65535.
(define (address-arg who a)
  (if (not (and (= (length a) 2) (const? (car a) 'address) (string? (cadr a))))
      (sbpl-fail who "takes ip and \"host:port\"" a))
  (let* ((s (cadr a)) (c (last-colon s)))
    (if (not c) (sbpl-fail who "address without a port" s))
    (let ((host (substring s 0 c)) (port (substring s (+ c 1) (string-length s))))
      (if (not (or (str= host "localhost") (str= host "*")))
          (sbpl-fail who "host must be localhost or *" s))
      (if (not (or (str= port "*")
                   (and (all-digits? port)
                        (let ((n (string->number port))) (and (>= n 1) (<= n 65535))))))
          (sbpl-fail who "port must be * or 1..65535" s)))))
(define (remote . a) (address-arg 'remote a) (filter 'network 'remote))
(define (local . a) (address-arg 'local a) (filter 'network 'local))

(define (combine kind fs)
  (if (null? fs) (sbpl-fail kind "takes filters"))
  (let loop ((fs fs) (class 'any))
    (cond ((null? fs) (filter class kind))
          ((not (filter? (car fs))) (sbpl-fail kind "takes filters" (car fs)))
          ((eq? (filter-class (car fs)) 'any) (loop (cdr fs) class))
          ((or (eq? class 'any) (eq? class (filter-class (car fs)))) (loop (cdr fs) (filter-class (car fs))))
          (else (sbpl-fail kind "mixes filters of different operations")))))
(define (require-all . fs) (combine 'require-all fs))
(define (require-any . fs) (combine 'require-any fs))
(define (require-not . fs) (if (not (= (length fs) 1)) (sbpl-fail "require-not takes one filter")) (combine 'require-not fs))

; Modifiers: (with message "TEXT").
(define (with . a)
  (if (not (and (= (length a) 2) (const? (car a) 'modifier) (string? (cadr a))))
      (sbpl-fail "with takes message and a string" a))
  (list 'sbpl-mod 'message (cadr a)))
(define (mod? x) (and (pair? x) (eq? (car x) 'sbpl-mod)))

; ---------------------------------------------------------------------------------------------
; Rules.

(define (version . a)
  (if (not *declared*) (sbpl-fail "no (sbpl-declare ...) before the profile"))
  (if *version-seen* (sbpl-fail "version given twice"))
  (if (> *rules* 0) (sbpl-fail "version after a rule"))
  (if (not (and (= (length a) 1) (eqv? (car a) 1))) (sbpl-fail "only (version 1)" a))
  (set! *version-seen* #t))

(define (rule action args)
  (if (not *version-seen*) (sbpl-fail "a rule before (version 1)"))
  (let loop ((a args) (ops '()))
    (if (and (pair? a) (op? (car a)))
        (loop (cdr a) (cons (car a) ops))
        (check-rule action (reverse ops) a))))

(define (check-rule action ops rest)
  (if (null? ops) (sbpl-fail action "without an operation" rest))
  (let loop ((r rest) (filters '()) (mods '()))
    (cond ((null? r) (check-parts action ops (reverse filters) (reverse mods)))
          ((filter? (car r))
           (if (pair? mods) (sbpl-fail action "a filter after a modifier"))
           (loop (cdr r) (cons (car r) filters) mods))
          ((mod? (car r)) (loop (cdr r) filters (cons (car r) mods)))
          ((op? (car r)) (sbpl-fail action "an operation after a filter" (op-name (car r))))
          (else (sbpl-fail action "neither an operation, a filter nor a modifier" (car r))))))

(define (check-parts action ops filters mods)
  (set! *rules* (+ *rules* 1))
  ; The first rule is (deny default ...), and default comes alone.
  (if (= *rules* 1)
      (if (not (and (eq? action 'deny) (= (length ops) 1) (eq? (op-name (car ops)) 'default) (null? filters)))
          (sbpl-fail "the first rule must be (deny default ...)")))
  (for-each (lambda (o)
              (if (eq? (op-class o) 'default)
                  (begin
                    (if (not (and (eq? action 'deny) (= *rules* 1))) (sbpl-fail "default only in the first rule, denied"))
                    (set! *default-denied* #t))))
            ops)
  ; Every deny names the run's tag, so its log line can be attributed.
  (if (eq? action 'deny)
      (if (not (let find ((m mods)) (cond ((null? m) #f) ((str= (caddr (car m)) *tag*) #t) (else (find (cdr m))))))
          (sbpl-fail "a deny without (with message <tag>)" (map op-name ops))))
  ; An allow of anything but forking, executing, semaphores, ptys and syscalls is filtered.
  (if (and (eq? action 'allow) (null? filters))
      (for-each (lambda (o) (if (not (op-bare-ok o)) (sbpl-fail "an allow without a filter" (op-name o)))) ops))
  ; Each filter fits each operation.
  (for-each (lambda (f)
              (for-each (lambda (o)
                          (let ((fc (filter-class f)) (oc (op-class o)))
                            (if (not (or (eq? fc 'any) (eq? fc oc)))
                                (sbpl-fail "filter does not apply to" (op-name o) (caddr f)))
                            (if (and (eq? (caddr f) 'local) (memq (op-name o) '(network-outbound network*)))
                                (sbpl-fail "a local filter in an outbound rule allows every address" (op-name o)))))
                        ops))
            filters)
  #t)

(define (allow . args) (rule 'allow args))
(define (deny . args) (rule 'deny args))

; ---------------------------------------------------------------------------------------------
; The end: reached only when everything before it was read and passed.

(define (sbpl-end)
  (if (not *version-seen*) (sbpl-fail "no (version 1)"))
  (if (not *default-denied*) (sbpl-fail "no (deny default ...)"))
  (for-each (lambda (p) (if (not (str-member p *used*)) (sbpl-fail "declared param never used" p))) *params*)
  (display "SBPL-CHECK-OK ")
  (display *rules*)
  (newline))
