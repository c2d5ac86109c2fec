// //bench:vm_jitter: claim C2 on the real ULS kernel. Boots the patched kernel (kernel/) in a
// virtual host and compares how regularly a periodic service is invoked when it is
//   - an extension run by upcall in whatever process is current (no scheduling), and
//   - a separate user thread woken at each period (the paper's user-thread form),
// with and without CPU hogs competing for the guest's one CPU, for each protection mode asked
// for. The guest side is bench/guest/uls_jitter.c; this side builds the kernel and initramfs,
// launches the VM (kernel/vm.sh), parses every invocation's due and run times from the serial log,
// and writes one JSON file (configuration, environment, every raw sample, statistics, the target
// "uls jitter <= 0.2x user-thread jitter with two hogs"). The file is written after every launch
// ("complete": false until the last); the same --out resumes it, keeping each protection mode whose
// launch finished (bench/resume.h; --fresh starts over). Needs root (QEMU in a private network
// namespace). See bench/README.md.
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
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "bench/environment.h"
#include "bench/resume.h"
#include "kernel/vm_harness.h"

namespace ulsnet {
namespace {

struct Options {
  uint32_t period_us = 1000;
  uint32_t count = 2000;
  std::vector<uint32_t> hogs = {0, 2};
  std::vector<std::string> protection = {"kernel"};
  std::string accel = "auto";
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

nlohmann::json summarize(const Series& s, uint32_t period_us, uint32_t count) {
  std::vector<double> delay, interval;
  for (size_t i = 0; i < s.ran.size(); ++i) {
    delay.push_back((static_cast<double>(s.ran[i]) - static_cast<double>(s.due[i])) / 1e3);
    if (i) interval.push_back((static_cast<double>(s.ran[i]) - static_cast<double>(s.ran[i - 1])) / 1e3);
  }
  std::vector<double> sorted = delay;
  std::sort(sorted.begin(), sorted.end());
  nlohmann::json j = {{"samples", s.ran.size()},
                      {"expected", count},
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

int run(const Options& o) {
  for (const std::string& prot : o.protection)
    if (prot != "kernel" && prot != "none") {
      std::fprintf(stderr, "vm_jitter: --protection takes kernel and/or none, not '%s'\n", prot.c_str());
      return 2;
    }
  nlohmann::json config = {{"period_us", o.period_us}, {"count", o.count}, {"hogs", o.hogs},
                           {"protection", o.protection}, {"accel_requested", o.accel}, {"quick", o.quick},
                           {"guest", {{"vcpus", 1}, {"mem_mb", 256}}},
                           {"jitter_definition",
                            "standard deviation of the invocation delay (run time minus due time); the "
                            "interval statistics are reported too"}};
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
  const std::string &image = prep.image, &initrd = prep.initrd, &work = prep.workdir;
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
  doc["guest_image"] = image;  // per run (a temporary directory): not part of the configuration
  doc["environment"] = host_environment("vm");
  doc["runs"] = nlohmann::json::array();
  doc["complete"] = false;
  std::string accel = "unknown";
  int failures = 0;
  resume::Eta eta(30 + std::max(0.0, double(timeout - 120) / 3));
  size_t left = o.protection.size();
  for (const std::string& prot : o.protection) {
    --left;
    if (const auto* rows = earlier.take(prot)) {
      for (const auto& r : *rows) doc["runs"].push_back(r);
      accel = (*rows)[0].value("accel", accel);
      std::fprintf(stderr, "vm_jitter: protection %s: kept from %s\n", prot.c_str(), out_path.c_str());
      continue;
    }
    const auto t0 = std::chrono::steady_clock::now();
    const std::string logs = work + "/" + prot;
    std::string append = "ulsnet.args=" + std::to_string(o.period_us) + "," + std::to_string(o.count) + "," + hogs;
    if (prot == "none") append += " uls.protect=0";
    std::fprintf(stderr, "vm_jitter: protection %s: %u periods of %u us per service, hogs %s (up to %d s%s)\n",
                 prot.c_str(), o.count, o.period_us, hogs.c_str(), timeout, eta.left(left + 1).c_str());
    auto [vrc, vout] = vm::launch(image, initrd, logs,
                                  "--hosts 1 --accel " + o.accel + " --run /bin/uls_jitter_guest --append '" +
                                      append + "'",
                                  timeout);
    const std::string log = slurp(logs + "/single.log");
    accel = last_line(slurp(logs + "/accel"));
    std::map<std::pair<std::string, int>, Series> series;
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
          if (k == "service") svc = v;
          else if (k == "hogs") h = std::stoi(v);
          else c[k] = std::stoll(v);
        }
        series[{svc, h}].counters = c;
      } else if (tag == "ULSNET-JITTER-DONE") {
        done = line.find("rc=0") != std::string::npos;
      }
    }
    if (vrc != 0 || !done) {
      std::fprintf(stderr, "vm_jitter: the guest run (%s) did not complete; log in %s\n%s\n", prot.c_str(),
                   logs.c_str(), vout.c_str());
      ++failures;
    }
    for (auto& [key, s] : series) {
      nlohmann::json r = summarize(s, o.period_us, o.count);
      r["point"] = prot;  // one launch per protection mode: its rows are kept or re-run together
      if (vrc != 0 || !done) r["error"] = "the guest run did not complete";
      r["accel"] = accel;
      r["protection"] = prot;
      r["service"] = key.first == "thread" ? "user-thread" : "uls-upcall";
      r["hogs"] = key.second;
      r["path"] = key.first == "thread"
                      ? "user thread, clock_nanosleep(TIMER_ABSTIME), SCHED_OTHER"
                      : "extension bound to a periodic hrtimer, upcall in the current process (real ULS kernel)";
      r["raw"] = {{"due_ns", s.due}, {"ran_ns", s.ran}};
      doc["runs"].push_back(r);
    }
    eta.measured(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    doc["environment"]["accel"] = accel;
    write_result(doc, out_path, "vm-jitter");
  }
  doc["environment"]["accel"] = accel;
  doc["environment"]["guest_kernel"] = "Linux 6.1 (Debian linux-source-6.1) + kernel/patches (ulsnet ULS)";

  // The target: with two hogs, uls jitter <= 0.2x user-thread jitter (per protection mode).
  nlohmann::json targets = nlohmann::json::array();
  for (const std::string& prot : o.protection) {
    const nlohmann::json *u = nullptr, *t = nullptr;
    for (const auto& r : doc["runs"])
      if (r["protection"] == prot && r["hogs"] == 2) (r["service"] == "uls-upcall" ? u : t) = &r;
    if (u == nullptr || t == nullptr) continue;
    double us = (*u)["delay_us"]["stddev"], ts = (*t)["delay_us"]["stddev"];
    double ratio = ts > 0 ? us / ts : 0;
    targets.push_back({{"name", "uls jitter <= 0.2x user-thread jitter, two CPU hogs"},
                       {"protection", prot},
                       {"uls_jitter_us", us},
                       {"user_thread_jitter_us", ts},
                       {"ratio", ratio},
                       {"limit", 0.2},
                       {"met", ratio <= 0.2},
                       {"accel", accel}});
  }
  doc["targets"] = targets;
  doc["complete"] = failures == 0;
  doc["points_reused"] = earlier.reused;
  doc["run_seconds"] = seconds_since_start();

  const std::string out = write_result(doc, out_path, "vm-jitter");

  fmt::print("vm_jitter on the patched kernel, accelerator {} (period {} us, {} invocations per row)\n", accel,
             o.period_us, o.count);
  fmt::print("{:<10} {:<12} {:>4} {:>8} {:>10} {:>10} {:>10} {:>10} {:>12}\n", "protect", "service", "hogs",
             "samples", "mean us", "sd us", "p99 us", "max us", "interval sd");
  for (const auto& r : doc["runs"])
    fmt::print("{:<10} {:<12} {:>4} {:>8} {:>10.1f} {:>10.1f} {:>10.1f} {:>10.1f} {:>12.1f}\n",
               r["protection"].get<std::string>(), r["service"].get<std::string>(), r["hogs"].get<int>(),
               r["samples"].get<size_t>(), r["delay_us"]["mean"].get<double>(),
               r["delay_us"]["stddev"].get<double>(), r["delay_us"]["p99"].get<double>(),
               r["delay_us"]["max"].get<double>(), r["interval_us"]["stddev"].get<double>());
  for (const auto& t : targets)
    fmt::print("target ({}): uls/user-thread jitter with two hogs = {:.2f} (limit 0.2): {}\n",
               t["protection"].get<std::string>(), t["ratio"].get<double>(),
               t["met"].get<bool>() ? "met" : "NOT met");
  fmt::print("results: {}\n", out);
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
  app.add_option("--out", o.out, "JSON output path (default results/vm-jitter-<time>.json)");
  app.add_option("--timeout", o.timeout_s, "seconds per guest run (default: from the configuration)");
  app.add_flag("--quick", o.quick, "500 invocations per row (a run under a minute)");
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
  try {
    return ulsnet::run(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vm_jitter: %s\n", e.what());
    return 1;
  }
}
