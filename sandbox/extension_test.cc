// Extensions, protection domains and upcall dispatch on a stock kernel.
#include <fcntl.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include <fstream>

#include "sandbox/extension.h"
#include "sandbox/protection.h"
#include "sandbox/region.h"
#include "sandbox/upcall.h"
#include "stack/clock.h"

namespace ulsnet {
namespace {

RegionLayout small_layout() {
  RegionLayout l;
  l.ring_bytes = 64 << 10;
  l.pool_bytes = 64 << 10;
  l.extension_slots = 4;
  l.extension_slot_bytes = 256 << 10;
  return l;
}

// ---- a counting extension -------------------------------------------------------------------

struct CounterState {
  uint64_t frames, timers, messages;
  uint64_t last_pid;
  uint64_t private_target;  // address the "write-private" message writes to
  uint32_t inside;          // set while an invocation runs: detects overlapping invocations
  uint32_t overlaps;
  uint64_t per_pid_pid[4], per_pid_count[4];
};

enum Message : uint32_t { kCount = 0, kWritePrivate = 1, kRecurse = 2, kThrow = 3 };

int recurse(int depth) {
  volatile char pad[512];
  pad[0] = char(depth);
  return depth > 1'000'000 ? pad[0] : recurse(depth + 1) + pad[0];
}

void counter_entry(void* p, const ExtensionEvent& ev) {
  auto* s = static_cast<CounterState*>(p);
  if (s->inside++ != 0) ++s->overlaps;
  s->last_pid = uint64_t(getpid());
  for (int i = 0; i < 4; ++i)
    if (s->per_pid_pid[i] == uint64_t(getpid()) || s->per_pid_pid[i] == 0) {
      s->per_pid_pid[i] = uint64_t(getpid());
      ++s->per_pid_count[i];
      break;
    }
  if (ev.kind == ExtensionEvent::kTimer) ++s->timers;
  if (ev.kind == ExtensionEvent::kFrames) ++s->frames;
  if (ev.kind == ExtensionEvent::kMessage) {
    ++s->messages;
    switch (ev.source) {
      case kWritePrivate: *reinterpret_cast<volatile uint64_t*>(s->private_target) = 0xbad; break;
      case kRecurse: recurse(0); break;
      case kThrow: throw std::runtime_error("extension error");
      default: break;
    }
  }
  --s->inside;
}

struct Types {
  Types() { register_extension_type("counter", counter_entry); }
} types_once;

ExtensionEvent message(uint32_t what) {
  ExtensionEvent ev;
  ev.kind = ExtensionEvent::kMessage;
  ev.source = what;
  return ev;
}

// ---- registry ---------------------------------------------------------------------------------

TEST(ExtensionRegistry, RegisterListDisableEnableRemove) {
  SandboxRegion region = SandboxRegion::create(small_layout());
  ExtensionRegistry reg(region);
  ExtensionHandle a = reg.register_extension("counter", "first", sizeof(CounterState),
                                             ProtectionMode::kNone, {});
  ExtensionHandle b = reg.register_extension("counter", "second", sizeof(CounterState),
                                             ProtectionMode::kNone, {});
  auto l = reg.list();
  ASSERT_EQ(l.size(), 2u);
  EXPECT_EQ(l[0].name, "first");
  EXPECT_EQ(l[1].name, "second");
  EXPECT_EQ(l[0].type, "counter");
  EXPECT_EQ(l[0].state, ExtensionState::kActive);

  EXPECT_EQ(reg.invoke(a, message(kCount)).status, UpcallResult::kRan);
  EXPECT_EQ(static_cast<const CounterState*>(reg.state(a))->messages, 1u);
  EXPECT_TRUE(reg.disable(a));
  EXPECT_FALSE(reg.disable(a));  // already disabled
  EXPECT_EQ(reg.invoke(a, message(kCount)).status, UpcallResult::kNotActive);
  EXPECT_EQ(static_cast<const CounterState*>(reg.state(a))->messages, 1u);
  EXPECT_TRUE(reg.enable(a));
  EXPECT_EQ(reg.invoke(a, message(kCount)).status, UpcallResult::kRan);
  EXPECT_EQ(reg.info(a).invocations, 2u);

  bool fini_ran = false;
  EXPECT_TRUE(reg.remove(a, [&](void* st) { fini_ran = static_cast<CounterState*>(st)->messages == 2; }));
  EXPECT_TRUE(fini_ran);
  EXPECT_EQ(reg.list().size(), 1u);
  // The old handle is stale, even once the slot is reused.
  ExtensionHandle c = reg.register_extension("counter", "third", sizeof(CounterState),
                                             ProtectionMode::kNone, {});
  EXPECT_EQ(c.index, a.index);
  EXPECT_NE(c.generation, a.generation);
  EXPECT_EQ(reg.invoke(a, message(kCount)).status, UpcallResult::kGone);
  EXPECT_FALSE(reg.remove(a));
  EXPECT_THROW(reg.info(a), std::invalid_argument);
  EXPECT_EQ(reg.invoke(c, message(kCount)).status, UpcallResult::kRan);
  EXPECT_EQ(static_cast<const CounterState*>(reg.state(c))->messages, 1u);  // fresh state
  EXPECT_TRUE(reg.remove(b));
  EXPECT_TRUE(reg.remove(c));
  EXPECT_TRUE(reg.list().empty());
}

TEST(ExtensionRegistry, RefusesUnknownTypesFullTablesAndOversizedState) {
  SandboxRegion region = SandboxRegion::create(small_layout());
  ExtensionRegistry reg(region);
  EXPECT_THROW(reg.register_extension("no-such-type", "x", 64, ProtectionMode::kNone, {}),
               std::invalid_argument);
  EXPECT_THROW(reg.register_extension("counter", "big", 1 << 20, ProtectionMode::kNone, {}),
               std::runtime_error);
  for (uint32_t i = 0; i < reg.capacity(); ++i)
    reg.register_extension("counter", "n" + std::to_string(i), 64, ProtectionMode::kNone, {});
  try {
    reg.register_extension("counter", "one-too-many", 64, ProtectionMode::kNone, {});
    FAIL() << "a full table accepted an extension";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("no free extension slot"), std::string::npos) << e.what();
  }
  EXPECT_THROW(register_extension_type("", counter_entry), std::invalid_argument);
  EXPECT_THROW(register_extension_type("counter", [](void*, const ExtensionEvent&) {}),
               std::invalid_argument);
}

// ---- protection -------------------------------------------------------------------------------

// Whether /proc/cpuinfo lists `flag` for the first CPU.
bool cpu_has_flag(const std::string& flag) {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("flags", 0) == 0) return (line + " ").find(" " + flag + " ") != std::string::npos;
  return false;
}

class Protection : public ::testing::TestWithParam<ProtectionMode> {
 protected:
  void SetUp() override {
    for (const auto& s : protection_support())
      if (s.mode == GetParam() && !s.available) {
        // The one skip CI accepts (.ci/run): the CPU lacks the feature. A CPU that has PKU
        // while pkey_alloc fails is a kernel problem, and an ordinary skip (CI fails it).
        if (GetParam() == ProtectionMode::kPkey && !cpu_has_flag("pku"))
          GTEST_SKIP() << "missing CPU feature: no PKU (memory protection keys), so no pkey domain: " << s.reason;
        GTEST_SKIP() << protection_mode_name(GetParam()) << " not available here: " << s.reason;
      }
  }
};

// Runs fn in a child process; returns its wait status and what it wrote to stderr.
std::pair<int, std::string> in_child(const std::function<void()>& fn) {
  int pipefd[2];
  EXPECT_EQ(pipe(pipefd), 0);
  pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    dup2(pipefd[1], 2);
    close(pipefd[0]);
    alarm(10);
    fn();
    _exit(0);
  }
  close(pipefd[1]);
  std::string err;
  char buf[512];
  ssize_t n;
  while ((n = read(pipefd[0], buf, sizeof buf)) > 0) err.append(buf, size_t(n));
  close(pipefd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return {status, err};
}

TEST_P(Protection, ProcessCannotWriteExtensionMemory) {
  SandboxRegion region = SandboxRegion::create(small_layout());
  ExtensionRegistry reg(region);
  ExtensionHandle h = reg.register_extension("counter", "c", sizeof(CounterState), GetParam(),
                                             [](void* s) { static_cast<CounterState*>(s)->messages = 7; });
  auto* st = const_cast<CounterState*>(static_cast<const CounterState*>(reg.state(h)));
  EXPECT_EQ(st->messages, 7u);  // the process may read it
  auto [status, err] = in_child([&] { st->messages = 99; });
  if (GetParam() == ProtectionMode::kNone) {
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "none mode protects nothing";
    EXPECT_EQ(st->messages, 99u);  // shared memory: the child's write is visible
  } else {
    ASSERT_TRUE(WIFSIGNALED(status)) << "the write did not fault; status " << status;
    EXPECT_EQ(WTERMSIG(status), SIGSEGV);
    EXPECT_NE(err.find("process code (not an extension) accessed extension memory"), std::string::npos) << err;
    EXPECT_EQ(st->messages, 7u) << "extension state changed by process code";
  }
  // The extension itself may write its state in every mode.
  ASSERT_EQ(reg.invoke(h, message(kCount)).status, UpcallResult::kRan);
  EXPECT_EQ(st->messages, GetParam() == ProtectionMode::kNone ? 100u : 8u);
  EXPECT_TRUE(reg.remove(h));
}

TEST_P(Protection, ExtensionWriteOutsideItsGrantIsContained) {
  SandboxRegion region = SandboxRegion::create(small_layout());
  ExtensionRegistry reg(region);
  // Process-private memory the extension must not reach.
  void* priv = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(priv, MAP_FAILED);
  *static_cast<uint64_t*>(priv) = 42;
  ExtensionHandle h = reg.register_extension(
      "counter", "c", sizeof(CounterState), GetParam(),
      [&](void* s) { static_cast<CounterState*>(s)->private_target = reinterpret_cast<uint64_t>(priv); });
  reg.domain(h).add_private_range({static_cast<uint8_t*>(priv), 4096});

  UpcallResult r = reg.invoke(h, message(kWritePrivate));
  ASSERT_EQ(r.status, UpcallResult::kRan);
  if (GetParam() == ProtectionMode::kNone) {
    // none mode trusts its extensions: the write lands, nothing faults, nothing is recorded.
    EXPECT_FALSE(r.invoke.faulted);
    EXPECT_EQ(*static_cast<volatile uint64_t*>(priv), 0xbadu) << "none mode is documented to contain nothing";
    EXPECT_EQ(reg.info(h).state, ExtensionState::kActive);
    EXPECT_EQ(reg.info(h).faults, 0u);
    EXPECT_TRUE(reg.remove(h));
    munmap(priv, 4096);
    return;
  }
  EXPECT_TRUE(r.invoke.faulted);
  EXPECT_EQ(r.invoke.fault_signal, SIGSEGV);
  EXPECT_EQ(r.invoke.fault_address, reinterpret_cast<uintptr_t>(priv));
  // Contained: the process goes on, its memory intact and accessible again, the extension
  // marked faulted (and refused until re-enabled), the fault recorded in the region.
  EXPECT_EQ(*static_cast<uint64_t*>(priv), 42u);
  *static_cast<uint64_t*>(priv) = 43;
  ExtensionInfo i = reg.info(h);
  EXPECT_EQ(i.state, ExtensionState::kFaulted);
  EXPECT_EQ(i.faults, 1u);
  EXPECT_EQ(i.last_fault_address, reinterpret_cast<uintptr_t>(priv));
  EXPECT_EQ(reg.invoke(h, message(kCount)).status, UpcallResult::kNotActive);
  EXPECT_TRUE(reg.enable(h));
  r = reg.invoke(h, message(kCount));
  EXPECT_EQ(r.status, UpcallResult::kRan);
  EXPECT_FALSE(r.invoke.faulted);
  // A runaway recursion hits the guard page under the extension's stack: contained too.
  r = reg.invoke(h, message(kRecurse));
  EXPECT_TRUE(r.invoke.faulted);
  EXPECT_TRUE(reg.enable(h));
  // An exception escaping the entry point is caught at the boundary.
  r = reg.invoke(h, message(kThrow));
  EXPECT_TRUE(r.invoke.threw);
  EXPECT_EQ(reg.info(h).state, ExtensionState::kFaulted);
  EXPECT_TRUE(reg.remove(h));
  munmap(priv, 4096);
}

TEST_P(Protection, ExtensionRunsOnItsOwnStackInsideTheRegion) {
  SandboxRegion region = SandboxRegion::create(small_layout());
  ExtensionRegistry reg(region);
  static uintptr_t seen_sp;
  register_extension_type("stack-probe", [](void*, const ExtensionEvent&) {
    int local = 0;
    seen_sp = reinterpret_cast<uintptr_t>(&local);
  });
  ExtensionHandle h = reg.register_extension("stack-probe", "p", 64, GetParam(), {});
  ASSERT_EQ(reg.invoke(h, message(kCount)).status, UpcallResult::kRan);
  const bool in_region = region.contains(reinterpret_cast<void*>(seen_sp));
#if defined(__x86_64__)
  EXPECT_EQ(in_region, GetParam() != ProtectionMode::kNone)
      << "none mode runs on the caller's stack, the others on the extension's";
#endif
  EXPECT_TRUE(reg.remove(h));
}

INSTANTIATE_TEST_SUITE_P(Modes, Protection,
                         ::testing::Values(ProtectionMode::kNone, ProtectionMode::kMprotect,
                                           ProtectionMode::kPkey),
                         [](const auto& p) { return std::string(protection_mode_name(p.param)); });

TEST(ProtectionSupport, ReportsEveryModeAndParses) {
  const auto& s = protection_support();
  ASSERT_EQ(s.size(), 3u);
  for (const auto& m : s)
    if (!m.available) {
      EXPECT_FALSE(m.reason.empty()) << protection_mode_name(m.mode);
    }
  EXPECT_EQ(parse_protection_mode("none"), ProtectionMode::kNone);
  EXPECT_EQ(parse_protection_mode("auto"), best_protection_mode());
  EXPECT_THROW(parse_protection_mode("bogus"), std::invalid_argument);
  for (const auto& m : s)
    if (!m.available) {
      EXPECT_THROW(parse_protection_mode(protection_mode_name(m.mode)), std::runtime_error);
    }
}

// ---- upcall dispatch across processes ---------------------------------------------------------

// A ring of sequence numbers in the region's rings area, written by a producer process.
struct SeqRing {
  std::atomic<uint64_t> head, tail;  // head: consumer (the extension), tail: producer
  uint64_t sum;                      // (extension) sum of consumed values
  uint64_t consumed;                 // (extension)
  std::atomic<uint32_t> stop;        // (producer) servers exit when set
  uint64_t items[1024];
};

// Consumes everything queued. Runs in whichever process is serving.
void ring_entry(void* p, const ExtensionEvent& ev) {
  auto* s = static_cast<CounterState*>(p);
  counter_entry(p, ev);
  (void)s;
  auto* ring = static_cast<SeqRing*>(ev.grant);
  if (ring == nullptr) return;
  uint64_t h = ring->head.load(std::memory_order_relaxed);
  const uint64_t t = ring->tail.load(std::memory_order_acquire);
  for (; h != t; ++h) {
    ring->sum += ring->items[h % 1024];
    ++ring->consumed;
  }
  ring->head.store(h, std::memory_order_release);
}

struct RingTypes {
  RingTypes() { register_extension_type("ring-sum", ring_entry); }
} ring_types_once;

// A serving child: its own registry and dispatcher over the inherited region; upcalls when the
// eventfd fires, until the ring says stop or `max_ms` passes.
pid_t start_server(SandboxRegion& region, ExtensionHandle h, int efd, SeqRing* ring, int max_ms,
                   uint64_t stop_after_consumed = 0, bool timers = false) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  ExtensionRegistry reg(region);
  UpcallDispatcher d(reg);
  d.bind_fd(h, efd, 0, ring);
  if (timers) d.serve_timers_of(h);
  const uint64_t end = monotonic_ns() + uint64_t(max_ms) * 1'000'000;
  while (ring->stop.load() == 0 && monotonic_ns() < end) {
    d.dispatch_once(5);
    if (stop_after_consumed != 0 && static_cast<const volatile uint64_t&>(ring->consumed) >= stop_after_consumed) break;
  }
  _exit(0);
}

void produce(SeqRing* ring, int efd, uint64_t from, uint64_t to) {
  for (uint64_t v = from; v < to; ++v) {
    while (ring->tail.load() - ring->head.load() >= 1024) std::this_thread::sleep_for(std::chrono::microseconds(50));
    ring->items[ring->tail.load() % 1024] = v;
    ring->tail.fetch_add(1, std::memory_order_release);
    uint64_t one = 1;
    if (v % 16 == 0) (void)!write(efd, &one, sizeof one);
  }
  uint64_t one = 1;
  (void)!write(efd, &one, sizeof one);
}

bool wait_consumed(SeqRing* ring, uint64_t n, int ms) {
  for (int i = 0; i < ms; ++i) {
    if (static_cast<volatile uint64_t&>(ring->consumed) >= n) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

class Dispatch : public ::testing::Test {
 protected:
  void SetUp() override {
    region_.emplace(SandboxRegion::create(small_layout()));
    reg_.emplace(*region_);
    ring_ = new (region_->rings()) SeqRing{};
    efd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    ASSERT_GE(efd_, 0);
    h_ = reg_->register_extension("ring-sum", "sum", sizeof(CounterState),
                                  best_protection_mode(), {});
  }
  void TearDown() override {
    if (ring_ != nullptr) ring_->stop.store(1);
    for (pid_t p : children_) {
      int st;
      waitpid(p, &st, 0);
    }
    if (efd_ >= 0) close(efd_);
  }
  const CounterState& state() { return *static_cast<const CounterState*>(reg_->state(h_)); }
  void reap() {
    for (pid_t p : children_) {
      int st = 0;
      ASSERT_EQ(waitpid(p, &st, 0), p);
      EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "server exit status " << st;
    }
    children_.clear();
  }

  std::optional<SandboxRegion> region_;
  std::optional<ExtensionRegistry> reg_;
  SeqRing* ring_ = nullptr;
  int efd_ = -1;
  ExtensionHandle h_;
  std::vector<pid_t> children_;
};

TEST_F(Dispatch, UpcallsRunInTheWaitingProcessNotTheRegistrant) {
  children_.push_back(start_server(*region_, h_, efd_, ring_, 5000));
  produce(ring_, efd_, 1, 101);
  ASSERT_TRUE(wait_consumed(ring_, 100, 5000));
  ring_->stop.store(1);
  uint64_t one = 1;
  (void)!write(efd_, &one, sizeof one);
  reap();
  EXPECT_EQ(ring_->sum, 100u * 101 / 2);
  EXPECT_EQ(state().last_pid, uint64_t(0) + uint64_t(state().per_pid_pid[0]));
  EXPECT_NE(state().per_pid_pid[0], uint64_t(getpid())) << "the registrant never served an upcall";
  EXPECT_EQ(reg_->info(h_).servers, 1u);
  EXPECT_EQ(reg_->info(h_).protection, best_protection_mode());
}

TEST_F(Dispatch, ServingMovesFromOneProcessToAnotherWithTheStateIntact) {
  // The first server leaves after 200 items; a second one, started later, serves the rest.
  children_.push_back(start_server(*region_, h_, efd_, ring_, 5000, 200));
  produce(ring_, efd_, 1, 201);
  ASSERT_TRUE(wait_consumed(ring_, 200, 5000));
  reap();
  children_.push_back(start_server(*region_, h_, efd_, ring_, 5000));
  produce(ring_, efd_, 201, 401);
  ASSERT_TRUE(wait_consumed(ring_, 400, 5000));
  ring_->stop.store(1);
  uint64_t one = 1;
  (void)!write(efd_, &one, sizeof one);
  reap();
  EXPECT_EQ(ring_->consumed, 400u);
  EXPECT_EQ(ring_->sum, 400u * 401 / 2);
  EXPECT_EQ(reg_->info(h_).servers, 2u);
  EXPECT_NE(state().per_pid_pid[0], 0u);
  EXPECT_NE(state().per_pid_pid[1], 0u);
  EXPECT_NE(state().per_pid_pid[0], state().per_pid_pid[1]);
}

TEST_F(Dispatch, TwoProcessesServeConcurrentlyOneInvocationAtATime) {
  children_.push_back(start_server(*region_, h_, efd_, ring_, 10000));
  children_.push_back(start_server(*region_, h_, efd_, ring_, 10000));
  produce(ring_, efd_, 1, 20001);
  ASSERT_TRUE(wait_consumed(ring_, 20000, 10000));
  ring_->stop.store(1);
  uint64_t one = 1;
  (void)!write(efd_, &one, sizeof one);
  reap();
  EXPECT_EQ(ring_->consumed, 20000u);
  EXPECT_EQ(ring_->sum, 20000ull * 20001 / 2);
  EXPECT_EQ(state().overlaps, 0u) << "two processes ran the extension at the same time";
  EXPECT_EQ(state().inside, 0u);
}

TEST_F(Dispatch, ATimerFiresOncePerPeriodHoweverManyProcessesServeIt) {
  {
    UpcallDispatcher d(*reg_);
    d.bind_timer(h_, 10'000'000);  // 10 ms, stored in the region
  }
  children_.push_back(start_server(*region_, h_, efd_, ring_, 400, 0, true));
  children_.push_back(start_server(*region_, h_, efd_, ring_, 400, 0, true));
  reap();
  // ~40 deadlines in 400 ms; two servers firing each deadline would give ~80.
  EXPECT_GE(state().timers, 10u);
  EXPECT_LE(state().timers, 42u);
  EXPECT_EQ(state().overlaps, 0u);
}

TEST_F(Dispatch, EventsForADisabledExtensionAreRefusedNotRun) {
  ASSERT_TRUE(reg_->disable(h_));
  UpcallDispatcher d(*reg_);
  d.bind_fd(h_, efd_, 0, ring_);
  produce(ring_, efd_, 1, 11);
  d.dispatch_once(10);
  EXPECT_EQ(d.stats().upcalls, 0u);
  EXPECT_GE(d.stats().not_active, 1u);
  EXPECT_EQ(ring_->consumed, 0u);
  ASSERT_TRUE(reg_->enable(h_));
  d.dispatch_once(10);
  EXPECT_EQ(d.stats().upcalls, 1u);
  EXPECT_EQ(ring_->consumed, 10u);
}

}  // namespace
}  // namespace ulsnet
