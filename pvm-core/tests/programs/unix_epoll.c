// Readiness compared with Linux: a unix stream echo server (a path name in a fresh /tmp
// directory) serving forked clients through epoll, level-triggered (argv[1] "lt") or
// edge-triggered ("et"); then epoll details (ONESHOT, RDHUP, nesting, EPERM on regular
// files, EEXIST/ENOENT, an item leaving with its last fd, epoll_pwait's mask), poll and
// select with timeouts, ppoll interrupted by a signal its mask lets through, and eventfd.
#define _GNU_SOURCE
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#define P(label, call) do { errno = 0; long _r = (long)(call); printf("%s %ld %s\n", label, _r, _r < 0 ? strerror(errno) : "ok"); } while (0)
#define CLIENTS 4
#define ROUNDS 50

static void client(const struct sockaddr_un *a, socklen_t al, int id) {
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(s, (const struct sockaddr *)a, al) != 0) _exit(10);
    char msg[64], back[64];
    for (int r = 0; r < ROUNDS; r++) {
        int n = snprintf(msg, sizeof msg, "client %d round %d\n", id, r);
        if (write(s, msg, n) != n) _exit(11);
        int got = 0;
        while (got < n) { int k = read(s, back + got, n - got); if (k <= 0) _exit(12); got += k; }
        if (memcmp(msg, back, n) != 0) _exit(13);
    }
    shutdown(s, SHUT_WR);
    char b; if (read(s, &b, 1) != 0) _exit(14);
    _exit(0);
}

static void echo_server(int et) {
    char dir[] = "/tmp/unixepollXXXXXX";
    if (!mkdtemp(dir)) { printf("no dir\n"); return; }
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof a.sun_path, "%s/echo.sock", dir);
    socklen_t al = offsetof(struct sockaddr_un, sun_path) + strlen(a.sun_path) + 1;
    int l = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    bind(l, (struct sockaddr *)&a, al);
    listen(l, 16);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = { .events = EPOLLIN | (et ? EPOLLET : 0), .data.fd = l };
    epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev);
    for (int i = 0; i < CLIENTS; i++) if (fork() == 0) client(&a, al, i);
    int open_conns = 0, accepted = 0, closed = 0; long bytes = 0;
    while (closed < CLIENTS) {
        struct epoll_event evs[8];
        int n = epoll_wait(ep, evs, 8, 10000);
        if (n <= 0) { printf("epoll_wait %d %s\n", n, strerror(errno)); break; }
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == l) {
                for (;;) {
                    int c = accept4(l, NULL, NULL, SOCK_NONBLOCK);
                    if (c < 0) break;
                    accepted++; open_conns++;
                    struct epoll_event ce = { .events = EPOLLIN | EPOLLRDHUP | (et ? EPOLLET : 0), .data.fd = c };
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
                    if (!et) break;
                }
                continue;
            }
            for (;;) {
                char buf[256];
                int k = read(fd, buf, et ? sizeof buf : 7);
                if (k > 0) { bytes += k; write(fd, buf, k); if (!et) break; continue; }
                if (k == 0) { epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL); close(fd); closed++; open_conns--; }
                break;
            }
        }
    }
    int st, ok = 0;
    while (wait(&st) > 0) ok += WIFEXITED(st) && WEXITSTATUS(st) == 0;
    printf("%s: accepted %d closed %d open %d bytes %ld clients ok %d\n", et ? "et" : "lt", accepted, closed, open_conns, bytes, ok);
    close(ep); close(l); unlink(a.sun_path); rmdir(dir);
}

static int usr1;
static void on_usr1(int s) { (void)s; usr1++; }

static void details(void) {
    int ep = epoll_create1(0), sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    struct epoll_event ev = { .events = EPOLLIN | EPOLLONESHOT, .data.u64 = 42 }, out[4];
    P("add", epoll_ctl(ep, EPOLL_CTL_ADD, sv[0], &ev));
    P("add again", epoll_ctl(ep, EPOLL_CTL_ADD, sv[0], &ev));
    P("mod missing", epoll_ctl(ep, EPOLL_CTL_MOD, sv[1], &ev));
    P("del missing", epoll_ctl(ep, EPOLL_CTL_DEL, sv[1], &ev));
    P("add self", epoll_ctl(ep, EPOLL_CTL_ADD, ep, &ev));
    P("add bad fd", epoll_ctl(ep, EPOLL_CTL_ADD, 999, &ev));
    P("ctl on non-epoll", epoll_ctl(sv[1], EPOLL_CTL_ADD, sv[0], &ev));
    P("bad op", epoll_ctl(ep, 9, sv[0], &ev));
    int reg = open("/proc/self/exe", O_RDONLY);
    P("add regular file", epoll_ctl(ep, EPOLL_CTL_ADD, reg, &ev));
    close(reg);
    P("wait empty", epoll_wait(ep, out, 4, 0));
    P("wait timeout 30ms", epoll_wait(ep, out, 4, 30));
    P("wait bad max", epoll_wait(ep, out, 0, 0));
    write(sv[1], "x", 1);
    P("wait oneshot", epoll_wait(ep, out, 4, 0)); printf("events %#x data %llu\n", out[0].events, (unsigned long long)out[0].data.u64);
    P("wait oneshot again", epoll_wait(ep, out, 4, 0));
    ev.events = EPOLLIN | EPOLLRDHUP; ev.data.u64 = 7;
    P("mod rearm", epoll_ctl(ep, EPOLL_CTL_MOD, sv[0], &ev));
    P("wait rearmed", epoll_wait(ep, out, 4, 0));
    shutdown(sv[1], SHUT_WR);
    P("wait rdhup", epoll_wait(ep, out, 4, 0)); printf("events %#x\n", out[0].events);
    // Nesting: an epoll watching an epoll.
    int outer = epoll_create1(0);
    struct epoll_event oe = { .events = EPOLLIN, .data.u64 = 99 };
    P("nest", epoll_ctl(outer, EPOLL_CTL_ADD, ep, &oe));
    P("nest loop", epoll_ctl(ep, EPOLL_CTL_ADD, outer, &oe));
    P("outer wait", epoll_wait(outer, out, 4, 0)); printf("events %#x data %llu\n", out[0].events, (unsigned long long)out[0].data.u64);
    struct pollfd pe = { ep, POLLIN, 0 };
    P("poll on epoll", poll(&pe, 1, 0)); printf("revents %#x\n", pe.revents);
    // An item leaves with the last reference to its description, not with one fd.
    int d = dup(sv[0]);
    close(sv[0]);
    P("wait after closing one of two fds", epoll_wait(ep, out, 4, 0));
    close(d);
    P("wait after closing the last", epoll_wait(ep, out, 4, 0));
    // epoll_pwait with SIGUSR1 blocked outside and let through during the wait.
    signal(SIGUSR1, on_usr1);
    sigset_t block, none, cur; sigemptyset(&block); sigaddset(&block, SIGUSR1); sigemptyset(&none);
    sigprocmask(SIG_BLOCK, &block, NULL);
    kill(getpid(), SIGUSR1);
    printf("usr1 before %d\n", usr1);
    P("epoll_pwait interrupted", epoll_pwait(outer, out, 4, 1000, &none));
    sigprocmask(SIG_BLOCK, NULL, &cur);
    printf("usr1 after %d mask restored %d\n", usr1, sigismember(&cur, SIGUSR1));
    close(outer); close(ep); close(sv[1]);
}

static void poll_select(void) {
    int pf[2]; pipe(pf);
    struct pollfd p[2] = { { pf[0], POLLIN, 0 }, { pf[1], POLLOUT, 0 } };
    P("poll write end", poll(p, 2, 0)); printf("revents %#x %#x\n", p[0].revents, p[1].revents);
    p[1].fd = -1;
    P("poll timeout 20ms", poll(p, 2, 20));
    fd_set r; FD_ZERO(&r); FD_SET(pf[0], &r);
    struct timeval tv = { 0, 20000 };
    P("select timeout", select(pf[0] + 1, &r, NULL, NULL, &tv)); printf("isset %d\n", FD_ISSET(pf[0], &r));
    write(pf[1], "y", 1);
    FD_SET(pf[0], &r); tv.tv_sec = 1; tv.tv_usec = 0;
    P("select ready", select(pf[0] + 1, &r, NULL, NULL, &tv)); printf("isset %d\n", FD_ISSET(pf[0], &r));
    P("select bad fd", select(1000, &r, NULL, NULL, &tv) < 0 ? -1 : 0);
    FD_ZERO(&r); FD_SET(pf[1] + 5, &r);
    P("select closed fd", select(pf[1] + 6, &r, NULL, NULL, &tv));
    char c; read(pf[0], &c, 1);
    // ppoll: SIGUSR1 blocked, pending, let through by ppoll's mask.
    sigset_t block, none, cur; sigemptyset(&block); sigaddset(&block, SIGUSR1); sigemptyset(&none);
    sigprocmask(SIG_BLOCK, &block, NULL);
    kill(getpid(), SIGUSR1);
    struct timespec ts = { 1, 0 };
    P("ppoll interrupted", ppoll(p, 1, &ts, &none));
    sigprocmask(SIG_BLOCK, NULL, &cur);
    printf("usr1 %d mask restored %d\n", usr1, sigismember(&cur, SIGUSR1));
    kill(getpid(), SIGUSR1);
    P("pselect interrupted", pselect(pf[0] + 1, &r, NULL, NULL, &ts, &none));
    printf("usr1 %d\n", usr1);
    ts.tv_sec = 0; ts.tv_nsec = 10000000;
    P("ppoll timeout keeps signal blocked", ppoll(p, 1, &ts, &block));
    ts.tv_nsec = -1;
    P("ppoll bad timeout", ppoll(p, 1, &ts, NULL));
    // A child's write wakes a blocked poll.
    if (fork() == 0) { usleep(20000); write(pf[1], "z", 1); _exit(0); }
    p[0].revents = 0;
    P("poll woken by child", poll(p, 1, 5000)); printf("revents %#x\n", p[0].revents);
    wait(NULL);
    close(pf[0]); close(pf[1]);
}

static void eventfds(void) {
    int e = eventfd(3, EFD_NONBLOCK);
    unsigned long long v = 0;
    P("read", read(e, &v, 8)); printf("value %llu\n", v);
    P("read empty", read(e, &v, 8));
    P("short read", read(e, &v, 4));
    v = 5; P("write", write(e, &v, 8));
    v = 0xffffffffffffffffULL; P("write max", write(e, &v, 8));
    v = 0xfffffffffffffff0ULL; P("write overflow", write(e, &v, 8));
    struct pollfd p = { e, POLLIN | POLLOUT, 0 };
    P("poll", poll(&p, 1, 0)); printf("revents %#x\n", p.revents);
    close(e);
    int s = eventfd(2, EFD_SEMAPHORE | EFD_CLOEXEC);
    printf("cloexec %d\n", fcntl(s, F_GETFD) & FD_CLOEXEC);
    read(s, &v, 8); printf("sem %llu\n", v);
    read(s, &v, 8); printf("sem %llu\n", v);
    // A blocking read woken by a child's write.
    if (fork() == 0) { usleep(20000); unsigned long long one = 9; write(s, &one, 8); _exit(0); }
    P("blocking read", read(s, &v, 8)); printf("sem %llu\n", v);
    wait(NULL);
    int ep = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.u64 = 1 }, out[2];
    epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev);
    P("et first", epoll_wait(ep, out, 2, 0));
    P("et no new event", epoll_wait(ep, out, 2, 0));
    v = 1; write(s, &v, 8);
    P("et after write", epoll_wait(ep, out, 2, 0));
    P("eventfd bad flags", eventfd(0, 0x10));
    close(ep); close(s);
}

int main(int argc, char **argv) {
    setvbuf(stdout, 0, _IONBF, 0);
    if (argc > 1 && strcmp(argv[1], "lt") == 0) { echo_server(0); return 0; }
    if (argc > 1 && strcmp(argv[1], "et") == 0) { echo_server(1); return 0; }
    details();
    poll_select();
    eventfds();
    return 0;
}
