/* Prints "ready", then runs for argv[1] seconds (default 30): a CPU loop with a clock_gettime
 * every few million iterations. Prints "done" and exits 0. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 30.0;
    volatile unsigned long x = 0;
    printf("ready\n");
    fflush(stdout);
    double start = now();
    while (now() - start < seconds)
        for (int i = 0; i < 1000000; i++)
            x += (unsigned long)i ^ (x >> 3);
    printf("done\n");
    return 0;
}
