/* Threads: 8 pthreads add to a mutex-protected counter, join with results; a condvar handoff, a
 * timed wait that times out, pthread_kill of a thread, gettid. Output must equal native. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static long counter;
static int ready;
static volatile int got_usr1;
static volatile pid_t usr1_tid;

static void *worker(void *arg)
{
    long id = (long)arg;
    for (int i = 0; i < 10000; i++) {
        pthread_mutex_lock(&mu);
        counter += 1;
        pthread_mutex_unlock(&mu);
        if (i % 1000 == 0)
            sched_yield();
    }
    return (void *)(id * 10);
}

static void on_usr1(int sig) { (void)sig; usr1_tid = syscall(SYS_gettid); got_usr1 = 1; }

static void *waiter(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    while (!ready)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    /* wait for a signal sent to this thread */
    while (!got_usr1)
        usleep(1000);
    return (void *)(long)(usr1_tid == syscall(SYS_gettid));
}

int main(void)
{
    pthread_t th[8];
    for (long i = 0; i < 8; i++)
        if (pthread_create(&th[i], NULL, worker, (void *)i)) { printf("create failed\n"); return 1; }
    long sum = 0;
    for (int i = 0; i < 8; i++) { void *r; pthread_join(th[i], &r); sum += (long)r; }
    printf("counter %ld (expect 80000), join sum %ld (expect 280)\n", counter, sum);

    /* condvar + tgkill to a specific thread with a per-thread mask */
    signal(SIGUSR1, on_usr1);
    sigset_t s; sigemptyset(&s); sigaddset(&s, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &s, NULL);       /* main blocks USR1; the new thread inherits... */
    pthread_t w;
    pthread_create(&w, NULL, waiter, NULL);
    pthread_sigmask(SIG_UNBLOCK, &s, NULL);
    pthread_mutex_lock(&mu); ready = 1; pthread_cond_broadcast(&cv); pthread_mutex_unlock(&mu);
    usleep(20000);
    /* the waiter blocks USR1 (inherited); unblock happens only for main: send to waiter anyway after it unblocks? no: use pthread_kill to main? */
    pthread_kill(w, SIGUSR1);                   /* pending on w (blocked there) */
    usleep(20000);
    printf("usr1 while blocked in waiter: %d\n", got_usr1);
    /* timed wait times out */
    struct timespec ts; clock_gettime(CLOCK_REALTIME, &ts); ts.tv_nsec += 50 * 1000000; if (ts.tv_nsec >= 1000000000) { ts.tv_sec++; ts.tv_nsec -= 1000000000; }
    pthread_mutex_lock(&mu);
    int rc = pthread_cond_timedwait(&cv, &mu, &ts);
    pthread_mutex_unlock(&mu);
    printf("timedwait: %s\n", rc == ETIMEDOUT ? "ETIMEDOUT" : "other");
    /* let the waiter take its signal: deliver to main instead, which has it unblocked */
    pthread_kill(pthread_self(), SIGUSR1);
    void *r; 
    got_usr1 = 1; /* release the waiter loop */
    pthread_join(w, &r);
    printf("waiter done\n");
    printf("gettid==getpid in main: %d\n", (pid_t)syscall(SYS_gettid) == getpid());
    return 0;
}
