// File mappings and shared memory, compared with Linux: MAP_PRIVATE file pages (copy on
// write, the file unchanged), MAP_SHARED writes reaching the file (msync, munmap), write(2)
// and mmap seeing each other, truncation (zeroed tail, SIGBUS past the end), a mapping past
// the end of the file, MAP_SHARED|MAP_ANONYMOUS shared across fork (a counter), a
// PTHREAD_PROCESS_SHARED mutex in it, and a /dev/shm file mapped by two processes.
// argv[1]: the directory to work in (default /tmp); argv[2] ("keep") leaves shared.dat there
// for the caller to check.
#define _GNU_SOURCE
#include <stdlib.h>
#include <stdio.h>
#include <fcntl.h>
#include <unistd.h>
#include <errno.h>
#include <string.h>
#include <setjmp.h>
#include <signal.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define PG 4096
static sigjmp_buf jb;
static void on_bus(int sig, siginfo_t *si, void *uc) { (void)si; (void)uc; siglongjmp(jb, sig); }

// Reads one byte at p; returns the byte, or -SIGNAL when the access faulted.
static int probe(volatile char *p) {
    int sig = sigsetjmp(jb, 1);
    if (sig) return -sig;
    return (unsigned char)*p;
}

static unsigned sum(const unsigned char *p, size_t n) { unsigned s = 0; for (size_t i = 0; i < n; i++) s = s * 31 + p[i]; return s; }

static void fill_file(const char *name, size_t n) {
    int fd = open(name, O_CREAT | O_TRUNC | O_RDWR, 0644);
    char *b = malloc(n);
    for (size_t i = 0; i < n; i++) b[i] = 'a' + i % 26;
    if (write(fd, b, n) != (ssize_t)n) printf("short write\n");
    free(b); close(fd);
}

int main(int argc, char **argv) {
    setvbuf(stdout, 0, _IONBF, 0);
    const char *dir = argc > 1 ? argv[1] : "/tmp";
    int keep = argc > 2 && strcmp(argv[2], "keep") == 0;
    char path[512];
    snprintf(path, sizeof path, "%s/pcXXXXXX", dir);
    if (!mkdtemp(path) || chdir(path) != 0) { perror("mkdtemp"); return 2; }
    struct sigaction sa = {0}; sa.sa_sigaction = on_bus; sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigaction(SIGBUS, &sa, 0); sigaction(SIGSEGV, &sa, 0);

    // 1. MAP_PRIVATE: the file's bytes, copy on write.
    fill_file("priv.dat", 3 * PG + 100);
    int fd = open("priv.dat", O_RDONLY);
    unsigned char *m = mmap(0, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    printf("private sum %u tail %d past %d\n", sum(m, 3 * PG + 100), m[3 * PG + 100], m[4 * PG - 1]);
    m[0] = 'Z'; m[PG] = 'Y';
    char b[8] = {0}; pread(fd, b, 1, 0);
    printf("private write: map %c file %c\n", m[0], b[0]);
    // A second private mapping sees the file, not the first one's copy.
    unsigned char *m2 = mmap(0, PG, PROT_READ, MAP_PRIVATE, fd, 0);
    printf("second private %c\n", m2[0]);
    munmap(m, 4 * PG); munmap(m2, PG); close(fd);

    // 2. MAP_SHARED: writes reach the file (msync, then munmap).
    fill_file("shared.dat", 2 * PG);
    fd = open("shared.dat", O_RDWR);
    char *s = mmap(0, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    memcpy(s + 10, "MSYNC", 5);
    printf("msync %d\n", msync(s, 2 * PG, MS_SYNC));
    memset(b, 0, sizeof b); pread(fd, b, 5, 10); printf("after msync file '%s'\n", b);
    // write(2) is seen by the mapping, mapping writes by read(2).
    pwrite(fd, "WRITE", 5, PG + 1);
    printf("mapping sees write '%.5s'\n", s + PG + 1);
    memcpy(s + 100, "STORE", 5);
    memset(b, 0, sizeof b); pread(fd, b, 5, 100); printf("read sees store '%s'\n", b);
    memcpy(s + PG + 200, "UNMAP", 5);
    munmap(s, 2 * PG);
    memset(b, 0, sizeof b); pread(fd, b, 5, PG + 200); printf("after munmap file '%s'\n", b);

    // 3. Truncation: the tail of the last page reads zero, pages past it SIGBUS.
    s = mmap(0, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    printf("before truncate %d %d\n", probe(s + 300), probe(s + PG + 5));
    printf("ftruncate %d\n", ftruncate(fd, 300));
    printf("after truncate in-page %d tail %d next page %d\n", probe(s + 299), probe(s + 300), probe(s + PG + 5));
    printf("grow %d\n", ftruncate(fd, 2 * PG));
    printf("after growing %d %d\n", probe(s + 300), probe(s + PG + 5));
    munmap(s, 2 * PG);
    struct stat st; fstat(fd, &st); printf("size %ld\n", (long)st.st_size);
    close(fd);
    if (keep) {
        // Leave a file whose mapped writes only munmap writes back, for the caller to read.
        fd = open("kept.dat", O_CREAT | O_TRUNC | O_RDWR, 0644);
        ftruncate(fd, PG);
        s = mmap(0, PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        close(fd);
        memcpy(s, "written through a shared mapping\n", 33);
        munmap(s, PG);
        printf("kept\n");
    }

    // 4. A mapping longer than the file: SIGBUS past the last page.
    fill_file("short.dat", 100);
    fd = open("short.dat", O_RDONLY);
    m = mmap(0, 3 * PG, PROT_READ, MAP_PRIVATE, fd, 0);
    printf("short: %d %d %d\n", probe((char *)m + 99), probe((char *)m + 100), probe((char *)m + 2 * PG));
    munmap(m, 3 * PG); close(fd);

    // 5. MAP_SHARED|MAP_ANONYMOUS across fork: a counter and a process-shared mutex.
    struct shm { pthread_mutex_t mu; long plain; long atomic; } *sh =
        mmap(0, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    pthread_mutexattr_t ma; pthread_mutexattr_init(&ma);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    pthread_mutex_init(&sh->mu, &ma);
    const int N = 20000;
    pid_t kids[2];
    for (int k = 0; k < 2; k++) {
        kids[k] = fork();
        if (kids[k] == 0) {
            for (int i = 0; i < N; i++) {
                __atomic_fetch_add(&sh->atomic, 1, __ATOMIC_SEQ_CST);
                pthread_mutex_lock(&sh->mu);
                long v = sh->plain;
                if (i % 1000 == 0) sched_yield();
                sh->plain = v + 1;
                pthread_mutex_unlock(&sh->mu);
            }
            _exit(0);
        }
    }
    for (int i = 0; i < N; i++) {
        pthread_mutex_lock(&sh->mu); sh->plain++; pthread_mutex_unlock(&sh->mu);
        __atomic_fetch_add(&sh->atomic, 1, __ATOMIC_SEQ_CST);
    }
    for (int k = 0; k < 2; k++) waitpid(kids[k], 0, 0);
    printf("shared anon: atomic %ld mutex %ld\n", sh->atomic, sh->plain);
    // A private anonymous mapping is not shared.
    long *pv = mmap(0, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    *pv = 1;
    if (fork() == 0) { *pv = 2; sh->atomic = -1; _exit(0); }
    wait(0);
    printf("private anon %ld, shared sees child %ld\n", *pv, sh->atomic);

    // 6. A /dev/shm file mapped by two processes (each maps it itself).
    char name[64]; snprintf(name, sizeof name, "/dev/shm/pvm-pc-%d", (int)getpid());
    fd = open(name, O_CREAT | O_RDWR | O_TRUNC, 0600);
    ftruncate(fd, PG);
    volatile int *w = mmap(0, PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    pid_t c = fork();
    if (c == 0) {
        int f2 = open(name, O_RDWR);
        volatile int *w2 = mmap(0, PG, PROT_READ | PROT_WRITE, MAP_SHARED, f2, 0);
        while (w2[0] != 1) sched_yield();
        w2[1] = 42;
        w2[0] = 2;
        _exit(0);
    }
    w[0] = 1;
    while (w[0] != 2) sched_yield();
    waitpid(c, 0, 0);
    int v = 0; pread(fd, &v, 4, 4);
    printf("dev/shm: mapping %d file %d\n", w[1], v);
    close(fd); unlink(name);

    unlink("priv.dat"); unlink("shared.dat"); unlink("short.dat");
    if (!keep) { chdir("/"); rmdir(path); }
    printf("done\n");
    return 0;
}
