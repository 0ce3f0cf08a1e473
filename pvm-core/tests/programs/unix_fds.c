// Special descriptors compared with Linux: timerfd (monotonic and realtime, relative and
// absolute, periodic, gettime, blocking and nonblocking reads, poll), signalfd (reading
// signalfd_siginfo, poll and epoll readiness, a new mask), pidfd (poll on a child's exit,
// pidfd_send_signal, ESRCH after reaping), close_range (and CLOSE_RANGE_CLOEXEC) and
// memfd_create. Timing-dependent counts are printed as comparisons only.
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#define P(label, call) do { errno = 0; long _r = (long)(call); printf("%s %ld %s\n", label, _r, _r < 0 ? strerror(errno) : "ok"); } while (0)

static void timers(void) {
    int t = timerfd_create(CLOCK_MONOTONIC, 0);
    struct itimerspec v = { { 0, 0 }, { 0, 20000000 } }, old, cur;
    P("settime relative 20ms", timerfd_settime(t, 0, &v, &old)); printf("old %ld %ld\n", (long)old.it_value.tv_sec, old.it_value.tv_nsec);
    timerfd_gettime(t, &cur); printf("armed %d\n", cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec > 0 && cur.it_value.tv_nsec <= 20000000);
    uint64_t n = 0;
    P("blocking read", read(t, &n, 8)); printf("expirations %llu\n", (unsigned long long)n);
    timerfd_gettime(t, &cur); printf("disarmed %ld %ld\n", (long)cur.it_value.tv_sec, cur.it_value.tv_nsec);
    P("short read", read(t, &n, 4));
    close(t);
    t = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    printf("cloexec %d\n", fcntl(t, F_GETFD) & FD_CLOEXEC);
    P("nonblocking read unarmed", read(t, &n, 8));
    struct timespec now; clock_gettime(CLOCK_MONOTONIC, &now);
    struct itimerspec abs = { { 0, 5000000 }, { now.tv_sec - 1, now.tv_nsec } };
    P("settime abstime past periodic", timerfd_settime(t, TFD_TIMER_ABSTIME, &abs, NULL));
    P("read past", read(t, &n, 8)); printf("many %d\n", n >= 100);
    timerfd_gettime(t, &cur); printf("interval %ld %ld\n", (long)cur.it_interval.tv_sec, cur.it_interval.tv_nsec);
    struct pollfd p = { t, POLLIN, 0 };
    P("poll periodic", poll(&p, 1, 1000)); printf("revents %#x\n", p.revents);
    usleep(30000);
    P("read after 30ms", read(t, &n, 8)); printf("several %d\n", n >= 2);
    struct itimerspec zero = { 0 };
    P("disarm", timerfd_settime(t, 0, &zero, &old)); printf("old interval %ld\n", old.it_interval.tv_nsec);
    P("read disarmed", read(t, &n, 8));
    int ep = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 5 }, out;
    epoll_ctl(ep, EPOLL_CTL_ADD, t, &ev);
    v.it_value.tv_nsec = 10000000;
    timerfd_settime(t, 0, &v, NULL);
    P("epoll_wait on timer", epoll_wait(ep, &out, 1, 2000)); printf("data %llu\n", (unsigned long long)out.data.u64);
    close(ep); close(t);
    int r = timerfd_create(CLOCK_REALTIME, 0);
    clock_gettime(CLOCK_REALTIME, &now);
    now.tv_nsec += 10000000; if (now.tv_nsec >= 1000000000) { now.tv_sec++; now.tv_nsec -= 1000000000; }
    struct itimerspec ra = { { 0, 0 }, now };
    P("realtime abstime", timerfd_settime(r, TFD_TIMER_ABSTIME, &ra, NULL));
    P("realtime read", read(r, &n, 8)); printf("expirations %llu\n", (unsigned long long)n);
    struct itimerspec bad = { { 0, 0 }, { 0, 1000000000 } };
    P("settime bad nsec", timerfd_settime(r, 0, &bad, NULL));
    P("settime bad flags", timerfd_settime(r, 8, &ra, NULL));
    close(r);
    P("create bad clock", timerfd_create(77, 0));
    P("create bad flags", timerfd_create(CLOCK_MONOTONIC, 1));
    P("settime on non-timer", timerfd_settime(0, 0, &v, NULL));
    P("create boottime", timerfd_create(CLOCK_BOOTTIME, 0) >= 0);
}

static void signals(void) {
    sigset_t m; sigemptyset(&m); sigaddset(&m, SIGUSR1); sigaddset(&m, SIGUSR2);
    sigprocmask(SIG_BLOCK, &m, NULL);
    int s = signalfd(-1, &m, SFD_NONBLOCK | SFD_CLOEXEC);
    printf("signalfd ok %d cloexec %d\n", s >= 0, fcntl(s, F_GETFD) & FD_CLOEXEC);
    struct signalfd_siginfo si;
    P("read none", read(s, &si, sizeof si));
    struct pollfd p = { s, POLLIN, 0 };
    P("poll none", poll(&p, 1, 0));
    kill(getpid(), SIGUSR2);
    kill(getpid(), SIGUSR1);
    P("poll pending", poll(&p, 1, 0)); printf("revents %#x\n", p.revents);
    P("read short", read(s, &si, 10));
    struct signalfd_siginfo two[2];
    P("read two", read(s, two, sizeof two)); printf("signos %u %u\n", two[0].ssi_signo, two[1].ssi_signo);
    sigset_t pend; sigpending(&pend); printf("still pending %d\n", sigismember(&pend, SIGUSR1));
    int ep = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 3 }, out;
    epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev);
    pid_t k = fork();
    if (k == 0) { usleep(20000); kill(getppid(), SIGUSR1); _exit(0); }
    P("epoll woken by signal", epoll_wait(ep, &out, 1, 5000));
    P("read it", read(s, &si, sizeof si)); printf("signo %u\n", si.ssi_signo);
    waitpid(k, NULL, 0);
    sigset_t only2; sigemptyset(&only2); sigaddset(&only2, SIGUSR2);
    P("new mask", signalfd(s, &only2, 0) == s);
    kill(getpid(), SIGUSR1);
    P("read masked out", read(s, &si, sizeof si));
    sigset_t one; sigemptyset(&one); sigaddset(&one, SIGUSR1);
    int blocking = signalfd(-1, &one, 0);
    P("blocking read pending", read(blocking, &si, sizeof si)); printf("signo %u\n", si.ssi_signo);
    P("signalfd bad size", syscall(SYS_signalfd4, -1, &m, 4, 0));
    P("signalfd on non-signalfd", signalfd(0, &m, 0));
    P("signalfd bad flags", signalfd(-1, &m, 1));
    close(ep); close(s); close(blocking);
    sigprocmask(SIG_UNBLOCK, &m, NULL);
}

static void pidfds(void) {
    pid_t c = fork();
    if (c == 0) { usleep(30000); _exit(7); }
    int pf = syscall(SYS_pidfd_open, c, 0);
    printf("pidfd ok %d cloexec %d\n", pf >= 0, fcntl(pf, F_GETFD) & FD_CLOEXEC);
    struct pollfd p = { pf, POLLIN, 0 };
    P("poll running", poll(&p, 1, 0));
    P("poll until exit", poll(&p, 1, 5000)); printf("revents %#x\n", p.revents);
    siginfo_t info = {0};
    P("waitid P_PIDFD", waitid(P_PIDFD, pf, &info, WEXITED)); printf("status %d code-exited %d\n", info.si_status, info.si_code == CLD_EXITED);
    P("waitid P_PIDFD on non-pidfd", waitid(P_PIDFD, 0, &info, WEXITED));
    int st;
    P("send after reap", syscall(SYS_pidfd_send_signal, pf, SIGTERM, NULL, 0));
    close(pf);
    c = fork();
    if (c == 0) { for (;;) pause(); }
    pf = syscall(SYS_pidfd_open, c, 0);
    P("send sig 0", syscall(SYS_pidfd_send_signal, pf, 0, NULL, 0));
    P("send SIGTERM", syscall(SYS_pidfd_send_signal, pf, SIGTERM, NULL, 0));
    waitpid(c, &st, 0); printf("signaled %d sig %d\n", WIFSIGNALED(st), WTERMSIG(st));
    close(pf);
    P("pidfd_open missing", syscall(SYS_pidfd_open, 999999, 0));
    P("pidfd_open bad flags", syscall(SYS_pidfd_open, getpid(), 1));
    P("send on non-pidfd", syscall(SYS_pidfd_send_signal, 0, SIGTERM, NULL, 0));
}

static void ranges(void) {
    int base = open("/dev/null", O_RDONLY);
    for (int i = 0; i < 4; i++) dup(base);
    P("close_range cloexec", syscall(SYS_close_range, base + 2, ~0U, 4));
    for (int i = 0; i < 5; i++) printf("%d:%d ", i, fcntl(base + i, F_GETFD));
    printf("\n");
    P("close_range", syscall(SYS_close_range, base + 1, base + 3, 0));
    for (int i = 0; i < 5; i++) printf("%d:%d ", i, fcntl(base + i, F_GETFD) >= 0);
    printf("\n");
    P("close_range bad order", syscall(SYS_close_range, 10, 5, 0));
    P("close_range bad flags", syscall(SYS_close_range, 5, 10, 1));
    syscall(SYS_close_range, base, ~0U, 0);
}

static void memfds(void) {
    int m = syscall(SYS_memfd_create, "pvm-test", 1);
    printf("memfd ok %d cloexec %d\n", m >= 0, fcntl(m, F_GETFD) & FD_CLOEXEC);
    P("write", write(m, "memory file", 11));
    struct stat st; fstat(m, &st); printf("size %lld mode %o nlink %lu\n", (long long)st.st_size, st.st_mode, (unsigned long)st.st_nlink);
    char b[32] = {0};
    P("pread", pread(m, b, sizeof b, 7)); printf("'%s'\n", b);
    P("ftruncate", ftruncate(m, 4096));
    char link[64], want[64]; snprintf(want, sizeof want, "/proc/self/fd/%d", m);
    ssize_t l = readlink(want, link, sizeof link - 1); if (l >= 0) link[l] = 0;
    printf("link '%s'\n", l >= 0 ? link : strerror(errno));
    close(m);
    char longname[300]; memset(longname, 'x', sizeof longname); longname[299] = 0;
    P("memfd long name", syscall(SYS_memfd_create, longname, 0));
    P("memfd bad flags", syscall(SYS_memfd_create, "x", 0x100));
}

int main(void) {
    setvbuf(stdout, 0, _IONBF, 0);
    timers();
    // In a child: under pvm the program is the guest's first process, which (as Linux's
    // namespace init) drops SIG_DFL signals sent to itself.
    pid_t c = fork();
    if (c == 0) { signals(); _exit(0); }
    waitpid(c, NULL, 0);
    pidfds();
    ranges();
    memfds();
    return 0;
}
