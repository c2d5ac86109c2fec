// //bench:throughput: every proxy method x mode x payload size on three hosts (network
// namespaces): what each delivers at maximum load, its non-drop and partial-drop rates (NDR/PDR,
// measured brackets: bench/search.h) and its latency, delay variation and CPU per packet at one
// common load; the project's targets evaluated from the run. A table on stdout, progress on
// stderr, one JSON file with the configuration, the environment and every trial whole. See
// bench/README.md. `--hosts=vm` hands over to bench/vm_throughput.cc, `--hosts=ssh` to the
// //bench/ssh:ssh_throughput binary (exec, the other arguments as they are).
#include <sys/prctl.h>
#include <sys/wait.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include "stack/drop_stage.h"
#include "baselines/registry.h"
#include "bench/environment.h"
#include "bench/accounting.h"
#include "bench/search.h"
#include "bench/stats.h"
#include "bench/targets.h"
#include "bench/topology.h"
#include "bench/traffic.h"
#include "bench/trial.h"
#include "bench/vm_throughput.h"
#include "kernel/vm_harness.h"
#include "sandbox/protection.h"

namespace ulsnet {
namespace {

struct Options {
  std::vector<std::string> methods, modes = {"relay", "router"};
  std::vector<uint32_t> sizes = {64, 1472};
  std::vector<std::string> rates = {"max"};
  bool rates_all_sizes = false;
  double duration = 1.0;
  int reps = 3;
  bool quick = false;
  std::string out;
  uint32_t batch = 32;
  std::vector<std::string> protection = {"auto"};
  bool veth_napi = true;
  bool busy_poll = false;
  bool need_wakeup = true;
  std::string generator = "af_xdp";
  std::string sink = "af_xdp";
  bool napi_per_host = true;
  int napi_priority = 50;
  int proxy_priority = 0;
  uint64_t max_packets = 5'000'000;
  bool pin = true;
  bool calibrate = true;
  bool search = true;
  double pdr_loss = 0.005;
  double search_duration = 0.25;
  double search_precision = 0.02;
  int search_trials = 40;
  int final_trials = 1;
  bool stall_probe = true;
  double stall_threshold_ms = 5;
  int retry_disturbed = 1;
  double search_max = 0;
  double common_load = 0;
  bool sweep = true;
  bool search_all_sizes = false;  // with --sizes given: the search at every size
  std::vector<double> loads;  // none unless asked (--quick: 0.5)
  std::vector<int> competitors = {0};
  double warmup = 0.05;
  bool fresh = false;
  std::string hosts = "netns", accel = "auto", vm_protection = "kernel";
  std::string vm_icount = "cost";
  double vm_cost_rate = 2000;
  uint64_t vm_cost_count = 10000;
  int vm_cost_reps = 0;
  int vm_tcg_reps = 0;
  int vm_tcg_search_trials = 0;
  bool vm_search = false;
};

// A number flag's check: finite and within [lo, hi] (CLI11's ranges let NaN through).
CLI::Validator finite_in(double lo, double hi) {
  return CLI::Validator(
      [lo, hi](std::string& s) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(s.c_str(), &end);
        if (end == s.c_str() || *end != '\0') return "'" + s + "' is not a number";
        if (!std::isfinite(v)) return "'" + s + "' is not a finite number";
        if (v < lo || v > hi) return fmt::format("{} is outside [{}, {}]", s, lo, hi);
        return "";
      },
      fmt::format("finite in [{}, {}]", lo, hi));
}

// An offered rate: "max" or a finite number of packets per second above 0.
std::optional<double> parse_rate(const std::string& r) {
  if (r != "max") {
    char* end = nullptr;
    const double v = std::strtod(r.c_str(), &end);
    if (end == r.c_str() || *end != '\0' || !std::isfinite(v) || v <= 0 || v > 1e9) return std::nullopt;
  }
  return parse_offered_rate(r);
}

struct Job {
  const MethodInfo* info;
  std::string variant;
  ForwardMode mode;
  std::string protection = "n/a";  // sandbox only: the protection domain in force
  std::string name() const {
    return fmt::format("{}:{} {}{}", info->name, variant, forward_mode_name(mode),
                       protection == "n/a" ? "" : "/" + protection);
  }
};

// The median, 0 for none (bench/stats.h median).
double median0(std::vector<double> v) { return median(std::move(v)).value_or(0); }

// The value at `path` in j, if it is a number.
std::optional<double> number_at(const nlohmann::json& j, std::initializer_list<const char*> path) {
  const nlohmann::json* x = &j;
  for (const char* k : path) {
    if (!x->is_object() || !x->contains(k)) return std::nullopt;
    x = &(*x)[k];
  }
  return x->is_number() ? std::optional<double>(x->get<double>()) : std::nullopt;
}

// One label for a result from its samples: the one value they all report, or "mixed: a, b".
nlohmann::json common_label(const nlohmann::json& samples, const std::function<nlohmann::json(const nlohmann::json&)>& get) {
  std::set<std::string> seen;
  nlohmann::json first;
  for (const auto& s : samples) {
    nlohmann::json v = get(s);
    if (v.is_null()) continue;
    if (first.is_null()) first = v;
    seen.insert(v.dump());
  }
  if (seen.size() <= 1) return first;
  std::string all;
  for (const auto& v : seen) all += (all.empty() ? "" : ", ") + v;
  return "mixed: " + all;
}

// A point's summary over its repetitions (`samples`, each an accounted trial or an error).
nlohmann::json summarize_point(nlohmann::json res, const nlohmann::json& base_labels) {
  const nlohmann::json& samples = res["samples"];
  std::vector<double> delivered, offered, pdv99, ipdv50, ipdv99, rfc3550, cpu_proc, cpu_host_fwd, cpu_host_rx, cpu_all,
      lat99;
  std::map<std::string, std::vector<double>> split;  // the proxy CPU's time by /proc/stat class, per forwarded
  uint64_t warmup_excluded = 0;
  nlohmann::json host_note;  // why the proxy CPU's figures were left out, if in every repetition
  uint64_t sent = 0, received = 0, forwarded = 0;
  int64_t unaccounted = 0;
  DropLedger drops;
  LogHistogram lat;
  int64_t lat_min = INT64_MAX, lat_max = INT64_MIN, ipdv_max = INT64_MIN;
  std::string error;
  for (const auto& s : samples) {
    if (s.contains("error")) {
      error = s["error"].get<std::string>();
      continue;
    }
    delivered.push_back(s["delivered_pps"]);
    offered.push_back(s["offered_pps"]);
    sent += s["sent"].get<uint64_t>();
    received += s["received"].get<uint64_t>();
    forwarded += s.value("forwarded", uint64_t(0));
    unaccounted += s["unaccounted"].get<int64_t>();
    drops.merge(DropLedger::from_json(s["drops"]));
    if (s["latency_ns"].contains("histogram")) {
      lat.merge(LogHistogram::from_json(s["latency_ns"]["histogram"]));
      lat_min = std::min(lat_min, s["latency_ns"]["min"].get<int64_t>());
      lat_max = std::max(lat_max, s["latency_ns"]["max"].get<int64_t>());
    }
    if (auto v = number_at(s, {"latency_ns", "p99"})) lat99.push_back(*v);
    if (auto v = number_at(s, {"latency_ns", "warmup_excluded"})) warmup_excluded += uint64_t(*v);
    // The split only where the total was measured (bench/trial.cc: a CPU no tick found busy).
    if (!s["cpu"].contains("proxy_host_ns_per_forwarded") && s["cpu"].contains("proxy_host_note"))
      host_note = s["cpu"]["proxy_host_note"];
    if (auto c = number_at(s, {"cpu", "proxy_host_cpu"}), f = number_at(s, {"cpu", "proxy_forwarded"});
        c && f && *f > 0 && s["cpu"].contains("proxy_host_ns_per_forwarded")) {
      const std::string key = "cpu" + std::to_string(int(*c));
      if (s["cpu"].contains("per_cpu") && s["cpu"]["per_cpu"].contains(key)) {
        const nlohmann::json& t = s["cpu"]["per_cpu"][key];
        auto ns = [&](const char* k) { return t.contains(k) && t[k].is_number() ? t[k].get<double>() : 0.0; };
        split["user"].push_back((ns("user_ns") + ns("nice_ns")) / *f);
        split["system"].push_back(ns("system_ns") / *f);
        split["softirq"].push_back(ns("softirq_ns") / *f);
        split["irq"].push_back(ns("irq_ns") / *f);
      }
    }
    if (auto v = number_at(s, {"ipdv_ns", "p50"})) ipdv50.push_back(*v);
    if (auto v = number_at(s, {"ipdv_ns", "p99"})) ipdv99.push_back(*v);
    if (auto v = number_at(s, {"ipdv_ns", "max"})) ipdv_max = std::max(ipdv_max, int64_t(*v));
    if (auto v = number_at(s, {"pdv_ns", "p99"})) pdv99.push_back(*v);
    if (auto v = number_at(s, {"rfc3550_jitter_ns", "final_estimate"})) rfc3550.push_back(*v);
    if (auto v = number_at(s, {"cpu", "proxy_process_ns_per_forwarded"})) cpu_proc.push_back(*v);
    if (auto v = number_at(s, {"cpu", "proxy_host_ns_per_forwarded"})) cpu_host_fwd.push_back(*v);
    if (auto v = number_at(s, {"cpu", "proxy_host_ns_per_received"})) cpu_host_rx.push_back(*v);
    if (auto v = number_at(s, {"cpu", "all_busy_ns_per_received"})) cpu_all.push_back(*v);
  }
  const uint32_t size = res["payload_bytes"];
  const double med = median0(delivered);
  double mean = 0, var = 0;
  for (double d : delivered) mean += d;
  if (!delivered.empty()) mean /= double(delivered.size());
  for (double d : delivered) var += (d - mean) * (d - mean);
  res["repetitions"] = delivered.size();
  res["offered_pps"] = median0(offered);
  res["delivered_pps"] = med;
  res["delivered_pps_min"] = delivered.empty() ? 0 : *std::min_element(delivered.begin(), delivered.end());
  res["delivered_pps_max"] = delivered.empty() ? 0 : *std::max_element(delivered.begin(), delivered.end());
  res["delivered_pps_stddev"] = delivered.size() > 1 ? std::sqrt(var / double(delivered.size() - 1)) : 0.0;
  // 95% confidence intervals of the mean over the repetitions (Student t; none with one).
  if (auto ci = mean_ci95(delivered)) res["delivered_pps_ci95"] = to_json(*ci);
  if (auto ci = mean_ci95(lat99)) res["latency_p99_ns_ci95"] = to_json(*ci);
  if (auto ci = mean_ci95(ipdv99)) res["ipdv_p99_ns_ci95"] = to_json(*ci);
  res["gbps"] = med * size * 8 / 1e9;
  res["sent"] = sent;
  res["received"] = received;
  res["forwarded"] = forwarded;
  res["loss"] = sent ? 1.0 - double(received) / double(sent) : 0.0;
  res["drops"] = drops.to_json();
  res["unaccounted"] = unaccounted;
  // Percentiles of all repetitions together, from their merged histograms (bucket width <= 1/64
  // of the value; each sample has its own exact ones).
  nlohmann::json l = nlohmann::json::object();
  if (lat.count()) {
    l = {{"samples", lat.count()}, {"min", lat_min}, {"p50", lat.percentile(0.5)}, {"p90", lat.percentile(0.9)},
         {"p99", lat.percentile(0.99)}, {"p999", lat.percentile(0.999)}, {"max", lat_max},
         {"percentiles", "nearest rank in the merged histogram of the repetitions: the bucket's upper edge"},
         {"histogram", lat.to_json()}};
  }
  l["warmup_excluded"] = warmup_excluded;
  res["latency_ns"] = l;
  nlohmann::json v = nlohmann::json::object();
  if (!ipdv99.empty()) {
    v = {{"p50", median0(ipdv50)}, {"p99", median0(ipdv99)}, {"max", ipdv_max},
         {"percentiles", "medians of the repetitions' exact values; max of all"},
         {"definition", "RFC 3393/5481 IPDV over consecutive sequence numbers, whole trial"}};
  }
  res["ipdv_ns"] = v;
  res["pdv_ns"] = {{"p99_median_of_repetitions", median0(pdv99)}, {"definition", "RFC 5481: delay - the trial's minimum"}};
  res["rfc3550_jitter_ns"] = {{"final_estimate_median", median0(rfc3550)},
                              {"definition", "RFC 3550 running estimate, its last value: the final few dozen packets"}};
  nlohmann::json cpu = nlohmann::json::object();
  if (!cpu_proc.empty()) cpu["proxy_process_ns_per_forwarded"] = median0(cpu_proc);
  if (!cpu_host_fwd.empty()) cpu["proxy_host_ns_per_forwarded"] = median0(cpu_host_fwd);
  else if (!host_note.is_null()) cpu["proxy_host_note"] = host_note;
  if (!cpu_host_rx.empty()) cpu["proxy_host_ns_per_received"] = median0(cpu_host_rx);
  if (!cpu_all.empty()) cpu["all_cpus_ns_per_received"] = median0(cpu_all);
  if (!split.empty()) {
    nlohmann::json sp = nlohmann::json::object();
    for (const auto& [k, v] : split) sp[k] = median0(v);
    cpu["proxy_cpu_split_ns_per_forwarded"] = sp;
    cpu["proxy_cpu_split_note"] =
        "the proxy host CPU's /proc/stat time by class per forwarded packet, medians of the repetitions; "
        "10 ms ticks; threaded NAPI (the veth receive work on that CPU) counts as system";
  }
  res["cpu"] = cpu;
  // Labels from what ran: the generator and sink objects, the proxy's own report.
  nlohmann::json labels = base_labels;
  labels["generator"] = common_label(samples, [](const nlohmann::json& s) { return s.value("generator", nlohmann::json()); });
  labels["sink"] = common_label(samples, [](const nlohmann::json& s) { return s.value("sink", nlohmann::json()); });
  auto from_proxy = [&](const char* k) {
    return common_label(samples, [k](const nlohmann::json& s) {
      return s.contains("reports") && s["reports"]["proxy"].is_object() && s["reports"]["proxy"].contains(k)
                 ? s["reports"]["proxy"][k]
                 : nlohmann::json();
    });
  };
  for (const char* k : {"device_mode", "protection", "xdp_attached", "upcall_model"})
    if (nlohmann::json x = from_proxy(k); !x.is_null()) labels[k] = x;
  res["labels"] = labels;
  if (!error.empty()) res["error"] = error;
  return res;
}

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
      if (p == 0) {
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
      pids_.push_back(p);
    }
  }
  ~Competitors() { stop(); }
  Competitors(const Competitors&) = delete;
  Competitors& operator=(const Competitors&) = delete;

 private:
  void stop() {
    for (pid_t p : pids_) kill(p, SIGKILL);
    for (pid_t p : pids_)
      while (waitpid(p, nullptr, 0) < 0 && errno == EINTR) {
      }
    pids_.clear();
  }
  std::vector<pid_t> pids_;
};

// What an earlier run with the same --out and the same configuration finished: its points,
// searches and calibrations by key, reused instead of re-run (a point that errored is re-run).
struct Finished {
  std::map<std::string, nlohmann::json> points, capacity, calibration;
  size_t reused = 0;
  const nlohmann::json* find(const std::map<std::string, nlohmann::json>& m, const std::string& key) {
    auto it = m.find(key);
    if (it == m.end() || it->second.contains("error")) return nullptr;
    ++reused;
    return &it->second;
  }
};

std::string job_key(const Job& job, uint32_t size) {
  return fmt::format("{}|{}|{}|{}|{}", job.info->name, job.variant, forward_mode_name(job.mode), job.protection, size);
}

class Runner {
 public:
  Runner(const Options& o, bool pin, Finished& finished)
      : o_(o), pin_(pin), finished_(finished), t0_(std::chrono::steady_clock::now()) {
    run_id_ = uint32_t(getpid()) << 8;
  }

  int failures() const { return failures_; }

  // One trial of `job` on `topo`.
  nlohmann::json trial(const Job& job, const Topology& topo, uint32_t size, double rate, double duration,
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

  // `reps` trials at one rate, summarised; `extra` fields are added to the point (what its load
  // is based on); `competitors` CPU-bound processes share the proxy's CPU meanwhile. `key` names
  // the point for resuming.
  nlohmann::json point(const Job& job, const Topology& topo, const nlohmann::json& labels, uint32_t size, double rate,
                       const std::string& what, const std::string& key, const nlohmann::json& extra = {},
                       int competitors = 0) {
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
    {
      const int cpu = pin_ ? 1 : -1;
      std::unique_ptr<Competitors> hogs;
      if (competitors > 0) {
        hogs = std::make_unique<Competitors>(competitors, cpu, o_.reps * (o_.duration + 10) + 10);
        res["competitors_placement"] =
            fmt::format("{} busy-loop process(es), SCHED_OTHER, {}", competitors, cpu >= 0 ? "on the proxy's CPU 1" : "unpinned");
      }
      for (int rep = 0; rep < o_.reps; ++rep) {
        nlohmann::json s = trial(job, topo, size, rate, o_.duration, competitors ? what + fmt::format(" +{} competitors", competitors) : what);
        s["rep"] = rep;
        res["samples"].push_back(s);
      }
    }
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

  // NDR and PDR of `job` at `size`.
  nlohmann::json capacity(const Job& job, const Topology& topo, uint32_t size) {
    if (const nlohmann::json* done = finished_.find(finished_.capacity, job_key(job, size))) {
      fmt::print(stderr, "{} {}B search: finished in the earlier run, kept\n", job.name(), size);
      return *done;
    }
    SearchOptions so;
    so.criteria = {{"ndr", 0.0}, {"pdr", o_.pdr_loss}};
    so.durations = {o_.search_duration, o_.duration};
    so.precision = o_.search_precision;
    so.max_trials = o_.search_trials;
    so.max_rate_pps = o_.search_max;
    so.final_trials = o_.final_trials;
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

 private:
  const Options& o_;
  bool pin_;
  Finished& finished_;
  std::chrono::steady_clock::time_point t0_;
  uint32_t run_id_ = 0;
  int trials_ = 0, failures_ = 0;
};

// Flags that only one kind of hosts takes; naming one for the other is an error.
const std::vector<std::string> kNetnsOnlyFlags = {
    "--generator", "--sink", "--batch", "--protection", "--busy-poll", "--no-need-wakeup", "--no-veth-napi",
    "--napi-on-sender-cpu", "--napi-priority", "--proxy-priority", "--no-pin", "--no-calibrate", "--max-packets", "--rates-all-sizes", "--no-search",
    "--search-duration", "--common-load", "--no-sweep", "--competitors", "--no-stall-probe", "--stall-threshold-ms",
    "--retry-disturbed"};
const std::vector<std::string> kVmOnlyFlags = {"--accel", "--vm-protection", "--vm-icount", "--vm-cost-rate",
                                               "--vm-cost-count", "--vm-cost-reps", "--vm-search",
                                               "--vm-tcg-reps", "--vm-tcg-search-trials"};

void add_flags(CLI::App& app, Options& o) {
  app.add_option("--methods", o.methods, "methods to run, as name or name:variant (default: all, every variant)")
      ->delimiter(',');
  app.add_option("--modes", o.modes, "relay and/or router")->delimiter(',')->check(CLI::IsMember({"relay", "router"}));
  app.add_option("--sizes", o.sizes, "UDP payload sizes in bytes (24..1472)")
      ->delimiter(',')
      ->check(CLI::Range(kMinPayload, kMaxPayload));
  app.add_option("--rates", o.rates, "max-load points: 'max' and/or fixed packets per second")
      ->delimiter(',')
      ->check(CLI::Validator(
          [](std::string& s) -> std::string {
            return parse_rate(s) ? "" : "'" + s + "' is neither 'max' nor a finite rate above 0 (at most 1e9)";
          },
          "max or pps"));
  app.add_flag("--rates-all-sizes", o.rates_all_sizes, "run fixed rates at every size (default: only at the smallest size)");
  app.add_option("--duration", o.duration, "seconds per trial, and the search's final trial duration")
      ->check(finite_in(0.05, 60));
  app.add_option("--reps", o.reps, "repetitions per point")->check(CLI::Range(1, 100));
  app.add_flag("--quick", o.quick, "the whole experiment in about a minute (fewer methods and points)");
  app.add_option("--out", o.out, "JSON output path (default results/throughput-<time>.json, relative to where bazel run started)");
  app.add_option("--batch", o.batch, "burst size: frames per rx_burst, datagrams per mmsg call")->check(CLI::Range(1, 1024));
  app.add_option("--max-packets", o.max_packets, "upper bound on datagrams per trial")->check(CLI::Range(1000, 100'000'000));
  app.add_option("--protection", o.protection,
                 "sandbox method's protection domains, each run as its own job: auto, pkey, mprotect, none")
      ->delimiter(',')
      ->check(CLI::IsMember({"auto", "pkey", "mprotect", "none"}));
  app.add_option("--generator", o.generator,
                 "af_xdp (default): frames written into an AF_XDP socket's umem, paced; socket: sendmmsg on a UDP "
                 "socket; xdp-live: frames built in the kernel by BPF_PROG_RUN live frames (max load only)")
      ->check(CLI::IsMember({"socket", "af_xdp", "xdp-live"}));
  app.add_option("--sink", o.sink, "af_xdp (default) or socket (a kernel UDP socket with recvmmsg)")
      ->check(CLI::IsMember({"socket", "af_xdp"}));
  app.add_flag("--busy-poll", o.busy_poll, "af_xdp proxy devices: SO_PREFER_BUSY_POLL + SO_BUSY_POLL");
  app.add_flag("!--no-need-wakeup", o.need_wakeup, "af_xdp proxy devices: kick the kernel on every burst");
  app.add_flag("!--no-veth-napi", o.veth_napi, "veth receive through the per-CPU backlog (except for methods that need NAPI)");
  app.add_flag("!--napi-on-sender-cpu", o.napi_per_host, "leave veth NAPI polling as softirq on the sending CPU");
  app.add_option("--napi-priority", o.napi_priority,
                 "the NAPI threads' SCHED_FIFO priority, 0 for SCHED_OTHER (the kernel's default for threaded NAPI)")
      ->check(CLI::Range(0, 99));
  app.add_option("--proxy-priority", o.proxy_priority,
                 "the proxy process's SCHED_FIFO priority (below --napi-priority), 0 for SCHED_OTHER (default: "
                 "every method as an ordinary process; user-thread collapses under real-time scheduling)")
      ->check(CLI::Range(0, 99));
  app.add_flag("!--no-search", o.search, "skip the NDR/PDR search");
  app.add_option("--pdr-loss", o.pdr_loss, "the partial-drop rate's loss criterion (fraction; NDR is loss 0)")
      ->check(finite_in(0, 0.5));
  app.add_option("--search-duration", o.search_duration, "seconds per narrowing trial (the final ones last --duration)")
      ->check(finite_in(0.05, 10));
  app.add_option("--search-precision", o.search_precision, "relative width of the final brackets")
      ->check(finite_in(0.001, 0.5));
  app.add_option("--search-trials", o.search_trials, "bound on the trials of one search")->check(CLI::Range(4, 500));
  app.add_option("--final-trials", o.final_trials,
                 "trials per load at the final duration (odd): a load passes by their majority")
      ->check(CLI::Range(1, 9))
      ->check(CLI::Validator([](std::string& s) { return std::stoi(s) % 2 ? "" : "must be odd"; }, "odd"));
  app.add_flag("!--no-stall-probe", o.stall_probe,
               "do not measure host stalls on the trial's CPUs (a SCHED_FIFO 99 probe per CPU, pinned runs "
               "only: bench/stall_probe.h)");
  app.add_option("--stall-threshold-ms", o.stall_threshold_ms,
                 "a probe wake-up later than this counts as a host stall")
      ->check(finite_in(0.2, 1000));
  app.add_option("--retry-disturbed", o.retry_disturbed,
                 "a search trial that failed during a host stall is set aside and run again, at most this many "
                 "times in a row (0: stalls are recorded, not acted on)")
      ->check(CLI::Range(0, 5));
  app.add_option("--search-max", o.search_max, "cap on the search ceiling, pps (0: the generator's unpaced rate)")
      ->check(finite_in(0, 1e9));
  app.add_option("--common-load", o.common_load,
                 "pps of the common-load point (0: half the batched kernel-socket relay's PDR when it runs)")
      ->check(finite_in(0, 1e9));
  app.add_option("--loads", o.loads,
                 "the offered-load sweep at the first size, as fractions of each job's own PDR lower bound there "
                 "(e.g. 0.1,0.5,0.9: latency at 10/50/90% of capacity; above 1 reaches into overload; default none, "
                 "--quick 0.5)")
      ->delimiter(',')
      ->check(finite_in(0.01, 10));
  app.add_flag("!--no-sweep", o.sweep, "no offered-load sweep");
  app.add_option("--competitors", o.competitors,
                 "the common-load point again with N CPU-bound competitor processes on the proxy's CPU, a list "
                 "(default 0: none)")
      ->delimiter(',')
      ->check(CLI::Range(0, 16));
  app.add_option("--warmup", o.warmup,
                 "seconds at the start of every trial left out of the delay statistics (at most a tenth of the "
                 "trial; the datagrams are still accounted)")
      ->check(finite_in(0, 10));
  app.add_flag("--fresh", o.fresh, "--out names an existing file: start over instead of resuming it");
  app.add_flag("!--no-pin", o.pin, "do not pin generator+sink to CPU 0 and the proxy to CPU 1");
  app.add_flag("!--no-calibrate", o.calibrate, "skip the two-host calibration (generator straight to sink)");
  app.add_option("--hosts", o.hosts,
                 "netns (default), vm (three QEMU VMs running the patched ULS kernel) or ssh (real hosts over SSH: "
                 "//bench/ssh:ssh_throughput with the other arguments, e.g. --sender H --proxy H --receiver H; its "
                 "flags: --hosts=ssh --help)")
      ->check(CLI::IsMember({"netns", "vm", "ssh"}));
  app.add_option("--accel", o.accel, "--hosts=vm: auto, kvm or tcg")->check(CLI::IsMember({"auto", "kvm", "tcg"}));
  app.add_option("--vm-protection", o.vm_protection, "--hosts=vm: kernel (uls.protect=1, default) or none")
      ->check(CLI::IsMember({"kernel", "none"}));
  app.add_option("--vm-icount", o.vm_icount,
                 "--hosts=vm: QEMU instruction counting for the cost runs (cost, default), for no run (off) or "
                 "for every run (all)")
      ->check(CLI::IsMember({"cost", "off", "all"}));
  app.add_option("--vm-cost-rate", o.vm_cost_rate, "--hosts=vm: the cost runs' paced rate, datagrams/s")
      ->check(finite_in(1, 1e6));
  app.add_option("--vm-cost-count", o.vm_cost_count, "--hosts=vm: datagrams per cost run")
      ->check(CLI::Range(uint64_t(100), uint64_t(10'000'000)));
  app.add_option("--vm-cost-reps", o.vm_cost_reps,
                 "--hosts=vm: cost runs per job (default: --reps; under -icount one is enough: host load cannot "
                 "move an instruction count)")
      ->check(CLI::Range(1, 100));
  app.add_option("--vm-tcg-reps", o.vm_tcg_reps,
                 "--hosts=vm: repetitions per point when the VMs run under TCG (instead of --reps; the accelerator "
                 "is resolved first, as a launch would: a plan for KVM need not fit a time budget under TCG)")
      ->check(CLI::Range(1, 100));
  app.add_option("--vm-tcg-search-trials", o.vm_tcg_search_trials,
                 "--hosts=vm: the bound on one search's launches under TCG (instead of --search-trials)")
      ->check(CLI::Range(2, 500));
  app.add_flag("--vm-search", o.vm_search,
               "--hosts=vm: the NDR/PDR search per job at the first size, one launch of the VMs per trial (one phase "
               "at --duration; there --search-precision defaults to 0.1 and --search-trials to 8); --loads implies it");
}

nlohmann::json environment() {
  nlohmann::json env = host_environment("netns");
  env["checksum_mode"] = "full UDP checksums: tx checksum offload off on every veth";
  return env;
}

// ---- --hosts=ssh: hand-off to //bench/ssh:ssh_throughput (bench/ssh/; its owner keeps this block) ----
// Real hosts over SSH are another binary with its own flags: exec it from this target's runfiles
// with every argument but --hosts. Returns only if there is no --hosts=ssh (or the exec failed).
int hand_over_to_ssh(int argc, char** argv) {
  std::vector<char*> rest = {nullptr};
  bool ssh = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--hosts=ssh" || (a == "--hosts" && i + 1 < argc && std::string(argv[i + 1]) == "ssh")) {
      ssh = true;
      i += a == "--hosts";
      continue;
    }
    rest.push_back(argv[i]);
  }
  if (!ssh) return -1;
  std::string bin;
  try {
    bin = vm::runfile("bench/ssh/ssh_throughput");
  } catch (const std::exception& e) {
    fmt::print(stderr, "throughput: --hosts=ssh: {}\n", e.what());
    return 2;
  }
  // Its agent is among these runfiles too (the root: bin less "<workspace>/bench/ssh/ssh_throughput").
  const auto root = std::filesystem::path(bin).parent_path().parent_path().parent_path().parent_path();
  setenv("RUNFILES_DIR", root.c_str(), 0);
  rest[0] = bin.data();
  rest.push_back(nullptr);
  execv(bin.c_str(), rest.data());
  fmt::print(stderr, "throughput: --hosts=ssh: cannot run {}: {}\n", bin, std::strerror(errno));
  return 2;
}
// ---- end of the --hosts=ssh hand-off ----

int run(int argc, char** argv) {
  if (const int rc = hand_over_to_ssh(argc, argv); rc >= 0) return rc;
  Options o;
  CLI::App app{"ulsnet throughput: proxy methods forwarding a UDP stream between three hosts"};
  add_flags(app, o);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    fmt::print(stderr, "throughput: {}\n", e.what());
    return 2;
  }

  if (o.hosts == "vm") {
    for (const std::string& f : kNetnsOnlyFlags)
      if (app.count(f)) {
        fmt::print(stderr, "throughput: {} does not apply to --hosts=vm\n", f);
        return 2;
      }
    VmThroughputOptions v;
    if (app.count("--sizes")) v.payloads = o.sizes;
    v.methods = o.methods;
    if (app.count("--modes")) v.modes = o.modes;
    if (app.count("--rates")) v.rates = o.rates;
    if (app.count("--duration")) v.duration = o.duration;
    if (app.count("--reps")) v.reps = o.reps;
    v.quick = o.quick;
    v.accel = o.accel;
    v.protection = o.vm_protection;
    v.icount = o.vm_icount;
    v.cost_rate = o.vm_cost_rate;
    v.cost_count = o.vm_cost_count;
    v.cost_reps = o.vm_cost_reps;
    v.tcg_reps = o.vm_tcg_reps;
    v.tcg_search_trials = o.vm_tcg_search_trials;
    v.search = o.vm_search;
    if (app.count("--pdr-loss")) v.pdr_loss = o.pdr_loss;
    if (app.count("--search-precision")) v.search_precision = o.search_precision;
    if (app.count("--search-trials")) v.search_trials = o.search_trials;
    if (app.count("--final-trials")) v.final_trials = o.final_trials;
    if (app.count("--search-max")) v.search_max = o.search_max;
    if (app.count("--loads")) v.loads = o.loads;
    if (app.count("--warmup")) v.warmup = o.warmup;
    v.fresh = o.fresh;
    v.out = o.out;
    v.argv.assign(argv, argv + argc);
    return run_vm_throughput(v);
  }
  for (const std::string& f : kVmOnlyFlags)
    if (app.count(f)) {
      fmt::print(stderr, "throughput: {} applies to --hosts=vm only\n", f);
      return 2;
    }

  if (geteuid() != 0) {
    fmt::print(stderr, "throughput: must run as root (it creates network namespaces and packet sockets)\n");
    return 2;
  }
  for (const char* tool : {"ip", "ethtool"}) {
    // Looked up as run_command() runs them (its search path adds /usr/sbin, which a restricted
    // PATH, e.g. Bazel's test environment, leaves out).
    try {
      run_command(std::string("command -v ") + tool + " >/dev/null");
    } catch (const std::exception&) {
      fmt::print(stderr, "throughput: '{}' not found: run tools/setup.sh\n", tool);
      return 2;
    }
  }
  if (o.quick) {
    if (!app.count("--sizes")) o.sizes = {64, 1472};
    if (!app.count("--rates")) o.rates = {"max"};
    if (!app.count("--duration")) o.duration = 0.4;
    if (!app.count("--reps")) o.reps = 1;
    if (!app.count("--modes")) o.modes = {"relay"};
    if (!app.count("--search-duration")) o.search_duration = 0.15;
    if (!app.count("--search-precision")) o.search_precision = 0.05;
    if (!app.count("--search-trials")) o.search_trials = 20;
    if (!app.count("--loads")) o.loads = {0.5};
    if (!app.count("--methods"))
      o.methods = {"kernel-socket:batched", "raw-socket:af_packet", "user-thread:af_packet", "sandbox:af_xdp",
                   "xdp-redirect:native"};
  }
  if (o.search_duration > o.duration) {
    fmt::print(stderr, "throughput: --search-duration ({}) is longer than the final trials (--duration {})\n",
               o.search_duration, o.duration);
    return 2;
  }
  // NDR/PDR at every size the user names; by default only at the first (the default run's
  // second size has its max-load point).
  o.search_all_sizes = app.count("--sizes") > 0;
  std::vector<std::string> protection_in_force;
  try {
    for (const auto& p : o.protection) {
      std::string m = protection_mode_name(parse_protection_mode(p));
      if (std::find(protection_in_force.begin(), protection_in_force.end(), m) == protection_in_force.end())
        protection_in_force.push_back(m);
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "throughput: --protection: {}\n", e.what());
    return 2;
  }
  std::vector<double> rates;
  for (const auto& r : o.rates) rates.push_back(*parse_rate(r));
  std::vector<ForwardMode> modes;
  for (const auto& m : o.modes) modes.push_back(m == "relay" ? ForwardMode::kRelay : ForwardMode::kRouter);
  // Expand methods into (method, variant, mode) jobs. The ULS kernel's variant only by name,
  // and then refused: it needs --hosts=vm.
  std::vector<MethodVariant> mv;
  try {
    mv = expand_method_specs(o.methods, [](const MethodInfo& m, std::string_view v, bool) {
      return !needs_uls_kernel(m.name, v);
    });
  } catch (const MethodError& e) {
    fmt::print(stderr, "throughput: {}\n", e.what());
    return 2;
  }
  if (o.methods.empty()) fmt::print(stderr, "note: sandbox:uls runs on the ULS kernel only: --hosts=vm\n");
  for (const auto& [m, v] : mv)
    if (needs_uls_kernel(m->name, v)) {
      fmt::print(stderr, "throughput: {}:{} needs the ULS kernel: run it with --hosts=vm\n", m->name, v);
      return 2;
    }
  std::vector<Job> jobs;
  // Without --modes: relay for every method, and router where it is the point: the kernel's
  // own forwarding (router only) and the sandbox, to compare the two routers (as --hosts=vm).
  const bool modes_given = app.count("--modes") > 0;
  for (auto& [m, v] : mv)
    for (ForwardMode md : modes) {
      if ((md == ForwardMode::kRelay && !m->relay) || (md == ForwardMode::kRouter && !m->router)) {
        if (modes_given)
          fmt::print(stderr, "note: {} does not support {} mode: skipped\n", m->name, forward_mode_name(md));
        continue;
      }
      if (!modes_given && md == ForwardMode::kRouter && m->relay && m->name != "sandbox") continue;
      if (m->name == "sandbox") {
        for (const auto& p : protection_in_force) jobs.push_back({m, v, md, p});
      } else {
        jobs.push_back({m, v, md});
      }
    }
  if (jobs.empty()) {
    fmt::print(stderr, "throughput: no method supports the modes asked for\n");
    return 2;
  }
  // The common load comes from the batched kernel-socket relay's PDR: that job goes first.
  std::stable_partition(jobs.begin(), jobs.end(), [](const Job& j) {
    return j.info->name == "kernel-socket" && j.variant == "batched" && j.mode == ForwardMode::kRelay;
  });

  const bool pin = o.pin && std::thread::hardware_concurrency() >= 2;
  nlohmann::json doc;
  doc["schema"] = "ulsnet.throughput.v2";
  doc["config"] = {{"methods", o.methods}, {"modes", o.modes}, {"sizes", o.sizes},
                   {"rates", o.rates}, {"rates_all_sizes", o.rates_all_sizes},
                   {"duration_s", o.duration}, {"reps", o.reps}, {"quick", o.quick},
                   {"batch", o.batch}, {"max_packets", o.max_packets},
                   {"protection", o.protection}, {"protection_in_force", protection_in_force},
                   {"veth_napi_all_methods", o.veth_napi},
                   {"af_xdp_busy_poll", o.busy_poll}, {"af_xdp_need_wakeup", o.need_wakeup},
                   {"search", o.search}, {"pdr_loss", o.pdr_loss}, {"search_duration_s", o.search_duration},
                   {"search_precision", o.search_precision}, {"search_trials", o.search_trials},
                   {"final_trials", o.final_trials},
                   {"stall_probe", pin && o.stall_probe ? nlohmann::json({0, 1}) : nlohmann::json::array()},
                   {"stall_threshold_ms", o.stall_threshold_ms},
                   {"retry_disturbed", o.retry_disturbed},
                   {"search_max_pps", o.search_max},
                   {"napi_threads_per_host", o.napi_per_host}, {"napi_fifo_priority", o.napi_priority},
                   {"proxy_fifo_priority", o.proxy_priority},
                   {"pinning", pin ? "generator and sink on CPU 0, proxy on CPU 1" : "none"},
                   {"drain_s", TrialConfig{}.drain_s}, {"argv", std::vector<std::string>(argv, argv + argc)},
                   {"generator_asked", o.generator}, {"sink_asked", o.sink},
                   {"static_neighbors", true}, {"calibrate", o.calibrate},
                   {"load_sweep", o.sweep ? nlohmann::json(o.loads) : nlohmann::json::array()},
                   {"load_sweep_basis", "fractions of each job's own PDR lower bound at the first size"},
                   {"competitors", o.competitors},
                   {"search_sizes", o.search_all_sizes ? nlohmann::json(o.sizes) : nlohmann::json({o.sizes.front()})},
                   {"warmup_s", o.warmup},
                   {"warmup_rule", "min(warmup_s, a tenth of the trial) after the first arrival's send time, left out "
                                   "of the delay statistics"}};
  // Resuming: the same --out and the same configuration keep what the earlier run finished.
  const std::string out_path = result_path(o.out, "throughput");
  Finished finished;
  if (!o.out.empty() && std::filesystem::exists(out_path) && !o.fresh) {
    nlohmann::json old;
    try {
      std::ifstream in(out_path);
      old = nlohmann::json::parse(in);
    } catch (const std::exception& e) {
      fmt::print(stderr, "throughput: {} exists but is not a result file ({}): give another --out, or --fresh to overwrite it\n",
                 out_path, e.what());
      return 2;
    }
    nlohmann::json a = old.value("config", nlohmann::json::object()), b = doc["config"];
    a.erase("argv"), b.erase("argv");
    if (old.value("schema", "") != "ulsnet.throughput.v2" || a != b) {
      fmt::print(stderr, "throughput: {} holds a run with another configuration: give another --out, or --fresh to "
                         "overwrite it\n", out_path);
      return 2;
    }
    for (const auto& r : old.value("results", nlohmann::json::array()))
      if (r.contains("point")) finished.points[r["point"].get<std::string>()] = r;
    for (const auto& c : old.value("capacity", nlohmann::json::array()))
      finished.capacity[fmt::format("{}|{}|{}|{}|{}", c.value("method", ""), c.value("variant", ""), c.value("mode", ""),
                                    c.value("protection", ""), c.value("payload_bytes", 0u))] = c;
    for (const auto& c : old.value("calibration", nlohmann::json::array()))
      finished.calibration[std::to_string(c.value("payload_bytes", 0u))] = c;
    fmt::print(stderr, "throughput: resuming {}: {} points, {} searches, {} calibrations finished there\n", out_path,
               finished.points.size(), finished.capacity.size(), finished.calibration.size());
  }
  doc["environment"] = environment();
  doc["results"] = nlohmann::json::array();
  doc["calibration"] = nlohmann::json::array();
  doc["capacity"] = nlohmann::json::array();
  Runner runner(o, pin, finished);
  auto save = [&] {
    doc["complete"] = false;
    doc["run_seconds"] = seconds_since_start();
    write_result(doc, out_path, "throughput");
  };
  const std::string kernel = doc["environment"]["kernel"];

  if (o.calibrate) {
    // Generator straight to sink (no proxy): what the two ends reach by themselves.
    TopologyOptions two;
    two.three_hosts = false;
    two.veth_napi = o.veth_napi || o.generator == "xdp-live";
    if (pin && two.veth_napi && o.napi_per_host) two.receiver_napi_cpu = 1;
    two.napi_fifo_priority = o.napi_priority;
    std::unique_ptr<Topology> topo;
    try {
      topo = std::make_unique<Topology>(two);
    } catch (const std::exception& e) {
      fmt::print(stderr, "throughput: cannot build hosts: {}\n", e.what());
      return 3;
    }
    for (uint32_t size : o.sizes) {
      if (const nlohmann::json* done = finished.find(finished.calibration, std::to_string(size))) {
        doc["calibration"].push_back(*done);
        continue;
      }
      nlohmann::json c{{"payload_bytes", size}, {"load", "max"}, {"duration_s", o.duration},
                       {"placement", pin ? "generator on CPU 0, sink on CPU 1" : "none"},
                       {"samples", nlohmann::json::array()}};
      for (int rep = 0; rep < o.reps; ++rep) {
        TrialConfig tc;
        tc.payload = size;
        tc.duration_s = o.duration;
        tc.batch = o.batch;
        tc.max_packets = o.max_packets;
        tc.run_id = uint32_t(getpid()) << 8 | 0xf0 | uint32_t(rep);
        tc.generator = o.generator;
        tc.sink = o.sink;
        if (pin) tc.generator_cpu = 0, tc.sink_cpu = 1;
        nlohmann::json r = run_direct(*topo, tc);
        if (r.contains("error")) fmt::print(stderr, "calibration {}B: ERROR {}\n", size, r["error"].get<std::string>());
        else
          fmt::print(stderr, "calibration (sender -> receiver, no proxy) {}B: {:.0f} pps delivered, unaccounted {}\n",
                     size, r["delivered_pps"].get<double>(), r["unaccounted"].get<int64_t>());
        c["samples"].push_back(r);
      }
      c = summarize_point(std::move(c), {{"hosts", "netns"}, {"kernel", kernel}});
      doc["calibration"].push_back(c);
      save();
    }
  }

  double common_rate = o.common_load;
  std::string common_basis = o.common_load > 0 ? "--common-load" : "";
  const auto jobs_t0 = std::chrono::steady_clock::now();
  for (size_t ji = 0; ji < jobs.size(); ++ji) {
    const Job& job = jobs[ji];
    TopologyOptions to;
    to.proxy_kernel_addresses = job.info->kernel_owns_addresses;
    to.veth_napi = job.info->needs_veth_napi || o.veth_napi || o.generator == "xdp-live";
    if (pin && to.veth_napi && o.napi_per_host) to.proxy_napi_cpu = 1, to.receiver_napi_cpu = 0;
    to.napi_fifo_priority = o.napi_priority;
    std::unique_ptr<Topology> topo;
    try {
      topo = std::make_unique<Topology>(to);
    } catch (const std::exception& e) {
      fmt::print(stderr, "throughput: cannot build hosts: {}\n", e.what());
      return 3;
    }
    const nlohmann::json labels = {
        {"hosts", "netns"}, {"kernel", kernel}, {"uls_kernel", doc["environment"]["uls_device"]},
        {"veth_napi", to.veth_napi},
        {"proxy_napi", topo->napi_report().empty() ? "softirq on the sending CPU" : topo->napi_report()}};
    auto add_point = [&](nlohmann::json r) {
      doc["results"].push_back(std::move(r));
      save();
    };
    for (uint32_t size : o.sizes)
      for (double rate : rates) {
        if (rate > 0 && !o.rates_all_sizes && size != o.sizes.front()) continue;
        add_point(runner.point(job, *topo, labels, size, rate, rate > 0 ? "fixed rate" : "max load",
                               rate > 0 ? fmt::format("rate:{:.0f}", rate) : "max"));
      }
    const uint32_t size0 = o.sizes.front();
    nlohmann::json cap0;
    if (o.search) {
      // NDR and PDR at every size (the first size's also sets the sweep and the common load).
      for (uint32_t size : o.sizes) {
        if (!o.search_all_sizes && size != size0) continue;
        nlohmann::json cap = runner.capacity(job, *topo, size);
        if (size == size0) cap0 = cap;
        doc["capacity"].push_back(cap);
        save();
      }
      if (common_rate == 0 && job.info->name == "kernel-socket" && job.variant == "batched" &&
          job.mode == ForwardMode::kRelay && cap0["pdr"]["lower_pps"].is_number()) {
        common_rate = std::round(0.5 * cap0["pdr"]["lower_pps"].get<double>());
        common_basis = "half of kernel-socket:batched relay's PDR lower bound";
      }
    }
    if (o.sweep && !o.loads.empty()) {
      // Offered load as fractions of this job's own PDR: latency at 10/50/90% of what it can
      // carry, and past 1 the receive-livelock curve.
      const nlohmann::json* pdr = cap0.is_object() && cap0.contains("pdr") ? &cap0["pdr"] : nullptr;
      if (!pdr || !(*pdr)["lower_pps"].is_number() || (*pdr)["lower_pps"].get<double>() <= 0) {
        fmt::print(stderr, "{}: no offered-load sweep: no PDR lower bound at {} B{}\n", job.name(), size0,
                   o.search ? "" : " (--no-search)");
      } else {
        const double pdr_lo = (*pdr)["lower_pps"].get<double>();
        for (double f : o.loads) {
          const double rate = std::max(1.0, std::round(f * pdr_lo));
          add_point(runner.point(
              job, *topo, labels, size0, rate, fmt::format("{:.0f}% of its PDR", 100 * f), fmt::format("fraction:{}", f),
              {{"load_fraction", f},
               {"load_basis", fmt::format("{} x this job's PDR lower bound at {} B ({:.0f} pps{})", f, size0, pdr_lo,
                                          (*pdr).value("censored", false) ? ", censored at the generator" : "")}}));
        }
      }
    }
    if (common_rate > 0) {
      // Every method at one common load: latency, delay variation and CPU per packet at equal
      // work; with --competitors, again with CPU-bound processes on the proxy's CPU.
      std::vector<int> counts = o.competitors;
      if (std::find(counts.begin(), counts.end(), 0) == counts.end()) counts.insert(counts.begin(), 0);
      for (int c : counts)
        add_point(runner.point(job, *topo, labels, size0, common_rate, "common load", fmt::format("common:{}", c),
                               {{"load_basis", common_basis}}, c));
    }
    const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - jobs_t0).count();
    fmt::print(stderr, "[job {}/{} done: {:.0f} s so far, about {:.0f} s left at the jobs' average so far]\n", ji + 1,
               jobs.size(), el, el / double(ji + 1) * double(jobs.size() - ji - 1));
  }
  doc["common_load_pps"] = common_rate;
  doc["common_load_basis"] = common_rate > 0 ? common_basis : "none: no --common-load and no kernel-socket:batched PDR";
  TargetSubject subject;
  subject.protection = protection_in_force.front();
  subject.payload = o.sizes.front();
  doc["targets"] = evaluate_targets(doc, subject);
  doc["targets_subject"] = {{"method", subject.method}, {"variant", subject.variant}, {"payload_bytes", subject.payload},
                            {"protection", subject.protection}, {"criterion", subject.criterion}};
  doc["run_seconds"] = seconds_since_start();
  doc["complete"] = true;
  if (finished.reused) doc["resumed_from_earlier_run"] = finished.reused;
  const std::string path = write_result(doc, out_path, "throughput");

  const nlohmann::json& env = doc["environment"];
  fmt::print("\nulsnet throughput: {} on {} ({} cores), hosts=netns, commit {}{}, {} s x {} reps, run took {:.0f} s\n",
             env["kernel"].get<std::string>(), env["cpu_model"].get<std::string>(), env["cores"].get<int>(),
             env["describe"].get<std::string>(), env["dirty"].get<bool>() ? " (DIRTY TREE)" : "", o.duration, o.reps,
             doc["run_seconds"].get<double>());
  fmt::print("{:<15} {:<16} {:<6} {:>5} {:>12} {:>9} {:>9} {:>7} {:>9} {:>9} {:>9} {:>9}\n", "method", "variant", "mode",
             "bytes", "load", "offered", "delivered", "loss%", "p50 us", "p99 us", "ipdv99us", "host ns/f");
  auto shown_variant = [](const nlohmann::json& r) {
    const std::string v = r["variant"].get<std::string>(), p = r.value("protection", "n/a");
    return p == "n/a" ? v : v + "/" + p;
  };
  auto us = [](const nlohmann::json& j, const char* k) {
    return j.contains(k) && j[k].is_number() ? fmt::format("{:.1f}", j[k].get<double>() / 1000) : "-";
  };
  for (auto& r : doc["results"]) {
    std::string load = r["load"].is_string()     ? "max"
                       : r.contains("load_fraction") ? fmt::format("{:.0f}%PDR", 100 * r["load_fraction"].get<double>())
                                                     : fmt::format("{:.0f}", r["load"].get<double>());
    if (r.value("competitors", 0) > 0) load += fmt::format("+{}c", r["competitors"].get<int>());
    if (r.contains("error")) {
      fmt::print("{:<15} {:<16} {:<6} {:>5} {:>12}  ERROR: {}\n", r["method"].get<std::string>(), shown_variant(r),
                 r["mode"].get<std::string>(), r["payload_bytes"].get<uint32_t>(), load, r["error"].get<std::string>());
      continue;
    }
    fmt::print("{:<15} {:<16} {:<6} {:>5} {:>12} {:>9.0f} {:>9.0f} {:>7.2f} {:>9} {:>9} {:>9} {:>9}\n",
               r["method"].get<std::string>(), shown_variant(r), r["mode"].get<std::string>(),
               r["payload_bytes"].get<uint32_t>(), load, r["offered_pps"].get<double>(), r["delivered_pps"].get<double>(),
               100 * r["loss"].get<double>(), us(r["latency_ns"], "p50"), us(r["latency_ns"], "p99"),
               us(r["ipdv_ns"], "p99"),
               r["cpu"].contains("proxy_host_ns_per_forwarded")
                   ? fmt::format("{:.0f}", r["cpu"]["proxy_host_ns_per_forwarded"].get<double>())
                   : "-");
  }
  for (auto& c : doc["calibration"])
    fmt::print("calibration, no proxy ({}): {:>5} B  {:>8.0f} pps\n", c["placement"].get<std::string>(),
               c["payload_bytes"].get<uint32_t>(), c["delivered_pps"].get<double>());
  if (!doc["capacity"].empty()) {
    fmt::print("\nNDR (loss 0) and PDR (loss <= {}%): [passed, failed) pps, final trials of {} s\n", 100 * o.pdr_loss,
               o.duration);
    for (auto& c : doc["capacity"]) {
      if (c.contains("error")) {
        fmt::print("  {:<15} {:<20} {:<6} {:>5} B ERROR: {}\n", c["method"].get<std::string>(), shown_variant(c),
                   c["mode"].get<std::string>(), c["payload_bytes"].get<uint32_t>(), c["error"].get<std::string>());
        continue;
      }
      fmt::print("  {:<15} {:<20} {:<6} {:>5} B NDR {:<42} PDR {}\n", c["method"].get<std::string>(), shown_variant(c),
                 c["mode"].get<std::string>(), c["payload_bytes"].get<uint32_t>(), describe_bracket(c["ndr"]),
                 describe_bracket(c["pdr"]));
    }
  }
  if (common_rate > 0) fmt::print("common load for latency and CPU: {:.0f} pps ({})\n", common_rate, common_basis);
  fmt::print("\ntargets ({}:{}, relay, protection {}, {}):\n", subject.method, subject.variant, subject.protection,
             subject.criterion);
  for (auto& t : doc["targets"])
    fmt::print("  {:<82} goal {:<6} value {:<6} {}{}\n", t["target"].get<std::string>(), t["goal"].get<std::string>(),
               t.contains("value") ? fmt::format("{:.2f}", t["value"].get<double>()) : "-",
               t["status"].get<std::string>(), t.contains("note") ? " (" + t["note"].get<std::string>() + ")" : "");
  fmt::print("\nresults: {}\n", path);
  return runner.failures() ? 1 : 0;
}

}  // namespace
}  // namespace ulsnet

int main(int argc, char** argv) {
  try {
    return ulsnet::run(argc, argv);
  } catch (const std::exception& e) {
    fmt::print(stderr, "throughput: {}\n", e.what());
    return 1;
  }
}
