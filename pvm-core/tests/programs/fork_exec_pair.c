/* Two fork+exec+wait loops in parallel (the `fork_exec_x2` benchmark's shape): address spaces
 * are created (LOAD_PGTBL) and released (RELEASE_PGTBL) on both vCPUs at once.
 *
 *   fork_exec_pair N     each of two children runs N rounds of fork, exec of itself with
 *                        `exit`, waitpid; prints "ok N" when every round exited 0
 *   fork_exec_pair exit  exits 0 at once
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *self;

static int loop(int n) {
    for (int i = 0; i < n; i++) {
        pid_t p = fork();
        if (p < 0) {
            perror("fork");
            return 1;
        }
        if (p == 0) {
            execl(self, self, "exit", (char *)0);
            _exit(127);
        }
        int st;
        if (waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "round %d: child status %#x\n", i, st);
            return 1;
        }
    }
    return 0;
}

int main(int argc, char **argv) {
    self = argv[0];
    if (argc > 1 && strcmp(argv[1], "exit") == 0) return 0;
    int n = argc > 1 ? atoi(argv[1]) : 100;
    pid_t loops[2];
    for (int l = 0; l < 2; l++) {
        loops[l] = fork();
        if (loops[l] < 0) {
            perror("fork");
            return 1;
        }
        if (loops[l] == 0) _exit(loop(n));
    }
    int bad = 0;
    for (int l = 0; l < 2; l++) {
        int st;
        bad |= waitpid(loops[l], &st, 0) != loops[l] || !WIFEXITED(st) || WEXITSTATUS(st) != 0;
    }
    if (bad) return 1;
    printf("ok %d\n", n);
    return 0;
}
