// //bench:throughput's flags and their checks: see bench/throughput_options.h.
#include "bench/throughput_options.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include <fmt/core.h>

#include "baselines/registry.h"
#include "bench/topology.h"
#include "bench/traffic.h"

namespace ulsnet {
namespace {

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

// Flags that only one kind of hosts takes; naming one for the other is an error.
const std::vector<std::string> kNetnsOnlyFlags = {
    "--generator", "--sink", "--batch", "--protection", "--busy-poll", "--no-need-wakeup", "--no-veth-napi",
    "--napi-on-sender-cpu", "--napi-priority", "--proxy-priority", "--no-pin", "--no-calibrate", "--max-packets", "--rates-all-sizes", "--no-search",
    "--search-duration", "--common-load", "--no-sweep", "--competitors", "--no-stall-probe", "--stall-threshold-ms",
    "--retry-disturbed"};
const std::vector<std::string> kVmOnlyFlags = {"--accel", "--vm-protection", "--vm-icount", "--vm-cost-rate",
                                               "--vm-cost-count", "--vm-cost-reps", "--vm-search",
                                               "--vm-tcg-reps", "--vm-tcg-search-trials"};

// What each point runs: methods, sizes, rates, trials, endpoints, the proxy host.
void add_point_flags(CLI::App& app, ThroughputOptions& o) {
  app.add_option("--methods", o.methods,
                 "methods to run, as name or name:variant (default: all, every variant but those run only when named: " +
                     named_only_variants() + ")")
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
}

// The NDR/PDR search and the host-stall probe.
void add_search_flags(CLI::App& app, ThroughputOptions& o) {
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
}

// The sweep, the common load, resuming, placement and the kind of hosts.
void add_load_and_host_flags(CLI::App& app, ThroughputOptions& o) {
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
}

// --hosts=vm only.
void add_vm_flags(CLI::App& app, ThroughputOptions& o) {
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

}  // namespace

// An offered rate: "max" or a finite number of packets per second above 0.
std::optional<double> parse_rate(const std::string& r) {
  if (r != "max") {
    char* end = nullptr;
    const double v = std::strtod(r.c_str(), &end);
    if (end == r.c_str() || *end != '\0' || !std::isfinite(v) || v <= 0 || v > 1e9) return std::nullopt;
  }
  return parse_offered_rate(r);
}

void add_throughput_flags(CLI::App& app, ThroughputOptions& o) {
  add_point_flags(app, o);
  add_search_flags(app, o);
  add_load_and_host_flags(app, o);
  add_vm_flags(app, o);
}

bool flags_fit_hosts(const CLI::App& app, const std::string& hosts) {
  if (hosts == "vm") {
    for (const std::string& f : kNetnsOnlyFlags)
      if (app.count(f)) {
        fmt::print(stderr, "throughput: {} does not apply to --hosts=vm\n", f);
        return false;
      }
    return true;
  }
  for (const std::string& f : kVmOnlyFlags)
    if (app.count(f)) {
      fmt::print(stderr, "throughput: {} applies to --hosts=vm only\n", f);
      return false;
    }
  return true;
}

void apply_quick_defaults(ThroughputOptions& o, const CLI::App& app) {
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

void apply_quick_defaults(VmThroughputOptions& o) {
  if (o.methods.empty())
    o.methods = {"sandbox:uls", "kernel-socket:batched", "raw-socket:af_packet", "user-thread:af_packet"};
  o.duration = std::min(o.duration, 2.0);
}

VmThroughputOptions vm_options_from(const ThroughputOptions& o, const CLI::App& app, int argc, char** argv) {
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
  return v;
}

bool netns_prerequisites_met() {
  if (geteuid() != 0) {
    fmt::print(stderr, "throughput: must run as root (it creates network namespaces and packet sockets)\n");
    return false;
  }
  for (const char* tool : {"ip", "ethtool"}) {
    // Looked up as run_command() runs them (its search path adds /usr/sbin, which a restricted
    // PATH, e.g. Bazel's test environment, leaves out).
    try {
      run_command(std::string("command -v ") + tool + " >/dev/null");
    } catch (const std::exception&) {
      fmt::print(stderr, "throughput: '{}' not found: run tools/setup.sh\n", tool);
      return false;
    }
  }
  return true;
}

bool search_fits_duration(const ThroughputOptions& o) {
  if (o.search_duration > o.duration) {
    fmt::print(stderr, "throughput: --search-duration ({}) is longer than the final trials (--duration {})\n",
               o.search_duration, o.duration);
    return false;
  }
  return true;
}

bool check_vm_options(const VmThroughputOptions& o, std::vector<double>& rates) {
  for (const auto& m : o.modes)
    if (m != "relay" && m != "router") {
      fmt::print(stderr, "throughput: bad mode '{}' (relay, router)\n", m);
      return false;
    }
  for (const auto& r : o.rates) {
    const std::optional<double> v = parse_offered_rate(r);
    if (!v || (*v != 0 && (*v < 1 || *v > 1e6))) {
      fmt::print(stderr, "throughput: bad rate '{}' (use 'max' or datagrams per second)\n", r);
      return false;
    }
    rates.push_back(*v);
  }
  if (o.protection != "kernel" && o.protection != "none") {
    fmt::print(stderr, "throughput: --vm-protection is kernel or none\n");
    return false;
  }
  if (!(o.cost_rate >= 1) || o.cost_count < 100) {
    fmt::print(stderr, "throughput: the cost runs need a rate >= 1/s and >= 100 datagrams\n");
    return false;
  }
  if (o.icount != "cost" && o.icount != "off" && o.icount != "all") {
    fmt::print(stderr, "throughput: icount is cost, off or all\n");
    return false;
  }
  if (o.icount != "off" && o.accel == "kvm") {
    fmt::print(stderr, "throughput: instruction counting needs TCG (--accel kvm: turn icount off)\n");
    return false;
  }
  return true;
}

bool check_vm_search_options(VmThroughputOptions& o) {
  if (o.payloads.empty()) {
    fmt::print(stderr, "throughput: --sizes names no payload size\n");
    return false;
  }
  if (!o.loads.empty()) o.search = true;  // the sweep's fractions are of the PDR
  if (o.final_trials < 1 || o.final_trials % 2 == 0 || o.search_trials < 2 || !(o.search_precision > 0)) {
    fmt::print(stderr, "throughput: the search needs an odd --final-trials, --search-trials >= 2 and a precision > 0\n");
    return false;
  }
  return true;
}

}  // namespace ulsnet
