// AF_UNIX sockets compared with Linux: socketpair (stream, dgram, seqpacket) and message
// boundaries, SCM_RIGHTS passing a pipe (MSG_CTRUNC, MSG_CMSG_CLOEXEC), SCM_CREDENTIALS with
// SO_PASSCRED, SO_PEERCRED, socket options as Linux reports them, path names (EADDRINUSE,
// ENOENT, ECONNREFUSED, S_ISSOCK), backlog and nonblocking connect/accept4 EAGAIN, abstract
// names with sendto/recvfrom, shutdown, EPIPE with and without SIGPIPE, sendmmsg/recvmmsg.
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#define P(label, call) do { errno = 0; long _r = (long)(call); printf("%s %ld %s\n", label, _r, _r < 0 ? strerror(errno) : "ok"); } while (0)

static int sigpipes;
static void on_pipe(int s) { (void)s; sigpipes++; }

static int opt(int fd, int name) { int v = -1; socklen_t l = sizeof v; getsockopt(fd, SOL_SOCKET, name, &v, &l); return v; }

static void pair_basics(void) {
    int sv[2];
    P("socketpair stream", socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    printf("type %d domain %d protocol %d acceptconn %d error %d\n", opt(sv[0], SO_TYPE), opt(sv[0], SO_DOMAIN), opt(sv[0], SO_PROTOCOL), opt(sv[0], SO_ACCEPTCONN), opt(sv[0], SO_ERROR));
    printf("sndbuf %d rcvbuf %d\n", opt(sv[0], SO_SNDBUF), opt(sv[0], SO_RCVBUF));
    int v = 65536; setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &v, sizeof v);
    v = 1; setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &v, sizeof v);
    printf("sndbuf after 65536: %d rcvbuf after 1: %d\n", opt(sv[0], SO_SNDBUF), opt(sv[0], SO_RCVBUF));
    struct ucred uc; socklen_t l = sizeof uc;
    getsockopt(sv[1], SOL_SOCKET, SO_PEERCRED, &uc, &l);
    printf("peercred len %u pid-is-me %d uid-is-me %d\n", l, uc.pid == getpid(), uc.uid == getuid());
    P("write", write(sv[0], "hello", 5));
    P("send", send(sv[0], " world", 6, 0));
    char b[64] = {0};
    P("recv peek", recv(sv[1], b, sizeof b, MSG_PEEK));
    memset(b, 0, sizeof b);
    P("read", read(sv[1], b, sizeof b)); printf("got '%s'\n", b);
    P("recv dontwait empty", recv(sv[1], b, sizeof b, MSG_DONTWAIT));
    struct pollfd p = { sv[1], POLLIN | POLLOUT | POLLRDHUP, 0 };
    P("poll before shutdown", poll(&p, 1, 0)); printf("revents %#x\n", p.revents);
    P("shutdown wr", shutdown(sv[0], SHUT_WR));
    P("poll after shutdown", poll(&p, 1, 0)); printf("revents %#x\n", p.revents);
    P("read eof", read(sv[1], b, sizeof b));
    P("send after shutdown nosignal", send(sv[0], "x", 1, MSG_NOSIGNAL));
    P("shutdown bad", shutdown(sv[0], 7));
    struct sockaddr_un sa; socklen_t sl = sizeof sa;
    P("getsockname unnamed", getsockname(sv[0], (struct sockaddr *)&sa, &sl)); printf("len %u family %d\n", sl, sa.sun_family);
    sl = sizeof sa;
    P("getpeername pair", getpeername(sv[0], (struct sockaddr *)&sa, &sl)); printf("len %u\n", sl);
    close(sv[0]); close(sv[1]);
    P("read on pipe-less fd", recv(0 + 999, b, 1, 0));
    int pf[2]; pipe(pf);
    P("recv on a pipe", recv(pf[0], b, 1, MSG_DONTWAIT));
    close(pf[0]); close(pf[1]);
}

static void sigpipe_cases(void) {
    signal(SIGPIPE, on_pipe);
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    close(sv[1]);
    P("send to closed nosignal", send(sv[0], "x", 1, MSG_NOSIGNAL));
    printf("sigpipes %d\n", sigpipes);
    P("write to closed", write(sv[0], "x", 1));
    printf("sigpipes %d\n", sigpipes);
    struct pollfd p = { sv[0], POLLIN | POLLOUT, 0 };
    P("poll closed peer", poll(&p, 1, 0)); printf("revents %#x\n", p.revents);
    close(sv[0]);
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    write(sv[0], "unread", 6);
    close(sv[0]);
    char b[8];
    P("read leftover after close", read(sv[1], b, sizeof b));
    P("read eof", read(sv[1], b, sizeof b));
    close(sv[1]);
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    write(sv[1], "x", 1); // sv[1]'s data unread in sv[0]
    close(sv[0]);
    printf("so_error after reset %d\n", opt(sv[1], SO_ERROR));
    close(sv[1]);
    signal(SIGPIPE, SIG_DFL);
}

static void boundaries(int type, const char *name) {
    int sv[2];
    printf("-- %s\n", name);
    P("socketpair", socketpair(AF_UNIX, type, 0, sv));
    send(sv[0], "a", 1, 0);
    char big[100]; memset(big, 'b', sizeof big);
    send(sv[0], big, sizeof big, 0);
    send(sv[0], "ccccc", 5, 0);
    send(sv[0], "", 0, 0);
    char b[200];
    P("recv 1", recv(sv[1], b, 50, 0));
    struct iovec iov = { b, 50 };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
    P("recvmsg 2", recvmsg(sv[1], &m, 0)); printf("flags trunc %d\n", !!(m.msg_flags & MSG_TRUNC));
    P("recv peek trunc", recv(sv[1], b, 2, MSG_PEEK | MSG_TRUNC));
    P("recv 3", recv(sv[1], b, 50, 0));
    P("recv empty datagram", recv(sv[1], b, 50, MSG_DONTWAIT));
    P("recv none", recv(sv[1], b, 50, MSG_DONTWAIT));
    struct mmsghdr mm[3]; struct iovec iv[3]; char bufs[3][8];
    for (int i = 0; i < 3; i++) { iv[i].iov_base = bufs[i]; iv[i].iov_len = 8; memset(&mm[i], 0, sizeof mm[i]); mm[i].msg_hdr.msg_iov = &iv[i]; mm[i].msg_hdr.msg_iovlen = 1; }
    memcpy(bufs[0], "one", 3); iv[0].iov_len = 3; memcpy(bufs[1], "two2", 4); iv[1].iov_len = 4;
    P("sendmmsg", sendmmsg(sv[0], mm, 2, 0)); printf("lens %u %u\n", mm[0].msg_len, mm[1].msg_len);
    for (int i = 0; i < 3; i++) iv[i].iov_len = 8;
    P("recvmmsg", recvmmsg(sv[1], mm, 3, MSG_DONTWAIT, NULL)); printf("lens %u %u\n", mm[0].msg_len, mm[1].msg_len);
    if (type == SOCK_DGRAM) {
        P("shutdown rd", shutdown(sv[1], SHUT_RD));
        P("recv after shut rd", recv(sv[1], b, 50, 0));
    }
    close(sv[0]);
    P("recv after peer close", recv(sv[1], b, 50, MSG_DONTWAIT));
    close(sv[1]);
}

static void rights(void) {
    int sv[2], pf[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    pipe(pf);
    char cbuf[CMSG_SPACE(3 * sizeof(int))];
    memset(cbuf, 0, sizeof cbuf);
    struct iovec iov = { "F", 1 };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = CMSG_SPACE(sizeof(int)) };
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET; c->cmsg_type = SCM_RIGHTS; c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &pf[0], sizeof(int));
    P("sendmsg rights", sendmsg(sv[0], &m, 0));
    close(pf[0]);
    char r[4]; struct iovec riov = { r, sizeof r };
    char rc[CMSG_SPACE(sizeof(int))];
    struct msghdr rm = { .msg_iov = &riov, .msg_iovlen = 1, .msg_control = rc, .msg_controllen = sizeof rc };
    P("recvmsg rights", recvmsg(sv[1], &rm, MSG_CMSG_CLOEXEC));
    struct cmsghdr *rc1 = CMSG_FIRSTHDR(&rm);
    printf("controllen %zu ctrunc %d level %d type %d len %zu\n", rm.msg_controllen, !!(rm.msg_flags & MSG_CTRUNC), rc1 ? rc1->cmsg_level : -1, rc1 ? rc1->cmsg_type : -1, rc1 ? (size_t)rc1->cmsg_len : 0);
    int got = -1; if (rc1) memcpy(&got, CMSG_DATA(rc1), sizeof got);
    printf("cloexec %d\n", fcntl(got, F_GETFD) & FD_CLOEXEC);
    write(pf[1], "through", 7);
    char b[16] = {0};
    P("read passed pipe", read(got, b, sizeof b)); printf("'%s'\n", b);
    close(got);
    // Three fds into room for one: MSG_CTRUNC, one installed.
    int three[3] = { pf[1], pf[1], pf[1] };
    m.msg_controllen = CMSG_SPACE(3 * sizeof(int));
    c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET; c->cmsg_type = SCM_RIGHTS; c->cmsg_len = CMSG_LEN(3 * sizeof(int));
    memcpy(CMSG_DATA(c), three, sizeof three);
    P("sendmsg three", sendmsg(sv[0], &m, 0));
    char small[CMSG_LEN(sizeof(int))];
    rm.msg_control = small; rm.msg_controllen = sizeof small;
    P("recvmsg small control", recvmsg(sv[1], &rm, 0));
    printf("controllen %zu ctrunc %d\n", rm.msg_controllen, !!(rm.msg_flags & MSG_CTRUNC));
    // No control buffer at all.
    P("sendmsg again", sendmsg(sv[0], &m, 0));
    rm.msg_control = NULL; rm.msg_controllen = 0;
    P("recvmsg no control", recvmsg(sv[1], &rm, 0)); printf("ctrunc %d\n", !!(rm.msg_flags & MSG_CTRUNC));
    // Bad fd and bad header.
    int bad = 999; memcpy(CMSG_DATA(c), &bad, sizeof bad); c->cmsg_len = CMSG_LEN(sizeof(int));
    m.msg_controllen = CMSG_SPACE(sizeof(int));
    P("sendmsg bad fd", sendmsg(sv[0], &m, 0));
    c->cmsg_len = 1000;
    P("sendmsg bad cmsg_len", sendmsg(sv[0], &m, 0));
    c->cmsg_len = CMSG_LEN(sizeof(int)); c->cmsg_type = 77; memcpy(CMSG_DATA(c), &pf[1], sizeof(int));
    P("sendmsg bad type", sendmsg(sv[0], &m, 0));
    // Credentials.
    int on = 1; setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &on, sizeof on);
    printf("passcred %d\n", opt(sv[1], SO_PASSCRED));
    send(sv[0], "c", 1, 0);
    char cc[CMSG_SPACE(sizeof(struct ucred))];
    rm.msg_control = cc; rm.msg_controllen = sizeof cc;
    P("recvmsg creds", recvmsg(sv[1], &rm, 0));
    struct cmsghdr *k = CMSG_FIRSTHDR(&rm);
    struct ucred u = {0}; if (k && k->cmsg_type == SCM_CREDENTIALS) memcpy(&u, CMSG_DATA(k), sizeof u);
    printf("cred type %d pid-is-me %d uid %u\n", k ? k->cmsg_type : -1, u.pid == getpid(), u.uid);
    close(sv[0]); close(sv[1]); close(pf[1]);
}

static void paths(const char *base) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/unixsockXXXXXX", base);
    if (!mkdtemp(dir) || chdir(dir) != 0) { printf("no dir\n"); return; }
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    strcpy(a.sun_path, "srv.sock");
    socklen_t al = offsetof(struct sockaddr_un, sun_path) + strlen(a.sun_path) + 1;
    P("listen unbound", listen(s, 1));
    P("bind", bind(s, (struct sockaddr *)&a, al));
    P("bind again", bind(s, (struct sockaddr *)&a, al));
    int s2 = socket(AF_UNIX, SOCK_STREAM, 0);
    P("bind taken", bind(s2, (struct sockaddr *)&a, al));
    struct sockaddr_un other = { .sun_family = AF_UNIX }; strcpy(other.sun_path, "other.sock");
    P("bind bound socket to a new path", bind(s, (struct sockaddr *)&other, al + 2));
    P("new path left behind", access("other.sock", F_OK));
    struct stat st; stat("srv.sock", &st); printf("is socket %d\n", S_ISSOCK(st.st_mode));
    int c0 = socket(AF_UNIX, SOCK_STREAM, 0);
    P("connect not listening", connect(c0, (struct sockaddr *)&a, al));
    P("listen", listen(s, 0));
    printf("acceptconn %d\n", opt(s, SO_ACCEPTCONN));
    P("accept4 empty", accept4(s, NULL, NULL, 0));
    int c1 = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0), c2 = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    P("connect 1", connect(c1, (struct sockaddr *)&a, al));
    P("connect 2 backlog full", connect(c2, (struct sockaddr *)&a, al));
    P("connect 1 again", connect(c1, (struct sockaddr *)&a, al));
    struct pollfd p = { s, POLLIN, 0 };
    P("poll listener", poll(&p, 1, 0)); printf("revents %#x\n", p.revents);
    struct sockaddr_un pa; socklen_t pl = sizeof pa;
    int acc = accept4(s, (struct sockaddr *)&pa, &pl, SOCK_CLOEXEC);
    printf("accepted %d peer len %u cloexec %d\n", acc >= 0, pl, fcntl(acc, F_GETFD) & FD_CLOEXEC);
    P("connect 2 now", connect(c2, (struct sockaddr *)&a, al));
    struct sockaddr_un n; socklen_t nl = sizeof n;
    getsockname(acc, (struct sockaddr *)&n, &nl); printf("accepted name len %u '%s'\n", nl, n.sun_path);
    nl = sizeof n; getpeername(c1, (struct sockaddr *)&n, &nl); printf("client peer len %u '%s'\n", nl, n.sun_path);
    struct ucred uc; socklen_t ul = sizeof uc; getsockopt(c1, SOL_SOCKET, SO_PEERCRED, &uc, &ul);
    printf("client peercred pid-is-me %d\n", uc.pid == getpid());
    P("client send", send(c1, "ping", 4, 0));
    char b[8] = {0}; P("server recv", recv(acc, b, sizeof b, 0)); printf("'%s'\n", b);
    strcpy(a.sun_path, "missing.sock");
    P("connect missing", connect(c0, (struct sockaddr *)&a, offsetof(struct sockaddr_un, sun_path) + 13));
    close(open("plain", O_CREAT | O_WRONLY, 0644));
    strcpy(a.sun_path, "plain");
    P("connect regular file", connect(c0, (struct sockaddr *)&a, offsetof(struct sockaddr_un, sun_path) + 6));
    P("connect short addr", connect(c0, (struct sockaddr *)&a, 1));
    int d = socket(AF_UNIX, SOCK_DGRAM, 0);
    strcpy(a.sun_path, "srv.sock");
    P("dgram connect to stream", connect(d, (struct sockaddr *)&a, al));
    P("dgram listen", listen(d, 1));
    close(acc); close(c1); close(c2); close(c0); close(s); close(s2); close(d);
    P("unlink socket file", unlink("srv.sock"));
    unlink("plain"); chdir("/"); rmdir(dir);
}

static void abstract(void) {
    char name[64]; int nl = snprintf(name, sizeof name, "#pvm-unix-test-%d", getpid());
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    memcpy(a.sun_path, name, nl); a.sun_path[0] = 0;
    socklen_t al = offsetof(struct sockaddr_un, sun_path) + nl;
    int r = socket(AF_UNIX, SOCK_DGRAM, 0), w = socket(AF_UNIX, SOCK_DGRAM, 0);
    P("bind abstract", bind(r, (struct sockaddr *)&a, al));
    int r2 = socket(AF_UNIX, SOCK_DGRAM, 0);
    P("bind abstract taken", bind(r2, (struct sockaddr *)&a, al));
    struct sockaddr_un g; socklen_t gl = sizeof g;
    getsockname(r, (struct sockaddr *)&g, &gl); printf("abstract name len-ok %d\n", gl == al);
    P("sendto", sendto(w, "dgram", 5, 0, (struct sockaddr *)&a, al));
    char b[16] = {0}; struct sockaddr_un from; socklen_t fl = sizeof from;
    P("recvfrom", recvfrom(r, b, sizeof b, 0, (struct sockaddr *)&from, &fl)); printf("'%s' from len %u\n", b, fl);
    P("autobind", bind(w, (struct sockaddr *)&(struct sockaddr_un){ .sun_family = AF_UNIX }, sizeof(sa_family_t)));
    gl = sizeof g; getsockname(w, (struct sockaddr *)&g, &gl); printf("autobind len %u first %d\n", gl, g.sun_path[0]);
    sendto(w, "again", 5, 0, (struct sockaddr *)&a, al);
    fl = sizeof from; recvfrom(r, b, sizeof b, 0, (struct sockaddr *)&from, &fl); printf("from autobound len %u\n", fl);
    P("connect dgram", connect(w, (struct sockaddr *)&a, al));
    P("send connected", send(w, "c", 1, 0));
    P("send to stream-type abstract", sendto(r2, "x", 1, 0, (struct sockaddr *)&a, al));
    close(r);
    P("send to closed peer", send(w, "c", 1, 0));
    P("sendto nobody", sendto(r2, "x", 1, 0, (struct sockaddr *)&a, al));
    int big = socket(AF_UNIX, SOCK_DGRAM, 0);
    static char huge[300000];
    int sv[2]; socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
    P("send too big dgram", send(sv[0], huge, sizeof huge, 0));
    close(sv[0]); close(sv[1]); close(big); close(w); close(r2);
}

static void cross_process(void) {
    int sv[2];
    socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv);
    pid_t c = fork();
    if (c == 0) {
        close(sv[0]);
        char b[32];
        int n = recv(sv[1], b, sizeof b, 0);
        struct ucred uc; socklen_t l = sizeof uc; getsockopt(sv[1], SOL_SOCKET, SO_PEERCRED, &uc, &l);
        dprintf(1, "child got %d bytes, peer is parent %d\n", n, uc.pid == getppid());
        send(sv[1], b, n, 0);
        _exit(0);
    }
    close(sv[1]);
    send(sv[0], "across fork", 11, 0);
    char b[32] = {0};
    P("parent recv (blocks)", recv(sv[0], b, sizeof b, 0)); printf("'%s'\n", b);
    waitpid(c, 0, 0);
    P("recv after child exit", recv(sv[0], b, sizeof b, 0));
    close(sv[0]);
    // Blocking accept woken by a child's connect; blocking connect woken by an accept that
    // made room in a full backlog; MSG_WAITALL waiting for a second write.
    char name[64]; int nl = snprintf(name, sizeof name, "#pvm-unix-accept-%d", getpid());
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    memcpy(a.sun_path, name, nl); a.sun_path[0] = 0;
    socklen_t al = offsetof(struct sockaddr_un, sun_path) + nl;
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    bind(l, (struct sockaddr *)&a, al);
    listen(l, 0);
    c = fork();
    if (c == 0) {
        usleep(20000);
        int s1 = socket(AF_UNIX, SOCK_STREAM, 0), s2 = socket(AF_UNIX, SOCK_STREAM, 0);
        connect(s1, (struct sockaddr *)&a, al);
        int r = connect(s2, (struct sockaddr *)&a, al); // blocks until the parent accepts s1
        write(s2, r == 0 ? "wait" : "FAIL", 4); usleep(20000); write(s2, "all!", 4);
        close(s1); close(s2);
        _exit(0);
    }
    int x = accept(l, NULL, NULL);
    printf("blocking accept ok %d\n", x >= 0);
    usleep(50000);
    int y = accept(l, NULL, NULL);
    memset(b, 0, sizeof b);
    P("recv waitall", recv(y, b, 8, MSG_WAITALL)); printf("'%s'\n", b);
    waitpid(c, 0, 0);
    close(x); close(y); close(l);
}

// argv[1]: the directory path names are made in (default /tmp; a hostfs volume in a test).
int main(int argc, char **argv) {
    setvbuf(stdout, 0, _IONBF, 0);
    pair_basics();
    sigpipe_cases();
    boundaries(SOCK_DGRAM, "dgram");
    boundaries(SOCK_SEQPACKET, "seqpacket");
    rights();
    paths(argc > 1 ? argv[1] : "/tmp");
    abstract();
    cross_process();
    P("socket bad family", socket(77, SOCK_STREAM, 0));
    P("socket bad type", socket(AF_UNIX, 9, 0));
    P("socket bad protocol", socket(AF_UNIX, SOCK_STREAM, 5));
    P("socket bad flags", socket(AF_UNIX, SOCK_STREAM | 0x100, 0));
    return 0;
}
