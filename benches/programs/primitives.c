/* Host primitives the soft backend is built from, measured on this machine (design section 10):
 * a futex ping-pong between two processes pinned to one CPU, a signal delivered to a handler and
 * returned from, and a null syscall. Usage: gcc -O2 -o /tmp/primitives benches/programs/primitives.c
 * && /tmp/primitives. A guest syscall under pvm costs about one of each of the first two. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sched.h>
#include <time.h>
#include <signal.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <stdatomic.h>
static long fx(atomic_int*a,int op,int v){return syscall(SYS_futex,a,op,v,0,0,0);}
static volatile long cnt;
static void h(int s, siginfo_t*i, void*u){cnt++;}
int main(){ cpu_set_t s; CPU_ZERO(&s); CPU_SET(0,&s); sched_setaffinity(0,sizeof s,&s);
 atomic_int*w=mmap(0,4096,PROT_READ|PROT_WRITE,MAP_SHARED|MAP_ANONYMOUS,-1,0); *w=0; int N=20000;
 pid_t p=fork(); if(!p){ for(int i=0;i<N;i++){ while(atomic_load(w)!=1) fx(w,FUTEX_WAIT,0); atomic_store(w,0); fx(w,FUTEX_WAKE,1);} _exit(0);} 
 struct timespec a,b; clock_gettime(CLOCK_MONOTONIC,&a);
 for(int i=0;i<N;i++){ atomic_store(w,1); fx(w,FUTEX_WAKE,1); while(atomic_load(w)!=0) fx(w,FUTEX_WAIT,1);} 
 clock_gettime(CLOCK_MONOTONIC,&b); waitpid(p,0,0);
 printf("futex round trip (2 procs, 1 cpu): %.2f us\n",((b.tv_sec-a.tv_sec)*1e9+(b.tv_nsec-a.tv_nsec))/N/1000);
 struct sigaction sa={0}; sa.sa_sigaction=h; sa.sa_flags=SA_SIGINFO; sigaction(SIGUSR1,&sa,0);
 clock_gettime(CLOCK_MONOTONIC,&a); for(int i=0;i<N;i++) raise(SIGUSR1); clock_gettime(CLOCK_MONOTONIC,&b);
 printf("raise+handler+sigreturn: %.2f us\n",((b.tv_sec-a.tv_sec)*1e9+(b.tv_nsec-a.tv_nsec))/N/1000);
 clock_gettime(CLOCK_MONOTONIC,&a); for(int i=0;i<N;i++) getppid(); clock_gettime(CLOCK_MONOTONIC,&b);
 printf("getppid: %.3f us\n",((b.tv_sec-a.tv_sec)*1e9+(b.tv_nsec-a.tv_nsec))/N/1000);
 return 0;}
