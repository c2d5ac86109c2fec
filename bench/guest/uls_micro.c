// In-guest part of //bench:vm_micro (E4 on the real ULS kernel, claim C4: entering the sandbox
// costs about a system call, far less than a switch to another process). Runs on the patched
// kernel (kernel/), as root, on the guest's one vCPU.
//
//   uls_micro ITERATIONS WARMUP REPS BUDGET_S
//
// Operations, each timed as ITERATIONS back-to-back operations per repetition (REPS
// repetitions) after WARMUP untimed ones:
//   function  a call through a volatile function pointer to a noinline function (lower bound)
//   syscall   syscall(SYS_getppid): one kernel entry and exit doing no work
//   ioctl     ioctl(/dev/uls, ULS_IOC_INFO): a null ioctl on the device, i.e. the raise's own
//             system call without an upcall
//   upcall    ioctl(/dev/uls, ULS_IOC_RAISE, id): the kernel runs the registered extension in
//             this process on the ioctl's way back to user mode; the extension does nothing
//             but the return call (ULS_SYSCALL_RETURN), which restores this process: raise -> extension ->
//             return, the full round trip
//   signal    tgkill(2) of SIGUSR1 to this thread, its handler, rt_sigreturn
//   pipe      one byte to a forked child and back through two pipes (two context switches)
// Each repetition reads CLOCK_MONOTONIC around its loop and executes the instruction-count
// markers (GUEST_INSN_MARK, a no-op unless QEMU runs kernel/qemu/insn_count.c) just inside it:
// op k's start marker has tag 2k+1, its end marker 2k+2; the warm-up runs through the same code
// first, so a repetition's marks are the (K+1)-th executions of its tags, K = mark_index. Printed (stdout is buffered and flushed only between
// operations, so the serial console is quiet while timing):
//   ULSNET-MICRO-CONFIG iterations=N warmup=W reps=R protected=0|1
//   ULSNET-MICRO op=OP rep=I iterations=N ns=T mark_start=S mark_end=E mark_index=K
//   ULSNET-MICRO-UPCALLS raised=R upcalls=.. returned=.. in_current=.. ... (the kernel's counters)
//   ULSNET-MICRO-ERROR op=OP what=...
//   ULSNET-MICRO-DONE rc=0|1
// Bounded: alarm(BUDGET_S) ends the program (the host then finds no DONE line); the pipe's child
// dies with it (PR_SET_PDEATHSIG) and is killed and reaped after its operation.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/uls.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kernel/guest/guest_util.h"

// The extension: nothing but the return call.
extern const char ext_null[], ext_null_end[];
__asm__(
    ".text\n"
    "ext_null:\n"
    GUEST_ASM_ULS_RETURN
    "  ud2\n"
    "ext_null_end:\n");

#define CODE 0x10000u
#define STACK 0x20000u
#define STATE 0x40000u

enum { OP_FUNCTION, OP_SYSCALL, OP_IOCTL, OP_UPCALL, OP_SIGNAL, OP_PIPE, NOPS };
static const char* const op_names[NOPS] = {"function", "syscall", "ioctl", "upcall", "signal", "pipe"};

// The markers need their tag as a literal.
static void mark(int tag) {
  switch (tag) {
    case 1: GUEST_INSN_MARK(1); break;
    case 2: GUEST_INSN_MARK(2); break;
    case 3: GUEST_INSN_MARK(3); break;
    case 4: GUEST_INSN_MARK(4); break;
    case 5: GUEST_INSN_MARK(5); break;
    case 6: GUEST_INSN_MARK(6); break;
    case 7: GUEST_INSN_MARK(7); break;
    case 8: GUEST_INSN_MARK(8); break;
    case 9: GUEST_INSN_MARK(9); break;
    case 10: GUEST_INSN_MARK(10); break;
    case 11: GUEST_INSN_MARK(11); break;
    case 12: GUEST_INSN_MARK(12); break;
    default: break;
  }
}

static int fd = -1;
static uint32_t ext_id;
static int to_child[2] = {-1, -1}, to_parent[2] = {-1, -1};
static pid_t pid, tid;
static volatile sig_atomic_t g_signals;

__attribute__((noinline)) static int plain_function(int x) {
  __asm__ volatile("" : "+r"(x));
  return x + 1;
}
static int (*volatile g_fn)(int) = plain_function;
static volatile int g_sink;

static void on_usr1(int sig) {
  (void)sig;
  g_signals = g_signals + 1;
}

// Upcalls raised successfully so far.
static uint64_t g_raised;

// n operations of `op`; 0, or -1 after printing what failed.
static int run_ops(int op, uint64_t n) {
  switch (op) {
    case OP_FUNCTION: {
      int x = 0;
      for (uint64_t i = 0; i < n; i++) x = g_fn(x);
      g_sink = x;
      return 0;
    }
    case OP_SYSCALL:
      for (uint64_t i = 0; i < n; i++) syscall(SYS_getppid);
      return 0;
    case OP_IOCTL: {
      struct uls_info in;
      for (uint64_t i = 0; i < n; i++)
        if (ioctl(fd, ULS_IOC_INFO, &in) != 0) {
          printf("ULSNET-MICRO-ERROR op=ioctl what=ULS_IOC_INFO:%s\n", strerror(errno));
          return -1;
        }
      return 0;
    }
    case OP_UPCALL:
      for (uint64_t i = 0; i < n; i++)
        if (ioctl(fd, ULS_IOC_RAISE, &ext_id) != 0) {
          g_raised += i;
          printf("ULSNET-MICRO-ERROR op=upcall what=ULS_IOC_RAISE:%s\n", strerror(errno));
          return -1;
        }
      g_raised += n;
      return 0;
    case OP_SIGNAL: {
      const sig_atomic_t before = g_signals;
      for (uint64_t i = 0; i < n; i++) syscall(SYS_tgkill, pid, tid, SIGUSR1);
      if ((uint64_t)(g_signals - before) != n) {
        printf("ULSNET-MICRO-ERROR op=signal what=%llu_of_%llu_delivered\n",
               (unsigned long long)(g_signals - before), (unsigned long long)n);
        return -1;
      }
      return 0;
    }
    case OP_PIPE: {
      char c = 'x';
      for (uint64_t i = 0; i < n; i++)
        if (write(to_child[1], &c, 1) != 1 || read(to_parent[0], &c, 1) != 1) {
          printf("ULSNET-MICRO-ERROR op=pipe what=the_echo_process_died\n");
          return -1;
        }
      return 0;
    }
  }
  return -1;
}

static pid_t start_echo(void) {
  if (pipe2(to_child, O_CLOEXEC) != 0 || pipe2(to_parent, O_CLOEXEC) != 0) return -1;
  const pid_t parent = getpid();
  const pid_t p = fork();
  if (p == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    close(to_child[1]);
    close(to_parent[0]);
    char c;
    while (read(to_child[0], &c, 1) == 1)
      if (write(to_parent[1], &c, 1) != 1) break;
    _exit(0);
  }
  close(to_child[0]);
  close(to_parent[1]);
  return p;
}

static void stop_echo(pid_t p) {
  close(to_child[1]);
  close(to_parent[0]);
  if (p > 0) {
    kill(p, SIGKILL);
    while (waitpid(p, NULL, 0) < 0 && errno == EINTR) {
    }
  }
}

// Registers the extension; 0 or -1.
static int setup_extension(const struct uls_info* info) {
  const ssize_t len = ext_null_end - ext_null;
  if (pwrite(fd, ext_null, (size_t)len, CODE) != len) {
    printf("ULSNET-MICRO-ERROR op=upcall what=pwrite:%s\n", strerror(errno));
    return -1;
  }
  struct uls_extension e;
  memset(&e, 0, sizeof e);
  e.entry = info->base + CODE;
  e.stack_base = info->base + STACK;
  e.stack_size = 0x4000;
  e.state = info->base + STATE;
  snprintf(e.name, sizeof e.name, "micro-null");
  if (ioctl(fd, ULS_IOC_REGISTER, &e) != 0) {
    printf("ULSNET-MICRO-ERROR op=upcall what=ULS_IOC_REGISTER:%s\n", strerror(errno));
    return -1;
  }
  ext_id = e.id;
  return 0;
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOFBF, 1 << 16);
  if (argc != 5) {
    fprintf(stderr, "usage: uls_micro ITERATIONS WARMUP REPS BUDGET_S\n");
    return 2;
  }
  const uint64_t iterations = strtoull(argv[1], NULL, 10), warmup = strtoull(argv[2], NULL, 10);
  const unsigned long reps = strtoul(argv[3], NULL, 10), budget = strtoul(argv[4], NULL, 10);
  if (iterations < 1 || iterations > 100000000ull || warmup > 100000000ull || reps < 1 || reps > 1000 ||
      budget < 1 || budget > 86400) {
    fprintf(stderr, "uls_micro: ITERATIONS 1..1e8, WARMUP 0..1e8, REPS 1..1000, BUDGET_S 1..86400\n");
    return 2;
  }
  alarm((unsigned)budget);  // default action: the program ends, the host sees no DONE line

  fd = open("/dev/uls", O_RDWR | O_CLOEXEC);
  struct uls_info info;
  if (fd < 0 || ioctl(fd, ULS_IOC_INFO, &info) != 0) {
    printf("ULSNET-MICRO-ERROR op=all what=/dev/uls:%s\n", strerror(errno));
    printf("ULSNET-MICRO-DONE rc=1\n");
    return 1;
  }
  pid = getpid();
  tid = (pid_t)syscall(SYS_gettid);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR1, &sa, NULL);

  printf("ULSNET-MICRO-CONFIG iterations=%llu warmup=%llu reps=%lu protected=%d\n",
         (unsigned long long)iterations, (unsigned long long)warmup, reps,
         (info.flags & ULS_INFO_PROTECTED) ? 1 : 0);
  fflush(stdout);

  int rc = 0;
  for (int op = 0; op < NOPS; op++) {
    if (op == OP_UPCALL && setup_extension(&info) != 0) {
      rc = 1;
      fflush(stdout);
      continue;
    }
    pid_t echo = -1;
    if (op == OP_PIPE && (echo = start_echo()) <= 0) {
      printf("ULSNET-MICRO-ERROR op=pipe what=fork_or_pipe:%s\n", strerror(errno));
      rc = 1;
      fflush(stdout);
      continue;
    }
    // The warm-up goes through the same timed and marked code as the repetitions (under TCG the
    // first pass through any code translates it), unreported; mark_index counts the passes.
    const int start_tag = 2 * op + 1, end_tag = 2 * op + 2;
    int ok = 1, passes = 0;
    for (long r = -1; ok && r < (long)reps; r++) {
      const uint64_t n = r < 0 ? warmup : iterations;
      if (n == 0) continue;
      const uint64_t t0 = guest_now_ns();
      mark(start_tag);
      ok = run_ops(op, n) == 0;
      mark(end_tag);
      const uint64_t t1 = guest_now_ns();
      if (ok && r >= 0)
        printf("ULSNET-MICRO op=%s rep=%ld iterations=%llu ns=%llu mark_start=%d mark_end=%d mark_index=%d\n",
               op_names[op], r, (unsigned long long)iterations, (unsigned long long)(t1 - t0), start_tag, end_tag,
               passes);
      passes++;
    }
    if (!ok) rc = 1;
    if (op == OP_UPCALL) {
      struct uls_stats st;
      memset(&st, 0, sizeof st);
      st.id = ext_id;
      if (ioctl(fd, ULS_IOC_STATS, &st) != 0) {
        printf("ULSNET-MICRO-ERROR op=upcall what=ULS_IOC_STATS:%s\n", strerror(errno));
        rc = 1;
      } else {
        printf("ULSNET-MICRO-UPCALLS raised=%llu events=%llu upcalls=%llu returned=%llu in_current=%llu "
               "in_host=%llu coalesced=%llu faults=%llu overruns=%llu denied_syscalls=%llu run_ns=%llu "
               "pages_mapped=%llu\n",
               (unsigned long long)g_raised, (unsigned long long)st.events,
               (unsigned long long)st.upcalls, (unsigned long long)st.returned,
               (unsigned long long)st.in_current, (unsigned long long)st.in_host,
               (unsigned long long)st.coalesced, (unsigned long long)st.faults,
               (unsigned long long)st.overruns, (unsigned long long)st.denied_syscalls,
               (unsigned long long)st.run_ns, (unsigned long long)st.pages_mapped);
      }
      ioctl(fd, ULS_IOC_UNREGISTER, &ext_id);
    }
    if (op == OP_PIPE) stop_echo(echo);
    fflush(stdout);
  }
  printf("ULSNET-MICRO-DONE rc=%d\n", rc);
  fflush(stdout);
  return rc;
}
