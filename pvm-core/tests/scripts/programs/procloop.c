/* Creates N processes one after another and waits for each:
 *   procloop fork N   fork, the child _exits(0)
 *   procloop exec N   fork, the child execs /bin/true
 *   procloop sh N     fork, the child execs /bin/sh -c true
 * Prints "MODE N ok" (or the first failure, exit 1); with a third argument "time" also the
 * mean wall time per process in microseconds (CLOCK_MONOTONIC). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: procloop fork|exec|sh N [time]\n");
        return 2;
    }
    const char *mode = argv[1];
    int n = atoi(argv[2]);
    double t0 = now_us();
    for (int i = 0; i < n; i++) {
        pid_t p = fork();
        if (p < 0) {
            printf("fork %d failed\n", i);
            return 1;
        }
        if (p == 0) {
            if (strcmp(mode, "exec") == 0)
                execl("/bin/true", "true", (char *)NULL);
            else if (strcmp(mode, "sh") == 0)
                execl("/bin/sh", "sh", "-c", "true", (char *)NULL);
            else
                _exit(0);
            _exit(127);
        }
        int st;
        if (waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            printf("process %d of %s: status %#x\n", i, mode, st);
            return 1;
        }
    }
    double per = (now_us() - t0) / (n > 0 ? n : 1);
    printf("%s %d ok\n", mode, n);
    if (argc > 3 && strcmp(argv[3], "time") == 0)
        printf("%s: %.1f us per process\n", mode, per);
    return 0;
}
