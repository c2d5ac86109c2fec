// The namespace hosts' trials, points and searches of one job: see bench/throughput_runner.h.
#include "bench/throughput_runner.h"

#include <sys/prctl.h>
#include <sys/wait.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <vector>

#include <fmt/core.h>

#include "bench/accounting.h"
#include "bench/search.h"
#include "bench/throughput_common.h"
#include "bench/throughput_point.h"
#include "bench/trial.h"

namespace ulsnet {
namespace {

// CPU-bound competitors: `n` processes spinning on `cpu` (-1: anywhere) at SCHED_OTHER for at
// most max_s each, killed (SIGKILL) and reaped when this object goes, and with the harness
// (PR_SET_PDEATHSIG) if it dies first.
class Competitors {
 public:
  Competitors(int n, int cpu, double max_s) {
    const pid_t parent = getpid();
    for (int i = 0; i < n; ++i) {
      const pid_t p = fork();
      if (p < 0) {
        stop();
        throw std::runtime_error(std::string("competitors: fork: ") + std::strerror(errno));
      }
      if (p == 0) spin(parent, cpu, max_s);
      pids_.push_back(p);
    }
  }
  ~Competitors() { stop(); }
  Competitors(const Competitors&) = delete;
  Competitors& operator=(const Competitors&) = delete;

 private:
  // The child's whole life.
  [[noreturn]] static void spin(pid_t parent, int cpu, double max_s) {
    // The harness's handlers (namespace clean-up) are not the child's: Ctrl-C reaches the
    // whole process group.
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) signal(sig, SIG_DFL);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(0);
    if (cpu >= 0) {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(cpu, &set);
      sched_setaffinity(0, sizeof set, &set);
    }
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(max_s);
    volatile uint64_t x = 0;
    while (std::chrono::steady_clock::now() < end)
      for (int k = 0; k < 100000; ++k) x = x + uint64_t(k);
    _exit(0);
  }
  void stop() {
    for (pid_t p : pids_) kill(p, SIGKILL);
    for (pid_t p : pids_)
      while (waitpid(p, nullptr, 0) < 0 && errno == EINTR) {
      }
    pids_.clear();
  }
  std::vector<pid_t> pids_;
};

}  // namespace

const nlohmann::json* Finished::find(const std::map<std::string, nlohmann::json>& m, const std::string& key) {
  auto it = m.find(key);
  if (it == m.end() || it->second.contains("error")) return nullptr;
  ++reused;
  return &it->second;
}

Finished Finished::from(const nlohmann::json& old) {
  Finished f;
  for (const auto& r : old.value("results", nlohmann::json::array()))
    if (r.contains("point")) f.points[r["point"].get<std::string>()] = r;
  for (const auto& c : old.value("capacity", nlohmann::json::array()))
    f.capacity[fmt::format("{}|{}|{}|{}|{}", c.value("method", ""), c.value("variant", ""), c.value("mode", ""),
                           c.value("protection", ""), c.value("payload_bytes", 0u))] = c;
  for (const auto& c : old.value("calibration", nlohmann::json::array()))
    f.calibration[std::to_string(c.value("payload_bytes", 0u))] = c;
  return f;
}

Runner::Runner(const ThroughputOptions& o, bool pin, Finished& finished)
    : o_(o), pin_(pin), finished_(finished), t0_(std::chrono::steady_clock::now()) {
  run_id_ = uint32_t(getpid()) << 8;
}

nlohmann::json Runner::trial(const Job& job, const Topology& topo, uint32_t size, double rate, double duration,
                             const std::string& what) {
  TrialConfig tc;
  tc.method = std::string(job.info->name);
  tc.variant = job.variant;
  tc.mode = job.mode;
  tc.payload = size;
  tc.rate_pps = rate;
  tc.duration_s = duration;
  tc.batch = o_.batch;
  tc.max_packets = o_.max_packets;
  tc.protection = job.protection == "n/a" ? "auto" : job.protection;
  tc.busy_poll = o_.busy_poll;
  tc.need_wakeup = o_.need_wakeup;
  tc.run_id = ++run_id_;
  tc.generator = o_.generator;
  tc.sink = o_.sink;
  if (pin_) tc.generator_cpu = 0, tc.sink_cpu = 0, tc.proxy_cpu = 1;
  if (pin_ && o_.stall_probe) tc.stall_probe_cpus = {0, 1};
  tc.stall_threshold_us = o_.stall_threshold_ms * 1000;
  tc.proxy_fifo_priority = o_.proxy_priority;
  tc.warmup_s = std::min(o_.warmup, 0.1 * duration);
  nlohmann::json s = run_trial(topo, tc);
  ++trials_;
  const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  const std::string at = rate > 0 ? fmt::format("{:.0f} pps", rate) : "max";
  note_peer_death(s, fmt::format("{} {} {}B {}", job.name(), what, size, at));
  if (s.contains("error")) {
    fmt::print(stderr, "[{} {:.0f}s] {} {} {}B {} {:.2f}s: ERROR {}\n", trials_, el, job.name(), what, size, at,
               duration, s["error"].get<std::string>());
  } else {
    const std::string stall = host_stall_reason(s);
    fmt::print(stderr, "[{} {:.0f}s] {} {} {}B {} {:.2f}s: offered {:.0f}, delivered {:.0f} pps, loss {:.3f}%, unaccounted {}{}\n",
               trials_, el, job.name(), what, size, at, duration, s["offered_pps"].get<double>(),
               s["delivered_pps"].get<double>(), 100 * s["loss"].get<double>(), s["unaccounted"].get<int64_t>(),
               stall.empty() ? "" : " [" + stall + "]");
  }
  return s;
}

void Runner::note_peer_death(nlohmann::json& sample, const std::string& during) {
  if (!sample.contains("peer_died") || !peer_died_.is_null()) return;
  nlohmann::json& d = sample["peer_died"];
  d["run_s"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  d["trial"] = trials_;
  d["during"] = during;
  peer_died_ = d;
}

nlohmann::json Runner::point(const Job& job, const Topology& topo, const nlohmann::json& labels, uint32_t size,
                             double rate, const std::string& what, const std::string& key, const nlohmann::json& extra,
                             int competitors) {
  const std::string full_key = job_key(job, size) + "|" + key;
  if (const nlohmann::json* done = finished_.find(finished_.points, full_key)) {
    fmt::print(stderr, "{} {}B {}: finished in the earlier run, kept\n", job.name(), size, key);
    return *done;
  }
  nlohmann::json res{{"method", job.info->name},
                     {"variant", job.variant},
                     {"protection", job.protection},
                     {"mode", forward_mode_name(job.mode)},
                     {"payload_bytes", size},
                     {"load", rate > 0 ? nlohmann::json(rate) : nlohmann::json("max")},
                     {"duration_s", o_.duration},
                     {"point", full_key},
                     {"competitors", competitors},
                     {"samples", nlohmann::json::array()}};
  if (extra.is_object())
    for (const auto& [k, v] : extra.items()) res[k] = v;
  measure_point(res, job, topo, size, rate, what, competitors);
  res = summarize_point(std::move(res), labels);
  if (competitors > 0) {
    // The proxy CPU's busy time now includes the competitors': not a cost of the method.
    nlohmann::json& c = res["cpu"];
    for (const char* k : {"proxy_host_ns_per_forwarded", "proxy_host_ns_per_received", "all_cpus_ns_per_received",
                          "proxy_cpu_split_ns_per_forwarded", "proxy_cpu_split_note"})
      c.erase(k);
    c["note"] = "CPU-time figures of the host's CPUs are left out: they include the competitors' time";
  }
  if (res.contains("error")) ++failures_;
  return res;
}

// The point's repetitions into res["samples"], with its competitors (if any) running meanwhile.
void Runner::measure_point(nlohmann::json& res, const Job& job, const Topology& topo, uint32_t size, double rate,
                           const std::string& what, int competitors) {
  const int cpu = pin_ ? 1 : -1;
  std::unique_ptr<Competitors> hogs;
  if (competitors > 0) {
    hogs = std::make_unique<Competitors>(competitors, cpu, o_.reps * (o_.duration + 10) + 10);
    res["competitors_placement"] =
        fmt::format("{} busy-loop process(es), SCHED_OTHER, {}", competitors, cpu >= 0 ? "on the proxy's CPU 1" : "unpinned");
  }
  for (int rep = 0; rep < o_.reps && peer_died_.is_null(); ++rep) {
    nlohmann::json s = trial(job, topo, size, rate, o_.duration, competitors ? what + fmt::format(" +{} competitors", competitors) : what);
    s["rep"] = rep;
    res["samples"].push_back(s);
  }
}

nlohmann::json Runner::capacity(const Job& job, const Topology& topo, uint32_t size) {
  if (const nlohmann::json* done = finished_.find(finished_.capacity, job_key(job, size))) {
    fmt::print(stderr, "{} {}B search: finished in the earlier run, kept\n", job.name(), size);
    return *done;
  }
  SearchOptions so = ndr_pdr_search_options(o_.pdr_loss, {o_.search_duration, o_.duration}, o_.search_precision,
                                            o_.search_trials, o_.search_max, o_.final_trials);
  so.retry_disturbed = o_.retry_disturbed;
  SearchResult r = throughput_search(so, [&](double rate, double d) {
    TrialOutcome out;
    out.sample = trial(job, topo, size, rate, d, "search");
    if (out.sample.contains("error")) {
      out.error = out.sample["error"];
    } else {
      out.offered_pps = out.sample["offered_pps"];
      out.loss = out.sample["loss"];
      out.tester_loss = tester_loss(out.sample["drops"], out.sample.value("sent", uint64_t(0)));
      out.disturbed = host_stall_reason(out.sample);
    }
    return out;
  });
  nlohmann::json cap = search_result_json(r, so);
  cap.update({{"method", job.info->name},
              {"variant", job.variant},
              {"protection", job.protection},
              {"mode", forward_mode_name(job.mode)},
              {"payload_bytes", size},
              {"search_ceiling_basis",
               "the generator's unpaced rate in this job's own first step (same hosts, sink, CPU placement "
               "and frame size), lowered to what it offered where a paced trial fell short"}});
  if (!r.error.empty()) ++failures_;
  for (const CriterionResult& c : r.criteria)
    fmt::print(stderr, "{} {} {}B: {}\n", job.name(), c.criterion.name, size, describe_bracket(cap[c.criterion.name]));
  return cap;
}

}  // namespace ulsnet
