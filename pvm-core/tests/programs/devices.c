/* The device files of pvm's minimal root filesystem: /dev/null (writes vanish, reads give end
 * of file), /dev/zero (reads give zeros), /dev/urandom (reads give bytes that are not all the
 * same). Prints results only, no random values, so native and guest output are identical. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int main(void)
{
    unsigned char buf[4096];
    struct stat st;
    const char *devs[] = {"/dev/null", "/dev/zero", "/dev/urandom"};
    for (int i = 0; i < 3; i++) {
        int r = stat(devs[i], &st);
        printf("%s: stat=%d chardev=%d\n", devs[i], r, r == 0 && S_ISCHR(st.st_mode));
    }

    int fd = open("/dev/null", O_RDWR);
    printf("null: open=%s write=%zd read=%zd\n", fd >= 0 ? "ok" : strerror(errno), write(fd, "discard me", 10),
           read(fd, buf, sizeof buf));
    close(fd);

    fd = open("/dev/zero", O_RDONLY);
    memset(buf, 0xff, sizeof buf);
    ssize_t n = read(fd, buf, sizeof buf);
    size_t nonzero = 0;
    for (ssize_t i = 0; i < n; i++)
        nonzero += buf[i] != 0;
    printf("zero: open=%s read=%zd nonzero=%zu\n", fd >= 0 ? "ok" : strerror(errno), n, nonzero);
    close(fd);

    fd = open("/dev/urandom", O_RDONLY);
    unsigned char a[64], b[64];
    ssize_t na = read(fd, a, sizeof a), nb = read(fd, b, sizeof b);
    int distinct = 0;
    for (int i = 1; i < 64; i++)
        distinct |= a[i] != a[0];
    printf("urandom: open=%s read=%zd,%zd varied=%d differs=%d\n", fd >= 0 ? "ok" : strerror(errno), na, nb,
           distinct, memcmp(a, b, sizeof a) != 0);
    close(fd);

    /* stdio to /dev/null through fopen as well. */
    FILE *f = fopen("/dev/null", "w");
    printf("fopen null: %s fprintf=%d\n", f ? "ok" : strerror(errno), f ? fprintf(f, "%0100d", 1) : -1);
    if (f)
        fclose(f);
    return 0;
}
