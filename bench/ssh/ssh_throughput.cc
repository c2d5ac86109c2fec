// //bench/ssh:ssh_throughput: the throughput experiment across real hosts over SSH.
//
//   bazel run //bench/ssh:ssh_throughput -- --sender HOST --proxy HOST --receiver HOST
//       --method kernel-socket:batched --mode relay --payload 64 --rates 10000,max
//       --duration 1 --reps 3 --out FILE
//
// One OpenSSH connection per host (a connection master this process owns; every session of the
// run goes through it). The agent (//bench/ssh:ulsnet_agent, built with this binary, found in its
// runfiles) is copied by scp into a fresh temporary directory on each host; `ulsnet_agent env`
// there gives each host's environment (echoed in the result) and finds the test interfaces by
// their addresses. Each trial: the sink (recv) ready on the receiver, the proxy method ready on
// the proxy, the generator (send) runs for --duration, a drain, the proxy and the sink told to
// stop; the three JSON reports are accounted (bench/ssh/ssh_accounting.h). Every wait is bounded;
// remote agents stop when their session ends (end of stdin) and at their own time bound.
// On every way out (the end, an error, SIGINT/SIGTERM/SIGHUP) the remote roles are ended, the
// copied files removed (ssh: kill the agents still named in their pid files, rm -rf the
// directory), the connections closed. A second signal kills the local ssh clients at once.
// Also: 95% CIs per point, --loads (a sweep at fractions of each job's PDR), resuming an --out of
// the same configuration (bench/ssh/resume.h), and one-way delays across machines (the generator
// on the receiver's clock, bench/ssh/clock_exchange.h); `//bench:throughput --hosts=ssh` execs
// this binary.
// CPU (E5) and competition (E3 on the forwarding path), as //bench:throughput has them: the
// proxy's agent pins the method to --proxy-cpu (default: the proxy host's last online CPU when it
// has >= 2) and reports where its threads ended up; each trial's `cpu` holds the method's own CPU
// time (the agent's getrusage) and its CPU's /proc/stat time per forwarded packet, each point the
// medians (bench/ssh/ssh_accounting.h trial_cpu, summarize_cpu). Every job gets a point at the
// common load (--common-load, or half the batched kernel-socket relay's PDR lower bound when its
// search runs: that job first; bench/ssh/load_plan.h), with `load_basis`, and, with --competitors,
// the same again with N busy loops on the proxy's CPU (started and killed by the proxy's agent
// around each trial); bench/targets.h judges the latency and CPU targets from them.
//
// Exit: 0 every point measured; 1 a point errored (kept in the file with its error); 2 bad
// arguments; 3 the hosts could not be prepared (connection, copy, environment, interfaces);
// 130 interrupted (the file keeps the finished points, complete: false).
//
// The parts: bench/ssh/ssh_options.h (the flags), ssh_plan.h (the checks before any host is
// touched, the jobs), ssh_hosts.h (the hosts prepared and cleaned up), ssh_trial.h (a trial, the
// search), ssh_record.h (the result file's configuration and what the hosts decide); this file
// runs the jobs and writes the file.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "baselines/registry.h"
#include "bench/environment.h"
#include "bench/targets.h"
#include "bench/throughput_common.h"
#include "bench/ssh/child.h"
#include "bench/ssh/load_plan.h"
#include "bench/ssh/resume.h"
#include "bench/ssh/ssh_accounting.h"
#include "bench/ssh/ssh_hosts.h"
#include "bench/ssh/ssh_options.h"
#include "bench/ssh/ssh_plan.h"
#include "bench/ssh/ssh_record.h"
#include "bench/ssh/ssh_trial.h"

namespace {

using namespace ulsnet;
using namespace ulsnet::ssh;

constexpr int kExitPointError = 1;
constexpr int kExitUsage = 2;
constexpr int kExitSetup = 3;
constexpr int kExitInterrupted = 130;

std::atomic<int> g_signals{0};

void on_signal(int) {
  g_interrupted = true;
  if (g_signals.fetch_add(1) >= 1) {
    kill_all_children_now();
    _exit(kExitInterrupted);
  }
}

void install_signal_handlers() {
  struct sigaction sa{};
  sa.sa_handler = on_signal;
  for (int s : {SIGINT, SIGTERM, SIGHUP}) sigaction(s, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

// The result document, written to its file after every point with `complete: false`.
struct ResultFile {
  nlohmann::json doc;
  std::string path;
  Finished& finished;

  void write(bool complete) {
    if (finished.reused) doc["resumed_from_earlier_run"] = finished.reused;
    doc["complete"] = complete;
    doc["interrupted"] = bool(g_interrupted);
    doc["run_seconds"] = seconds_since_start();
    write_result(doc, path, "throughput-ssh");
  }
};

// Every job's measurements in order: its points at the fixed rates, its search, the offered-load
// sweep at fractions of its PDR, the common-load points (with competitors); what the earlier run
// finished is kept instead of measured again, and the file is written as each finishes.
class JobRunner {
 public:
  JobRunner(const SshThroughputOptions& o, const SshPlan& plan, RunHosts& run, const Addressing& ad, ResultFile& file)
      : o_(o), plan_(plan), run_(run), ad_(ad), file_(file), finished_(file.finished),
        run_id_(file.finished.max_run_id + 1), common_rate_(o.common_load),
        common_basis_(o.common_load > 0 ? "--common-load" : "") {}

  void run_job(const SshJob& job) {
    rate_points(job);
    nlohmann::json cap;
    if (o_.search && !g_interrupted) cap = capacity(job);
    if (!plan_.loads.empty() && !g_interrupted) sweep(job, cap);
    if (common_rate_ > 0 && !g_interrupted) common_points(job);
  }

  // The common load the run ended with, in the document (and why there were no competitor
  // points without one).
  void record_common_load() {
    nlohmann::json& doc = file_.doc;
    doc["common_load_pps"] = common_rate_;
    doc["common_load_basis"] =
        common_rate_ > 0 ? common_basis_ : "none: no --common-load and no kernel-socket:batched PDR";
    if (common_rate_ == 0 && plan_.competitor_counts.size() > 1)
      std::fprintf(stderr, "ssh_throughput: --competitors: no common load in this run (no --common-load, no "
                           "kernel-socket:batched relay PDR lower bound), so no competitor points\n");
  }

  bool any_error() const { return any_error_; }

 private:
  void rate_points(const SshJob& job) {
    for (uint32_t payload : plan_.payloads)
      for (double rate : plan_.rates) {
        if (g_interrupted) break;
        if (!measure_point(job, payload, rate, rate > 0 ? fmt::format("{:.0f}", rate) : "max",
                           rate > 0 ? fmt::format("rate:{:.0f}", rate) : "max"))
          break;
      }
  }

  // NDR and PDR at the first payload (kept from the earlier run if it finished there); the
  // common load derived from it when it is the batched kernel-socket relay's.
  nlohmann::json capacity(const SshJob& job) {
    const uint32_t payload = plan_.payloads.front();
    nlohmann::json cap;
    if (const nlohmann::json* done = finished_.find(finished_.capacity, job.key(o_.protection, payload))) {
      std::fprintf(stderr, "%-32s %4u B search: finished in the earlier run, kept\n", job.name().c_str(), payload);
      cap = *done;
    } else {
      cap = search_capacity(o_, run_.hosts, ad_, job, payload, run_id_);
    }
    if (cap.contains("error")) any_error_ = true;
    file_.doc["capacity"].push_back(cap);
    file_.write(false);
    if (common_rate_ == 0)
      if (auto c = derived_common_load(cap)) {
        common_rate_ = c->pps;
        common_basis_ = c->basis;
        std::fprintf(stderr, "ssh_throughput: common load %.0f pps (%s)\n", common_rate_, common_basis_.c_str());
      }
    return cap;
  }

  // Offered load as fractions of this job's own PDR: latency at 10/50/90% of what it can
  // carry, and past 1 the overload curve (as //bench:throughput --loads).
  void sweep(const SshJob& job, const nlohmann::json& cap) {
    const uint32_t payload = plan_.payloads.front();
    const std::optional<double> pdr_lo = pdr_lower_bound(cap);
    if (!pdr_lo) {
      const nlohmann::json* pdr = cap.is_object() && cap.contains("pdr") ? &cap["pdr"] : nullptr;
      const std::string why = fmt::format("{}: no offered-load sweep: no PDR lower bound at {} B ({})", job.name(),
                                          payload,
                                          cap.contains("error") ? "the search failed: " + cap["error"].get<std::string>()
                                          : pdr ? "PDR status: " + (*pdr).value("status", std::string("?"))
                                                : std::string("no search"));
      std::fprintf(stderr, "%s\n", why.c_str());
      file_.doc["load_sweep_skipped"].push_back(why);
      file_.write(false);
      return;
    }
    for (double f : plan_.loads) {
      if (g_interrupted) break;
      if (!measure_point(job, payload, sweep_rate(f, *pdr_lo), fmt::format("{:.0f}% PDR", 100 * f),
                         fmt::format("fraction:{}", f),
                         {{"load_fraction", f}, {"load_basis", sweep_basis(f, payload, *pdr_lo, cap)}}))
        break;
    }
  }

  // Every job at one common load: latency, delay variation and CPU per packet at equal work;
  // with --competitors, again with CPU-bound processes on the proxy's CPU.
  void common_points(const SshJob& job) {
    for (int c : plan_.competitor_counts) {
      if (g_interrupted) break;
      if (!measure_point(job, plan_.payloads.front(), common_rate_,
                         c > 0 ? fmt::format("common +{}c", c) : std::string("common"), fmt::format("common:{}", c),
                         {{"load_basis", common_basis_}}, c))
        break;
    }
  }

  // One point: `reps` trials of `job` at `rate` (0: max), summarised; `extra` fields say what its
  // load is based on; `competitors` CPU-bound processes on the proxy's CPU during each trial. False
  // when interrupted before any trial.
  bool measure_point(const SshJob& job, uint32_t payload, double rate, const std::string& what,
                     const std::string& key, const nlohmann::json& extra = nlohmann::json::object(),
                     int competitors = 0) {
    const std::string full_key = job.key(o_.protection, payload) + "|" + key;
    if (const nlohmann::json* done = finished_.find(finished_.points, full_key)) {
      std::fprintf(stderr, "%-32s %4u B %12s: finished in the earlier run, kept\n", job.name().c_str(), payload,
                   what.c_str());
      file_.doc["results"].push_back(*done);
      file_.write(false);
      return true;
    }
    nlohmann::json point = new_point(job, payload, rate, full_key, extra, competitors);
    for (int rep = 0; rep < o_.reps && !g_interrupted; ++rep) {
      nlohmann::json s = run_trial(o_, run_.hosts, ad_, {job, payload, rate, o_.duration, run_id_++, competitors});
      if (g_interrupted && s.contains("error")) break;
      s["rep"] = rep;
      point["samples"].push_back(s);
    }
    if (point["samples"].empty()) return false;
    if (int(point["samples"].size()) < o_.reps) point["interrupted"] = true;  // a rerun measures it again
    point = summarize_ssh_point(point);
    if (!point.contains("latency_valid")) point["latency_valid"] = false;
    if (point.contains("error")) any_error_ = true;
    print_point(job, payload, what, point);
    file_.doc["results"].push_back(point);
    file_.write(false);
    return true;
  }

  // A point before its trials: what runs, at what load, under which key.
  nlohmann::json new_point(const SshJob& job, uint32_t payload, double rate, const std::string& full_key,
                           const nlohmann::json& extra, int competitors) const {
    nlohmann::json point = {{"method", job.info->name},
                            {"variant", job.variant},
                            {"protection", job.protection(o_.protection)},
                            {"mode", forward_mode_name(job.mode)},
                            {"payload_bytes", payload},
                            {"load", rate > 0 ? nlohmann::json(rate) : nlohmann::json("max")},
                            {"rate_pps", rate},
                            {"duration_s", o_.duration},
                            {"point", full_key},
                            {"competitors", competitors},
                            {"samples", nlohmann::json::array()}};
    for (const auto& [k, v] : extra.items()) point[k] = v;
    if (competitors > 0)
      point["competitors_placement"] =
          fmt::format("{} busy-loop process(es), SCHED_OTHER, {}, started and killed by the proxy's agent around each "
                      "trial", competitors, ad_.proxy_cpu >= 0 ? fmt::format("on the proxy's CPU {}", ad_.proxy_cpu)
                                                               : std::string("unpinned"));
    return point;
  }

  // The point's progress line on stderr.
  static void print_point(const SshJob& job, uint32_t payload, const std::string& what, const nlohmann::json& point) {
    const nlohmann::json& cpu = point["cpu"];
    const std::string cpu_text =
        cpu.contains("proxy_process_ns_per_forwarded")
            ? fmt::format(", proxy {:.0f} ns/pkt{}", cpu["proxy_process_ns_per_forwarded"].get<double>(),
                          cpu.contains("proxy_host_ns_per_forwarded")
                              ? fmt::format(" (its CPU {:.0f})", cpu["proxy_host_ns_per_forwarded"].get<double>())
                              : std::string())
            : std::string();
    std::fprintf(stderr, "%-32s %4u B %12s: offered %10.0f pps, delivered %10.0f pps, loss %.4f, unaccounted %lld%s%s\n",
                 job.name().c_str(), payload, what.c_str(), point["offered_pps"].get<double>(),
                 point["delivered_pps"].get<double>(), point["loss"].get<double>(),
                 (long long)point["unaccounted"].get<int64_t>(), cpu_text.c_str(),
                 point.contains("error") ? (" ERROR: " + point["error"].get<std::string>()).c_str() : "");
  }

  const SshThroughputOptions& o_;
  const SshPlan& plan_;
  RunHosts& run_;
  const Addressing& ad_;
  ResultFile& file_;
  Finished& finished_;
  uint32_t run_id_;
  double common_rate_;
  std::string common_basis_;
  bool any_error_ = false;
};

// The result document before the hosts are prepared: the configuration, this machine, empty
// lists for what the run adds.
nlohmann::json initial_document(const SshThroughputOptions& o, const SshPlan& plan, nlohmann::json config) {
  nlohmann::json doc;
  doc["schema"] = "ulsnet.throughput-ssh.v1";
  doc["config"] = std::move(config);
  doc["controller"] = {{"environment", host_environment("ssh")}};
  doc["results"] = nlohmann::json::array();
  if (o.search) doc["capacity"] = nlohmann::json::array();
  if (!plan.loads.empty()) doc["load_sweep_skipped"] = nlohmann::json::array();
  doc["complete"] = false;
  return doc;
}

// The hosts prepared and the test interfaces resolved into `ad`; the exit code when that failed
// (the hosts cleaned up), 0 otherwise.
int prepare_or_exit(RunHosts& run, const SshPlan& plan, Addressing& ad) {
  try {
    prepare_hosts(run, plan.agent_path, ad);
  } catch (const SetupError& e) {
    std::fprintf(stderr, "ssh_throughput: %s\n", e.message.c_str());
    run.cleanup();
    return g_interrupted ? kExitInterrupted : kExitSetup;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ssh_throughput: preparing the hosts: %s\n", e.what());
    run.cleanup();
    return kExitSetup;
  }
  return 0;
}

// What the prepared hosts decide (the addressing, the clocks, the proxy's CPU) into the
// document, checked against the earlier run; the exit code when that failed (the hosts
// cleaned up), 0 otherwise.
int settle_hosts_or_exit(const SshThroughputOptions& o, RunHosts& run, const EarlierRun& earlier, Addressing& ad,
                         ResultFile& file) {
  nlohmann::json& doc = file.doc;
  doc["hosts"] = hosts_json(run);
  doc["config"]["addressing"] = addressing_json(ad);
  doc["clock"] = settle_clocks(o, run.hosts, ad);
  for (const auto& [role, p] : {std::pair{"sender", &ad.sender}, {"proxy in", &ad.proxy_in},
                                 {"proxy out", &ad.proxy_out}, {"receiver", &ad.receiver}})
    std::fprintf(stderr, "ssh_throughput: %-9s %s %s %s\n", role, p->ifname.c_str(), p->ip.c_str(), p->mac.c_str());
  ProxyCpu pcpu;
  try {
    pcpu = resolve_proxy_cpu_on(o, run.hosts[1]);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ssh_throughput: %s\n", e.what());
    run.cleanup();
    return kExitUsage;
  }
  settle_placement(o, run.hosts, pcpu, ad, doc);
  if (!earlier_run_fits_hosts(earlier, doc, file.path)) {
    run.cleanup();
    return kExitUsage;
  }
  return 0;
}

// The project's targets from this run's own brackets (bench/targets.h): the sandbox on AF_XDP
// against each baseline at the first payload size; those it did not measure say so.
void judge_targets(nlohmann::json& doc, uint32_t payload) {
  TargetSubject subject;
  subject.payload = payload;
  doc["targets"] = evaluate_targets(doc, subject);
  doc["targets_subject"] = {{"method", subject.method}, {"variant", subject.variant},
                            {"payload_bytes", subject.payload}, {"protection", subject.protection},
                            {"criterion", subject.criterion}};
}

int run(int argc, char** argv) {
  SshThroughputOptions o;
  CLI::App app{"ssh_throughput: the throughput experiment across real hosts over SSH (bench/README.md)"};
  add_ssh_throughput_flags(app, o);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : kExitUsage;
  }
  // Everything that can be checked before touching a host; resuming: the same --out and the same
  // configuration keep what the earlier run finished.
  SshPlan plan;
  EarlierRun earlier;
  nlohmann::json config;
  try {
    plan = plan_run(o);
    install_signal_handlers();
    config = config_json(o, plan, argc, argv);
    earlier = read_earlier_ssh_run(o, plan, config);
  } catch (const UsageError& e) {
    std::fprintf(stderr, "ssh_throughput: %s\n", e.message.c_str());
    return kExitUsage;
  }
  ResultFile file{initial_document(o, plan, std::move(config)), plan.out_path, earlier.finished};

  RunHosts run(o);
  char tmpl[] = "/tmp/ulsnet-ssh.XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    std::perror("ssh_throughput: mkdtemp");
    return kExitSetup;
  }
  run.local_dir = tmpl;
  for (auto [role, target] : {std::pair{"sender", o.sender}, {"proxy", o.proxy}, {"receiver", o.receiver}})
    run.hosts.push_back({role, target, ssh_options_of(o), "", nlohmann::json()});
  Addressing ad;
  if (int code = prepare_or_exit(run, plan, ad)) return code;
  if (int code = settle_hosts_or_exit(o, run, earlier, ad, file)) return code;
  file.write(false);

  JobRunner jobs(o, plan, run, ad, file);
  for (const SshJob& job : plan.jobs) jobs.run_job(job);
  jobs.record_common_load();
  run.cleanup();
  file.doc["cleanup"] = run.cleanup_log;
  judge_targets(file.doc, plan.payloads.front());
  file.write(!g_interrupted);
  std::fprintf(stderr, "ssh_throughput: wrote %s\n", plan.out_path.c_str());
  if (g_interrupted) return kExitInterrupted;
  return jobs.any_error() ? kExitPointError : 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ssh_throughput: %s\n", e.what());
    return kExitSetup;
  }
}
