/* The KVM backend's smoke program (tests/kvm_backend.rs): argv, one environment entry, 1 MiB
 * of heap, stderr and exit status 42. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int main(int argc, char **argv) {
    for (int i = 0; i < argc; i++) printf("argv[%d]=%s\n", i, argv[i]);
    const char *v = getenv("PVM_KVM_TEST");
    printf("env=%s\n", v ? v : "(unset)");
    char *p = malloc(1 << 20);
    memset(p, 7, 1 << 20);
    long sum = 0;
    for (int i = 0; i < (1 << 20); i += 4096) sum += p[i];
    printf("sum=%ld pid>0=%d\n", sum, getpid() > 0);
    fprintf(stderr, "to stderr\n");
    return 42;
}
