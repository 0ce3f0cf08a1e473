/* Issues raw syscalls that would reach the host if pvm did not isolate the guest, and prints
 * each result as "name: ret=R errno=E". NEVER RUN NATIVELY (it sends SIGKILL to pid 1 and
 * calls reboot(2)); the test only runs it under pvm.
 *
 * argv: 1 host file path (exists only on the host), 2 host directory (exists only on the
 * host), 3 host pid of a sentinel process, 4 TCP port of a host listener on 127.0.0.1,
 * 5 "on" or "off": the Ctrl-Alt-Del mode to request with reboot(2) (the opposite of the
 * host's current /proc/sys/kernel/ctrl-alt-del, so an escape would be visible and harmless). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define LINUX_REBOOT_MAGIC1 0xfee1dead
#define LINUX_REBOOT_MAGIC2 672274793
#define LINUX_REBOOT_CMD_CAD_ON 0x89ABCDEF
#define LINUX_REBOOT_CMD_CAD_OFF 0x00000000
#define PTRACE_TRACEME 0

static const char *errname(int e)
{
    switch (e) {
    case 0: return "0";
    case ENOENT: return "ENOENT";
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case ESRCH: return "ESRCH";
    case ENOSYS: return "ENOSYS";
    case EINVAL: return "EINVAL";
    case EROFS: return "EROFS";
    case ENOTDIR: return "ENOTDIR";
    case ENODEV: return "ENODEV";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
    case ECONNREFUSED: return "ECONNREFUSED";
    case ENETUNREACH: return "ENETUNREACH";
    case EHOSTUNREACH: return "EHOSTUNREACH";
    case ETIMEDOUT: return "ETIMEDOUT";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case EBADF: return "EBADF";
    case ENOTSOCK: return "ENOTSOCK";
    default: return "OTHER";
    }
}

static void report(const char *name, long ret, int err)
{
    printf("%s: ret=%ld errno=%s\n", name, ret, ret < 0 ? errname(err) : "0");
    fflush(stdout);
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: escape FILE DIR PID PORT on|off\n");
        return 2;
    }
    const char *file = argv[1], *dir = argv[2];
    long sentinel = atol(argv[3]);
    int port = atoi(argv[4]);
    unsigned long cad = strcmp(argv[5], "on") == 0 ? LINUX_REBOOT_CMD_CAD_ON : LINUX_REBOOT_CMD_CAD_OFF;
    long r;

    printf("pid_is_one: %d\n", getpid() == 1);

    r = syscall(SYS_open, file, O_RDONLY);
    report("open_host_file", r, errno);
    if (r >= 0) {
        char buf[256];
        long n = syscall(SYS_read, (int)r, buf, sizeof buf - 1);
        if (n > 0) {
            buf[n] = 0;
            printf("read_host_file: %s\n", buf);
        }
    }
    struct stat st;
    r = syscall(SYS_stat, file, &st);
    report("stat_host_file", r, errno);
    r = syscall(SYS_unlink, file);
    report("unlink_host_file", r, errno);
    r = syscall(SYS_open, file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    report("create_host_file", r, errno);
    if (r >= 0)
        report("write_host_file", syscall(SYS_write, (int)r, "GUEST WROTE THIS\n", 17), errno);

    r = syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
    report("socket", r, errno);
    if (r >= 0) {
        struct sockaddr_in sa;
        memset(&sa, 0, sizeof sa);
        sa.sin_family = AF_INET;
        sa.sin_port = htons((unsigned short)port);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        long c = syscall(SYS_connect, (int)r, &sa, sizeof sa);
        report("connect_host_listener", c, errno);
    } else {
        printf("connect_host_listener: skipped\n");
    }

    r = syscall(SYS_kill, sentinel, SIGKILL);
    report("kill_host_sentinel", r, errno);

    r = syscall(SYS_ptrace, PTRACE_TRACEME, 0, 0, 0);
    report("ptrace_traceme", r, errno);

    r = syscall(SYS_mount, "none", dir, "tmpfs", 0UL, "");
    report("mount_host_dir", r, errno);

    r = syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2, cad, 0);
    report("reboot_cad", r, errno);

    r = syscall(SYS_kill, 1L, SIGKILL);
    report("kill_pid_1", r, errno);
    printf("end\n");
    return 0;
}
