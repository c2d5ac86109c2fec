// //bench:micro: the costs the paper's argument rests on, measured one by one with Google
// Benchmark (its own flags work: --benchmark_format=json, --benchmark_filter=..., ...).
//
//   BM_NullSyscall               a system call that does nothing (getppid, not cached by libc)
//   BM_FunctionCall              a plain call through a pointer the compiler cannot inline
//   BM_ExtensionInvoke/<mode>    one upcall through ExtensionRegistry::invoke (claim, protection
//                                domain enter/leave, the extension's stack, release) per mode
//   BM_DomainInvoke/<mode>       the protection domain alone (no claim)
//   BM_ThreadHandoff/<futex|eventfd>  a round trip between two threads that sleep between
//                                messages: the user-thread baseline's cost per hand-off
//   BM_ProcessPipeRoundTrip      a byte to another process and back through two pipes
//   BM_SignalRoundTrip           a signal sent to this thread and its handler run (kill(2) ->
//                                delivery on return to user mode -> sigreturn)
//   BM_CopyFrame/<bytes>         copying a frame of that size (what a copying path pays)
//   BM_PassDescriptor/<bytes>    moving its descriptor through a ring instead (zero copy)
//   BM_StackPerPacket/<relay|router>  the Stack's own processing per packet, bursts of 32
//   BM_StackAsExtension/<mode>   the same Stack as a sandbox extension: one upcall per burst of
//                                32 in each protection mode (what the sandbox method pays)
//
// Modes or features this machine lacks are skipped with the reason (SkipWithError), never
// measured as something else. Context (CPU count, kernel, protection support) is in the output.
#include <fcntl.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <benchmark/benchmark.h>

#include "sandbox/extension.h"
#include "sandbox/protection.h"
#include "sandbox/region.h"
#include "stack/checksum.h"
#include "stack/packet_pool.h"
#include "stack/protocols.h"
#include "stack/stack.h"

namespace ulsnet {
namespace {

// ---- calls -------------------------------------------------------------------------------

void BM_NullSyscall(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(syscall(SYS_getppid));
}
BENCHMARK(BM_NullSyscall);

__attribute__((noinline)) int plain_function(int x) {
  benchmark::DoNotOptimize(x);
  return x + 1;
}
int (*volatile g_fn)(int) = plain_function;

void BM_FunctionCall(benchmark::State& state) {
  int x = 0;
  for (auto _ : state) x = g_fn(x);
  benchmark::DoNotOptimize(x);
}
BENCHMARK(BM_FunctionCall);

// ---- extensions --------------------------------------------------------------------------

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

void BM_ExtensionInvoke(benchmark::State& state) {
  const auto mode = ProtectionMode(state.range(0));
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
BENCHMARK(BM_ExtensionInvoke)
    ->Arg(int(ProtectionMode::kNone))
    ->Arg(int(ProtectionMode::kMprotect))
    ->Arg(int(ProtectionMode::kPkey))
    ->ArgName("mode(0=none,1=mprotect,2=pkey)");

void BM_DomainInvoke(benchmark::State& state) {
  const auto mode = ProtectionMode(state.range(0));
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
BENCHMARK(BM_DomainInvoke)
    ->Arg(int(ProtectionMode::kNone))
    ->Arg(int(ProtectionMode::kMprotect))
    ->Arg(int(ProtectionMode::kPkey))
    ->ArgName("mode(0=none,1=mprotect,2=pkey)");

// ---- scheduling: threads, processes, signals ----------------------------------------------

bool pin_to(int cpu) {
  if (cpu < 0 || cpu >= int(std::thread::hardware_concurrency())) return false;
  cpu_set_t s;
  CPU_ZERO(&s);
  CPU_SET(cpu, &s);
  return sched_setaffinity(0, sizeof s, &s) == 0;
}

long futex(std::atomic<uint32_t>* w, int op, uint32_t v, const timespec* t) {
  return syscall(SYS_futex, reinterpret_cast<uint32_t*>(w), op | FUTEX_PRIVATE_FLAG, v, t, nullptr, 0);
}

// A ping-pong between this thread and a partner that sleeps between messages. arg 0: futex
// (a word each way), 1: eventfd (one each way). Threads on different CPUs when there are two.
void BM_ThreadHandoff(benchmark::State& state) {
  const bool use_futex = state.range(0) == 0;
  const bool two_cpus = std::thread::hardware_concurrency() >= 2;
  std::atomic<uint32_t> ping{0}, pong{0};
  std::atomic<bool> done{false};
  int efd_ping = eventfd(0, EFD_CLOEXEC), efd_pong = eventfd(0, EFD_CLOEXEC);
  const timespec ms{0, 1'000'000};
  std::thread partner([&] {
    if (two_cpus) pin_to(1);
    uint32_t seen = 0;
    while (!done.load()) {
      if (use_futex) {
        while (ping.load(std::memory_order_acquire) == seen && !done.load())
          futex(&ping, FUTEX_WAIT, seen, &ms);  // bounded: never hangs if the other side died
        seen = ping.load();
        pong.fetch_add(1, std::memory_order_release);
        futex(&pong, FUTEX_WAKE, 1, nullptr);
      } else {
        uint64_t v;
        if (read(efd_ping, &v, sizeof v) != sizeof v) break;
        if (done.load()) break;
        v = 1;
        (void)!write(efd_pong, &v, sizeof v);
      }
    }
  });
  if (two_cpus) pin_to(0);
  uint32_t expect = 0;
  for (auto _ : state) {
    if (use_futex) {
      ping.fetch_add(1, std::memory_order_release);
      futex(&ping, FUTEX_WAKE, 1, nullptr);
      ++expect;
      while (pong.load(std::memory_order_acquire) != expect) futex(&pong, FUTEX_WAIT, expect - 1, &ms);
    } else {
      uint64_t v = 1;
      (void)!write(efd_ping, &v, sizeof v);
      (void)!read(efd_pong, &v, sizeof v);
    }
  }
  done.store(true);
  ping.fetch_add(1);
  futex(&ping, FUTEX_WAKE, 1, nullptr);
  uint64_t one = 1;
  (void)!write(efd_ping, &one, sizeof one);
  partner.join();
  close(efd_ping);
  close(efd_pong);
  // Restore: the benchmark thread may run anywhere again.
  cpu_set_t all;
  CPU_ZERO(&all);
  for (unsigned c = 0; c < std::thread::hardware_concurrency(); ++c) CPU_SET(c, &all);
  sched_setaffinity(0, sizeof all, &all);
  state.SetLabel(std::string(use_futex ? "futex" : "eventfd") + (two_cpus ? ", threads on CPUs 0 and 1" : ", one CPU"));
}
BENCHMARK(BM_ThreadHandoff)->Arg(0)->Arg(1)->ArgName("0=futex,1=eventfd")->UseRealTime();

void BM_ProcessPipeRoundTrip(benchmark::State& state) {
  int to_child[2], to_parent[2];
  if (pipe2(to_child, O_CLOEXEC) != 0 || pipe2(to_parent, O_CLOEXEC) != 0) {
    state.SkipWithError("pipe2 failed");
    return;
  }
  pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlives the benchmark
    close(to_child[1]);
    close(to_parent[0]);
    char c;
    while (read(to_child[0], &c, 1) == 1) (void)!write(to_parent[1], &c, 1);
    _exit(0);
  }
  close(to_child[0]);
  close(to_parent[1]);
  char c = 'x';
  for (auto _ : state) {
    (void)!write(to_child[1], &c, 1);
    if (read(to_parent[0], &c, 1) != 1) {
      state.SkipWithError("the echo process died");
      break;
    }
  }
  close(to_child[1]);  // the child sees EOF and exits
  close(to_parent[0]);
  int st;
  waitpid(pid, &st, 0);
}
BENCHMARK(BM_ProcessPipeRoundTrip)->UseRealTime();

volatile sig_atomic_t g_signals = 0;
void on_usr1(int) { g_signals = g_signals + 1; }

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
}
BENCHMARK(BM_SignalRoundTrip);

// ---- copies vs descriptors ---------------------------------------------------------------

void BM_CopyFrame(benchmark::State& state) {
  const size_t n = size_t(state.range(0));
  // Source and destination rotate through 8 MiB so the copy is not served from L1 alone.
  constexpr size_t kBufs = 4096;
  std::vector<uint8_t> src(kBufs * 2048 * (n > 2048 ? 5 : 1)), dst(src.size());
  const size_t stride = n > 2048 ? 10240 : 2048;
  size_t i = 0;
  for (auto _ : state) {
    std::memcpy(dst.data() + i * stride, src.data() + i * stride, n);
    benchmark::ClobberMemory();
    i = (i + 1) % (src.size() / stride);
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(n));
}
BENCHMARK(BM_CopyFrame)->Arg(64)->Arg(512)->Arg(1518)->Arg(9000);

void BM_PassDescriptor(benchmark::State& state) {
  // A frame descriptor through a single-producer ring and out again: what the zero-copy path
  // does instead of a copy. The frame's size does not matter, which is the point.
  constexpr uint32_t kRing = 1024;
  std::vector<Frame> ring(kRing);
  uint32_t head = 0, tail = 0;
  Frame f;
  f.len = uint32_t(state.range(0));
  for (auto _ : state) {
    ring[tail++ & (kRing - 1)] = f;
    Frame g = ring[head++ & (kRing - 1)];
    benchmark::DoNotOptimize(g);
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * state.range(0));
}
BENCHMARK(BM_PassDescriptor)->Arg(64)->Arg(512)->Arg(1518)->Arg(9000);

// ---- the Stack ---------------------------------------------------------------------------

struct PoolAlloc : FrameAllocator {
  PacketPool pool{64};
  size_t alloc_tx(std::span<Frame> out) override { return pool.alloc(out); }
};

void BM_StackPerPacket(benchmark::State& state) {
  const bool relay = state.range(0) == 0;
  auto ip = [](const char* s) { return *Ipv4Addr::parse(s); };
  auto mac = [](uint8_t b) { return MacAddr{{0x02, 0, 0, 0, 0, b}}; };
  PoolAlloc a0, a1;
  StackConfig c;
  c.mode = relay ? ForwardMode::kRelay : ForwardMode::kRouter;
  c.ifaces = {{"p0", mac(10), ip("10.201.1.2"), 24, &a0}, {"p1", mac(20), ip("10.201.2.1"), 24, &a1}};
  c.relays = {{9000, ip("10.201.2.2"), 9000}};
  c.neighbors = {{ip("10.201.1.1"), mac(1)}, {ip("10.201.2.2"), mac(2)}};
  Stack stack(c);
  // One template frame (64-byte payload, valid checksums); each pass restores the 42 header
  // bytes the previous pass rewrote in place (a 42-byte copy per packet is included).
  constexpr uint32_t kBurst = 32, kPayload = 64;
  uint8_t tmpl[14 + 20 + 8 + kPayload];
  const Ipv4Addr src = ip("10.201.1.1"), dst = relay ? ip("10.201.1.2") : ip("10.201.2.2");
  write_eth(tmpl, mac(10), mac(1), kEtherTypeIpv4);
  write_ipv4(tmpl + 14, src, dst, kProtoUdp, 20 + 8 + kPayload, 64);
  uint8_t* u = tmpl + 34;
  store_be16(u, 5555);
  store_be16(u + 2, 9000);
  store_be16(u + 4, 8 + kPayload);
  store_be16(u + 6, 0);
  for (uint32_t i = 0; i < kPayload; ++i) u[8 + i] = uint8_t(i);
  store_be16(u + 6, udp_checksum(u, 8 + kPayload, src, dst));
  PacketPool pool(kBurst);
  std::vector<Frame> frames(kBurst);
  pool.alloc(frames);
  for (Frame& f : frames) {
    std::memcpy(f.data, tmpl, sizeof tmpl);
    f.len = sizeof tmpl;
  }
  TxBatch out(2);
  out.per_iface[1].reserve(kBurst);
  std::vector<Frame> burst = frames;
  for (auto _ : state) {
    for (Frame& f : burst) std::memcpy(f.data, tmpl, 42);
    stack.process(0, burst, out, 1000);
    out.clear();
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * kBurst);
  if (stack.counters().forwarded != uint64_t(state.iterations()) * kBurst)
    state.SkipWithError("the Stack did not forward every frame");
  state.SetLabel(std::string(relay ? "relay" : "router") + ", 64-byte payload, bursts of 32, "
                 "per-packet time includes restoring 42 header bytes");
}
BENCHMARK(BM_StackPerPacket)->Arg(0)->Arg(1)->ArgName("0=relay,1=router");

// The Stack as a sandbox extension, as the sandbox method runs it: one upcall per burst of 32
// through the registry, in each protection mode (relay, 64-byte payload).
struct StackExt {
  Stack* stack;
  alignas(64) unsigned char storage[sizeof(Stack)];
};
struct MicroBurst {
  Frame* frames;
  uint32_t n;
  TxBatch* out;
};
void stack_ext_entry(void* st, const ExtensionEvent& ev) {
  auto* b = static_cast<MicroBurst*>(ev.grant);
  static_cast<StackExt*>(st)->stack->process(0, {b->frames, b->n}, *b->out, ev.now_ns);
}

void BM_StackAsExtension(benchmark::State& state) {
  const auto mode = ProtectionMode(state.range(0));
  if (auto why = mode_unavailable(mode); !why.empty()) {
    state.SkipWithError(why.c_str());
    return;
  }
  auto ip = [](const char* s) { return *Ipv4Addr::parse(s); };
  auto mac = [](uint8_t b) { return MacAddr{{0x02, 0, 0, 0, 0, b}}; };
  PoolAlloc a0, a1;
  StackConfig c;
  c.mode = ForwardMode::kRelay;
  c.ifaces = {{"p0", mac(10), ip("10.201.1.2"), 24, &a0}, {"p1", mac(20), ip("10.201.2.1"), 24, &a1}};
  c.relays = {{9000, ip("10.201.2.2"), 9000}};
  c.neighbors = {{ip("10.201.1.1"), mac(1)}, {ip("10.201.2.2"), mac(2)}};
  register_extension_type("micro-stack", stack_ext_entry);
  SandboxRegion region = SandboxRegion::create(micro_layout(), kDefaultRegionAddress + (3ull << 36));
  ExtensionRegistry reg(region);
  ExtensionHandle h = reg.register_extension("micro-stack", "stack", sizeof(StackExt), mode, [&](void* st) {
    auto* e = static_cast<StackExt*>(st);
    e->stack = new (e->storage) Stack(c);
  });
  constexpr uint32_t kBurst = 32, kPayload = 64;
  uint8_t tmpl[14 + 20 + 8 + kPayload];
  const Ipv4Addr src = ip("10.201.1.1"), dst = ip("10.201.1.2");
  write_eth(tmpl, mac(10), mac(1), kEtherTypeIpv4);
  write_ipv4(tmpl + 14, src, dst, kProtoUdp, 20 + 8 + kPayload, 64);
  uint8_t* u = tmpl + 34;
  store_be16(u, 5555);
  store_be16(u + 2, 9000);
  store_be16(u + 4, 8 + kPayload);
  store_be16(u + 6, 0);
  for (uint32_t i = 0; i < kPayload; ++i) u[8 + i] = uint8_t(i);
  store_be16(u + 6, udp_checksum(u, 8 + kPayload, src, dst));
  PacketPool pool(kBurst);
  std::vector<Frame> frames(kBurst);
  pool.alloc(frames);
  for (Frame& f : frames) f.len = sizeof tmpl;
  TxBatch out(2);
  out.per_iface[1].reserve(kBurst);
  std::vector<Frame> burst = frames;
  MicroBurst b{burst.data(), kBurst, &out};
  ExtensionEvent ev;
  ev.kind = ExtensionEvent::kFrames;
  ev.grant = &b;
  for (auto _ : state) {
    for (Frame& f : burst) std::memcpy(f.data, tmpl, sizeof tmpl);
    UpcallResult r = reg.invoke(h, ev);
    benchmark::DoNotOptimize(r);
    out.clear();
  }
  const Stack* stack = static_cast<const StackExt*>(reg.state(h))->stack;
  if (stack->counters().forwarded != uint64_t(state.iterations()) * kBurst)
    state.SkipWithError("the Stack did not forward every frame");
  state.SetItemsProcessed(int64_t(state.iterations()) * kBurst);
  state.SetLabel(std::string(protection_mode_name(mode)) + ", relay, bursts of 32");
  reg.remove(h, [](void* st) { static_cast<StackExt*>(st)->stack->~Stack(); });
}
BENCHMARK(BM_StackAsExtension)
    ->Arg(int(ProtectionMode::kNone))
    ->Arg(int(ProtectionMode::kMprotect))
    ->Arg(int(ProtectionMode::kPkey))
    ->ArgName("mode(0=none,1=mprotect,2=pkey)");

}  // namespace
}  // namespace ulsnet

int main(int argc, char** argv) {
  utsname u{};
  uname(&u);
  benchmark::AddCustomContext("kernel", std::string(u.sysname) + " " + u.release);
  benchmark::AddCustomContext("cpus", std::to_string(std::thread::hardware_concurrency()));
  std::string prot;
  for (const auto& s : ulsnet::protection_support())
    prot += std::string(prot.empty() ? "" : "; ") + ulsnet::protection_mode_name(s.mode) + "=" +
            (s.available ? "yes" : "no (" + s.reason + ")");
  benchmark::AddCustomContext("protection_modes", prot);
#ifdef NDEBUG
  benchmark::AddCustomContext("build", "optimized (NDEBUG)");
#else
  benchmark::AddCustomContext("build", "assertions on (not -c opt?)");
#endif
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
