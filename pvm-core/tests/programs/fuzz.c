/* A small seeded syscall fuzzer (syzkaller's idea, our own generator). NEVER run natively: it
 * issues random system calls with random and boundary arguments (it would unlink, kill and
 * mmap at random on the host). It runs as pvm's first guest process:
 *
 *   fuzz SEED CALLS [log] [avoid-known] [first=BATCH] [skip=NR,NR,...]
 *
 * The parent (guest pid 1, which ignores default-action signals sent from inside) forks one
 * child per batch of BATCH calls. Batch b's generator is seeded from (SEED, b) only, so a batch
 * replays alone with first=b (skip= leaves known-bad numbers out: it changes the sequence). Each child sets up its own objects (fds on /dev/null,
 * /dev/zero, a /tmp file, a pipe, /proc/self/maps, a directory; a read-write buffer, a read-only
 * page, a PROT_NONE page, an unmapped hole), then issues random calls 0..~460 (plus a few
 * out-of-range and x32 numbers) with arguments drawn from boundary values, those objects, wrapping
 * address+length pairs, kernel-half addresses and pvm's stub area. It may crash or be killed:
 * that is fine. A child that runs longer than WATCHDOG_MS is killed by the parent (SIGKILL cannot
 * be blocked); each call also runs under a short interval timer so a blocking call returns EINTR.
 * Calls that end the child trivially or block it for good are left out (exit, exit_group, pause,
 * rt_sigsuspend, rt_sigreturn, vfork; and 335, which this project's host kernel answers with
 * SIGILL even natively). A process or thread made by fork/clone leaves at once.
 *
 * With `log`, the child writes "fuzz: b=B i=I nr=N args..." to stderr BEFORE each call (so the
 * last such line names the culprit if the guest kernel dies). The parent prints on stdout:
 *   fuzz: seed=S calls=C issued=I children=K crashed=X killed=Y parent-signals=P
 *   fuzz: done
 * where crashed counts children that died by a signal other than the watchdog's SIGKILL. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BATCH 256
#define WATCHDOG_MS 3000
#define LOGFD 1000
#define COUNTFD 999 /* the child reports how many calls it issued here (a pipe) */
#define BUF_PAGES 16
#define PAGE 4096ul

static uint64_t rng;

static uint64_t next(void)
{
    /* splitmix64 */
    uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t below(uint64_t n)
{
    return n ? next() % n : 0;
}

/* Raw system calls: no libc wrapper state (errno, cancellation) in the way. */
static inline long raw6(long nr, long a, long b, long c, long d, long e, long f)
{
    long ret;
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}

static inline long raw_gettid(void)
{
    return raw6(SYS_gettid, 0, 0, 0, 0, 0, 0);
}

static inline __attribute__((noreturn)) void raw_exit(int code)
{
    for (;;)
        raw6(SYS_exit, code, 0, 0, 0, 0, 0);
}

/* Objects of one child. */
static int fds[12];
static int nfds;
static unsigned char *buf;   /* BUF_PAGES read-write pages */
static unsigned char *ro;    /* one read-only page */
static unsigned char *none;  /* one PROT_NONE page */
static unsigned char *hole;  /* one unmapped page */
static char *paths[10];
static int npaths;

static const uint64_t boundary[] = {
    0, 1, 2, 3, 7, 8, 16, 63, 64, 127, 128, 255, 256, 1023, 1024,
    4095, 4096, 4097, 8192, 65535, 65536, 1ull << 20, (1ull << 21) + 1, 1ull << 30, 1ull << 31,
    0x7fffffff, 0x80000000, 0xffffffff, 0x100000000ull, 0x7fffffffffffffffull,
    0x8000000000000000ull, 0xffffffffffffffffull, 0xfffffffffffffffeull, 0xfffffffffffff000ull,
    0xffffffff80000000ull, (uint64_t)-4095, (uint64_t)-4096, (uint64_t)-PAGE - 1,
};

static const uint64_t addrs[] = {
    0x1000, 0x10000, 0x400000,
    0x00006fffffffffffull, 0x0000700000000000ull, /* guest USER_END - 1, USER_END */
    0x00007fffffffe000ull, 0x0000800000000000ull, 0x00007ffffffff000ull,
    0x0000780000000000ull,                         /* guest physmap */
    0x00007f0000000000ull,                         /* guest kernel image */
    0x00007fe000000000ull,                         /* stub text */
    0x00007fe010000000ull,                         /* PVCS */
    0x00007fe020000000ull,                         /* mapper command area */
    0x00007fe020100000ull,                         /* mapper completion page */
    0x00007fe030000000ull,                         /* stub stacks */
    0x00007fe100000000ull,                         /* K shared window */
    0xffff800000000000ull, 0xffffffff81000000ull,  /* kernel half */
    0xffffffffff600000ull,                         /* vsyscall page */
    0xfffffffffffff000ull,
};

static uint64_t pick_fd(void)
{
    switch (below(8)) {
    case 0:
        return (uint64_t)(int64_t)(int)(below(40) - 3);
    case 1:
        return (uint64_t)-100; /* AT_FDCWD */
    default:
        return nfds ? (uint64_t)fds[below(nfds)] : 0;
    }
}

static uint64_t pick_ptr(void)
{
    switch (below(12)) {
    case 0:
    case 1:
    case 2:
        return (uint64_t)(buf + below(BUF_PAGES * PAGE));
    case 3:
        return (uint64_t)(buf + BUF_PAGES * PAGE - below(16)); /* runs off the end */
    case 4:
        return (uint64_t)(ro + below(PAGE));
    case 5:
        return (uint64_t)(none + below(PAGE));
    case 6:
        return (uint64_t)hole;
    case 7:
        return npaths ? (uint64_t)paths[below(npaths)] : 0;
    case 8:
        return addrs[below(sizeof addrs / sizeof addrs[0])] + (below(2) ? 0 : below(PAGE));
    case 9:
        return 0;
    default:
        return (uint64_t)buf & ~(PAGE - 1);
    }
}

static uint64_t pick_arg(void)
{
    switch (below(10)) {
    case 0:
    case 1:
        return boundary[below(sizeof boundary / sizeof boundary[0])];
    case 2:
    case 3:
        return pick_ptr();
    case 4:
        return pick_fd();
    case 5:
        return below(64);
    case 6:
        return 1ull << below(64);
    case 7:
        return next();
    case 8:
        return (uint64_t)-(int64_t)below(4097); /* negative: -errno-like, -1, -PAGE */
    default:
        return below(2) ? (uint64_t)(int32_t)next() : (uint64_t)buf + BUF_PAGES * PAGE;
    }
}

/* Numbers left out by `skip=` (known bugs, to look past them in long runs). */
static long skip[32];
static int nskip;

/* With avoid-known: leave out what triggers the guest-kernel bugs already reported, to look
 * past them in long runs (it changes the sequence). */
static int avoid_known;

static void tame(long *nr, uint64_t a[6])
{
    /* Reading untouched anonymous memory allocates a frame per page (a huge write from an
     * untouched mapping to a pipe or a file exhausts guest memory; /dev/null no longer reads
     * it): keep lengths of read-from-user calls small. Fixed and no longer avoided: mincore
     * wrapping, huge MAP_POPULATE, huge file mmap, tkill/tgkill of pid 1. */
    if ((*nr == SYS_write || *nr == SYS_pwrite64 || *nr == SYS_sendto) && a[2] > (64ull << 20))
        a[2] = 64ull << 20;
    /* Files live in the kernel heap: sendfile of 2 GiB from /dev/zero into a /tmp file takes
     * all guest memory and the next kernel allocation panics (no OOM kill). */
    if (*nr == SYS_sendfile && a[3] > (64ull << 20))
        a[3] = 64ull << 20;
    if ((*nr == SYS_copy_file_range || *nr == SYS_splice) && a[4] > (64ull << 20))
        a[4] = 64ull << 20;
    if ((*nr == SYS_ftruncate || *nr == SYS_truncate) && a[1] > (64ull << 20))
        a[1] = 64ull << 20;
    if (*nr == SYS_fallocate && a[3] > (64ull << 20))
        a[3] = 64ull << 20;
}

static long pick_nr(void)
{
    for (;;) {
        long nr;
        uint64_t k = below(100);
        if (k == 0)
            nr = (long)boundary[below(sizeof boundary / sizeof boundary[0])];
        else if (k == 1)
            nr = 0x40000000 | (long)below(548); /* x32 */
        else
            nr = (long)below(463);
        int skipped = 0;
        for (int i = 0; i < nskip; i++)
            skipped |= skip[i] == nr;
        if (skipped)
            continue;
        switch (nr) {
        case SYS_exit:
        case SYS_exit_group:
        case SYS_pause:
        case SYS_rt_sigsuspend:
        case SYS_rt_sigreturn:
        case SYS_vfork:
        case 335: /* unassigned, but this project's host kernel raises SIGILL for it natively */
            continue;
        default:
            return nr;
        }
    }
}

static void say(int fd, const char *s)
{
    size_t n = strlen(s);
    while (n) {
        long w = raw6(SYS_write, fd, (long)s, (long)n, 0, 0, 0);
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

static char *hex(char *p, uint64_t v)
{
    static const char digits[] = "0123456789abcdef";
    char tmp[17];
    int n = 0;
    *p++ = '0';
    *p++ = 'x';
    do {
        tmp[n++] = digits[v & 15];
        v >>= 4;
    } while (v);
    while (n)
        *p++ = tmp[--n];
    return p;
}

static void on_alarm(int sig)
{
    (void)sig;
}

static void setup_child(void)
{
    int devnull = open("/dev/null", O_RDWR);
    dup2(2, LOGFD);
    if (devnull >= 0) {
        dup2(devnull, 0);
        dup2(devnull, 1);
        dup2(devnull, 2);
        close(devnull);
    }
    buf = mmap(NULL, (BUF_PAGES + 3) * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buf == MAP_FAILED)
        raw_exit(3);
    for (unsigned i = 0; i < BUF_PAGES * PAGE; i++)
        buf[i] = (unsigned char)next();
    ro = buf + BUF_PAGES * PAGE;
    none = ro + PAGE;
    hole = none + PAGE;
    memset(ro, 0x41, PAGE);
    mprotect(ro, PAGE, PROT_READ);
    mprotect(none, PAGE, PROT_NONE);
    munmap(hole, PAGE);
    mkdir("/tmp/fz", 0755);
    static const char *names[] = {"/tmp/fz/f", "/tmp/fz", "/", "/dev/null", "/proc/self/maps", "",
                                  ".", "/tmp/fz/f/x", "/nonexistent", "/proc/self/status"};
    npaths = 0;
    for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++) {
        /* Copies at the end of the buffer area: valid strings the calls may also overwrite. */
        char *p = (char *)buf + BUF_PAGES * PAGE - 1024 + 64 * i;
        strcpy(p, names[i]);
        paths[npaths++] = p;
    }
    nfds = 0;
    int f;
    if ((f = open("/dev/null", O_RDWR)) >= 0)
        fds[nfds++] = f;
    if ((f = open("/dev/zero", O_RDONLY)) >= 0)
        fds[nfds++] = f;
    if ((f = open("/tmp/fz/f", O_RDWR | O_CREAT, 0644)) >= 0) {
        fds[nfds++] = f;
        (void)!write(f, buf, 5000);
    }
    int p[2];
    if (pipe(p) == 0) {
        fds[nfds++] = p[0];
        fds[nfds++] = p[1];
    }
    if ((f = open("/proc/self/maps", O_RDONLY)) >= 0)
        fds[nfds++] = f;
    if ((f = open("/tmp", O_RDONLY | O_DIRECTORY)) >= 0)
        fds[nfds++] = f;
    if ((f = open("/dev/urandom", O_RDONLY)) >= 0)
        fds[nfds++] = f;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    for (int sig = 1; sig < 65; sig++)
        sigaction(sig, &sa, NULL);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
}

static void run_batch(uint64_t seed, long batch, long calls, int log)
{
    rng = seed ^ ((uint64_t)batch * 0xd1b54a32d192ed69ull);
    next();
    setup_child();
    long me = raw_gettid();
    struct itimerval it = {{0, 0}, {0, 20000}};
    for (long i = 0; i < calls; i++) {
        long nr = pick_nr();
        uint64_t a[6];
        for (int j = 0; j < 6; j++)
            a[j] = pick_arg();
        /* Keep the log and count fds. */
        if (nr == SYS_close_range && a[1] >= COUNTFD)
            a[1] = COUNTFD - 1;
        if ((nr == SYS_dup2 || nr == SYS_dup3) && (a[1] == LOGFD || a[1] == COUNTFD))
            a[1] = 0;
        if (nr == SYS_close && (a[0] == LOGFD || a[0] == COUNTFD))
            a[0] = 0;
        if (avoid_known)
            tame(&nr, a);
        if (log) {
            char line[256], *p = line;
            p += sprintf(p, "fuzz: b=%ld i=%ld nr=%ld", batch, i, nr);
            for (int j = 0; j < 6; j++) {
                *p++ = j ? ',' : ' ';
                p = hex(p, a[j]);
            }
            *p++ = '\n';
            *p = 0;
            say(LOGFD, line);
        }
        if (i % 16 == 0) {
            int done = (int)i;
            raw6(SYS_write, COUNTFD, (long)&done, sizeof done, 0, 0, 0);
        }
        raw6(SYS_setitimer, ITIMER_REAL, (long)&it, 0, 0, 0, 0);
        raw6(nr, (long)a[0], (long)a[1], (long)a[2], (long)a[3], (long)a[4], (long)a[5]);
        /* A new process or thread (fork, clone) leaves at once. */
        if (raw_gettid() != me)
            raw_exit(0);
    }
    int done = (int)calls;
    raw6(SYS_write, COUNTFD, (long)&done, sizeof done, 0, 0, 0);
    raw_exit(0);
}

/* Signals the children send the parent (kill(0, sig), kill(-1, sig), tgkill(1, 1, sig)) are
 * counted, not fatal: the parent must finish to print its summary. */
static volatile long parent_signals;

static void on_parent_signal(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    parent_signals++;
    char line[96];
    int n = snprintf(line, sizeof line, "fuzz: parent got signal %d from pid %d code %d\n", sig, si->si_pid,
                     si->si_code);
    raw6(SYS_write, 2, (long)line, n, 0, 0, 0);
}

/* Removes what the children left under `dir` (depth-bounded). */
static void cleanup_at(const char *dir, int depth)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char path[512];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path) != 0 && depth < 8) {
            cleanup_at(path, depth + 1);
            rmdir(path);
        }
    }
    closedir(d);
}

static void cleanup(const char *dir)
{
    cleanup_at(dir, 0);
}

/* MemFree of the guest's /proc/meminfo, kB (-1 if unknown): shows leaks across batches. */
static long mem_free_kb(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    char line[128];
    long kb = -1;
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemFree: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: fuzz SEED CALLS [log] [avoid-known] [first=BATCH] [skip=NR,NR,...]\n");
        return 2;
    }
    uint64_t seed = strtoull(argv[1], NULL, 0);
    long total = strtol(argv[2], NULL, 0);
    int log = 0;
    long first = 0;
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "log")) {
            log = 1;
        } else if (!strcmp(argv[i], "avoid-known")) {
            avoid_known = 1;
        } else if (!strncmp(argv[i], "first=", 6)) {
            first = strtol(argv[i] + 6, NULL, 0);
        } else if (!strncmp(argv[i], "skip=", 5)) {
            for (char *p = argv[i] + 5; *p && nskip < 32;) {
                skip[nskip++] = strtol(p, &p, 0);
                if (*p == ',')
                    p++;
                else if (*p)
                    break;
            }
        } else {
            fprintf(stderr, "fuzz: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    long issued = 0, calls = 0, children = 0, crashed = 0, killed = 0;
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_parent_signal;
    sa.sa_flags = SA_SIGINFO;
    for (int sig = 1; sig < 65; sig++)
        if (sig != SIGKILL && sig != SIGSTOP && sig != SIGCHLD && sig != SIGPIPE)
            sigaction(sig, &sa, NULL);
    int failed_forks = 0;
    for (long batch = first; calls < total; batch++) {
        long n = total - calls < BATCH ? total - calls : BATCH;
        /* What a child may have changed for the parent or for everyone: limits (prlimit64 on
         * pid 1), files in /tmp (memory). */
        struct rlimit inf = {RLIM_INFINITY, RLIM_INFINITY};
        setrlimit(RLIMIT_CPU, &inf);
        cleanup("/tmp/fz");
        if (log)
            fprintf(stderr, "fuzz: batch %ld\n", batch);
        if (log && batch % 64 == 0)
            fprintf(stderr, "fuzz: batch %ld: MemFree %ld kB\n", batch, mem_free_kb());
        int cp[2];
        if (pipe(cp) != 0) {
            perror("pipe");
            return 3;
        }
        pid_t pid = fork();
        if (pid < 0) {
            close(cp[0]);
            close(cp[1]);
            /* A previous child's leftovers (a forked grandchild) may hold a pid slot: reap. */
            while (waitpid(-1, NULL, WNOHANG) > 0)
                ;
            if (++failed_forks > 1000) {
                perror("fork");
                return 4;
            }
            usleep(10000);
            batch--;
            continue;
        }
        if (pid == 0) {
            close(cp[0]);
            dup2(cp[1], COUNTFD);
            close(cp[1]);
            run_batch(seed, batch, n, log);
        }
        close(cp[1]);
        children++;
        calls += n;
        failed_forks = 0;
        long deadline = now_ms() + WATCHDOG_MS;
        int status = 0;
        for (;;) {
            pid_t w = waitpid(pid, &status, WNOHANG);
            if (w == pid)
                break;
            if (now_ms() > deadline) {
                kill(pid, SIGKILL);
                waitpid(pid, &status, 0);
                killed++;
                if (log)
                    fprintf(stderr, "fuzz: batch %ld: watchdog killed the child\n", batch);
                break;
            }
            usleep(2000);
        }
        if (WIFSIGNALED(status) && WTERMSIG(status) != SIGKILL) {
            crashed++;
            if (log)
                fprintf(stderr, "fuzz: batch %ld: child died by signal %d\n", batch, WTERMSIG(status));
        }
        int got, last = 0;
        fcntl(cp[0], F_SETFL, O_NONBLOCK);
        while (read(cp[0], &got, sizeof got) == (ssize_t)sizeof got)
            last = got;
        close(cp[0]);
        issued += last;
        /* Reap orphans re-parented to us (grandchildren of fork/clone calls). */
        while (waitpid(-1, NULL, WNOHANG) > 0)
            ;
    }
    /* A child may have written to our stdout (pidfd_getfd of pid 1's fd 1 is allowed, as on
     * Linux): start a fresh line. */
    printf("\nfuzz: seed=%llu calls=%ld issued=%ld children=%ld crashed=%ld killed=%ld parent-signals=%ld\n",
           (unsigned long long)seed, calls, issued, children, crashed, killed, parent_signals);
    printf("fuzz: done\n");
    return 0;
}
