/* Fills the in-memory /tmp until a write fails, says how, then writes 16 MiB of memory it
 * already had (a static array the kernel populates at exec). File data lives in the guest
 * kernel's heap: the writes must end in ENOSPC, as a full tmpfs, and never in a guest kernel
 * failure. Uses write(2) directly: stdio would allocate. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

static char chunk[1 << 20];
static char later[16 << 20];

static void say(const char *s) {
    write(1, s, strlen(s));
}

int main(void) {
    memset(chunk, 1, sizeof chunk);
    int fd = open("/tmp/fill", O_CREAT | O_WRONLY | O_TRUNC, 0644);
    if (fd < 0) {
        say("open failed\n");
        return 1;
    }
    for (int i = 0; i < 1 << 16; i++) {
        if (write(fd, chunk, sizeof chunk) < 0) {
            say(errno == ENOSPC ? "write failed: ENOSPC\n" : "write failed: another errno\n");
            for (size_t j = 0; j < sizeof later; j += 4096)
                later[j] = 1;
            say("touched 16 MiB\n");
            return 0;
        }
    }
    say("wrote 64 GiB without a failure\n");
    return 2;
}
