// In-guest test of upcalls (patch 0003) and of the region's protection (patch 0004). Extensions
// are small position-independent machine-code blobs (below) loaded into the sandbox region with
// pwrite() on /dev/uls. Checks:
//   - the region is protected: this process's own reads of it fault (before and after upcalls
//     ran in it), the kernel refuses it as a buffer (EFAULT), pread/pwrite refuse offsets outside
//     it; an extension reads the same contents at the same address in two processes;
//   - a multi-threaded process never takes an upcall (its page tables are shared), counted;
//   - a raised extension runs in the raising process on its way back from the ioctl, on its own
//     stack, may call getpid/clock_gettime but not fork (EPERM), and the process gets every
//     register and its FPU state back (checked with fixed values around the raw system call);
//   - a timer-bound extension runs inside an unrelated, spinning process (its pid recorded by
//     the extension) and that process's computation stays exact throughout;
//   - one upcall of an extension runs at a time, even when it is preempted inside one;
//   - when the CPU is idle a host process (ULS_IOC_HOST) is woken and takes the upcall;
//   - a fault, a return off the entry function and an endless loop end the upcall, the process
//     survives and the counters say why and where;
//   - every new call refuses bad arguments with its error code;
//   - accounting: events = upcalls + coalesced + pending, upcalls = returned + faults + overruns.
// Static (the guest has no libc); prints one line per check and "ULSNET-TEST uls_upcall pass|fail".
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <linux/uls.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kernel/guest/guest_util.h"
#include "kernel/tests/uls_test_region.h"

// ---- extensions (AT&T, position independent; entered with rdi = state, rsi = event ns) -------
// The record extension's state (struct rec, in the region).
struct rec {
  int32_t pid;          // 0: getpid() inside the upcall
  int32_t watch_pid;    // 4: set by the test
  uint64_t count;       // 8
  uint64_t event_ns;    // 16
  uint64_t now_ns;      // 24
  uint64_t sum_delay;   // 32: sum of (now - event time)
  uint64_t max_delay;   // 40
  int64_t fork_rc;      // 48: what fork returned inside the extension
  uint64_t watch_count; // 56: upcalls that ran in watch_pid
  uint64_t magic_in;    // 64: set by the test
  uint64_t magic_out;   // 72: copied from magic_in by the extension (a read of the region)
  uint64_t state_addr;  // 80: where the extension saw its state (rdi)
};

extern const char ext_record[], ext_record_end[], ext_fault[], ext_fault_end[], ext_loop[],
    ext_loop_end[], ext_ret[], ext_ret_end[], ext_overlap[], ext_overlap_end[];
__asm__(
    ".text\n"
    "ext_record:\n"
    "  mov %rdi, %rbx\n"
    "  mov %rsi, %r12\n"
    "  mov $39, %eax\n"  // getpid
    "  syscall\n"
    "  mov %eax, 0(%rbx)\n"
    "  incq 8(%rbx)\n"
    "  cmp 4(%rbx), %eax\n"
    "  jne 2f\n"
    "  incq 56(%rbx)\n"
    "2:\n"
    "  mov 64(%rbx), %rax\n"
    "  mov %rax, 72(%rbx)\n"
    "  mov %rbx, 80(%rbx)\n"
    "  mov %r12, 16(%rbx)\n"
    GUEST_ASM_MONOTONIC_NS_TO_RAX
    "  mov %rax, 24(%rbx)\n"
    "  sub %r12, %rax\n"
    "  add %rax, 32(%rbx)\n"
    "  cmp 40(%rbx), %rax\n"
    "  jbe 1f\n"
    "  mov %rax, 40(%rbx)\n"
    "1:\n"
    "  mov $57, %eax\n"  // fork: refused inside an extension
    "  syscall\n"
    "  mov %rax, 48(%rbx)\n"
    // Clobber what the interrupted process uses, so that a missing restore shows.
    "  mov $-1, %rcx\n  mov $-1, %rdx\n  mov $-1, %rsi\n  mov $-1, %rdi\n  mov $-1, %rbp\n"
    "  mov $-1, %r8\n  mov $-1, %r9\n  mov $-1, %r10\n  mov $-1, %r11\n  mov $-1, %r13\n"
    "  mov $-1, %r14\n  mov $-1, %r15\n  mov $-1, %rbx\n  mov $-1, %r12\n"
    "  pcmpeqd %xmm0, %xmm0\n  pcmpeqd %xmm1, %xmm1\n  pcmpeqd %xmm2, %xmm2\n"
    "  std\n"
    GUEST_ASM_ULS_RETURN
    "  ud2\n"
    "ext_record_end:\n"
    "ext_fault:\n"
    "  movq $1, 0x10\n"  // a write to an unmapped address
    "  ud2\n"
    "ext_fault_end:\n"
    "ext_loop:\n"
    "  jmp ext_loop\n"  // never returns: the budget ends it
    "ext_loop_end:\n"
    "ext_ret:\n"
    "  ret\n"  // returns off its entry function: to address 0
    "ext_ret_end:\n"
    // struct overlap {tickets, overlaps, count, current}: each entry takes a ticket and leaves
    // it in `current`, works ~1 ms, and counts an overlap if another entry replaced its ticket
    // meanwhile (it has one stack: that must never happen). An upcall the kernel ends early (past
    // its budget, on a slow guest) leaves nothing behind that the next entry could mistake for
    // an overlap.
    "ext_overlap:\n"
    "  mov $1, %rax\n"
    "  lock xadd %rax, 0(%rdi)\n"
    "  mov %rax, 24(%rdi)\n"
    "  mov $400000, %ecx\n"
    "5:\n  dec %ecx\n  jnz 5b\n"
    "  cmp 24(%rdi), %rax\n"
    "  je 4f\n"
    "  lock incq 8(%rdi)\n"
    "4:\n"
    "  lock incq 16(%rdi)\n"
    GUEST_ASM_ULS_RETURN
    "  ud2\n"
    "ext_overlap_end:\n"
    // raise_check(fd, cmd, arg, out[7]): the raw ioctl with fixed values in every callee-saved
    // register and in xmm2; out = {return value, rbx, r12, r13, r14, r15, xmm2}.
    "raise_check:\n"
    "  push %rbx\n  push %rbp\n  push %r12\n  push %r13\n  push %r14\n  push %r15\n"
    "  mov %rcx, %rbp\n"
    "  movabs $0x1111111111111111, %rbx\n"
    "  movabs $0x2222222222222222, %r12\n"
    "  movabs $0x3333333333333333, %r13\n"
    "  movabs $0x4444444444444444, %r14\n"
    "  movabs $0x5555555555555555, %r15\n"
    "  movabs $0x6666666666666666, %rax\n"
    "  movq %rax, %xmm2\n"
    "  mov $16, %eax\n"  // ioctl
    "  syscall\n"
    "  mov %rax, 0(%rbp)\n"
    "  mov %rbx, 8(%rbp)\n  mov %r12, 16(%rbp)\n  mov %r13, 24(%rbp)\n"
    "  mov %r14, 32(%rbp)\n  mov %r15, 40(%rbp)\n"
    "  movq %xmm2, %rax\n  mov %rax, 48(%rbp)\n"
    "  pop %r15\n  pop %r14\n  pop %r13\n  pop %r12\n  pop %rbp\n  pop %rbx\n"
    "  ret\n"
    // spin_sum(n, out[2]): sum of 0..n-1 in rax and n * 1.0 in xmm0, kept in registers.
    "spin_sum:\n"
    "  xor %eax, %eax\n  xor %ecx, %ecx\n  pxor %xmm0, %xmm0\n"
    "  mov $1, %edx\n  cvtsi2sd %rdx, %xmm1\n"
    "3:\n  add %rcx, %rax\n  addsd %xmm1, %xmm0\n  inc %rcx\n  cmp %rdi, %rcx\n  jb 3b\n"
    "  mov %rax, (%rsi)\n  movsd %xmm0, 8(%rsi)\n"
    "  ret\n");
void raise_check(int fd, unsigned long cmd, void* arg, uint64_t out[7]);
void spin_sum(uint64_t n, void* out);

// ---- helpers ----------------------------------------------------------------------------
static int failures;
static void check(int ok, const char* what) {
  printf("uls_upcall: %s: %s\n", ok ? "ok" : "FAIL", what);
  if (!ok) ++failures;
}

static int fd;
static struct uls_info info;
static char* region;

// The region's contents, through the kernel (the process itself cannot touch them).
static void region_write(uint64_t off, const void* p, size_t n) { uls_t_region_write("uls_upcall", fd, off, p, n); }
static void region_read(uint64_t off, void* p, size_t n) { uls_t_region_read("uls_upcall", fd, off, p, n); }

// Does reading `p` fault in this process? (SIGSEGV caught and turned into a yes.)
static sigjmp_buf fault_jmp;
static void on_segv(int sig) { (void)sig; siglongjmp(fault_jmp, 1); }
static int read_faults(const volatile char* p) {
  struct sigaction sa, old;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_segv;
  sigaction(SIGSEGV, &sa, &old);
  int faulted = 1;
  if (sigsetjmp(fault_jmp, 1) == 0) {
    (void)*p;
    faulted = 0;
  }
  sigaction(SIGSEGV, &old, NULL);
  return faulted;
}

// Registers the blob [start, end) at slot `slot` (kernel/tests/uls_test_region.h).
static uint32_t reg_blob(const char* start, const char* end, unsigned slot, const char* name) {
  return uls_t_register("uls_upcall", fd, &info, start, end, slot, name);
}
static struct uls_stats stats(uint32_t id) { return uls_t_stats("uls_upcall", fd, id); }
static void print_stats(const char* what, struct uls_stats s) { uls_t_print_stats("uls_upcall", what, s); }
static int accounted(struct uls_stats s) { return uls_t_accounted(s); }
static int bind_timer(uint32_t id, uint64_t period_ns) { return uls_t_bind_timer(fd, id, period_ns); }

static int raise_id(void* arg) { return ioctl(fd, ULS_IOC_RAISE, arg) == 0 ? 0 : 10 + errno; }

// ---- the unrelated processes (this binary run again with a mode) --------------------------
static int spin_main(int ms) {
  const uint64_t n = 200000;
  uint64_t end = guest_now_ns() + (uint64_t)ms * 1000000ull;
  long rounds = 0, errors = 0;
  while (guest_now_ns() < end) {
    struct { uint64_t a; double d; } out;
    spin_sum(n, &out);
    if (out.a != n * (n - 1) / 2 || out.d != (double)n) ++errors;
    ++rounds;
  }
  printf("uls_upcall: spinner pid=%d rounds=%ld errors=%ld\n", getpid(), rounds, errors);
  return errors == 0 && rounds > 0 ? 0 : 1;
}

static int host_main(int ms) {
  int f = open("/dev/uls", O_RDWR | O_CLOEXEC);
  if (f < 0) return 2;
  uint64_t end = guest_now_ns() + (uint64_t)ms * 1000000ull;
  long woken = 0;
  while (guest_now_ns() < end) {
    uint32_t wait_ms = 200;
    if (ioctl(f, ULS_IOC_HOST, &wait_ms) == 0) ++woken;
  }
  printf("uls_upcall: host pid=%d woken=%ld\n", getpid(), woken);
  return 0;
}

static void* spin_thread(void* arg) { return (void*)(intptr_t)spin_main((int)(intptr_t)arg); }

// Two threads in one address space: one spins for `ms`, the other tells `ready_fd` once the
// spinner exists and then waits for a byte (or EOF) on `stop_fd` before joining it. Before the
// spinner starts and after the waiting thread wakes, the process is rightly a candidate for
// upcalls; in between it has two threads, and the waiting one is never current.
static int spin2_main(int ms, int ready_fd, int stop_fd) {
  pthread_t t;
  if (pthread_create(&t, NULL, spin_thread, (void*)(intptr_t)ms) != 0) return 3;
  if (write(ready_fd, "r", 1) != 1) return 4;
  close(ready_fd);
  char c;
  if (read(stop_fd, &c, 1) < 0) return 5;
  void* b = NULL;
  pthread_join(t, &b);
  return b == NULL ? 0 : 1;
}

static pid_t spawn(const char* mode, int ms) {
  pid_t pid = fork();
  if (pid == 0) {
    char arg[16];
    snprintf(arg, sizeof arg, "%d", ms);
    execl("/proc/self/exe", "uls_upcall_test", mode, arg, (char*)NULL);
    _exit(127);
  }
  return pid;
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc == 3 && strcmp(argv[1], "spin") == 0) return spin_main(atoi(argv[2]));
  if (argc == 3 && strcmp(argv[1], "host") == 0) return host_main(atoi(argv[2]));
  if (argc == 5 && strcmp(argv[1], "spin2") == 0) return spin2_main(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]));

  fd = open("/dev/uls", O_RDWR | O_CLOEXEC);
  if (fd < 0 || ioctl(fd, ULS_IOC_INFO, &info) != 0) {
    printf("ULSNET-TEST uls_upcall fail (/dev/uls: %s)\n", strerror(errno));
    return 1;
  }
  region = mmap((void*)info.base, info.size, PROT_READ | PROT_WRITE | PROT_EXEC,
                MAP_SHARED | MAP_FIXED_NOREPLACE, fd, 0);
  if (region != (char*)info.base) {
    printf("ULSNET-TEST uls_upcall fail (mmap: %s)\n", strerror(errno));
    return 1;
  }
  // 0. Protection.
  check(info.flags & ULS_INFO_PROTECTED, "the region is protected (uls.protect=1)");
  check(read_faults(region) && read_faults(region + info.size - 1), "this process's own reads of it fault");
  check(write(1, region, 16) == -1 && errno == EFAULT, "the kernel refuses it as a buffer (EFAULT)");
  char buf[16] = "0123456789abcde";
  check(pwrite(fd, buf, 16, (off_t)info.size - 8) == -1 && errno == EINVAL, "pwrite across its end is EINVAL");
  check(pwrite(fd, buf, 1, (off_t)info.size) == -1 && errno == EINVAL, "pwrite past its end is EINVAL");
  check(pread(fd, buf, 16, (off_t)info.size - 8) == -1 && errno == EINVAL, "pread across its end is EINVAL");
  check(pread(fd, buf, 16, -1) == -1 && errno == EINVAL, "a negative offset is EINVAL");
  void* volatile bad_buf = (void*)16;
  check(pwrite(fd, bad_buf, 16, 0) == -1 && errno == EFAULT, "pwrite from a bad buffer is EFAULT");
  check(munmap(region + 4096, 4096) == -1 && errno == EINVAL, "its mapping cannot be split");
  check(mremap(region, info.size, info.size, MREMAP_MAYMOVE | MREMAP_FIXED, (void*)(info.base + 2 * info.size)) == MAP_FAILED,
        "nor moved");

  uint32_t rec = reg_blob(ext_record, ext_record_end, 0, "record");
  uint32_t flt = reg_blob(ext_fault, ext_fault_end, 1, "fault");
  uint32_t loop = reg_blob(ext_loop, ext_loop_end, 2, "loop");
  uint32_t ret = reg_blob(ext_ret, ext_ret_end, 3, "ret");
  check(rec && flt && loop && ret, "four extensions registered");
  const uint64_t rec_state = STATE;

  errno = 0;
  check(syscall(ULS_SYSCALL_RETURN) == -1 && errno == EINVAL, "the return call outside an upcall is EINVAL");

  // 1. Raised: runs in this process on the way back from the ioctl; every register comes back.
  struct rec r;
  memset(&r, 0, sizeof r);
  r.watch_pid = getpid();
  r.magic_in = 0x5eed0001;
  region_write(rec_state, &r, sizeof r);
  uint64_t out[7];
  // (One upcall judged by how it ended: a long budget meanwhile; uls_t_budget_ms says why.)
  unsigned budget = uls_t_budget_ms("uls_upcall", 1000);
  raise_check(fd, ULS_IOC_RAISE, &rec, out);
  uls_t_budget_ms("uls_upcall", budget);
  region_read(rec_state, &r, sizeof r);
  check(out[0] == 0, "RAISE returns 0");
  check(r.count == 1 && r.pid == getpid() && r.watch_count == 1, "the extension ran once, in the raising process");
  check(r.fork_rc == -EPERM, "fork inside the extension is EPERM");
  check(r.now_ns >= r.event_ns && r.event_ns > 0, "it saw the event time and read the clock");
  check(out[1] == 0x1111111111111111ull && out[2] == 0x2222222222222222ull &&
            out[3] == 0x3333333333333333ull && out[4] == 0x4444444444444444ull &&
            out[5] == 0x5555555555555555ull,
        "rbx, r12-r15 are the process's again");
  check(out[6] == 0x6666666666666666ull, "xmm2 is the process's again (FPU state restored)");
  check(r.magic_out == 0x5eed0001 && r.state_addr == info.base + STATE, "the extension read the region at its address");
  check(read_faults(region + STATE) && read_faults(region + CODE), "after the upcall this process is locked out again");
  struct uls_stats s = stats(rec);
  print_stats("raise", s);
  check(s.upcalls == 1 && s.returned == 1 && s.in_current == 1 && s.denied_syscalls == 1 &&
            s.last_pid == getpid() && accounted(s),
        "counters: one upcall in the current process, returned, one call denied");

  // 1b. Raised again and again, as //bench:vm_micro does: every raise runs the extension in this
  // process on its way back, however many come back to back. Patch 0015 bounds chains of upcalls
  // a process did not ask for; a raise is its own code asking, and begins a new chain. Before
  // that, raises counted into the chain: vm_micro saw 6795 of its 25500 raises run (the rest
  // waited, coalesced, for a later one).
  {
    const struct uls_stats b = stats(rec);
    const int n = 3000;
    int errors = 0;
    for (int i = 0; i < n; ++i)
      if (ioctl(fd, ULS_IOC_RAISE, &rec) != 0) ++errors;
    const struct uls_stats a = stats(rec);
    print_stats("raise x3000", a);
    region_read(rec_state, &r, sizeof r);
    // (An upcall ended by the budget -- a host stall under TCG, see uls_t_budget_ms -- still ran.)
    check(errors == 0 && a.events - b.events == (uint64_t)n && a.in_current - b.in_current == (uint64_t)n &&
              a.coalesced == b.coalesced && a.pending == 0 &&
              (a.returned + a.overruns) - (b.returned + b.overruns) == (uint64_t)n && r.watch_count == 1 + (uint64_t)n,
          "3000 raises in a row: each ran the extension in this process, none waited");
  }

  // 2. Timer: runs inside an unrelated process that happens to be current, which computes on.
  memset(&r, 0, sizeof r);
  pid_t spinner = spawn("spin", 3000);
  r.watch_pid = spinner;
  r.magic_in = 0x5eed0002;
  region_write(rec_state, &r, sizeof r);
  check(bind_timer(rec, 1000000) == 0, "the extension is bound to a 1 ms timer");
  int st = 0;
  waitpid(spinner, &st, 0);
  check(bind_timer(rec, 0) == 0, "and unbound");
  region_read(rec_state, &r, sizeof r);
  s = stats(rec);
  print_stats("timer", s);
  printf("uls_upcall: timer: %llu upcalls in the spinner (pid %d), delay avg %llu ns max %llu ns\n",
         (unsigned long long)r.watch_count, spinner,
         (unsigned long long)(r.count ? r.sum_delay / r.count : 0), (unsigned long long)r.max_delay);
  check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the spinner's computation stayed exact and it exited normally");
  check(r.watch_count >= 50, "the extension ran in the spinner's context (its pid), at least 50 times");
  check(s.in_current >= r.watch_count && accounted(s), "counted as upcalls in the current process, all accounted");
  check(r.magic_out == 0x5eed0002 && r.state_addr == info.base + STATE,
        "there it read the same region contents at the same address");
  check(s.pages_mapped >= 3 * r.watch_count, "the region's pages were mapped for each upcall (code, stack, state)");

  // 2b. A multi-threaded process shares its page tables: it never takes an upcall.
  int ready[2], stop[2];
  if (pipe(ready) != 0 || pipe(stop) != 0) return 1;
  pid_t spin2 = fork();
  if (spin2 == 0) {
    close(ready[0]);
    close(stop[1]);
    char ms[16], rfd[16], sfd[16];
    snprintf(ms, sizeof ms, "%d", 1500);
    snprintf(rfd, sizeof rfd, "%d", ready[1]);
    snprintf(sfd, sizeof sfd, "%d", stop[0]);
    execl("/proc/self/exe", "uls_upcall_test", "spin2", ms, rfd, sfd, (char*)NULL);
    _exit(127);
  }
  close(ready[1]);
  close(stop[0]);
  char ch = 0;
  check(read(ready[0], &ch, 1) == 1, "the spinner has its second thread");  // EOF if it died
  close(ready[0]);
  memset(&r, 0, sizeof r);
  r.watch_pid = spin2;
  region_write(rec_state, &r, sizeof r);
  struct uls_stats b2 = stats(rec);
  check(bind_timer(rec, 2000000) == 0, "bound to a 2 ms timer with a two-threaded spinner running");
  usleep(1000000);
  bind_timer(rec, 0);
  // What ran while it had two threads (after the stop byte it may rightly take a pending one).
  region_read(rec_state, &r, sizeof r);
  s = stats(rec);
  print_stats("spin2", s);
  if (write(stop[1], "s", 1) != 1) printf("uls_upcall: stop: %s\n", strerror(errno));
  close(stop[1]);
  waitpid(spin2, &st, 0);
  check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the two-threaded spinner computed exactly");
  check(r.watch_count == 0 && s.ineligible > b2.ineligible,
        "it never ran the extension; it was counted ineligible");
  check(accounted(s), "all accounted");

  // 2c. One upcall of an extension at a time (it has one stack): a long extension on a fast
  // timer, with two spinners competing for the CPU, is preempted inside its upcalls; the next
  // event must wait for it rather than start it again in the task that runs meanwhile.
  {
    uint32_t ov = reg_blob(ext_overlap, ext_overlap_end, 4, "overlap");
    struct { int64_t tickets, overlaps, count, current; } o = {0, 0, 0, -1};
    const uint64_t ov_state = STATE + 4 * 0x1000;
    region_write(ov_state, &o, sizeof o);
    pid_t s1 = spawn("spin", 1500), s2 = spawn("spin", 1500);
    check(ov != 0 && bind_timer(ov, 200000) == 0, "a ~1 ms extension bound to a 200 us timer, two spinners");
    int st1 = 0, st2 = 0;
    waitpid(s1, &st1, 0);
    waitpid(s2, &st2, 0);
    bind_timer(ov, 0);
    usleep(100000);
    region_read(ov_state, &o, sizeof o);
    struct uls_stats so = stats(ov);
    print_stats("overlap", so);
    printf("uls_upcall: overlap: %lld entries, %lld ran to the end (%llu ended early), %lld saw another entry "
           "while inside\n",
           (long long)o.tickets, (long long)o.count, (unsigned long long)so.overruns, (long long)o.overlaps);
    check(o.count > 100 && o.overlaps == 0 && so.faults == 0,
          "it never ran twice at once (no entry came while another was inside), no fault");
    check(so.coalesced > 0 && accounted(so), "events that came while it ran waited (coalesced), all accounted");
    check(WIFEXITED(st1) && WEXITSTATUS(st1) == 0 && WIFEXITED(st2) && WEXITSTATUS(st2) == 0,
          "both spinners computed exactly");
    ioctl(fd, ULS_IOC_UNREGISTER, &ov);
  }

  // 3. Idle CPU: a host takes the upcall.
  memset(&r, 0, sizeof r);
  pid_t host = spawn("host", 2500);
  r.watch_pid = host;
  region_write(rec_state, &r, sizeof r);
  struct uls_stats before = stats(rec);
  usleep(200000);  // the host is waiting
  check(bind_timer(rec, 5000000) == 0, "bound to a 5 ms timer while this process sleeps");
  usleep(1000000);
  bind_timer(rec, 0);
  waitpid(host, &st, 0);
  region_read(rec_state, &r, sizeof r);
  s = stats(rec);
  print_stats("host", s);
  check(r.watch_count >= 20 && s.in_host - before.in_host >= 20 && s.host_wakeups > before.host_wakeups,
        "with the CPU idle, the woken host ran the extension (its pid), at least 20 times");
  check(accounted(s), "all accounted");

  // 4. Faults and overruns end the upcall; the process (this one: if containment failed, the
  // test would die here and never print its verdict) lives on. (The faults with a long budget,
  // as for the raise above; the endless one with the budget it had.)
  budget = uls_t_budget_ms("uls_upcall", 1000);
  check(raise_id(&flt) == 0, "a process whose upcall faults continues normally");
  s = stats(flt);
  print_stats("fault", s);
  check(s.faults == 1 && s.last_fault_sig == SIGSEGV && s.last_fault_addr == 0x10 &&
            s.last_fault_ip == info.base + CODE + 1 * 0x1000,
        "the fault is counted with its signal, address and instruction");
  st = raise_id(&ret);
  s = stats(ret);
  print_stats("ret", s);
  check(st == 0 && s.faults == 1 && s.last_fault_ip == 0,
        "returning off the entry function is a fault at address 0, contained");
  uls_t_budget_ms("uls_upcall", budget);
  uint64_t t0 = guest_now_ns();
  st = raise_id(&loop);
  uint64_t took = guest_now_ns() - t0;
  s = stats(loop);
  print_stats("loop", s);
  check(st == 0 && s.overruns == 1 && s.returned == 0,
        "an endless extension is ended by its budget and the process continues");
  printf("uls_upcall: loop ended after %llu us\n", (unsigned long long)(took / 1000));
  check(took < 2000000000ull, "within 2 s");

  // 5. Bad arguments.
  struct uls_bind b = {.id = 0, .event = ULS_EVENT_TIMER, .period_ns = 1000000};
  check(ioctl(fd, ULS_IOC_BIND, &b) == -1 && errno == ENOENT, "BIND of id 0 is ENOENT");
  b.id = rec;
  b.period_ns = ULS_PERIOD_MIN_NS - 1;
  check(ioctl(fd, ULS_IOC_BIND, &b) == -1 && errno == EINVAL, "a period below the minimum is EINVAL");
  b.period_ns = ULS_PERIOD_MAX_NS + 1;
  check(ioctl(fd, ULS_IOC_BIND, &b) == -1 && errno == EINVAL, "a period above the maximum is EINVAL");
  b.period_ns = 1000000;
  b.event = 7;
  check(ioctl(fd, ULS_IOC_BIND, &b) == -1 && errno == EINVAL, "an unknown event is EINVAL");
  b.event = ULS_EVENT_TIMER;
  b.reserved = 1;
  check(ioctl(fd, ULS_IOC_BIND, &b) == -1 && errno == EINVAL, "a non-zero reserved field is EINVAL");
  b.reserved = 0;
  b.event = ULS_EVENT_NONE;
  check(ioctl(fd, ULS_IOC_BIND, &b) == -1 && errno == EINVAL, "unbinding with a period is EINVAL");
  check(ioctl(fd, ULS_IOC_BIND, (void*)16) == -1 && errno == EFAULT, "BIND of a bad pointer is EFAULT");
  uint32_t bad = ULS_MAX_EXTENSIONS + 1;
  check(ioctl(fd, ULS_IOC_RAISE, &bad) == -1 && errno == ENOENT, "RAISE of an unknown id is ENOENT");
  check(ioctl(fd, ULS_IOC_RAISE, (void*)16) == -1 && errno == EFAULT, "RAISE of a bad pointer is EFAULT");
  uint32_t zero = 0;
  check(ioctl(fd, ULS_IOC_HOST, &zero) == -1 && errno == EINVAL, "HOST for 0 ms is EINVAL");
  uint32_t big = 60001;
  check(ioctl(fd, ULS_IOC_HOST, &big) == -1 && errno == EINVAL, "HOST for over 60 s is EINVAL");
  struct uls_stats q = {.id = ULS_MAX_EXTENSIONS};
  check(ioctl(fd, ULS_IOC_STATS, &q) == -1 && errno == ENOENT, "STATS of a free id is ENOENT");
  pid_t pid = fork();
  if (pid == 0) {
    struct uls_bind c = {.id = rec, .event = ULS_EVENT_TIMER, .period_ns = 1000000};
    int a = ioctl(fd, ULS_IOC_BIND, &c) == -1 && errno == EPERM;
    int b2 = ioctl(fd, ULS_IOC_RAISE, &rec) == -1 && errno == EPERM;
    _exit(a && b2 ? 0 : 1);
  }
  waitpid(pid, &st, 0);
  check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "another process binding or raising it is EPERM");

  // 6. Unregistering a bound extension stops its events.
  check(bind_timer(rec, 1000000) == 0, "bound again");
  check(ioctl(fd, ULS_IOC_UNREGISTER, &rec) == 0, "unregistered while bound");
  region_read(rec_state, &r, sizeof r);
  uint64_t c0 = r.count;
  usleep(50000);
  region_read(rec_state, &r, sizeof r);
  check(r.count == c0, "and it runs no more");
  uint32_t rest[] = {flt, loop, ret};
  for (int i = 0; i < 3; ++i) ioctl(fd, ULS_IOC_UNREGISTER, &rest[i]);

  printf("ULSNET-TEST uls_upcall %s\n", failures ? "fail" : "pass");
  return failures ? 1 : 0;
}
