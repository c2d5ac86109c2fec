// What the in-guest upcall tests share (uls_upcall_test.c, uls_hardening_test.c): where an
// extension of slot i lives in the region (its code at CODE + i pages, its state at STATE + i
// pages, its stack at STACKS + i * STACK_SIZE), loading and reading the region through the
// kernel (pwrite/pread on /dev/uls: the region may be protected from this process), registering
// a blob, spinning processes for upcalls to land in, binding it to a timer, its counters and their accounting identity, and the kernel log's
// reports. Messages start with the caller's `who` ("uls_upcall", ...).
#ifndef ULSNET_KERNEL_TESTS_ULS_TEST_REGION_H_
#define ULSNET_KERNEL_TESTS_ULS_TEST_REGION_H_

#include <errno.h>
#include <linux/uls.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/klog.h>
#include <unistd.h>

#include "kernel/guest/guest_util.h"

enum { CODE = 0x10000, STATE = 0x20000, STACKS = 0x100000, STACK_SIZE = 0x4000 };

static inline uint64_t uls_t_code_off(unsigned slot) { return CODE + slot * 0x1000; }
static inline uint64_t uls_t_state_off(unsigned slot) { return STATE + slot * 0x1000; }

// The registration of slot `slot`: its code's start as entry, its stack and its state.
static inline struct uls_extension uls_t_slot_extension(const struct uls_info* info, unsigned slot, const char* name) {
  struct uls_extension e;
  memset(&e, 0, sizeof e);
  e.entry = info->base + uls_t_code_off(slot);
  e.stack_base = info->base + STACKS + slot * STACK_SIZE;
  e.stack_size = STACK_SIZE;
  e.state = info->base + uls_t_state_off(slot);
  snprintf(e.name, sizeof e.name, "%s", name);
  return e;
}

static inline void uls_t_region_write(const char* who, int fd, uint64_t off, const void* p, size_t n) {
  if (pwrite(fd, p, n, (off_t)off) != (ssize_t)n)
    printf("%s: pwrite at %llu: %s\n", who, (unsigned long long)off, strerror(errno));
}
static inline void uls_t_region_read(const char* who, int fd, uint64_t off, void* p, size_t n) {
  if (pread(fd, p, n, (off_t)off) != (ssize_t)n)
    printf("%s: pread at %llu: %s\n", who, (unsigned long long)off, strerror(errno));
}

// Registers the blob [start, end), loaded at slot `slot`'s code, with the slot's stack and state,
// through descriptor `fd`; its id, or 0 (said why).
static inline uint32_t uls_t_register(const char* who, int fd, const struct uls_info* info, const char* start,
                                      const char* end, unsigned slot, const char* name) {
  if (pwrite(fd, start, (size_t)(end - start), (off_t)uls_t_code_off(slot)) != end - start) {
    printf("%s: loading %s: %s\n", who, name, strerror(errno));
    return 0;
  }
  struct uls_extension e = uls_t_slot_extension(info, slot, name);
  if (ioctl(fd, ULS_IOC_REGISTER, &e) != 0) {
    printf("%s: register %s: %s\n", who, name, strerror(errno));
    return 0;
  }
  return e.id;
}

// The extension's counters (all zero, said why, when they cannot be read).
static inline struct uls_stats uls_t_stats(const char* who, int fd, uint32_t id) {
  struct uls_stats s;
  memset(&s, 0, sizeof s);
  s.id = id;
  if (ioctl(fd, ULS_IOC_STATS, &s) != 0) {
    printf("%s: stats %u: %s\n", who, id, strerror(errno));
    memset(&s, 0, sizeof s);
  }
  return s;
}

static inline void uls_t_print_stats(const char* who, const char* what, struct uls_stats s) {
  printf("%s: %s: events=%llu coalesced=%llu upcalls=%llu in_current=%llu in_host=%llu "
         "host_wakeups=%llu ineligible=%llu returned=%llu faults=%llu overruns=%llu revoked=%llu "
         "denied=%llu run_ns=%llu pending=%u last_pid=%d last_fault_sig=%u\n",
         who, what, (unsigned long long)s.events, (unsigned long long)s.coalesced,
         (unsigned long long)s.upcalls, (unsigned long long)s.in_current, (unsigned long long)s.in_host,
         (unsigned long long)s.host_wakeups, (unsigned long long)s.ineligible,
         (unsigned long long)s.returned, (unsigned long long)s.faults, (unsigned long long)s.overruns,
         (unsigned long long)s.revoked, (unsigned long long)s.denied_syscalls,
         (unsigned long long)s.run_ns, s.pending, s.last_pid, s.last_fault_sig);
}

// Every event ends in an upcall, a coalesced event or is pending; every upcall in one ending.
static inline int uls_t_accounted(struct uls_stats s) {
  return s.events == s.upcalls + s.coalesced + s.pending && s.upcalls == s.returned + s.faults + s.overruns;
}

// Sets the run-time budget of every upcall (the uls.budget_ms parameter) to `ms`; returns the
// value it had, or 0 (said why) when the parameter cannot be read or written.
//
// A check that judges one upcall by how it ended (it returned, it faulted) sets a long budget
// first, and the previous one back after: the budget counts the ticks that find the extension
// running, and under TCG a vCPU thread the host descheduled comes back to several ticks at once
// (steal time the guest cannot see); on the debug kernel the first upcall of an extension takes
// 4.7-24.8 ms against the default 10 (measured, 18 runs). Such an upcall ended by the budget would fail the check
// for a reason that is not its subject. The budget itself is checked where it is the subject.
// Setting 0 (what a failed read returned) does nothing.
static inline unsigned uls_t_budget_ms(const char* who, unsigned ms) {
  static const char path[] = "/sys/module/uls/parameters/budget_ms";
  unsigned old = 0;
  if (ms == 0) return 0;
  FILE* f = fopen(path, "r");
  if (!f || fscanf(f, "%u", &old) != 1) old = 0;
  if (f) fclose(f);
  f = fopen(path, "w");
  int ok = f && fprintf(f, "%u\n", ms) > 0;
  if (f && fclose(f) != 0) ok = 0;
  if (!old || !ok) printf("%s: budget_ms: cannot read or set %s: %s\n", who, path, strerror(errno));
  return old;
}

// Spins for `ms` without a system call (the clock is the vDSO's or, without one, a few calls a
// millisecond are all it makes): upcalls land in it.
static inline void uls_t_spin_ms(unsigned ms) {
  uint64_t end = guest_now_ns() + (uint64_t)ms * 1000000ull;
  while (guest_now_ns() < end)
    for (volatile int i = 0; i < 20000; ++i) {
    }
}
// A forked child that spins for `ms` and exits 0; its pid, or -1.
static inline pid_t uls_t_spawn_spinner(unsigned ms) {
  pid_t pid = fork();
  if (pid == 0) {
    uls_t_spin_ms(ms);
    _exit(0);
  }
  return pid;
}

// Binds extension `id` to a periodic timer (0: unbinds it); 0 or the errno.
static inline int uls_t_bind_timer(int fd, uint32_t id, uint64_t period_ns) {
  struct uls_bind b = {.id = id, .event = period_ns ? ULS_EVENT_TIMER : ULS_EVENT_NONE, .period_ns = period_ns};
  return ioctl(fd, ULS_IOC_BIND, &b) == 0 ? 0 : errno;
}

// The kernel log (all of it the ring still holds) in a buffer of its own, and its length.
static inline const char* uls_t_klog(int* len) {
  static char buf[1 << 20];
  int n = klogctl(3 /* SYSLOG_ACTION_READ_ALL */, buf, sizeof buf - 1);
  if (n < 0) n = 0;
  buf[n] = 0;
  *len = n;
  return buf;
}
// A mark: the kernel log's length now.
static inline int uls_t_klog_mark(void) {
  int n;
  uls_t_klog(&n);
  return n;
}
// The first kernel report logged since `mark`, or NULL: BUG (KASAN, sleeping in atomic context,
// ...), WARNING (lockdep, ...), an oops ("[#1]"), a trace, SLUB consistency errors, hung tasks,
// RCU stalls. (An extension's faults are not logged at all since patch 0016: uls_hardening_test
// fault_log checks that.)
// The kernel log since `mark` (all of it if the ring wrapped since).
static inline const char* uls_t_klog_since(int mark) {
  int n;
  const char* log = uls_t_klog(&n);
  return log + (mark <= n ? mark : 0);
}
static inline const char* uls_t_klog_report_since(int mark) {
  static const char* const bad[] = {"BUG",    "WARNING:",     "Oops",  "[#1]",  "Call Trace", "Poison",
                                    "already free", "Redzone", "KASAN", "INFO:", "circular locking",
                                    "stall",  "hung_task"};
  const char* since = uls_t_klog_since(mark);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
    const char* at = strstr(since, bad[i]);
    if (at) return at;
  }
  return NULL;
}

#endif  // ULSNET_KERNEL_TESTS_ULS_TEST_REGION_H_
