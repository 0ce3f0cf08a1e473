/* Writes to stdout and stderr through stdio and through write(2), then exits 3. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void)
{
    static const char raw_out[] = "raw write to stdout\n";
    static const char raw_err[] = "raw write to stderr\n";
    printf("stdio line on stdout\n");
    fprintf(stderr, "stdio line on stderr: %d %s\n", 42, "text");
    fflush(stdout);
    if (write(1, raw_out, strlen(raw_out)) < 0 || write(2, raw_err, strlen(raw_err)) < 0)
        return 10;
    for (int i = 0; i < 100; i++)
        fprintf(stderr, "err %03d\n", i);
    /* A long line, larger than a pipe's atomic write size. */
    for (int i = 0; i < 10000; i++)
        fputc('a' + i % 26, stderr);
    fputc('\n', stderr);
    return 3;
}
