// //bench:vm_forward: a numbered UDP stream from a sender VM through a proxy VM to a receiver VM,
// on the patched kernel (kernel/), at each offered rate, through
//   - uls:    the proxy's two e1000s bound to the zero-copy path, frames forwarded by an extension
//             run by upcalls (kernel/tests/uls_fwd_ext.c: a minimal IPv4 forwarder, not yet the
//             project's Stack), the proxy's kernel doing no protocol processing;
//   - kernel: the proxy's own IP forwarding (ip_forward=1), same hosts, same stream.
// It runs the `uls-forward` guest test (kernel/guest-init.sh) once per (path, rate), parses the
// three serial logs and writes one JSON file: configuration, environment (accelerator, guest
// kernel), and per run what was sent, what left the sender's NIC, what arrived, and the proxy's
// counters (extension, rings, NIC, and the kernel's IP/softnet counters). The file is written after
// every run ("complete": false until the last); the same --out resumes it (bench/resume.h: a
// finished (path, rate) is kept, --fresh starts over). Needs root.
// This is the first piece of `//bench:throughput --hosts=vm`; see bench/README.md.
#include <unistd.h>

#include <chrono>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "bench/environment.h"
#include "bench/resume.h"
#include "bench/run_lock.h"
#include "kernel/vm_harness.h"

namespace ulsnet {
namespace {

using vm::fields;

struct Options {
  std::vector<uint32_t> rates = {1000, 2000, 5000, 10000};
  std::vector<std::string> paths = {"uls", "kernel"};
  uint32_t seconds = 5;
  std::string protection = "kernel";
  std::string accel = "auto";
  std::string out;
  bool quick = false;
  bool fresh = false;
  std::vector<std::string> argv;
};

// --paths and --protection; false (exit 2) after one line on stderr.
bool options_valid(const Options& o) {
  for (const auto& p : o.paths)
    if (p != "uls" && p != "kernel") {
      std::fprintf(stderr, "vm_forward: --paths takes uls and/or kernel, not '%s'\n", p.c_str());
      return false;
    }
  if (o.protection != "kernel" && o.protection != "none") {
    std::fprintf(stderr, "vm_forward: --protection is kernel or none\n");
    return false;
  }
  return true;
}

nlohmann::json config_json(const Options& o) {
  return {{"rates_pps", o.rates},
          {"paths", o.paths},
          {"seconds", o.seconds},
          {"payload_bytes", 18},
          {"frame_bytes", 64},
          {"protection", o.protection},
          {"accel_requested", o.accel},
          {"quick", o.quick},
          {"guests", {{"vcpus", 1}, {"mem_mb", 256}, {"nic", "e1000"}}},
          {"uls_forwarder", "kernel/tests/uls_fwd_ext.c (minimal IPv4 forwarder, not the Stack)"}};
}

// One launch of the three VMs: `path` at `rate`, its row read from the serial logs. `accel` is
// set to what the launcher ran under; a run that did not complete counts in `failures`.
nlohmann::json launch_one(const Options& o, const vm::Prepared& prep, const std::string& point, const std::string& path,
                          uint32_t rate, const std::string& eta, std::string& accel, int& failures) {
  const uint64_t count = uint64_t{rate} * o.seconds;
  const std::string logs = prep.workdir + "/" + path + "-" + std::to_string(rate);
  std::string append = "ulsnet.count=" + std::to_string(count) + " ulsnet.pps=" + std::to_string(rate) +
                       " ulsnet.path=" + path;
  if (o.protection == "none") append += " uls.protect=0";
  std::fprintf(stderr, "vm_forward: %s path, %u datagrams/s for %u s%s\n", path.c_str(), rate, o.seconds, eta.c_str());
  auto [rc, out] = vm::launch(prep.image, prep.initrd, logs,
                              "--hosts 3 --accel " + o.accel + " --test uls-forward --append '" + append + "'",
                              120 + 2 * static_cast<int>(o.seconds));
  accel = vm::last_line(vm::slurp(logs + "/accel"));
  const std::string sender = vm::slurp(logs + "/sender.log"), proxy = vm::slurp(logs + "/proxy.log"),
                    receiver = vm::slurp(logs + "/receiver.log");
  auto s = fields(sender, "ULSNET-UDP-SENT"), r = fields(receiver, "ULSNET-UDP-RECV");
  nlohmann::json run = {{"point", point},
                        {"path", path},
                        {"label", path == "uls" ? "real ULS kernel, zero-copy e1000 path, upcalls"
                                                : "proxy kernel IP forwarding"},
                        {"offered_pps", rate},
                        {"count", count},
                        {"sender", s},
                        {"receiver", r},
                        {"accel", accel}};
  if (path == "uls") run["proxy"] = fields(proxy, "ULSNET-PROXY ", "final=1");
  const bool ok = rc == 0 && s.count("sent") && r.count("received");
  run["complete"] = ok;
  if (ok) {
    run["delivered"] = r["received"];
    run["loss"] = s["sent"] - r["received"];
    run["loss_ratio"] = s["sent"] ? static_cast<double>(s["sent"] - r["received"]) / static_cast<double>(s["sent"]) : 0.0;
  } else {
    ++failures;
    std::fprintf(stderr, "vm_forward: the %s run at %u/s did not complete; logs in %s\n%s\n", path.c_str(), rate,
                 logs.c_str(), out.c_str());
  }
  return run;
}

// The table on stdout.
void print_table(const nlohmann::json& doc, const std::string& accel, uint32_t seconds, const std::string& out) {
  fmt::print("vm_forward on the patched kernel, accelerator {} (64 B frames, {} s per run)\n", accel, seconds);
  fmt::print("{:<8} {:>8} {:>9} {:>9} {:>9} {:>8}  {}\n", "path", "pps", "sent", "nic_tx", "received", "loss %",
             "proxy: counted drops (rx ring full / NIC missed*), kernel IP in");
  for (const auto& r : doc["runs"]) {
    if (!r["complete"].get<bool>()) {
      fmt::print("{:<8} {:>8} incomplete\n", r["path"].get<std::string>(), r["offered_pps"].get<uint32_t>());
      continue;
    }
    std::string px = "-";
    if (r.contains("proxy") && r["proxy"].contains("eth0_rx_ring_full"))
      px = fmt::format("{} / {}, {}", r["proxy"]["eth0_rx_ring_full"].get<long long>(),
                       r["proxy"].value("eth0_nic_missed", 0LL), r["proxy"].value("kernel_ip_in_receives", 0LL));
    fmt::print("{:<8} {:>8} {:>9} {:>9} {:>9} {:>8.2f}  {}\n", r["path"].get<std::string>(),
               r["offered_pps"].get<uint32_t>(), r["sender"].value("sent", 0LL), r["sender"].value("nic_tx", 0LL),
               r["receiver"].value("received", 0LL), 100.0 * r["loss_ratio"].get<double>(), px);
  }
  fmt::print("* QEMU counts every retried receive as a missed packet: an upper bound.\nresults: {}\n", out);
}

int run(const Options& o) {
  if (!options_valid(o)) return 2;
  const nlohmann::json config = config_json(o);
  // Before the kernel is built: a file that cannot be resumed is refused at once.
  const std::string out_path = result_path(o.out, "vm-forward");
  resume::Earlier earlier;
  try {
    earlier = resume::load(o.out.empty() ? "" : out_path, o.fresh, "vm_forward", config);
  } catch (const resume::Refused& e) {
    std::fprintf(stderr, "vm_forward: %s\n", e.what());
    return 2;
  }
  const vm::Prepared prep = vm::prepare({vm::runfile("kernel/uls_proxy"), vm::runfile("kernel/uls_udp")});
  if (!prep.error.empty()) {
    std::fprintf(stderr, "vm_forward: %s\n", prep.error.c_str());
    return prep.usage_error ? 2 : 1;
  }

  nlohmann::json doc;
  doc["experiment"] = "vm_forward";
  doc["config"] = config;
  doc["config"]["argv"] = o.argv;
  doc["guest_image"] = prep.image;  // per run (a temporary directory): not part of the configuration
  doc["environment"] = host_environment("vm");
  doc["runs"] = nlohmann::json::array();
  doc["complete"] = false;
  std::string accel = "unknown";
  int failures = 0;
  size_t left = o.rates.size() * o.paths.size();
  resume::Eta eta(60 + o.seconds);
  for (uint32_t rate : o.rates) {
    for (const std::string& path : o.paths) {
      const std::string point = path + "|" + std::to_string(rate);
      --left;
      if (const auto* rows = earlier.take(point)) {
        for (const auto& r : *rows) doc["runs"].push_back(r);
        accel = (*rows)[0].value("accel", accel);
        std::fprintf(stderr, "vm_forward: %s path, %u datagrams/s: kept from %s\n", path.c_str(), rate,
                     out_path.c_str());
        continue;
      }
      const auto t0 = std::chrono::steady_clock::now();
      doc["runs"].push_back(launch_one(o, prep, point, path, rate, eta.left(left + 1), accel, failures));
      eta.measured(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      doc["environment"]["accel"] = accel;
      write_result(doc, out_path, "vm-forward");
    }
  }
  doc["environment"]["accel"] = accel;
  doc["environment"]["guest_kernel"] = "Linux 6.1 (Debian linux-source-6.1) + kernel/patches (ulsnet ULS)";
  doc["complete"] = failures == 0;
  doc["points_reused"] = earlier.reused;
  doc["run_seconds"] = seconds_since_start();

  const std::string out = write_result(doc, out_path, "vm-forward");
  print_table(doc, accel, o.seconds, out);
  vm::cleanup(prep, failures != 0);
  return failures ? 1 : 0;
}

}  // namespace
}  // namespace ulsnet

int main(int argc, char** argv) {
  ulsnet::Options o;
  CLI::App app{"A numbered UDP stream through a proxy VM: the real ULS zero-copy path vs the proxy's kernel"};
  app.add_option("--rates", o.rates, "offered datagrams/s, a list (default 1000,2000,5000,10000)")
      ->delimiter(',')
      ->check(CLI::Range(1u, 200000u));
  app.add_option("--paths", o.paths, "uls and/or kernel (default both)")->delimiter(',');
  app.add_option("--seconds", o.seconds, "stream length per run (default 5)")->check(CLI::Range(1u, 60u));
  app.add_option("--protection", o.protection, "kernel (uls.protect=1, default) or none");
  app.add_option("--accel", o.accel, "auto, kvm or tcg (default auto)")->check(CLI::IsMember({"auto", "kvm", "tcg"}));
  app.add_option("--out", o.out, "JSON output path (default results/vm-forward-<time>.json)");
  app.add_flag("--quick", o.quick, "rates 1000,5000 for 2 s each");
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
  if (o.quick) {
    o.rates = {1000, 5000};
    o.seconds = 2;
  }
  const std::optional<ulsnet::RunLock> lock = ulsnet::RunLock::take_or_explain("vm_forward", argc, argv);
  if (!lock) return 3;
  try {
    return ulsnet::run(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vm_forward: %s\n", e.what());
    return 1;
  }
}
