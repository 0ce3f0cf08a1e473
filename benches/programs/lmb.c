/* lmb: lmbench-style micro-benchmarks for `pvm bench`, one static program for every contender.
 *
 * Build:  gcc -static -O2 -pthread -o lmb lmb.c   (pvm bench does this itself at bench time)
 * Usage:  lmb [options] BENCHMARK...           lmb list
 *   --target-ns N   calibrate each repetition to take at least N ns       (default 10000000)
 *   --reps N        repetitions per benchmark                              (default 11)
 *   --budget-ns N   stop repeating after N ns (at least 3 reps are kept)   (default 1000000000)
 *   --mib N         buffer size of the bandwidth and SHA-256 benchmarks    (default 64)
 *   --touch-mib N   total size of the allocate-and-touch benchmarks        (default 512)
 *   --file PATH     file for stat and open+close                           (default argv[0])
 *   --sh PATH       shell for `sh -c true`                                 (default /bin/sh)
 *   --self PATH     this program, exec'd by fork+exec                      (default argv[0])
 *   --data DIR      the hostfs cases' data: DIR/big (read) and DIR/files/f0000..f0999
 *   --exec PATH     the program deb_fork_exec runs (default /bin/true; dynamic in Debian)
 *   --chroot DIR    chroot(2) into DIR before any benchmark (the native Debian cases)
 *
 * Method (lmbench's): a benchmark is a loop of N operations; N is calibrated (doubling) until
 * one repetition takes at least --target-ns, then the repetition is repeated --reps times (or
 * until --budget-ns is spent, keeping at least 3). Each repetition yields a sample: ns per
 * operation, from CLOCK_MONOTONIC read in the benchmark's own process.
 *
 * Output, one line per benchmark on stdout, nothing else on stdout:
 *   lmb-result NAME PER ITERS REPS MEDIAN MIN S1,S2,...      (ns per PER; PER = what one op is)
 *   lmb-failed NAME REASON...
 * Exit status: 0 when every requested benchmark produced a result, 1 otherwise, 2 usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#define MAX_REPS 64
#define PAGE 4096UL

static uint64_t opt_target_ns = 10000000;
static int opt_reps = 11;
static uint64_t opt_budget_ns = 1000000000;
static uint64_t opt_mib = 64;
static uint64_t opt_touch_mib = 512;
static const char *opt_file;
static const char *opt_sh = "/bin/sh";
static const char *opt_self;
static const char *opt_data = "/data";
static const char *opt_exec = "/bin/true";
static const char *opt_chroot;

static char fail_reason[256];

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* A benchmark body: runs `n` operations, returns 0 or -1 (fail_reason set). */
typedef int (*body_fn)(uint64_t n);

struct bench {
    const char *name;
    const char *per;     /* what one operation is, e.g. "call", "4KiB", "MiB", "run" */
    body_fn body;
    int (*setup)(void);  /* optional, before calibration */
    void (*teardown)(void);
    uint64_t fixed_n;    /* 0: calibrate; otherwise ops per repetition (fixed-size work) */
    uint64_t (*fixed_fn)(void); /* ops per repetition computed from the options */
    body_fn overhead;    /* optional: the same loop without the measured part, timed right after
                            each repetition with the same count and subtracted from it */
    double divisor;      /* operations per loop iteration (0 means 1) */
    double (*sample_fn)(uint64_t *iters); /* optional: one repetition that measures its own
                            figure (ns), e.g. a latency percentile; replaces body timing */
    int once;            /* one repetition, no warm-up, no calibration: the first run of fresh
                            state (a cold read; the harness runs a fresh process for each) */
};

static int failf(const char *what) {
    snprintf(fail_reason, sizeof fail_reason, "%s: %s", what, strerror(errno));
    return -1;
}

static volatile uint64_t sink;

/* ---- system calls ---- */

static int b_getppid(uint64_t n) {
    for (uint64_t i = 0; i < n; i++) sink += (uint64_t)syscall(SYS_getppid);
    return 0;
}

/* The C library's clock_gettime: a vDSO call where there is one (Linux, pvm), else a syscall. */
static int b_clock_gettime(uint64_t n) {
    struct timespec ts;
    for (uint64_t i = 0; i < n; i++) {
        clock_gettime(CLOCK_MONOTONIC, &ts);
        sink += (uint64_t)ts.tv_nsec;
    }
    return 0;
}

static int fd_zero = -1, fd_null = -1;
static int s_devs(void) {
    fd_zero = open("/dev/zero", O_RDONLY);
    if (fd_zero < 0) return failf("open /dev/zero");
    fd_null = open("/dev/null", O_WRONLY);
    if (fd_null < 0) return failf("open /dev/null");
    return 0;
}
static void t_devs(void) {
    if (fd_zero >= 0) close(fd_zero);
    if (fd_null >= 0) close(fd_null);
    fd_zero = fd_null = -1;
}
static int b_read_zero(uint64_t n) {
    char c;
    for (uint64_t i = 0; i < n; i++)
        if (read(fd_zero, &c, 1) != 1) return failf("read /dev/zero");
    return 0;
}
static int b_write_null(uint64_t n) {
    char c = 0;
    for (uint64_t i = 0; i < n; i++)
        if (write(fd_null, &c, 1) != 1) return failf("write /dev/null");
    return 0;
}
static int b_stat(uint64_t n) {
    struct stat st;
    for (uint64_t i = 0; i < n; i++)
        if (stat(opt_file, &st) != 0) return failf("stat");
    return 0;
}
static int b_open_close(uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        int fd = open(opt_file, O_RDONLY);
        if (fd < 0) return failf("open");
        close(fd);
    }
    return 0;
}

/* ---- signals ---- */

static volatile sig_atomic_t caught;
static void on_usr1(int sig) { (void)sig; caught++; }

static int b_sig_install(uint64_t n) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    for (uint64_t i = 0; i < n; i++)
        if (sigaction(SIGUSR1, &sa, NULL) != 0) return failf("sigaction");
    return 0;
}
static int s_sig_catch(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    if (sigaction(SIGUSR1, &sa, NULL) != 0) return failf("sigaction");
    return 0;
}
static int b_sig_catch(uint64_t n) {
    pid_t me = getpid();
    caught = 0;
    for (uint64_t i = 0; i < n; i++)
        if (kill(me, SIGUSR1) != 0) return failf("kill");
    if ((uint64_t)caught != n) {
        snprintf(fail_reason, sizeof fail_reason, "caught %lu of %lu signals",
                 (unsigned long)caught, (unsigned long)n);
        return -1;
    }
    return 0;
}

/* Protection fault: a store to a read-only page; the SIGSEGV handler skips the faulting store
 * by moving RIP to the label after it, so each operation is exactly one fault, one signal
 * delivery and one sigreturn. */
static char *prot_page;
extern char prot_store[], prot_after[];
static volatile uint64_t prot_faults;
static void on_segv(int sig, siginfo_t *si, void *uc_) {
    (void)sig;
    ucontext_t *uc = uc_;
    if ((char *)si->si_addr != prot_page || (char *)uc->uc_mcontext.gregs[REG_RIP] != prot_store)
        _exit(3);
    uc->uc_mcontext.gregs[REG_RIP] = (greg_t)prot_after;
    prot_faults++;
}
static int s_prot(void) {
    prot_page = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (prot_page == MAP_FAILED) return failf("mmap");
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    if (sigaction(SIGSEGV, &sa, NULL) != 0) return failf("sigaction");
    sink += (uint64_t)prot_page[0]; /* map the page (read) before timing */
    return 0;
}
static void t_prot(void) {
    signal(SIGSEGV, SIG_DFL);
    munmap(prot_page, PAGE);
}
static int b_prot_fault(uint64_t n) {
    prot_faults = 0;
    for (uint64_t i = 0; i < n; i++)
        __asm__ volatile("prot_store: movb $1, (%0)\n\tprot_after:" ::"r"(prot_page) : "memory");
    if (prot_faults != n) {
        snprintf(fail_reason, sizeof fail_reason, "%lu faults for %lu stores",
                 (unsigned long)prot_faults, (unsigned long)n);
        return -1;
    }
    return 0;
}

/* ---- processes ---- */

static int wait_ok(pid_t pid) {
    int st;
    if (waitpid(pid, &st, 0) != pid) return failf("waitpid");
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        snprintf(fail_reason, sizeof fail_reason, "child status 0x%x", st);
        return -1;
    }
    return 0;
}

/* Pipe round trip between two processes: one byte there and back. */
static int pp_to[2], pp_from[2];
static pid_t pp_child = -1;
static int s_pipe_pair(void) {
    if (pipe(pp_to) || pipe(pp_from)) return failf("pipe");
    pp_child = fork();
    if (pp_child < 0) return failf("fork");
    if (pp_child == 0) {
        char c;
        close(pp_to[1]);
        close(pp_from[0]);
        while (read(pp_to[0], &c, 1) == 1)
            if (write(pp_from[1], &c, 1) != 1) _exit(1);
        _exit(0);
    }
    close(pp_to[0]);
    close(pp_from[1]);
    return 0;
}
static void t_pipe_pair(void) {
    close(pp_to[1]);
    close(pp_from[0]);
    if (pp_child > 0) waitpid(pp_child, NULL, 0);
    pp_child = -1;
}
static int b_pipe_rtt(uint64_t n) {
    char c = 'x';
    for (uint64_t i = 0; i < n; i++) {
        if (write(pp_to[1], &c, 1) != 1) return failf("pipe write");
        if (read(pp_from[0], &c, 1) != 1) return failf("pipe read");
    }
    return 0;
}

/* Context switch (lmbench lat_ctx, 2 processes, no working set): a pipe round trip between two
 * processes is two switches plus the pipe work; the pipe work alone (the same writes and
 * reads within one process) is timed after each repetition and its fastest run subtracted;
 * the rest is halved. */
static int self_pipe[2];
static int b_pipe_self(uint64_t n) {
    char c = 'x';
    for (uint64_t i = 0; i < n; i++) {
        if (write(self_pipe[1], &c, 1) != 1 || read(self_pipe[0], &c, 1) != 1) return failf("pipe");
        if (write(self_pipe[1], &c, 1) != 1 || read(self_pipe[0], &c, 1) != 1) return failf("pipe");
    }
    return 0;
}
static int b_ctx(uint64_t n) { return b_pipe_rtt(n); }

static int b_fork_exit(uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        pid_t p = fork();
        if (p < 0) return failf("fork");
        if (p == 0) _exit(0);
        if (wait_ok(p)) return -1;
    }
    return 0;
}
static int b_fork_exec(uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        pid_t p = fork();
        if (p < 0) return failf("fork");
        if (p == 0) {
            char *argv[] = {(char *)opt_self, "exit0", NULL};
            char *envp[] = {NULL};
            execve(opt_self, argv, envp);
            _exit(127);
        }
        if (wait_ok(p)) return -1;
    }
    return 0;
}
static int b_sh_true(uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        pid_t p = fork();
        if (p < 0) return failf("fork");
        if (p == 0) {
            char *argv[] = {"sh", "-c", "true", NULL};
            char *envp[] = {"PATH=/bin:/usr/bin", NULL};
            execve(opt_sh, argv, envp);
            _exit(127);
        }
        if (wait_ok(p)) return -1;
    }
    return 0;
}

/* ---- memory ---- */

/* Anonymous page fault: first write to each 4 KiB page of a fresh private mapping (huge pages
 * declined with MADV_NOHUGEPAGE where the kernel knows it), including the release of the page
 * at munmap; the mmap/madvise/munmap of untouched mappings is timed after each repetition and
 * its fastest run subtracted. */
static int b_page_fault(uint64_t n) {
    const uint64_t chunk = 16384; /* pages per mapping: 64 MiB */
    while (n > 0) {
        uint64_t k = n < chunk ? n : chunk;
        char *p = mmap(NULL, k * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) return failf("mmap");
        (void)madvise(p, k * PAGE, MADV_NOHUGEPAGE);
        for (uint64_t i = 0; i < k; i++) p[i * PAGE] = 1;
        munmap(p, k * PAGE);
        n -= k;
    }
    return 0;
}
/* b_page_fault without the touching: its overhead. */
static int b_page_fault_overhead(uint64_t n) {
    const uint64_t chunk = 16384;
    while (n > 0) {
        uint64_t k = n < chunk ? n : chunk;
        char *p = mmap(NULL, k * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) return failf("mmap");
        (void)madvise(p, k * PAGE, MADV_NOHUGEPAGE);
        munmap(p, k * PAGE);
        n -= k;
    }
    return 0;
}

static int b_mmap_1m(uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        void *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) return failf("mmap");
        if (munmap(p, 1 << 20) != 0) return failf("munmap");
    }
    return 0;
}

static uint64_t *buf;
static uint64_t buf_bytes;
static int s_buf(void) {
    buf_bytes = opt_mib << 20;
    buf = mmap(NULL, buf_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buf == MAP_FAILED) return failf("mmap");
    for (uint64_t i = 0; i < buf_bytes / 8; i++) buf[i] = i * 0x9e3779b97f4a7c15ULL;
    return 0;
}
static void t_buf(void) { munmap(buf, buf_bytes); }
static uint64_t per_mib(void) { return opt_mib; }

/* Bandwidth: one operation = one MiB of the buffer, passes over the whole buffer. */
static int b_mem_read(uint64_t n) {
    uint64_t words = buf_bytes / 8, s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (uint64_t pass = 0; pass < n / opt_mib; pass++)
        for (uint64_t i = 0; i < words; i += 4) {
            s0 += buf[i];
            s1 += buf[i + 1];
            s2 += buf[i + 2];
            s3 += buf[i + 3];
        }
    sink += s0 + s1 + s2 + s3;
    return 0;
}
static int b_mem_write(uint64_t n) {
    uint64_t words = buf_bytes / 8;
    for (uint64_t pass = 0; pass < n / opt_mib; pass++) {
        volatile uint64_t *v = buf;
        for (uint64_t i = 0; i < words; i += 4) {
            v[i] = pass;
            v[i + 1] = pass;
            v[i + 2] = pass;
            v[i + 3] = pass;
        }
    }
    return 0;
}

/* SHA-256 (FIPS 180-4), plain C, over the buffer: a CPU-bound kernel. */
static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};
#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))
static void sha256_block(uint32_t h[8], const unsigned char *p) {
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = k + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K256[i] + w[i];
        uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        k = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += k;
}
/* SHA-256 of the whole buffer (length a multiple of 64, so the padding is one extra block). */
static void sha256_buf(uint32_t h[8], const unsigned char *p, uint64_t len) {
    static const uint32_t init[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                     0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(h, init, sizeof init);
    for (uint64_t off = 0; off < len; off += 64) sha256_block(h, p + off);
    unsigned char pad[64] = {0x80};
    uint64_t bits = len * 8;
    for (int i = 0; i < 8; i++) pad[63 - i] = (unsigned char)(bits >> (8 * i));
    sha256_block(h, pad);
}
/* Setup of the SHA-256 benchmark: the implementation must give the right digest (of 64 'a'
 * bytes, from Python's hashlib) before it is timed. */
static int s_sha256(void) {
    static const uint32_t want[8] = {0xffe054fe, 0x7ae0cb6d, 0xc65c3af9, 0xb61d5209,
                                     0xf439851d, 0xb43d0ba5, 0x997337df, 0x154668eb};
    unsigned char in[64];
    uint32_t h[8];
    memset(in, 'a', sizeof in);
    sha256_buf(h, in, sizeof in);
    if (memcmp(h, want, sizeof want) != 0) {
        snprintf(fail_reason, sizeof fail_reason, "SHA-256 self-test gave a wrong digest");
        return -1;
    }
    return s_buf();
}
static int b_sha256(uint64_t n) {
    uint32_t h[8];
    for (uint64_t pass = 0; pass < n / opt_mib; pass++) {
        sha256_buf(h, (const unsigned char *)buf, buf_bytes);
        sink += h[0];
    }
    return 0;
}

/* Allocate-and-touch (the PVM paper's test): P processes each map --touch-mib/P MiB of
 * anonymous memory and write every 4 KiB page; one operation = one run (fork of the P
 * processes to the last wait). */
static int touch_procs(int procs, uint64_t n) {
    uint64_t bytes = (opt_touch_mib << 20) / (uint64_t)procs;
    for (uint64_t r = 0; r < n; r++) {
        pid_t pids[16];
        for (int i = 0; i < procs; i++) {
            pids[i] = fork();
            if (pids[i] < 0) return failf("fork");
            if (pids[i] == 0) {
                char *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                if (p == MAP_FAILED) _exit(1);
                for (uint64_t off = 0; off < bytes; off += PAGE) p[off] = 1;
                _exit(0);
            }
        }
        for (int i = 0; i < procs; i++)
            if (wait_ok(pids[i])) return -1;
    }
    return 0;
}
static int b_touch1(uint64_t n) { return touch_procs(1, n); }
static int b_touch2(uint64_t n) { return touch_procs(2, n); }
static int b_touch4(uint64_t n) { return touch_procs(4, n); }
static uint64_t one(void) { return 1; }
static int b_touch8(uint64_t n) { return touch_procs(8, n); }

/* Allocate-and-touch in one process: T threads each map --touch-mib/T MiB and write every
 * 4 KiB page of their own memory; one operation = one run (first create to last join). */
static uint64_t touch_thread_bytes;
static void *touch_thread(void *arg) {
    (void)arg;
    char *p = mmap(NULL, touch_thread_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return (void *)1;
    for (uint64_t off = 0; off < touch_thread_bytes; off += PAGE) p[off] = 1;
    munmap(p, touch_thread_bytes);
    return NULL;
}
static int touch_threads(int threads, uint64_t n) {
    touch_thread_bytes = (opt_touch_mib << 20) / (uint64_t)threads;
    for (uint64_t r = 0; r < n; r++) {
        pthread_t t[16];
        for (int i = 0; i < threads; i++)
            if (pthread_create(&t[i], NULL, touch_thread, NULL)) return failf("pthread_create");
        int bad = 0;
        for (int i = 0; i < threads; i++) {
            void *ret;
            pthread_join(t[i], &ret);
            bad |= ret != NULL;
        }
        if (bad) {
            snprintf(fail_reason, sizeof fail_reason, "a thread could not map its memory");
            return -1;
        }
    }
    return 0;
}
static int b_touch_t1(uint64_t n) { return touch_threads(1, n); }
static int b_touch_t2(uint64_t n) { return touch_threads(2, n); }

/* Two fork+exec loops in parallel: two processes each fork+exec+wait `lmb exit0` n times;
 * one operation = one fork+exec of each loop. */
static int b_fork_exec_x2(uint64_t n) {
    pid_t loops[2];
    for (int l = 0; l < 2; l++) {
        loops[l] = fork();
        if (loops[l] < 0) return failf("fork");
        if (loops[l] == 0) _exit(b_fork_exec(n) ? 1 : 0);
    }
    int bad = 0;
    for (int l = 0; l < 2; l++) bad |= wait_ok(loops[l]);
    return bad ? -1 : 0;
}

/* Scheduling latency under a lock-heavy load: 4 threads contend on one pthread mutex (a
 * short critical section, then a little work outside it), one thread creates processes
 * (fork + _exit + wait) in a loop, and the main thread wakes every 200 us
 * (clock_nanosleep TIMER_ABSTIME) and records how late it woke. One repetition = SL_TICKS
 * wakeups; its figure is a percentile of their lateness, ns. */
#define SL_TICKS 400
#define SL_WORKERS 4
static pthread_mutex_t sl_mutex = PTHREAD_MUTEX_INITIALIZER;
static volatile int sl_stop;
static volatile uint64_t sl_counter;
static void *sl_worker(void *arg) {
    (void)arg;
    while (!sl_stop) {
        pthread_mutex_lock(&sl_mutex);
        for (int i = 0; i < 200; i++) sl_counter++;
        pthread_mutex_unlock(&sl_mutex);
        for (int i = 0; i < 200; i++) sink++;
    }
    return NULL;
}
static void *sl_forker(void *arg) {
    (void)arg;
    while (!sl_stop) {
        pid_t p = fork();
        if (p == 0) _exit(0);
        if (p > 0) waitpid(p, NULL, 0);
    }
    return NULL;
}
static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}
static double sched_lat(int pct, uint64_t *iters) {
    pthread_t t[SL_WORKERS + 1];
    uint64_t late[SL_TICKS];
    sl_stop = 0;
    for (int i = 0; i < SL_WORKERS; i++)
        if (pthread_create(&t[i], NULL, sl_worker, NULL)) return failf("pthread_create");
    if (pthread_create(&t[SL_WORKERS], NULL, sl_forker, NULL)) return failf("pthread_create");
    for (int i = 0; i < SL_TICKS; i++) {
        uint64_t due = now_ns() + 200000;
        struct timespec ts = {(time_t)(due / 1000000000ULL), (long)(due % 1000000000ULL)};
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {}
        uint64_t now = now_ns();
        late[i] = now > due ? now - due : 0;
    }
    sl_stop = 1;
    for (int i = 0; i <= SL_WORKERS; i++) pthread_join(t[i], NULL);
    qsort(late, SL_TICKS, sizeof late[0], cmp_u64);
    *iters = SL_TICKS;
    return (double)late[(SL_TICKS - 1) * pct / 100];
}
static double sl_p50(uint64_t *iters) { return sched_lat(50, iters); }
static double sl_p90(uint64_t *iters) { return sched_lat(90, iters); }
static double sl_p99(uint64_t *iters) { return sched_lat(99, iters); }

/* ---- files on hostfs (--data) and a Debian root (--chroot) ---- */

/* Sequential read of DATA/big in 1 MiB read(2) calls from offset 0 to EOF; one operation = one
 * MiB; a repetition is one pass over the whole file (its size in MiB, from fstat). */
#define READ_CHUNK (1UL << 20)
static int big_fd = -1;
static uint64_t big_bytes;
static char *read_buf;
static int s_big(void) {
    char path[4096];
    snprintf(path, sizeof path, "%s/big", opt_data);
    big_fd = open(path, O_RDONLY);
    if (big_fd < 0) return failf("open DATA/big");
    struct stat st;
    if (fstat(big_fd, &st) != 0) return failf("fstat DATA/big");
    big_bytes = (uint64_t)st.st_size;
    if (big_bytes < READ_CHUNK || big_bytes % READ_CHUNK) {
        snprintf(fail_reason, sizeof fail_reason, "DATA/big is %lu bytes, not a whole number of MiB",
                 (unsigned long)big_bytes);
        return -1;
    }
    read_buf = malloc(READ_CHUNK);
    if (!read_buf) return failf("malloc");
    return 0;
}
static void t_big(void) {
    if (big_fd >= 0) close(big_fd);
    big_fd = -1;
    free(read_buf);
    read_buf = NULL;
}
static uint64_t big_mib(void) { return big_bytes >> 20; }
static int b_big_read(uint64_t n) {
    for (uint64_t pass = 0; pass < n / (big_bytes >> 20); pass++) {
        if (lseek(big_fd, 0, SEEK_SET) != 0) return failf("lseek");
        uint64_t got = 0;
        for (;;) {
            ssize_t r = read(big_fd, read_buf, READ_CHUNK);
            if (r < 0) return failf("read DATA/big");
            if (r == 0) break;
            sink += (uint64_t)read_buf[0];
            got += (uint64_t)r;
        }
        if (got != big_bytes) {
            snprintf(fail_reason, sizeof fail_reason, "read %lu of %lu bytes", (unsigned long)got,
                     (unsigned long)big_bytes);
            return -1;
        }
    }
    return 0;
}

/* stat and open+close of DATA/files/f0000..f0999 in turn (a different file each call). */
#define NFILES 1000
static char (*file_names)[4096];
static int s_files(void) {
    file_names = malloc(sizeof *file_names * NFILES);
    if (!file_names) return failf("malloc");
    for (int i = 0; i < NFILES; i++) snprintf(file_names[i], sizeof file_names[i], "%s/files/f%04d", opt_data, i);
    struct stat st;
    if (stat(file_names[NFILES - 1], &st) != 0) return failf("stat DATA/files/f0999");
    return 0;
}
static void t_files(void) {
    free(file_names);
    file_names = NULL;
}
static int b_files_stat(uint64_t n) {
    struct stat st;
    for (uint64_t i = 0; i < n; i++)
        if (stat(file_names[i % NFILES], &st) != 0) return failf("stat");
    return 0;
}
static int b_files_open_close(uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        int fd = open(file_names[i % NFILES], O_RDONLY);
        if (fd < 0) return failf("open");
        close(fd);
    }
    return 0;
}

/* fork + exec + wait of --exec (Debian's /bin/true: dynamically linked, so every exec maps
 * ld.so and libc from the root filesystem). */
static int b_deb_fork_exec(uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        pid_t p = fork();
        if (p < 0) return failf("fork");
        if (p == 0) {
            char *argv[] = {"true", NULL};
            char *envp[] = {"PATH=/usr/bin:/bin", NULL};
            execve(opt_exec, argv, envp);
            _exit(127);
        }
        if (wait_ok(p)) return -1;
    }
    return 0;
}

/* `tar cf - /usr` with stdout and stderr on /dev/null; one operation = one run. GNU tar sees
 * that its archive is /dev/null and then reads no file data: this is a walk of /usr's
 * metadata (readdir, lstat, open of every directory). */
static int b_deb_tar_usr(uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        pid_t p = fork();
        if (p < 0) return failf("fork");
        if (p == 0) {
            int fd = open("/dev/null", O_WRONLY);
            if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0) _exit(126);
            char *argv[] = {"tar", "cf", "-", "/usr", NULL};
            char *envp[] = {"PATH=/usr/bin:/bin", "LC_ALL=C", NULL};
            execve("/bin/tar", argv, envp);
            _exit(127);
        }
        if (wait_ok(p)) return -1;
    }
    return 0;
}

/* ---- harness ---- */

static int s_self_pipe(void) {
    if (pipe(self_pipe)) return failf("pipe");
    return s_pipe_pair();
}
static void t_self_pipe(void) {
    close(self_pipe[0]);
    close(self_pipe[1]);
    t_pipe_pair();
}

static const struct bench BENCHES[] = {
    {"getppid", "call", b_getppid, NULL, NULL, 0, NULL, NULL, 0},
    {"clock_gettime", "call", b_clock_gettime, NULL, NULL, 0, NULL, NULL, 0},
    {"read_zero", "call", b_read_zero, s_devs, t_devs, 0, NULL, NULL, 0},
    {"write_null", "call", b_write_null, s_devs, t_devs, 0, NULL, NULL, 0},
    {"stat", "call", b_stat, NULL, NULL, 0, NULL, NULL, 0},
    {"open_close", "call", b_open_close, NULL, NULL, 0, NULL, NULL, 0},
    {"sig_install", "call", b_sig_install, NULL, NULL, 0, NULL, NULL, 0},
    {"sig_catch", "signal", b_sig_catch, s_sig_catch, NULL, 0, NULL, NULL, 0},
    {"prot_fault", "fault", b_prot_fault, s_prot, t_prot, 0, NULL, NULL, 0},
    {"pipe_rtt", "round trip", b_pipe_rtt, s_pipe_pair, t_pipe_pair, 0, NULL, NULL, 0},
    {"ctx_switch", "switch", b_ctx, s_self_pipe, t_self_pipe, 0, NULL, b_pipe_self, 2},
    {"fork_exit", "process", b_fork_exit, NULL, NULL, 0, NULL, NULL, 0},
    {"fork_exec", "process", b_fork_exec, NULL, NULL, 0, NULL, NULL, 0},
    {"sh_true", "process", b_sh_true, NULL, NULL, 0, NULL, NULL, 0},
    {"page_fault", "4KiB page", b_page_fault, NULL, NULL, 0, NULL, b_page_fault_overhead, 1},
    {"mmap_1m", "call pair", b_mmap_1m, NULL, NULL, 0, NULL, NULL, 0},
    {"mem_read", "MiB", b_mem_read, s_buf, t_buf, 0, per_mib, NULL, 0},
    {"mem_write", "MiB", b_mem_write, s_buf, t_buf, 0, per_mib, NULL, 0},
    {"sha256", "MiB", b_sha256, s_sha256, t_buf, 0, per_mib, NULL, 0},
    {"touch_p1", "run", b_touch1, NULL, NULL, 0, one, NULL, 0},
    {"touch_p2", "run", b_touch2, NULL, NULL, 0, one, NULL, 0},
    {"touch_p4", "run", b_touch4, NULL, NULL, 0, one, NULL, 0},
    {"touch_p8", "run", b_touch8, NULL, NULL, 0, one, NULL, 0},
    {"touch_t1", "run", b_touch_t1, NULL, NULL, 0, one, NULL, 0},
    {"touch_t2", "run", b_touch_t2, NULL, NULL, 0, one, NULL, 0},
    {"fork_exec_x2", "2 processes", b_fork_exec_x2, NULL, NULL, 0, NULL, NULL, 0},
    {"sched_lat_p50", "wakeup", NULL, NULL, NULL, 0, NULL, NULL, 0, sl_p50},
    {"sched_lat_p90", "wakeup", NULL, NULL, NULL, 0, NULL, NULL, 0, sl_p90},
    {"sched_lat_p99", "wakeup", NULL, NULL, NULL, 0, NULL, NULL, 0, sl_p99},
    {"hostfs_read_warm", "MiB", b_big_read, s_big, t_big, 0, big_mib, NULL, 0},
    {"hostfs_read_cold", "MiB", b_big_read, s_big, t_big, 0, big_mib, NULL, 0, NULL, 1},
    {"hostfs_stat", "call", b_files_stat, s_files, t_files, 0, NULL, NULL, 0},
    {"hostfs_open_close", "call", b_files_open_close, s_files, t_files, 0, NULL, NULL, 0},
    {"deb_fork_exec", "process", b_deb_fork_exec, NULL, NULL, 0, NULL, NULL, 0},
    {"deb_tar_usr", "run", b_deb_tar_usr, NULL, NULL, 0, one, NULL, 0},
};
#define NBENCH (sizeof BENCHES / sizeof BENCHES[0])

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Time `n` operations of `body`: ns for the whole loop, or -1. */
static double timed(body_fn body, uint64_t n) {
    uint64_t t0 = now_ns();
    if (body(n)) return -1;
    return (double)(now_ns() - t0);
}

/* Calibrates and repeats `body`; fills samples (ns per op: the repetition's time, less the
 * fastest run of `overhead` when there is one, over `n * divisor`) and returns the count, or -1.
 * `overhead` runs right after each repetition with the same count; its fastest run is the best
 * estimate of its true cost (other load only ever adds time), so no sample can fall below the
 * measured work because one overhead run was preempted. */
static int measure(body_fn body, body_fn overhead, double divisor, uint64_t fixed, uint64_t *iters,
                   double *samples) {
    uint64_t n = fixed ? fixed : 1;
    uint64_t start = now_ns();
    double t = timed(body, n); /* warm-up, and the first calibration step */
    if (t < 0) return -1;
    /* The cost estimate is the cheapest step seen, so one step slowed down by preemption does
     * not end the calibration early with repetitions far shorter than the target. */
    double per_op = t / (double)n;
    while (!fixed && per_op * (double)n < (double)opt_target_ns && n < (1ULL << 40)) {
        double want = per_op > 0 ? (double)opt_target_ns / per_op * 1.2 : (double)n * 16;
        uint64_t next = want > (double)n * 16 ? n * 16 : (uint64_t)want;
        n = next > n * 2 ? next : n * 2;
        t = timed(body, n);
        if (t < 0) return -1;
        if (t / (double)n < per_op) per_op = t / (double)n;
    }
    *iters = n;
    int reps = 0;
    double best_overhead = -1;
    while (reps < opt_reps) {
        t = timed(body, n);
        if (t < 0) return -1;
        if (overhead) {
            double o = timed(overhead, n);
            if (o < 0) return -1;
            if (best_overhead < 0 || o < best_overhead) best_overhead = o;
        }
        samples[reps++] = t;
        if (reps >= 3 && now_ns() - start > opt_budget_ns) break;
    }
    for (int i = 0; i < reps; i++) {
        double work = overhead ? samples[i] - best_overhead : samples[i];
        samples[i] = work / (double)n / (divisor > 0 ? divisor : 1);
    }
    return reps;
}

static void print_result(const char *name, const char *per, uint64_t iters, double *s, int reps) {
    double sorted[MAX_REPS];
    memcpy(sorted, s, sizeof(double) * (size_t)reps);
    qsort(sorted, (size_t)reps, sizeof(double), cmp_double);
    double med = reps % 2 ? sorted[reps / 2] : (sorted[reps / 2 - 1] + sorted[reps / 2]) / 2;
    printf("lmb-result %s %s %lu %d %.3f %.3f ", name, per, (unsigned long)iters, reps, med, sorted[0]);
    for (int i = 0; i < reps; i++) printf(i ? ",%.3f" : "%.3f", s[i]);
    printf("\n");
    fflush(stdout);
}

static int run_one(const struct bench *b) {
    double samples[MAX_REPS];
    uint64_t iters = 0;
    fail_reason[0] = 0;
    if (b->setup && b->setup()) goto failed;
    uint64_t fixed = b->fixed_fn ? b->fixed_fn() : b->fixed_n;
    int reps = 0;
    if (b->once) {
        /* One run of fresh state: no warm-up (it would warm what is measured). */
        uint64_t n = fixed ? fixed : 1;
        double t = timed(b->body, n);
        iters = n;
        if (t < 0) reps = -1;
        else samples[reps++] = t / (double)n;
    } else if (b->sample_fn) {
        /* Self-measuring: a warm-up, then up to --reps repetitions within --budget-ns. */
        uint64_t start = now_ns();
        if (b->sample_fn(&iters) < 0) reps = -1;
        while (reps >= 0 && reps < opt_reps) {
            double v = b->sample_fn(&iters);
            if (v < 0) { reps = -1; break; }
            samples[reps++] = v;
            if (reps >= 3 && now_ns() - start > opt_budget_ns) break;
        }
    } else {
        reps = measure(b->body, b->overhead, b->divisor, fixed, &iters, samples);
    }
    if (b->teardown) b->teardown();
    if (reps <= 0) goto failed;
    print_result(b->name, b->per, iters, samples, reps);
    return 0;
failed:
    printf("lmb-failed %s %s\n", b->name, fail_reason[0] ? fail_reason : "unknown failure");
    fflush(stdout);
    return -1;
}

static int usage(void) {
    fprintf(stderr, "usage: lmb [--target-ns N] [--reps N] [--budget-ns N] [--mib N] [--touch-mib N]\n"
                    "           [--file PATH] [--sh PATH] [--self PATH] [--data DIR] [--exec PATH]\n"
                    "           [--chroot DIR] BENCHMARK... | list\n");
    return 2;
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "exit0") == 0) _exit(0);
    opt_file = opt_self = argv[0];
    int i = 1;
    for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
        const char *o = argv[i], *v = argv[i + 1];
        if (!strcmp(o, "--target-ns")) opt_target_ns = strtoull(v, NULL, 10);
        else if (!strcmp(o, "--reps")) opt_reps = atoi(v);
        else if (!strcmp(o, "--budget-ns")) opt_budget_ns = strtoull(v, NULL, 10);
        else if (!strcmp(o, "--mib")) opt_mib = strtoull(v, NULL, 10);
        else if (!strcmp(o, "--touch-mib")) opt_touch_mib = strtoull(v, NULL, 10);
        else if (!strcmp(o, "--file")) opt_file = v;
        else if (!strcmp(o, "--sh")) opt_sh = v;
        else if (!strcmp(o, "--self")) opt_self = v;
        else if (!strcmp(o, "--data")) opt_data = v;
        else if (!strcmp(o, "--exec")) opt_exec = v;
        else if (!strcmp(o, "--chroot")) opt_chroot = v;
        else return usage();
    }
    if (opt_reps < 3 || opt_reps > MAX_REPS || opt_mib == 0 || opt_touch_mib == 0) return usage();
    if (i >= argc) return usage();
    if (argc - i == 1 && !strcmp(argv[i], "list")) {
        for (size_t b = 0; b < NBENCH; b++) printf("%s %s\n", BENCHES[b].name, BENCHES[b].per);
        return 0;
    }
    if (opt_chroot && (chroot(opt_chroot) != 0 || chdir("/") != 0)) {
        int e = errno;
        for (; i < argc; i++) printf("lmb-failed %s chroot %s: %s\n", argv[i], opt_chroot, strerror(e));
        return 1;
    }
    int failed = 0;
    for (; i < argc; i++) {
        const struct bench *b = NULL;
        for (size_t k = 0; k < NBENCH; k++)
            if (!strcmp(BENCHES[k].name, argv[i])) b = &BENCHES[k];
        if (!b) {
            printf("lmb-failed %s no such benchmark\n", argv[i]);
            failed = 1;
            continue;
        }
        if (run_one(b)) failed = 1;
    }
    return failed;
}
