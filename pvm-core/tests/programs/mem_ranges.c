/* addr/len syscalls with ranges that wrap past 2^64, leave user space or are huge: prints each
 * call's result and errno. Run natively and under pvm: the output must be identical (Linux's
 * errno per the man pages, and no crash of the guest kernel). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

static const char *name(int e) {
    switch (e) {
    case EINVAL: return "EINVAL";
    case ENOMEM: return "ENOMEM";
    case EFAULT: return "EFAULT";
    case EBADF: return "EBADF";
    default: return "other";
    }
}

static void show(const char *what, long r) {
    printf("%-40s %ld %s\n", what, r, r < 0 ? name(errno) : "-");
    errno = 0;
}

int main(void) {
    const size_t page = 4096;
    char *p = mmap(NULL, 4 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return 1;
    p[0] = 1;
    unsigned char vec[8];
    uintptr_t a = (uintptr_t)p;
    size_t wrap = (size_t)0 - a + page; /* a + wrap == page: wraps past 2^64 */

    show("mincore ok", mincore(p, 4 * page, vec));
    printf("mincore vec[0] %d\n", vec[0] & 1);
    show("mincore unaligned", mincore(p + 1, page, vec));
    show("mincore len -4096", mincore(p, (size_t)-4096, vec));
    show("mincore len ~0", mincore(p, ~(size_t)0, vec));
    show("mincore wrapping", mincore(p, wrap, vec));
    show("mincore 1<<46 (past the mapping)", mincore(p, (size_t)1 << 46, vec));
    show("mincore len 0", mincore(p, 0, vec));
    show("mincore bad vec", mincore(p, page, (unsigned char *)8));

    show("madvise len -4096", madvise(p, (size_t)-4096, MADV_DONTNEED));
    show("madvise len ~0", madvise(p, ~(size_t)0, MADV_DONTNEED));
    show("madvise wrapping", madvise(p, wrap, MADV_DONTNEED));
    show("madvise 1<<46 normal", madvise(p, (size_t)1 << 46, MADV_NORMAL));
    show("madvise len 0", madvise(p, 0, MADV_DONTNEED));
    show("madvise unaligned", madvise(p + 1, page, MADV_DONTNEED));
    show("madvise ok", madvise(p, page, MADV_DONTNEED));

    show("mprotect len -4096", mprotect(p, (size_t)-4096, PROT_READ));
    show("mprotect len ~0", mprotect(p, ~(size_t)0, PROT_READ));
    show("mprotect wrapping", mprotect(p, wrap, PROT_READ));
    show("mprotect 1<<46", mprotect(p, (size_t)1 << 46, PROT_READ));
    show("mprotect len 0", mprotect(p, 0, PROT_READ));
    /* Linux applies mprotect to the mapped start of a range before it fails with ENOMEM:
     * restore the mapping either way. */
    show("mprotect restore", mprotect(p, 4 * page, PROT_READ | PROT_WRITE));

    show("munmap len -4096", munmap(p, (size_t)-4096));
    show("munmap len ~0", munmap(p, ~(size_t)0));
    show("munmap wrapping", munmap(p, wrap));
    show("munmap len 0", munmap(p, 0));

    show("msync len -4096", msync(p, (size_t)-4096, MS_SYNC));
    show("msync wrapping", msync(p, wrap, MS_ASYNC));
    show("msync 1<<46", msync(p, (size_t)1 << 46, MS_SYNC));
    show("msync unaligned", msync(p + 1, page, MS_SYNC));
    show("msync both flags", msync(p, page, MS_SYNC | MS_ASYNC));
    show("msync ok", msync(p, page, MS_SYNC));

    struct iovec huge[2] = {{p, 16}, {p + 16, (size_t)1 << 62}};
    show("writev huge iov_len", writev(1, huge, 2));
    struct iovec neg[1] = {{p, (size_t)-1}};
    show("readv negative iov_len", readv(0, neg, 1));

    /* Still usable afterwards. */
    p[page] = 2;
    show("munmap ok", munmap(p, 4 * page));
    show("mincore after munmap", mincore(p, page, vec));
    return 0;
}
