/* Recurses argv[1] levels (default 4096) with a 1 KiB frame each, so the stack grows by
 * several MiB below the initial stack pages, then prints a checksum computed on the way back. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static uintptr_t deepest;

static uint64_t __attribute__((noinline)) descend(int depth)
{
    volatile unsigned char frame[1024];
    for (int i = 0; i < 1024; i += 64)
        frame[i] = (unsigned char)(depth + i);
    if (depth == 0) {
        deepest = (uintptr_t)frame;
        return 1;
    }
    uint64_t below = descend(depth - 1);
    uint64_t mine = 0;
    for (int i = 0; i < 1024; i += 64)
        mine += frame[i];
    return below * 31 + mine; /* not a tail call: the frame stays live */
}

int main(int argc, char **argv)
{
    int depth = argc > 1 ? atoi(argv[1]) : 4096;
    char here;
    printf("depth=%d checksum=%llu\n", depth, (unsigned long long)descend(depth));
    uintptr_t grown = (uintptr_t)&here - deepest;
    printf("stack grew by at least %d MiB: %d\n", depth / 1024, grown >= (uintptr_t)depth * 1024);
    return 0;
}
