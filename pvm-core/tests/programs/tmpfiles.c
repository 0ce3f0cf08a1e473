/* File I/O in a new directory pvm-tmpfiles-test under argv[1] (/tmp under pvm, a host temp
 * dir natively):
 * create, write 1 MiB in odd-sized chunks, read back, lseek, pread/pwrite, ftruncate, stat,
 * rename, mkdir, readdir, unlink, O_EXCL, O_APPEND, and stdio on the same files. Prints no
 * paths, only results, so the output is identical in both places. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SIZE (1 << 20)

static char path_a[4096], path_b[4096], path_d[4096], path_c[4096];

static uint32_t sum(const unsigned char *p, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

static int cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void list(const char *dir)
{
    DIR *d = opendir(dir);
    char *names[64];
    int n = 0;
    struct dirent *e;
    if (!d) {
        printf("opendir: %s\n", strerror(errno));
        return;
    }
    while ((e = readdir(d)) && n < 64)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, n, sizeof names[0], cmp);
    printf("listing:");
    for (int i = 0; i < n; i++) {
        printf(" %s", names[i]);
        free(names[i]);
    }
    printf("\n");
}

int main(int argc, char **argv)
{
    static char dir[4096];
    snprintf(dir, sizeof dir, "%s/pvm-tmpfiles-test", argc > 1 ? argv[1] : "/tmp");
    printf("mkdir work dir: %d\n", mkdir(dir, 0700));
    unsigned char *buf = malloc(SIZE), *back = malloc(SIZE);
    struct stat st;
    int fd;
    if (!buf || !back)
        return 2;
    snprintf(path_a, sizeof path_a, "%s/pvm-test-a", dir);
    snprintf(path_b, sizeof path_b, "%s/pvm-test-b", dir);
    snprintf(path_c, sizeof path_c, "%s/pvm-test-c.txt", dir);
    snprintf(path_d, sizeof path_d, "%s/pvm-test-dir", dir);
    for (size_t i = 0; i < SIZE; i++)
        buf[i] = (unsigned char)(i * 7 + (i >> 9));

    fd = open(path_a, O_CREAT | O_EXCL | O_WRONLY, 0644);
    printf("create: %s\n", fd >= 0 ? "ok" : strerror(errno));
    if (fd < 0)
        return 1;
    size_t off = 0, chunk = 1;
    while (off < SIZE) {
        size_t n = chunk < SIZE - off ? chunk : SIZE - off;
        ssize_t w = write(fd, buf + off, n);
        if (w <= 0) {
            printf("write failed at %zu: %s\n", off, strerror(errno));
            return 1;
        }
        off += (size_t)w;
        chunk = chunk * 3 + 1;
        if (chunk > 65536)
            chunk = 4093;
    }
    close(fd);
    fd = open(path_a, O_CREAT | O_EXCL | O_WRONLY, 0644);
    printf("create again with O_EXCL: %s\n", fd >= 0 ? "ok (wrong)" : strerror(errno));

    if (stat(path_a, &st) == 0)
        printf("stat: size=%lld regular=%d mode=%o\n", (long long)st.st_size, S_ISREG(st.st_mode),
               (unsigned)(st.st_mode & 0777));
    fd = open(path_a, O_RDWR);
    ssize_t got = 0, r;
    while ((r = read(fd, back + got, SIZE - got)) > 0)
        got += r;
    printf("read back: %zd bytes, equal=%d, sum=%08x\n", got, memcmp(buf, back, SIZE) == 0,
           sum(back, SIZE));
    printf("read at eof: %zd\n", read(fd, back, 16));
    printf("lseek end: %lld\n", (long long)lseek(fd, 0, SEEK_END));
    printf("lseek set: %lld\n", (long long)lseek(fd, 12345, SEEK_SET));
    r = read(fd, back, 8);
    printf("read after seek: %zd bytes %02x%02x%02x%02x\n", r, back[0], back[1], back[2], back[3]);
    printf("pwrite: %zd\n", pwrite(fd, "PVMPVMPVM", 9, 500000));
    memset(back, 0, 32);
    printf("pread: %zd [%.9s]\n", pread(fd, back, 9, 500000), (char *)back);
    printf("ftruncate: %d\n", ftruncate(fd, 1000));
    fstat(fd, &st);
    printf("size after truncate: %lld\n", (long long)st.st_size);
    close(fd);

    printf("rename: %d\n", rename(path_a, path_b));
    printf("open old name: %s\n", open(path_a, O_RDONLY) >= 0 ? "ok (wrong)" : strerror(errno));
    printf("mkdir: %d\n", mkdir(path_d, 0755));
    printf("mkdir again: %s\n", mkdir(path_d, 0755) == 0 ? "ok (wrong)" : strerror(errno));

    FILE *f = fopen(path_c, "w");
    for (int i = 0; i < 1000; i++)
        fprintf(f, "line %d of the text file\n", i);
    fclose(f);
    fd = open(path_c, O_WRONLY | O_APPEND);
    printf("append: %zd\n", write(fd, "appended\n", 9));
    close(fd);
    f = fopen(path_c, "r");
    char line[256];
    int lines = 0;
    char last[256] = "";
    while (fgets(line, sizeof line, f)) {
        lines++;
        strcpy(last, line);
    }
    fclose(f);
    printf("lines=%d last=%s", lines, last);

    list(dir);
    printf("rmdir: %d\n", rmdir(path_d));
    printf("unlink b: %d\n", unlink(path_b));
    printf("unlink c: %d\n", unlink(path_c));
    printf("stat after unlink: %s\n", stat(path_b, &st) == 0 ? "exists (wrong)" : strerror(errno));
    list(dir);
    printf("rmdir work dir: %d\n", rmdir(dir));
    free(buf);
    free(back);
    return 0;
}
