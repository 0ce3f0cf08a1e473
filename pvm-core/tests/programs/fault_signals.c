/* CPU faults reach user handlers as Linux delivers them: signal, si_code, si_addr, and the
 * trap number, error code and CR2 in uc_mcontext; blocked or ignored fault signals and a fault
 * inside its own handler kill (checked in forked children). Output must equal native. */
#define _GNU_SOURCE
#include <signal.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <ucontext.h>
#include <sys/mman.h>
#include <sys/wait.h>

static sigjmp_buf jb;
static volatile int hits;
static void h(int sig, siginfo_t *si, void *uc_)
{
    ucontext_t *uc = uc_;
    hits++;
    printf("sig %d code %d addr %s trapno %lld err %llx cr2 %s\n", sig, si->si_code,
           si->si_addr ? "nonzero" : "0", (long long)uc->uc_mcontext.gregs[REG_TRAPNO],
           (unsigned long long)uc->uc_mcontext.gregs[REG_ERR],
           uc->uc_mcontext.gregs[REG_TRAPNO] != 14 ? "-" : uc->uc_mcontext.gregs[REG_CR2] == (long)si->si_addr ? "=addr" : "wrong");
    fflush(stdout);
    siglongjmp(jb, 1);
}
static void inst(int sig, int flags)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = h;
    sa.sa_flags = SA_SIGINFO | flags;
    sigaction(sig, &sa, NULL);
}
static void child(const char *what, void (*fn)(void))
{
    pid_t p = fork();
    if (p == 0) { fn(); printf("%s survived (wrong)\n", what); _exit(0); }
    int st; waitpid(p, &st, 0);
    printf("%s: %s %d\n", what, WIFSIGNALED(st) ? "signal" : "exit", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
    fflush(stdout);
}
static void blocked_segv(void) { sigset_t s; sigemptyset(&s); sigaddset(&s, SIGSEGV); sigprocmask(SIG_BLOCK, &s, 0); inst(SIGSEGV, 0); *(volatile int *)8 = 1; }
static void ignored_fpe(void) { signal(SIGFPE, SIG_IGN); volatile int z = 0; printf("%d\n", 5 / z); }
static void nested(int sig, siginfo_t *si, void *uc) { (void)sig; (void)si; (void)uc; *(volatile int *)16 = 1; }
static void fault_in_handler(void) { struct sigaction sa; memset(&sa, 0, sizeof sa); sa.sa_sigaction = nested; sa.sa_flags = SA_SIGINFO; sigaction(SIGSEGV, &sa, 0); *(volatile int *)8 = 1; }
static void resethand(void) { inst(SIGILL, SA_RESETHAND); if (sigsetjmp(jb, 1) == 0) __asm__ volatile("ud2"); __asm__ volatile("ud2"); }
static void trap_kill(void) { __asm__ volatile("int3"); }

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    inst(SIGSEGV, 0); inst(SIGFPE, 0); inst(SIGILL, 0); inst(SIGTRAP, 0); inst(SIGBUS, 0);
    if (sigsetjmp(jb, 1) == 0) *(volatile int *)0x1000 = 1;
    char *ro = mmap(0, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (sigsetjmp(jb, 1) == 0) ro[5] = 1;
    if (sigsetjmp(jb, 1) == 0) { volatile int z = 0; printf("%d\n", 7 / z); }
    if (sigsetjmp(jb, 1) == 0) __asm__ volatile("ud2");
    if (sigsetjmp(jb, 1) == 0) __asm__ volatile("int3");
    if (sigsetjmp(jb, 1) == 0) __asm__ volatile("hlt");
    if (sigsetjmp(jb, 1) == 0) { volatile long x = 0; __asm__ volatile("movq %0, %%rax; movq $0x8000000000000000, %%rbx; movq (%%rbx), %%rax" :: "r"(x) : "rax", "rbx"); }
    /* SA_NODEFER: a second fault inside the handler reaches the handler again */
    printf("hits %d\n", hits);
    child("blocked segv", blocked_segv);
    child("ignored fpe", ignored_fpe);
    child("fault in handler", fault_in_handler);
    child("resethand", resethand);
    signal(SIGTRAP, SIG_DFL);
    child("int3 default", trap_kill);
    return 0;
}
