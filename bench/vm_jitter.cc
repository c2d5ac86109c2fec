// //bench:vm_jitter: claim C2 on the real ULS kernel. Boots the patched kernel (kernel/) in a
// virtual host and compares how regularly a periodic service is invoked when it is
//   - an extension run by upcall in whatever process is current (no scheduling), and
//   - a separate user thread woken at each period (the paper's user-thread form),
// with and without CPU hogs competing for the guest's one CPU, for each protection mode asked
// for, in --launches separate boots per mode (the spread across boots is what a repetition of the
// experiment would see). The guest side is bench/guest/uls_jitter.c; this side builds the kernel
// and initramfs, launches the VM (kernel/vm.sh), parses every invocation's due and run times from
// the serial log, and writes one JSON file (configuration, environment, every raw sample,
// statistics after the warm-up, the target "uls jitter <= 0.2x user-thread jitter with two hogs"
// per launch and its median over launches).
//
// The guest's clock (--clock): under TCG a guest's wall clock runs with the emulator, so host load
// and translation move every delay from one boot to the next; with `icount` (QEMU -icount, TCG
// only) guest time is its instruction count (1 ns per instruction), which nothing outside the
// guest can move. `auto` (default) takes icount under TCG and the wall clock under KVM; each row
// says which clock ran, from QEMU's command line.
//
// The file is written after every launch ("complete": false until the last); the same --out
// resumes it, keeping each launch that finished (bench/resume.h; --fresh starts over). Needs root
// (QEMU in a private network namespace). See bench/README.md.
#include <unistd.h>

#include <chrono>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "bench/environment.h"
#include "bench/resume.h"
#include "bench/stats.h"
#include "bench/vm_report.h"
#include "bench/run_lock.h"
#include "kernel/vm_harness.h"

namespace ulsnet {
namespace {

struct Options {
  uint32_t period_us = 1000;
  uint32_t count = 2000;
  uint32_t warmup_ms = 50;
  uint32_t launches = 2;
  uint32_t jobs = 0;  // launches side by side; 0: as many as CPUs (at most 4) under icount, else 1
  std::vector<uint32_t> hogs = {0, 2};
  std::vector<std::string> protection = {"kernel"};
  std::string accel = "auto";
  std::string clock = "auto";
  std::string out;
  bool quick = false;
  bool fresh = false;
  int timeout_s = 0;
  std::vector<std::string> argv;
};

using vm::last_line;
using vm::runfile;
using vm::sh;
using vm::slurp;

struct Series {
  std::vector<uint64_t> due, ran;
  std::map<std::string, long long> counters;  // from the ULSNET-JITTER-RUN line
};

// Percentile (nearest rank) of sorted v.
double pct(const std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  size_t i = static_cast<size_t>(std::ceil(p * static_cast<double>(v.size()))) ;
  return v[std::min(v.size() - 1, i == 0 ? 0 : i - 1)];
}

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / static_cast<double>(v.size());
}

double stddev(const std::vector<double>& v) {
  if (v.size() < 2) return 0;
  double m = mean(v), s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / static_cast<double>(v.size() - 1));
}

// The statistics of one row, over the samples after the first `warmup` (which are counted and
// summarized apart: the first upcall in each process maps the region there, a real but one-time
// cost).
nlohmann::json summarize(const Series& s, uint32_t period_us, uint32_t count, size_t warmup) {
  std::vector<double> delay, interval, warm;
  for (size_t i = 0; i < s.ran.size(); ++i) {
    const double d = (static_cast<double>(s.ran[i]) - static_cast<double>(s.due[i])) / 1e3;
    if (i < warmup) {
      warm.push_back(d);
      continue;
    }
    delay.push_back(d);
    if (i > warmup) interval.push_back((static_cast<double>(s.ran[i]) - static_cast<double>(s.ran[i - 1])) / 1e3);
  }
  std::vector<double> sorted = delay;
  std::sort(sorted.begin(), sorted.end());
  nlohmann::json j = {{"samples", delay.size()},
                      {"expected", count},
                      {"warmup_samples", std::min(warmup, s.ran.size())},
                      {"warmup_delay_us",
                       {{"mean", mean(warm)}, {"max", warm.empty() ? 0 : *std::max_element(warm.begin(), warm.end())}}},
                      {"delay_us",
                       {{"mean", mean(delay)},
                        {"stddev", stddev(delay)},
                        {"p50", pct(sorted, 0.50)},
                        {"p99", pct(sorted, 0.99)},
                        {"max", sorted.empty() ? 0 : sorted.back()}}},
                      {"interval_us", {{"mean", mean(interval)}, {"stddev", stddev(interval)}, {"period", period_us}}},
                      {"kernel_counters", s.counters}};
  return j;
}

// The guest's serial log: every invocation (ULSNET-JS) and each run's counters
// (ULSNET-JITTER-RUN) into `series`; true when the guest said it finished (ULSNET-JITTER-DONE rc=0).
bool parse_log(const std::string& log, std::map<std::pair<std::string, int>, Series>& series) {
  std::istringstream in(log);
  std::string line;
  bool done = false;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::istringstream w(line);
    std::string tag;
    w >> tag;
    if (tag == "ULSNET-JS") {
      std::string svc;
      int h;
      unsigned long long due, ran;
      if (w >> svc >> h >> due >> ran) {
        series[{svc, h}].due.push_back(due);
        series[{svc, h}].ran.push_back(ran);
      }
    } else if (tag == "ULSNET-JITTER-RUN") {
      std::string kv, svc;
      int h = -1;
      std::map<std::string, long long> c;
      while (w >> kv) {
        auto eq = kv.find('=');
        if (eq == std::string::npos) continue;
        std::string k = kv.substr(0, eq), v = kv.substr(eq + 1);
        try {
          if (k == "service") svc = v;
          else if (k == "hogs") h = std::stoi(v);
          else c[k] = std::stoll(v);
        } catch (const std::exception&) {  // a garbled line: its counter is left out
        }
      }
      series[{svc, h}].counters = c;
    } else if (tag == "ULSNET-JITTER-DONE") {
      done = line.find("rc=0") != std::string::npos;
    }
  }
  return done;
}

// --protection and --clock against --accel; false (exit 2) after one line on stderr.
bool options_valid(const Options& o) {
  for (const std::string& prot : o.protection)
    if (prot != "kernel" && prot != "none") {
      std::fprintf(stderr, "vm_jitter: --protection takes kernel and/or none, not '%s'\n", prot.c_str());
      return false;
    }
  if (o.clock == "icount" && o.accel == "kvm") {
    std::fprintf(stderr,
                 "vm_jitter: --clock icount needs TCG (QEMU counts instructions only there): not --accel kvm\n");
    return false;
  }
  return true;
}

nlohmann::json config_json(const Options& o) {
  return {{"period_us", o.period_us}, {"count", o.count}, {"hogs", o.hogs},
          {"warmup_ms", o.warmup_ms}, {"launches", o.launches}, {"clock_requested", o.clock},
          {"protection", o.protection}, {"accel_requested", o.accel}, {"quick", o.quick},
          {"guest", {{"vcpus", 1}, {"mem_mb", 256}}},
          {"jitter_definition",
           "standard deviation of the invocation delay (run time minus due time) after the "
           "warm-up (the samples due in a row's first warmup_ms); the interval statistics are "
           "reported too"}};
}

// Which clock the guest keeps and how many launches run side by side.
struct ClockPlan {
  nlohmann::json json;
  std::string clock, launch_accel;
  size_t jobs = 1;
};

// The clock plan, decided before the first launch from the accelerator a launch would get
// (under auto: one probe guest, cached by kernel/vm.sh). 0, or the exit status after one line on
// stderr (the prepared image cleaned up).
int plan_clock(const Options& o, const vm::Prepared& prep, ClockPlan& plan) {
  plan.json = {{"requested", o.clock}};
  plan.clock = o.clock;
  plan.launch_accel = o.accel;
  if (o.clock != "wall") {
    const vm::Accelerator acc = vm::resolve_accelerator(prep, o.accel);
    if (!acc.error.empty()) {
      std::fprintf(stderr, "vm_jitter: %s\n", acc.error.c_str());
      vm::cleanup(prep, true);
      return 1;
    }
    plan.json["accelerator"] = acc.name;
    plan.json["accelerator_reason"] = acc.reason;
    if (o.clock == "auto") plan.clock = acc.name == "tcg" ? "icount" : "wall";
  }
  if (plan.clock == "icount") {
    // sleep=off: idle time too is the guest's own (its clock jumps to the next timer), so nothing
    // outside the guest, not even a second launch beside it, moves a delay.
    plan.launch_accel = "tcg --icount --icount-sleep off";
    plan.json["why"] = o.clock == "auto"
                           ? "the accelerator is TCG: its wall clock moves with the emulator and the host's load, "
                             "so each delay is taken in guest instruction time (QEMU -icount: 1 ns per "
                             "instruction), which nothing outside the guest moves"
                           : "asked for (--clock icount)";
  } else {
    plan.json["why"] = o.clock == "auto" ? "the accelerator is not TCG: the guest's clock is the host's"
                                         : "asked for (--clock wall)";
  }
  plan.json["clock"] = plan.clock;
  // Launches side by side only where they cannot disturb each other's clocks.
  const unsigned cpus = std::max(1u, std::thread::hardware_concurrency());
  if (plan.clock == "icount") plan.jobs = o.jobs ? o.jobs : std::min(cpus, 4u);
  else if (o.jobs > 1) {
    std::fprintf(stderr, "vm_jitter: --jobs %u: launches run side by side only under --clock icount (on the wall "
                 "clock they would delay each other)\n", o.jobs);
    vm::cleanup(prep, false);
    return 2;
  }
  plan.json["parallel_launches"] = plan.jobs;
  return 0;
}

// One launch of the guest: a (protection, launch) the earlier file did not finish.
struct Task {
  std::string prot, point, logs;
  uint32_t launch = 0;
  int rc = -1;
  std::string out;
};

// The rows of one finished launch into doc["runs"]; `accel` set to what it ran under; a launch
// that did not complete counts in `failures`.
void read_launch(const Task& t, const Options& o, size_t warmup, nlohmann::json& doc, std::string& accel,
                 int& failures) {
  const std::string log = slurp(t.logs + "/single.log");
  accel = last_line(slurp(t.logs + "/accel"));
  // The clock that ran, from QEMU's own command line (not from what was asked).
  std::string ran_clock = "unknown", icount_spec;
  try {
    const vmrun::QemuRun q = vmrun::parse_qemu_cmdline(slurp(t.logs + "/single.cmdline"));
    ran_clock = q.icount ? "icount" : "wall";
    icount_spec = q.icount_spec;
  } catch (const std::exception&) {
  }
  std::map<std::pair<std::string, int>, Series> series;
  const bool done = parse_log(log, series);
  if (t.rc != 0 || !done) {
    std::fprintf(stderr, "vm_jitter: the guest run (%s, launch %u) did not complete; log in %s\n%s\n",
                 t.prot.c_str(), t.launch, t.logs.c_str(), t.out.c_str());
    ++failures;
  }
  for (auto& [key, s] : series) {
    nlohmann::json r = summarize(s, o.period_us, o.count, warmup);
    r["point"] = t.point;  // one launch: its rows are kept or re-run together
    if (t.rc != 0 || !done) r["error"] = "the guest run did not complete";
    r["accel"] = accel;
    r["clock"] = ran_clock;
    if (!icount_spec.empty()) r["icount_spec"] = icount_spec;
    r["launch"] = t.launch;
    r["protection"] = t.prot;
    r["service"] = key.first == "thread" ? "user-thread" : "uls-upcall";
    r["hogs"] = key.second;
    r["path"] = key.first == "thread"
                    ? "user thread, clock_nanosleep(TIMER_ABSTIME), SCHED_OTHER"
                    : "extension bound to a periodic hrtimer, upcall in the current process (real ULS kernel)";
    r["raw"] = {{"due_ns", s.due}, {"ran_ns", s.ran}};
    doc["runs"].push_back(r);
  }
}

// The target: with two hogs, uls jitter <= 0.2x user-thread jitter (per protection mode), in
// every launch; the ratio reported is the median over launches. Next to it, how much sooner
// the upcall runs (mean delay ratio), which the claim also says.
nlohmann::json targets_json(const Options& o, const nlohmann::json& runs, const std::string& accel,
                            const std::string& clock) {
  nlohmann::json targets = nlohmann::json::array();
  for (const std::string& prot : o.protection) {
    std::vector<double> ratios, delay_ratios, ujit, tjit;
    for (uint32_t launch = 1; launch <= o.launches; ++launch) {
      const nlohmann::json *u = nullptr, *t = nullptr;
      for (const auto& r : runs)
        if (r["protection"] == prot && r["hogs"] == 2 && r.value("launch", 1u) == launch && !r.contains("error"))
          (r["service"] == "uls-upcall" ? u : t) = &r;
      if (u == nullptr || t == nullptr) continue;
      const double us = (*u)["delay_us"]["stddev"], ts = (*t)["delay_us"]["stddev"];
      const double um = (*u)["delay_us"]["mean"], tm = (*t)["delay_us"]["mean"];
      ujit.push_back(us);
      tjit.push_back(ts);
      if (ts > 0) ratios.push_back(us / ts);
      if (tm > 0) delay_ratios.push_back(um / tm);
    }
    if (ratios.empty()) continue;
    const double ratio = *median(ratios);
    const bool met = std::all_of(ratios.begin(), ratios.end(), [](double x) { return x <= 0.2; });
    targets.push_back({{"name", "uls jitter <= 0.2x user-thread jitter, two CPU hogs"},
                       {"protection", prot},
                       {"uls_jitter_us", *median(ujit)},
                       {"user_thread_jitter_us", *median(tjit)},
                       {"ratio", ratio},
                       {"ratio_per_launch", ratios},
                       {"mean_delay_ratio",
                        delay_ratios.empty() ? nlohmann::json() : nlohmann::json(*median(delay_ratios))},
                       {"mean_delay_ratio_per_launch", delay_ratios},
                       {"launches", ratios.size()},
                       {"limit", 0.2},
                       {"met", met},
                       {"accel", accel},
                       {"clock", clock}});
  }
  return targets;
}

// The table and the targets on stdout.
void print_table(const Options& o, const nlohmann::json& doc, const std::string& accel, const std::string& clock,
                 size_t warmup, const std::string& out) {
  fmt::print("vm_jitter on the patched kernel, accelerator {}, {} clock (period {} us, {} invocations per row, the "
             "first {} a warm-up)\n",
             accel, clock, o.period_us, o.count, warmup);
  fmt::print("{:<10} {:>6} {:<12} {:>4} {:>8} {:>10} {:>10} {:>10} {:>10} {:>12}\n", "protect", "launch", "service",
             "hogs", "samples", "mean us", "sd us", "p99 us", "max us", "interval sd");
  for (const auto& r : doc["runs"])
    fmt::print("{:<10} {:>6} {:<12} {:>4} {:>8} {:>10.1f} {:>10.1f} {:>10.1f} {:>10.1f} {:>12.1f}\n",
               r["protection"].get<std::string>(), r.value("launch", 1), r["service"].get<std::string>(),
               r["hogs"].get<int>(),
               r["samples"].get<size_t>(), r["delay_us"]["mean"].get<double>(),
               r["delay_us"]["stddev"].get<double>(), r["delay_us"]["p99"].get<double>(),
               r["delay_us"]["max"].get<double>(), r["interval_us"]["stddev"].get<double>());
  for (const auto& t : doc["targets"])
    fmt::print("target ({}): uls/user-thread jitter with two hogs = {:.2f}, median of {} launches (limit 0.2, "
               "in every launch): {}; mean delay ratio {}\n",
               t["protection"].get<std::string>(), t["ratio"].get<double>(), t["launches"].get<size_t>(),
               t["met"].get<bool>() ? "met" : "NOT met",
               t["mean_delay_ratio"].is_number() ? fmt::format("{:.3f}", t["mean_delay_ratio"].get<double>()) : "-");
  fmt::print("results: {}\n", out);
}

// The launches to run: every (protection, launch) the earlier file did not finish; the finished
// ones' rows go into doc["runs"] as they were.
std::vector<Task> plan_tasks(const Options& o, resume::Earlier& earlier, const std::string& work,
                             const std::string& out_path, nlohmann::json& doc, std::string& accel) {
  std::vector<Task> tasks;
  for (const std::string& prot : o.protection)
    for (uint32_t launch = 1; launch <= o.launches; ++launch) {
      const std::string point = prot + "#" + std::to_string(launch);
      if (const auto* rows = earlier.take(point)) {
        for (const auto& r : *rows) doc["runs"].push_back(r);
        accel = (*rows)[0].value("accel", accel);
        std::fprintf(stderr, "vm_jitter: protection %s, launch %u: kept from %s\n", prot.c_str(), launch,
                     out_path.c_str());
        continue;
      }
      tasks.push_back({prot, point, work + "/" + prot + "-" + std::to_string(launch), launch});
    }
  return tasks;
}

// tasks[first, last) launched side by side, each in its own thread, until all have ended.
void launch_batch(std::vector<Task>& tasks, size_t first, size_t last, const Options& o, const vm::Prepared& prep,
                  const ClockPlan& plan, const std::string& hogs, int timeout, const std::string& eta) {
  std::vector<std::thread> running;
  for (size_t i = first; i < last; ++i) {
    Task& t = tasks[i];
    std::string append = "ulsnet.args=" + std::to_string(o.period_us) + "," + std::to_string(o.count) + "," + hogs;
    if (t.prot == "none") append += " uls.protect=0";
    std::fprintf(stderr,
                 "vm_jitter: protection %s, launch %u of %u: %u periods of %u us per service, hogs %s, %s clock "
                 "(up to %d s%s)\n",
                 t.prot.c_str(), t.launch, o.launches, o.count, o.period_us, hogs.c_str(), plan.clock.c_str(), timeout,
                 eta.c_str());
    const std::string args =
        "--hosts 1 --accel " + plan.launch_accel + " --run /bin/uls_jitter_guest --append '" + append + "'";
    running.emplace_back([&t, &prep, args, timeout] {
      std::tie(t.rc, t.out) = vm::launch(prep.image, prep.initrd, t.logs, args, timeout);
    });
  }
  for (auto& th : running) th.join();
}

int run(const Options& o) {
  if (!options_valid(o)) return 2;
  const nlohmann::json config = config_json(o);
  // Before the kernel is built: a file that cannot be resumed is refused at once.
  const std::string out_path = result_path(o.out, "vm-jitter");
  resume::Earlier earlier;
  try {
    earlier = resume::load(o.out.empty() ? "" : out_path, o.fresh, "vm_jitter", config);
  } catch (const resume::Refused& e) {
    std::fprintf(stderr, "vm_jitter: %s\n", e.what());
    return 2;
  }
  const vm::Prepared prep = vm::prepare({runfile("bench/uls_jitter_guest")});
  if (!prep.error.empty()) {
    std::fprintf(stderr, "vm_jitter: %s\n", prep.error.c_str());
    return prep.usage_error ? 2 : 1;
  }
  ClockPlan plan;
  if (const int rc = plan_clock(o, prep, plan); rc != 0) return rc;
  const size_t warmup = o.period_us ? size_t(uint64_t{o.warmup_ms} * 1000 / o.period_us) : 0;
  std::string hogs;
  for (uint32_t h : o.hogs) hogs += (hogs.empty() ? "" : ":") + std::to_string(h);
  // Guest time: per hog setting, both services, COUNT periods each, plus slack for TCG.
  const int timeout = o.timeout_s ? o.timeout_s
                                  : 120 + static_cast<int>(o.hogs.size() * 2 * 3 *
                                                           (uint64_t{o.count} * o.period_us) / 1000000);

  nlohmann::json doc;
  doc["experiment"] = "vm_jitter";
  doc["config"] = config;
  doc["config"]["argv"] = o.argv;
  doc["guest_image"] = prep.image;  // per run (a temporary directory): not part of the configuration
  doc["environment"] = host_environment("vm");
  doc["clock_plan"] = plan.json;
  doc["runs"] = nlohmann::json::array();
  doc["complete"] = false;
  std::string accel = "unknown";
  int failures = 0;
  std::vector<Task> tasks = plan_tasks(o, earlier, prep.workdir, out_path, doc, accel);
  resume::Eta eta(30 + std::max(0.0, double(timeout - 120) / 3));
  const size_t jobs = plan.jobs;
  for (size_t first = 0; first < tasks.size(); first += jobs) {
    const size_t last = std::min(tasks.size(), first + jobs);
    const auto t0 = std::chrono::steady_clock::now();
    launch_batch(tasks, first, last, o, prep, plan, hogs, timeout,
                 eta.left((tasks.size() - first + jobs - 1) / jobs));
    for (size_t i = first; i < last; ++i) read_launch(tasks[i], o, warmup, doc, accel, failures);
    eta.measured(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    doc["environment"]["accel"] = accel;
    write_result(doc, out_path, "vm-jitter");
  }
  doc["environment"]["accel"] = accel;
  doc["environment"]["guest_kernel"] = "Linux 6.1 (Debian linux-source-6.1) + kernel/patches (ulsnet ULS)";
  doc["targets"] = targets_json(o, doc["runs"], accel, plan.clock);
  doc["complete"] = failures == 0;
  doc["points_reused"] = earlier.reused;
  doc["run_seconds"] = seconds_since_start();

  const std::string out = write_result(doc, out_path, "vm-jitter");
  print_table(o, doc, accel, plan.clock, warmup, out);
  vm::cleanup(prep, failures != 0);
  return failures ? 1 : 0;
}

}  // namespace
}  // namespace ulsnet

int main(int argc, char** argv) {
  ulsnet::Options o;
  CLI::App app{"Invocation jitter of an upcall-run extension vs a user thread, on the real ULS kernel in a VM"};
  app.add_option("--period-us", o.period_us, "service period (default 1000)")->check(CLI::Range(10u, 1000000u));
  app.add_option("--count", o.count, "invocations per service and hog setting (default 2000)")
      ->check(CLI::Range(2u, 100000u));
  app.add_option("--hogs", o.hogs, "CPU hogs on the guest's CPU, a list (default 0,2)")
      ->delimiter(',')
      ->check(CLI::Range(0u, 8u));
  app.add_option("--protection", o.protection, "kernel (uls.protect=1) and/or none (uls.protect=0)")
      ->delimiter(',');
  app.add_option("--accel", o.accel, "auto, kvm or tcg (default auto)")->check(CLI::IsMember({"auto", "kvm", "tcg"}));
  app.add_option("--clock", o.clock,
                 "the guest's clock: icount (QEMU -icount, TCG: guest instruction time, which host load cannot "
                 "move), wall, or auto (default: icount under TCG, wall under KVM)")
      ->check(CLI::IsMember({"auto", "icount", "wall"}));
  app.add_option("--launches", o.launches, "separate boots per protection mode (default 2; --quick 1)")
      ->check(CLI::Range(1u, 20u));
  app.add_option("--jobs", o.jobs,
                 "launches side by side, under --clock icount only (default: one per CPU, at most 4; 1 on the "
                 "wall clock)")
      ->check(CLI::Range(1u, 16u));
  app.add_option("--warmup-ms", o.warmup_ms,
                 "samples due in each row's first N ms are left out of its statistics (default 50)")
      ->check(CLI::Range(0u, 10000u));
  app.add_option("--out", o.out, "JSON output path (default results/vm-jitter-<time>.json)");
  app.add_option("--timeout", o.timeout_s, "seconds per guest run (default: from the configuration)");
  app.add_flag("--quick", o.quick, "500 invocations per row, one launch per protection mode");
  app.add_flag("--fresh", o.fresh, "--out names an existing file: start over instead of resuming it");
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);  // prints the message
    return 2;     // a usage error, as every runner here
  }
  o.argv.assign(argv, argv + argc);
  if (o.quick) o.count = std::min<uint32_t>(o.count, 500);
  if (o.quick && !app.count("--launches")) o.launches = 1;
  if (uint64_t{o.warmup_ms} * 1000 >= uint64_t{o.count} * o.period_us) {
    std::fprintf(stderr, "vm_jitter: --warmup-ms %u leaves no sample of %u periods of %u us\n", o.warmup_ms, o.count,
                 o.period_us);
    return 2;
  }
  const std::optional<ulsnet::RunLock> lock = ulsnet::RunLock::take_or_explain("vm_jitter", argc, argv);
  if (!lock) return 3;
  try {
    return ulsnet::run(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vm_jitter: %s\n", e.what());
    return 1;
  }
}
