/* sigsuspend() must return at once when the mask it installs unblocks a signal that is
 * already pending (busybox ash's `wait` blocks every signal, checks for children, then
 * sigsuspends: a SIGCHLD that came in between must not be slept through).
 *   1. SIGUSR1 sent to itself while blocked, then sigsuspend(empty mask).
 *   2. SIGCHLD of a child that exited while SIGCHLD was blocked (waitid WNOWAIT waits for the
 *      exit without reaping), then sigsuspend(empty mask), then the child is reaped.
 * alarm(20) turns a hang into a death by SIGALRM (status 142). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t got_usr1, got_chld;

static void on_signal(int sig)
{
    if (sig == SIGUSR1)
        got_usr1 = 1;
    if (sig == SIGCHLD)
        got_chld = 1;
}

static void suspend(const char *what, volatile sig_atomic_t *flag)
{
    sigset_t empty;
    sigemptyset(&empty);
    errno = 0;
    int r = sigsuspend(&empty);
    int e = errno;
    printf("%s: sigsuspend returned %d (%s), handler ran: %s\n", what, r, e == EINTR ? "EINTR" : strerror(e),
           *flag ? "yes" : "no");
    sigset_t now;
    sigprocmask(SIG_SETMASK, NULL, &now);
    printf("%s: mask restored: %s\n", what, sigismember(&now, SIGUSR1) && sigismember(&now, SIGCHLD) ? "yes" : "no");
}

int main(void)
{
    alarm(20);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGCHLD, &sa, NULL);
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigaddset(&block, SIGCHLD);
    sigprocmask(SIG_BLOCK, &block, NULL);

    kill(getpid(), SIGUSR1);
    printf("usr1 pending before sigsuspend: %s\n", got_usr1 ? "no (delivered early)" : "yes");
    suspend("usr1", &got_usr1);

    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0)
        _exit(3);
    siginfo_t info;
    memset(&info, 0, sizeof info);
    if (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOWAIT) != 0) {
        perror("waitid");
        return 1;
    }
    printf("child exited (not reaped), status %d; chld pending: %s\n", info.si_status, got_chld ? "no" : "yes");
    suspend("chld", &got_chld);
    int status = 0;
    if (waitpid(pid, &status, 0) != pid) {
        perror("waitpid");
        return 1;
    }
    printf("reaped: exit %d\n", WEXITSTATUS(status));
    return 0;
}
