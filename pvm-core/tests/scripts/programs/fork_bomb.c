/* Forks children that wait forever until fork fails; prints how many it made and the errno.
 *   fork_bomb reap    kills and reaps every child, exits 0
 *   fork_bomb orphan  exits 3 at once, leaving the children behind
 * Every child also dies after 60 s (alarm), so a native run cannot leave processes around. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_CHILDREN 10000

static pid_t children[MAX_CHILDREN];

int main(int argc, char **argv) {
    int orphan = argc > 1 && strcmp(argv[1], "orphan") == 0;
    int n = 0, err = 0;
    while (n < MAX_CHILDREN) {
        pid_t p = fork();
        if (p < 0) {
            err = errno;
            break;
        }
        if (p == 0) {
            alarm(60);
            for (;;)
                pause();
        }
        children[n++] = p;
    }
    printf("forked %d children, then fork failed: %s (%s)\n", n,
           err == EAGAIN ? "EAGAIN" : err == ENOMEM ? "ENOMEM" : "other errno", strerror(err));
    fflush(stdout);
    if (orphan)
        return 3;
    for (int i = 0; i < n; i++)
        kill(children[i], SIGKILL);
    int reaped = 0;
    for (int i = 0; i < n; i++) {
        int st;
        if (waitpid(children[i], &st, 0) == children[i] && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)
            reaped++;
    }
    printf("reaped %d children killed by SIGKILL\n", reaped);
    return 0;
}
