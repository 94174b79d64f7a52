/* The init of the VMs that scripts/vm-test boots: loads the modules listed in /modules, mounts
 * the host's root filesystem (9p tag "root", read-only) and the job directory (9p tag "job",
 * read-write), gives the new root its own /proc, /sys, /dev, /tmp, /run and a pure cgroup v2
 * hierarchy and the loopback interface up, switches to it, runs /run/job/run with /bin/sh there, writes its exit status to /run/job/status and
 * powers the VM off. Static, so it needs nothing from the initramfs but itself. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void say(const char *what, const char *arg) {
    dprintf(2, "vm-init: %s %s: %s\n", what, arg, strerror(errno));
}

static void off(void) {
    sync();
    reboot(RB_POWER_OFF);
    for (;;)
        pause();
}

static int mnt(const char *src, const char *dst, const char *type, unsigned long flags,
               const char *data) {
    mkdir(dst, 0755);
    if (mount(src, dst, type, flags, data) != 0) {
        say("mount", dst);
        return -1;
    }
    return 0;
}

static void load_modules(void) {
    FILE *f = fopen("/modules", "r");
    char line[512];
    if (!f)
        return;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (!*line)
            continue;
        int fd = open(line, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            say("open", line);
            continue;
        }
        if (syscall(SYS_finit_module, fd, "", 0) != 0 && errno != EEXIST)
            say("finit_module", line);
        close(fd);
    }
    fclose(f);
}

/* Bring the loopback interface up, as every host has it (tests run origins on 127.0.0.1). */
static void loopback_up(void) {
    struct ifreq ifr = {0};
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) {
        say("socket", "lo");
        return;
    }
    strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
    if (ioctl(s, SIOCGIFFLAGS, &ifr) != 0 || (ifr.ifr_flags |= IFF_UP, ioctl(s, SIOCSIFFLAGS, &ifr)) != 0)
        say("ifup", "lo");
    close(s);
}

/* The value of KEY= on the kernel command line, or NULL. */
static const char *cmdline_value(const char *key) {
    static char cmdline[4096];
    int fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    ssize_t n = read(fd, cmdline, sizeof cmdline - 1);
    close(fd);
    if (n <= 0)
        return NULL;
    cmdline[n] = 0;
    char *v = strstr(cmdline, key);
    if (!v)
        return NULL;
    v += strlen(key);
    v[strcspn(v, " \n")] = 0;
    return v;
}

/* The host directory vm-test was started in, when it lies under a directory the VM has its own
 * (/tmp, /run, ...): shared as 9p tag "work" and mounted at the same path, read-only. */
static void mount_work(void) {
    const char *dir = cmdline_value("vm.work=");
    if (!dir || dir[0] != '/')
        return;
    char path[4096];
    snprintf(path, sizeof path, "/newroot%s", dir);
    for (char *p = path + strlen("/newroot") + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            mkdir(path, 0755);
            *p = '/';
        }
    }
    mkdir(path, 0755);
    if (mnt("work", path, "9p", MS_RDONLY, "trans=virtio,version=9p2000.L,msize=524288,cache=loose") != 0)
        off();
}

static int want_disk(void) {
    char cmdline[4096] = {0};
    int fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, cmdline, sizeof cmdline - 1);
    close(fd);
    if (n <= 0 || !strstr(cmdline, "vm.tmpdisk"))
        return 0;
    for (int i = 0; i < 300 && access("/dev/vda", F_OK) != 0; i++)
        usleep(10000);
    return 1;
}

int main(void) {
    mnt("proc", "/proc", "proc", 0, NULL);
    mnt("dev", "/dev", "devtmpfs", 0, NULL);
    load_modules();
    const char *p9 = "trans=virtio,version=9p2000.L,msize=524288";
    char opts[256];
    snprintf(opts, sizeof opts, "%s,cache=loose", p9);
    if (mnt("root", "/newroot", "9p", MS_RDONLY, opts) != 0)
        off();
    /* The host's /run is replaced by a tmpfs that holds the job directory. */
    if (mnt("run", "/newroot/run", "tmpfs", 0, "mode=0755") != 0)
        off();
    if (mnt("job", "/newroot/run/job", "9p", 0, p9) != 0)
        off();
    mnt("proc", "/newroot/proc", "proc", 0, NULL);
    mnt("sys", "/newroot/sys", "sysfs", 0, NULL);
    mnt("cgroup2", "/newroot/sys/fs/cgroup", "cgroup2", 0, "nsdelegate");
    mnt("securityfs", "/newroot/sys/kernel/security", "securityfs", 0, NULL);
    mnt("dev", "/newroot/dev", "devtmpfs", 0, NULL);
    mnt("devpts", "/newroot/dev/pts", "devpts", 0, "newinstance,ptmxmode=0666");
    mnt("shm", "/newroot/dev/shm", "tmpfs", 0, "mode=1777");
    /* /tmp: the ext4 disk when vm-test attached one (it says so with vm.tmpdisk on the kernel
     * command line; the disk may appear a moment after its driver loads), a tmpfs otherwise. */
    if (want_disk()) {
        if (mnt("/dev/vda", "/newroot/tmp", "ext4", 0, NULL) != 0)
            off();
        chmod("/newroot/tmp", 01777);
    } else {
        mnt("tmp", "/newroot/tmp", "tmpfs", 0, "mode=1777");
    }
    mnt("vartmp", "/newroot/var/tmp", "tmpfs", 0, "mode=1777");
    /* Under systemd, its state directory is the VM's own (logind keeps its state there). */
    if (cmdline_value("vm.systemd"))
        mnt("varlibsystemd", "/newroot/var/lib/systemd", "tmpfs", 0, "mode=0755");
    mount_work();
    /* switch_root: move the new root onto / (with everything mounted under it), so that the
     * job is not in a chroot (the kernel refuses user namespaces to a chrooted process). */
    if (chdir("/newroot") != 0 || mount("/newroot", "/", NULL, MS_MOVE, NULL) != 0 ||
        chroot(".") != 0 || chdir("/") != 0) {
        say("switch_root", "/newroot");
        off();
    }
    loopback_up();
    /* vm.systemd: systemd becomes PID 1 and runs the job as a service (the units vm-test wrote
     * to /run/job/units, seen at /run/systemd/system, the runtime unit directory); the service
     * writes the output and status files and powers the VM off itself. */
    if (cmdline_value("vm.systemd")) {
        mkdir("/run/systemd", 0755);
        if (mnt("/run/job/units", "/run/systemd/system", NULL, MS_BIND, NULL) != 0)
            off();
        char *argv[] = {"/lib/systemd/systemd", "--unit=nanobox-vm.target", NULL};
        char *envp[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", NULL};
        execve(argv[0], argv, envp);
        say("execve", argv[0]);
        off();
    }
    pid_t pid = fork();
    if (pid == 0) {
        int out = open("/run/job/output", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (out >= 0) {
            dup2(out, 1);
            dup2(out, 2);
        }
        setsid();
        char *argv[] = {"/bin/sh", "/run/job/run", NULL};
        char *envp[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                        "HOME=/root", "LANG=C.UTF-8", "NANOBOX_IN_VM=1", NULL};
        execve(argv[0], argv, envp);
        _exit(127);
    }
    int status = 0, code = 125;
    /* Reap everything; the job's own exit status is the one that counts. */
    for (;;) {
        int st;
        pid_t r = wait(&st);
        if (r < 0 && errno == ECHILD)
            break;
        if (r == pid) {
            status = st;
            code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            /* Whatever it left behind is killed with the VM. */
            break;
        }
    }
    (void)status;
    int fd = open("/run/job/status", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
        dprintf(fd, "%d\n", code);
        close(fd);
    }
    off();
    return 0;
}
