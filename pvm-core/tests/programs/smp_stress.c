/* SMP stress: threads, page faults, pipes, futexes, forks and signals at once, for a bounded
 * amount of work (argv[1] rounds per thread), with a deterministic summary that must equal the
 * native run. Each round a worker thread:
 *   - maps 1 MiB, touches and sums every page, unmaps it (demand paging, munmap flushes);
 *   - bumps a mutex-protected counter and meets the others at a barrier (futexes);
 *   - sends 512 bytes to its partner thread through a pipe and reads 512 back (blocking
 *     reads woken from another vCPU);
 *   - signals itself with tgkill(SIGUSR1) (a thread-directed handler);
 *   - every 4th round forks a child that touches its copy-on-write memory, reports a sum
 *     through a pipe and exits with a status the parent checks with waitpid;
 *   - every 8th round sleeps 1 ms (timers).
 * The main thread meanwhile sends SIGUSR2 to the process and waits until some thread ran the
 * handler, ROUNDS times. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define NT 4
#define MAP (1 << 20)

static int rounds;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_barrier_t bar;
static long counter;
static int pipes[NT][2];
static volatile sig_atomic_t usr1[NT];
static volatile sig_atomic_t usr2_total;
static __thread int my_id;
static unsigned char cow[64 * 4096];

static void on_usr1(int s)
{
    (void)s;
    usr1[my_id]++;
}

static void on_usr2(int s)
{
    (void)s;
    __atomic_fetch_add(&usr2_total, 1, __ATOMIC_SEQ_CST);
}

static void die(const char *what)
{
    perror(what);
    exit(99);
}

static long touch_and_sum(unsigned char *p, size_t len, int seed)
{
    long sum = 0;
    for (size_t off = 0; off < len; off += 4096) {
        p[off] = (unsigned char)(off / 4096 + seed);
        sum += p[off];
    }
    return sum;
}

static void full_write(int fd, const void *buf, size_t n)
{
    const char *b = buf;
    while (n > 0) {
        ssize_t w = write(fd, b, n);
        if (w <= 0)
            die("write");
        b += w;
        n -= (size_t)w;
    }
}

static void full_read(int fd, void *buf, size_t n)
{
    char *b = buf;
    while (n > 0) {
        ssize_t r = read(fd, b, n);
        if (r <= 0)
            die("read");
        b += r;
        n -= (size_t)r;
    }
}

static long fork_child(int id, int r)
{
    int fds[2];
    if (pipe(fds) != 0)
        die("pipe");
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        close(fds[0]);
        long sum = touch_and_sum(cow, sizeof cow, id + r);
        full_write(fds[1], &sum, sizeof sum);
        _exit((id * 16 + r) & 0x7f);
    }
    close(fds[1]);
    long sum = 0;
    full_read(fds[0], &sum, sizeof sum);
    close(fds[0]);
    int st = 0;
    if (waitpid(pid, &st, 0) != pid)
        die("waitpid");
    if (!WIFEXITED(st) || WEXITSTATUS(st) != ((id * 16 + r) & 0x7f)) {
        fprintf(stderr, "child status %#x\n", st);
        exit(98);
    }
    return sum + WEXITSTATUS(st);
}

static void *worker(void *arg)
{
    my_id = (int)(long)arg;
    int id = my_id, partner = id ^ 1;
    long acc = 0;
    char out[512], in[512];
    for (int r = 0; r < rounds; r++) {
        unsigned char *m = mmap(NULL, MAP, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
            die("mmap");
        acc += touch_and_sum(m, MAP, id + r);
        if (munmap(m, MAP) != 0)
            die("munmap");

        pthread_mutex_lock(&mu);
        counter += id + 1;
        pthread_mutex_unlock(&mu);
        pthread_barrier_wait(&bar);

        memset(out, 'a' + (id + r) % 26, sizeof out);
        full_write(pipes[partner][1], out, sizeof out);
        full_read(pipes[id][0], in, sizeof in);
        acc += in[0] + in[sizeof in - 1];

        syscall(SYS_tgkill, getpid(), (pid_t)syscall(SYS_gettid), SIGUSR1);

        if (r % 4 == 0)
            acc += fork_child(id, r);
        if (r % 8 == 0) {
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
        if (r % 3 == 0)
            sched_yield();
    }
    return (void *)acc;
}

int main(int argc, char **argv)
{
    rounds = argc > 1 ? atoi(argv[1]) : 16;
    if (rounds < 1)
        rounds = 1;
    setvbuf(stdout, NULL, _IONBF, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_handler = on_usr2;
    sigaction(SIGUSR2, &sa, NULL);
    for (int i = 0; i < NT; i++)
        if (pipe(pipes[i]) != 0)
            die("pipe");
    if (pthread_barrier_init(&bar, NULL, NT) != 0)
        die("barrier");
    pthread_t th[NT];
    for (long i = 0; i < NT; i++)
        if (pthread_create(&th[i], NULL, worker, (void *)i) != 0)
            die("pthread_create");
    for (int i = 0; i < rounds; i++) {
        int before = usr2_total;
        kill(getpid(), SIGUSR2);
        while (usr2_total == before)
            sched_yield();
    }
    long total = 0;
    for (int i = 0; i < NT; i++) {
        void *ret;
        pthread_join(th[i], &ret);
        total += (long)ret;
    }
    printf("rounds %d threads %d\n", rounds, NT);
    printf("counter %ld\n", counter);
    printf("checksum %ld\n", total);
    for (int i = 0; i < NT; i++)
        printf("thread %d usr1 %d\n", i, (int)usr1[i]);
    printf("usr2 %d\n", (int)usr2_total);
    return 0;
}
