/* A check of the emulated aarch64 VM itself (scripts/vm-test-arm64), independent of nanobox:
 * the kernel lets an unprivileged user create a user namespace, and it enforces a seccomp filter
 * (a denied syscall fails with EPERM, a killed one ends the process with SIGSYS), so that what
 * nanobox's tests see in this VM is the kernel's doing. Run as root; exits 0 when every check
 * holds, 1 otherwise, saying which. Static, built with aarch64-linux-gnu-gcc. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef __aarch64__
#error "this check is for aarch64"
#endif

static int failed;

static void check(int ok, const char *what) {
    printf("%s: %s\n", ok ? "ok" : "FAILED", what);
    if (!ok)
        failed = 1;
}

/* A filter that answers NR with ACTION and allows everything else, for aarch64 only. */
static int install(int nr, unsigned action) {
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_AARCH64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, action),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof f / sizeof f[0], .filter = f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return -1;
    return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
}

static int write_file(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, text, strlen(text));
    close(fd);
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* As uid 65534: a user namespace in which it is root, with a filter that denies mkdirat. */
static int child_userns_and_errno(void) {
    if (setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0)
        return 10;
    /* Changing uids made the process undumpable, so /proc/self/uid_map would be root's. */
    if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) != 0)
        return 10;
    if (unshare(CLONE_NEWUSER) != 0) {
        printf("unshare(CLONE_NEWUSER) as uid 65534: %s\n", strerror(errno));
        return 11;
    }
    if (write_file("/proc/self/setgroups", "deny") != 0 ||
        write_file("/proc/self/uid_map", "0 65534 1") != 0 ||
        write_file("/proc/self/gid_map", "0 65534 1") != 0) {
        printf("uid_map: %s\n", strerror(errno));
        return 12;
    }
    if (getuid() != 0)
        return 13;
    /* Allowed before the filter: the directory is made (and removed). */
    if (mkdir("/tmp/vm-arm64-check-before", 0700) != 0 || rmdir("/tmp/vm-arm64-check-before") != 0)
        return 14;
    if (install(__NR_mkdirat, SECCOMP_RET_ERRNO | EPERM) != 0) {
        printf("seccomp: %s\n", strerror(errno));
        return 15;
    }
    errno = 0;
    int r = mkdir("/tmp/vm-arm64-check-after", 0700);
    if (r != -1 || errno != EPERM) {
        printf("mkdir under the filter: %d (%s)\n", r, strerror(errno));
        return 16;
    }
    struct stat st;
    if (stat("/tmp/vm-arm64-check-after", &st) == 0)
        return 17; /* the kernel said EPERM but made it anyway */
    /* Syscalls the filter does not name still work. */
    return getpid() > 0 ? 0 : 18;
}

/* A filter whose action is to kill: uname ends the process with SIGSYS. */
static int child_kill(void) {
    if (install(__NR_uname, SECCOMP_RET_KILL_PROCESS) != 0)
        return 20;
    struct utsname u;
    uname(&u);
    return 21; /* not reached when the filter is enforced */
}

static int run(int (*f)(void)) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        int code = f();
        fflush(stdout);
        _exit(code);
    }
    int st;
    if (pid < 0 || waitpid(pid, &st, 0) != pid)
        return -1;
    return st;
}

int main(void) {
    struct utsname u;
    uname(&u);
    printf("kernel %s %s\n", u.release, u.machine);
    check(strcmp(u.machine, "aarch64") == 0, "the kernel is aarch64's");
    int st = run(child_userns_and_errno);
    check(WIFEXITED(st) && WEXITSTATUS(st) == 0,
          "uid 65534 creates a user namespace; a seccomp-denied mkdirat returns EPERM and makes "
          "nothing; other syscalls still work");
    if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0))
        printf("  (child status %#x)\n", st);
    st = run(child_kill);
    check(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS,
          "a seccomp SECCOMP_RET_KILL_PROCESS syscall ends the process with SIGSYS");
    if (!(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS))
        printf("  (child status %#x)\n", st);
    return failed;
}
