// //bench:micro: the costs the paper's argument rests on, measured one by one with Google
// Benchmark (its own flags work: --benchmark_format=json, --benchmark_filter=...,
// --benchmark_min_time=...). One iteration is the unit named below.
//
//   BM_NullSyscall               one system call that does no work (getppid via syscall(2))
//   BM_IoUringNop                one io_uring round trip with no I/O: a NOP submitted and its
//                                completion reaped in one io_uring_enter
//   BM_FunctionCall              one plain call through a pointer the compiler cannot inline
//   BM_ExtensionInvoke/<mode>    one upcall through ExtensionRegistry::invoke (claim, protection
//                                domain enter/leave, the extension's stack, release) per mode
//   BM_DomainInvoke/<mode>       the protection domain alone (no claim)
//   BM_ThreadHandoff/<futex|eventfd>  one round trip between two threads that sleep between
//                                messages (the user-thread baseline's cost per hand-off)
//   BM_ProcessPipeRoundTrip      one byte to another process and back through two pipes
//   BM_SignalRoundTrip           one signal sent to this thread and its handler run
//   BM_CopyFrame/<bytes>         copying one frame of that size into another buffer, then
//                                reading it (what a copying path pays)
//   BM_PassDescriptor/<bytes>    moving one frame's descriptor through a ring instead, then
//                                reading the frame (zero copy)
//   BM_StackPerPacket/<relay|router>  the Stack's own processing, bursts of 32 valid UDP frames
//                                (time per burst; `time_per_packet` and items/s per packet)
//   BM_StackInvoked/<invoker>    the same Stack through each method's real invoker: direct
//                                (raw-socket), handoff (user-thread), upcall_<mode> (sandbox)
//
// Modes or features this machine lacks are skipped with the reason (SkipWithError), never
// measured as something else. Context (CPU count, kernel release, protection support, whether
// this was a -c opt build) is in the output's header / JSON `context`.
#include "bench/environment.h"
#include <fcntl.h>
#include <liburing.h>
#include <linux/futex.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>

#include "bench/micro_resume.h"
#include "bench/resume.h"
#include "bench/run_lock.h"
#include "stack/cpu_affinity.h"

#include "baselines/handoff_invoker.h"
#include "sandbox/extension.h"
#include "sandbox/protection.h"
#include "sandbox/region.h"
#include "sandbox/stack_extension.h"
#include "stack/forwarding_loop.h"
#include "stack/checksum.h"
#include "stack/packet_pool.h"
#include "stack/protocols.h"
#include "stack/stack.h"

namespace ulsnet {
namespace {

// ---- calls -------------------------------------------------------------------------------

// getppid: the kernel does nothing but read current->real_parent->tgid under RCU (no locks, no
// memory allocation, no file table); it has no vDSO version (unlike clock_gettime, getcpu,
// time, gettimeofday) and glibc has never cached it (glibc cached getpid() until 2.25).
// syscall(2) bypasses any libc wrapper, so every iteration is one real kernel entry and exit,
// with whatever the kernel's speculation mitigations add to that on this CPU.
void BM_NullSyscall(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(syscall(SYS_getppid));
}
BENCHMARK(BM_NullSyscall);

// One io_uring round trip with no I/O: a NOP submitted and its completion reaped with one
// io_uring_enter (submit and wait for 1), as kernel-socket:io_uring's loop pays once per pass.
void BM_IoUringNop(benchmark::State& state) {
  io_uring ring{};
  if (const int r = io_uring_queue_init(8, &ring, 0); r < 0) {
    std::string disabled = "?";
    std::ifstream f("/proc/sys/kernel/io_uring_disabled");
    if (f) std::getline(f, disabled);
    state.SkipWithError(("io_uring unavailable: io_uring_setup: " + std::string(std::strerror(-r)) +
                         " (kernel.io_uring_disabled = " + disabled + ")")
                            .c_str());
    return;
  }
  for (auto _ : state) {
    io_uring_prep_nop(io_uring_get_sqe(&ring));
    io_uring_cqe* cqe = nullptr;
    if (io_uring_submit_and_wait(&ring, 1) < 1 || io_uring_peek_cqe(&ring, &cqe) != 0 || cqe->res != 0) {
      state.SkipWithError("io_uring NOP did not complete");
      break;
    }
    io_uring_cqe_seen(&ring, cqe);
  }
  io_uring_queue_exit(&ring);
}
BENCHMARK(BM_IoUringNop);

__attribute__((noinline)) int plain_function(int x) {
  benchmark::DoNotOptimize(x);
  return x + 1;
}
// volatile: the pointer is reloaded every call, so the call cannot be devirtualised or inlined.
int (*volatile g_fn)(int) = plain_function;

void BM_FunctionCall(benchmark::State& state) {
  int x = 0;
  for (auto _ : state) x = g_fn(x);
  benchmark::DoNotOptimize(x);
}
BENCHMARK(BM_FunctionCall);

// ---- extension invocation in each protection mode -----------------------------------------
//
// One benchmark per mode, registered with BENCHMARK_CAPTURE(fn, <mode>, ProtectionMode::k...) so
// that names read BM_<name>/<mode>; a mode this machine lacks is skipped with its reason.

struct CountState {
  uint64_t n;
};
void count_entry(void* s, const ExtensionEvent&) { ++static_cast<CountState*>(s)->n; }
void count_fn(void* s) { ++static_cast<CountState*>(s)->n; }

std::string mode_unavailable(ProtectionMode m) {
  for (const auto& s : protection_support())
    if (s.mode == m && !s.available) return std::string(protection_mode_name(m)) + ": " + s.reason;
  return "";
}

RegionLayout micro_layout() {
  RegionLayout l;
  l.ring_bytes = 64 << 10;
  l.pool_bytes = 64 << 10;
  l.extension_slots = 2;
  l.extension_slot_bytes = 256 << 10;
  return l;
}

void BM_ExtensionInvoke(benchmark::State& state, ProtectionMode mode) {
  if (auto why = mode_unavailable(mode); !why.empty()) {
    state.SkipWithError(why.c_str());
    return;
  }
  register_extension_type("micro-count", count_entry);
  SandboxRegion region = SandboxRegion::create(micro_layout(), kDefaultRegionAddress + (1ull << 36));
  ExtensionRegistry reg(region);
  ExtensionHandle h = reg.register_extension("micro-count", "count", sizeof(CountState), mode, {});
  ExtensionEvent ev;
  ev.kind = ExtensionEvent::kFrames;
  for (auto _ : state) {
    UpcallResult r = reg.invoke(h, ev);
    benchmark::DoNotOptimize(r);
  }
  if (static_cast<const CountState*>(reg.state(h))->n != uint64_t(state.iterations()))
    state.SkipWithError("the extension did not run once per invocation");
  state.SetLabel(protection_mode_name(mode));
  reg.remove(h);
}
BENCHMARK_CAPTURE(BM_ExtensionInvoke, none, ProtectionMode::kNone);
BENCHMARK_CAPTURE(BM_ExtensionInvoke, mprotect, ProtectionMode::kMprotect);
BENCHMARK_CAPTURE(BM_ExtensionInvoke, pkey, ProtectionMode::kPkey);

void BM_DomainInvoke(benchmark::State& state, ProtectionMode mode) {
  if (auto why = mode_unavailable(mode); !why.empty()) {
    state.SkipWithError(why.c_str());
    return;
  }
  SandboxRegion region = SandboxRegion::create(micro_layout(), kDefaultRegionAddress + (1ull << 37));
  std::span<uint8_t> slot{region.extension_slot(0), region.header().extension_slot_bytes};
  ProtectionDomain d(mode, slot, 64 << 10);
  auto* st = reinterpret_cast<CountState*>(slot.data() + (4096 + (64 << 10)));
  for (auto _ : state) {
    InvokeResult r = d.invoke(count_fn, st);
    benchmark::DoNotOptimize(r);
  }
  state.counters["protection_calls_per_invoke"] =
      double(d.protection_calls()) / double(std::max<int64_t>(1, state.iterations()));
  state.SetLabel(protection_mode_name(mode));
}
BENCHMARK_CAPTURE(BM_DomainInvoke, none, ProtectionMode::kNone);
BENCHMARK_CAPTURE(BM_DomainInvoke, mprotect, ProtectionMode::kMprotect);
BENCHMARK_CAPTURE(BM_DomainInvoke, pkey, ProtectionMode::kPkey);

// ---- scheduling: threads, processes, signals ----------------------------------------------

long futex(std::atomic<uint32_t>* w, int op, uint32_t v, const timespec* t) {
  return syscall(SYS_futex, reinterpret_cast<uint32_t*>(w), op | FUTEX_PRIVATE_FLAG, v, t, nullptr, 0);
}

// Every wait below is bounded: it sleeps in slices of kWaitSlice and gives up after kGiveUp
// without an answer (or at once when `stop` is set), so a partner that died or lost a wake-up
// makes the benchmark fail with an error, never hang. Slices only expire when nothing arrives:
// the fast path reads no clock.
constexpr timespec kWaitSlice{0, 10'000'000};  // 10 ms
constexpr int kGiveUpSlices = 200;              // 2 s

// Waits until *w != old. False on stop or give-up.
bool futex_wait_change(std::atomic<uint32_t>& w, uint32_t old, const std::atomic<bool>& stop) {
  int slices = 0;
  while (w.load(std::memory_order_acquire) == old) {
    if (stop.load(std::memory_order_relaxed) || slices >= kGiveUpSlices) return false;
    if (futex(&w, FUTEX_WAIT, old, &kWaitSlice) != 0 && errno == ETIMEDOUT) ++slices;
  }
  return true;
}

// Consumes one event from a non-blocking eventfd: read(2); if nothing is there yet, sleep in
// poll(2) until it is readable, then read again. False on stop or give-up.
bool eventfd_wait(int fd, const std::atomic<bool>& stop) {
  int slices = 0;
  for (;;) {
    uint64_t v;
    if (read(fd, &v, sizeof v) == sizeof v) return true;
    if (errno != EAGAIN && errno != EINTR) return false;
    if (stop.load(std::memory_order_relaxed) || slices >= kGiveUpSlices) return false;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, int(kWaitSlice.tv_nsec / 1'000'000)) == 0) ++slices;
  }
}

void eventfd_signal(int fd) {
  uint64_t one = 1;
  (void)!write(fd, &one, sizeof one);
}

enum class Handoff { kFutex, kEventfd };

// A ping-pong between the benchmark thread and a partner thread; both sleep in the kernel while
// waiting (no spinning), so one iteration = one round trip = two wake-ups of a sleeping thread:
//  - futex: a 32-bit counter each way; the sender increments it and FUTEX_WAKEs, the receiver
//    sleeps in FUTEX_WAIT (what a condition variable / the user-thread baseline's queue does).
//  - eventfd: one eventfd each way; the sender write(2)s, the receiver sleeps in poll(2) and
//    then read(2)s (what an event loop does).
// With >= 2 allowed CPUs the threads are pinned to two distinct ones (the first two of the
// process's affinity mask), so every wake-up crosses CPUs (an IPI, and in a VM a vCPU that
// halted must be rescheduled by the host). Pinning is recorded in counters (`pinned`,
// `cpu_main`, `cpu_partner`; -1 = not pinned) and in the label. Real time is reported: the
// benchmark thread's CPU time misses the time spent asleep and the partner's work.
void BM_ThreadHandoff(benchmark::State& state, Handoff kind) {
  const bool use_futex = kind == Handoff::kFutex;
  AffinityRestore restore;
  const std::vector<int> cpus = allowed_cpus();
  const bool want_pin = cpus.size() >= 2;
  std::atomic<uint32_t> ping{0}, pong{0};
  std::atomic<bool> stop{false};
  std::atomic<int> partner_cpu{-1};
  int efd_ping = -1, efd_pong = -1;
  if (!use_futex) {
    efd_ping = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    efd_pong = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (efd_ping < 0 || efd_pong < 0) {
      state.SkipWithError("eventfd failed");
      if (efd_ping >= 0) close(efd_ping);
      if (efd_pong >= 0) close(efd_pong);
      return;
    }
  }
  std::thread partner([&] {
    if (want_pin && pin_to(cpus[1])) partner_cpu.store(cpus[1]);
    uint32_t seen = 0;
    for (;;) {
      if (use_futex) {
        if (!futex_wait_change(ping, seen, stop)) return;
        seen = ping.load(std::memory_order_acquire);
      } else if (!eventfd_wait(efd_ping, stop)) {
        return;
      }
      if (stop.load()) return;
      if (use_futex) {
        pong.fetch_add(1, std::memory_order_release);
        futex(&pong, FUTEX_WAKE, 1, nullptr);
      } else {
        eventfd_signal(efd_pong);
      }
    }
  });
  const int main_cpu = want_pin && pin_to(cpus[0]) ? cpus[0] : -1;
  uint32_t expect = 0;
  for (auto _ : state) {
    bool answered;
    if (use_futex) {
      ping.fetch_add(1, std::memory_order_release);
      futex(&ping, FUTEX_WAKE, 1, nullptr);
      answered = futex_wait_change(pong, expect++, stop);
    } else {
      eventfd_signal(efd_ping);
      answered = eventfd_wait(efd_pong, stop);
    }
    if (!answered) {
      state.SkipWithError("the partner thread did not answer within 2 s");
      break;
    }
  }
  stop.store(true);
  if (use_futex) {
    ping.fetch_add(1, std::memory_order_release);
    futex(&ping, FUTEX_WAKE, 1, nullptr);
  } else {
    eventfd_signal(efd_ping);
  }
  partner.join();  // bounded: the partner sees `stop` within one wait slice
  if (!use_futex) {
    close(efd_ping);
    close(efd_pong);
  }
  const int pcpu = partner_cpu.load();
  const bool pinned = main_cpu >= 0 && pcpu >= 0;
  state.counters["pinned"] = pinned ? 1 : 0;
  state.counters["cpu_main"] = main_cpu;
  state.counters["cpu_partner"] = pcpu;
  state.SetLabel(std::string(use_futex ? "futex" : "eventfd") +
                 (pinned ? ", threads pinned to CPUs " + std::to_string(main_cpu) + " and " +
                               std::to_string(pcpu)
                         : want_pin ? ", NOT pinned (sched_setaffinity failed)"
                                    : ", not pinned (one CPU allowed)"));
}
BENCHMARK_CAPTURE(BM_ThreadHandoff, futex, Handoff::kFutex)->UseRealTime();
BENCHMARK_CAPTURE(BM_ThreadHandoff, eventfd, Handoff::kEventfd)->UseRealTime();

// One iteration: write(2) one byte into a pipe, a forked child blocked in read(2) wakes, writes
// it back through a second pipe, and this process's read(2) returns it. Not pinned: the
// scheduler places the two processes. The child dies with the benchmark thread
// (PR_SET_PDEATHSIG, SIGKILL: also if the benchmark aborts or is killed) and is killed and
// reaped at the end; if it dies early, read(2) sees end-of-file and the benchmark fails.
void BM_ProcessPipeRoundTrip(benchmark::State& state) {
  int to_child[2], to_parent[2];
  if (pipe2(to_child, O_CLOEXEC) != 0) {
    state.SkipWithError("pipe2 failed");
    return;
  }
  if (pipe2(to_parent, O_CLOEXEC) != 0) {
    close(to_child[0]);
    close(to_child[1]);
    state.SkipWithError("pipe2 failed");
    return;
  }
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlives the benchmark
    if (getppid() != parent) _exit(1);  // the parent died before prctl took effect
    close(to_child[1]);
    close(to_parent[0]);
    char c;
    while (read(to_child[0], &c, 1) == 1) (void)!write(to_parent[1], &c, 1);
    _exit(0);
  }
  close(to_child[0]);
  close(to_parent[1]);
  if (pid < 0) {
    close(to_child[1]);
    close(to_parent[0]);
    state.SkipWithError("fork failed");
    return;
  }
  char c = 'x';
  for (auto _ : state) {
    if (write(to_child[1], &c, 1) != 1 || read(to_parent[0], &c, 1) != 1) {
      state.SkipWithError("the echo process died");
      break;
    }
  }
  close(to_child[1]);  // the child sees EOF and exits; SIGKILL in case it does not
  close(to_parent[0]);
  kill(pid, SIGKILL);
  int st;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
}
BENCHMARK(BM_ProcessPipeRoundTrip)->UseRealTime();

volatile sig_atomic_t g_signals = 0;
void on_usr1(int) { g_signals = g_signals + 1; }

// One round trip, all on this one thread (no other thread or process, no scheduling):
// tgkill(2) sends SIGUSR1 to this very thread -> on the way back from that system call the
// kernel finds the signal pending, writes a signal frame on the user stack and enters the
// handler in user mode -> the handler returns into the sigreturn trampoline -> rt_sigreturn(2)
// restores the interrupted context. Two kernel entries and the signal frame save/restore per
// iteration: the cheapest form of a kernel-to-user upcall on a stock kernel.
void BM_SignalRoundTrip(benchmark::State& state) {
  struct sigaction sa {}, old {};
  sa.sa_handler = on_usr1;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR1, &sa, &old);
  const pid_t pid = getpid();
  const pid_t tid = pid_t(syscall(SYS_gettid));
  const int before = g_signals;
  for (auto _ : state) syscall(SYS_tgkill, pid, tid, SIGUSR1);
  if (g_signals - before != int(state.iterations())) state.SkipWithError("a signal was not delivered");
  sigaction(SIGUSR1, &old, nullptr);
  state.SetLabel("tgkill to self, handler, rt_sigreturn");
}
BENCHMARK(BM_SignalRoundTrip);

// ---- copies vs descriptors ---------------------------------------------------------------
//
// Both benchmarks walk the same kind of memory: frames of the given size in buffers laid out
// like a PacketPool's (one per 2 KiB, or per 10 KiB for jumbo frames) across a 16 MiB region,
// so successive frames are not in L1/L2 and the copy pays for memory traffic as a forwarding
// path does. Both end with the consumer touching the frame it got (reading the Ethertype and
// the last byte), so the only difference is copying the bytes vs moving a 32-byte Frame.

constexpr size_t kFrameRegionBytes = 16 << 20;
size_t frame_stride(size_t n) { return (n + 2047) / 2048 * 2048; }
inline uint8_t touch_frame(const uint8_t* p, size_t n) { return uint8_t(p[12] ^ p[n - 1]); }

// One iteration: memcpy of one frame into a buffer in another 16 MiB region, then touching the
// copy.
void BM_CopyFrame(benchmark::State& state) {
  const size_t n = size_t(state.range(0));
  const size_t stride = frame_stride(n);
  const size_t count = kFrameRegionBytes / stride;
  std::vector<uint8_t> src(count * stride), dst(count * stride);
  for (size_t i = 0; i < src.size(); ++i) src[i] = uint8_t(i * 7 + 3);
  size_t i = 0;
  for (auto _ : state) {
    uint8_t* d = dst.data() + i * stride;
    std::memcpy(d, src.data() + i * stride, n);
    benchmark::ClobberMemory();
    benchmark::DoNotOptimize(touch_frame(d, n));
    if (++i == count) i = 0;
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(n));
  state.counters["frame_buffers"] = double(count);
}
BENCHMARK(BM_CopyFrame)->Arg(64)->Arg(512)->Arg(1518)->Arg(9000);

// One iteration: the producer puts one frame's descriptor into a ring of 256 (half full, as a
// ring with frames in flight is), the consumer takes the oldest one out and touches that frame.
// The frame's bytes never move: the time is the same at every size, which is the point.
void BM_PassDescriptor(benchmark::State& state) {
  const uint32_t n = uint32_t(state.range(0));
  const size_t stride = frame_stride(n);
  const uint32_t count = uint32_t(kFrameRegionBytes / stride);
  std::vector<uint8_t> region(count * stride);
  for (size_t i = 0; i < region.size(); ++i) region[i] = uint8_t(i * 7 + 3);
  constexpr uint32_t kRing = 256;
  std::vector<Frame> ring(kRing);
  auto frame_at = [&](uint32_t i) {
    Frame f;
    f.data = region.data() + size_t(i) * stride;
    f.len = n;
    f.capacity = uint32_t(stride);
    f.handle = i;
    return f;
  };
  uint32_t head = 0, tail = 0, next = 0;
  for (; tail < kRing / 2; ++tail) {
    ring[tail] = frame_at(next);
    next = next + 1 == count ? 0 : next + 1;
  }
  for (auto _ : state) {
    ring[tail++ & (kRing - 1)] = frame_at(next);  // produce
    next = next + 1 == count ? 0 : next + 1;
    benchmark::ClobberMemory();                   // the ring really is written and read
    const Frame g = ring[head++ & (kRing - 1)];   // consume
    benchmark::DoNotOptimize(touch_frame(g.data, g.len));
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(n));
  state.counters["frame_buffers"] = double(count);
}
BENCHMARK(BM_PassDescriptor)->Arg(64)->Arg(512)->Arg(1518)->Arg(9000);

// ---- the Stack ---------------------------------------------------------------------------

struct PoolAlloc : FrameAllocator {
  PacketPool pool{64};
  size_t alloc_tx(std::span<Frame> out) override { return pool.alloc(out); }
};

Ipv4Addr micro_ip(const char* s) { return *Ipv4Addr::parse(s); }
MacAddr micro_mac(uint8_t b) { return MacAddr{{0x02, 0, 0, 0, 0, b}}; }

// The proxy of bench/: interface 0 (10.201.1.2, mac 10) toward the sender 10.201.1.1 (mac 1),
// interface 1 (10.201.2.1, mac 20) toward the receiver 10.201.2.2 (mac 2), static neighbours
// (no ARP during the run); relay: UDP port 9000 on our address -> 10.201.2.2:9000.
StackConfig micro_stack_config(ForwardMode mode, PoolAlloc& a0, PoolAlloc& a1) {
  StackConfig c;
  c.mode = mode;
  c.ifaces = {{"p0", micro_mac(10), micro_ip("10.201.1.2"), 24, &a0},
              {"p1", micro_mac(20), micro_ip("10.201.2.1"), 24, &a1}};
  c.relays = {{9000, micro_ip("10.201.2.2"), 9000}};
  c.neighbors = {{micro_ip("10.201.1.1"), micro_mac(1)}, {micro_ip("10.201.2.2"), micro_mac(2)}};
  return c;
}

constexpr uint32_t kStackBurst = 32, kStackPayload = 64;
constexpr uint32_t kStackFrameLen = 14 + 20 + 8 + kStackPayload;

// A valid frame from the sender on interface 0: to our address (relay) or through us to the
// receiver (router), UDP 5555 -> 9000, 64-byte payload, correct checksums.
void micro_udp_template(ForwardMode mode, uint8_t (&tmpl)[kStackFrameLen]) {
  const Ipv4Addr src = micro_ip("10.201.1.1");
  const Ipv4Addr dst = micro_ip(mode == ForwardMode::kRelay ? "10.201.1.2" : "10.201.2.2");
  write_eth(tmpl, micro_mac(10), micro_mac(1), kEtherTypeIpv4);
  write_ipv4(tmpl + 14, src, dst, kProtoUdp, 20 + 8 + kStackPayload, 64);
  uint8_t* u = tmpl + 34;
  store_be16(u, 5555);
  store_be16(u + 2, 9000);
  store_be16(u + 4, 8 + kStackPayload);
  store_be16(u + 6, 0);
  for (uint32_t i = 0; i < kStackPayload; ++i) u[8 + i] = uint8_t(i);
  store_be16(u + 6, udp_checksum(u, 8 + kStackPayload, src, dst));
}

// Checks one processed burst: every frame forwarded in place on interface 1 to the receiver,
// with valid headers and checksums. Returns what is wrong, or "".
std::string check_forwarded(const std::vector<Frame>& burst, const TxBatch& out) {
  if (!out.per_iface[0].empty()) return "frames were sent back on interface 0";
  if (out.per_iface[1].size() != burst.size())
    return std::to_string(out.per_iface[1].size()) + " of " + std::to_string(burst.size()) +
           " frames forwarded";
  for (size_t i = 0; i < burst.size(); ++i) {
    const Frame& g = out.per_iface[1][i];
    if (g.data != burst[i].data) return "a frame was not forwarded in place";
    EthView e;
    Ipv4View v;
    UdpView u;
    if (parse_eth(g.bytes(), e) || e.dst != micro_mac(2) || e.src != micro_mac(20))
      return "bad Ethernet header on a forwarded frame";
    if (parse_ipv4({g.data + 14, g.len - 14}, v) || v.dst != micro_ip("10.201.2.2"))
      return "bad IPv4 header on a forwarded frame";
    if (parse_udp({g.data + 34, v.total_len - 20}, v.src, v.dst, true, u) || u.dst_port != 9000)
      return "bad UDP header or checksum on a forwarded frame";
  }
  return "";
}

// Fills `frames` with buffers of `pool` holding the template frame; false if the pool ran short.
bool micro_frames(PacketPool& pool, const uint8_t (&tmpl)[kStackFrameLen], std::vector<Frame>& frames) {
  if (pool.alloc(frames) != frames.size()) return false;
  for (Frame& f : frames) {
    std::memcpy(f.data, tmpl, sizeof tmpl);
    f.len = sizeof tmpl;
  }
  return true;
}

// One iteration: Stack::process over a burst of 32 valid UDP frames (64-byte payload) held in a
// PacketPool. The same 32 buffers are reused forever (no allocation in the loop): before each
// burst the 42 header bytes the previous pass rewrote in place are restored from the template
// (a 42-byte copy per packet, included in the time). Verified once before timing (every frame
// forwarded, in place, valid) and by the Stack's counters after.
void BM_StackPerPacket(benchmark::State& state, ForwardMode mode) {
  PoolAlloc a0, a1;
  Stack stack(micro_stack_config(mode, a0, a1));
  uint8_t tmpl[kStackFrameLen];
  micro_udp_template(mode, tmpl);
  PacketPool pool(kStackBurst);
  std::vector<Frame> frames(kStackBurst);
  if (!micro_frames(pool, tmpl, frames)) {
    state.SkipWithError("PacketPool::alloc failed");
    return;
  }
  TxBatch out(2, tx_capacity(kStackBurst));
  std::vector<Frame> burst = frames;
  // Once, outside the timing: the frames really are forwarded.
  stack.process(0, burst, out, 1000);
  if (std::string why = check_forwarded(frames, out); !why.empty()) {
    state.SkipWithError(("the Stack did not forward the burst: " + why).c_str());
    return;
  }
  out.clear();
  for (auto _ : state) {
    for (Frame& f : burst) std::memcpy(f.data, tmpl, 42);
    stack.process(0, burst, out, 1000);
    out.clear();
  }
  const uint64_t expected = (uint64_t(state.iterations()) + 1) * kStackBurst;
  if (stack.counters().forwarded != expected || stack.counters().rx_frames != expected)
    state.SkipWithError("the Stack did not forward every frame");
  state.SetItemsProcessed(int64_t(state.iterations()) * kStackBurst);
  state.counters["time_per_packet"] = benchmark::Counter(
      kStackBurst, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
  state.SetLabel(std::string(forward_mode_name(mode)) +
                 ", 64-byte payload, bursts of 32 (time per burst), includes restoring 42 header "
                 "bytes per packet");
}
BENCHMARK_CAPTURE(BM_StackPerPacket, relay, ForwardMode::kRelay);
BENCHMARK_CAPTURE(BM_StackPerPacket, router, ForwardMode::kRouter);

// The Stack invoked as each method invokes it: one burst of 32 through the method's real invoker
// (the one its forwarding loop calls, stack/forwarding_loop.h), from submit until the forwarded
// frames are collected; the header restore of BM_StackPerPacket included. What differs from
// BM_StackPerPacket is what invocation costs.
//   direct             raw-socket's DirectInvoker: a plain call
//   handoff            user-thread's HandOffInvoker: to the stack thread and back, an eventfd
//                      wake-up each way (real time: the I/O thread sleeps while it waits)
//   upcall_<mode>      the sandbox's UpcallInvoker: one upcall through the extension registry
//                      under that protection domain, the Stack and the grant in the region
enum class Invoked { kDirect, kHandOff, kUpcall };

// One burst of 32 through `inv`: its frames put where the invoker receives them, submitted, and
// collected back (waiting on the invoker's fd if it has one, up to 2 s). Forwarded frames go to
// `seen` if given. Returns how many frames came back forwarded.
template <class Inv>
size_t invoke_burst(Inv& inv, const std::vector<Frame>& frames, const uint8_t* tmpl, TxBatch* seen) {
  std::span<Frame> buf = inv.rx_buffer(0);
  if (buf.size() < frames.size()) return 0;
  for (size_t k = 0; k < frames.size(); ++k) {
    std::memcpy(frames[k].data, tmpl, 42);
    buf[k] = frames[k];
  }
  inv.submit(0, buf.first(frames.size()), 1000);
  size_t got = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  auto send = [&](TxBatch& out) {
    got += out.per_iface[1].size();
    if (seen != nullptr)
      for (size_t k = 0; k < 2; ++k)
        for (const Frame& f : out.per_iface[k]) seen->per_iface[k].push_back(f);
    out.clear();
  };
  inv.collect(send);
  while (got < frames.size() && inv.wait_fd() >= 0 && std::chrono::steady_clock::now() < deadline) {
    pollfd p{inv.wait_fd(), POLLIN, 0};
    if (poll(&p, 1, 100) > 0) inv.on_wake();
    inv.collect(send);
  }
  return got;
}

template <class Inv>
void time_invoked(benchmark::State& state, Inv& inv, const Stack& stack, const std::string& label) {
  uint8_t tmpl[kStackFrameLen];
  micro_udp_template(ForwardMode::kRelay, tmpl);
  PacketPool pool(kStackBurst);
  std::vector<Frame> frames(kStackBurst);
  if (!micro_frames(pool, tmpl, frames)) {
    state.SkipWithError("PacketPool::alloc failed");
    return;
  }
  // Once, outside the timing: the frames really are forwarded through this invoker.
  TxBatch seen(2);
  invoke_burst(inv, frames, tmpl, &seen);
  if (std::string why = check_forwarded(frames, seen); !why.empty()) {
    state.SkipWithError(("the Stack did not forward the burst: " + why).c_str());
    return;
  }
  for (auto _ : state) {
    if (invoke_burst(inv, frames, tmpl, nullptr) != kStackBurst) {
      state.SkipWithError("a burst did not come back forwarded");
      break;
    }
  }
  if (stack.counters().forwarded != (uint64_t(state.iterations()) + 1) * kStackBurst)
    state.SkipWithError("the Stack did not forward every frame");
  state.SetItemsProcessed(int64_t(state.iterations()) * kStackBurst);
  state.counters["time_per_packet"] = benchmark::Counter(
      kStackBurst, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
  state.SetLabel(label + ", relay, bursts of 32 (time per burst)");
}

void BM_StackInvoked(benchmark::State& state, Invoked how, ProtectionMode mode) {
  PoolAlloc a0, a1;
  if (how == Invoked::kDirect) {
    Stack stack(micro_stack_config(ForwardMode::kRelay, a0, a1));
    DirectInvoker inv(stack, 2, kStackBurst);
    time_invoked(state, inv, stack, "DirectInvoker (raw-socket)");
    return;
  }
  if (how == Invoked::kHandOff) {
    HandOffInvoker inv(2, kStackBurst);
    StackConfig c = micro_stack_config(ForwardMode::kRelay, a0, a1);
    for (auto& i : c.ifaces) i.allocator = inv.generated();
    Stack stack(c);
    inv.start(stack);
    time_invoked(state, inv, stack, "HandOffInvoker (user-thread)");
    inv.finish();
    inv.collect([](TxBatch& out) { out.clear(); });
    return;
  }
  if (auto why = mode_unavailable(mode); !why.empty()) {
    state.SkipWithError(why.c_str());
    return;
  }
  SandboxRegion region = SandboxRegion::create(micro_layout(), kDefaultRegionAddress + (3ull << 36));
  ExtensionRegistry reg(region);
  const ExtensionHandle h = register_stack_extension(reg, micro_stack_config(ForwardMode::kRelay, a0, a1), mode);
  {
    UpcallInvoker inv(reg, h, {region.rings(), region.header().rings_bytes}, 2, kStackBurst);
    time_invoked(state, inv, *stack_extension_stack(reg, h),
                 std::string("UpcallInvoker (sandbox), ") + protection_mode_name(mode));
  }
  remove_stack_extension(reg, h);
}
BENCHMARK_CAPTURE(BM_StackInvoked, direct, Invoked::kDirect, ProtectionMode::kNone);
BENCHMARK_CAPTURE(BM_StackInvoked, handoff, Invoked::kHandOff, ProtectionMode::kNone)->UseRealTime();
BENCHMARK_CAPTURE(BM_StackInvoked, upcall_none, Invoked::kUpcall, ProtectionMode::kNone);
BENCHMARK_CAPTURE(BM_StackInvoked, upcall_mprotect, Invoked::kUpcall, ProtectionMode::kMprotect);
BENCHMARK_CAPTURE(BM_StackInvoked, upcall_pkey, Invoked::kUpcall, ProtectionMode::kPkey);

// How this binary, and with it //stack (Bazel builds both in the same configuration), was
// compiled. -c opt is -O2 -DNDEBUG (this repository's .bazelrc sets it); fastbuild and dbg
// define neither __OPTIMIZE__ nor NDEBUG.
const char* build_mode() {
#if defined(__OPTIMIZE__) && defined(NDEBUG)
  return "-c opt (optimized, NDEBUG)";
#elif defined(__OPTIMIZE__)
  return "optimized but assertions on (not -c opt)";
#else
  return "not optimized (-c fastbuild or -c dbg): numbers are not representative";
#endif
}

}  // namespace
}  // namespace ulsnet

namespace {

// Runs this binary with `args` (the environment says: one instance, plainly), its stdout to
// `stdout_to` (-1: inherited) and its stderr into `err`; its exit status (or 128+signal, -1).
int run_self(const std::vector<std::string>& args, int stdout_to, std::string& err) {
  int ep[2];
  if (pipe(ep) != 0) return -1;
  std::vector<char*> av;
  for (const std::string& a : args) av.push_back(const_cast<char*>(a.c_str()));
  av.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    if (stdout_to >= 0) dup2(stdout_to, STDOUT_FILENO);
    dup2(ep[1], STDERR_FILENO);
    close(ep[0]);
    close(ep[1]);
    setenv("ULSNET_MICRO_ONE", "1", 1);
    execv("/proc/self/exe", av.data());
    _exit(127);
  }
  close(ep[1]);
  char buf[4096];
  ssize_t n;
  while ((n = read(ep[0], buf, sizeof buf)) != 0)
    if (n > 0) err.append(buf, size_t(n));
    else if (errno != EINTR) break;
  close(ep[0]);
  int st = 0;
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

// --benchmark_out=FILE: instance by instance, resumable (bench/micro_resume.h).
int run_resumable(const std::string& argv0, const std::vector<std::string>& args, const std::string& out, bool fresh) {
  namespace fs = std::filesystem;
  std::vector<std::string> list_args = {argv0};
  for (const std::string& a : args)
    if (a.rfind("--benchmark_filter=", 0) == 0) list_args.push_back(a);
  list_args.push_back("--benchmark_list_tests=true");
  char tmpl[] = "/tmp/ulsnet-micro-list-XXXXXX";
  const int lf = mkstemp(tmpl);
  if (lf < 0) return std::fprintf(stderr, "micro: mkstemp: %s\n", std::strerror(errno)), 1;
  std::string err;
  const int lrc = run_self(list_args, lf, err);
  close(lf);
  std::string listing;
  {
    std::ifstream in(tmpl);
    listing.assign(std::istreambuf_iterator<char>(in), {});
  }
  fs::remove(tmpl);
  if (lrc != 0) return std::fprintf(stderr, "micro: listing the benchmarks failed (exit %d): %s\n", lrc, err.c_str()), 1;
  const std::vector<std::string> instances = ulsnet::micro::parse_listing(listing);
  if (instances.empty()) return std::fprintf(stderr, "micro: the filter selects no benchmark\n"), 2;

  const nlohmann::json config = ulsnet::micro::configuration(args, instances);
  ulsnet::resume::Earlier earlier;
  try {
    earlier = ulsnet::resume::load(out, fresh, "micro", config, "benchmarks");
  } catch (const ulsnet::resume::Refused& e) {
    std::fprintf(stderr, "micro: %s\n", e.what());
    return 2;
  }
  nlohmann::json doc = ulsnet::micro::new_document(config);
  const std::string parts = out + ".parts";
  fs::create_directories(parts);
  auto save = [&] {
    std::ofstream(out + ".partial") << doc.dump(1) << "\n";
    fs::rename(out + ".partial", out);
  };
  size_t to_run = 0;
  for (const std::string& i : instances) to_run += earlier.points.count(i) ? 0 : 1;
  if (!earlier.points.empty())
    std::fprintf(stderr, "micro: resuming %s: %zu of %zu benchmarks kept, %zu to run\n", out.c_str(),
                 instances.size() - to_run, instances.size(), to_run);
  // The earlier file's context, read once: the document's when a kept benchmark comes first.
  nlohmann::json old_context = nlohmann::json::object();
  if (!earlier.points.empty()) {
    std::ifstream in(out);
    const nlohmann::json old = nlohmann::json::parse(in, nullptr, false);
    if (old.is_object() && old.contains("context")) old_context = old["context"];
  }
  ulsnet::resume::Eta eta(5);
  int failed = 0;
  size_t done = 0;
  for (size_t k = 0; k < instances.size(); ++k) {
    const std::string& inst = instances[k];
    if (const auto* rows = earlier.take(inst)) {
      if (doc["context"].empty()) doc["context"] = old_context;
      for (const auto& r : *rows) doc["benchmarks"].push_back(r);
      continue;
    }
    const std::string part = parts + "/" + std::to_string(k) + ".json";
    std::vector<std::string> child = {argv0};
    for (const std::string& a : args)
      if (a.rfind("--benchmark_filter=", 0) != 0) child.push_back(a);
    child.push_back("--benchmark_filter=^" + ulsnet::micro::regex_escape(inst) + "$");
    child.push_back("--benchmark_out=" + part);
    child.push_back("--benchmark_out_format=json");
    const auto t0 = std::chrono::steady_clock::now();
    std::string child_err;
    std::fflush(stdout);
    const int rc = run_self(child, -1, child_err);
    eta.measured(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    ++done;
    std::ifstream in(part);
    const nlohmann::json pj =
        ulsnet::micro::parse_benchmark_json(std::string(std::istreambuf_iterator<char>(in), {}));
    if (rc != 0) {
      ++failed;
      std::fprintf(stderr, "micro: %s failed (exit %d): %s\n", inst.c_str(), rc, child_err.c_str());
      doc["benchmarks"].push_back(ulsnet::micro::error_row(inst, "exit " + std::to_string(rc)));
    } else {
      ulsnet::micro::add_part(doc, pj, inst);
    }
    save();
    std::fprintf(stderr, "micro: [%zu/%zu] %s done%s\n", done, to_run, inst.c_str(), eta.left(to_run - done).c_str());
  }
  doc["complete"] = failed == 0;
  save();
  fs::remove_all(parts);
  return failed ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  // A measuring run holds the machine (bench/run_lock.h); listing the benchmarks or the help does not.
  bool measures = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--benchmark_list_tests", 0) == 0 || a == "--help" || a == "-h") measures = false;
  }
  std::optional<ulsnet::RunLock> lock;
  if (measures && !(lock = ulsnet::RunLock::take_or_explain("micro", argc, argv))) return 3;
  // --benchmark_out=FILE (JSON): instance by instance, resumable, unless this process is one of
  // those instances or only lists them.
  if (!std::getenv("ULSNET_MICRO_ONE")) {
    std::string out, format = "json";
    bool fresh = false, plain = false;
    std::vector<std::string> args;
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      if (a.rfind("--benchmark_out=", 0) == 0) out = a.substr(16);
      else if (a == "--fresh") fresh = true;
      else if (a.rfind("--benchmark_out_format=", 0) == 0) format = a.substr(23);
      else if (a.rfind("--benchmark_list_tests", 0) == 0) plain = true;
      if (a != "--fresh" && a.rfind("--benchmark_out", 0) != 0) args.push_back(a);
    }
    if (!out.empty() && format == "json" && !plain) return run_resumable(argv[0], args, out, fresh);
    if (fresh) {
      std::fprintf(stderr, "micro: --fresh applies to a JSON --benchmark_out only\n");
      return 2;
    }
  }
  utsname u{};
  uname(&u);
  benchmark::AddCustomContext("kernel", std::string(u.sysname) + " " + u.release);
  benchmark::AddCustomContext("cpus", std::to_string(std::thread::hardware_concurrency()));
  benchmark::AddCustomContext("cpus_allowed", std::to_string(ulsnet::allowed_cpus().size()));
  benchmark::AddCustomContext("stack_build", ulsnet::build_mode());
  std::string prot;
  for (const auto& s : ulsnet::protection_support())
    prot += std::string(prot.empty() ? "" : "; ") + ulsnet::protection_mode_name(s.mode) + "=" +
            (s.available ? "yes" : "no (" + s.reason + ")");
  benchmark::AddCustomContext("protection_modes", prot);
  // Where the numbers come from, as every result file records it (bench/environment.h).
  const nlohmann::json env = ulsnet::host_environment("none");
  for (const char* k : {"commit", "describe", "cpu_model", "date", "hostname"})
    if (env.contains(k) && env[k].is_string()) benchmark::AddCustomContext(k, env[k].get<std::string>());
  benchmark::AddCustomContext("dirty", env.value("dirty", false) ? "true" : "false");
  benchmark::AddCustomContext("virtualized", env.value("virtualized", false) ? "true" : "false");
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
