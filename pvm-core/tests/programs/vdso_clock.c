/* The vDSO: AT_SYSINFO_EHDR points at an ELF shared object whose clock_gettime the C library
 * uses (no syscall), agreeing with the syscall and monotonic across threads.
 * Usage: vdso_clock check | loop N */
#define _GNU_SOURCE
#include <elf.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static uint64_t ns_of(const struct timespec *t) { return (uint64_t)t->tv_sec * 1000000000u + (uint64_t)t->tv_nsec; }

static uint64_t lib_ns(clockid_t c) {
    struct timespec t;
    if (clock_gettime(c, &t) != 0) { perror("clock_gettime"); exit(1); }
    return ns_of(&t);
}

static uint64_t sys_ns(clockid_t c) {
    struct timespec t;
    if (syscall(SYS_clock_gettime, c, &t) != 0) { perror("SYS_clock_gettime"); exit(1); }
    return ns_of(&t);
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t last;
static int backwards;

static void *worker(void *arg) {
    (void)arg;
    for (int i = 0; i < 20000; i++) {
        pthread_mutex_lock(&lock);
        uint64_t n = lib_ns(CLOCK_MONOTONIC);
        if (n < last) backwards++;
        last = n;
        pthread_mutex_unlock(&lock);
    }
    return NULL;
}

static int check(void) {
    const unsigned char *ehdr = (const unsigned char *)getauxval(AT_SYSINFO_EHDR);
    printf("AT_SYSINFO_EHDR present: %s\n", ehdr ? "yes" : "no");
    if (!ehdr) return 1;
    printf("ELF shared object: %s\n", memcmp(ehdr, ELFMAG, SELFMAG) == 0 && ((const Elf64_Ehdr *)ehdr)->e_type == ET_DYN ? "yes" : "no");
    /* The library's value brackets the syscall's, for each clock the vDSO serves. */
    const clockid_t clocks[] = {CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_MONOTONIC_RAW, CLOCK_BOOTTIME};
    const char *names[] = {"REALTIME", "MONOTONIC", "MONOTONIC_RAW", "BOOTTIME"};
    for (unsigned i = 0; i < sizeof clocks / sizeof clocks[0]; i++) {
        uint64_t a = lib_ns(clocks[i]), s = sys_ns(clocks[i]), b = lib_ns(clocks[i]);
        printf("%s: library <= syscall <= library: %s\n", names[i], a <= s && s <= b ? "yes" : "no");
    }
    /* Coarse clocks: within one tick of the fine clock (and never ahead of it). */
    uint64_t c = lib_ns(CLOCK_MONOTONIC_COARSE), f = lib_ns(CLOCK_MONOTONIC);
    struct timespec res;
    clock_getres(CLOCK_MONOTONIC_COARSE, &res);
    printf("MONOTONIC_COARSE within a tick: %s\n", c <= f && f - c <= 2 * ns_of(&res) + 1000000 ? "yes" : "no");
    struct timespec r1, r2;
    clock_getres(CLOCK_MONOTONIC, &r1);
    syscall(SYS_clock_getres, CLOCK_MONOTONIC, &r2);
    printf("clock_getres agrees with the syscall: %s\n", ns_of(&r1) == ns_of(&r2) ? "yes" : "no");
    /* gettimeofday and time agree with CLOCK_REALTIME. */
    struct timeval tv;
    uint64_t r0 = lib_ns(CLOCK_REALTIME);
    gettimeofday(&tv, NULL);
    time_t tt = time(NULL);
    uint64_t r3 = lib_ns(CLOCK_REALTIME);
    uint64_t tvn = (uint64_t)tv.tv_sec * 1000000000u + (uint64_t)tv.tv_usec * 1000u;
    printf("gettimeofday between two REALTIME reads: %s\n", tvn + 1000 >= r0 && tvn <= r3 ? "yes" : "no");
    printf("time between two REALTIME reads: %s\n", (uint64_t)tt >= r0 / 1000000000u && (uint64_t)tt <= r3 / 1000000000u ? "yes" : "no");
    /* CPU-time clocks are not served by the vDSO: the fallback syscall still works. */
    struct timespec cpu;
    printf("PROCESS_CPUTIME_ID works: %s\n", clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu) == 0 ? "yes" : "no");
    printf("invalid clock fails: %s\n", clock_gettime(12345, &cpu) != 0 ? "yes" : "no");
    /* A forked child shares the mapping. */
    uint64_t before = lib_ns(CLOCK_MONOTONIC);
    pid_t pid = fork();
    if (pid == 0) _exit(lib_ns(CLOCK_MONOTONIC) >= before ? 0 : 1);
    int st = -1;
    waitpid(pid, &st, 0);
    printf("clock in a forked child: %s\n", WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "yes" : "no");
    /* The text pages come back after MADV_DONTNEED (Linux: the special mapping's fault
     * handler; pvm: the kernel's frames again). */
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)ehdr;
    const Elf64_Phdr *ph = (const Elf64_Phdr *)(ehdr + eh->e_phoff);
    size_t text = 0;
    for (int i = 0; i < eh->e_phnum; i++)
        if (ph[i].p_type == PT_LOAD) text = (ph[i].p_vaddr + ph[i].p_memsz + 4095) & ~4095ul;
    int rc = madvise((void *)ehdr, text, MADV_DONTNEED);
    printf("vdso works after MADV_DONTNEED: %s\n", rc == 0 && memcmp(ehdr, ELFMAG, SELFMAG) == 0 && lib_ns(CLOCK_MONOTONIC) >= before ? "yes" : "no");
    pthread_t th[4];
    for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, worker, NULL);
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    printf("monotonic across threads: %s\n", backwards == 0 ? "yes" : "no");
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "check") == 0) return check();
    if (argc >= 3 && strcmp(argv[1], "loop") == 0) {
        long n = atol(argv[2]);
        uint64_t prev = 0;
        for (long i = 0; i < n; i++) {
            uint64_t t = lib_ns(CLOCK_MONOTONIC);
            if (t < prev) { printf("went backwards\n"); return 1; }
            prev = t;
        }
        printf("%ld reads\n", n);
        return 0;
    }
    fprintf(stderr, "usage: vdso_clock check | loop N\n");
    return 2;
}
