// Reads a large file through file mappings, a window at a time (MAP_PRIVATE, read-only,
// unmapped after use), and prints its size and a checksum: with guest memory smaller than
// the file, the page cache must drop pages nobody maps any more.
// argv[1]: the file; argv[2]: the window, MiB (default 16).
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <unistd.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    int fd = open(argv[1], O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) { perror("open"); return 1; }
    size_t win = (size_t)(argc > 2 ? atoi(argv[2]) : 16) << 20;
    uint64_t h = 1469598103934665603ULL;
    for (off_t off = 0; off < st.st_size; off += win) {
        size_t n = st.st_size - off < (off_t)win ? (size_t)(st.st_size - off) : win;
        const unsigned char *m = mmap(0, n, PROT_READ, MAP_PRIVATE, fd, off);
        if (m == MAP_FAILED) { perror("mmap"); return 1; }
        for (size_t i = 0; i < n; i += 64) h = (h ^ m[i]) * 1099511628211ULL;
        munmap((void *)m, n);
    }
    printf("size %lld hash %016llx\n", (long long)st.st_size, (unsigned long long)h);
    return 0;
}
