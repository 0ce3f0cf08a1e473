/* Dies by the signal that argv[1] names, the way real programs do:
 *   abort  abort()                       SIGABRT (134)
 *   fpe    integer division by zero      SIGFPE  (136)
 *   ill    ud2                           SIGILL  (132)
 *   term   raise(SIGTERM)                SIGTERM (143)
 *   segv-handler  a SIGSEGV handler catches a NULL write, reports the fault address and
 *                 exits 7 from the handler
 * Each mode prints a line first (flushed), so stdout is compared too. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void on_segv(int sig, siginfo_t *info, void *ctx)
{
    (void)ctx;
    char msg[128];
    int n = snprintf(msg, sizeof msg, "caught signal %d at address %p code %d\n", sig, info->si_addr,
                     info->si_code);
    if (write(1, msg, (size_t)n) < 0)
        _exit(8);
    _exit(7);
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    printf("mode %s\n", mode);
    fflush(stdout);
    if (!strcmp(mode, "abort"))
        abort();
    if (!strcmp(mode, "fpe")) {
        volatile int num = 7, zero = 0;
        printf("%d\n", num / zero);
    }
    if (!strcmp(mode, "ill"))
        __asm__ volatile("ud2");
    if (!strcmp(mode, "term"))
        raise(SIGTERM);
    if (!strcmp(mode, "segv-handler")) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_segv;
        sa.sa_flags = SA_SIGINFO;
        sigaction(SIGSEGV, &sa, NULL);
        *(volatile int *)0x1000 = 1;
    }
    printf("still alive (wrong)\n");
    return 0;
}
