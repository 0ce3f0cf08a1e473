/* Prints a greeting and exits 0: the smallest end-to-end check. */
#include <stdio.h>

int main(void)
{
    puts("Hello, world!");
    return 0;
}
