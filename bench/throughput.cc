// //bench:throughput: every proxy method x mode x payload size x offered load x repetition on
// three hosts (network namespaces); a table on stdout, progress on stderr, one JSON file with
// the configuration, the environment and every raw sample. See bench/README.md.
#include <sys/utsname.h>
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
#include "bench/topology.h"
#include "bench/traffic.h"
#include "bench/trial.h"
#include "sandbox/protection.h"

namespace ulsnet {
namespace {

struct Options {
  std::vector<std::string> methods, modes = {"relay", "router"};
  std::vector<uint32_t> sizes = {64, 256, 512, 1024, 1472};
  std::vector<std::string> rates = {"max", "100000"};
  bool rates_all_sizes = false;
  double duration = 1.0;
  int reps = 3;
  bool quick = false;
  std::string out;
  uint32_t batch = 32;
  std::string protection = "auto";
  bool veth_napi = true;
  std::string generator = "socket";
  bool napi_per_host = true;
  uint64_t max_packets = 5'000'000;
  bool pin = true;
  bool calibrate = true;
};

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

std::string cpuinfo_field(const std::string& name) {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(name, 0) == 0) {
      auto c = line.find(':');
      return c == std::string::npos ? "" : line.substr(c + 2);
    }
  return "";
}

nlohmann::json environment() {
  utsname u{};
  uname(&u);
  std::string flags = " " + cpuinfo_field("flags") + " ";
  std::string commit = "unknown";
  if (const char* ws = std::getenv("BUILD_WORKSPACE_DIRECTORY")) {
    try {
      commit = run_command("git -C " + std::string(ws) + " rev-parse HEAD");
      commit.erase(commit.find_last_not_of("\n ") + 1);
      if (!run_command("git -C " + std::string(ws) + " status --porcelain --untracked-files=no").empty())
        commit += "-dirty";
    } catch (...) {
    }
  }
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  std::time_t t = std::time(nullptr);
  char date[64];
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return {{"kernel", std::string(u.sysname) + " " + u.release},
          {"kernel_version", u.version},
          {"machine", u.machine},
          {"cpu_model", cpuinfo_field("model name")},
          {"cores", std::thread::hardware_concurrency()},
          {"pku", flags.find(" pku ") != std::string::npos},
          {"kvm_device", std::filesystem::exists("/dev/kvm")},
          {"hostname", host},
          {"commit", commit},
          {"date", date},
          {"hosts", "netns"},
          {"checksum_mode", "full UDP checksums: tx checksum offload off on every veth"}};
}

struct Job {
  const MethodInfo* info;
  std::string variant;
  ForwardMode mode;
};

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
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
                 "sandbox method's protection domain: auto, pkey, mprotect or none")
      ->check(CLI::IsMember({"auto", "pkey", "mprotect", "none"}));
  app.add_option("--generator", o.generator,
                 "socket: sendmmsg on a UDP socket; xdp-live: frames built in the kernel by "
                 "BPF_PROG_RUN live frames (Linux 5.18+, about twice as fast; UDP checksum 0)")
      ->check(CLI::IsMember({"socket", "xdp-live"}));
  app.add_flag("!--no-veth-napi", o.veth_napi,
               "veth receive through the per-CPU backlog (GRO off), except for methods that need "
               "NAPI (xdp-redirect); then every receive runs as softirq on the sending CPU");
  app.add_flag("!--napi-on-sender-cpu", o.napi_per_host,
               "leave veth NAPI polling as softirq on the sending CPU instead of kernel threads "
               "pinned to the receiving host's CPU (proxy: CPU 1, receiver: CPU 0)");
  app.add_flag("!--no-pin", o.pin, "do not pin generator+sink to CPU 0 and the proxy to CPU 1");
  app.add_flag("!--no-calibrate", o.calibrate,
               "skip the two-host calibration (generator straight to sink, no proxy)");
  CLI11_PARSE(app, argc, argv);

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
    if (!app.count("--methods"))
      o.methods = {"kernel-socket:batched", "kernel-socket:per-datagram", "raw-socket:af_packet",
                   "user-thread:af_packet", "sandbox", "xdp-redirect:native", "kernel-forward"};
  }
  std::string protection_in_force;
  try {
    protection_in_force = protection_mode_name(parse_protection_mode(o.protection));
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
    if (r == "max") {
      rates.push_back(0);
      continue;
    }
    char* end = nullptr;
    double v = std::strtod(r.c_str(), &end);
    if (!end || *end || v <= 0) {
      fmt::print(stderr, "throughput: bad rate '{}' (use 'max' or packets per second)\n", r);
      return 2;
    }
    rates.push_back(v);
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
  // Expand methods into (method, variant, mode) jobs.
  std::vector<std::pair<const MethodInfo*, std::string>> mv;
  if (o.methods.empty()) {
    for (const auto& m : proxy_methods())
      for (auto v : m.variants) mv.push_back({&m, std::string(v)});
  } else {
    for (const auto& spec : o.methods) {
      auto c = spec.find(':');
      std::string name = spec.substr(0, c), variant = c == std::string::npos ? "" : spec.substr(c + 1);
      const MethodInfo* m = find_proxy_method(name);
      if (!m) {
        std::string valid;
        for (const auto& x : proxy_methods()) valid += " " + std::string(x.name);
        fmt::print(stderr, "throughput: unknown method '{}' (valid:{})\n", name, valid);
        return 2;
      }
      if (variant.empty()) {
        for (auto v : m->variants) mv.push_back({m, std::string(v)});
      } else if (std::find(m->variants.begin(), m->variants.end(), variant) == m->variants.end()) {
        fmt::print(stderr, "throughput: method {} has no variant '{}'\n", name, variant);
        return 2;
      } else {
        mv.push_back({m, variant});
      }
    }
  }
  std::vector<Job> jobs;
  for (auto& [m, v] : mv)
    for (ForwardMode md : modes) {
      if ((md == ForwardMode::kRelay && !m->relay) || (md == ForwardMode::kRouter && !m->router)) {
        fmt::print(stderr, "note: {} does not support {} mode: skipped\n", m->name, forward_mode_name(md));
        continue;
      }
      jobs.push_back({m, v, md});
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
                   {"napi_threads_per_host", o.napi_per_host},
                   {"pinning", pin ? "generator and sink on CPU 0, proxy on CPU 1" : "none"},
                   {"drain_s", 0.3}, {"argv", std::vector<std::string>(argv, argv + argc)},
                   {"generator", o.generator == "socket" ? "kernel UDP socket, sendmmsg"
                                                         : "xdp-live: XDP program run by BPF_PROG_RUN "
                                                           "with live frames, UDP checksum 0"},
                   {"sink", "kernel UDP socket, recvmmsg"},
                   {"static_neighbors", true}, {"calibrate", o.calibrate}};
  doc["environment"] = environment();
  doc["results"] = nlohmann::json::array();
  doc["calibration"] = nlohmann::json::array();

  size_t total = 0;
  for (auto& j : jobs) (void)j, total += o.sizes.size() * o.reps;
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
        nlohmann::json res;
        res["method"] = job.info->name;
        res["variant"] = job.variant;
        res["mode"] = forward_mode_name(job.mode);
        res["payload_bytes"] = size;
        res["load"] = rate > 0 ? nlohmann::json(rate) : nlohmann::json("max");
        res["samples"] = nlohmann::json::array();
        std::vector<double> delivered, offered;
        uint64_t sent = 0, received = 0;
        int64_t unaccounted = 0;
        nlohmann::json drops = nlohmann::json::object();
        std::string device_mode = "n/a", protection = "n/a", error;
        for (int rep = 0; rep < o.reps; ++rep) {
          TrialConfig tc;
          tc.method = std::string(job.info->name);
          tc.variant = job.variant;
          tc.mode = job.mode;
          tc.payload = size;
          tc.rate_pps = rate;
          tc.duration_s = o.duration;
          tc.batch = o.batch;
          tc.max_packets = o.max_packets;
          tc.protection = o.protection;
          tc.run_id = ++run_id;
          tc.generator = o.generator;
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
        std::vector<double> p99s, jit, cpu_fwd, cpu_all;
        for (auto& s : res["samples"]) {
          if (s.contains("error")) continue;
          if (s["latency_ns"].contains("p99")) p99s.push_back(s["latency_ns"]["p99"]);
          jit.push_back(s["jitter_ns"]);
          cpu_fwd.push_back(s["cpu"]["proxy_process_ns_per_forwarded"]);
          cpu_all.push_back(s["cpu"]["all_busy_ns_per_received"]);
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
        res["labels"] = {{"hosts", "netns"}, {"kernel", "stock"}, {"accelerator", "none"},
                         {"generator", rate > 0 ? "socket" : o.generator},
                         {"device_mode", device_mode}, {"protection", protection},
                         {"veth_napi", to.veth_napi},
                         {"proxy_napi", topo->napi_report().empty() ? "softirq on the sending CPU"
                                                                     : topo->napi_report()}};
        if (!error.empty()) res["error"] = error;
        doc["results"].push_back(res);
      }
  }

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
  for (auto& r : doc["results"]) {
    std::string load = r["load"].is_string() ? "max" : fmt::format("{:.0f}", r["load"].get<double>());
    if (r.contains("error")) {
      fmt::print("{:<15} {:<14} {:<6} {:>5} {:>8}  ERROR: {}\n", r["method"].get<std::string>(),
                 r["variant"].get<std::string>(), r["mode"].get<std::string>(),
                 r["payload_bytes"].get<uint32_t>(), load, r["error"].get<std::string>());
      continue;
    }
    fmt::print("{:<15} {:<14} {:<6} {:>5} {:>8} {:>10.0f} {:>7.0f}({:.0f}-{:.0f}) {:>7.3f} {:>7.2f} {:>9.1f} {:>9.0f} {:>8.0f}\n",
               r["method"].get<std::string>(), r["variant"].get<std::string>(),
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
