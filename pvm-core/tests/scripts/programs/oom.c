/* Allocates and touches MiB after MiB (malloc + memset) up to argv[1] MiB. Prints on stdout
 * and exits 3 if malloc fails; prints and exits 0 if it got everything. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    int want = argc > 1 ? atoi(argv[1]) : 200;
    for (int i = 0; i < want; i++) {
        char *p = malloc(1 << 20);
        if (p == NULL) {
            printf("malloc failed after %d MiB: ENOMEM\n", i);
            return 3;
        }
        memset(p, i + 1, 1 << 20);
    }
    printf("touched %d MiB without a failure\n", want);
    return 0;
}
