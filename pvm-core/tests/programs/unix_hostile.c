// Hostile arguments to the socket and readiness calls: bogus pointers, huge counts and
// lengths, garbage control messages, random argument fuzzing. Each call must fail with an
// errno (or succeed); the guest kernel must not panic and the program must reach "done".
// Prints only counts of outcomes that do not depend on the kernel (the test checks "done").
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <poll.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
// Raw syscalls: C libraries copy or walk some arguments in user space first (musl's
// sendmsg copies the header and walks the control messages), which would fault here.
#define sendmsg(a, b, c) syscall(SYS_sendmsg, a, b, c)
#define recvmsg(a, b, c) syscall(SYS_recvmsg, a, b, c)
#define sendmmsg(a, b, c, d) syscall(SYS_sendmmsg, a, b, c, d)
#define recvmmsg(a, b, c, d, e) syscall(SYS_recvmmsg, a, b, c, d, e)
#define getsockopt(a, b, c, d, e) syscall(SYS_getsockopt, a, b, c, d, e)
#define setsockopt(a, b, c, d, e) syscall(SYS_setsockopt, a, b, c, d, e)
#define getsockname(a, b, c) syscall(SYS_getsockname, a, b, c)
#define bind(a, b, c) syscall(SYS_bind, a, b, c)
#define connect(a, b, c) syscall(SYS_connect, a, b, c)
#define sendto(a, b, c, d, e, f) syscall(SYS_sendto, a, b, c, d, e, f)
#define recvfrom(a, b, c, d, e, f) syscall(SYS_recvfrom, a, b, c, d, e, f)
#define send(a, b, c, d) syscall(SYS_sendto, a, b, c, d, 0, 0)
#define recv(a, b, c, d) syscall(SYS_recvfrom, a, b, c, d, 0, 0)
#define socketpair(a, b, c, d) syscall(SYS_socketpair, a, b, c, d)
#define accept4(a, b, c, d) syscall(SYS_accept4, a, b, c, d)
#define epoll_ctl(a, b, c, d) syscall(SYS_epoll_ctl, a, b, c, d)
#define epoll_wait(a, b, c, d) syscall(SYS_epoll_wait, a, b, c, d)
#define epoll_pwait(a, b, c, d, e) syscall(SYS_epoll_pwait, a, b, c, d, e, 8)
#define poll(a, b, c) syscall(SYS_poll, a, b, c)
#define ppoll(a, b, c, d) syscall(SYS_ppoll, a, b, c, d, 8)
#define select(a, b, c, d, e) syscall(SYS_select, a, b, c, d, e)
#define BAD ((void *)0xdead0000)
#define KERNEL ((void *)0xffff800000001000)
#define E(label, call) do { errno = 0; long _r = (long)(call); if (_r < 0 && errno == 0) printf("%s: no errno\n", label); } while (0)

static unsigned long long seed = 88172645463325252ULL;
static unsigned long long rnd(void) { seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17; return seed; }

int main(void) {
    setvbuf(stdout, 0, _IONBF, 0);
    int sv[2];
    if (syscall(SYS_socketpair, AF_UNIX, SOCK_DGRAM, 0, sv) != 0) return 1;
    E("socketpair bad sv", socketpair(AF_UNIX, SOCK_STREAM, 0, BAD));
    E("socketpair kernel sv", socketpair(AF_UNIX, SOCK_STREAM, 0, KERNEL));
    E("bind bad addr", bind(sv[0], BAD, 20));
    E("bind huge len", bind(sv[0], (struct sockaddr *)&(struct sockaddr_un){ .sun_family = AF_UNIX }, 0x7fffffff));
    E("bind negative len", bind(sv[0], (struct sockaddr *)&(struct sockaddr_un){ .sun_family = AF_UNIX }, -1));
    E("connect bad", connect(sv[0], KERNEL, 110));
    E("send bad buf", send(sv[0], BAD, 100, 0));
    E("send huge", send(sv[0], BAD, (size_t)-1, 0));
    E("recv bad buf", recv(sv[1], BAD, 100, MSG_DONTWAIT));
    E("sendto bad addr", sendto(sv[0], "x", 1, 0, BAD, 16));
    E("recvfrom bad addrlen", recvfrom(sv[1], (char[4]){0}, 4, MSG_DONTWAIT, (struct sockaddr *)&(struct sockaddr_un){0}, BAD));
    E("sendmsg bad msg", sendmsg(sv[0], BAD, 0));
    E("recvmsg bad msg", recvmsg(sv[1], KERNEL, MSG_DONTWAIT));
    struct iovec iov = { "abc", 3 };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
    m.msg_iovlen = 1 << 30; E("sendmsg huge iovlen", sendmsg(sv[0], &m, 0));
    m.msg_iovlen = 1025; E("sendmsg 1025 iovs", sendmsg(sv[0], &m, 0));
    m.msg_iovlen = 1; m.msg_iov = BAD; E("sendmsg bad iov", sendmsg(sv[0], &m, 0));
    m.msg_iov = &iov; m.msg_control = BAD; m.msg_controllen = 64; E("sendmsg bad control", sendmsg(sv[0], &m, 0));
    m.msg_controllen = (size_t)-1; E("sendmsg huge control", sendmsg(sv[0], &m, 0));
    char garbage[512];
    for (int round = 0; round < 2000; round++) {
        for (size_t i = 0; i < sizeof garbage; i++) garbage[i] = (char)rnd();
        if (round % 3 == 0) { struct cmsghdr *c = (struct cmsghdr *)garbage; c->cmsg_len = rnd() % 600; c->cmsg_level = SOL_SOCKET; c->cmsg_type = 1 + rnd() % 2; }
        m.msg_control = garbage; m.msg_controllen = rnd() % sizeof garbage;
        errno = 0;
        if (sendmsg(sv[0], &m, MSG_DONTWAIT) < 0 && errno == 0) printf("cmsg garbage: no errno\n");
        char rb[8], rc[64];
        struct iovec riov = { rb, sizeof rb };
        struct msghdr rm = { .msg_iov = &riov, .msg_iovlen = 1, .msg_control = rc, .msg_controllen = rnd() % 80 };
        while (recvmsg(sv[1], &rm, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) >= 0) {
            for (struct cmsghdr *c = CMSG_FIRSTHDR(&rm); c; c = CMSG_NXTHDR(&rm, c))
                if (c->cmsg_type == SCM_RIGHTS) for (size_t k = 0; k < (c->cmsg_len - CMSG_LEN(0)) / 4; k++) close(((int *)CMSG_DATA(c))[k]);
            rm.msg_controllen = rnd() % 80;
        }
    }
    E("getsockopt bad len", getsockopt(sv[0], SOL_SOCKET, SO_TYPE, (int[1]){0}, BAD));
    E("getsockopt bad val", getsockopt(sv[0], SOL_SOCKET, SO_PEERCRED, BAD, &(socklen_t){12}));
    E("getsockopt negative len", getsockopt(sv[0], SOL_SOCKET, SO_TYPE, (int[1]){0}, &(socklen_t){-1}));
    E("setsockopt bad val", setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, BAD, 4));
    E("setsockopt huge len", setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, (int[1]){1}, 0x7fffffff));
    E("getsockname bad", getsockname(sv[0], BAD, BAD));
    E("accept4 bad flags", accept4(sv[0], NULL, NULL, -1));
    struct mmsghdr mm[2] = {0};
    E("sendmmsg bad vec", sendmmsg(sv[0], BAD, 1000000, 0));
    E("recvmmsg bad vec", recvmmsg(sv[1], BAD, 1000000, MSG_DONTWAIT, NULL));
    E("recvmmsg bad timeout", recvmmsg(sv[1], mm, 2, MSG_DONTWAIT, BAD));
    int ep = epoll_create1(0);
    E("epoll_ctl bad event", epoll_ctl(ep, EPOLL_CTL_ADD, sv[0], BAD));
    E("epoll_wait bad events", epoll_wait(ep, BAD, 10, 0));
    E("epoll_wait huge max", epoll_wait(ep, (struct epoll_event[1]){0}, 0x7fffffff, 0));
    struct epoll_event ev = { .events = EPOLLOUT, .data.u64 = 1 };
    epoll_ctl(ep, EPOLL_CTL_ADD, sv[0], &ev);
    E("epoll_wait ready bad events", epoll_wait(ep, KERNEL, 10, 0));
    E("epoll_pwait bad mask", epoll_pwait(ep, (struct epoll_event[1]){0}, 1, 0, BAD));
    E("epoll_pwait2 bad timeout", syscall(SYS_epoll_pwait2, ep, (struct epoll_event[1]){0}, 1, BAD, NULL, 8));
    E("epoll_create1 bad flags", epoll_create1(-1));
    E("poll bad fds", poll(BAD, 10, 0));
    E("poll huge nfds", poll((struct pollfd[1]){0}, 1 << 30, 0));
    struct pollfd pfd1 = { sv[0], POLLOUT, 0 };
    struct timeval tv0 = { 0 };
    struct timespec ts0 = { 0 };
    unsigned long nomask = 0;
    E("ppoll bad mask", ppoll(&pfd1, 1, NULL, BAD));
    E("ppoll bad sigsetsize", syscall(SYS_ppoll, &pfd1, 1, NULL, &nomask, 3));
    E("select bad set", select(10, BAD, NULL, NULL, &tv0));
    E("pselect6 bad sig", syscall(SYS_pselect6, 0, NULL, NULL, NULL, &ts0, BAD));
    E("eventfd read bad buf", read(eventfd(1, 0), BAD, 8));
    // Random arguments to every socket and readiness call (fds kept small so some hit).
    static const long calls[] = { SYS_socket, SYS_socketpair, SYS_bind, SYS_listen, SYS_connect, SYS_accept4,
        SYS_sendto, SYS_recvfrom, SYS_sendmsg, SYS_recvmsg, SYS_shutdown, SYS_getsockname, SYS_getpeername,
        SYS_getsockopt, SYS_setsockopt, SYS_sendmmsg, SYS_recvmmsg, SYS_epoll_ctl, SYS_epoll_wait, SYS_eventfd2 };
    for (int i = 0; i < 20000; i++) {
        long n = calls[rnd() % (sizeof calls / sizeof calls[0])];
        long a[6];
        for (int k = 0; k < 6; k++) {
            switch (rnd() % 5) {
            case 0: a[k] = rnd() % 12; break;
            case 1: a[k] = (long)rnd(); break;
            case 2: a[k] = (long)BAD; break;
            case 3: a[k] = (long)garbage; break;
            default: a[k] = -(long)(rnd() % 5); break;
            }
        }
        // Never block: only nonblocking flags for the calls that take them, and no fd
        // may be a blocking socket's read end waiting forever (timeouts 0).
        if (n == SYS_recvfrom || n == SYS_recvmsg || n == SYS_sendto || n == SYS_sendmsg) a[n == SYS_recvfrom || n == SYS_sendto ? 3 : 2] = MSG_DONTWAIT | (rnd() & MSG_PEEK);
        if (n == SYS_recvmmsg || n == SYS_sendmmsg) a[3] = MSG_DONTWAIT;
        if (n == SYS_accept4) a[3] = SOCK_NONBLOCK;
        if (n == SYS_connect) a[0] = sv[0];
        if (n == SYS_epoll_wait) a[3] = 0;
        syscall(n, a[0], a[1], a[2], a[3], a[4], a[5]);
    }
    printf("done\n");
    return 0;
}
