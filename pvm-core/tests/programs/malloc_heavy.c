/* Heavy malloc/realloc/free: many small blocks with a deterministic pattern, big blocks of
 * tens of MiB (mmap-backed in both libcs), and a block grown by realloc from 1 MiB to 64 MiB
 * with its contents checked after every step. Peak use stays below about 140 MiB. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t state = 0x9e3779b97f4a7c15ull;

static uint64_t next(void)
{
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

static void fill(unsigned char *p, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)((i * 31 + seed * 17) ^ (i >> 11));
}

static int check(const unsigned char *p, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)((i * 31 + seed * 17) ^ (i >> 11)))
            return 0;
    return 1;
}

#define SLOTS 4096

int main(void)
{
    static unsigned char *slot[SLOTS];
    static size_t len[SLOTS];
    static uint64_t seed[SLOTS];
    unsigned long bad = 0, ops = 0;

    /* Small and medium blocks: 200k random operations. */
    for (int i = 0; i < 200000; i++) {
        int s = (int)(next() % SLOTS);
        uint64_t r = next();
        if (slot[s] && !check(slot[s], len[s], seed[s]))
            bad++;
        if (slot[s] && r % 3 == 0) {
            free(slot[s]);
            slot[s] = NULL;
        } else if (slot[s] && r % 3 == 1) {
            size_t nl = 1 + (size_t)(next() % (r % 64 == 1 ? 262144 : 2048));
            unsigned char *p = realloc(slot[s], nl);
            if (!p)
                return 2;
            size_t keep = nl < len[s] ? nl : len[s];
            if (!check(p, keep, seed[s]))
                bad++;
            slot[s] = p;
            len[s] = nl;
            fill(p, nl, seed[s]);
        } else {
            free(slot[s]);
            len[s] = 1 + (size_t)(next() % (r % 97 == 0 ? 1048576 : 512));
            seed[s] = r;
            slot[s] = malloc(len[s]);
            if (!slot[s])
                return 2;
            fill(slot[s], len[s], seed[s]);
        }
        ops++;
    }
    unsigned long live = 0;
    size_t bytes = 0;
    for (int s = 0; s < SLOTS; s++) {
        if (slot[s]) {
            if (!check(slot[s], len[s], seed[s]))
                bad++;
            live++;
            bytes += len[s];
            free(slot[s]);
        }
    }
    printf("small: ops=%lu live_at_end=%lu bytes_at_end=%zu corrupt=%lu\n", ops, live, bytes, bad);

    /* Big blocks: 16, 32 and 48 MiB live together, each touched fully. */
    size_t big[3] = {16u << 20, 32u << 20, 48u << 20};
    unsigned char *b[3];
    for (int i = 0; i < 3; i++) {
        b[i] = malloc(big[i]);
        if (!b[i]) {
            printf("malloc %zu MiB failed\n", big[i] >> 20);
            return 3;
        }
        fill(b[i], big[i], (uint64_t)i + 100);
    }
    for (int i = 0; i < 3; i++) {
        printf("big block %zu MiB: ok=%d\n", big[i] >> 20, check(b[i], big[i], (uint64_t)i + 100));
        free(b[i]);
    }

    /* calloc of a big block must be zero. */
    unsigned char *z = calloc(40, 1 << 20);
    size_t nonzero = 0;
    for (size_t i = 0; z && i < (40u << 20); i += 4096)
        nonzero += z[i] != 0;
    printf("calloc 40 MiB: %s nonzero_pages=%zu\n", z ? "ok" : "failed", nonzero);
    free(z);

    /* Grow one block by realloc, checking the preserved prefix every time. */
    size_t n = 1 << 20;
    unsigned char *g = malloc(n);
    fill(g, n, 7);
    int grow_ok = 1;
    while (n < (64u << 20)) {
        size_t nn = n * 2;
        unsigned char *p = realloc(g, nn);
        if (!p) {
            printf("realloc to %zu MiB failed\n", nn >> 20);
            return 4;
        }
        grow_ok &= check(p, n, 7);
        fill(p, nn, 7);
        g = p;
        n = nn;
    }
    /* Shrink again. */
    g = realloc(g, 4096);
    grow_ok &= g != NULL && check(g, 4096, 7);
    printf("realloc 1 MiB -> 64 MiB -> 4 KiB: ok=%d\n", grow_ok);
    free(g);
    return bad != 0;
}
