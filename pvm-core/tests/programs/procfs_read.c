/* Reads /proc and /sys as tools do and prints what it found in a form that is the same on
 * Linux and under pvm (shapes and relations, not machine-specific values).
 * Usage: procfs_read fields | threads | limits */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

static char buf[1 << 16];

static const char *slurp(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) { buf[0] = 0; return NULL; }
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

static int count_words(const char *s) {
    int n = 0, in = 0;
    for (; *s && *s != '\n'; s++) {
        if (*s == ' ') in = 0;
        else if (!in) { in = 1; n++; }
    }
    return n;
}

static const char *yes(int c) { return c ? "yes" : "no"; }

static int dir_entries(const char *path) {
    DIR *d = opendir(path);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

static int fields(void) {
    const char *s = slurp("/proc/self/stat");
    const char *close = s ? strrchr(s, ')') : NULL;
    printf("stat has 52 fields: %s\n", yes(close && count_words(close + 2) == 50));
    s = slurp("/proc/self/statm");
    printf("statm has 7 fields: %s\n", yes(s && count_words(s) == 7));
    s = slurp("/proc/stat");
    printf("stat cpu line has 10 counters: %s\n", yes(s && strncmp(s, "cpu  ", 5) == 0 && count_words(s) == 11));
    printf("stat has cpu0, btime, processes, ctxt: %s\n", yes(s && strstr(s, "\ncpu0 ") && strstr(s, "\nbtime ") && strstr(s, "\nprocesses ") && strstr(s, "\nctxt ")));
    double up, idle;
    s = slurp("/proc/uptime");
    printf("uptime has 2 numbers: %s\n", yes(s && sscanf(s, "%lf %lf", &up, &idle) == 2));
    double l1, l5, l15; int run, all, last;
    s = slurp("/proc/loadavg");
    printf("loadavg shape: %s\n", yes(s && sscanf(s, "%lf %lf %lf %d/%d %d", &l1, &l5, &l15, &run, &all, &last) == 6 && run >= 1 && all >= run));
    s = slurp("/proc/meminfo");
    printf("meminfo rows: %s\n", yes(s && strncmp(s, "MemTotal:", 9) == 0 && strstr(s, "\nMemFree:") && strstr(s, "\nMemAvailable:") && strstr(s, "\nSwapTotal:")));
    s = slurp("/proc/cpuinfo");
    printf("cpuinfo has processor and model name: %s\n", yes(s && strncmp(s, "processor\t: 0\n", 14) == 0 && strstr(s, "\nmodel name\t: ")));
    s = slurp("/proc/version");
    printf("version starts with Linux version: %s\n", yes(s && strncmp(s, "Linux version ", 14) == 0));
    s = slurp("/proc/filesystems");
    printf("filesystems lists proc and tmpfs: %s\n", yes(s && strstr(s, "nodev\tproc\n") && strstr(s, "nodev\ttmpfs\n")));
    s = slurp("/proc/sys/kernel/pid_max");
    printf("pid_max is a number: %s\n", yes(s && atoi(s) >= 32768));
    s = slurp("/proc/sys/kernel/ostype");
    printf("ostype: %s", s ? s : "missing\n");
    s = slurp("/proc/sys/kernel/osrelease");
    printf("osrelease nonempty: %s\n", yes(s && s[0] >= '0' && s[0] <= '9'));
    char host[256] = {0};
    gethostname(host, sizeof host - 1);
    s = slurp("/proc/sys/kernel/hostname");
    printf("hostname matches gethostname: %s\n", yes(s && strncmp(s, host, strlen(host)) == 0 && s[strlen(host)] == '\n'));
    char a[64] = {0}, b[64] = {0};
    s = slurp("/proc/sys/kernel/random/uuid");
    if (s) strncpy(a, s, 63);
    s = slurp("/proc/sys/kernel/random/uuid");
    if (s) strncpy(b, s, 63);
    printf("uuid is a fresh v4 UUID: %s\n", yes(strlen(a) == 37 && a[8] == '-' && a[14] == '4' && strcmp(a, b) != 0));
    s = slurp("/proc/sys/kernel/random/boot_id");
    if (s) strncpy(a, s, 63);
    s = slurp("/proc/sys/kernel/random/boot_id");
    printf("boot_id is stable: %s\n", yes(s && strlen(a) == 37 && strcmp(a, s) == 0));
    s = slurp("/sys/devices/system/cpu/online");
    int lo = -1, hi = -1;
    int n = s ? sscanf(s, "%d-%d", &lo, &hi) : 0;
    long cpus = n == 2 ? hi - lo + 1 : n == 1 ? 1 : -1;
    printf("cpu/online agrees with sysconf: %s\n", yes(cpus == sysconf(_SC_NPROCESSORS_ONLN)));
    s = slurp("/sys/devices/system/cpu/possible");
    printf("cpu/possible present: %s\n", yes(s && s[0] == '0'));
    s = slurp("/proc/self/maps");
    printf("maps has [stack] and [vdso]: %s\n", yes(s && strstr(s, "[stack]\n") && strstr(s, "[vdso]\n")));
    s = slurp("/proc/self/smaps_rollup");
    printf("smaps_rollup has [rollup] and Rss: %s\n", yes(s && strstr(s, "[rollup]\nRss:")));
    s = slurp("/proc/self/limits");
    char hdr[128];
    snprintf(hdr, sizeof hdr, "%-25s %-20s %-20s %-10s\n", "Limit", "Soft Limit", "Hard Limit", "Units");
    printf("limits header: %s\n", yes(s && strncmp(s, hdr, strlen(hdr)) == 0));
    printf("limits has Max open files: %s\n", yes(s && strstr(s, "\nMax open files            ")));
    s = slurp("/proc/self/cgroup");
    printf("cgroup v2 line: %s\n", yes(s && (strncmp(s, "0::/", 4) == 0 || strstr(s, "\n0::/"))));
    printf("ns has 10 entries: %s\n", yes(dir_entries("/proc/self/ns") == 10));
    char link[128] = {0};
    printf("ns/pid link shape: %s\n", yes(readlink("/proc/self/ns/pid", link, sizeof link - 1) > 0 && strncmp(link, "pid:[", 5) == 0));
    s = slurp("/proc/self/fdinfo/0");
    printf("fdinfo has pos and flags: %s\n", yes(s && strncmp(s, "pos:\t", 5) == 0 && strstr(s, "\nflags:\t0")));
    s = slurp("/proc/self/environ");
    printf("environ has PVMTEST: %s\n", yes(s && strcmp(s, "PVMTEST=1") == 0));
    s = slurp("/proc/self/status");
    printf("status has all the Linux 6 rows: %s\n", yes(s && strstr(s, "\nUmask:\t") && strstr(s, "\nNSpid:\t") && strstr(s, "\nVmRSS:\t") && strstr(s, "\nSigCgt:\t") && strstr(s, "\nCapEff:\t") && strstr(s, "\nCpus_allowed_list:\t") && strstr(s, "\nnonvoluntary_ctxt_switches:\t")));
    char self[32], me[32];
    ssize_t k = readlink("/proc/self", self, sizeof self - 1);
    self[k > 0 ? k : 0] = 0;
    snprintf(me, sizeof me, "%d", getpid());
    printf("/proc/self is the pid: %s\n", yes(strcmp(self, me) == 0));
    return 0;
}

static pthread_barrier_t bar;
static void *idle(void *arg) { (void)arg; pthread_barrier_wait(&bar); pthread_barrier_wait(&bar); return NULL; }

static int threads(void) {
    pthread_t t[3];
    pthread_barrier_init(&bar, NULL, 4);
    for (int i = 0; i < 3; i++) pthread_create(&t[i], NULL, idle, NULL);
    pthread_barrier_wait(&bar);
    const char *s = slurp("/proc/self/status");
    const char *th = s ? strstr(s, "\nThreads:\t") : NULL;
    printf("status Threads: %d\n", th ? atoi(th + 10) : -1);
    printf("task entries: %d\n", dir_entries("/proc/self/task"));
    s = slurp("/proc/self/stat");
    const char *close = s ? strrchr(s, ')') : NULL;
    int field = 3, nth = -1;
    for (const char *p = close ? close + 2 : ""; *p; p++)
        if (*p == ' ' && ++field == 20) { nth = atoi(p + 1); break; }
    printf("stat num_threads: %d\n", nth);
    char path[64], link[64] = {0}, want[64];
    snprintf(want, sizeof want, "%d/task/%ld", getpid(), (long)syscall(SYS_gettid));
    readlink("/proc/thread-self", link, sizeof link - 1);
    printf("thread-self is task/<tid>: %s\n", yes(strcmp(link, want) == 0));
    snprintf(path, sizeof path, "/proc/self/task/%ld/stat", (long)syscall(SYS_gettid));
    printf("task/<tid>/stat readable: %s\n", yes(slurp(path) && atoi(buf) == (int)syscall(SYS_gettid)));
    pthread_barrier_wait(&bar);
    for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
    s = slurp("/proc/self/status");
    th = s ? strstr(s, "\nThreads:\t") : NULL;
    printf("after join Threads: %d\n", th ? atoi(th + 10) : -1);
    printf("after join task entries: %d\n", dir_entries("/proc/self/task"));
    return 0;
}

static void show_limit(const char *name, int res) {
    struct rlimit r;
    getrlimit(res, &r);
    printf("%s %llu %llu\n", name, (unsigned long long)r.rlim_cur, (unsigned long long)r.rlim_max);
}

static int limits(void) {
    show_limit("RLIMIT_RTPRIO", RLIMIT_RTPRIO);
    show_limit("RLIMIT_NICE", RLIMIT_NICE);
    show_limit("RLIMIT_NOFILE", RLIMIT_NOFILE);
    show_limit("RLIMIT_CORE", RLIMIT_CORE);
    show_limit("RLIMIT_STACK", RLIMIT_STACK);
    struct rlimit bad = {10, 5};
    printf("soft above hard: %s\n", setrlimit(RLIMIT_NOFILE, &bad) == -1 && errno == EINVAL ? "EINVAL" : "accepted");
    struct rlimit big = {1024, (1 << 20) + 1};
    printf("NOFILE above nr_open: %s\n", setrlimit(RLIMIT_NOFILE, &big) == -1 && errno == EPERM ? "EPERM" : "accepted");
    struct rlimit ok = {512, 4096};
    printf("lowering NOFILE: %s\n", setrlimit(RLIMIT_NOFILE, &ok) == 0 ? "ok" : "failed");
    show_limit("RLIMIT_NOFILE", RLIMIT_NOFILE);
    printf("bad resource: %s\n", prlimit(0, 99, NULL, &ok) == -1 && errno == EINVAL ? "EINVAL" : "accepted");
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "fields") == 0) return fields();
    if (argc == 2 && strcmp(argv[1], "threads") == 0) return threads();
    if (argc == 2 && strcmp(argv[1], "limits") == 0) return limits();
    fprintf(stderr, "usage: procfs_read fields | threads | limits\n");
    return 2;
}
