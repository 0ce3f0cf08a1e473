/* Guest memory exhaustion as an attacker drives it (issue 9). Run with a small --memory.
 *
 *   oom_attack fork       populate 4 GiB (MAP_POPULATE: best effort, fills guest memory), then,
 *                         with memory full, make kernel data grow (thousands of small VMAs);
 *                         unmap it all, fork a child that touches memory until it runs out.
 *                         The child must die of SIGKILL; then a second child must run.
 *   oom_attack bystander MIB [spin]
 *                         a first child touches MIB MiB and waits (pause, or a busy loop with
 *                         `spin`), then a second child touches memory until it runs out. The
 *                         largest process (the first child, MIB > half of memory) must be
 *                         killed first, then the hog itself once it is the largest.
 *
 * Prints what the parent saw; exits 0 when the parent survived. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define MIB (1UL << 20)

/* Touches 1 MiB after 1 MiB, forever (until killed). */
static void hog(void) {
    for (;;) {
        char *p = mmap(NULL, MIB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            continue;
        for (size_t i = 0; i < MIB; i += 4096)
            p[i] = 1;
    }
}

static const char *fate(int st) {
    static char buf[64];
    if (WIFSIGNALED(st))
        snprintf(buf, sizeof buf, "killed by signal %d", WTERMSIG(st));
    else
        snprintf(buf, sizeof buf, "exited with %d", WEXITSTATUS(st));
    return buf;
}

static int second_child(void) {
    fflush(stdout);
    pid_t c = fork();
    if (c < 0) {
        printf("fork after the OOM kill failed: %s\n", strerror(errno));
        return 1;
    }
    if (c == 0) {
        /* A fresh process that needs memory of its own. */
        char *p = malloc(8 * MIB);
        if (p == NULL)
            _exit(2);
        memset(p, 7, 8 * MIB);
        printf("a new child runs\n");
        fflush(stdout);
        _exit(0);
    }
    int st;
    waitpid(c, &st, 0);
    printf("new child %s\n", fate(st));
    return 0;
}

static int attack_fork(void) {
    size_t big = 4UL << 30;
    char *p = mmap(NULL, big, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        printf("4 GiB mmap failed: %s\n", strerror(errno));
        return 1;
    }
    /* Memory is full now: every mapping below is a VMA the kernel must record. Alternate
     * protections so that none merges. */
    enum { N = 20000 };
    static char *small[N];
    int made = 0;
    for (; made < N; made++) {
        int prot = made % 2 ? PROT_READ : PROT_READ | PROT_WRITE;
        small[made] = mmap(NULL, 4096, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (small[made] == MAP_FAILED)
            break;
    }
    for (int i = 0; i < made; i++)
        munmap(small[i], 4096);
    munmap(p, big);
    fflush(stdout);
    pid_t c = fork();
    if (c < 0) {
        printf("fork failed: %s\n", strerror(errno));
        return 1;
    }
    if (c == 0)
        hog();
    int st;
    if (waitpid(c, &st, 0) != c) {
        printf("waitpid: %s\n", strerror(errno));
        return 1;
    }
    printf("memory hog %s\n", fate(st));
    return second_child();
}

static int attack_bystander(size_t mib, int spin) {
    int ready[2];
    if (pipe(ready) != 0)
        return 1;
    fflush(stdout);
    pid_t big = fork();
    if (big == 0) {
        char *p = malloc(mib * MIB);
        if (p == NULL)
            _exit(2);
        memset(p, 1, mib * MIB);
        write(ready[1], "x", 1);
        if (spin)
            for (volatile unsigned long i = 0;; i++)
                ;
        for (;;)
            pause();
    }
    char x;
    if (read(ready[0], &x, 1) != 1) {
        printf("the big child did not get its memory\n");
        return 1;
    }
    pid_t h = fork();
    if (h == 0)
        hog();
    /* The big child must go first; the hog goes on until it is the largest itself. (Should
     * the hog die first, the big child would wait forever: it is ended here instead.) */
    for (int i = 0; i < 2; i++) {
        int st;
        pid_t w = wait(&st);
        printf("%s %s\n", w == big ? "big child" : w == h ? "memory hog" : "someone else", fate(st));
        if (w == h && i == 0)
            kill(big, SIGTERM);
    }
    return second_child();
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "fork";
    int r;
    if (strcmp(mode, "fork") == 0)
        r = attack_fork();
    else if (strcmp(mode, "bystander") == 0 && argc > 2)
        r = attack_bystander(strtoul(argv[2], NULL, 10), argc > 3 && strcmp(argv[3], "spin") == 0);
    else {
        fprintf(stderr, "usage: oom_attack fork | bystander MIB [spin]\n");
        return 64;
    }
    if (r == 0)
        printf("parent survived\n");
    return r;
}
