// In-guest part of the jitter experiment (claim C2: invoking a service by upcall avoids the
// scheduling that a separate user thread needs). Runs on the patched kernel (kernel/), as root.
//
//   uls_jitter PERIOD_US COUNT HOGS[:HOGS...]
//
// For each number of CPU hogs (CPU-bound processes started first, all on the guest's CPU) and
// each service, COUNT invocations are due every PERIOD_US:
//   uls     an extension bound to a periodic timer (ULS_IOC_BIND): it runs by upcall in whatever
//           process is current when the timer fires -- a hog, when there are hogs -- with nothing
//           scheduled; a host process (ULS_IOC_HOST) takes the upcalls that find the CPU idle;
//   thread  a user thread of this process sleeping to each due time (clock_nanosleep,
//           TIMER_ABSTIME, SCHED_OTHER): the paper's "separate user thread", woken and scheduled.
// Each invocation reads CLOCK_MONOTONIC as its first act. Printed, one line per invocation:
//   ULSNET-JS <service> <hogs> <due_ns> <ran_ns>
// and per run "ULSNET-JITTER-RUN service=S hogs=H samples=N in_other=K ..." (K: upcalls that ran
// in a process other than this one; for uls also the kernel's counters: in_current, in_host...). The host side (bench/vm_jitter.cc) computes the statistics.
// Everything is bounded: each run by a deadline, each hog by its own deadline and a SIGKILL.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/uls.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kernel/guest/guest_util.h"

// The extension: records (due, now) into its state and counts upcalls run outside `main_pid`.
// State: 0 n, 8 cap, 16 main_pid (int32), 24 in_other, 64 samples[cap] of {due, now}.
extern const char ext_tick[], ext_tick_end[];
__asm__(
    ".text\n"
    "ext_tick:\n"
    "  mov %rdi, %rbx\n"
    "  mov %rsi, %r12\n"
    GUEST_ASM_MONOTONIC_NS_TO_RAX
    "  mov 0(%rbx), %rcx\n"
    "  cmp 8(%rbx), %rcx\n"
    "  jae 1f\n"
    "  mov %rcx, %rdx\n"
    "  shl $4, %rdx\n"
    "  lea 64(%rbx,%rdx), %rdx\n"
    "  mov %r12, 0(%rdx)\n"
    "  mov %rax, 8(%rdx)\n"
    "  inc %rcx\n"
    "  mov %rcx, 0(%rbx)\n"
    "1:\n"
    "  mov $39, %eax\n"  // getpid
    "  syscall\n"
    "  cmp 16(%rbx), %eax\n"
    "  je 2f\n"
    "  incq 24(%rbx)\n"
    "2:\n"
    GUEST_ASM_ULS_RETURN
    "  ud2\n"
    "ext_tick_end:\n");

#define CODE 0x10000u
#define STACK 0x20000u
#define STATE 0x40000u

struct sample {
  uint64_t due, ran;
};

static void sleep_ns(uint64_t ns) {
  struct timespec t = {(time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull)};
  nanosleep(&t, NULL);
}

static pid_t hogs[16];
static int nhogs;

static void start_hogs(int n, uint64_t deadline) {
  for (nhogs = 0; nhogs < n && nhogs < 16; nhogs++) {
    pid_t p = fork();
    if (p == 0) {
      volatile uint64_t x = 0;
      for (;;) {
        for (int i = 0; i < 1000000; i++) x++;
        if (guest_now_ns() > deadline) _exit(0);
      }
    }
    hogs[nhogs] = p;
  }
}

static void stop_hogs(void) {
  for (int i = 0; i < nhogs; i++) kill(hogs[i], SIGKILL);
  for (int i = 0; i < nhogs; i++) waitpid(hogs[i], NULL, 0);
  nhogs = 0;
}

// A host: waits in ULS_IOC_HOST so that upcalls finding the CPU idle have a process to run in.
static pid_t start_host(uint64_t deadline) {
  pid_t p = fork();
  if (p == 0) {
    int f = open("/dev/uls", O_RDWR | O_CLOEXEC);
    while (f >= 0 && guest_now_ns() < deadline) {
      uint32_t ms = 100;
      ioctl(f, ULS_IOC_HOST, &ms);
    }
    _exit(0);
  }
  return p;
}

static int run_uls(int fd, struct uls_info* info, uint64_t period_ns, uint32_t count, int h) {
  size_t state_size = 64 + (size_t)count * sizeof(struct sample);
  if (STATE + state_size > info->size) {
    printf("uls_jitter: COUNT too large for the region\n");
    return 1;
  }
  uint64_t hdr[8] = {0, count, (uint64_t)(uint32_t)getpid(), 0, 0, 0, 0, 0};
  if (pwrite(fd, hdr, sizeof hdr, STATE) != (ssize_t)sizeof hdr) return 1;
  struct uls_extension e;
  memset(&e, 0, sizeof e);
  e.entry = info->base + CODE;
  e.stack_base = info->base + STACK;
  e.stack_size = 0x4000;
  e.state = info->base + STATE;
  snprintf(e.name, sizeof e.name, "tick");
  if (ioctl(fd, ULS_IOC_REGISTER, &e) != 0) {
    printf("uls_jitter: register: %s\n", strerror(errno));
    return 1;
  }
  struct uls_bind b = {.id = e.id, .event = ULS_EVENT_TIMER, .period_ns = period_ns};
  if (ioctl(fd, ULS_IOC_BIND, &b) != 0) {
    printf("uls_jitter: bind: %s\n", strerror(errno));
    ioctl(fd, ULS_IOC_UNREGISTER, &e.id);
    return 1;
  }
  uint64_t deadline = guest_now_ns() + 3 * period_ns * count + 5000000000ull;
  pid_t host = start_host(deadline + 1000000000ull);
  uint64_t n = 0;
  while (guest_now_ns() < deadline) {
    sleep_ns(50000000);
    if (pread(fd, &n, sizeof n, STATE) != (ssize_t)sizeof n) break;
    if (n >= count) break;
  }
  b.event = ULS_EVENT_NONE;
  b.period_ns = 0;
  ioctl(fd, ULS_IOC_BIND, &b);
  if (host > 0) {
    kill(host, SIGKILL);
    waitpid(host, NULL, 0);
  }
  struct uls_stats st = {.id = e.id};
  ioctl(fd, ULS_IOC_STATS, &st);
  if (pread(fd, hdr, sizeof hdr, STATE) != (ssize_t)sizeof hdr) return 1;
  n = hdr[0] < count ? hdr[0] : count;
  struct sample* s = malloc(n * sizeof *s + 1);
  if (!s || pread(fd, s, n * sizeof *s, STATE + 64) != (ssize_t)(n * sizeof *s)) return 1;
  for (uint64_t i = 0; i < n; i++)
    printf("ULSNET-JS uls %d %llu %llu\n", h, (unsigned long long)s[i].due, (unsigned long long)s[i].ran);
  printf("ULSNET-JITTER-RUN service=uls hogs=%d samples=%llu in_other=%llu upcalls=%llu in_current=%llu "
         "in_host=%llu coalesced=%llu faults=%llu overruns=%llu\n",
         h, (unsigned long long)n, (unsigned long long)hdr[3], (unsigned long long)st.upcalls,
         (unsigned long long)st.in_current, (unsigned long long)st.in_host,
         (unsigned long long)st.coalesced, (unsigned long long)st.faults,
         (unsigned long long)st.overruns);
  free(s);
  ioctl(fd, ULS_IOC_UNREGISTER, &e.id);
  return 0;
}

struct thread_arg {
  uint64_t period_ns;
  uint32_t count;
  struct sample* s;
};

static void* thread_main(void* p) {
  struct thread_arg* a = p;
  uint64_t start = guest_now_ns();
  for (uint32_t i = 0; i < a->count; i++) {
    uint64_t due = start + (uint64_t)(i + 1) * a->period_ns;
    struct timespec t = {(time_t)(due / 1000000000ull), (long)(due % 1000000000ull)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL) == EINTR) {
    }
    a->s[i].ran = guest_now_ns();
    a->s[i].due = due;
  }
  return NULL;
}

static int run_thread(uint64_t period_ns, uint32_t count, int h) {
  struct thread_arg a = {period_ns, count, calloc(count, sizeof(struct sample))};
  pthread_t t;
  if (!a.s || pthread_create(&t, NULL, thread_main, &a) != 0) return 1;
  pthread_join(t, NULL);
  for (uint32_t i = 0; i < count; i++)
    printf("ULSNET-JS thread %d %llu %llu\n", h, (unsigned long long)a.s[i].due, (unsigned long long)a.s[i].ran);
  printf("ULSNET-JITTER-RUN service=thread hogs=%d samples=%u in_other=0\n", h, count);
  free(a.s);
  return 0;
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOFBF, 1 << 16);
  if (argc != 4) {
    fprintf(stderr, "usage: uls_jitter PERIOD_US COUNT HOGS[:HOGS...]\n");
    return 2;
  }
  uint64_t period_ns = strtoull(argv[1], NULL, 10) * 1000ull;
  uint32_t count = (uint32_t)strtoul(argv[2], NULL, 10);
  if (period_ns < ULS_PERIOD_MIN_NS || period_ns > 1000000000ull || count < 2 || count > 100000) {
    fprintf(stderr, "uls_jitter: PERIOD_US 10..1000000, COUNT 2..100000\n");
    return 2;
  }
  int fd = open("/dev/uls", O_RDWR | O_CLOEXEC);
  struct uls_info info;
  if (fd < 0 || ioctl(fd, ULS_IOC_INFO, &info) != 0) {
    printf("uls_jitter: /dev/uls: %s\n", strerror(errno));
    return 1;
  }
  if (pwrite(fd, ext_tick, (size_t)(ext_tick_end - ext_tick), CODE) != ext_tick_end - ext_tick) return 1;
  printf("ULSNET-JITTER-CONFIG period_ns=%llu count=%u protected=%d\n", (unsigned long long)period_ns,
         count, (info.flags & ULS_INFO_PROTECTED) ? 1 : 0);
  int rc = 0;
  for (char* tok = strtok(argv[3], ":"); tok && rc == 0; tok = strtok(NULL, ":")) {
    int h = atoi(tok);
    uint64_t run_ns = 3 * period_ns * count + 10000000000ull;
    start_hogs(h, guest_now_ns() + 2 * run_ns);
    sleep_ns(200000000);  // the hogs are running
    rc = run_uls(fd, &info, period_ns, count, h);
    if (rc == 0) rc = run_thread(period_ns, count, h);
    stop_hogs();
    fflush(stdout);
  }
  printf("ULSNET-JITTER-DONE rc=%d\n", rc);
  fflush(stdout);
  return rc;
}
