/* smp_touch THREADS MIB ROUNDS [SLEEP_MS]: THREADS threads at once, each round mapping its own
 * MIB/THREADS MiB of anonymous memory, writing a pattern (thread, round, page) into every
 * 4 KiB page and reading it all back; prints "ok THREADS MIB ROUNDS" when every page held
 * what its thread wrote, "bad ..." otherwise. With SLEEP_MS the process then sleeps that
 * long (while a test reads its threads' placement). Deterministic output. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

static long bytes, rounds;
static volatile int bad;

static void *worker(void *arg) {
    long id = (long)arg;
    for (long r = 0; r < rounds; r++) {
        uint64_t *p = mmap(NULL, (size_t)bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) { bad = 1; return NULL; }
        long words = bytes / 8;
        for (long i = 0; i < words; i += 512) p[i] = (uint64_t)id << 48 | (uint64_t)r << 32 | (uint64_t)i;
        for (long i = 0; i < words; i += 512)
            if (p[i] != ((uint64_t)id << 48 | (uint64_t)r << 32 | (uint64_t)i)) bad = 1;
        munmap(p, (size_t)bytes);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 4) return 2;
    long threads = atol(argv[1]), mib = atol(argv[2]);
    rounds = atol(argv[3]);
    if (threads < 1 || threads > 16 || mib < 1 || rounds < 1) return 2;
    bytes = (mib << 20) / threads;
    pthread_t t[16];
    for (long i = 0; i < threads; i++) pthread_create(&t[i], NULL, worker, (void *)i);
    for (long i = 0; i < threads; i++) pthread_join(t[i], NULL);
    printf("%s %ld %ld %ld\n", bad ? "bad" : "ok", threads, mib, rounds);
    fflush(stdout);
    if (argc > 4) {
        long ms = atol(argv[4]);
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
        nanosleep(&ts, NULL);
    }
    return bad;
}
