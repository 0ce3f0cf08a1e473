/* A CPU-bound child must not starve its parent: the parent sleeps 4 x 50 ms while the child
 * spins, prints "alive", kills the child and reports how it died. */
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(void) {
    pid_t child = fork();
    if (child < 0) {
        perror("fork");
        return 1;
    }
    if (child == 0) {
        volatile unsigned long n = 0;
        for (;;)
            n++;
    }
    for (int i = 0; i < 4; i++) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    printf("alive\n");
    fflush(stdout);
    kill(child, SIGKILL);
    int st = 0;
    if (waitpid(child, &st, 0) != child) {
        perror("waitpid");
        return 1;
    }
    if (WIFSIGNALED(st))
        printf("child killed by signal %d\n", WTERMSIG(st));
    else
        printf("child ended otherwise: status %#x\n", st);
    return 0;
}
