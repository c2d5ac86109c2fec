// In-guest randomized tester of the ULS series' entry points (issue 13, "hostile-input fuzzing").
//
//   uls_fuzz [seconds=S] [calls=N] [seed=X] [workers=W]
//       S: how long the storm lasts (default 20); N: the least number of calls: it goes on past S
//       until they are made (the guest's clock can jump under TCG), but never past 4 S, and fails
//       if they were not (default 0); X: the seed (default: from the clock; printed either way); W: worker
//       processes besides the main one (default 3, at most 8).
//
// Every process draws operations at random, with hostile arguments, against everything the
// series added:
//   - every ioctl of /dev/uls (and unknown ones of its magic) with random and mutated arguments,
//     bad pointers, other processes' extension ids;
//   - pread/pwrite of the region at random offsets and sizes, over live extensions' states,
//     stacks, rings and pools (and code, with bytes that trap);
//   - the return call outside an upcall, with random arguments;
//   - extensions that misbehave inside their upcalls (one blob, ext_chaos, whose state says what
//     it does: fault in a dozen ways, loop past the budget, overflow its stack, call random
//     system calls by `syscall`, `int $0x80` and `sysenter`, load random segment selectors,
//     flags (TF, AC, DF), MXCSR and x87 control words), bound to timers, raised, hosted;
//   - the process around them: fork (children that take upcalls and exit), exec, threads,
//     ptrace (peek, poke, registers redirected into the region, syscall stepping) and
//     /proc/PID/mem of a task taking upcalls, mmap/munmap/mremap/mprotect/madvise of the region's
//     address range, signals, CPU migration, closing and reopening /dev/uls;
//   - the zero-copy path (boot with --nics 2): the main process binds eth0 and eth1, sends frames
//     from eth0 to eth1 through the rings while everyone writes arbitrary indices and
//     descriptors into them, and takes the links down and up;
//   - the module's writable parameters (budget_ms, hold_ms), restored at the end.
//
// It fails on any kernel report in the log (BUG, WARNING, KASAN, lockdep, Oops, SLUB errors,
// hung tasks, RCU stalls), a worker or plain child killed by a signal, a worker that does not
// finish (a hang: its wait channel is printed), a system call an extension made that was not
// refused, the region read or written through ptrace or /proc/PID/mem while it is protected, an
// extension's counters that do not add up, and anything left registered or bound once its
// owners are gone. The machinery must still work afterwards (an extension registered and raised
// runs). Processes race, so a seed reproduces the draws, not the interleaving.
//
// Prints "uls_fuzz: ..." lines, a table of calls per operation, "uls_fuzz: calls=N ..." and
// "ULSNET-TEST uls_fuzz pass|fail"; exits non-zero on failure.
#define _GNU_SOURCE
#include <fcntl.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kernel/guest/guest_util.h"
#include "kernel/tests/uls_test_region.h"

// ---- the misbehaving extension -----------------------------------------------------------
// struct chaos, its state (in the region, at its slot's state page). The fuzzer writes the
// first fields (and random bytes anywhere); the extension writes the rest.
struct chaos {
  uint64_t mode;      // 0: what to do, taken modulo CHAOS_MODES
  uint64_t nr;        // 8: system call number (modes 10-12)
  uint64_t args[5];   // 16: rdi, rdx, r10, r8, r9 (rsi always points into the state, 256)
  uint64_t flags;     // 56: mode 14: what popf loads
  uint64_t selector;  // 64: mode 15: what goes into a segment register
  uint64_t rec_nr;    // 72: the last call made: its number,
  uint64_t rec_rc;    // 80: what it returned,
  uint64_t rec_check; // 88: rec_nr ^ rec_rc ^ CHAOS_MAGIC (a torn read does not match)
  uint64_t count;     // 96: upcalls that got to their end
  uint64_t spin;      // 104: mode 21: rounds to spin
};
#define CHAOS_MODES 24
#define CHAOS_MAGIC 0x5a5a5a5a12345678ull
// Pushes of modes 13 and 18: 4 KiB past a STACK_SIZE (16 KiB) stack, into the next slot's stack
// below it (the region has no guard pages between stacks) and never further, so that no
// extension's code or state is overwritten with what could run as code.
#define CHAOS_OVERFLOW 2560

extern const char ext_chaos[], ext_chaos_end[];
// Modes: 0 return; 1 count and return; 2 loop forever (the budget ends it); 3 read address 0;
// 4 write a kernel address; 5 jump to a non-canonical address; 6 ud2; 7 hlt; 8 cli; 9 int3;
// 10 `int $0x80` with eax = nr; 11 `syscall` with rax = nr; 12 sysenter with eax = nr; 13 push
// past the end of its stack (CHAOS_OVERFLOW), return; 14 popf with random flags, then an
// unaligned load, return; 15 a random selector into ds, es, fs, gs, return; 16 ldmxcsr random;
// 17 fldcw random, an x87 division by zero, return; 18 call itself (CHAOS_OVERFLOW deep),
// return; 19 write its own code; 20 cpuid and rdtsc, return; 21 spin `spin` rounds, return;
// 22 the return call with rsp = 0 and every register garbage; 23 wrpkru of all ones (every key
// closed: its next access faults; without PKU: #UD).
__asm__(
    ".text\n"
    "ext_chaos:\n"
    "  mov %rdi, %rbx\n"
    "  mov 0(%rbx), %rax\n"
    "  xor %edx, %edx\n"
    "  mov $" GUEST_STRINGIFY(CHAOS_MODES) ", %ecx\n"
    "  div %rcx\n"  // rdx = mode % CHAOS_MODES
    "  cmp $0, %edx\n  je c_ret\n"
    "  cmp $1, %edx\n  je c_count\n"
    "  cmp $2, %edx\n  je c_loop\n"
    "  cmp $3, %edx\n  je c_read0\n"
    "  cmp $4, %edx\n  je c_writek\n"
    "  cmp $5, %edx\n  je c_noncanon\n"
    "  cmp $6, %edx\n  je c_ud2\n"
    "  cmp $7, %edx\n  je c_hlt\n"
    "  cmp $8, %edx\n  je c_cli\n"
    "  cmp $9, %edx\n  je c_int3\n"
    "  cmp $10, %edx\n  je c_int80\n"
    "  cmp $11, %edx\n  je c_syscall\n"
    "  cmp $12, %edx\n  je c_sysenter\n"
    "  cmp $13, %edx\n  je c_push\n"
    "  cmp $14, %edx\n  je c_popf\n"
    "  cmp $15, %edx\n  je c_sel\n"
    "  cmp $16, %edx\n  je c_mxcsr\n"
    "  cmp $17, %edx\n  je c_fldcw\n"
    "  cmp $18, %edx\n  je c_recurse\n"
    "  cmp $19, %edx\n  je c_selfwrite\n"
    "  cmp $20, %edx\n  je c_cpuid\n"
    "  cmp $21, %edx\n  je c_spin\n"
    "  cmp $22, %edx\n  je c_badret\n"
    "  jmp c_wrpkru\n"
    "c_count:\n"
    "  lock incq 96(%rbx)\n"
    "c_ret:\n"
    GUEST_ASM_ULS_RETURN
    "  ud2\n"
    "c_loop:\n  jmp c_loop\n"
    "c_read0:\n  mov 0, %rax\n  ud2\n"
    "c_writek:\n  movabs $0xffffffff81000000, %rax\n  movq $1, (%rax)\n  ud2\n"
    "c_noncanon:\n  movabs $0x8000000000000000, %rax\n  jmp *%rax\n"
    "c_ud2:\n  ud2\n"
    "c_hlt:\n  hlt\n  ud2\n"
    "c_cli:\n  cli\n  ud2\n"
    "c_int3:\n  int3\n  ud2\n"
    // The calls: arguments from the state, rsi into the state (clock_gettime, which is allowed,
    // writes there and nowhere in the process).
    "c_args:\n"
    "  mov 8(%rbx), %rax\n"
    "  mov 16(%rbx), %rdi\n"
    "  lea 256(%rbx), %rsi\n"
    "  mov 24(%rbx), %rdx\n"
    "  mov 32(%rbx), %r10\n"
    "  mov 40(%rbx), %r8\n"
    "  mov 48(%rbx), %r9\n"
    "  ret\n"
    "c_record:\n"  // rcx = number, rax = result (32-bit calls: eax)
    "  mov %rcx, 72(%rbx)\n"
    "  mov %rax, 80(%rbx)\n"
    "  xor %rcx, %rax\n"
    "  movabs $" GUEST_STRINGIFY(CHAOS_MAGIC) ", %rcx\n"
    "  xor %rcx, %rax\n"
    "  mov %rax, 88(%rbx)\n"
    "  jmp c_count\n"
    "c_int80:\n"
    "  call c_args\n"
    "  mov %rax, %r12\n"
    "  mov %rdi, %rbx\n"  // (32-bit arguments: ebx, ecx, edx, ...; the state is lost to ebx)
    "  lea -256(%rsi), %r13\n"
    "  mov %rdx, %rcx\n"
    "  int $0x80\n"
    "  mov %r13, %rbx\n"
    "  mov %r12, %rcx\n"
    "  jmp c_record\n"
    "c_syscall:\n"
    "  call c_args\n"
    "  mov %rax, %r12\n"
    "  syscall\n"
    "  mov %r12, %rcx\n"
    "  jmp c_record\n"
    "c_sysenter:\n"
    "  call c_args\n"
    "  mov %rax, %r12\n"
    "  mov %rsp, %rbp\n"
    "  sysenter\n"
    "  mov %rbp, %rsp\n"
    "  mov %r12, %rcx\n"
    "  jmp c_record\n"
    // (What it pushes, should another extension's `ret` take it from its overwritten stack:
    // c_count, which ends that upcall.)
    "c_push:\n"
    "  lea c_count(%rip), %rax\n"
    "  mov $" GUEST_STRINGIFY(CHAOS_OVERFLOW) ", %ecx\n"
    "1:\n  push %rax\n  dec %ecx\n  jnz 1b\n"
    "  jmp c_count\n"
    "c_popf:\n"
    "  push 56(%rbx)\n"
    "  popfq\n"
    "  mov 1(%rbx), %rax\n"  // unaligned: #AC if popf set AC
    "  jmp c_count\n"
    "c_sel:\n"
    "  mov 64(%rbx), %rax\n"
    "  mov %eax, %ds\n"
    "  shr $16, %rax\n  mov %eax, %es\n"
    "  shr $16, %rax\n  mov %eax, %fs\n"
    "  shr $16, %rax\n  mov %eax, %gs\n"
    "  jmp c_count\n"
    "c_mxcsr:\n"
    "  ldmxcsr 64(%rbx)\n"
    "  addsd %xmm0, %xmm1\n"
    "  jmp c_count\n"
    "c_fldcw:\n"
    "  fldcw 64(%rbx)\n"
    "  fld1\n  fldz\n  fdivrp\n"
    "  fstp %st(0)\n"
    "  jmp c_count\n"
    "c_recurse:\n"
    "  mov $" GUEST_STRINGIFY(CHAOS_OVERFLOW) ", %r14d\n"
    "c_rec1:\n  dec %r14d\n  jz c_count\n  call c_rec1\n"
    "c_selfwrite:\n"
    "  lea ext_chaos(%rip), %rax\n"
    "  movb $0xcc, (%rax)\n"  // (an int3 where it starts: the next upcall of it traps)
    "  jmp c_count\n"
    "c_cpuid:\n"
    "  xor %eax, %eax\n  cpuid\n  rdtsc\n"
    "  jmp c_count\n"
    "c_spin:\n"
    "  mov 104(%rbx), %rcx\n"
    "  and $0xfffff, %rcx\n"
    "1:\n  test %rcx, %rcx\n  jz c_count\n  dec %rcx\n  jmp 1b\n"
    "c_badret:\n"
    "  mov $-1, %rcx\n  mov $-1, %rdx\n  mov $-1, %rsi\n  mov $-1, %rdi\n  mov $-1, %rbp\n"
    "  mov $-1, %r8\n  mov $-1, %r9\n  mov $-1, %r10\n  mov $-1, %r11\n  mov $-1, %r12\n"
    "  mov $-1, %r13\n  mov $-1, %r14\n  mov $-1, %r15\n  mov $-1, %rbx\n"
    "  xor %esp, %esp\n"
    "  std\n"
    GUEST_ASM_ULS_RETURN
    "  ud2\n"
    "c_wrpkru:\n"
    "  xor %ecx, %ecx\n  xor %edx, %edx\n  mov $-1, %eax\n"
    "  .byte 0x0f, 0x01, 0xef\n"  // wrpkru
    "  jmp c_count\n"
    "ext_chaos_end:\n");

// ---- randomness ------------------------------------------------------------------------------
static uint64_t rng;
static uint64_t rnd(void) {  // xorshift64*
  rng ^= rng >> 12;
  rng ^= rng << 25;
  rng ^= rng >> 27;
  return rng * 0x2545F4914F6CDD1Dull;
}
static uint64_t below(uint64_t n) { return n ? rnd() % n : 0; }
static int chance(unsigned percent) { return below(100) < percent; }
static void fill_random(void* p, size_t n) {
  for (size_t i = 0; i < n; ++i) ((uint8_t*)p)[i] = (uint8_t)rnd();
}

// ---- what all processes share ------------------------------------------------------------
enum op {
  OP_IOCTL_RANDOM, OP_INFO, OP_REGISTER, OP_UNREGISTER, OP_QUERY, OP_BIND, OP_RAISE, OP_STATS, OP_HOST,
  OP_NET_BIND, OP_NET_UNBIND, OP_NET_STATS, OP_PREAD, OP_PWRITE, OP_CHAOS_STATE, OP_RETURN_CALL, OP_FORK,
  OP_EXEC, OP_THREAD, OP_PTRACE, OP_PROC_MEM, OP_MM, OP_SIGNAL, OP_AFFINITY, OP_REOPEN, OP_SYSFS, OP_RINGS,
  OP_TRAFFIC, OP_LINK, OP_COUNT
};
static const char* const op_names[OP_COUNT] = {
    "ioctl_random", "info", "register", "unregister", "query", "bind", "raise", "stats", "host",
    "net_bind", "net_unbind", "net_stats", "pread", "pwrite", "chaos_state", "return_call", "fork",
    "exec", "thread", "ptrace", "proc_mem", "mm", "signal", "affinity", "reopen", "sysfs", "rings",
    "traffic", "link"};
// Draw weights of the operations for every process (OP_TRAFFIC and OP_LINK: the main one only).
static const unsigned op_weight[OP_COUNT] = {
    [OP_IOCTL_RANDOM] = 60, [OP_INFO] = 5, [OP_REGISTER] = 40, [OP_UNREGISTER] = 20, [OP_QUERY] = 20,
    [OP_BIND] = 40, [OP_RAISE] = 40, [OP_STATS] = 20, [OP_HOST] = 10, [OP_NET_BIND] = 20,
    [OP_NET_UNBIND] = 10, [OP_NET_STATS] = 15, [OP_PREAD] = 30, [OP_PWRITE] = 30, [OP_CHAOS_STATE] = 40,
    [OP_RETURN_CALL] = 10, [OP_FORK] = 3, [OP_EXEC] = 1, [OP_THREAD] = 2, [OP_PTRACE] = 2, [OP_PROC_MEM] = 3,
    [OP_MM] = 15, [OP_SIGNAL] = 5, [OP_AFFINITY] = 5, [OP_REOPEN] = 2, [OP_SYSFS] = 1, [OP_RINGS] = 20,
    [OP_TRAFFIC] = 0, [OP_LINK] = 0};

struct shared {
  uint64_t calls[OP_COUNT], ok[OP_COUNT];
  int failed;
  char why[512];
};
static struct shared* sh;
static int me;  // 0: the main process, 1..W: workers

static void count(enum op o, int calls, int ok) {
  __atomic_fetch_add(&sh->calls[o], (uint64_t)calls, __ATOMIC_RELAXED);
  if (ok) __atomic_fetch_add(&sh->ok[o], 1, __ATOMIC_RELAXED);
}
static void fail(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char* fmt, ...) {
  char msg[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  printf("uls_fuzz: FAIL (process %d): %s\n", me, msg);
  if (__atomic_exchange_n(&sh->failed, 1, __ATOMIC_ACQ_REL) == 0) snprintf(sh->why, sizeof sh->why, "%s", msg);
}

// ---- the region plan ------------------------------------------------------------------------
// Slots (uls_test_region.h: code, state, stack per slot): worker w uses 3w..3w+2 (w = 1..4), the
// main process 0..2 (its two NIC extensions are 0 and 1); workers beyond 4 share slots (their
// registrations then fail with EEXIST/EBUSY, which is hostile input too).
enum { RINGS0 = 0x30000, RINGS1 = 0x34000, POOL = 0x200000, POOL_SIZE = 0x100000, NBUF = POOL_SIZE / 2048 };
static int fd = -1;
static struct uls_info info;
static int protected_region, have_nics;
static unsigned slot_base;

static uint64_t region_addr(uint64_t off) { return info.base + off; }
// The region through the kernel, where the offset is valid (a failure is said).
static void wr(uint64_t off, const void* p, size_t n) { uls_t_region_write("uls_fuzz", fd, off, p, n); }
static void rd(uint64_t off, void* p, size_t n) { uls_t_region_read("uls_fuzz", fd, off, p, n); }

#define MAX_OWN 8
static uint32_t own[MAX_OWN];
static unsigned own_slot[MAX_OWN];
static int n_own;

static uint32_t any_id(void) {
  if (n_own && chance(70)) return own[below((uint64_t)n_own)];
  return (uint32_t)(chance(90) ? below(ULS_MAX_EXTENSIONS + 2) : rnd());
}
static void forget(uint32_t id) {
  for (int i = 0; i < n_own; ++i)
    if (own[i] == id) {
      own[i] = own[n_own - 1];
      own_slot[i] = own_slot[n_own - 1];
      --n_own;
      return;
    }
}

static void write_chaos(unsigned slot, int benign) {
  struct chaos c;
  memset(&c, 0, sizeof c);
  c.mode = benign ? 1 : rnd();
  // Mostly the calls and the quick endings; every mode often enough.
  if (!benign && chance(40)) c.mode = 10 + below(3);
  static const uint64_t nrs[] = {39, 186, 228, 1000, 0, 1, 2, 9, 10, 11, 56, 57, 59, 60, 62, 101, 157, 158, 231,
                                 317, 435, 451, 0x40000000 + 39, 0xffffffff, (uint64_t)-1};
  c.nr = chance(70) ? nrs[below(sizeof nrs / sizeof nrs[0])] : below(1100);
  for (int i = 0; i < 5; ++i) c.args[i] = chance(50) ? below(64) : rnd();
  c.flags = rnd() & 0x2c0ed5;  // CF PF AF ZF SF TF DF OF NT AC ID (IF, IOPL: ignored at CPL 3)
  // Mostly selectors that load (null ones of every RPL, the user data and code segments), so that
  // the extension really changes the segment registers; else anything (a #GP ends it).
  static const uint16_t sels[] = {0, 1, 2, 3, 0x23, 0x2b, 0x33};
  c.selector = 0;
  for (int i = 0; i < 4; ++i)
    c.selector |= (uint64_t)(chance(70) ? sels[below(sizeof sels / sizeof sels[0])] : (uint16_t)rnd()) << (16 * i);
  c.spin = rnd();
  wr(uls_t_state_off(slot), &c, offsetof(struct chaos, rec_nr));
  count(OP_CHAOS_STATE, 1, 1);
}

// Checks what the extension at `slot` recorded of its last system call: anything but getpid,
// gettid, clock_gettime (and the return call, which records nothing) must have been refused.
static void check_chaos_record(unsigned slot) {
  struct chaos c;
  if (pread(fd, &c, sizeof c, (off_t)uls_t_state_off(slot)) != (ssize_t)sizeof c) return;
  if ((c.rec_nr ^ c.rec_rc ^ CHAOS_MAGIC) != c.rec_check || (c.rec_nr == 0 && c.rec_rc == 0)) return;
  uint64_t nr = c.rec_nr;
  int allowed = nr == 39 || nr == 186 || nr == 228;
  if (!allowed && (int64_t)c.rec_rc != -1)
    fail("an extension's system call %llu returned %lld, not EPERM", (unsigned long long)nr, (long long)c.rec_rc);
}

// ---- operations ---------------------------------------------------------------------------
static const char* const if_names[] = {"eth0", "eth1", "lo", "", "eth2", "nosuch0", "eth0\n"};
static void random_ifname(char name[ULS_IFNAMSIZ]) {
  memset(name, 0, ULS_IFNAMSIZ);
  if (chance(85))
    snprintf(name, ULS_IFNAMSIZ, "%s", if_names[below(sizeof if_names / sizeof if_names[0])]);
  else
    fill_random(name, ULS_IFNAMSIZ);  // possibly without its NUL
}
static uint32_t random_off(void) {
  switch (below(6)) {
    case 0: return (uint32_t)(below(info.size / 4096) * 4096);
    case 1: return (uint32_t)below(info.size);
    case 2: return (uint32_t)(info.size - 4096 * below(4));
    case 3: return (uint32_t)rnd();
    case 4: return chance(50) ? RINGS0 : RINGS1;
    default: return POOL + (uint32_t)(below(NBUF) * 2048);
  }
}
static void* bad_pointer(void) {
  static const uintptr_t bad[] = {0, 16, 0xffff888000000000ull, 0xffffffff81000000ull, 0x8000000000000000ull,
                                  ULS_REGION_BASE, ULS_REGION_BASE + 0x20000};
  return (void*)bad[below(sizeof bad / sizeof bad[0])];
}

static void op_ioctl_random(void) {
  uint8_t buf[256];
  fill_random(buf, sizeof buf);
  static const unsigned long cmds[] = {ULS_IOC_INFO, ULS_IOC_REGISTER, ULS_IOC_UNREGISTER, ULS_IOC_QUERY,
                                       ULS_IOC_BIND, ULS_IOC_RAISE, ULS_IOC_STATS, ULS_IOC_HOST,
                                       ULS_IOC_NET_BIND, ULS_IOC_NET_UNBIND, ULS_IOC_NET_STATS};
  unsigned long cmd = chance(60) ? cmds[below(sizeof cmds / sizeof cmds[0])]
                                 : _IOC(below(4), ULS_IOC_MAGIC, below(0x20), below(0x100));
  if (cmd == ULS_IOC_HOST) {  // (a random timeout could be a minute)
    uint32_t ms = (uint32_t)below(3);
    memcpy(buf, &ms, sizeof ms);
  }
  void* arg = chance(70) ? (void*)buf : bad_pointer();
  count(OP_IOCTL_RANDOM, 1, ioctl(fd, cmd, arg) == 0);
}

static void op_register(void) {
  unsigned slot = slot_base + (unsigned)below(3);
  int benign = chance(30);
  if (chance(80)) wr(uls_t_code_off(slot), ext_chaos, (size_t)(ext_chaos_end - ext_chaos));
  write_chaos(slot, benign);
  char name[16];
  snprintf(name, sizeof name, "fuzz%u", slot);
  struct uls_extension e = uls_t_slot_extension(&info, slot, name);
  for (int k = (int)below(4) * (benign ? 0 : 1); k > 0; --k) {
    switch (below(9)) {
      // (Never an entry inside the region but off the blobs: what lies there, run as code,
      // could write anywhere in the process, which the region does not protect: finding 9.)
      case 0: e.entry += chance(50) ? info.size : (uint64_t)-4096; break;
      case 1: e.stack_base = rnd(); break;
      case 2: e.stack_size = chance(50) ? 0 : below(1u << 24); break;
      case 3: e.state = chance(50) ? 0 : rnd(); break;
      case 4: e.flags = (uint32_t)rnd(); break;
      case 5: e.reserved = (uint32_t)rnd(); break;
      case 6: fill_random(e.name, sizeof e.name); break;
      case 7: e.entry = rnd() | 0x8000000000000000ull; break;
      default: e.id = (uint32_t)rnd(); break;
    }
  }
  void* arg = chance(95) ? (void*)&e : bad_pointer();
  int ok = ioctl(fd, ULS_IOC_REGISTER, arg) == 0;
  count(OP_REGISTER, 2, ok);
  if (ok && arg == &e && n_own < MAX_OWN) {
    own[n_own] = e.id;
    own_slot[n_own++] = slot;
  }
}

static void op_unregister(void) {
  uint32_t id = any_id();
  int ok = ioctl(fd, ULS_IOC_UNREGISTER, &id) == 0;
  count(OP_UNREGISTER, 1, ok);
  if (ok) forget(id);
}

static void op_query(void) {
  struct uls_extension e;
  fill_random(&e, sizeof e);
  e.id = any_id();
  count(OP_QUERY, 1, ioctl(fd, ULS_IOC_QUERY, chance(95) ? (void*)&e : bad_pointer()) == 0);
}

// Periods down to the shortest allowed, shorter than an upcall may run (uls.budget_ms, up to 20 ms
// as op_sysfs sets it): a process that takes upcalls outlasting their period still runs its own
// code between chains of them (kernel patch 0015; before it, a worker froze for good in CI).
static void op_bind(void) {
  static const uint64_t periods[] = {0, ULS_PERIOD_MIN_NS - 1, ULS_PERIOD_MIN_NS, 50000, 200000, 1000000,
                                     10000000, 100000000, ULS_PERIOD_MAX_NS, ULS_PERIOD_MAX_NS + 1, UINT64_MAX};
  struct uls_bind b = {.id = any_id(), .event = chance(85) ? (uint32_t)below(2) : (uint32_t)rnd(),
                       .period_ns = chance(90) ? periods[below(sizeof periods / sizeof periods[0])] : rnd(),
                       .reserved = chance(95) ? 0 : rnd()};
  count(OP_BIND, 1, ioctl(fd, ULS_IOC_BIND, chance(97) ? (void*)&b : bad_pointer()) == 0);
}

static void op_raise(void) {
  uint32_t id = any_id();
  count(OP_RAISE, 1, ioctl(fd, ULS_IOC_RAISE, &id) == 0);
}

static void op_stats(void) {
  struct uls_stats s;
  memset(&s, 0, sizeof s);
  s.id = any_id();
  count(OP_STATS, 1, ioctl(fd, ULS_IOC_STATS, chance(95) ? (void*)&s : bad_pointer()) == 0);
}

static void op_host(void) {
  uint32_t ms = chance(90) ? (uint32_t)below(4) : (chance(50) ? 60001u : (uint32_t)rnd() | 0x80000000u);
  count(OP_HOST, 1, ioctl(fd, ULS_IOC_HOST, &ms) == 0);
}

static void op_net_bind(void) {
  struct uls_net_bind b;
  memset(&b, 0, sizeof b);
  random_ifname(b.ifname);
  b.id = any_id();
  b.rings_off = chance(50) ? (uint32_t)(0x38000 + below(4) * 0x4000) : random_off();
  b.pool_off = chance(50) ? POOL : random_off();
  b.pool_size = chance(50) ? POOL_SIZE : (uint32_t)(chance(50) ? below(256) * 4096 : rnd());
  if (chance(5)) b.flags = (uint32_t)rnd();
  if (chance(5)) b.reserved = (uint32_t)rnd();
  count(OP_NET_BIND, 1, ioctl(fd, ULS_IOC_NET_BIND, chance(95) ? (void*)&b : bad_pointer()) == 0);
}

static void op_net_unbind(void) {
  char name[ULS_IFNAMSIZ];
  random_ifname(name);
  count(OP_NET_UNBIND, 1, ioctl(fd, ULS_IOC_NET_UNBIND, chance(95) ? (void*)name : bad_pointer()) == 0);
}

static void op_net_stats(void) {
  struct uls_net_stats s;
  memset(&s, 0, sizeof s);
  random_ifname(s.ifname);
  count(OP_NET_STATS, 1, ioctl(fd, ULS_IOC_NET_STATS, chance(95) ? (void*)&s : bad_pointer()) == 0);
}

// Offsets for pread/pwrite: anywhere, and the live structures.
static off_t random_file_off(void) {
  switch (below(8)) {
    case 0: return (off_t)below(info.size);
    case 1: return (off_t)(info.size - below(64));
    case 2: return (off_t)(info.size + below(8192));
    case 3: return chance(50) ? -1 : (off_t)(rnd() >> 1);
    case 4: return (off_t)uls_t_state_off((unsigned)below(16)) + (off_t)below(512);
    case 5: return (off_t)(STACKS + below(16) * STACK_SIZE + below(STACK_SIZE));
    case 6: return (off_t)((chance(50) ? RINGS0 : RINGS1) + below(4 * sizeof(struct uls_ring)));
    default: return (off_t)(POOL + below(POOL_SIZE));
  }
}
static void op_pread(void) {
  static uint8_t buf[16384];
  size_t n = chance(80) ? (size_t)below(4097) : (size_t)below(sizeof buf + 1);
  void* p = chance(95) ? (void*)buf : bad_pointer();
  count(OP_PREAD, 1, pread(fd, p, n, random_file_off()) >= 0);
}
static void op_pwrite(void) {
  static uint8_t buf[8192];
  size_t n = chance(90) ? (size_t)below(64) : (size_t)below(sizeof buf + 1);
  off_t off = random_file_off();
  // Over code only bytes that trap wherever execution lands in them (random bytes run as code
  // could write anywhere in the process: finding 9).
  const off_t code_end = CODE + 16 * 0x1000;
  if (chance(10) || (off < code_end && off + (off_t)n > CODE)) {
    static const uint8_t trap[] = {0xcc, 0xf4, 0xfa, 0xfb, 0xec, 0xee, 0x6c};
    for (size_t i = 0; i < n; ++i) buf[i] = trap[below(sizeof trap)];
    off = (off_t)(CODE + below(16) * 0x1000 + below(ext_chaos_end - ext_chaos));
  } else {
    fill_random(buf, n);
  }
  void* p = chance(97) ? (void*)buf : bad_pointer();
  count(OP_PWRITE, 1, pwrite(fd, p, n, off) >= 0);
}

static void op_return_call(void) {
  long r = syscall(ULS_SYSCALL_RETURN, rnd(), rnd(), rnd(), rnd(), rnd(), rnd());
  int e = errno;
  count(OP_RETURN_CALL, 1, 0);
  if (r != -1 || e != EINVAL) fail("the return call outside an upcall gave %ld (errno %d), not EINVAL", r, e);
}

static void spin_ms(unsigned ms) { uls_t_spin_ms(ms); }

// Whether `addr` lies, in process `pid`, in a mapping of the region (/dev/uls, or the kernel's
// on-demand "[uls]"): other memory there (op_mm maps anonymous pages at those addresses) is the
// process's own, which a tracer may read.
static int region_vma_at(pid_t pid, uint64_t addr) {
  char path[64], line[512];
  snprintf(path, sizeof path, "/proc/%d/maps", pid);
  FILE* f = fopen(path, "r");
  if (!f) return 0;
  int found = 0;
  while (!found && fgets(line, sizeof line, f)) {
    unsigned long long lo = 0, hi = 0;
    if (sscanf(line, "%llx-%llx", &lo, &hi) == 2 && addr >= lo && addr < hi)
      found = strstr(line, "/dev/uls") != NULL || strstr(line, "[uls]") != NULL;
  }
  fclose(f);
  return found;
}

// Waits up to `seconds` for child `pid`; a hang past that (its wait channel is said) or, if
// `crash_is_failure`, its death by a signal fails the run.
static void reap_within(pid_t pid, const char* what, int crash_is_failure, int seconds) {
  int st = 0;
  for (int i = 0; i < seconds * 100; ++i) {
    pid_t r = waitpid(pid, &st, WNOHANG | __WALL);
    if (r == pid) {
      if (crash_is_failure && WIFSIGNALED(st)) fail("%s (pid %d) was killed by signal %d", what, pid, WTERMSIG(st));
      return;
    }
    if (r < 0) return;
    usleep(10000);
  }
  // What it is doing: its state (R running, S/D sleeping, T stopped) and CPU time, twice.
  unsigned long long cpu[2] = {0, 0};
  char state[2] = {'?', '?'};
  for (int k = 0; k < 2; ++k) {
    char path[64], line[512];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE* f = fopen(path, "r");
    if (f) {
      const char* p = fgets(line, sizeof line, f) ? strrchr(line, ')') : NULL;
      unsigned long long ut = 0, st2 = 0;
      if (p && sscanf(p + 2, "%c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &state[k], &ut, &st2) == 3)
        cpu[k] = ut + st2;
      fclose(f);
    }
    if (k == 0) usleep(500000);
  }
  fail("%s (pid %d) did not end within %d s (state %c then %c, %llu CPU ticks in 0.5 s)", what, pid, seconds,
       state[0], state[1], cpu[1] - cpu[0]);
  kill(pid, SIGKILL);
  waitpid(pid, &st, __WALL);
}
static void reap(pid_t pid, const char* what, int crash_is_failure) { reap_within(pid, what, crash_is_failure, 30); }
static pid_t spawn_spinner(unsigned ms) { return uls_t_spawn_spinner(ms); }

static void op_fork(void) {
  pid_t pid = fork();
  if (pid == 0) {
    // The child: a few random calls on the inherited descriptor, upcalls landing in it, then
    // out through exit or _exit or by closing everything first.
    for (int i = 0, n = (int)below(20); i < n; ++i) {
      uint32_t id = any_id();
      ioctl(fd, below(2) ? ULS_IOC_RAISE : ULS_IOC_UNREGISTER, &id);
    }
    spin_ms((unsigned)below(5));
    if (chance(30)) close(fd);
    _exit(0);
  }
  count(OP_FORK, 1, pid > 0);
  if (pid > 0) {
    if (chance(20)) {
      usleep((useconds_t)below(2000));
      kill(pid, SIGKILL);
      reap(pid, "a forked child", 0);
    } else {
      reap(pid, "a forked child", 1);
    }
  }
}

static const char* self_path = "/proc/self/exe";
static void op_exec(void) {
  pid_t pid = fork();
  if (pid == 0) {
    char ms[16];
    snprintf(ms, sizeof ms, "%u", (unsigned)below(5));
    // The descriptor is inherited across exec (no O_CLOEXEC) half the time.
    if (chance(50)) fcntl(fd, F_SETFD, FD_CLOEXEC);
    execl(self_path, "uls_fuzz", "exec-child", ms, (char*)NULL);
    _exit(127);
  }
  count(OP_EXEC, 2, pid > 0);
  if (pid > 0) reap(pid, "an exec'd child", 1);
}

static void* thread_main(void* arg) {
  (void)arg;
  for (int i = 0; i < 20; ++i) {
    uint32_t id = any_id();
    ioctl(fd, ULS_IOC_RAISE, &id);
  }
  spin_ms(1);
  return NULL;
}
static void op_thread(void) {
  pthread_t t;
  int ok = pthread_create(&t, NULL, thread_main, NULL) == 0;
  count(OP_THREAD, 21, ok);
  if (ok) {
    spin_ms(1);
    pthread_join(t, NULL);
  }
}

// A child that spins taking upcalls of this process's extensions while it is traced: its
// registers at stops, peeks and pokes of the region (refused while the region is protected),
// its rip sent into the region, system call stepping. It dies of what was done to it (a victim:
// its end is not checked).
static void op_ptrace(void) {
  pid_t pid = spawn_spinner(30);
  if (pid < 0) return;
  int calls = 1, redirected = 0;
  if (ptrace(PTRACE_SEIZE, pid, 0, 0) == 0) {
    for (int round = 0; round < 8; ++round) {
      ptrace(PTRACE_INTERRUPT, pid, 0, 0);
      int st = 0, stopped = 0;
      for (int i = 0; i < 100 && !stopped; ++i) {
        pid_t r = waitpid(pid, &st, WNOHANG | __WALL);
        if (r == pid) stopped = WIFSTOPPED(st);
        if (r == pid && !stopped) goto done;  // it ended
        if (!stopped) usleep(1000);
      }
      calls += 3;
      if (!stopped) break;
      struct user_regs_struct regs;
      if (ptrace(PTRACE_GETREGS, pid, 0, &regs) == 0 && !redirected && regs.rip >= info.base &&
          regs.rip < info.base + info.size)
        fail("a tracer saw a task stopped at rip %#llx, inside the region", (unsigned long long)regs.rip);
      errno = 0;
      uint64_t addr = info.base + (below(info.size) & ~7ull);
      long v = ptrace(PTRACE_PEEKDATA, pid, (void*)addr, 0);
      if (protected_region && errno == 0 && region_vma_at(pid, addr))
        fail("a tracer read the protected region at %#llx (got %#lx)", (unsigned long long)addr, v);
      if (ptrace(PTRACE_POKEDATA, pid, (void*)addr, (void*)rnd()) == 0 && protected_region &&
          region_vma_at(pid, addr))
        fail("a tracer wrote the protected region at %#llx", (unsigned long long)addr);
      calls += 3;
      if (chance(30)) {  // off into the region: it faults there, outside any upcall
        const uint64_t rip0 = regs.rip;
        regs.rip = info.base + CODE + below(16) * 0x1000;
        if (ptrace(PTRACE_SETREGS, pid, 0, &regs) == 0) {
          redirected = 1;
        } else {
          // These are the registers just read from this stopped task, but for rip: writing them
          // back must work. ptrace refuses (EIO) a selector it would not let a process have
          // (a %ds of 1, say, left behind by an extension), after writing the registers before
          // it, rip among them: so the task may be redirected all the same.
          if (errno == EIO)
            fail("a tracer could not write back the registers it had just read (ds %#llx es %#llx "
                 "fs %#llx gs %#llx cs %#llx ss %#llx): an upcall left the process's selectors changed",
                 (unsigned long long)regs.ds, (unsigned long long)regs.es, (unsigned long long)regs.fs,
                 (unsigned long long)regs.gs, (unsigned long long)regs.cs, (unsigned long long)regs.ss);
          struct user_regs_struct now;
          if (ptrace(PTRACE_GETREGS, pid, 0, &now) != 0 || now.rip != rip0) redirected = 1;
        }
        calls += 2;
      }
      ptrace(chance(50) ? PTRACE_SYSCALL : PTRACE_CONT, pid, 0, 0);
      usleep((useconds_t)below(2000));
    }
  }
done:
  kill(pid, SIGKILL);
  reap(pid, "a traced child", 0);
  count(OP_PTRACE, calls, 1);
}

// Reads and writes a child's region addresses through /proc/PID/mem while it takes upcalls.
static void op_proc_mem(void) {
  pid_t pid = spawn_spinner(20);
  if (pid < 0) return;
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/mem", pid);
  int m = open(path, O_RDWR);
  int calls = 1;
  if (m >= 0) {
    for (int i = 0; i < 50; ++i) {
      uint64_t addr = info.base + below(info.size);
      uint8_t b[64];
      ssize_t r = pread(m, b, sizeof b, (off_t)addr);
      if (protected_region && r > 0 && region_vma_at(pid, addr))
        fail("/proc/%d/mem read the protected region at %#llx", pid, (unsigned long long)addr);
      fill_random(b, sizeof b);
      ssize_t w = pwrite(m, b, 1 + below(sizeof b), (off_t)addr);
      if (protected_region && w > 0 && region_vma_at(pid, addr))
        fail("/proc/%d/mem wrote the protected region at %#llx", pid, (unsigned long long)addr);
      calls += 2;
    }
    close(m);
  }
  reap(pid, "a child read through /proc/PID/mem", 1);
  count(OP_PROC_MEM, calls, m >= 0);
}

// This process's mappings of the region's address range (nothing else lives there).
static void op_mm(void) {
  void* base = (void*)info.base;
  size_t len = (size_t)(chance(50) ? info.size : (1 + below(info.size / 4096)) * 4096);
  void* at = (char*)base + (chance(50) ? 0 : below(info.size / 4096) * 4096);
  int ok = 0;
  switch (below(9)) {
    case 0: {
      static const int prots[] = {PROT_READ | PROT_WRITE, PROT_READ | PROT_WRITE | PROT_EXEC, PROT_READ, PROT_NONE};
      int flags = chance(80) ? MAP_SHARED | MAP_FIXED_NOREPLACE : (chance(50) ? MAP_PRIVATE | MAP_FIXED : MAP_SHARED);
      const off_t off = chance(90) ? 0 : (off_t)(below(8) * 4096);
      void* p = mmap(chance(80) ? base : at, len, prots[below(4)], flags, fd, off);
      ok = p != MAP_FAILED;
      if (ok && ((uintptr_t)p < info.base || (uintptr_t)p >= info.base + info.size)) munmap(p, len);
      break;
    }
    case 1: ok = munmap(at, len) == 0; break;
    case 2: ok = mprotect(at, len, (int)below(8)) == 0; break;
    case 3: {
      size_t grown = len + (chance(50) ? 4096 : 0);
      void* p = mremap(at, len, grown, MREMAP_MAYMOVE);
      ok = p != MAP_FAILED;
      if (ok && p != at) munmap(p, grown);
      break;
    }
    case 4: {
      static const int advice[] = {MADV_DONTNEED, MADV_DONTFORK, MADV_DOFORK, MADV_WIPEONFORK, MADV_REMOVE,
                                   MADV_WILLNEED, MADV_COLD, MADV_PAGEOUT};
      ok = madvise(at, len, advice[below(sizeof advice / sizeof advice[0])]) == 0;
      break;
    }
    case 5:  // anonymous memory where the region would be
      ok = mmap(at, 4096 * (1 + below(4)), PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
                -1, 0) != MAP_FAILED;
      break;
    case 6: ok = mlock(at, 4096) == 0; if (ok) munlock(at, 4096); break;
    case 7: ok = munmap(base, (size_t)info.size) == 0; break;  // all of it gone again
    default: {
      // Touching it from the process (protected: SIGSEGV, caught by the probe in a child).
      pid_t pid = fork();
      if (pid == 0) {
        signal(SIGSEGV, SIG_DFL);
        volatile uint8_t* q = (volatile uint8_t*)at;
        (void)*q;
        _exit(0);
      }
      int st = 0;
      if (pid > 0) waitpid(pid, &st, 0);
      ok = pid > 0 && WIFEXITED(st);
      break;
    }
  }
  count(OP_MM, 1, ok);
}

static volatile sig_atomic_t signals_seen;
static void on_signal(int s) {
  (void)s;
  signals_seen = signals_seen + 1;
}
static void op_signal(void) {
  struct itimerval it = {{0, 0}, {0, (suseconds_t)(1 + below(3000))}};
  if (chance(30)) it.it_interval.tv_usec = (suseconds_t)(100 + below(1000));
  if (chance(20)) memset(&it, 0, sizeof it);
  setitimer(ITIMER_REAL, &it, NULL);
  if (chance(50)) kill(getpid(), SIGUSR1);
  count(OP_SIGNAL, 2, 1);
}

static void op_affinity(void) {
  cpu_set_t set;
  CPU_ZERO(&set);
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  if (n < 1) n = 1;
  if (chance(70))
    CPU_SET((int)below((uint64_t)n), &set);
  else
    for (int i = 0; i < n; ++i) CPU_SET(i, &set);
  count(OP_AFFINITY, 1, sched_setaffinity(0, sizeof set, &set) == 0);
}

static void op_reopen(void) {
  close(fd);  // everything registered through it goes: its extensions, timers, bindings
  n_own = 0;
  fd = open("/dev/uls", O_RDWR);
  count(OP_REOPEN, 2, fd >= 0);
  if (fd < 0) fail("reopening /dev/uls: %s", strerror(errno));
}

static void write_param(const char* name, const char* value) {
  char path[96];
  snprintf(path, sizeof path, "/sys/module/uls/parameters/%s", name);
  int f = open(path, O_WRONLY);
  if (f < 0) return;
  ssize_t w = write(f, value, strlen(value));
  (void)w;
  close(f);
}
static void op_sysfs(void) {
  // (Budgets stay short: settle_and_check waits for upcalls in flight to end.)
  static const char* const budgets[] = {"1", "2", "5", "10", "20", "0", "-1", "x", ""};
  static const char* const holds[] = {"10", "20", "50", "100", "200", "0", "100000", "-5", ""};
  write_param("budget_ms", budgets[below(sizeof budgets / sizeof budgets[0])]);
  write_param("hold_ms", holds[below(sizeof holds / sizeof holds[0])]);
  count(OP_SYSFS, 2, 1);
}

// Arbitrary indices and descriptors written into the rings (of the live bindings, mostly).
static void op_rings(void) {
  uint64_t ring = (chance(50) ? RINGS0 : RINGS1) + below(4) * sizeof(struct uls_ring);
  uint64_t off;
  uint32_t v = (uint32_t)rnd();
  switch (below(4)) {
    case 0: off = ring + offsetof(struct uls_ring, producer); break;
    case 1: off = ring + offsetof(struct uls_ring, consumer); break;
    default: {
      off = ring + offsetof(struct uls_ring, desc) + below(ULS_NET_RING_SIZE) * sizeof(struct uls_desc);
      if (chance(50)) v = POOL + (uint32_t)below(NBUF) * 2048 + (chance(80) ? 0 : (uint32_t)below(2048));
      break;
    }
  }
  count(OP_RINGS, 1, pwrite(fd, &v, sizeof v, (off_t)off) == sizeof v);
}

// ---- the zero-copy traffic (the main process) -------------------------------------------------
static uint32_t nic_ext[2];
static int bound[2];
static uint32_t tx_next;  // free-running tx index the main process writes

static uint32_t rd32(uint64_t off) {
  uint32_t v = 0;
  if (pread(fd, &v, 4, (off_t)off) != 4) return 0;
  return v;
}
static void wr32(uint64_t off, uint32_t v) {
  if (pwrite(fd, &v, 4, (off_t)off) != 4) return;
}
#define RING(rings, which) ((rings) + offsetof(struct uls_net_rings, which))
#define PROD(r) ((r) + offsetof(struct uls_ring, producer))
#define CONS(r) ((r) + offsetof(struct uls_ring, consumer))
#define DESC(r, i) ((r) + offsetof(struct uls_ring, desc) + ((i) % ULS_NET_RING_SIZE) * sizeof(struct uls_desc))

static const char* const nic_name[2] = {"eth0", "eth1"};
static const uint32_t nic_rings[2] = {RINGS0, RINGS1};

// (Re-)registers NIC i's extension (a counting one at slot i) unless it is registered through
// this process's descriptor (random unregistrations and op_reopen take it away).
static void ensure_nic_ext(int i) {
  struct uls_extension e;
  memset(&e, 0, sizeof e);
  e.id = nic_ext[i];
  if (nic_ext[i] && ioctl(fd, ULS_IOC_QUERY, &e) == 0 && e.entry == region_addr(uls_t_code_off((unsigned)i)) &&
      e.owner == getpid())
    return;
  wr(uls_t_code_off((unsigned)i), ext_chaos, (size_t)(ext_chaos_end - ext_chaos));
  write_chaos((unsigned)i, 1);
  e = uls_t_slot_extension(&info, (unsigned)i, nic_name[i]);
  nic_ext[i] = ioctl(fd, ULS_IOC_REGISTER, &e) == 0 ? e.id : 0;
  count(OP_TRAFFIC, 5, nic_ext[i] != 0);
}

// Binds NIC i (0: eth0, the sender, buffers 256..511; 1: eth1, the receiver, 200 fill buffers
// out of 0..255).
static void net_bind(int i) {
  uint32_t zero[sizeof(struct uls_net_rings) / 4];
  memset(zero, 0, sizeof zero);
  wr(nic_rings[i], zero, sizeof zero);
  if (i == 1) {
    for (uint32_t k = 0; k < 200; ++k) {
      struct uls_desc d = {.off = POOL + k * 2048, .len = 0, .flags = 0};
      wr(DESC(RING(RINGS1, fill), k), &d, sizeof d);
    }
    wr32(PROD(RING(RINGS1, fill)), 200);
  }
  tx_next = 0;
  struct uls_net_bind b;
  memset(&b, 0, sizeof b);
  snprintf(b.ifname, sizeof b.ifname, "%s", nic_name[i]);
  b.id = nic_ext[i];
  b.rings_off = nic_rings[i];
  b.pool_off = POOL;
  b.pool_size = POOL_SIZE;
  bound[i] = ioctl(fd, ULS_IOC_NET_BIND, &b) == 0;
  static int said;
  if (!bound[i] && said++ < 5) printf("uls_fuzz: binding %s: %s\n", nic_name[i], strerror(errno));
  count(OP_TRAFFIC, 204, bound[i]);
}

static void op_traffic(void) {
  int calls = 0;
  for (int i = 0; i < 2; ++i) {
    struct uls_net_stats s;
    memset(&s, 0, sizeof s);
    snprintf(s.ifname, sizeof s.ifname, "%s", nic_name[i]);
    bound[i] = ioctl(fd, ULS_IOC_NET_STATS, &s) == 0 && s.id == nic_ext[i];
    ++calls;
    static uint64_t last_try[2];
    if (!bound[i] && guest_now_ns() - last_try[i] > 50000000ull) {  // (at most 20 tries a second)
      last_try[i] = guest_now_ns();
      ensure_nic_ext(i);
      net_bind(i);
    }
  }
  if (bound[0]) {
    // Completions back, then up to 16 frames out (a few invalid), then a kick (the upcall's end).
    uint32_t cp = rd32(PROD(RING(RINGS0, comp)));
    wr32(CONS(RING(RINGS0, comp)), cp);
    uint32_t tc = rd32(CONS(RING(RINGS0, tx)));
    calls += 3;
    uint32_t room = ULS_NET_RING_SIZE - (tx_next - tc);
    if (room > ULS_NET_RING_SIZE) room = 0;  // (someone wrote nonsense: it is counted corrupt)
    for (uint32_t k = 0, n = (uint32_t)below(17); k < n && k < room; ++k) {
      uint32_t buf = 256 + (tx_next % 256);
      uint8_t frame[64];
      memset(frame, 0xff, 6);  // broadcast
      memset(frame + 6, 0x02, 6);
      frame[12] = 0x88, frame[13] = 0xb5;  // local experimental EtherType
      fill_random(frame + 14, sizeof frame - 14);
      wr(POOL + buf * 2048, frame, sizeof frame);
      struct uls_desc d = {.off = POOL + buf * 2048, .len = (uint16_t)(60 + below(1455)), .flags = 0};
      if (chance(5)) d.off = (uint32_t)rnd();
      if (chance(5)) d.len = (uint16_t)rnd();
      wr(DESC(RING(RINGS0, tx), tx_next), &d, sizeof d);
      ++tx_next;
      calls += 2;
    }
    wr32(PROD(RING(RINGS0, tx)), tx_next);
    ioctl(fd, ULS_IOC_RAISE, &nic_ext[0]);
    calls += 2;
  }
  if (bound[1]) {
    // Received buffers back onto the fill ring.
    uint32_t rp = rd32(PROD(RING(RINGS1, rx))), rc = rd32(CONS(RING(RINGS1, rx)));
    uint32_t fp = rd32(PROD(RING(RINGS1, fill)));
    calls += 3;
    for (uint32_t k = 0; rc != rp && k < ULS_NET_RING_SIZE; ++k, ++rc, ++fp) {
      struct uls_desc d;
      if (pread(fd, &d, sizeof d, (off_t)DESC(RING(RINGS1, rx), rc)) != sizeof d) break;
      d.len = 0;
      d.flags = 0;
      wr(DESC(RING(RINGS1, fill), fp), &d, sizeof d);
      calls += 2;
    }
    wr32(PROD(RING(RINGS1, fill)), fp);
    wr32(CONS(RING(RINGS1, rx)), rc);
    calls += 2;
  }
  count(OP_TRAFFIC, calls, bound[0] && bound[1]);
}

static uint64_t last_link_ns;
static void op_link(void) {
  if (guest_now_ns() - last_link_ns < 200000000ull) return;  // at most 5 per second
  last_link_ns = guest_now_ns();
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  if (s < 0) return;
  struct ifreq r;
  memset(&r, 0, sizeof r);
  snprintf(r.ifr_name, sizeof r.ifr_name, "%s", nic_name[below(2)]);
  int ok = ioctl(s, SIOCGIFFLAGS, &r) == 0;
  if (ok) {
    r.ifr_flags &= ~IFF_UP;
    ok = ioctl(s, SIOCSIFFLAGS, &r) == 0;
    usleep((useconds_t)below(20000));
    r.ifr_flags |= IFF_UP;
    ok = ioctl(s, SIOCSIFFLAGS, &r) == 0 && ok;
  }
  close(s);
  count(OP_LINK, 3, ok);
}

// ---- the processes --------------------------------------------------------------------------
static void do_op(enum op o) {
  switch (o) {
    case OP_IOCTL_RANDOM: op_ioctl_random(); break;
    case OP_INFO: {
      struct uls_info i;
      count(OP_INFO, 1, ioctl(fd, ULS_IOC_INFO, chance(90) ? (void*)&i : bad_pointer()) == 0);
      break;
    }
    case OP_REGISTER: op_register(); break;
    case OP_UNREGISTER: op_unregister(); break;
    case OP_QUERY: op_query(); break;
    case OP_BIND: op_bind(); break;
    case OP_RAISE: op_raise(); break;
    case OP_STATS: op_stats(); break;
    case OP_HOST: op_host(); break;
    case OP_NET_BIND: op_net_bind(); break;
    case OP_NET_UNBIND: op_net_unbind(); break;
    case OP_NET_STATS: op_net_stats(); break;
    case OP_PREAD: op_pread(); break;
    case OP_PWRITE: op_pwrite(); break;
    case OP_CHAOS_STATE:
      if (n_own) {
        int k = (int)below((uint64_t)n_own);
        check_chaos_record(own_slot[k]);
        write_chaos(own_slot[k], 0);
      }
      break;
    case OP_RETURN_CALL: op_return_call(); break;
    case OP_FORK: op_fork(); break;
    case OP_EXEC: op_exec(); break;
    case OP_THREAD: op_thread(); break;
    case OP_PTRACE: op_ptrace(); break;
    case OP_PROC_MEM: op_proc_mem(); break;
    case OP_MM: op_mm(); break;
    case OP_SIGNAL: op_signal(); break;
    case OP_AFFINITY: op_affinity(); break;
    case OP_REOPEN: op_reopen(); break;
    case OP_SYSFS: if (me == 1) op_sysfs(); break;
    case OP_RINGS: op_rings(); break;
    case OP_TRAFFIC: op_traffic(); break;
    case OP_LINK: op_link(); break;
    default: break;
  }
}

static enum op draw(void) {
  unsigned total = 0;
  for (int o = 0; o < OP_COUNT; ++o) total += op_weight[o];
  uint64_t x = below(total);
  for (int o = 0; o < OP_COUNT; ++o) {
    if (x < op_weight[o]) return (enum op)o;
    x -= op_weight[o];
  }
  return OP_INFO;
}

static uint64_t total_calls(void) {
  uint64_t n = 0;
  for (int o = 0; o < OP_COUNT; ++o) n += __atomic_load_n(&sh->calls[o], __ATOMIC_RELAXED);
  return n;
}

// Stops this process's timers and checks its extensions' counters once nothing moves.
static void settle_and_check(void) {
  for (int i = 0; i < n_own; ++i) uls_t_bind_timer(fd, own[i], 0);
  for (int i = 0; i < n_own; ++i) {
    // Stable across 50 ms (longer than any budget op_sysfs sets): no upcall of it in flight.
    struct uls_stats a, b;
    int stable = 0;
    for (int k = 0; k < 40 && !stable; ++k) {
      a = uls_t_stats("uls_fuzz", fd, own[i]);
      usleep(50000);
      b = uls_t_stats("uls_fuzz", fd, own[i]);
      stable = !memcmp(&a, &b, sizeof a);
    }
    // (One upcall of an extension at a time: at most one may still be in flight, in a task
    // kept off its CPU.)
    const uint64_t ended = a.returned + a.faults + a.overruns;
    if (stable && a.id == own[i] &&
        (a.events != a.upcalls + a.coalesced + a.pending || a.upcalls < ended || a.upcalls > ended + 1)) {
      uls_t_print_stats("uls_fuzz", "unaccounted", a);
      fail("extension %u's counters do not add up", own[i]);
    }
  }
}

// Until the deadline and the minimum number of calls (the guest's clock can jump under TCG, which
// would end a clock-bounded run early), but never past `cap_ns`.
static uint64_t min_calls;
// This process's %ds and %es: upcalls land in it, and mode 15 loads selectors into them inside
// the extension; the kernel must put the process's back (uls_hardening_test's registers case
// checks %fs and %gs, which the C library would miss at once).
static uint32_t ds_es(void) {
  uint32_t ds = 0, es = 0;
  __asm__ volatile("mov %%ds, %w0\n\tmov %%es, %w1" : "+r"(ds), "+r"(es));
  return ds | es << 16;
}
static void run(uint64_t deadline_ns, uint64_t cap_ns) {
  const uint32_t own_ds_es = ds_es();
  for (;;) {
    const uint64_t now = guest_now_ns();
    if (__atomic_load_n(&sh->failed, __ATOMIC_RELAXED) || now >= cap_ns) break;
    if (now >= deadline_ns && total_calls() >= min_calls) break;
    enum op o = draw();
    if (me == 0 && have_nics && chance(10)) o = chance(97) ? OP_TRAFFIC : OP_LINK;
    do_op(o);
    const uint32_t now_ds_es = ds_es();
    if (now_ds_es != own_ds_es) {
      fail("this process's %%ds and %%es changed from %#x to %#x (an upcall's selectors were left in it)",
           own_ds_es, now_ds_es);
      break;
    }
  }
  struct itimerval off;
  memset(&off, 0, sizeof off);
  setitimer(ITIMER_REAL, &off, NULL);
  for (int i = 0; i < n_own; ++i) check_chaos_record(own_slot[i]);
  settle_and_check();
}

static int if_up_with_carrier(const char* name) {
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  if (s < 0) return 0;
  struct ifreq r;
  memset(&r, 0, sizeof r);
  snprintf(r.ifr_name, sizeof r.ifr_name, "%s", name);
  int ok = ioctl(s, SIOCGIFFLAGS, &r) == 0;
  if (ok && !(r.ifr_flags & IFF_UP)) {
    r.ifr_flags |= IFF_UP;
    ok = ioctl(s, SIOCSIFFLAGS, &r) == 0;
  }
  close(s);
  return ok && guest_wait_carrier(name);
}

static char saved_budget[32], saved_hold[32];
static void read_param(const char* name, char* out, size_t n) {
  char path[96];
  snprintf(path, sizeof path, "/sys/module/uls/parameters/%s", name);
  FILE* f = fopen(path, "r");
  out[0] = 0;
  if (f) {
    if (!fgets(out, (int)n, f)) out[0] = 0;
    fclose(f);
  }
  out[strcspn(out, "\n")] = 0;
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc >= 2 && strcmp(argv[1], "exec-child") == 0) {  // (op_exec)
    spin_ms(argc >= 3 ? (unsigned)atoi(argv[2]) : 1);
    return 0;
  }
  unsigned seconds = 20, workers = 3;
  uint64_t seed = 0;
  int have_seed = 0;
  for (int a = 1; a < argc; ++a) {
    if (sscanf(argv[a], "seconds=%u", &seconds) == 1 || sscanf(argv[a], "workers=%u", &workers) == 1 ||
        sscanf(argv[a], "calls=%llu", (unsigned long long*)&min_calls) == 1)
      continue;
    if (sscanf(argv[a], "seed=%llu", (unsigned long long*)&seed) == 1) {
      have_seed = 1;
      continue;
    }
    printf("uls_fuzz: unknown argument '%s' (seconds=S calls=N seed=X workers=W)\n", argv[a]);
    printf("ULSNET-TEST uls_fuzz fail\n");
    return 2;
  }
  if (workers > 8) workers = 8;
  if (!have_seed) seed = guest_now_ns() ^ ((uint64_t)getpid() << 32);
  sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  fd = open("/dev/uls", O_RDWR);
  if (sh == MAP_FAILED || fd < 0 || ioctl(fd, ULS_IOC_INFO, &info) != 0) {
    printf("uls_fuzz: /dev/uls: %s\nULSNET-TEST uls_fuzz fail\n", strerror(errno));
    return 1;
  }
  protected_region = (info.flags & ULS_INFO_PROTECTED) != 0;
  have_nics = access("/sys/class/net/eth1", F_OK) == 0 && access("/sys/class/net/eth0", F_OK) == 0;
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  printf("uls_fuzz: seed=%llu seconds=%u workers=%u cpus=%ld region=%s nics=%s\n", (unsigned long long)seed,
         seconds, workers, cpus, protected_region ? "protected" : "unprotected",
         have_nics ? "eth0,eth1 (zero-copy traffic, link flaps)" : "none (boot with --nics 2 for the network path)");
  read_param("budget_ms", saved_budget, sizeof saved_budget);
  read_param("hold_ms", saved_hold, sizeof saved_hold);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGALRM, &sa, NULL);
  sigaction(SIGUSR1, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  const int mark = uls_t_klog_mark();
  const uint64_t start = guest_now_ns(), deadline = start + (uint64_t)seconds * 1000000000ull,
                 cap = start + 4 * (uint64_t)seconds * 1000000000ull;

  pid_t pids[8];
  for (unsigned w = 1; w <= workers; ++w) {
    pids[w - 1] = fork();
    if (pids[w - 1] == 0) {
      me = (int)w;
      rng = seed + w * 0x9E3779B97F4A7C15ull;
      if (!rng) rng = 1;
      slot_base = 3 * (1 + (w - 1) % 4);
      close(fd);
      fd = open("/dev/uls", O_RDWR);
      if (fd < 0) {
        fail("worker %u: /dev/uls: %s", w, strerror(errno));
        _exit(1);
      }
      run(deadline, cap);
      _exit(0);
    }
  }
  me = 0;
  rng = seed ? seed : 1;
  slot_base = 0;
  if (have_nics) {
    for (int i = 0; i < 2; ++i) {
      if (!if_up_with_carrier(nic_name[i])) printf("uls_fuzz: %s has no link\n", nic_name[i]);
      ensure_nic_ext(i);
    }
    slot_base = 2;  // (its random registrations: slots 2..4, shared with worker 1)
  }
  run(deadline, cap);
  for (unsigned w = 1; w <= workers; ++w) {
    char what[32];
    snprintf(what, sizeof what, "worker %u", w);
    reap_within(pids[w - 1], what, 1, 120);  // (its last operation, then its checks: ~2 s each)
  }
  const uint64_t elapsed_ms = (guest_now_ns() - start) / 1000000ull;

  // Afterwards: everything the owners left goes with them, and the machinery still works.
  write_param("budget_ms", saved_budget[0] ? saved_budget : "10");
  write_param("hold_ms", saved_hold[0] ? saved_hold : "100");
  for (int i = 0; i < 2; ++i) {
    struct uls_net_stats s;
    memset(&s, 0, sizeof s);
    snprintf(s.ifname, sizeof s.ifname, "%s", nic_name[i]);
    if (have_nics && ioctl(fd, ULS_IOC_NET_STATS, &s) == 0)
      printf("uls_fuzz: %s: rx=%llu tx=%llu tx_invalid=%llu fill_invalid=%llu ring_corrupt=%llu rx_ring_full=%llu "
             "completions=%llu nic_buffers=%llu\n",
             nic_name[i], (unsigned long long)s.rx_frames, (unsigned long long)s.tx_frames,
             (unsigned long long)s.tx_invalid, (unsigned long long)s.fill_invalid, (unsigned long long)s.ring_corrupt,
             (unsigned long long)s.rx_ring_full, (unsigned long long)s.completions,
             (unsigned long long)s.nic_buffers);
  }
  // A mapping of /dev/uls holds the open file as a descriptor does (op_mm maps it with this
  // process's descriptor): unmap the range first, so that closing the descriptor releases it.
  munmap((void*)info.base, (size_t)info.size);
  close(fd);
  fd = open("/dev/uls", O_RDWR);
  int left = 0;
  for (uint32_t id = 1; fd >= 0 && id <= ULS_MAX_EXTENSIONS; ++id) {
    struct uls_extension e;
    memset(&e, 0, sizeof e);
    e.id = id;
    if (ioctl(fd, ULS_IOC_QUERY, &e) == 0) {
      printf("uls_fuzz: extension %u ('%.*s', owner %d) is still registered\n", id, (int)sizeof e.name, e.name,
             e.owner);
      ++left;
    }
  }
  if (left) fail("%d extensions outlived every process that could own them", left);
  for (int i = 0; have_nics && i < 2; ++i) {
    struct uls_net_stats s;
    memset(&s, 0, sizeof s);
    snprintf(s.ifname, sizeof s.ifname, "%s", nic_name[i]);
    if (ioctl(fd, ULS_IOC_NET_STATS, &s) == 0) fail("%s is still bound to extension %u", nic_name[i], s.id);
    if (!if_up_with_carrier(nic_name[i])) fail("%s does not come up with its link again", nic_name[i]);
  }
  // Still working: a counting extension, raised, runs once in this process (with none of what
  // op_mm left at the region's addresses: the kernel maps the region there on demand).
  munmap((void*)info.base, (size_t)info.size);
  slot_base = 15;
  write_chaos(15, 1);
  uint32_t id = uls_t_register("uls_fuzz", fd, &info, ext_chaos, ext_chaos_end, 15, "after");
  write_chaos(15, 1);
  struct chaos c0, c1;
  memset(&c0, 0, sizeof c0);
  memset(&c1, 0, sizeof c1);
  rd(uls_t_state_off(15), &c0, sizeof c0);
  int raised = id && ioctl(fd, ULS_IOC_RAISE, &id) == 0;
  rd(uls_t_state_off(15), &c1, sizeof c1);
  if (!raised || c1.count != c0.count + 1) fail("afterwards an extension registered and raised did not run once");
  if (id) ioctl(fd, ULS_IOC_UNREGISTER, &id);

  const char* report = uls_t_klog_report_since(mark);
  if (report) {
    const char* end = strchr(report, '\n');
    fail("the kernel logged a report: %.*s", end ? (int)(end - report) : 120, report);
  }
  uint64_t calls = total_calls();
  printf("uls_fuzz: %-13s %10s %10s\n", "operation", "calls", "succeeded");
  for (int o = 0; o < OP_COUNT; ++o)
    if (sh->calls[o])
      printf("uls_fuzz: %-13s %10llu %10llu\n", op_names[o], (unsigned long long)sh->calls[o],
             (unsigned long long)sh->ok[o]);
  printf("uls_fuzz: calls=%llu in %llu ms (seed %llu, %u workers, signals in the main process %d)\n",
         (unsigned long long)calls, (unsigned long long)elapsed_ms, (unsigned long long)seed, workers,
         (int)signals_seen);
  if (calls < min_calls) fail("only %llu calls, fewer than the %llu asked for", (unsigned long long)calls,
                              (unsigned long long)min_calls);
  if (sh->failed) printf("uls_fuzz: first failure: %s (seed %llu)\n", sh->why, (unsigned long long)seed);
  printf("ULSNET-TEST uls_fuzz %s\n", sh->failed ? "fail" : "pass");
  return sh->failed ? 1 : 0;
}
