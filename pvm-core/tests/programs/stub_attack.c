/* Attacks the host stub area that pvm's software backend maps into every guest user process
 * (addresses from guest-abi/src/layout.rs). argv[1] selects the attack:
 *   pvcs        fill this space's PVCS pages (vCPU 0 and 1) with garbage, then make syscalls
 *   pvcs-all    the same over the PVCS of every online vCPU, from a loop of syscalls
 *   pvcs-loop   keep rewriting the PVCS with garbage between syscalls, 1000 times
 *   mapper-done fill the mapper completion page with garbage, then touch 16 MiB of new memory
 *   mapper-cmd  write to the mapper command area (read-only in U)
 *   stub-write  write to the stub text
 *   stub-jump   call into the stub text at offsets 0, 0x40 and 0x1000 (argv[2] picks one)
 *   fork        fork a child that runs the pvcs and stub-jump attacks; the parent must survive
 *   stub-sleep  fork a child that jumps onto a `syscall` of the stub text with FUTEX_WAIT on
 *               its own PVCS state word (it sleeps in the host while the guest kernel thinks
 *               it runs user code); the parent waits and reports how the child ended
 * Natively these addresses are unmapped: every mode but fork dies with SIGSEGV there. */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define STUB_BASE 0x7fe000000000ull
#define U_PVCS_BASE (STUB_BASE + 0x10000000ull)
#define PVCS_SIZE (16u << 10)
#define U_MAPPER_CMD_BASE (STUB_BASE + 0x20000000ull)
#define U_MAPPER_DONE_BASE (U_MAPPER_CMD_BASE + 0x100000ull)

static uint64_t rng = 0x243f6a8885a308d3ull;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void garbage(uint64_t base, uint64_t len)
{
    volatile uint64_t *p = (volatile uint64_t *)(uintptr_t)base;
    for (uint64_t i = 0; i < len / 8; i++)
        p[i] = next();
}

static void say(const char *s)
{
    /* Raw write(2): no stdio state that garbage could have touched. */
    syscall(SYS_write, 1, s, strlen(s));
}

static int attack(const char *mode, const char *arg)
{
    if (!strcmp(mode, "pvcs")) {
        garbage(U_PVCS_BASE, PVCS_SIZE);
        say("pvcs overwritten\n");
        for (int i = 0; i < 100; i++)
            syscall(SYS_getpid);
        say("syscalls after pvcs garbage returned\n");
        return 0;
    }
    if (!strcmp(mode, "pvcs-all")) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        for (int round = 0; round < 200; round++) {
            for (long c = 0; c < cpus; c++)
                garbage(U_PVCS_BASE + (uint64_t)c * PVCS_SIZE, PVCS_SIZE);
            syscall(SYS_getpid);
        }
        printf("pvcs of %ld vCPUs overwritten 200 times\n", cpus);
        return 0;
    }
    if (!strcmp(mode, "pvcs-loop")) {
        for (int i = 0; i < 1000; i++) {
            garbage(U_PVCS_BASE, PVCS_SIZE);
            syscall(SYS_getppid);
        }
        say("pvcs loop done\n");
        return 0;
    }
    if (!strcmp(mode, "mapper-done")) {
        garbage(U_MAPPER_DONE_BASE, 4096);
        say("mapper completion page overwritten\n");
        size_t n = 16u << 20;
        unsigned char *m = malloc(n);
        if (!m)
            return 3;
        memset(m, 0x5a, n);
        unsigned long s = 0;
        for (size_t i = 0; i < n; i += 4096)
            s += m[i];
        printf("touched 16 MiB, sum=%lu\n", s);
        return 0;
    }
    if (!strcmp(mode, "mapper-cmd")) {
        garbage(U_MAPPER_CMD_BASE, 4096);
        say("mapper command area written (wrong)\n");
        return 0;
    }
    if (!strcmp(mode, "stub-write")) {
        garbage(STUB_BASE, 4096);
        say("stub text written (wrong)\n");
        return 0;
    }
    if (!strcmp(mode, "stub-jump")) {
        uint64_t off = arg ? strtoull(arg, NULL, 0) : 0;
        void (*f)(void) = (void (*)(void))(uintptr_t)(STUB_BASE + off);
        say("jumping into the stub text\n");
        f();
        say("returned from the stub text\n");
        return 0;
    }
    fprintf(stderr, "unknown mode %s\n", mode);
    return 2;
}

/* The first `syscall` instruction (0f 05) of the stub text. */
static uint64_t stub_syscall_site(void)
{
    const volatile uint8_t *t = (const volatile uint8_t *)(uintptr_t)STUB_BASE;
    for (uint64_t i = 0; i < 0x10000; i++)
        if (t[i] == 0x0f && t[i + 1] == 0x05)
            return STUB_BASE + i;
    return 0;
}

static void sleep_in_stub(void)
{
    uint64_t site = stub_syscall_site();
    volatile uint32_t *state = (volatile uint32_t *)(uintptr_t)U_PVCS_BASE;
    if (!site)
        _exit(3);
    say("sleeping in the stub\n");
    uint32_t current = *state;
    /* No call between these and the asm: a call would clobber the registers. */
    register uint64_t target __asm__("r8") = site;
    register uint64_t word __asm__("rdi") = U_PVCS_BASE;
    register uint64_t val __asm__("rdx") = current;
    register uint64_t nr __asm__("rax") = SYS_futex;
    __asm__ volatile("xor %%esi, %%esi\n\txor %%r10d, %%r10d\n\tjmp *%0"
                     :: "r"(target), "r"(word), "r"(val), "r"(nr) : "rsi", "r10", "memory");
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    if (!strcmp(argv[1], "stub-sleep")) {
        fflush(stdout);
        pid_t pid = fork();
        if (pid < 0)
            return 4;
        if (pid == 0) {
            sleep_in_stub();
            _exit(0);
        }
        int status = 0;
        if (waitpid(pid, &status, 0) != pid)
            return 5;
        if (WIFSIGNALED(status))
            printf("child killed by signal %d\n", WTERMSIG(status));
        else
            printf("child exited with %d\n", WEXITSTATUS(status));
        printf("parent alive\n");
        return 0;
    }
    if (!strcmp(argv[1], "fork")) {
        const char *modes[] = {"pvcs", "pvcs-loop", "stub-jump", "stub-write"};
        for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
            fflush(stdout);
            pid_t pid = fork();
            if (pid < 0) {
                perror("fork");
                return 4;
            }
            if (pid == 0)
                _exit(attack(modes[i], NULL));
            int status = 0;
            if (waitpid(pid, &status, 0) != pid) {
                perror("waitpid");
                return 5;
            }
            /* The child's fate varies (it may survive, or die by a signal); only the parent's
             * survival is checked, so print the class without the detail. */
            fprintf(stderr, "child %s: wait status 0x%x\n", modes[i], (unsigned)status);
            printf("child %s: %s\n", modes[i], WIFEXITED(status) || WIFSIGNALED(status) ? "ended" : "?");
        }
        printf("parent alive\n");
        return 0;
    }
    return attack(argv[1], argc > 2 ? argv[2] : NULL);
}
