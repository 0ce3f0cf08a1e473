/* Echoes argc, argv[1..], the whole environment (in order) and the working directory.
 * argv[0] is not printed: under pvm it is the program's path inside the guest filesystem. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv)
{
    char cwd[4096];
    printf("argc=%d\n", argc);
    for (int i = 1; i < argc; i++)
        printf("argv[%d]=[%s] len=%zu\n", i, argv[i], strlen(argv[i]));
    int n = 0;
    for (char **e = environ; *e; e++, n++)
        printf("env[%d]=[%s]\n", n, *e);
    printf("envc=%d\n", n);
    if (getcwd(cwd, sizeof cwd))
        printf("cwd=%s\n", cwd);
    else
        perror("getcwd");
    return 0;
}
