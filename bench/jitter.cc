// //bench:jitter: experiment E3 on the host's stock kernel. How timely is a periodic service
// when 0, 1, 2, 4 CPU-bound competitor processes share its CPU, when it is
//   thread   the paper's user-thread form: a thread of this process sleeping to each deadline
//            (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME), SCHED_OTHER), or
//   sandbox  the project's stock-kernel sandbox: an extension in the sandbox region, registered
//            in an ExtensionRegistry and invoked by a timer upcall (UpcallDispatcher::bind_timer)
//            that a forked server process makes from its dispatch loop.
// Everything (this process, the server, the competitors) runs on one CPU (--cpu). Each invocation
// reads CLOCK_MONOTONIC first; delay = ran - due. The extension records its own run time and the
// timer deadline word in its state in the region (the deadline it served is the word's value
// before the dispatcher advanced it, i.e. what the previous invocation found there).
//
// On a stock kernel both services need the scheduler: the upcall runs in a server process the
// kernel wakes at the deadline. Running it in whatever process is current (no wake-up) needs the
// ULS kernel: //bench:vm_jitter. The JSON says so. Statistics: bench/jitter_stats.h.
//
// Every measurement (repetition x competitors x service) keeps its raw due and run times in the
// file's "measurements", and the file is written after each one ("complete": false until the
// last): the same --out resumes it, re-summarizing the kept raw series (bench/resume.h; --fresh
// starts over).
// See bench/README.md ("E3").
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "bench/environment.h"
#include "bench/jitter_stats.h"
#include "bench/resume.h"
#include "bench/run_lock.h"
#include "sandbox/extension.h"
#include "sandbox/protection.h"
#include "sandbox/region.h"
#include "sandbox/upcall.h"
#include "stack/clock.h"

namespace ulsnet {
namespace {

using jitter::Invocation;

struct Options {
  std::vector<std::string> services = {"thread", "sandbox"};
  std::vector<uint32_t> competitors = {0, 1, 2, 4};
  uint32_t period_us = 1000;
  uint32_t count = 2000;
  uint32_t warmup = 100;
  uint32_t reps = 3;
  int cpu = -1;
  std::string protection = "auto";
  std::string out;
  bool quick = false;
  bool fresh = false;
  std::vector<std::string> argv;
};

// ---- children: competitors and the sandbox's server, killed on every way out -----------------

constexpr int kMaxChildren = 64;
pid_t g_children[kMaxChildren];
volatile sig_atomic_t g_nchildren = 0;

void kill_children_now() {  // async-signal-safe
  const int n = g_nchildren;
  for (int i = 0; i < n; ++i)
    if (g_children[i] > 0) kill(g_children[i], SIGKILL);
  for (int i = 0; i < n; ++i)
    if (g_children[i] > 0)
      while (waitpid(g_children[i], nullptr, 0) < 0 && errno == EINTR) {
      }
  g_nchildren = 0;
}

void on_signal(int sig) {
  kill_children_now();
  signal(sig, SIG_DFL);
  raise(sig);
}

constexpr int kSignals[] = {SIGINT, SIGTERM, SIGHUP};

void install_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  for (int s : kSignals) sigaddset(&sa.sa_mask, s);
  for (int s : kSignals) sigaction(s, &sa, nullptr);
}

sigset_t termination_signals() {
  sigset_t set;
  sigemptyset(&set);
  for (int s : kSignals) sigaddset(&set, s);
  return set;
}

// fork() with the termination signals blocked until the child is on the list (in the parent) or
// its handlers are back to the defaults and it dies with this process (in the child).
pid_t fork_child() {
  const sigset_t block = termination_signals();
  sigset_t old;
  pthread_sigmask(SIG_BLOCK, &block, &old);
  const pid_t parent = getpid();
  const pid_t pid = g_nchildren < kMaxChildren ? fork() : -1;
  if (pid == 0) {
    for (int s : kSignals) signal(s, SIG_DFL);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    g_nchildren = 0;
  } else if (pid > 0) {
    g_children[g_nchildren] = pid;
    g_nchildren = g_nchildren + 1;
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return pid;
}

// SIGKILLs and reaps one child (if `kill_it`), or only reaps it; off the list either way.
// Returns its wait status (-1 if it could not be reaped).
int end_child(pid_t pid, bool kill_it) {
  const sigset_t block = termination_signals();
  sigset_t old;
  pthread_sigmask(SIG_BLOCK, &block, &old);
  if (kill_it) kill(pid, SIGKILL);
  int status = -1;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  for (int i = 0; i < g_nchildren; ++i)
    if (g_children[i] == pid) {
      g_children[i] = g_children[g_nchildren - 1];
      g_nchildren = g_nchildren - 1;
      break;
    }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return status;
}

// Waits up to timeout_ms for the child to exit by itself (a pidfd, else polling every 20 ms);
// then SIGKILLs it. Reaps it. Returns true if it exited by itself.
bool wait_child(pid_t pid, int timeout_ms) {
  const int pfd = int(syscall(SYS_pidfd_open, pid, 0));
  const uint64_t end = monotonic_ns() + uint64_t(timeout_ms) * 1'000'000;
  bool exited = false;
  while (!exited) {
    const uint64_t now = monotonic_ns();
    if (now >= end) break;
    if (pfd >= 0) {
      pollfd p{pfd, POLLIN, 0};
      const int left = int((end - now) / 1'000'000) + 1;
      exited = poll(&p, 1, left) > 0;
    } else {
      siginfo_t si{};
      if (waitid(P_PID, pid_t(pid), &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid) {
        exited = true;
      } else {
        timespec t{0, 20'000'000};
        nanosleep(&t, nullptr);
      }
    }
  }
  if (pfd >= 0) close(pfd);
  end_child(pid, !exited);
  return exited;
}

// ---- competitors ------------------------------------------------------------------------------

// Busy loops on the inherited CPU, SCHED_OTHER, each ending by itself at `deadline_ns`.
std::vector<pid_t> start_competitors(uint32_t n, uint64_t deadline_ns) {
  std::vector<pid_t> pids;
  for (uint32_t i = 0; i < n; ++i) {
    const pid_t p = fork_child();
    if (p == 0) {
      sched_param sp{};
      sched_setscheduler(0, SCHED_OTHER, &sp);
      volatile uint64_t x = 0;
      for (;;) {
        for (int k = 0; k < 200'000; ++k) x = x + 1;
        if (monotonic_ns() > deadline_ns) _exit(0);
      }
    }
    if (p < 0) {
      for (pid_t q : pids) end_child(q, true);
      throw std::runtime_error(std::string("fork (competitor): ") + std::strerror(errno));
    }
    pids.push_back(p);
  }
  return pids;
}

void stop_competitors(std::vector<pid_t>& pids) {
  for (pid_t p : pids) kill(p, SIGKILL);
  for (pid_t p : pids) end_child(p, false);
  pids.clear();
}

// ---- one repetition's result --------------------------------------------------------------------

struct RepResult {
  std::vector<Invocation> series;
  nlohmann::json where;    // where the invocations ran, with counters
  std::vector<double> entry_us;  // sandbox: from the dispatcher's clock read to the extension's
  std::string error;       // empty when the run completed
  double seconds = 0;
};

uint64_t bound_ns(const Options& o) {  // how long one repetition may take
  const uint64_t nominal = uint64_t(o.warmup + o.count) * o.period_us * 1000ull;
  return 3 * nominal + 2'000'000'000ull;
}

// ---- service "thread" -------------------------------------------------------------------------

struct ThreadArgs {
  uint64_t period_ns, n, bound_ns;
  std::vector<Invocation>* out;
  long nvcsw = 0, nivcsw = 0;
};

void* thread_service(void* p) {
  auto* a = static_cast<ThreadArgs*>(p);
  rusage r0{}, r1{};
  getrusage(RUSAGE_THREAD, &r0);
  const uint64_t start = monotonic_ns();
  const uint64_t stop = start + a->bound_ns;
  for (uint64_t i = 0; i < a->n; ++i) {
    const uint64_t due = start + (i + 1) * a->period_ns;
    const timespec t{time_t(due / 1'000'000'000ull), long(due % 1'000'000'000ull)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, nullptr) == EINTR) {
    }
    const uint64_t ran = monotonic_ns();
    a->out->push_back({due, ran});
    if (ran > stop) break;
  }
  getrusage(RUSAGE_THREAD, &r1);
  a->nvcsw = r1.ru_nvcsw - r0.ru_nvcsw;
  a->nivcsw = r1.ru_nivcsw - r0.ru_nivcsw;
  return nullptr;
}

RepResult run_thread(const Options& o) {
  RepResult r;
  const uint64_t n = uint64_t(o.warmup) + o.count;
  r.series.reserve(n);
  ThreadArgs a{uint64_t(o.period_us) * 1000, n, bound_ns(o), &r.series};
  // The service thread takes no termination signal: the main thread's handler cleans up.
  const sigset_t block = termination_signals();
  sigset_t old;
  pthread_sigmask(SIG_BLOCK, &block, &old);
  pthread_t t;
  const int rc = pthread_create(&t, nullptr, thread_service, &a);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (rc != 0) throw std::runtime_error(std::string("pthread_create: ") + std::strerror(rc));
  pthread_join(t, nullptr);
  if (r.series.size() < n)
    r.error = fmt::format("the thread served {} of {} deadlines within {:.1f} s", r.series.size(), n,
                          double(bound_ns(o)) / 1e9);
  r.where = {{"in_current_process", 0},
             {"in_woken_server", 0},
             {"in_woken_thread", r.series.size()},
             {"voluntary_switches", a.nvcsw},
             {"involuntary_switches", a.nivcsw},
             {"note", "the benchmark's own thread, woken by the kernel at each deadline (a scheduling decision "
                      "and a context switch per invocation)"}};
  return r;
}

// ---- service "sandbox" ------------------------------------------------------------------------

struct TickSample {
  uint64_t deadline_after;  // the timer's deadline word when the extension ran (the next deadline)
  uint64_t ran_ns;          // CLOCK_MONOTONIC, the extension's first act
  uint64_t dispatch_ns;     // the dispatcher's clock read just before the upcall (ev.now_ns)
};

// The extension's state, in its slot in the region.
struct TickState {
  const std::atomic<uint64_t>* deadline;  // the record's next_timer_ns (region header, read-only)
  uint64_t cap, n;
  uint64_t benchmark_pid;
  uint64_t in_benchmark_process, in_other_process;
  uint64_t other_events;
  // followed by cap TickSamples
};
TickSample* samples_of(TickState* s) { return reinterpret_cast<TickSample*>(s + 1); }
const TickSample* samples_of(const TickState* s) { return reinterpret_cast<const TickSample*>(s + 1); }

void tick_entry(void* p, const ExtensionEvent& ev) {
  const uint64_t ran = monotonic_ns();
  auto* s = static_cast<TickState*>(p);
  if (ev.kind != ExtensionEvent::kTimer) {
    ++s->other_events;
    return;
  }
  if (s->n < s->cap) {
    samples_of(s)[s->n] = {s->deadline->load(std::memory_order_acquire), ran, ev.now_ns};
    ++s->n;
  }
  if (uint64_t(getpid()) == s->benchmark_pid)
    ++s->in_benchmark_process;
  else
    ++s->in_other_process;
}

constexpr const char* kTickType = "jitter-tick";

// What the server process reports back (shared anonymous memory).
struct ServerReport {
  std::atomic<uint32_t> started, finished;
  uint64_t first_deadline;
  DispatcherStats stats;
  long nvcsw, nivcsw;
  char error[256];
};

RegionLayout layout_for(uint64_t samples) {
  RegionLayout l;
  l.ring_bytes = 4096;
  l.pool_bytes = 4096;
  l.extension_slots = 1;
  const uint64_t state = sizeof(TickState) + samples * sizeof(TickSample);
  l.extension_slot_bytes = (4096 + 64 * 1024 + state + 4095) / 4096 * 4096;
  return l;
}

RepResult run_sandbox(const Options& o, ProtectionMode mode, std::string& mode_ran) {
  RepResult r;
  const uint64_t n = uint64_t(o.warmup) + o.count, period = uint64_t(o.period_us) * 1000;
  SandboxRegion region = SandboxRegion::create(layout_for(n));
  ExtensionRegistry reg(region);
  const ExtensionHandle h = reg.register_extension(
      kTickType, "jitter", sizeof(TickState) + n * sizeof(TickSample), mode, [&](void* st) {
        auto* s = static_cast<TickState*>(st);
        s->cap = n;
        s->benchmark_pid = uint64_t(getpid());
      });
  // The deadline word's address is known once the slot is: an explicit write grant, before any
  // server runs.
  ProtectionDomain& dom = reg.domain(h);
  auto* state = static_cast<const TickState*>(reg.state(h));
  dom.with_slot_writable([&] { const_cast<TickState*>(state)->deadline = &reg.record(h.index)->next_timer_ns; });
  mode_ran = protection_mode_name(dom.mode());

  void* shm = mmap(nullptr, sizeof(ServerReport), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (shm == MAP_FAILED) throw std::runtime_error(std::string("mmap: ") + std::strerror(errno));
  auto* rep = new (shm) ServerReport{};
  const uint64_t t0 = monotonic_ns();
  const uint64_t bound = bound_ns(o);
  const pid_t server = fork_child();
  if (server == 0) {
    // The server: this process serves the extension's timer until it has run n times.
    try {
      UpcallDispatcher d(reg);
      d.bind_timer(h, period);
      rep->first_deadline = reg.record(h.index)->next_timer_ns.load();
      rep->started.store(1);
      rusage r0{}, r1{};
      getrusage(RUSAGE_SELF, &r0);
      const uint64_t stop = monotonic_ns() + bound;
      // The extension counts in the shared state; read it afresh every time.
      auto served = [&] { return *reinterpret_cast<const volatile uint64_t*>(&state->n); };
      while (served() < n && monotonic_ns() < stop) d.dispatch_once(50);
      d.bind_timer(h, 0);
      getrusage(RUSAGE_SELF, &r1);
      rep->stats = d.stats();
      rep->nvcsw = r1.ru_nvcsw - r0.ru_nvcsw;
      rep->nivcsw = r1.ru_nivcsw - r0.ru_nivcsw;
    } catch (const std::exception& e) {
      std::snprintf(rep->error, sizeof rep->error, "%s", e.what());
    }
    rep->finished.store(1);
    _exit(0);
  }
  if (server < 0) {
    munmap(shm, sizeof(ServerReport));
    throw std::runtime_error(std::string("fork (server): ") + std::strerror(errno));
  }
  const bool exited = wait_child(server, int(bound / 1'000'000) + 2000);
  r.seconds = double(monotonic_ns() - t0) / 1e9;

  const uint64_t got = std::min<uint64_t>(state->n, n);
  if (rep->started.load() && got > 0) {
    uint64_t due = rep->first_deadline;
    for (uint64_t i = 0; i < got; ++i) {
      const TickSample& s = samples_of(state)[i];
      r.series.push_back({due, s.ran_ns});
      r.entry_us.push_back((double(s.ran_ns) - double(s.dispatch_ns)) / 1e3);
      due = s.deadline_after;
    }
  }
  if (!exited)
    r.error = "the server did not finish in time (killed)";
  else if (rep->error[0])
    r.error = std::string("server: ") + rep->error;
  else if (got < n)
    r.error = fmt::format("the extension ran {} of {} times within {:.1f} s (state {})", got, n,
                          double(bound) / 1e9, extension_state_name(reg.info(h).state));
  const DispatcherStats& st = rep->stats;
  r.where = {{"in_current_process", 0},
             {"in_woken_server", state->in_other_process},
             {"in_benchmark_process", state->in_benchmark_process},
             {"waits", st.waits},
             {"wakeups", st.wakeups},
             {"upcalls", st.upcalls},
             {"timer_upcalls", st.timer_upcalls},
             {"busy", st.busy},
             {"not_active", st.not_active},
             {"faults", st.faults},
             {"server_voluntary_switches", rep->nvcsw},
             {"server_involuntary_switches", rep->nivcsw},
             {"note",
              "stock kernel: every upcall ran in the server process, which the kernel woke at the deadline "
              "(its epoll_wait timed out: 'waits' counts those sleeps; 'wakeups' counts only fd events, none "
              "here). An upcall in whatever process is current, with no wake-up, needs the ULS kernel: "
              "//bench:vm_jitter"}};
  munmap(shm, sizeof(ServerReport));
  reg.remove(h);
  return r;
}

// ---- the experiment ---------------------------------------------------------------------------

nlohmann::json dist_json(const jitter::Distribution& d) {
  return {{"mean", d.mean}, {"stddev", d.stddev}, {"p50", d.p50}, {"p99", d.p99}, {"max", d.max}};
}

nlohmann::json ci_json(const jitter::ConfidenceInterval& c) {
  return {{"mean", c.mean}, {"lo", c.lo}, {"hi", c.hi}, {"n", c.n}, {"defined", c.defined}};
}

void add_counters(nlohmann::json& sum, const nlohmann::json& w) {
  for (auto it = w.begin(); it != w.end(); ++it)
    if (it.value().is_number_integer())
      sum[it.key()] = sum.value(it.key(), int64_t{0}) + it.value().get<int64_t>();
    else
      sum[it.key()] = it.value();
}

std::string path_of(const std::string& service, int cpu, const std::string& mode) {
  if (service == "thread")
    return fmt::format("user thread of the benchmark process: clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME) to "
                       "each deadline, SCHED_OTHER, on cpu {}",
                       cpu);
  return fmt::format("extension in the sandbox region (protection {}), timer upcall every period "
                     "(UpcallDispatcher::bind_timer) made by a forked server process in dispatch_once "
                     "(epoll_wait until the deadline, in whole milliseconds rounded up), SCHED_OTHER, on cpu {}; "
                     "stock kernel: a woken server",
                     mode, cpu);
}

// One repetition of a row, as "runs" records it.
nlohmann::json repetition_json(const std::string& service, size_t i, const jitter::SeriesSummary& s,
                               const RepResult& r) {
  nlohmann::json j = {{"rep", i + 1},
                      {"samples", s.samples},
                      {"expected", s.expected},
                      {"missed", s.missed},
                      {"early", s.early},
                      {"warmup_discarded", s.warmup_discarded},
                      {"delay_us", dist_json(s.delay)},
                      {"interval_us", {{"mean", s.interval.mean}, {"stddev", s.interval.stddev}}},
                      {"where", r.where}};
  if (service == "sandbox") j["seconds"] = r.seconds;
  if (!r.error.empty()) j["error"] = r.error;
  return j;
}

// One measurement as the file keeps it: its raw series (warm-up included) and what the summary
// cannot be rebuilt from.
nlohmann::json measurement_json(const std::string& point, uint32_t rep, const std::string& service, uint32_t hogs,
                                const std::string& mode, const RepResult& r) {
  std::vector<uint64_t> due, ran;
  for (const Invocation& x : r.series) {
    due.push_back(x.due_ns);
    ran.push_back(x.ran_ns);
  }
  nlohmann::json m = {{"point", point}, {"rep", rep},      {"service", service},     {"hogs", hogs},
                      {"protection", mode}, {"where", r.where}, {"entry_us", r.entry_us}, {"seconds", r.seconds},
                      {"due_ns", due},      {"ran_ns", ran}};
  if (!r.error.empty()) m["error"] = r.error;
  return m;
}

// The measurement back from the file (a kept one); throws on a malformed entry.
RepResult measurement_from_json(const nlohmann::json& m, std::string& mode) {
  RepResult r;
  const auto due = m.at("due_ns").get<std::vector<uint64_t>>(), ran = m.at("ran_ns").get<std::vector<uint64_t>>();
  if (due.size() != ran.size()) throw std::runtime_error("due_ns and ran_ns differ in length");
  for (size_t i = 0; i < due.size(); ++i) r.series.push_back({due[i], ran[i]});
  r.where = m.at("where");
  r.entry_us = m.at("entry_us").get<std::vector<double>>();
  r.seconds = m.at("seconds").get<double>();
  mode = m.at("protection").get<std::string>();
  return r;
}

// Pins this process to --cpu and says what the run will take; false (exit 1) if it cannot pin.
bool pin_and_announce(const Options& o) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(o.cpu, &set);
  if (sched_setaffinity(0, sizeof set, &set) != 0) {
    fmt::print(stderr, "jitter: cannot pin to cpu {}: {}\n", o.cpu, std::strerror(errno));
    return false;
  }
  const double nominal =
      double(o.reps) * double(o.competitors.size()) * double(o.services.size()) *
      (double(uint64_t(o.warmup + o.count) * o.period_us) / 1e6 + 0.1);
  fmt::print(stderr, "jitter: services {}, competitors {}, {} x {} us (+{} warm-up), {} reps, cpu {}: about {:.0f} s\n",
             fmt::join(o.services, ","), fmt::join(o.competitors, ","), o.count, o.period_us, o.warmup, o.reps,
             o.cpu, nominal);
  return true;
}

nlohmann::json config_json(const Options& o) {
  return {{"period_us", o.period_us},
          {"count", o.count},
          {"warmup", o.warmup},
          {"reps", o.reps},
          {"competitors", o.competitors},
          {"services", o.services},
          {"cpu", o.cpu},
          {"protection_asked", o.protection},
          {"quick", o.quick},
          {"jitter_definition", "standard deviation of the invocation delay (run time minus due time)"}};
}

// A row of the result: one service under one number of competitors.
struct Key {
  std::string service;
  uint32_t hogs;
  bool operator<(const Key& k) const { return std::tie(service, hogs) < std::tie(k.service, k.hogs); }
};

// What a row's repetitions collected (their raw series dropped once summarised).
struct Collected {
  std::vector<jitter::SeriesSummary> reps;
  std::vector<RepResult> raw;
  std::string mode = "n/a";
};

// One row's summary over its repetitions, as "runs" records it.
nlohmann::json row_json(const Options& o, const std::string& service, uint32_t hogs, const Collected& c) {
  std::vector<double> delays, intervals, p99, sd, p50, entry;
  size_t samples = 0, warm = 0;
  uint64_t missed = 0;
  nlohmann::json reps = nlohmann::json::array(), where = nlohmann::json::object();
  for (size_t i = 0; i < c.reps.size(); ++i) {
    const auto& s = c.reps[i];
    const RepResult& r = c.raw[i];
    delays.insert(delays.end(), s.delay_us.begin(), s.delay_us.end());
    intervals.insert(intervals.end(), s.interval_us.begin(), s.interval_us.end());
    entry.insert(entry.end(), r.entry_us.begin(), r.entry_us.end());
    p99.push_back(s.delay.p99);
    sd.push_back(s.delay.stddev);
    p50.push_back(s.delay.p50);
    samples += s.samples;
    warm += s.warmup_discarded;
    missed += s.missed;
    add_counters(where, r.where);
    reps.push_back(repetition_json(service, i, s, r));
  }
  const jitter::Distribution d = jitter::describe(delays), iv = jitter::describe(intervals);
  nlohmann::json run = {
      {"path", path_of(service, o.cpu, c.mode)},
      {"service", service},
      {"hogs", hogs},
      {"protection", c.mode},
      {"where", where},
      {"samples", samples},
      {"expected", uint64_t(o.count) * o.reps},
      {"missed", missed},
      {"warmup_discarded", warm},
      {"delay_us", dist_json(d)},
      {"interval_us", {{"mean", iv.mean}, {"stddev", iv.stddev}, {"period", o.period_us}}},
      {"repetitions", reps},
      {"ci95",
       {{"delay_p99_us", ci_json(jitter::ci95(p99))},
        {"delay_stddev_us", ci_json(jitter::ci95(sd))},
        {"delay_p50_us", ci_json(jitter::ci95(p50))}}}};
  if (service == "sandbox") {
    const jitter::Distribution e = jitter::describe(entry);
    run["upcall_entry_us"] = {{"mean", e.mean}, {"p99", e.p99}, {"max", e.max},
                              {"definition", "extension's clock read minus the dispatcher's just before "
                                             "the upcall: the cost of entering the sandbox"}};
  }
  return run;
}

// The table on stdout.
void print_table(const Options& o, const nlohmann::json& doc, const std::string& out) {
  fmt::print("jitter on the host's stock kernel, cpu {}, period {} us, {} invocations x {} reps per row "
             "(means over repetitions, [95% CI])\n",
             o.cpu, o.period_us, o.count, o.reps);
  fmt::print("{:<8} {:<9} {:>5} {:>8} {:>7}  {:<24} {:<24} {:<24}\n", "service", "protect", "hogs", "samples",
             "missed", "p50 us", "p99 us", "jitter (sd) us");
  auto cell = [](const nlohmann::json& c) {
    return c["defined"].get<bool>()
               ? fmt::format("{:.1f} [{:.1f}, {:.1f}]", c["mean"].get<double>(), c["lo"].get<double>(),
                             c["hi"].get<double>())
               : fmt::format("{:.1f}", c["mean"].get<double>());
  };
  for (const auto& r : doc["runs"])
    fmt::print("{:<8} {:<9} {:>5} {:>8} {:>7}  {:<24} {:<24} {:<24}\n", r["service"].get<std::string>(),
               r["protection"].get<std::string>(), r["hogs"].get<uint32_t>(), r["samples"].get<size_t>(),
               r["missed"].get<uint64_t>(), cell(r["ci95"]["delay_p50_us"]), cell(r["ci95"]["delay_p99_us"]),
               cell(r["ci95"]["delay_stddev_us"]));
  fmt::print("on a stock kernel both services are woken by the scheduler; the upcall in the current process "
             "is //bench:vm_jitter's (ULS kernel)\n");
  fmt::print("results: {}\n", out);
}

// One run: every measurement (kept from an earlier file or measured), the file written after
// each, then the rows' summaries.
class JitterRun {
 public:
  JitterRun(const Options& o, ProtectionMode mode, nlohmann::json doc, std::string out_path, resume::Earlier earlier)
      : o_(o), mode_(mode), doc_(std::move(doc)), out_path_(std::move(out_path)), earlier_(std::move(earlier)),
        eta_(double(uint64_t(o.warmup + o.count) * o.period_us) / 1e6 + 0.2) {}

  bool measure_all();
  int finish();

 private:
  void keep(const std::vector<nlohmann::json>& rows, uint32_t rep, const std::string& service, uint32_t hogs,
            Collected& c);
  bool measure(const std::string& point, uint32_t rep, const std::string& service, uint32_t hogs, size_t left,
               Collected& c);

  const Options& o_;
  const ProtectionMode mode_;
  nlohmann::json doc_;
  const std::string out_path_;
  resume::Earlier earlier_;
  resume::Eta eta_;
  std::map<Key, Collected> all_;
  int failures_ = 0;
};

// Repetitions outermost and the services interleaved, so that a drift in the machine's state
// touches every configuration alike. Fresh competitors for every measurement. False (exit 1)
// when the file cannot be written.
bool JitterRun::measure_all() {
  size_t left = size_t(o_.reps) * o_.competitors.size() * o_.services.size();
  for (uint32_t rep = 0; rep < o_.reps; ++rep)
    for (uint32_t hogs : o_.competitors)
      for (const std::string& service : o_.services) {
        const std::string point = fmt::format("{}|{}|{}", rep + 1, service, hogs);
        --left;
        Collected& c = all_[{service, hogs}];
        if (const auto* rows = earlier_.take(point)) {
          keep(*rows, rep, service, hogs, c);
          continue;
        }
        if (!measure(point, rep, service, hogs, left, c)) return false;
      }
  return true;
}

// A measurement the earlier file finished, re-summarised from its raw series.
void JitterRun::keep(const std::vector<nlohmann::json>& rows, uint32_t rep, const std::string& service, uint32_t hogs,
                     Collected& c) {
  std::string mode_kept;
  RepResult r = measurement_from_json(rows[0], mode_kept);
  if (service == "sandbox") c.mode = mode_kept;
  c.reps.push_back(jitter::summarize_series(r.series, uint64_t(o_.period_us) * 1000, o_.warmup, o_.count));
  doc_["measurements"].push_back(rows[0]);
  fmt::print(stderr, "jitter: rep {} {:<7} {} competitors: kept from {}\n", rep + 1, service, hogs, out_path_);
  r.series.clear();
  c.raw.push_back(std::move(r));
}

// One measurement with `hogs` fresh competitors, recorded and written; false if the file cannot be.
bool JitterRun::measure(const std::string& point, uint32_t rep, const std::string& service, uint32_t hogs, size_t left,
                        Collected& c) {
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<pid_t> comp = start_competitors(hogs, monotonic_ns() + bound_ns(o_) + 5'000'000'000ull);
  timespec settle{0, 100'000'000};  // the competitors are running
  nanosleep(&settle, nullptr);
  RepResult r;
  std::string mode_ran = "n/a";
  try {
    r = service == "thread" ? run_thread(o_) : run_sandbox(o_, mode_, mode_ran);
  } catch (const std::exception& e) {
    r.error = e.what();
  }
  stop_competitors(comp);
  if (service == "sandbox") c.mode = mode_ran;
  c.reps.push_back(jitter::summarize_series(r.series, uint64_t(o_.period_us) * 1000, o_.warmup, o_.count));
  const auto& s = c.reps.back();
  if (r.error.empty() && s.early)
    r.error = fmt::format("{} invocations ran before their due time: the due times are wrong", s.early);
  eta_.measured(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  fmt::print(stderr, "jitter: rep {} {:<7} {} competitors: {} samples, missed {}, delay p50 {:.1f} p99 {:.1f} sd {:.1f} us{}{}\n",
             rep + 1, service, hogs, s.samples, s.missed, s.delay.p50, s.delay.p99, s.delay.stddev,
             r.error.empty() ? "" : " -- " + r.error, eta_.left(left));
  if (!r.error.empty()) ++failures_;
  doc_["measurements"].push_back(measurement_json(point, rep + 1, service, hogs, mode_ran, r));
  try {
    write_result(doc_, out_path_, "jitter");
  } catch (const std::exception& e) {
    fmt::print(stderr, "jitter: writing the result: {}\n", e.what());
    return false;
  }
  r.series.clear();
  r.series.shrink_to_fit();
  c.raw.push_back(std::move(r));
  return true;
}

// The rows' summaries, the file written whole, the table. Returns the exit status.
int JitterRun::finish() {
  doc_["runs"] = nlohmann::json::array();
  for (const std::string& service : o_.services)
    for (uint32_t hogs : o_.competitors) doc_["runs"].push_back(row_json(o_, service, hogs, all_[{service, hogs}]));
  doc_["run_seconds"] = seconds_since_start();
  doc_["complete"] = failures_ == 0;
  doc_["points_reused"] = earlier_.reused;
  std::string out;
  try {
    out = write_result(doc_, out_path_, "jitter");
  } catch (const std::exception& e) {
    fmt::print(stderr, "jitter: writing the result: {}\n", e.what());
    return 1;
  }
  print_table(o_, doc_, out);
  if (failures_) fmt::print(stderr, "jitter: {} measurement(s) incomplete (see 'error' in the repetitions)\n", failures_);
  return failures_ ? 1 : 0;
}

int run(const Options& o, ProtectionMode mode) {
  if (!pin_and_announce(o)) return 1;
  nlohmann::json doc;
  doc["experiment"] = "jitter";
  doc["schema"] = "ulsnet.jitter.v1";
  doc["config"] = config_json(o);
  const std::string out_path = result_path(o.out, "jitter");
  resume::Earlier earlier;
  try {
    earlier = resume::load(o.out.empty() ? "" : out_path, o.fresh, "jitter", doc["config"], "measurements");
  } catch (const resume::Refused& e) {
    fmt::print(stderr, "jitter: {}\n", e.what());
    return 2;
  }
  doc["config"]["argv"] = o.argv;
  doc["environment"] = host_environment("host");
  doc["measurements"] = nlohmann::json::array();
  doc["complete"] = false;
  JitterRun run(o, mode, std::move(doc), out_path, std::move(earlier));
  if (!run.measure_all()) return 1;
  return run.finish();
}

}  // namespace
}  // namespace ulsnet

int main(int argc, char** argv) {
  using namespace ulsnet;
  Options o;
  CLI::App app{"E3 on the host: a periodic service (user thread or sandbox timer upcall) under CPU competition"};
  app.add_option("--services", o.services, "thread and/or sandbox (default thread,sandbox)")
      ->delimiter(',')
      ->check(CLI::IsMember({"thread", "sandbox"}));
  app.add_option("--competitors", o.competitors, "CPU-bound competitor processes on the service's CPU, a list "
                                                 "(default 0,1,2,4)")
      ->delimiter(',')
      ->check(CLI::Range(0u, 16u));
  app.add_option("--period-us", o.period_us, "service period in microseconds (default 1000)")
      ->check(CLI::Range(100u, 1'000'000u));
  app.add_option("--count", o.count, "invocations measured per repetition (default 2000)")
      ->check(CLI::Range(2u, 100'000u));
  app.add_option("--warmup", o.warmup, "invocations discarded at the start of each repetition (default 100)")
      ->check(CLI::Range(0u, 100'000u));
  app.add_option("--reps", o.reps, "repetitions (default 3)")->check(CLI::Range(1u, 100u));
  app.add_option("--cpu", o.cpu, "the one CPU everything runs on (default 1 with >= 2 CPUs, else 0)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--protection", o.protection, "the extension's protection: auto (the best here), pkey, mprotect, none")
      ->check(CLI::IsMember({"auto", "pkey", "mprotect", "none"}));
  app.add_option("--out", o.out, "JSON output (default results/jitter-<time>.json, relative to where bazel run started)");
  app.add_flag("--quick", o.quick, "count 300, reps 2, competitors 0,2 (unless given): under ~15 s");
  app.add_flag("--fresh", o.fresh, "--out names an existing file: start over instead of resuming it");
  o.argv.assign(argv, argv + argc);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    fmt::print(stderr, "jitter: {}\n", e.what());
    return 2;
  }
  if (o.quick) {
    if (!app.count("--count")) o.count = 300;
    if (!app.count("--reps")) o.reps = 2;
    if (!app.count("--competitors")) o.competitors = {0, 2};
  }
  // Duplicates would only repeat a row.
  auto dedupe = [](auto& v) {
    for (size_t i = 0; i < v.size(); ++i)
      v.erase(std::remove(v.begin() + long(i) + 1, v.end(), v[i]), v.end());
  };
  dedupe(o.services);
  dedupe(o.competitors);
  if (o.services.empty() || o.competitors.empty()) {
    fmt::print(stderr, "jitter: --services and --competitors need at least one value\n");
    return 2;
  }
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  sched_getaffinity(0, sizeof allowed, &allowed);
  if (o.cpu < 0) o.cpu = sysconf(_SC_NPROCESSORS_ONLN) >= 2 ? 1 : 0;
  if (o.cpu >= CPU_SETSIZE || !CPU_ISSET(o.cpu, &allowed)) {
    std::string list;
    for (int c = 0; c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &allowed)) list += (list.empty() ? "" : ",") + std::to_string(c);
    fmt::print(stderr, "jitter: --cpu {} is not one this process may run on (allowed: {})\n", o.cpu, list);
    return 2;
  }
  ProtectionMode mode = ProtectionMode::kNone;
  if (std::find(o.services.begin(), o.services.end(), "sandbox") != o.services.end()) {
    try {
      mode = parse_protection_mode(o.protection);
    } catch (const std::exception& e) {
      fmt::print(stderr, "jitter: --protection: {}\n", e.what());
      return 2;
    }
    register_extension_type(kTickType, tick_entry);
  }
  const std::optional<RunLock> lock = RunLock::take_or_explain("jitter", argc, argv);
  if (!lock) return 3;
  install_signal_handlers();
  int rc;
  try {
    rc = run(o, mode);
  } catch (const std::exception& e) {
    fmt::print(stderr, "jitter: {}\n", e.what());
    rc = 1;
  }
  kill_children_now();
  return rc;
}
