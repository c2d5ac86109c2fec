// //bench:throughput: every proxy method x mode x payload size on three hosts (network
// namespaces): what each delivers at maximum load, its non-drop and partial-drop rates (NDR/PDR,
// measured brackets: bench/search.h) and its latency, delay variation and CPU per packet at one
// common load; the project's targets evaluated from the run. A table on stdout, progress on
// stderr, one JSON file with the configuration, the environment and every trial whole. See
// bench/README.md. `--hosts=vm` hands over to bench/vm_throughput.cc, `--hosts=ssh` to the
// //bench/ssh:ssh_throughput binary (exec, the other arguments as they are). This file is the
// namespace run's driver: the result document, calibration, and per job the points, the search,
// the sweep and the common load; the flags are bench/throughput_options.h, the jobs
// bench/throughput_jobs.h, the trials, points and searches bench/throughput_runner.h, the summary
// bench/throughput_report.h.
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
#include "bench/throughput_common.h"
#include "bench/throughput_jobs.h"
#include "bench/throughput_options.h"
#include "bench/throughput_point.h"
#include "bench/throughput_report.h"
#include "bench/throughput_runner.h"
#include "bench/run_lock.h"
#include "kernel/vm_harness.h"
#include "sandbox/protection.h"

namespace ulsnet {
namespace {

nlohmann::json environment() {
  nlohmann::json env = host_environment("netns");
  env["checksum_mode"] = "full UDP checksums: tx checksum offload off on every veth";
  return env;
}

// The run's configuration as the result file records it (and a resumed run must match).
nlohmann::json config_json(const ThroughputOptions& o, bool pin, const std::vector<std::string>& protection_in_force,
                           int argc, char** argv) {
  return {{"methods", o.methods}, {"modes", o.modes}, {"sizes", o.sizes},
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
}

// Resuming: the same --out and the same configuration keep what the earlier run finished.
// False (exit 2) when the file there cannot be resumed.
bool load_finished(const ThroughputOptions& o, const nlohmann::json& config, const std::string& out_path,
                   Finished& finished) {
  if (o.out.empty() || !std::filesystem::exists(out_path) || o.fresh) return true;
  nlohmann::json old;
  if (!read_earlier_run(out_path, old)) return false;
  nlohmann::json a = old.value("config", nlohmann::json::object()), b = config;
  a.erase("argv"), b.erase("argv");
  if (old.value("schema", "") != "ulsnet.throughput.v2" || a != b) {
    refuse_other_configuration(out_path);
    return false;
  }
  finished = Finished::from(old);
  fmt::print(stderr, "throughput: resuming {}: {} points, {} searches, {} calibrations finished there\n", out_path,
             finished.points.size(), finished.capacity.size(), finished.calibration.size());
  return true;
}

// Hosts for `to`, or nullptr after one line on stderr (exit 3).
std::unique_ptr<Topology> build_hosts(const TopologyOptions& to) {
  try {
    return std::make_unique<Topology>(to);
  } catch (const std::exception& e) {
    fmt::print(stderr, "throughput: cannot build hosts: {}\n", e.what());
    return nullptr;
  }
}

// One namespace run after its checks: the result document, saved after every point, search and
// calibration; the common load as the jobs find it.
class NetnsRun {
 public:
  NetnsRun(const ThroughputOptions& o, bool pin, nlohmann::json doc, std::string out_path, Finished finished)
      : o_(o), pin_(pin), doc_(std::move(doc)), out_path_(std::move(out_path)), finished_(std::move(finished)),
        runner_(o, pin, finished_) {
    kernel_ = doc_["environment"]["kernel"];
    common_rate_ = o.common_load;
    common_basis_ = o.common_load > 0 ? "--common-load" : "";
    for (const auto& r : o.rates) rates_.push_back(*parse_rate(r));
  }

  int calibrate();
  int run_jobs(const std::vector<Job>& jobs);
  int finish(const std::string& protection);

 private:
  void save() {
    doc_["complete"] = false;
    doc_["run_seconds"] = seconds_since_start();
    write_result(doc_, out_path_, "throughput");
  }
  void add_point(nlohmann::json r) {
    doc_["results"].push_back(std::move(r));
    save();
  }
  bool ended_by_peer();
  nlohmann::json calibration_at(const Topology& topo, uint32_t size);
  int run_job(const Job& job);
  nlohmann::json search(const Job& job, const Topology& topo);
  void sweep(const Job& job, const Topology& topo, const nlohmann::json& labels, const nlohmann::json& cap0);
  void common_load(const Job& job, const Topology& topo, const nlohmann::json& labels);

  const ThroughputOptions& o_;
  const bool pin_;
  nlohmann::json doc_;
  const std::string out_path_;
  Finished finished_;
  Runner runner_;
  std::string kernel_;
  std::vector<double> rates_;  // --rates: 0 for max
  double common_rate_;
  std::string common_basis_;
};

// A peer (generator, proxy or sink process) died in a trial: the run ends there, its file
// saved with "ended_by" saying which peer, how and when. True then.
bool NetnsRun::ended_by_peer() {
  const nlohmann::json& d = runner_.peer_died();
  if (d.is_null()) return false;
  if (!doc_.contains("ended_by")) {
    doc_["ended_by"] = {{"peer_died", d}};
    save();
    fmt::print(stderr,
               "throughput: the run ends: the {} (pid {}) died during {}, {:.1f} s into the run: {}; the results "
               "so far are in {} (\"complete\": false)\n",
               d.value("role", "?"), d.value("pid", 0), d.value("during", "?"), d.value("run_s", 0.0),
               d.value("how", "?"), out_path_);
  }
  return true;
}

// Generator straight to sink (no proxy): what the two ends reach by themselves.
int NetnsRun::calibrate() {
  TopologyOptions two;
  two.three_hosts = false;
  two.veth_napi = o_.veth_napi || o_.generator == "xdp-live";
  if (pin_ && two.veth_napi && o_.napi_per_host) two.receiver_napi_cpu = 1;
  two.napi_fifo_priority = o_.napi_priority;
  std::unique_ptr<Topology> topo = build_hosts(two);
  if (!topo) return 3;
  for (uint32_t size : o_.sizes) {
    if (const nlohmann::json* done = finished_.find(finished_.calibration, std::to_string(size))) {
      doc_["calibration"].push_back(*done);
      continue;
    }
    doc_["calibration"].push_back(calibration_at(*topo, size));
    save();
    if (ended_by_peer()) return 1;
  }
  return 0;
}

// The calibration's repetitions at one size, summarised.
nlohmann::json NetnsRun::calibration_at(const Topology& topo, uint32_t size) {
  nlohmann::json c{{"payload_bytes", size}, {"load", "max"}, {"duration_s", o_.duration},
                   {"placement", pin_ ? "generator on CPU 0, sink on CPU 1" : "none"},
                   {"samples", nlohmann::json::array()}};
  for (int rep = 0; rep < o_.reps; ++rep) {
    TrialConfig tc;
    tc.payload = size;
    tc.duration_s = o_.duration;
    tc.batch = o_.batch;
    tc.max_packets = o_.max_packets;
    tc.run_id = uint32_t(getpid()) << 8 | 0xf0 | uint32_t(rep);
    tc.generator = o_.generator;
    tc.sink = o_.sink;
    if (pin_) tc.generator_cpu = 0, tc.sink_cpu = 1;
    nlohmann::json r = run_direct(topo, tc);
    runner_.note_peer_death(r, fmt::format("calibration {}B", size));
    if (r.contains("error")) fmt::print(stderr, "calibration {}B: ERROR {}\n", size, r["error"].get<std::string>());
    else
      fmt::print(stderr, "calibration (sender -> receiver, no proxy) {}B: {:.0f} pps delivered, unaccounted {}\n",
                 size, r["delivered_pps"].get<double>(), r["unaccounted"].get<int64_t>());
    c["samples"].push_back(r);
    if (!runner_.peer_died().is_null()) break;
  }
  return summarize_point(std::move(c), {{"hosts", "netns"}, {"kernel", kernel_}});
}

int NetnsRun::run_jobs(const std::vector<Job>& jobs) {
  const auto jobs_t0 = std::chrono::steady_clock::now();
  for (size_t ji = 0; ji < jobs.size(); ++ji) {
    if (const int rc = run_job(jobs[ji]); rc != 0) return rc;
    const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - jobs_t0).count();
    fmt::print(stderr, "[job {}/{} done: {:.0f} s so far, about {:.0f} s left at the jobs' average so far]\n", ji + 1,
               jobs.size(), el, el / double(ji + 1) * double(jobs.size() - ji - 1));
  }
  return 0;
}

// One job on its own fresh hosts: its max-load points, its search, its sweep, the common load.
int NetnsRun::run_job(const Job& job) {
  TopologyOptions to;
  to.proxy_kernel_addresses = job.info->kernel_owns_addresses;
  to.veth_napi = job.info->needs_veth_napi || o_.veth_napi || o_.generator == "xdp-live";
  if (pin_ && to.veth_napi && o_.napi_per_host) to.proxy_napi_cpu = 1, to.receiver_napi_cpu = 0;
  to.napi_fifo_priority = o_.napi_priority;
  std::unique_ptr<Topology> topo = build_hosts(to);
  if (!topo) return 3;
  const nlohmann::json labels = {
      {"hosts", "netns"}, {"kernel", kernel_}, {"uls_kernel", doc_["environment"]["uls_device"]},
      {"veth_napi", to.veth_napi},
      {"proxy_napi", topo->napi_report().empty() ? "softirq on the sending CPU" : topo->napi_report()}};
  for (uint32_t size : o_.sizes)
    for (double rate : rates_) {
      if (rate > 0 && !o_.rates_all_sizes && size != o_.sizes.front()) continue;
      add_point(runner_.point(job, *topo, labels, size, rate, rate > 0 ? "fixed rate" : "max load",
                              rate > 0 ? fmt::format("rate:{:.0f}", rate) : "max"));
      if (ended_by_peer()) return 1;
    }
  nlohmann::json cap0;
  if (o_.search) cap0 = search(job, *topo);
  if (ended_by_peer()) return 1;
  if (o_.sweep && !o_.loads.empty()) sweep(job, *topo, labels, cap0);
  if (ended_by_peer()) return 1;
  if (common_rate_ > 0) common_load(job, *topo, labels);
  if (ended_by_peer()) return 1;
  return 0;
}

// NDR and PDR at every size searched; the first size's also sets the sweep and the common load.
nlohmann::json NetnsRun::search(const Job& job, const Topology& topo) {
  const uint32_t size0 = o_.sizes.front();
  nlohmann::json cap0;
  for (uint32_t size : o_.sizes) {
    if (!o_.search_all_sizes && size != size0) continue;
    nlohmann::json cap = runner_.capacity(job, topo, size);
    if (size == size0) cap0 = cap;
    doc_["capacity"].push_back(cap);
    save();
    if (!runner_.peer_died().is_null()) break;
  }
  if (common_rate_ == 0 && job.info->name == "kernel-socket" && job.variant == "batched" &&
      job.mode == ForwardMode::kRelay && cap0["pdr"]["lower_pps"].is_number()) {
    common_rate_ = std::round(0.5 * cap0["pdr"]["lower_pps"].get<double>());
    common_basis_ = "half of kernel-socket:batched relay's PDR lower bound";
  }
  return cap0;
}

// Offered load as fractions of this job's own PDR: latency at 10/50/90% of what it can carry,
// and past 1 the receive-livelock curve.
void NetnsRun::sweep(const Job& job, const Topology& topo, const nlohmann::json& labels, const nlohmann::json& cap0) {
  const uint32_t size0 = o_.sizes.front();
  const std::optional<double> pdr_lo = pdr_lower_bound(cap0);
  if (!pdr_lo) {
    fmt::print(stderr, "{}: no offered-load sweep: no PDR lower bound at {} B{}\n", job.name(), size0,
               o_.search ? "" : " (--no-search)");
    return;
  }
  for (double f : o_.loads) {
    add_point(runner_.point(job, topo, labels, size0, sweep_rate(f, *pdr_lo), fmt::format("{:.0f}% of its PDR", 100 * f),
                            fmt::format("fraction:{}", f),
                            {{"load_fraction", f}, {"load_basis", sweep_basis(f, size0, *pdr_lo, cap0)}}));
    if (!runner_.peer_died().is_null()) return;
  }
}

// Every method at one common load: latency, delay variation and CPU per packet at equal work;
// with --competitors, again with CPU-bound processes on the proxy's CPU.
void NetnsRun::common_load(const Job& job, const Topology& topo, const nlohmann::json& labels) {
  std::vector<int> counts = o_.competitors;
  if (std::find(counts.begin(), counts.end(), 0) == counts.end()) counts.insert(counts.begin(), 0);
  for (int c : counts) {
    add_point(runner_.point(job, topo, labels, o_.sizes.front(), common_rate_, "common load",
                            fmt::format("common:{}", c), {{"load_basis", common_basis_}}, c));
    if (!runner_.peer_died().is_null()) return;
  }
}

// The common load, the targets and the summary; the file written whole. Returns the exit status.
int NetnsRun::finish(const std::string& protection) {
  doc_["common_load_pps"] = common_rate_;
  doc_["common_load_basis"] =
      common_rate_ > 0 ? common_basis_ : "none: no --common-load and no kernel-socket:batched PDR";
  TargetSubject subject;
  subject.protection = protection;
  subject.payload = o_.sizes.front();
  doc_["targets"] = evaluate_targets(doc_, subject);
  doc_["targets_subject"] = {{"method", subject.method}, {"variant", subject.variant}, {"payload_bytes", subject.payload},
                             {"protection", subject.protection}, {"criterion", subject.criterion}};
  doc_["run_seconds"] = seconds_since_start();
  doc_["complete"] = true;
  if (finished_.reused) doc_["resumed_from_earlier_run"] = finished_.reused;
  const std::string path = write_result(doc_, out_path_, "throughput");
  print_netns_report(doc_, o_, path);
  return runner_.failures() ? 1 : 0;
}

// The namespace run of `jobs` after its checks. Returns the exit status.
int run_netns(const ThroughputOptions& o, const std::vector<Job>& jobs,
              const std::vector<std::string>& protection_in_force, int argc, char** argv) {
  const bool pin = o.pin && std::thread::hardware_concurrency() >= 2;
  nlohmann::json doc;
  doc["schema"] = "ulsnet.throughput.v2";
  doc["config"] = config_json(o, pin, protection_in_force, argc, argv);
  const std::string out_path = result_path(o.out, "throughput");
  Finished finished;
  if (!load_finished(o, doc["config"], out_path, finished)) return 2;
  doc["environment"] = environment();
  doc["results"] = nlohmann::json::array();
  doc["calibration"] = nlohmann::json::array();
  doc["capacity"] = nlohmann::json::array();
  NetnsRun run(o, pin, std::move(doc), out_path, std::move(finished));
  if (o.calibrate)
    if (const int rc = run.calibrate(); rc != 0) return rc;
  if (const int rc = run.run_jobs(jobs); rc != 0) return rc;
  return run.finish(protection_in_force.front());
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
  ThroughputOptions o;
  CLI::App app{"ulsnet throughput: proxy methods forwarding a UDP stream between three hosts"};
  add_throughput_flags(app, o);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    fmt::print(stderr, "throughput: {}\n", e.what());
    return 2;
  }
  if (!flags_fit_hosts(app, o.hosts)) return 2;
  const std::optional<RunLock> lock = RunLock::take_or_explain("throughput", argc, argv);
  if (!lock) return 3;
  if (o.hosts == "vm") return run_vm_throughput(vm_options_from(o, app, argc, argv));
  if (!netns_prerequisites_met()) return 2;
  if (o.quick) apply_quick_defaults(o, app);
  if (!search_fits_duration(o)) return 2;
  // NDR/PDR at every size the user names; by default only at the first (the default run's
  // second size has its max-load point).
  o.search_all_sizes = app.count("--sizes") > 0;
  std::vector<std::string> protection_in_force;
  if (!resolve_protection(o.protection, protection_in_force)) return 2;
  std::vector<Job> jobs;
  if (!expand_jobs(o, app.count("--modes") > 0, protection_in_force, jobs)) return 2;
  return run_netns(o, jobs, protection_in_force, argc, argv);
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
