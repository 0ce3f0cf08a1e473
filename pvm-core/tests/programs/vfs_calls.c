// The file calls that came with the VFS, compared with Linux: a FIFO between two processes
// (blocking opens, O_NONBLOCK rules, O_RDWR), creat, flock between descriptions and
// processes, the xattr family on tmpfs, copy_file_range, fallocate (extend, punch),
// syncfs/fdatasync/sync_file_range, statfs of /dev/shm, EXDEV across mounts.
#define _GNU_SOURCE
#include <stdlib.h>
#include <stdio.h>
#include <fcntl.h>
#include <unistd.h>
#include <errno.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <sys/statfs.h>
#define P(label, call) do { errno = 0; long _r = (long)(call); printf("%s %ld %s\n", label, _r, _r < 0 ? strerror(errno) : "ok"); fflush(stdout); } while (0)

int main(void) { setvbuf(stdout, 0, _IONBF, 0);
    char dir[] = "/tmp/vfscallsXXXXXX";
    if (!mkdtemp(dir) || chdir(dir) != 0) return 2;
    mkfifo("ff", 0644);
    pid_t c = fork();
    if (c == 0) { int w = open("ff", O_WRONLY); write(w, "hello", 5); close(w); _exit(0); }
    int r = open("ff", O_RDONLY);
    char b[16] = {0}; int n = read(r, b, sizeof b - 1);
    printf("fifo read %d '%s'\n", n, b);
    waitpid(c, 0, 0); close(r);
    P("wronly nonblock", open("ff", O_WRONLY | O_NONBLOCK));
    int rn = open("ff", O_RDONLY | O_NONBLOCK); printf("rdonly nonblock ok: %d\n", rn >= 0); close(rn);
    int rw = open("ff", O_RDWR); printf("rdwr ok: %d\n", rw >= 0); close(rw);
    int fd = creat("lk", 0644); printf("creat %d\n", fd >= 0);
    int fd2 = open("lk", O_RDONLY);
    printf("flock ex %d\n", flock(fd, LOCK_EX));
    P("flock nb other", flock(fd2, LOCK_EX | LOCK_NB));
    c = fork();
    if (c == 0) { int f3 = open("lk", O_RDONLY); int x = flock(f3, LOCK_SH); printf("child got lock %d\n", x); fflush(stdout); _exit(0); }
    usleep(100000); printf("parent unlocks\n"); flock(fd, LOCK_UN); waitpid(c, 0, 0);
    P("getxattr missing", getxattr("lk", "user.x", b, 16));
    printf("setxattr %d\n", setxattr("lk", "user.x", "val", 3, 0));
    memset(b, 0, 16); printf("getxattr %zd %s\n", getxattr("lk", "user.x", b, 16), b);
    char l[64]; ssize_t ln = listxattr("lk", l, 64); printf("listxattr %zd %s\n", ln, l);
    P("getxattr system", getxattr("lk", "system.posix_acl_access", b, 16));
    P("lgetxattr /dev/null", lgetxattr("/dev/null", "user.x", b, 16));
    printf("removexattr %d\n", removexattr("lk", "user.x"));
    write(fd, "0123456789", 10);
    int out = open("cp", O_CREAT | O_WRONLY | O_TRUNC, 0644);
    loff_t oi = 2; printf("copy_file_range %zd\n", copy_file_range(fd2, &oi, out, NULL, 5, 0)); close(out);
    int in = open("cp", O_RDONLY); memset(b, 0, 16); read(in, b, 15); printf("copied '%s' oi=%lld\n", b, (long long)oi);
    printf("fallocate %d\n", fallocate(fd, 0, 0, 8192)); struct stat st; fstat(fd, &st); printf("size %lld\n", (long long)st.st_size);
    P("fallocate punch", fallocate(fd, 3, 0, 10));
    printf("syncfs %d fdatasync %d sfr %d\n", syncfs(fd), fdatasync(fd), sync_file_range(fd, 0, 0, 7));
    struct statfs sf; statfs("/dev/shm", &sf); printf("statfs shm type %lx\n", (long)sf.f_type);
    P("rename across", rename("cp", "/dev/shm/vfscalls-never"));
    P("link across", link("cp", "/dev/shm/vfscalls-never"));
    unlink("ff"); unlink("lk"); unlink("cp"); chdir("/"); rmdir(dir);
    return 0;
}
