/* The built-in demo of `pvm run` (no PROGRAM): pvm's build.rs compiles this file with
 * `cc -static -O2` and embeds it; the guest kernel runs it as the first guest process.
 * It prints what a program sees from inside the guest, using only the C library:
 * kernel identity, process ids, CPUs, memory, time, working directory, argv, environment,
 * the root and /dev directories, and a timed computation (SHA-256 of 8 MiB, primes). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* ---- SHA-256 (FIPS 180-4), small and self-contained ---- */
static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(uint32_t h[8], const unsigned char *p)
{
    uint32_t w[64], a, b, c, d, e, f, g, k;
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = k + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
        uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        k = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += k;
}

static void sha256(const unsigned char *data, size_t len, unsigned char out[32])
{
    uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                     0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    unsigned char tail[128] = {0};
    size_t full = len / 64 * 64, rest = len - full;
    for (size_t i = 0; i < full; i += 64)
        sha256_block(h, data + i);
    memcpy(tail, data + full, rest);
    tail[rest] = 0x80;
    size_t tl = rest < 56 ? 64 : 128;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++)
        tail[tl - 1 - i] = (unsigned char)(bits >> (8 * i));
    for (size_t i = 0; i < tl; i += 64)
        sha256_block(h, tail + i);
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 4; j++)
            out[4 * i + j] = (unsigned char)(h[i] >> (24 - 8 * j));
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void list_dir(const char *path)
{
    DIR *d = opendir(path);
    char *names[256];
    int n = 0;
    struct dirent *e;
    if (!d) {
        printf("  (cannot open %s: %s)\n", path, strerror(errno));
        return;
    }
    while ((e = readdir(d)) && n < 256)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, n, sizeof names[0], by_name);
    printf("  %s:", path);
    for (int i = 0; i < n; i++) {
        char full[512];
        struct stat st;
        snprintf(full, sizeof full, "%s/%s", strcmp(path, "/") ? path : "", names[i]);
        const char *kind = "";
        if (lstat(full, &st) == 0)
            kind = S_ISDIR(st.st_mode) ? "/" : S_ISCHR(st.st_mode) ? "@" : S_ISBLK(st.st_mode) ? "#" : S_ISLNK(st.st_mode) ? "~" : "";
        printf(" %s%s", names[i], kind);
        free(names[i]);
    }
    printf("\n");
}

int main(int argc, char **argv)
{
    struct utsname u;
    struct sysinfo si;
    cpu_set_t set;
    char cwd[1024], when[64];

    printf("pvm demo: this program was compiled into pvm and runs inside pvm's guest kernel,\n");
    printf("          as an unmodified static x86-64 Linux program (guest user code, deprivileged).\n\n");

    if (uname(&u) == 0)
        printf("uname:       %s %s %s %s %s\n", u.sysname, u.nodename, u.release, u.version, u.machine);
    else
        printf("uname:       failed: %s\n", strerror(errno));
    printf("pid/ppid:    %d / %d\n", (int)getpid(), (int)getppid());
    printf("uid/gid:     %d / %d (euid %d)\n", (int)getuid(), (int)getgid(), (int)geteuid());
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    int affinity = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : -1;
    printf("cpus:        %ld online, %d in affinity mask\n", online, affinity);
    if (sysinfo(&si) == 0)
        printf("memory:      %lu MiB total, %lu MiB free, %u processes, uptime %ld s\n",
               (unsigned long)((unsigned long long)si.totalram * si.mem_unit >> 20),
               (unsigned long)((unsigned long long)si.freeram * si.mem_unit >> 20), (unsigned)si.procs,
               (long)si.uptime);
    else
        printf("memory:      sysinfo failed: %s\n", strerror(errno));
    time_t t = time(NULL);
    struct tm tm;
    if (gmtime_r(&t, &tm) && strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tm))
        printf("time:        %s\n", when);
    printf("cwd:         %s\n", getcwd(cwd, sizeof cwd) ? cwd : strerror(errno));
    printf("argv:        %d:", argc);
    for (int i = 0; i < argc; i++)
        printf(" [%s]", argv[i]);
    printf("\n");
    int envc = 0;
    for (char **e = environ; *e; e++)
        envc++;
    printf("environment: %d entries\n", envc);
    for (char **e = environ; *e; e++)
        printf("  %s\n", *e);
    printf("filesystem:\n");
    list_dir("/");
    list_dir("/dev");

    /* A small computation, timed by the guest's clock. */
    size_t n = 8u << 20;
    unsigned char *buf = malloc(n), digest[32];
    if (!buf) {
        printf("malloc of 8 MiB failed\n");
        return 1;
    }
    for (size_t i = 0; i < n; i++)
        buf[i] = (unsigned char)(i * 2654435761u >> 13);
    double t0 = now_ms();
    sha256(buf, n, digest);
    double t1 = now_ms();
    printf("sha256:      8 MiB in %.1f ms (%.0f MiB/s): ", t1 - t0, 8.0 / ((t1 - t0) / 1e3 + 1e-9));
    for (int i = 0; i < 32; i++)
        printf("%02x", digest[i]);
    printf("\n");
    free(buf);

    t0 = now_ms();
    unsigned limit = 2000000, count = 0;
    unsigned char *sieve = calloc(limit + 1, 1);
    if (!sieve)
        return 1;
    for (unsigned i = 2; i <= limit; i++) {
        if (sieve[i])
            continue;
        count++;
        for (unsigned long j = (unsigned long)i * i; j <= limit; j += i)
            sieve[j] = 1;
    }
    free(sieve);
    t1 = now_ms();
    printf("primes:      %u below %u in %.1f ms\n", count, limit, t1 - t0);
    printf("\nbye from inside the guest.\n");
    return 0;
}
