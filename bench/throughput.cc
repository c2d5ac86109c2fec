// //bench:throughput: every proxy method x mode x payload size x offered load x repetition on
// three hosts (network namespaces); a table on stdout, progress on stderr, one JSON file with
// the configuration, the environment and every raw sample. See bench/README.md.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include "baselines/proxy_method.h"
#include "bench/environment.h"
#include "bench/topology.h"
#include "bench/traffic.h"
#include "bench/trial.h"
#include "bench/vm_throughput.h"
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
  uint64_t max_packets = 5'000'000;
  bool pin = true;
  bool calibrate = true;
  bool search = true;
  double search_loss = 0.001;
  int search_steps = 6;
  double search_duration = 0.5;
  double search_max = 0;
  double common_load = 0;
};

nlohmann::json environment() {
  nlohmann::json env = host_environment("netns");
  env["checksum_mode"] = "full UDP checksums: tx checksum offload off on every veth";
  return env;
}

struct Job {
  const MethodInfo* info;
  std::string variant;
  ForwardMode mode;
  std::string protection = "n/a";  // sandbox only: the protection domain in force
};

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// The project's targets (README), computed from this run's own results: capacity ratios at the
// smallest size in relay mode, and latency and proxy-host CPU at the common load. A ratio whose
// numerator is censored at the generator's limit is a lower bound; one whose denominator is
// censored is an upper bound; both say so.
nlohmann::json evaluate_targets(const nlohmann::json& doc, const std::string& sandbox_protection) {
  // The sandbox entry is the one with the protection asked first (the strongest by default).
  auto fits = [&](const nlohmann::json& c, std::string_view m, std::string_view v) {
    return c["method"] == m && c["variant"] == v && c["mode"] == "relay" &&
           (m != "sandbox" || c.value("protection", "") == sandbox_protection);
  };
  auto cap = [&](std::string_view m, std::string_view v) -> const nlohmann::json* {
    for (auto& c : doc["capacity"])
      if (fits(c, m, v)) return &c;
    return nullptr;
  };
  auto common = [&](std::string_view m, std::string_view v) -> const nlohmann::json* {
    for (auto& r : doc["results"])
      if (r.contains("load_basis") && fits(r, m, v) && !r.contains("error")) return &r;
    return nullptr;
  };
  nlohmann::json t = nlohmann::json::array();
  const std::string_view sb_m = "sandbox", sb_v = "af_xdp";
  auto ratio_target = [&](const std::string& name, std::string_view m, std::string_view v, double goal) {
    nlohmann::json e{{"target", name}, {"goal", ">= " + fmt::format("{}", goal)}};
    const nlohmann::json *a = cap(sb_m, sb_v), *b = cap(m, v);
    if (!a || !b || b->value("capacity_pps", 0.0) <= 0) {
      e["status"] = "not measured in this run";
      t.push_back(e);
      return;
    }
    const double r = (*a)["capacity_pps"].get<double>() / (*b)["capacity_pps"].get<double>();
    e["value"] = r;
    const bool ca = (*a)["censored_at_generator_limit"], cb = (*b)["censored_at_generator_limit"];
    if (ca && cb) e["status"] = "undecided: both capacities are at the generator's limit";
    else if (ca) e["status"] = r >= goal ? "met (lower bound)" : "undecided: sandbox is at the generator's limit, so the ratio is only a lower bound";
    else if (cb) e["status"] = r < goal ? "not met (upper bound)" : "undecided";
    else e["status"] = r >= goal ? "met" : "not met";
    t.push_back(e);
  };
  ratio_target("capacity vs kernel-socket batched relay", "kernel-socket", "batched", 2);
  ratio_target("capacity vs raw-socket (paper-era, af_packet)", "raw-socket", "af_packet", 3);
  ratio_target("capacity vs user-thread (paper-era, af_packet)", "user-thread", "af_packet", 3);
  ratio_target("capacity vs in-kernel XDP redirect", "xdp-redirect", "native", 0.8);
  auto at_common = [&](const std::string& name, const char* field, double goal) {
    nlohmann::json e{{"target", name}, {"goal", "<= " + fmt::format("{}", goal)}};
    const nlohmann::json *a = common(sb_m, sb_v), *b = common("kernel-socket", "batched");
    if (!a || !b || b->value(field, 0.0) <= 0) {
      e["status"] = "not measured in this run";
    } else {
      const double r = (*a)[field].get<double>() / (*b)[field].get<double>();
      e["value"] = r;
      e["status"] = r <= goal ? "met" : "not met";
      e["load_pps"] = (*a)["load"];
    }
    t.push_back(e);
  };
  at_common("p99 latency at the common load vs kernel-socket batched", "latency_p99_ns", 0.5);
  at_common("proxy-host CPU per forwarded packet at the common load vs kernel-socket batched",
            "cpu_ns_per_forwarded_proxy_host", 0.4);
  return t;
}

void add_drops(nlohmann::json& acc, const nlohmann::json& d) {
  for (auto st = d.begin(); st != d.end(); ++st)
    for (auto r = st->begin(); r != st->end(); ++r) {
      uint64_t prev = acc[st.key()].contains(r.key()) ? acc[st.key()][r.key()].get<uint64_t>() : 0;
      acc[st.key()][r.key()] = prev + r->get<uint64_t>();
    }
}

int run(int argc, char** argv) {
  Options o;
  CLI::App app{"ulsnet throughput: proxy methods forwarding a UDP stream between three hosts"};
  app.add_option("--methods", o.methods,
                 "methods to run, as name or name:variant (default: all, every variant)")
      ->delimiter(',');
  app.add_option("--modes", o.modes, "relay and/or router")->delimiter(',');
  app.add_option("--sizes", o.sizes, "UDP payload sizes in bytes (24..1472)")->delimiter(',');
  app.add_option("--rates", o.rates, "offered loads: 'max' and/or packets per second")->delimiter(',');
  app.add_flag("--rates-all-sizes", o.rates_all_sizes,
               "run fixed rates at every size (default: only at the smallest size)");
  app.add_option("--duration", o.duration, "seconds per trial")->check(CLI::Range(0.05, 60.0));
  app.add_option("--reps", o.reps, "repetitions per point")->check(CLI::Range(1, 100));
  app.add_flag("--quick", o.quick, "the whole experiment in under a minute (fewer points)");
  app.add_option("--out", o.out, "JSON output path (default results/throughput-<time>.json)");
  app.add_option("--batch", o.batch, "burst size: frames per rx_burst, datagrams per mmsg call")
      ->check(CLI::Range(1, 1024));
  app.add_option("--max-packets", o.max_packets, "upper bound on datagrams per trial")
      ->check(CLI::Range(1000, 100'000'000));
  app.add_option("--protection", o.protection,
                 "sandbox method's protection domains, each run as its own job: auto, pkey, "
                 "mprotect, none (e.g. mprotect,none)")
      ->delimiter(',')
      ->check(CLI::IsMember({"auto", "pkey", "mprotect", "none"}));
  app.add_option("--generator", o.generator,
                 "af_xdp (default): frames written into an AF_XDP socket's umem, paced; socket: "
                 "sendmmsg on a UDP socket; xdp-live: frames built in the kernel by BPF_PROG_RUN "
                 "live frames (Linux 5.18+, max load only, UDP checksum 0)")
      ->check(CLI::IsMember({"socket", "af_xdp", "xdp-live"}));
  app.add_option("--sink", o.sink,
                 "af_xdp: AF_XDP socket on the receiver (cheap, checks every datagram); socket: a "
                 "kernel UDP socket with recvmmsg")
      ->check(CLI::IsMember({"socket", "af_xdp"}));
  app.add_flag("--busy-poll", o.busy_poll,
               "af_xdp proxy devices: SO_PREFER_BUSY_POLL + SO_BUSY_POLL (a refusal is recorded)");
  app.add_flag("!--no-need-wakeup", o.need_wakeup,
               "af_xdp proxy devices: kick the kernel on every burst instead of only when it asks");
  app.add_flag("!--no-veth-napi", o.veth_napi,
               "veth receive through the per-CPU backlog (GRO off), except for methods that need "
               "NAPI (xdp-redirect); then every receive runs as softirq on the sending CPU");
  app.add_flag("!--napi-on-sender-cpu", o.napi_per_host,
               "leave veth NAPI polling as softirq on the sending CPU instead of kernel threads "
               "pinned to the receiving host's CPU (proxy: CPU 1, receiver: CPU 0)");
  app.add_flag("!--no-search", o.search,
               "skip the capacity search (highest rate forwarded with loss <= --search-loss)");
  app.add_option("--search-loss", o.search_loss,
                 "loss tolerated at the capacity (fraction); a rate passes if one of two "
                 "trials meets it")
      ->check(CLI::Range(0.0, 0.5));
  app.add_option("--search-steps", o.search_steps, "bisection steps")->check(CLI::Range(1, 20));
  app.add_option("--search-duration", o.search_duration, "seconds per search trial")
      ->check(CLI::Range(0.1, 10.0));
  app.add_option("--search-max", o.search_max,
                 "highest rate tried (default: the no-proxy calibration's delivered rate)");
  app.add_option("--common-load", o.common_load,
                 "pps of the common-load point (default: half the kernel-socket batched relay's "
                 "capacity when that method runs, else none)");
  app.add_flag("!--no-pin", o.pin, "do not pin generator+sink to CPU 0 and the proxy to CPU 1");
  app.add_flag("!--no-calibrate", o.calibrate,
               "skip the two-host calibration (generator straight to sink, no proxy)");
  std::string hosts = "netns", accel = "auto", vm_protection = "kernel";
  app.add_option("--hosts", hosts,
                 "netns (default: network namespaces on this kernel) or vm (three QEMU VMs running "
                 "the patched ULS kernel, kernel/; adds the sandbox method's uls variant)")
      ->check(CLI::IsMember({"netns", "vm"}));
  app.add_option("--accel", accel, "--hosts=vm: auto, kvm or tcg")->check(CLI::IsMember({"auto", "kvm", "tcg"}));
  app.add_option("--vm-protection", vm_protection,
                 "--hosts=vm: the ULS region's protection, kernel (uls.protect=1, default) or none");
  CLI11_PARSE(app, argc, argv);

  if (hosts == "vm") {
    VmThroughputOptions v;
    v.methods = o.methods;
    if (app.count("--modes")) v.modes = o.modes;
    if (app.count("--rates")) v.rates = o.rates;
    if (app.count("--duration")) v.duration = o.duration;
    if (app.count("--reps")) v.reps = o.reps;
    if (app.count("--sizes") && (o.sizes.size() != 1 || o.sizes[0] != 64)) {
      fmt::print(stderr, "throughput: --hosts=vm measures 64-byte frames only (--sizes 64)\n");
      return 2;
    }
    v.quick = o.quick;
    v.accel = accel;
    v.protection = vm_protection;
    v.out = o.out;
    v.argv.assign(argv, argv + argc);
    return run_vm_throughput(v);
  }

  if (geteuid() != 0) {
    fmt::print(stderr, "throughput: must run as root (it creates network namespaces and packet sockets)\n");
    return 2;
  }
  for (const char* tool : {"ip", "ethtool"})
    if (std::system((std::string("command -v ") + tool + " >/dev/null 2>&1").c_str()) != 0) {
      fmt::print(stderr, "throughput: '{}' not found: run tools/setup.sh\n", tool);
      return 2;
    }
  if (o.quick) {
    if (!app.count("--sizes")) o.sizes = {64, 1472};
    if (!app.count("--rates")) o.rates = {"max"};
    if (!app.count("--duration")) o.duration = 0.5;
    if (!app.count("--reps")) o.reps = 1;
    if (!app.count("--modes")) o.modes = {"relay"};
    if (!app.count("--search-steps")) o.search_steps = 4;
    if (!app.count("--search-duration")) o.search_duration = 0.3;
    if (!app.count("--methods"))
      o.methods = {"kernel-socket:batched", "raw-socket:af_packet", "user-thread:af_packet",
                   "sandbox:af_xdp", "xdp-redirect:native"};
  }
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
  for (uint32_t s : o.sizes)
    if (s < kMinPayload || s > kMaxPayload) {
      fmt::print(stderr, "throughput: size {} outside [{}, {}]\n", s, kMinPayload, kMaxPayload);
      return 2;
    }
  std::vector<double> rates;
  for (const auto& r : o.rates) {
    const std::optional<double> v = parse_offered_rate(r);
    if (!v) {
      fmt::print(stderr, "throughput: bad rate '{}' (use 'max' or packets per second)\n", r);
      return 2;
    }
    rates.push_back(*v);
  }
  std::vector<ForwardMode> modes;
  for (const auto& m : o.modes) {
    if (m == "relay") modes.push_back(ForwardMode::kRelay);
    else if (m == "router") modes.push_back(ForwardMode::kRouter);
    else {
      fmt::print(stderr, "throughput: bad mode '{}' (relay, router)\n", m);
      return 2;
    }
  }
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
  for (auto& [m, v] : mv)
    for (ForwardMode md : modes) {
      if ((md == ForwardMode::kRelay && !m->relay) || (md == ForwardMode::kRouter && !m->router)) {
        fmt::print(stderr, "note: {} does not support {} mode: skipped\n", m->name, forward_mode_name(md));
        continue;
      }
      if (m->name == "sandbox") {
        for (const auto& p : protection_in_force) jobs.push_back({m, v, md, p});
      } else {
        jobs.push_back({m, v, md});
      }
    }

  if (o.out.empty()) {
    std::time_t t = std::time(nullptr);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", std::gmtime(&t));
    o.out = std::string("results/throughput-") + stamp + ".json";
  }
  std::filesystem::path out_path(o.out);
  if (out_path.is_relative())
    if (const char* wd = std::getenv("BUILD_WORKING_DIRECTORY")) out_path = std::filesystem::path(wd) / out_path;

  const bool pin = o.pin && std::thread::hardware_concurrency() >= 2;
  nlohmann::json doc;
  doc["schema"] = "ulsnet.throughput.v1";
  doc["config"] = {{"methods", o.methods}, {"modes", o.modes}, {"sizes", o.sizes},
                   {"rates", o.rates}, {"rates_all_sizes", o.rates_all_sizes},
                   {"duration_s", o.duration}, {"reps", o.reps}, {"quick", o.quick},
                   {"batch", o.batch}, {"max_packets", o.max_packets},
                   {"protection", o.protection}, {"protection_in_force", protection_in_force},
                   {"veth_napi_all_methods", o.veth_napi},
                   {"af_xdp_busy_poll", o.busy_poll}, {"af_xdp_need_wakeup", o.need_wakeup},
                   {"search", o.search}, {"search_loss", o.search_loss},
                   {"search_steps", o.search_steps}, {"search_duration_s", o.search_duration},
                   {"napi_threads_per_host", o.napi_per_host},
                   {"pinning", pin ? "generator and sink on CPU 0, proxy on CPU 1" : "none"},
                   {"drain_s", 0.3}, {"argv", std::vector<std::string>(argv, argv + argc)},
                   {"generator", o.generator == "socket"   ? "kernel UDP socket, sendmmsg"
                                 : o.generator == "af_xdp" ? "AF_XDP socket, paced bursts"
                                                           : "xdp-live: XDP program run by BPF_PROG_RUN "
                                                             "with live frames, UDP checksum 0"},
                   {"sink", o.sink == "socket" ? "kernel UDP socket, recvmmsg"
                                               : "AF_XDP socket, every datagram parsed and checked"},
                   {"static_neighbors", true}, {"calibrate", o.calibrate}};
  doc["environment"] = environment();
  doc["results"] = nlohmann::json::array();
  doc["calibration"] = nlohmann::json::array();

  size_t total = 0;
  // Trials planned (the capacity search adds a retry for each failing step: an estimate).
  for (auto& j : jobs) (void)j, total += o.sizes.size() * o.reps + (o.search ? o.search_steps + 1 + o.reps : 0);
  total += jobs.size() * o.reps * (rates.size() - (std::count(rates.begin(), rates.end(), 0.0))) *
           (o.rates_all_sizes ? o.sizes.size() : 1);
  size_t done = 0;
  uint32_t run_id = uint32_t(getpid()) << 8;
  const auto t0 = std::chrono::steady_clock::now();
  int failures = 0;

  if (o.calibrate) {
    // The ceiling without a proxy: what the sender and receiver themselves reach.
    TopologyOptions two;
    two.three_hosts = false;
    two.veth_napi = o.veth_napi || o.generator == "xdp-live";
    if (pin && two.veth_napi && o.napi_per_host) two.receiver_napi_cpu = 1;
    std::unique_ptr<Topology> topo;
    try {
      topo = std::make_unique<Topology>(two);
    } catch (const std::exception& e) {
      fmt::print(stderr, "throughput: cannot build hosts: {}\n", e.what());
      return 3;
    }
    for (uint32_t size : o.sizes) {
      nlohmann::json c{{"payload_bytes", size}, {"load", "max"}, {"samples", nlohmann::json::array()}};
      std::vector<double> delivered, offered;
      for (int rep = 0; rep < o.reps; ++rep) {
        TrialConfig tc;
        tc.payload = size;
        tc.duration_s = o.duration;
        tc.batch = o.batch;
        tc.max_packets = o.max_packets;
        tc.run_id = ++run_id;
        tc.generator = o.generator;
        tc.sink = o.sink;
        if (pin) tc.generator_cpu = 0, tc.sink_cpu = 1;
        nlohmann::json r = run_direct(*topo, tc);
        if (r.contains("error")) {
          fmt::print(stderr, "calibration {}B: ERROR {}\n", size, r["error"].get<std::string>());
          ++failures;
        } else {
          delivered.push_back(r["delivered_pps"]);
          offered.push_back(r["offered_pps"]);
          fmt::print(stderr, "calibration (sender -> receiver, no proxy) {}B: {:.0f} pps delivered, unaccounted {}\n",
                     size, r["delivered_pps"].get<double>(), r["unaccounted"].get<int64_t>());
        }
        c["samples"].push_back(r);
      }
      c["delivered_pps"] = median(delivered);
      c["offered_pps"] = median(offered);
      doc["calibration"].push_back(c);
    }
  }

  // One point: `reps` trials of (method, variant, mode, size, rate) on `topo`, summarised.
  auto point = [&](const Job& job, const Topology& topo_ref, const TopologyOptions& to,
                   uint32_t size, double rate, int reps, double duration) -> nlohmann::json {
    const Topology* topo = &topo_ref;
    nlohmann::json res;
    res["method"] = job.info->name;
    res["variant"] = job.variant;
    res["protection"] = job.protection;
    res["mode"] = forward_mode_name(job.mode);
    res["payload_bytes"] = size;
    res["load"] = rate > 0 ? nlohmann::json(rate) : nlohmann::json("max");
    res["samples"] = nlohmann::json::array();
    std::vector<double> delivered, offered;
    uint64_t sent = 0, received = 0;
    int64_t unaccounted = 0;
    nlohmann::json drops = nlohmann::json::object();
    std::string device_mode = "n/a", protection = "n/a", error;
    for (int rep = 0; rep < reps; ++rep) {
      TrialConfig tc;
      tc.method = std::string(job.info->name);
      tc.variant = job.variant;
      tc.mode = job.mode;
      tc.payload = size;
      tc.rate_pps = rate;
      tc.duration_s = duration;
      tc.batch = o.batch;
      tc.max_packets = o.max_packets;
      tc.protection = job.protection == "n/a" ? "auto" : job.protection;
      tc.busy_poll = o.busy_poll;
      tc.need_wakeup = o.need_wakeup;
      tc.run_id = ++run_id;
      tc.generator = o.generator;
      if (pin) tc.generator_cpu = 0, tc.sink_cpu = 0, tc.proxy_cpu = 1;
      nlohmann::json s = run_trial(*topo, tc);
      s["rep"] = rep;
      ++done;
      double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (s.contains("error")) {
        error = s["error"].get<std::string>();
        fmt::print(stderr, "[{}/{} {:.0f}s] {} {} {} {}B: ERROR {}\n", done, total, el,
                   job.info->name, job.variant, forward_mode_name(job.mode), size, error);
        res["samples"].push_back(s);
        ++failures;
        continue;
      }
      fmt::print(stderr, "[{}/{} {:.0f}s] {} {} {} {}B {}: {:.0f} pps delivered (offered {:.0f}), unaccounted {}\n",
                 done, total, el, job.info->name, job.variant, forward_mode_name(job.mode),
                 size, rate > 0 ? fmt::format("{:.0f}pps", rate) : "max",
                 s["delivered_pps"].get<double>(), s["offered_pps"].get<double>(),
                 s["unaccounted"].get<int64_t>());
      delivered.push_back(s["delivered_pps"]);
      offered.push_back(s["offered_pps"]);
      sent += s["sent"].get<uint64_t>();
      received += s["received"].get<uint64_t>();
      unaccounted += s["unaccounted"].get<int64_t>();
      add_drops(drops, s["drops"]);
      if (s["proxy"].contains("device_mode")) device_mode = s["proxy"]["device_mode"];
      if (s["proxy"].contains("protection")) protection = s["proxy"]["protection"];
      res["samples"].push_back(s);
    }
    double med = median(delivered);
    double mean = 0, var = 0;
    for (double d : delivered) mean += d;
    if (!delivered.empty()) mean /= double(delivered.size());
    for (double d : delivered) var += (d - mean) * (d - mean);
    std::vector<double> p99s, jit, cpu_fwd, cpu_all, cpu_host;
    for (auto& s : res["samples"]) {
      if (s.contains("error")) continue;
      if (s["latency_ns"].contains("p99")) p99s.push_back(s["latency_ns"]["p99"]);
      jit.push_back(s["jitter_ns"]);
      cpu_fwd.push_back(s["cpu"]["proxy_process_ns_per_forwarded"]);
      cpu_all.push_back(s["cpu"]["all_busy_ns_per_received"]);
      // Everything the proxy's CPU did (process, its NAPI threads, softirq) per datagram that
      // reached the receiver: with pinning the proxy host is CPU 1.
      if (pin && s["cpu"]["per_cpu"].contains("cpu1") && s["received"].get<uint64_t>() > 0)
        cpu_host.push_back(s["cpu"]["per_cpu"]["cpu1"]["busy_ns"].get<double>() /
                           s["received"].get<double>());
    }
    res["offered_pps"] = median(offered);
    res["delivered_pps"] = med;
    res["delivered_pps_min"] = delivered.empty() ? 0 : *std::min_element(delivered.begin(), delivered.end());
    res["delivered_pps_max"] = delivered.empty() ? 0 : *std::max_element(delivered.begin(), delivered.end());
    res["delivered_pps_stddev"] = delivered.size() > 1 ? std::sqrt(var / double(delivered.size() - 1)) : 0.0;
    res["gbps"] = med * size * 8 / 1e9;
    res["sent"] = sent;
    res["received"] = received;
    res["loss"] = sent ? 1.0 - double(received) / double(sent) : 0.0;
    res["drops"] = drops;
    res["unaccounted"] = unaccounted;
    res["latency_p99_ns"] = median(p99s);
    res["jitter_ns"] = median(jit);
    res["cpu_ns_per_forwarded_proxy_process"] = median(cpu_fwd);
    res["cpu_ns_per_received_all_cpus"] = median(cpu_all);
    res["cpu_ns_per_forwarded_proxy_host"] = median(cpu_host);
    res["labels"] = {{"hosts", "netns"}, {"kernel", "stock"}, {"accelerator", "none"},
                     {"generator", rate > 0 ? "socket" : o.generator},
                     {"device_mode", device_mode}, {"protection", protection},
                     {"veth_napi", to.veth_napi},
                     {"proxy_napi", topo->napi_report().empty() ? "softirq on the sending CPU"
                                                                 : topo->napi_report()}};
    if (!error.empty()) res["error"] = error;
    return res;
  };

  double common_rate = o.common_load;
  double search_max = o.search_max;
  if (search_max <= 0) {
    // Just above what the generator and sink reached without a proxy, or 400 kpps.
    search_max = 400000;
    for (auto& c : doc["calibration"])
      if (c["payload_bytes"] == o.sizes.front() && c["delivered_pps"].get<double>() > 0)
        search_max = std::round(c["delivered_pps"].get<double>() / 1000) * 1000;
  }
  doc["capacity"] = nlohmann::json::array();
  for (const Job& job : jobs) {
    TopologyOptions to;
    to.proxy_kernel_addresses = job.info->kernel_owns_addresses;
    to.veth_napi = job.info->needs_veth_napi || o.veth_napi || o.generator == "xdp-live";
    if (pin && to.veth_napi && o.napi_per_host) to.proxy_napi_cpu = 1, to.receiver_napi_cpu = 0;
    std::unique_ptr<Topology> topo;
    try {
      topo = std::make_unique<Topology>(to);
    } catch (const std::exception& e) {
      fmt::print(stderr, "throughput: cannot build hosts: {}\n", e.what());
      return 3;
    }
    for (uint32_t size : o.sizes)
      for (double rate : rates) {
        if (rate > 0 && !o.rates_all_sizes && size != o.sizes.front()) continue;
        nlohmann::json res = point(job, *topo, to, size, rate, o.reps, o.duration);
        doc["results"].push_back(res);
      }
    const uint32_t size0 = o.sizes.front();
    if (o.search) {
      // The highest offered rate this method forwards with loss <= search_loss (RFC 2544's
      // throughput, with a loss tolerance for veth's noise), by bisection on the paced socket
      // generator. A rate the generator itself cannot offer ends the search: the capacity is
      // then "at least" that (censored), never extrapolated.
      nlohmann::json cap{{"method", job.info->name}, {"variant", job.variant},
                         {"protection", job.protection},
                         {"mode", forward_mode_name(job.mode)}, {"payload_bytes", size0},
                         {"loss_tolerance", o.search_loss}, {"steps", nlohmann::json::array()}};
      double lo = 0, hi = search_max;
      bool censored = false;
      // A trial passes at `rate` if the generator offered it (>= 97%) and the loss was within
      // the tolerance. A trial within the tolerance at a lower offered rate shows the method
      // carried that much: `carried` keeps the highest such rate.
      double carried = 0;
      auto one_trial = [&](double rate, bool& short_offer) {
        nlohmann::json r = point(job, *topo, to, size0, rate, 1, o.search_duration);
        const double offered = r.value("offered_pps", 0.0), loss = r.value("loss", 1.0);
        cap["steps"].push_back({{"rate", rate},
                                {"offered_pps", offered},
                                {"delivered_pps", r.value("delivered_pps", 0.0)},
                                {"loss", loss},
                                {"latency_p99_ns", r.value("latency_p99_ns", 0.0)},
                                {"unaccounted", r.value("unaccounted", int64_t(0))}});
        if (r.contains("error")) return false;
        const bool within = loss <= o.search_loss;
        if (within) carried = std::max(carried, offered);
        short_offer = offered < 0.97 * rate;
        return within && !short_offer;
      };
      // A rate passes if one of two trials does: a single transient (a host CPU's scheduling
      // hiccup, a slow generator start) must not decide the capacity. Both are recorded.
      auto passes = [&](double rate, bool& short_offer) {
        return one_trial(rate, short_offer) || one_trial(rate, short_offer);
      };
      bool short_offer = false;
      if (passes(hi, short_offer)) {
        lo = hi;
        censored = true;
      } else if (short_offer && carried > 0) {
        // The generator could not offer `hi` while the method lost nothing beyond the
        // tolerance: the method's capacity is at least what it carried, and the generator is
        // the limit here.
        lo = carried;
        censored = true;
      }
      for (int step = 0; step < o.search_steps && !censored; ++step) {
        const double mid = lo == 0 ? hi / 2 : (lo + hi) / 2;
        if (passes(mid, short_offer)) lo = mid;
        else hi = mid;
      }
      lo = std::max(lo, std::min(carried, hi));
      cap["capacity_pps"] = lo;
      cap["resolution_pps"] = censored ? 0.0 : hi - lo;
      cap["censored_at_generator_limit"] = censored;
      fmt::print(stderr, "capacity {} {} {} {}B: {:.0f} pps{} (loss <= {:.1f}%)\n", job.info->name,
                 job.variant, forward_mode_name(job.mode), size0, lo,
                 censored ? " or more (the generator's limit)" : fmt::format(" +{:.0f}", hi - lo),
                 100 * o.search_loss);
      doc["capacity"].push_back(cap);
      if (common_rate == 0 && job.info->name == "kernel-socket" && job.variant == "batched")
        common_rate = 0.5 * lo;
    }
    if (common_rate > 0) {
      // Every method at one common load, half of what the kernel-socket relay can carry:
      // latency, jitter and CPU per packet compared at equal work.
      nlohmann::json res = point(job, *topo, to, size0, common_rate, o.reps, o.duration);
      res["load_basis"] = o.common_load > 0 ? "--common-load"
                                            : "half of kernel-socket batched relay's capacity";
      doc["results"].push_back(res);
    }
  }
  doc["common_load_pps"] = common_rate;
  doc["targets"] = evaluate_targets(doc, protection_in_force.front());
  doc["targets_sandbox_protection"] = protection_in_force.front();

  std::error_code ec;
  std::filesystem::create_directories(out_path.parent_path(), ec);
  std::ofstream(out_path) << doc.dump(1) << "\n";

  fmt::print("\nulsnet throughput: {} on {} ({} cores), hosts=netns, kernel=stock, {} s x {} reps\n",
             doc["environment"]["kernel"].get<std::string>(),
             doc["environment"]["cpu_model"].get<std::string>(), std::thread::hardware_concurrency(),
             o.duration, o.reps);
  fmt::print("{:<15} {:<14} {:<6} {:>5} {:>8} {:>10} {:>16} {:>7} {:>7} {:>9} {:>9} {:>8}\n",
             "method", "variant", "mode", "bytes", "load", "offered", "delivered pps",
             "Gbit/s", "loss%", "p99 us", "proxy", "all-CPU");
  fmt::print("{:<15} {:<14} {:<6} {:>5} {:>8} {:>10} {:>16} {:>7} {:>7} {:>9} {:>9} {:>8}\n", "",
             "", "", "", "", "pps", "median(min-max)", "", "", "", "ns/pkt", "ns/pkt");
  auto shown_variant = [](const nlohmann::json& r) {
    std::string v = r["variant"].get<std::string>();
    const std::string p = r.value("protection", "n/a");
    return p == "n/a" ? v : v + "/" + p;
  };
  for (auto& r : doc["results"]) {
    std::string load = r["load"].is_string() ? "max" : fmt::format("{:.0f}", r["load"].get<double>());
    if (r.contains("error")) {
      fmt::print("{:<15} {:<14} {:<6} {:>5} {:>8}  ERROR: {}\n", r["method"].get<std::string>(),
                 shown_variant(r), r["mode"].get<std::string>(),
                 r["payload_bytes"].get<uint32_t>(), load, r["error"].get<std::string>());
      continue;
    }
    fmt::print("{:<15} {:<14} {:<6} {:>5} {:>8} {:>10.0f} {:>7.0f}({:.0f}-{:.0f}) {:>7.3f} {:>7.2f} {:>9.1f} {:>9.0f} {:>8.0f}\n",
               r["method"].get<std::string>(), shown_variant(r),
               r["mode"].get<std::string>(), r["payload_bytes"].get<uint32_t>(), load,
               r["offered_pps"].get<double>(), r["delivered_pps"].get<double>(),
               r["delivered_pps_min"].get<double>(), r["delivered_pps_max"].get<double>(),
               r["gbps"].get<double>(), 100 * r["loss"].get<double>(),
               r["latency_p99_ns"].get<double>() / 1000,
               r["cpu_ns_per_forwarded_proxy_process"].get<double>(),
               r["cpu_ns_per_received_all_cpus"].get<double>());
  }
  for (auto& c : doc["calibration"])
    fmt::print("calibration, no proxy (generator on CPU 0, sink on CPU 1): {:>5} B  {:>8.0f} pps\n",
               c["payload_bytes"].get<uint32_t>(), c["delivered_pps"].get<double>());
  if (!doc["capacity"].empty()) {
    fmt::print("\ncapacity: highest offered rate forwarded with loss <= {:.1f}% ({} B, {} s per step)\n",
               100 * o.search_loss, o.sizes.front(), o.search_duration);
    for (auto& c : doc["capacity"])
      fmt::print("  {:<15} {:<20} {:<6} {:>9.0f} pps {}\n", c["method"].get<std::string>(),
                 shown_variant(c), c["mode"].get<std::string>(),
                 c["capacity_pps"].get<double>(),
                 c["censored_at_generator_limit"].get<bool>()
                     ? "or more: the generator's limit"
                     : fmt::format("(+{:.0f})", c["resolution_pps"].get<double>()));
  }
  if (doc["common_load_pps"].get<double>() > 0)
    fmt::print("common load for latency and CPU: {:.0f} pps\n", doc["common_load_pps"].get<double>());
  fmt::print("\ntargets (sandbox:af_xdp, relay, protection {}):\n", protection_in_force.front());
  for (auto& t : doc["targets"])
    fmt::print("  {:<80} goal {:<6} value {:<8} {}\n", t["target"].get<std::string>(),
               t["goal"].get<std::string>(),
               t.contains("value") ? fmt::format("{:.2f}", t["value"].get<double>()) : "-",
               t["status"].get<std::string>());
  fmt::print("\nresults: {}\n", out_path.string());
  return failures ? 1 : 0;
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
