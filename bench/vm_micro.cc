// //bench:vm_micro: E4 on the real ULS kernel (claim C4: entering the sandbox costs about a
// system call, far less than a switch to another process). Builds the patched kernel (kernel/),
// boots it in one virtual host per protection mode asked (uls.protect is a boot parameter) and
// runs bench/guest/uls_micro.c there, which times, per operation, ITERATIONS back-to-back
// operations per repetition after a warm-up: an indirect function call, a null system call, a
// null ioctl on /dev/uls, an upcall (ULS_IOC_RAISE -> the kernel runs a registered extension that
// only returns -> uls_return restores the process), a signal to self and a process round trip
// over two pipes. Under TCG the guest's clock is emulated time, so the QEMU instruction-count
// plugin (kernel/qemu/insn_count.c) also gives the guest instructions per operation, from markers
// the guest executes around each repetition. One JSON file (schema ulsnet.vm-micro.v1, see
// bench/README.md), written after every launch ("complete": false until the last); the same --out
// resumes it, keeping each protection mode whose launch finished (bench/resume.h; --fresh starts
// over). Needs root (QEMU in a private network namespace).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "bench/environment.h"
#include "bench/resume.h"
#include "bench/vm_micro_parse.h"
#include "bench/run_lock.h"
#include "kernel/vm_harness.h"

namespace ulsnet {
namespace {

struct Options {
  uint64_t iterations = 5000;
  int reps = 5;
  std::vector<std::string> protection = {"kernel", "none"};
  std::string accel = "auto";
  std::string out;
  bool quick = false;
  bool fresh = false;
  int timeout_s = 0;
  std::vector<std::string> argv;
};

// Guest seconds for one VM: boot and init, then every operation's warm-up and repetitions at a
// generous 300 us each (an upcall with protection, the dearest, takes ~100-200 us under TCG).
int default_timeout(uint64_t warmup, uint64_t iterations, int reps) {
  const double ops = double(vmmicro::op_names().size()) * double(warmup + iterations * uint64_t(reps));
  return int(std::min(86400.0, 60 + ops * 300e-6));
}

// What one launch is given: its guest's warm-up and bound, the launcher's timeout, whether
// instructions are counted (and the plugin that counts them).
struct LaunchPlan {
  uint64_t warmup = 0;
  int timeout = 0, budget = 0;
  bool counting = false;
  std::string plugin;
};

LaunchPlan launch_plan(const Options& o) {
  LaunchPlan p;
  p.warmup = std::max<uint64_t>(1, o.iterations / 10);
  p.timeout = o.timeout_s ? o.timeout_s : default_timeout(p.warmup, o.iterations, o.reps);
  // The guest's own bound: what is left of the timeout after booting (~1-2 s under TCG), so that
  // a stuck operation ends the program before the launcher ends the VM.
  p.budget = std::max(5, p.timeout - 15);  // <= 86400, what the guest accepts
  p.counting = o.accel != "kvm";
  return p;
}

nlohmann::json config_json(const Options& o, const LaunchPlan& p) {
  nlohmann::json defs = nlohmann::json::object();
  for (const auto& [op, what] : vmmicro::op_definitions()) defs[op] = what;
  return {
      {"iterations", o.iterations},
      {"warmup", p.warmup},
      {"reps", o.reps},
      {"protection", o.protection},
      {"accel_requested", o.accel},
      {"quick", o.quick},
      {"timeout_s", p.timeout},
      {"guest_budget_s", p.budget},
      {"ops", vmmicro::op_names()},
      {"op_definitions", defs},
      {"guest", {{"vcpus", 1}, {"mem_mb", 256}, {"program", "bench/guest/uls_micro.c"}}},
      {"protection_boot_args", {{"kernel", "uls.protect=1"}, {"none", "uls.protect=0"}}},
      {"ns_per_op_basis",
       "CLOCK_MONOTONIC in the guest around each repetition of `iterations` operations, divided by them; "
       "under TCG the guest's clock is emulated time (its TSC is the host's), so it moves with the host's "
       "load and with TCG's translation costs"},
      {"insns_per_op_basis",
       "guest instructions (QEMU TCG plugin kernel/qemu/insn_count.c) between markers the guest executes "
       "just inside each repetition's loop, divided by the iterations: every instruction the one vCPU ran "
       "in that window (user = lower half of the address space, where the extension runs too; kernel = "
       "upper half), so the pipe's child and any interrupt in the window are included. Only under TCG"},
      {"ratios_basis", "medians over repetitions; ratios from ns_per_op, ratios_insns from insns_per_op; "
                       "upcall_minus_ioctl_over_syscall leaves out the raise's own system call"},
  };
}

// The instruction log of a launch, or why there is none.
std::optional<std::string> instruction_log(const LaunchPlan& p, const std::string& accel, const std::string& logs,
                                           std::string& why) {
  if (!p.counting) {
    why = "not counted: --accel kvm (QEMU's instruction-count plugin works only under TCG)";
  } else if (accel != "tcg") {
    why = "not counted: the accelerator was " + accel + " (QEMU's instruction-count plugin works only under TCG)";
  } else if (!std::filesystem::exists(logs + "/single.insn.log")) {
    why = "not counted: QEMU wrote no instruction log (" + logs + "/single.insn.log)";
  } else {
    return vm::slurp(logs + "/single.insn.log");
  }
  return std::nullopt;
}

// One VM with protection `prot`: its row, read from the guest's log (and the instruction log).
// `accels` gets the accelerator it ran under; a run that did not complete counts in `failures`.
nlohmann::json launch_one(const Options& o, const LaunchPlan& p, const vm::Prepared& prep, const std::string& prot,
                          const std::string& eta, std::set<std::string>& accels, int& failures) {
  const std::string logs = prep.workdir + "/" + prot;
  const std::string append = "ulsnet.args=" + std::to_string(o.iterations) + "," + std::to_string(p.warmup) + "," +
                             std::to_string(o.reps) + "," + std::to_string(p.budget) +
                             (prot == "none" ? " uls.protect=0" : " uls.protect=1");
  std::fprintf(stderr, "vm_micro: protection %s: %llu iterations x %d repetitions per operation (up to %d s%s)\n",
               prot.c_str(), static_cast<unsigned long long>(o.iterations), o.reps, p.timeout, eta.c_str());
  auto [vrc, vout] =
      vm::launch(prep.image, prep.initrd, logs,
                 "--hosts 1 --accel " + o.accel + " --run /bin/uls_micro_guest --append '" + append + "'" +
                     (p.counting ? " --count-insns " + p.plugin : ""),
                 p.timeout);
  const std::string accel = vm::last_line(vm::slurp(logs + "/accel"));
  accels.insert(accel.empty() ? "unknown" : accel);
  const std::string cmdline = vm::slurp(logs + "/single.cmdline");
  const bool plugin_loaded = cmdline.find("-plugin") != std::string::npos;
  std::string why;
  const std::optional<std::string> insn_log = instruction_log(p, accel, logs, why);

  const vmmicro::GuestLog g = vmmicro::parse_guest_log(vm::slurp(logs + "/single.log"));
  nlohmann::json r = vmmicro::summarize_run(g, insn_log, why, o.iterations, o.reps);
  r["point"] = prot;
  r["protection"] = prot;
  r["accel"] = accel;
  r["instruction_counting"] = plugin_loaded;
  if (r["guest_protected"].is_boolean() && r["guest_protected"].get<bool>() != (prot == "kernel")) {
    r["problems"].push_back("the guest kernel reports protection " +
                            std::string(r["guest_protected"].get<bool>() ? "on" : "off") + ", not what was asked");
    r["complete"] = false;
  }
  if (vrc != 0) r["problems"].push_back("kernel/vm.sh exited with " + std::to_string(vrc));
  const bool ok = vrc == 0 && r["complete"].get<bool>();
  if (!ok) {
    std::fprintf(stderr, "vm_micro: the guest run (%s) did not complete; log in %s\n%s\n", prot.c_str(),
                 logs.c_str(), vout.c_str());
    for (const auto& pr : r["problems"]) std::fprintf(stderr, "  %s\n", pr.get<std::string>().c_str());
    ++failures;
  }
  return r;
}

// The table on stdout: per protection mode, every operation and the ratios.
void print_table(const Options& o, const nlohmann::json& doc, const std::string& accel_used, const std::string& out) {
  fmt::print("vm_micro on the patched kernel, accelerator {} ({} iterations x {} repetitions per operation; "
             "medians, [min-max])\n",
             accel_used, o.iterations, o.reps);
  for (const auto& r : doc["runs"]) {
    fmt::print("protection {}{}\n", r["protection"].get<std::string>(),
               r["complete"].get<bool>() ? "" : " (INCOMPLETE: see problems in the JSON)");
    fmt::print("  {:<9} {:>12} {:>23} {:>14} {:>14}\n", "op", "ns/op", "[min-max]", "insns/op", "(user/kernel)");
    for (const auto& e : r["ops"]) {
      const auto& n = e["ns_per_op"];
      std::string insns = "-", split;
      if (e.contains("insns_per_op")) {
        insns = fmt::format("{:.1f}", e["insns_per_op"]["median"].get<double>());
        split = fmt::format("{:.0f}/{:.0f}", e["insns_per_op"]["user"]["median"].get<double>(),
                            e["insns_per_op"]["kernel"]["median"].get<double>());
      }
      fmt::print("  {:<9} {:>12.1f} {:>23} {:>14} {:>14}\n", e["op"].get<std::string>(), n["median"].get<double>(),
                 fmt::format("[{:.1f}-{:.1f}]", n["min"].get<double>(), n["max"].get<double>()), insns, split);
    }
    auto show = [](const nlohmann::json& x) { return x.is_number() ? fmt::format("{:.2f}", x.get<double>()) : "-"; };
    for (const char* key : {"ratios", "ratios_insns"})
      fmt::print("  {:<13} upcall/syscall {}  upcall/pipe round trip {}  (upcall-ioctl)/syscall {}\n", key,
                 show(r[key]["upcall_over_syscall"]), show(r[key]["upcall_over_pipe_round_trip"]),
                 show(r[key]["upcall_minus_ioctl_over_syscall"]));
  }
  fmt::print("results: {}\n", out);
}

int run(const Options& o) {
  LaunchPlan plan = launch_plan(o);
  const nlohmann::json config = config_json(o, plan);
  // Before the kernel is built: a file that cannot be resumed is refused at once.
  const std::string out_path = result_path(o.out, "vm-micro");
  resume::Earlier earlier;
  try {
    earlier = resume::load(o.out.empty() ? "" : out_path, o.fresh, "vm_micro", config);
  } catch (const resume::Refused& e) {
    std::fprintf(stderr, "vm_micro: %s\n", e.what());
    return 2;
  }

  const vm::Prepared prep = vm::prepare({vm::runfile("bench/uls_micro_guest")});
  if (!prep.error.empty()) {
    std::fprintf(stderr, "vm_micro: %s\n", prep.error.c_str());
    return prep.usage_error ? 2 : 1;
  }
  plan.plugin = plan.counting ? vm::runfile("kernel/qemu_insn_count.so") : "";

  nlohmann::json doc;
  doc["experiment"] = "vm_micro";
  doc["schema"] = "ulsnet.vm-micro.v1";
  doc["config"] = config;
  doc["config"]["argv"] = o.argv;
  doc["guest_image"] = prep.image;  // per run (a temporary directory): not part of the configuration
  doc["environment"] = host_environment("vm");
  doc["runs"] = nlohmann::json::array();
  doc["complete"] = false;
  resume::Eta eta(20 + plan.timeout / 4.0);
  size_t left = o.protection.size();

  std::set<std::string> accels;
  int failures = 0;
  for (const std::string& prot : o.protection) {
    --left;
    if (const auto* rows = earlier.take(prot)) {
      for (const auto& r : *rows) {
        doc["runs"].push_back(r);
        accels.insert(r.value("accel", "unknown"));
      }
      std::fprintf(stderr, "vm_micro: protection %s: kept from %s\n", prot.c_str(), out_path.c_str());
      continue;
    }
    const auto t0 = std::chrono::steady_clock::now();
    doc["runs"].push_back(launch_one(o, plan, prep, prot, eta.left(left + 1), accels, failures));
    eta.measured(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    write_result(doc, out_path, "vm-micro");
  }
  std::string accel_used;
  for (const auto& a : accels) accel_used += (accel_used.empty() ? "" : ",") + a;
  doc["environment"]["accel"] = accel_used;
  doc["environment"]["guest_kernel"] = "Linux 6.1 (Debian linux-source-6.1) + kernel/patches (ulsnet ULS)";
  doc["run_seconds"] = seconds_since_start();
  doc["complete"] = failures == 0;
  doc["points_reused"] = earlier.reused;
  const std::string out = write_result(doc, out_path, "vm-micro");
  print_table(o, doc, accel_used, out);
  vm::cleanup(prep, failures != 0);
  return failures ? 1 : 0;
}

}  // namespace
}  // namespace ulsnet

int main(int argc, char** argv) {
  ulsnet::Options o;
  CLI::App app{"E4 on the real ULS kernel: raise -> extension -> return against a call, a system call, a signal "
               "and a process round trip, measured inside a VM"};
  app.add_option("--iterations", o.iterations, "operations per repetition (default 5000; --quick 1000)")
      ->check(CLI::Range(uint64_t{10}, uint64_t{10000000}));
  app.add_option("--reps", o.reps, "repetitions per operation (default 5; --quick 3)")->check(CLI::Range(1, 100));
  app.add_option("--protection", o.protection, "kernel (uls.protect=1) and/or none (uls.protect=0), a list")
      ->delimiter(',')
      ->check(CLI::IsMember({"kernel", "none"}));
  app.add_option("--accel", o.accel, "auto, kvm or tcg (default auto)")->check(CLI::IsMember({"auto", "kvm", "tcg"}));
  app.add_option("--out", o.out, "JSON output path (default results/vm-micro-<time>.json)");
  app.add_option("--timeout", o.timeout_s, "seconds per VM (default: from the configuration)")
      ->check(CLI::Range(10, 86400));
  app.add_flag("--quick", o.quick, "1000 iterations x 3 repetitions unless given (about a minute here)");
  app.add_flag("--fresh", o.fresh, "--out names an existing file: start over instead of resuming it");
  o.argv.assign(argv, argv + argc);
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);  // prints the message
    return 2;
  }
  if (o.quick) {
    if (app.count("--iterations") == 0) o.iterations = 1000;
    if (app.count("--reps") == 0) o.reps = 3;
  }
  std::set<std::string> seen;
  for (const auto& p : o.protection)
    if (!seen.insert(p).second) {
      std::fprintf(stderr, "vm_micro: --protection lists '%s' twice\n", p.c_str());
      return 2;
    }
  if (o.protection.empty()) {
    std::fprintf(stderr, "vm_micro: --protection needs kernel and/or none\n");
    return 2;
  }
  const std::optional<ulsnet::RunLock> lock = ulsnet::RunLock::take_or_explain("vm_micro", argc, argv);
  if (!lock) return 3;
  try {
    return ulsnet::run(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vm_micro: %s\n", e.what());
    return 1;
  }
}
