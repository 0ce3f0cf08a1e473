/* Hostile guest processes for pvm's soft backend (tests/hostile.rs). NEVER run natively except
 * the `legacy` mode (int 0x80 with eax = 20, sysenter with eax = 20, a call into the vsyscall
 * page: all harmless on Linux). Addresses are pvm's stub area (guest-abi/src/layout.rs).
 *
 *   hostile_guest MODE
 *
 * Every mode: guest pid 1 forks a VICTIM first (it fills 1 MiB with a magic pattern, answers
 * round trips on a pipe, churns its memory on request, and at the end checks its memory and
 * prints "victim: ok rounds=N"), then runs each attack of MODE in its own forked ATTACKER and
 * prints how it ended:
 *   attack NAME: exited N | attack NAME: signal N | attack NAME: killed after timeout
 * While an attacker runs, pid 1 makes ROUNDS round trips with the victim (so the victim must
 * get CPU time), then (for some attacks) kills the attacker with SIGKILL, waits for it with a
 * deadline (then SIGKILL), and finally prints "victim: exited 0" and "parent: done".
 *
 * Modes:
 *   shared     garbage over every PVCS of this space, the mapper completion page, the stub's
 *              writable data and its signal stacks (each then makes syscalls); writes to the
 *              read-only mapper command area and the stub text (they must fault)
 *   utid       a thread spins writing garbage into Pvcs::u_tid of every vCPU while the main
 *              thread calls usleep(100000) ten times
 *   jump       a call to every page of the stub image (text, rodata, data), one child each
 *   futex      every futex op 0..13, with and without FUTEX_PRIVATE_FLAG, from a `syscall`
 *              in the stub text, on PVCS words; one child each
 *   sigreturn  rt_sigreturn from the stub text with a forged frame blocking SIGUSR1, then an
 *              endless busy loop; pid 1 kills it after its round trips
 *   completion a thread copies the mapper command seq into the completion seq while the main
 *              thread maps and unmaps memory; then every unmapped page must fault and no page
 *              of the attacker may show the victim's magic
 *   legacy     int 0x80 (eax 20), sysenter (eax 20), call into the vsyscall page
 *   memory     allocate and touch 1 MiB chunks until failure
 *   vmas       100 000 pages of alternating protection, each touched
 *   forkbomb   every process forks until fork fails, then waits 0.3 s and exits
 *   kernel CASE one call that made the guest kernel panic, hang or kill pid 1 under the fuzzer
 *              (mincore-wrap, file-mmap-huge, tmpfs-fill, null-write-untouched, populate-huge,
 *              writev-wrap, sendfile-huge, tkill-init, orphan-exit-signal)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define STUB_BASE 0x7fe000000000ull
#define STUB_IMAGE_MAX (16ull << 20)
#define U_PVCS_BASE (STUB_BASE + 0x10000000ull)
#define PVCS_SIZE (16ull << 10)
#define PVCS_U_TID 280 /* offsetof(Pvcs, u_tid), guest-abi/src/pvcs.rs */
#define U_MAPPER_CMD_BASE (STUB_BASE + 0x20000000ull)
#define U_MAPPER_DONE_BASE (U_MAPPER_CMD_BASE + 0x100000ull)
#define STUB_STACKS_BASE (STUB_BASE + 0x30000000ull)
#define STACK_SLOT_SIZE ((1ull << 20) + 4096)
#define PAGE 4096ull
#define ROUNDS 50

#define MAGIC0 0x4d49544349565f50ull /* "P_VICTIM" */
#define MAGIC1 0x21c3a5636967616dull

static int to_victim[2], from_victim[2];
static uint64_t rng = 0x243f6a8885a308d3ull;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void say(const char *s)
{
    /* Raw write(2): nothing that garbage could have touched. */
    syscall(SYS_write, 1, s, strlen(s));
}

static void sayf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sayf(const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    say(buf);
}

/* ---- fault probing (the guest kernel delivers SIGSEGV/SIGBUS for stub-area faults) ---- */

static sigjmp_buf probe_env;
static volatile int probing;

static void on_fault(int sig)
{
    if (probing)
        siglongjmp(probe_env, 1);
    signal(sig, SIG_DFL);
    raise(sig);
}

static void catch_faults(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fault;
    sa.sa_flags = SA_NODEFER;
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
}

/* Whether the byte at `p` can be read; its value in *out. */
static int readable(uint64_t p, uint8_t *out)
{
    if (sigsetjmp(probe_env, 1)) {
        probing = 0;
        return 0;
    }
    probing = 1;
    uint8_t v = *(volatile uint8_t *)(uintptr_t)p;
    probing = 0;
    if (out)
        *out = v;
    return 1;
}

/* Whether the byte at `p` can be written (it writes back the value it read). */
static int writable(uint64_t p)
{
    uint8_t v;
    if (!readable(p, &v))
        return 0;
    if (sigsetjmp(probe_env, 1)) {
        probing = 0;
        return 0;
    }
    probing = 1;
    *(volatile uint8_t *)(uintptr_t)p = v;
    probing = 0;
    return 1;
}

/* Pages of the stub image readable from guest code: [STUB_BASE, STUB_BASE + n * PAGE). */
static uint64_t stub_image_pages(void)
{
    uint64_t n = 0;
    while (n * PAGE < STUB_IMAGE_MAX && readable(STUB_BASE + n * PAGE, NULL))
        n++;
    return n;
}

/* Address of the first `needle` in the readable stub image, or 0. */
static uint64_t find_in_stub(const uint8_t *needle, size_t len)
{
    uint64_t end = STUB_BASE + stub_image_pages() * PAGE;
    for (uint64_t p = STUB_BASE; p + len <= end; p++)
        if (!memcmp((const void *)(uintptr_t)p, needle, len))
            return p;
    return 0;
}

static long vcpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 && n <= 16 ? n : 1;
}

static void garbage(uint64_t base, uint64_t len)
{
    volatile uint64_t *p = (volatile uint64_t *)(uintptr_t)base;
    for (uint64_t i = 0; i < len / 8; i++)
        p[i] = next();
}

/* ---- the victim ---- */

#define VICTIM_BYTES (1u << 20)

static uint64_t *victim_fill(void)
{
    uint64_t *m = mmap(NULL, VICTIM_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    for (size_t i = 0; i < VICTIM_BYTES / 8; i++)
        m[i] = i * 0x9e3779b97f4a7c15ull;
    for (size_t pg = 0; pg < VICTIM_BYTES / PAGE; pg++) {
        m[pg * PAGE / 8] = MAGIC0;
        m[pg * PAGE / 8 + 1] = MAGIC1;
    }
    return m;
}

static int victim_check(const uint64_t *m)
{
    for (size_t i = 0; i < VICTIM_BYTES / 8; i++) {
        uint64_t want = i * 0x9e3779b97f4a7c15ull;
        if (i % (PAGE / 8) == 0)
            want = MAGIC0;
        else if (i % (PAGE / 8) == 1)
            want = MAGIC1;
        if (m[i] != want)
            return 0;
    }
    return 1;
}

static void victim(void)
{
    uint64_t *m = victim_fill();
    if (!m)
        _exit(20);
    long rounds = 0;
    char c;
    while (read(to_victim[0], &c, 1) == 1 && c != 'q') {
        if (c == 'm') {
            /* Churn: fresh frames carry the magic, freed ones go back to the allocator. */
            if (!victim_check(m)) {
                say("victim: CORRUPTED\n");
                _exit(21);
            }
            munmap(m, VICTIM_BYTES);
            if (!(m = victim_fill()))
                _exit(20);
        }
        rounds++;
        if (write(from_victim[1], &c, 1) != 1)
            _exit(22);
    }
    if (!victim_check(m)) {
        say("victim: CORRUPTED\n");
        _exit(21);
    }
    sayf("victim: ok rounds=%ld\n", rounds);
    _exit(0);
}

static void round_trips(int n, char c)
{
    for (int i = 0; i < n; i++) {
        char r;
        if (write(to_victim[1], &c, 1) != 1 || read(from_victim[0], &r, 1) != 1 || r != c) {
            say("parent: victim round trip failed\n");
            exit(30);
        }
    }
}

/* ---- running one attack ---- */

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int armed[2];

/* Tells pid 1 the attack is about to start (it waits for this, or for EOF). */
static void arm(void)
{
    char c = 'a';
    (void)!write(armed[1], &c, 1);
    close(armed[1]);
}

struct attack {
    const char *name;
    int (*fn)(uint64_t);
    uint64_t arg;
    int kill_after; /* pid 1 kills it after its round trips */
    char churn;     /* round-trip byte: 'r', or 'm' to make the victim churn memory */
};

static void run_attack(const struct attack *a)
{
    fflush(stdout);
    if (pipe(armed) != 0)
        exit(31);
    pid_t pid = fork();
    if (pid < 0) {
        sayf("attack %s: fork failed: %s\n", a->name, strerror(errno));
        exit(32);
    }
    if (pid == 0) {
        close(armed[0]);
        close(to_victim[1]);
        close(from_victim[0]);
        catch_faults();
        _exit(a->fn(a->arg));
    }
    close(armed[1]);
    char c;
    (void)!read(armed[0], &c, 1);
    close(armed[0]);
    round_trips(ROUNDS, a->churn ? a->churn : 'r');
    if (a->kill_after)
        kill(pid, SIGKILL);
    long deadline = now_ms() + 20000;
    int status = 0, timed_out = 0;
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            break;
        if (w < 0) {
            sayf("attack %s: waitpid: %s\n", a->name, strerror(errno));
            exit(33);
        }
        if (now_ms() > deadline && !timed_out) {
            timed_out = 1;
            kill(pid, SIGKILL);
        }
        usleep(1000);
    }
    if (timed_out)
        sayf("attack %s: killed after timeout\n", a->name);
    else if (WIFEXITED(status))
        sayf("attack %s: exited %d\n", a->name, WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        sayf("attack %s: signal %d\n", a->name, WTERMSIG(status));
    /* The victim still answers after every attack. */
    round_trips(5, 'r');
}

/* ---- shared pages ---- */

static int syscalls_after(const char *what)
{
    for (int i = 0; i < 100; i++)
        syscall(SYS_getppid);
    sayf("%s: syscalls returned\n", what);
    return 0;
}

static int a_pvcs(uint64_t vcpu)
{
    arm();
    garbage(U_PVCS_BASE + vcpu * PVCS_SIZE, PVCS_SIZE);
    return syscalls_after("pvcs");
}

static int a_pvcs_loop(uint64_t unused)
{
    (void)unused;
    arm();
    long n = vcpus();
    for (int i = 0; i < 300; i++) {
        for (long v = 0; v < n; v++)
            garbage(U_PVCS_BASE + (uint64_t)v * PVCS_SIZE, 4096);
        syscall(SYS_getppid);
    }
    return syscalls_after("pvcs loop");
}

static int a_mapper_done(uint64_t unused)
{
    (void)unused;
    arm();
    garbage(U_MAPPER_DONE_BASE, PAGE);
    size_t n = 16u << 20;
    unsigned char *m = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return 3;
    memset(m, 0x5a, n);
    unsigned long s = 0;
    for (size_t i = 0; i < n; i += PAGE)
        s += m[i];
    sayf("mapper-done: sum=%lu\n", s);
    return s == 0x5aul * (n / PAGE) ? 0 : 4;
}

/* A write that must fault: the process dies by SIGSEGV (no handler for this one). */
static int a_write_ro(uint64_t addr)
{
    arm();
    signal(SIGSEGV, SIG_DFL);
    signal(SIGBUS, SIG_DFL);
    garbage(addr, PAGE);
    say("read-only write succeeded (wrong)\n");
    return 0;
}

static int a_stub_data(uint64_t unused)
{
    (void)unused;
    uint64_t pages = stub_image_pages(), w = 0;
    arm();
    for (uint64_t i = 0; i < pages; i++)
        if (writable(STUB_BASE + i * PAGE)) {
            w++;
            garbage(STUB_BASE + i * PAGE, PAGE);
        }
    sayf("stub image: %llu pages readable, %llu writable, overwritten\n", (unsigned long long)pages,
         (unsigned long long)w);
    return syscalls_after("stub data");
}

static int a_altstacks(uint64_t unused)
{
    (void)unused;
    arm();
    long n = vcpus();
    for (long v = 0; v < n; v++) {
        /* Slot 2v+1 is vCPU v's sigaltstack; slot 2v its thread stack (guard page first). */
        for (uint64_t slot = 2 * (uint64_t)v; slot <= 2 * (uint64_t)v + 1; slot++) {
            uint64_t base = STUB_STACKS_BASE + slot * STACK_SLOT_SIZE + PAGE;
            for (uint64_t off = 0; off < STACK_SLOT_SIZE - PAGE; off += PAGE)
                if (writable(base + off))
                    garbage(base + off, PAGE);
        }
    }
    return syscalls_after("stacks");
}

/* ---- u_tid ---- */

static volatile int utid_stop;

/* Keeps garbage in Pvcs::u_tid of every vCPU while it spins in user mode: if H took the thread
 * to interrupt from there, nothing could preempt this thread (and the sleeper would not wake). */
static void *utid_spinner(void *unused)
{
    (void)unused;
    static const int32_t tids[] = {0, 1, -1, 2, 0x7fffffff, (int32_t)0x80000000};
    long n = vcpus();
    for (uint64_t i = 0; !utid_stop; i++)
        for (long v = 0; v < n; v++)
            *(volatile int32_t *)(uintptr_t)(U_PVCS_BASE + (uint64_t)v * PVCS_SIZE + PVCS_U_TID) = tids[(i + v) % 6];
    return NULL;
}

static int a_utid(uint64_t unused)
{
    (void)unused;
    pthread_t t;
    utid_stop = 0;
    if (pthread_create(&t, NULL, utid_spinner, NULL) != 0)
        return 5;
    arm();
    for (int i = 0; i < 10; i++)
        usleep(100000);
    utid_stop = 1;
    pthread_join(t, NULL);
    say("utid: slept 10 times\n");
    return 0;
}

/* ---- jumps ---- */

static int a_jump(uint64_t addr)
{
    arm();
    signal(SIGSEGV, SIG_DFL);
    signal(SIGBUS, SIG_DFL);
    ((void (*)(void))(uintptr_t)addr)();
    say("returned from the stub image (wrong)\n");
    return 0;
}

/* ---- futex from the stub text ---- */

static uint64_t syscall_gadget;

static int a_futex(uint64_t op)
{
    uint64_t uaddr = U_PVCS_BASE; /* this vCPU's PVCS state word (K waits on it) */
    uint64_t uaddr2 = U_MAPPER_DONE_BASE;
    uint32_t cur = *(volatile uint32_t *)(uintptr_t)uaddr;
    uint64_t val, val2, val3 = cur;
    switch (op & 127) {
    case 0:  /* FUTEX_WAIT */
    case 9:  /* FUTEX_WAIT_BITSET */
    case 11: /* FUTEX_WAIT_REQUEUE_PI */
        val = cur;
        val2 = 0; /* no timeout */
        val3 = ~0u;
        break;
    case 3:  /* FUTEX_REQUEUE */
    case 4:  /* FUTEX_CMP_REQUEUE: move K's waiter off the PVCS word */
    case 12: /* FUTEX_CMP_REQUEUE_PI */
        val = 0;
        val2 = 0x7fffffff;
        break;
    case 5: /* FUTEX_WAKE_OP */
        val = 0x7fffffff;
        val2 = 0x7fffffff;
        val3 = (1u << 28) | (0u << 24) | (1u << 12) | 0; /* FUTEX_OP_ADD, cmp EQ */
        break;
    default:
        val = 0x7fffffff;
        val2 = 0;
        break;
    }
    arm();
    register uint64_t r10 __asm__("r10") = val2;
    register uint64_t r8 __asm__("r8") = uaddr2;
    register uint64_t r9 __asm__("r9") = val3;
    __asm__ volatile("jmp *%[g]"
                     :
                     : "a"(202ull), "D"(uaddr), "S"(op), "d"(val), "r"(r10), "r"(r8), "r"(r9),
                       [g] "b"(syscall_gadget)
                     : "memory");
    __builtin_unreachable();
}

/* ---- forged rt_sigreturn ---- */

struct kucontext {
    uint64_t flags, link, ss_sp;
    int32_t ss_flags, pad;
    uint64_t ss_size;
    uint64_t gregs[23]; /* r8..r15, rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip, eflags, csgsfs, err, trapno, oldmask, cr2 */
    uint64_t fpstate;
    uint64_t reserved[8];
    uint64_t sigmask;
    uint8_t tail[1024]; /* where the kernel would find the siginfo */
};

static struct kucontext frame __attribute__((aligned(64)));
static uint8_t spin_stack[16384] __attribute__((aligned(16)));

static void __attribute__((noreturn)) spin_forever(void)
{
    /* About two minutes of TSC-bounded busy loop without any system call: longer than the
     * test's time limit, so a guest that cannot be preempted shows as a hang. */
    uint64_t start = __builtin_ia32_rdtsc();
    while (__builtin_ia32_rdtsc() - start < 300000000000ull)
        __asm__ volatile("" ::: "memory");
    for (;;)
        __asm__ volatile("" ::: "memory");
}

static int a_sigreturn(uint64_t gadget)
{
    memset(&frame, 0, sizeof frame);
    frame.gregs[16] = (uint64_t)(uintptr_t)spin_forever;                         /* rip */
    frame.gregs[15] = (uint64_t)(uintptr_t)(spin_stack + sizeof spin_stack - 8); /* rsp */
    frame.gregs[17] = 0x202;                                                     /* eflags */
    frame.gregs[18] = 0x33 | (0x2bull << 48);                                    /* cs, ss */
    frame.sigmask = 1ull << (SIGUSR1 - 1); /* block pvm's interrupt signal (10) */
    memset(spin_stack, 0, sizeof spin_stack);
    arm();
    __asm__ volatile("mov %[f], %%rsp\n\tjmp *%[g]"
                     :
                     : "a"(15ull), [f] "r"(&frame), [g] "r"(gadget)
                     : "memory");
    __builtin_unreachable();
}

/* ---- forged mapper completion ---- */

static volatile int spin_stop;

static void *completion_spinner(void *unused)
{
    (void)unused;
    volatile uint32_t *cmd = (volatile uint32_t *)(uintptr_t)U_MAPPER_CMD_BASE;
    volatile uint32_t *done = (volatile uint32_t *)(uintptr_t)U_MAPPER_DONE_BASE;
    while (!spin_stop) {
        uint32_t s = *cmd;
        *done = s;
        done[1] = 0; /* result: success */
    }
    return NULL;
}

#define FC_BASE 0x200000000000ull
#define FC_ITER 2000
#define FC_LEN (64u << 10)

static int magic_at(const volatile uint64_t *p)
{
    return p[0] == MAGIC0 && p[1] == MAGIC1;
}

static int a_completion(uint64_t unused)
{
    (void)unused;
    if (!readable(U_MAPPER_CMD_BASE, NULL) || !writable(U_MAPPER_DONE_BASE)) {
        /* Nothing to forge here (a switcher without a guest-writable completion page). */
        arm();
        say("completion: no writable completion page\n");
        return 0;
    }
    spin_stop = 0;
    pthread_t t;
    if (pthread_create(&t, NULL, completion_spinner, NULL) != 0)
        return 5;
    arm();
    long failed = 0, early = 0, early_magic = 0;
    for (long i = 0; i < FC_ITER; i++) {
        uint64_t addr = FC_BASE + (uint64_t)i * FC_LEN * 2;
        unsigned char *m = mmap((void *)(uintptr_t)addr, FC_LEN, PROT_READ | PROT_WRITE,
                                MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
        if (m == MAP_FAILED) {
            failed++;
            continue;
        }
        for (size_t off = 0; off < FC_LEN; off += PAGE)
            m[off] = 1;
        munmap(m, FC_LEN);
        /* Right after munmap returns, the range must already fault (a forged completion lets
         * the guest kernel go on before the mapper unmapped it). */
        for (size_t off = 0; off < FC_LEN; off += 4 * PAGE) {
            if (readable((uint64_t)(uintptr_t)m + off, NULL)) {
                early++;
                if (readable((uint64_t)(uintptr_t)m + off + 15, NULL) &&
                    magic_at((const volatile uint64_t *)(uintptr_t)(m + off)))
                    early_magic++;
            }
        }
    }
    spin_stop = 1;
    pthread_join(t, NULL);
    /* Every page unmapped above must fault now; none may show another process's memory. */
    long probes = 0, readable_pages = 0, magic = 0;
    for (long i = 0; i < FC_ITER; i++)
        for (size_t off = 0; off < FC_LEN; off += PAGE) {
            uint64_t p = FC_BASE + (uint64_t)i * FC_LEN * 2 + off;
            probes++;
            uint8_t v;
            if (readable(p, &v)) {
                readable_pages++;
                if (readable(p + 15, NULL) && magic_at((const volatile uint64_t *)(uintptr_t)p))
                    magic++;
            }
        }
    /* And nothing this process maps (as the guest says) holds the victim's magic. */
    long scanned = 0, own_magic = 0;
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    static uint64_t ranges[4096][2];
    int nr = 0;
    while (f && nr < 4096 && fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && hi > lo && hi <= 0x700000000000ul) {
            ranges[nr][0] = lo;
            ranges[nr][1] = hi;
            nr++;
        }
    }
    if (f)
        fclose(f);
    if (nr == 0) {
        /* The guest's /proc/self/maps may be empty: scan the image, the heap and the stack. */
        extern char __executable_start;
        uint64_t lo = (uint64_t)(uintptr_t)&__executable_start & ~(PAGE - 1);
        uint64_t brk_end = ((uint64_t)(uintptr_t)sbrk(0) + PAGE - 1) & ~(PAGE - 1);
        ranges[nr][0] = lo;
        ranges[nr][1] = brk_end;
        nr++;
        uint64_t sp = (uint64_t)(uintptr_t)&line & ~(PAGE - 1);
        ranges[nr][0] = sp - (256u << 10);
        ranges[nr][1] = sp + (256u << 10);
        nr++;
    }
    for (int r = 0; r < nr; r++)
        for (uint64_t p = ranges[r][0]; p < ranges[r][1]; p += PAGE) {
            if (!readable(p, NULL) || !readable(p + 15, NULL))
                continue;
            scanned++;
            if (magic_at((const volatile uint64_t *)(uintptr_t)p))
                own_magic++;
        }
    sayf("completion: mmap failures=%ld early-readable=%ld early-magic=%ld probes=%ld readable=%ld "
         "victim-magic=%ld scanned=%ld own-magic=%ld\n",
         failed, early, early_magic, probes, readable_pages, magic, scanned, own_magic);
    return early || early_magic || readable_pages || magic || own_magic ? 6 : 0;
}

/* ---- legacy entry points ---- */

static int a_int80(uint64_t unused)
{
    (void)unused;
    arm();
    long r;
    __asm__ volatile("int $0x80" : "=a"(r) : "a"(20L) : "rcx", "r11", "memory");
    sayf("int80: ret=%ld\n", r);
    return 0;
}

static int a_sysenter(uint64_t unused)
{
    (void)unused;
    arm();
    long r;
    __asm__ volatile("sysenter" : "=a"(r) : "a"(20L) : "rcx", "r11", "memory");
    sayf("sysenter: ret=%ld\n", r);
    return 0;
}

static int a_vsyscall(uint64_t unused)
{
    (void)unused;
    arm();
    long (*gtod)(struct timeval *, void *) = (long (*)(struct timeval *, void *))0xffffffffff600000ul;
    struct timeval tv;
    long r = gtod(&tv, NULL);
    sayf("vsyscall: ret=%ld\n", r);
    return 0;
}

/* ---- exhaustion ---- */

static int a_memory(uint64_t unused)
{
    (void)unused;
    arm();
    long mib = 0;
    for (;;) {
        unsigned char *m = mmap(NULL, 1u << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) {
            sayf("memory: mmap failed after %ld MiB: %s\n", mib, errno == ENOMEM ? "ENOMEM" : strerror(errno));
            return 0;
        }
        for (size_t off = 0; off < (1u << 20); off += PAGE)
            m[off] = (unsigned char)off | 1;
        mib++;
        if (mib > (1 << 20))
            return 7;
    }
}

static int a_vmas(uint64_t unused)
{
    (void)unused;
    arm();
    const long n = 100000;
    unsigned char *m = mmap(NULL, n * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        sayf("vmas: mmap failed: %s\n", strerror(errno));
        return 0;
    }
    long split = 0;
    for (long i = 1; i < n; i += 2) {
        if (mprotect(m + i * PAGE, PAGE, PROT_READ) != 0) {
            sayf("vmas: mprotect failed after %ld: %s\n", split, errno == ENOMEM ? "ENOMEM" : strerror(errno));
            break;
        }
        split++;
    }
    unsigned long s = 0;
    for (long i = 0; i < n; i++) {
        if (i % 2 == 0)
            m[i * PAGE] = 1;
        s += m[i * PAGE];
    }
    sayf("vmas: %ld pages, %ld made read-only, sum=%lu\n", n, split, s);
    return 0;
}

static int a_forkbomb(uint64_t unused)
{
    (void)unused;
    arm();
    int made = 0, err = 0, root = 1;
    /* Forking stops for everyone after 2 s (memory freed by exiting processes would let the
     * newest ones go on for a long time). */
    long deadline = now_ms() + 2000;
    for (;;) {
        if (now_ms() > deadline) {
            err = 0;
            break;
        }
        pid_t p = fork();
        if (p < 0) {
            err = errno;
            break;
        }
        if (p == 0) {
            root = 0;
            made = 0;
            continue;
        }
        made++;
    }
    if (!root) {
        /* Hold the slot a moment so that the limit is reached, then end (children are reaped
         * by pid 1 when their parents are gone). */
        usleep(300000);
        while (wait(NULL) > 0)
            ;
        _exit(0);
    }
    while (wait(NULL) > 0)
        ;
    if (err)
        sayf("forkbomb: root forked %d, then fork failed: %s\n", made,
             err == EAGAIN ? "EAGAIN" : err == ENOMEM ? "ENOMEM" : strerror(err));
    else
        sayf("forkbomb: root forked %d, no failure in 2 s\n", made);
    return 0;
}

/* ---- guest-kernel bugs the fuzzer found (tests/fuzz.rs), as single calls ---- */

static int k_mincore_wrap(uint64_t unused)
{
    (void)unused;
    static unsigned char vec[4096];
    arm();
    long r = syscall(SYS_mincore, 0x6fffef7ec000ul, 0xfffffffffffffd6dul, vec);
    sayf("mincore-wrap: ret=%ld errno=%d\n", r, r < 0 ? errno : 0);
    return 0;
}

static int k_file_mmap_huge(uint64_t unused)
{
    (void)unused;
    int fd = open("/tmp/hostile-small", O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, "x", 1) != 1)
        return 3;
    arm();
    void *p = mmap(NULL, 0x80000000ul, PROT_READ, MAP_PRIVATE, fd, 0);
    sayf("file-mmap-huge: %s\n", p == MAP_FAILED ? strerror(errno) : "mapped");
    return 0;
}

static int k_tmpfs_fill(uint64_t unused)
{
    (void)unused;
    int out = open("/tmp/hostile-big", O_WRONLY | O_CREAT | O_TRUNC, 0644), in = open("/dev/zero", O_RDONLY);
    if (out < 0 || in < 0)
        return 3;
    arm();
    long r = syscall(SYS_sendfile, out, in, NULL, 0x7ffff000ul);
    sayf("tmpfs-fill: ret=%ld\n", r);
    unlink("/tmp/hostile-big");
    return 0;
}

static int k_null_write_untouched(uint64_t unused)
{
    (void)unused;
    int fd = open("/dev/null", O_WRONLY);
    unsigned char *m = mmap(NULL, 4ul << 30, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (fd < 0 || m == MAP_FAILED)
        return 3;
    arm();
    long r = syscall(SYS_write, fd, m, 4ul << 30);
    sayf("null-write-untouched: ret=%ld\n", r);
    return 0;
}

static int k_populate_huge(uint64_t unused)
{
    (void)unused;
    arm();
    void *p = mmap(NULL, 1ul << 40, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_POPULATE, -1, 0);
    sayf("populate-huge: %s\n", p == MAP_FAILED ? strerror(errno) : "mapped");
    return 0;
}

static int k_writev_wrap(uint64_t unused)
{
    (void)unused;
    static char b[64] = "hostile";
    int fd = open("/tmp/hostile-wv", O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return 3;
    struct iovec v[3] = {{b, 0x7fffffffffffff00ull}, {b, 0x7fffffffffffff00ull}, {b, 0x300}};
    arm();
    long r = syscall(SYS_writev, fd, v, 3);
    sayf("writev-wrap: ret=%ld\n", r);
    unlink("/tmp/hostile-wv");
    return 0;
}

static int k_sendfile_huge(uint64_t unused)
{
    (void)unused;
    int out = open("/dev/null", O_WRONLY), in = open("/dev/zero", O_RDONLY);
    arm();
    long r = syscall(SYS_sendfile, out, in, NULL, 0x6fffef7fda7cul);
    sayf("sendfile-huge: ret=%ld\n", r);
    return 0;
}

static int k_tkill_init(uint64_t unused)
{
    (void)unused;
    arm();
    long r1 = syscall(SYS_tkill, 1, SIGKILL);
    long r2 = syscall(SYS_tgkill, 0, 1, SIGKILL);
    sayf("tkill-init: tkill=%ld tgkill=%ld\n", r1, r2);
    return 0;
}

static int k_orphan_exit_signal(uint64_t unused)
{
    (void)unused;
    arm();
    /* A process whose exit signal is SIGKILL outlives its parent: on reparenting Linux resets
     * the exit signal to SIGCHLD ("we don't want people slaying init"). */
    long g = syscall(SYS_clone, (long)SIGKILL, 0, 0, 0, 0);
    if (g == 0) {
        usleep(200000);
        _exit(0);
    }
    return 0;
}

/* ---- main ---- */

#define MAX_ATTACKS 80

static void add(struct attack *at, int *n, struct attack a)
{
    if (*n < MAX_ATTACKS)
        at[(*n)++] = a;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: hostile_guest MODE [CASE]\n");
        return 2;
    }
    const char *mode = argv[1];
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGPIPE, SIG_IGN);
    catch_faults();
    struct attack at[MAX_ATTACKS];
    int n = 0;
    long nv = vcpus();
    static char names[MAX_ATTACKS][48];
    if (!strcmp(mode, "shared")) {
        for (long v = 0; v < nv; v++) {
            snprintf(names[n], sizeof names[n], "pvcs-%ld", v);
            const char *name = names[n];
            add(at, &n, (struct attack){name, a_pvcs, (uint64_t)v, 0, 0});
        }
        add(at, &n, (struct attack){"pvcs-loop", a_pvcs_loop, 0, 0, 0});
        add(at, &n, (struct attack){"mapper-done", a_mapper_done, 0, 0, 0});
        add(at, &n, (struct attack){"stub-data", a_stub_data, 0, 0, 0});
        add(at, &n, (struct attack){"stacks", a_altstacks, 0, 0, 0});
        add(at, &n, (struct attack){"write-mapper-cmd", a_write_ro, U_MAPPER_CMD_BASE, 0, 0});
        add(at, &n, (struct attack){"write-stub-text", a_write_ro, STUB_BASE, 0, 0});
    } else if (!strcmp(mode, "utid")) {
        add(at, &n, (struct attack){"utid", a_utid, 0, 0, 0});
    } else if (!strcmp(mode, "jump")) {
        uint64_t pages = stub_image_pages();
        sayf("stub image: %llu readable pages\n", (unsigned long long)pages);
        for (uint64_t i = 0; i < pages && n < MAX_ATTACKS; i++) {
            snprintf(names[n], sizeof names[n], "jump-page-%llu", (unsigned long long)i);
            const char *name = names[n];
            add(at, &n, (struct attack){name, a_jump, STUB_BASE + i * PAGE, 0, 0});
        }
    } else if (!strcmp(mode, "futex")) {
        static const uint8_t syscall_ud2[] = {0x0f, 0x05, 0x0f, 0x0b};
        static const uint8_t syscall_only[] = {0x0f, 0x05};
        syscall_gadget = find_in_stub(syscall_ud2, sizeof syscall_ud2);
        if (!syscall_gadget)
            syscall_gadget = find_in_stub(syscall_only, sizeof syscall_only);
        sayf("futex: syscall in the stub text %s\n", syscall_gadget ? "found" : "not found");
        for (int priv = 0; priv < 2 && syscall_gadget; priv++)
            for (int op = 0; op <= 13; op++) {
                snprintf(names[n], sizeof names[n], "futex-%d%s", op, priv ? "-private" : "");
                const char *name = names[n];
                add(at, &n, (struct attack){name, a_futex, (uint64_t)(op | (priv ? 128 : 0)), 0, 0});
            }
    } else if (!strcmp(mode, "sigreturn")) {
        static const uint8_t restorer[] = {0xb8, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05};
        static const uint8_t syscall_only[] = {0x0f, 0x05};
        uint64_t g = find_in_stub(restorer, sizeof restorer);
        if (g)
            g += 5; /* the syscall itself; rax = 15 is set by the attacker */
        else
            g = find_in_stub(syscall_only, sizeof syscall_only);
        sayf("sigreturn: syscall in the stub text %s\n", g ? "found" : "not found");
        if (g)
            add(at, &n, (struct attack){"sigreturn", a_sigreturn, g, 1, 0});
    } else if (!strcmp(mode, "completion")) {
        for (int i = 0; i < 3; i++)
            add(at, &n, (struct attack){"completion", a_completion, 0, 0, 'm'});
    } else if (!strcmp(mode, "legacy")) {
        add(at, &n, (struct attack){"int80", a_int80, 0, 0, 0});
        add(at, &n, (struct attack){"sysenter", a_sysenter, 0, 0, 0});
        add(at, &n, (struct attack){"vsyscall", a_vsyscall, 0, 0, 0});
    } else if (!strcmp(mode, "memory")) {
        add(at, &n, (struct attack){"memory", a_memory, 0, 0, 0});
    } else if (!strcmp(mode, "vmas")) {
        add(at, &n, (struct attack){"vmas", a_vmas, 0, 0, 0});
    } else if (!strcmp(mode, "forkbomb")) {
        add(at, &n, (struct attack){"forkbomb", a_forkbomb, 0, 0, 0});
    } else if (!strcmp(mode, "kernel") && argc > 2) {
        static const struct {
            const char *name;
            int (*fn)(uint64_t);
        } bugs[] = {
            {"mincore-wrap", k_mincore_wrap},       {"file-mmap-huge", k_file_mmap_huge},
            {"tmpfs-fill", k_tmpfs_fill},           {"null-write-untouched", k_null_write_untouched},
            {"populate-huge", k_populate_huge},     {"writev-wrap", k_writev_wrap},
            {"sendfile-huge", k_sendfile_huge},     {"tkill-init", k_tkill_init},
            {"orphan-exit-signal", k_orphan_exit_signal},
        };
        for (size_t i = 0; i < sizeof bugs / sizeof bugs[0]; i++)
            if (!strcmp(argv[2], bugs[i].name))
                add(at, &n, (struct attack){bugs[i].name, bugs[i].fn, 0, 0, 0});
        if (!n) {
            fprintf(stderr, "unknown kernel case %s\n", argv[2]);
            return 2;
        }
    } else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }

    if (pipe(to_victim) != 0 || pipe(from_victim) != 0)
        return 3;
    pid_t v = fork();
    if (v < 0)
        return 4;
    if (v == 0) {
        close(to_victim[1]);
        close(from_victim[0]);
        victim();
    }
    close(to_victim[0]);
    close(from_victim[1]);
    round_trips(3, 'r');
    for (int i = 0; i < n; i++)
        run_attack(&at[i]);
    char q = 'q';
    (void)!write(to_victim[1], &q, 1);
    int status = 0;
    waitpid(v, &status, 0);
    if (WIFEXITED(status))
        sayf("victim: exited %d\n", WEXITSTATUS(status));
    else
        sayf("victim: signal %d\n", WIFSIGNALED(status) ? WTERMSIG(status) : -1);
    /* Let orphans of the attacks end (they are reparented to pid 1), then reap them. */
    usleep(400000);
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
    say("parent: done\n");
    return 0;
}
