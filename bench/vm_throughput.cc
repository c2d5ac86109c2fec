#include "bench/vm_throughput.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "baselines/registry.h"
#include "bench/environment.h"
#include "bench/accounting.h"
#include "bench/search.h"
#include "bench/stats.h"
#include "bench/targets.h"
#include "bench/throughput_common.h"
#include "bench/throughput_options.h"
#include "bench/throughput_report.h"
#include "bench/vm_report.h"
#include "kernel/vm_harness.h"

namespace ulsnet {
namespace {

using vmrun::ReportError;

struct VmJob {
  std::string method, variant, mode;
};

// One launch of the three VMs: a job at one offered rate, one repetition, with or without
// instruction counting, for what (`purpose`).
struct VmPoint {
  VmJob job;
  double rate = 0;  // 0: unpaced
  int rep = 0;
  bool icount = false;
  // "rate+latency" (the --rates points), "cost" (VmThroughputOptions::cost_rate), "search" (a
  // step of the NDR/PDR search) or "load" (the sweep, at load_fraction of the job's PDR).
  std::string purpose;
  uint64_t count = 0;   // datagrams
  uint32_t payload = 24;
  double load_fraction = -1;  // "load": the fraction of the PDR lower bound
  std::string load_basis;
  std::string step;  // "search": the step's place in its search (for resuming)
};

// The guest's rate when unpaced is unknown in advance: the stream is this many datagrams per
// second of --duration (bounded), and the run measures what arrives.
constexpr uint64_t kMaxRateGuess = 30000, kMaxCount = 300000;

// What the frames go through on the proxy VM, per method and variant (for the labels).
std::string path_label(const VmJob& j) {
  if (j.method == "sandbox" && j.variant == "uls")
    return "real ULS kernel: e1000 -> zero-copy rings in the sandbox region -> the Stack image, run by "
           "kernel upcalls in the current process (no skb, no copy, no kernel protocol processing)";
  if (j.method == "kernel-socket") return "e1000 -> skb -> kernel IP/UDP -> UDP socket (copies) -> relay process";
  if (j.method == "kernel-forward") return "e1000 -> skb -> the proxy kernel's IP forwarding";
  if (j.method == "xdp-redirect") return "e1000 -> XDP program in the proxy kernel (" + j.variant + " mode) -> e1000";
  std::string dev = j.variant == "af_xdp" ? "generic XDP -> AF_XDP socket (copy mode: e1000 has no zero-copy AF_XDP)"
                    : j.variant == "af_packet_mmap" ? "skb -> packet socket rings (copy)"
                                                    : "skb -> packet socket, recvfrom/sendto (copy)";
  std::string how = j.method == "raw-socket"    ? "the Stack in the I/O thread"
                    : j.method == "user-thread" ? "the Stack in a second thread"
                                                : "the Stack as a sandbox extension, upcall made by the polling process "
                                                  "(stock-kernel emulation)";
  return "e1000 -> " + dev + " -> " + how;
}

std::vector<VmJob> expand(const VmThroughputOptions& o, bool modes_given) {
  // e1000 has no native XDP in Linux 6.1: that run could only report the error (ask for it by
  // name to see it).
  const std::vector<MethodVariant> mv =
      expand_method_specs(o.methods, [](const MethodInfo& m, std::string_view v, bool every_method) {
        return !(every_method && m.name == "xdp-redirect" && v == "native");
      });
  std::vector<VmJob> jobs;
  for (auto& [m, v] : mv)
    for (const std::string& mode : o.modes) {
      const bool relay = mode == "relay";
      if ((relay && !m->relay) || (!relay && !m->router)) continue;
      // By default router mode only where it is the point: the kernel's forwarding (router-only)
      // and the ULS path, to compare the two routers.
      if (!modes_given && !relay && m->relay && !needs_uls_kernel(m->name, v)) continue;
      jobs.push_back({std::string(m->name), v, mode});
    }
  return jobs;
}

// The median, NaN for none (bench/stats.h median).
double median_or_nan(std::vector<double> v) { return median(std::move(v)).value_or(std::nan("")); }

// What QEMU ran with, read back from the three command lines; they must agree.
nlohmann::json qemu_labels(const std::string& logs) {
  nlohmann::json per = nlohmann::json::object();
  std::string accel, icount;
  bool agree = true, any = false;
  for (const char* role : {"sender", "proxy", "receiver"}) {
    const std::string cmd = vm::slurp(logs + "/" + role + ".cmdline");
    if (cmd.empty()) {
      per[role] = "not recorded";
      agree = false;
      continue;
    }
    const vmrun::QemuRun q = vmrun::parse_qemu_cmdline(cmd);
    const std::string ic = q.icount ? q.icount_spec : "off";
    per[role] = {{"accel", q.accel}, {"icount", ic}};
    if (any && (q.accel != accel || ic != icount)) agree = false;
    accel = q.accel;
    icount = ic;
    any = true;
  }
  if (!any || !agree) throw ReportError("the VMs' QEMU command lines are missing or disagree: " + per.dump());
  return {{"accelerator", accel},
          {"icount", icount != "off"},
          {"icount_spec", icount},
          {"source", "each QEMU's /proc/PID/cmdline while it ran (kernel/vm.sh ROLE.cmdline)"}};
}

// The one-way delay statistics of the sink, with the clocks' agreement they rest on.
// `clocksources`: what CLOCK_MONOTONIC ran on in the sender and the receiver.
nlohmann::json latency_of(const nlohmann::json& sender, const nlohmann::json& sink, bool icount,
                          const nlohmann::json& clocksources) {
  nlohmann::json l = nlohmann::json::object();
  for (const char* k : {"latency_ns", "ipdv_ns", "pdv_ns", "rfc3550_jitter_ns", "jitter_ns"})
    if (sink.contains(k)) l[k] = sink[k];
  const nlohmann::json& c = sender.value("clock", nlohmann::json::object());
  l["clock"] = c;
  l["guest_clocksources"] = clocksources;
  auto tsc = [&](const char* role) { return clocksources.value(role, "").rfind("tsc", 0) == 0; };  // tsc, tsc-early
  if (!tsc("sender") || !tsc("receiver")) {
    l["one_way_valid"] = false;
    l["why"] = "a guest's CLOCK_MONOTONIC did not run on its TSC (jiffies: 4 ms steps): " + clocksources.dump();
    return l;
  }
  if (icount) {
    l["one_way_valid"] = false;
    l["why"] = "under icount each guest's clock advances with its own instructions while it runs: the two ends' "
               "clocks drift apart during the stream; IPDV and PDV are relative to one guest's clock only";
    return l;
  }
  if (!c.value("shifted", false) || !c.contains("residual_before") || !c.contains("residual_after") ||
      !c["residual_before"].contains("offset_ns") || !c["residual_after"].contains("offset_ns")) {
    l["one_way_valid"] = false;
    l["why"] = "the sender's clock could not be put on the receiver's: " + c.dump();
    return l;
  }
  // The stamps are on the receiver's clock to within the residual difference the sender measured
  // right before and right after the stream, each known to within half its smallest round trip.
  int64_t bound = 0;
  for (const char* k : {"residual_before", "residual_after"})
    bound = std::max(bound, std::abs(c[k]["offset_ns"].get<int64_t>()) + c[k]["uncertainty_ns"].get<int64_t>());
  l["one_way_valid"] = true;
  l["clock_error_bound_ns"] = bound;
  l["clock_drift_during_stream_ns"] =
      c["residual_after"]["offset_ns"].get<int64_t>() - c["residual_before"]["offset_ns"].get<int64_t>();
  return l;
}

// A host VM died during a launch (kernel/vm.sh: ULSNET-VM-DIED): the run ends there. `row` is
// the launch's row, with the error and "peer_died".
struct VmPeerDied {
  nlohmann::json row;
};

class VmRunner {
 public:
  VmRunner(const VmThroughputOptions& o, const vm::Prepared& prep) : o_(o), prep_(prep) {}

  // One launch: its result row (with "error" if anything could not be read); a launch the run
  // being resumed finished (same key, no error) is kept instead.
  nlohmann::json run(const VmPoint& p) {
    nlohmann::json r{{"method", p.job.method}, {"variant", p.job.variant}, {"mode", p.job.mode},
                     {"offered", p.rate > 0 ? nlohmann::json(p.rate) : nlohmann::json("max")},
                     {"rep", p.rep}, {"purpose", p.purpose}, {"count", p.count}, {"payload", p.payload}};
    if (p.load_fraction >= 0) r["load_fraction"] = p.load_fraction, r["load_basis"] = p.load_basis;
    const std::string key = vmrun::vm_point_key(r) + (p.purpose == "search" ? "|" + p.step : "") + "|rep:" +
                            std::to_string(p.rep) + (p.icount ? "|icount" : "");
    if (auto it = finished_.find(key); it != finished_.end()) {
      ++kept_;
      // The guest kernel's release, as the kept launch recorded it.
      const std::string k = it->second["labels"].value("kernel", "");
      if (guest_kernel_ == "unknown" && k.rfind("patched: Linux ", 0) == 0)
        guest_kernel_ = k.substr(15, k.find(' ', 15) - 15);
      fmt::print(stderr, "[{}] {}: finished in the earlier run, kept\n", ++n_, key);
      return it->second;
    }
    r["point"] = key;
    const auto t0 = std::chrono::steady_clock::now();
    launch(p, r);
    launch_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ++launched_;
    if (r.contains("peer_died")) {
      r["peer_died"]["run_s"] = seconds_since_start();
      r["peer_died"]["during"] = key;
      throw VmPeerDied{r};
    }
    return r;
  }

  // Launches still to come, for the estimate of the time left (at this run's average so far).
  std::string eta(size_t launches_left) const {
    if (!launched_) return "";
    return fmt::format(", about {:.0f} s left ({} launches at {:.0f} s)", launch_seconds_ / launched_ * double(launches_left),
                       launches_left, launch_seconds_ / launched_);
  }
  int kept() const { return kept_; }
  void set_finished(std::map<std::string, nlohmann::json> f) { finished_ = std::move(f); }

  int failures() const { return failures_; }
  const std::string& guest_kernel() const { return guest_kernel_; }

 private:
  void launch(const VmPoint& p, nlohmann::json& r) {
    const VmJob& j = p.job;
    const uint64_t count = p.count;
    const std::string tag = j.method + "-" + j.variant + "-" + j.mode + "-" + std::to_string(p.payload) + "B-" +
                            (p.rate > 0 ? std::to_string(uint64_t(p.rate)) : std::string("max")) + "-" +
                            std::to_string(p.rep) + (p.purpose == "cost" ? "-cost" : "") + (p.icount ? "-icount" : "") +
                            (p.purpose == "search" ? "-search" + p.step : p.purpose == "load" ? "-load" : "");
    // The generator's own bound on time: generous, the count ends the stream.
    const int seconds = 30 + int(10 * o_.duration);
    std::string append = "ulsnet.method=" + j.method + " ulsnet.variant=" + j.variant + " ulsnet.mode=" + j.mode +
                         " ulsnet.count=" + std::to_string(count) + " ulsnet.pps=" + std::to_string(uint64_t(p.rate)) +
                         " ulsnet.payload=" + std::to_string(p.payload) + " ulsnet.seconds=" + std::to_string(seconds);
    if (o_.protection == "none") append += " uls.protect=0";
    // The warm-up, as on the namespace hosts: at most a tenth of the stream.
    if (const int w = int(std::lround(1000 * std::min(o_.warmup, 0.1 * o_.duration))); w > 0 && p.purpose != "cost")
      append += " ulsnet.warmup_ms=" + std::to_string(w);
    const std::string why = p.purpose == "cost"     ? ", for the cost"
                            : p.purpose == "search" ? ", search step " + p.step
                            : p.purpose == "load"   ? fmt::format(", {:.0f}% of its PDR", 100 * p.load_fraction)
                                                    : std::string();
    fmt::print(stderr, "[{} {:.0f}s] {}:{} {} {}B at {} ({} datagrams){}{}...\n", ++n_, seconds_since_start(), j.method,
               j.variant, j.mode, p.payload, p.rate > 0 ? fmt::format("{:.0f} /s", p.rate) : std::string("max"), count,
               why, p.icount ? ", under icount" : "");
    const int timeout = (p.icount ? 900 : 240) + 10 * int(o_.duration);
    const std::string logs = prep_.workdir + "/" + tag;
    auto [rc, out] = vm::launch(prep_.image, prep_.initrd, logs,
                                "--hosts 3 --accel " + std::string(p.icount ? "tcg" : o_.accel) +
                                    " --test traffic --link udp --mgmt --end all" + (p.icount ? " --icount" : "") +
                                    " --count-insns " + vm::runfile("kernel/qemu_insn_count.so") +
                                    " --append '" + append + "'",
                                timeout);
    r["logs"] = logs;
    r["labels"] = {{"hosts", "vm"}, {"path", path_label(j)}, {"link", "QEMU socket netdev, UDP on 127.0.0.1"}};
    if (const auto at = out.find("ULSNET-VM-DIED "); at != std::string::npos) {
      const std::string line = out.substr(at, out.find('\n', at) - at);
      auto field = [&](const std::string& k) -> std::string {
        const auto f = line.find(" " + k + "=");
        if (f == std::string::npos) return "?";
        const size_t b = f + k.size() + 2, e = line.find(' ', b);
        return line.substr(b, e == std::string::npos ? std::string::npos : e - b);
      };
      const std::string role = field("role"), pid = field("qemu_pid"), after = field("after_s");
      r["error"] = "the " + role + " VM (QEMU pid " + pid + ") died " + after +
                   " s into its launch: its QEMU ended before the guest finished (console: " + logs + "/" + role + ".log)";
      r["peer_died"] = {{"role", role + " VM"}, {"pid", std::atoi(pid.c_str())}, {"after_s", std::atof(after.c_str())},
                        {"how", "its QEMU ended before the guest printed ULSNET-GUEST-DONE"}};
    } else {
      try {
        read_run(r, logs, p.icount);
      } catch (const std::exception& e) {
        r["error"] = std::string(e.what()) + " (launcher exit " + std::to_string(rc) + "; logs kept in " + logs + ")";
      }
    }
    if (r.contains("error")) {
      ++failures_;
      fmt::print(stderr, "  error: {}\n", r["error"].get<std::string>());
    } else {
      print_progress(r);
    }
  }

  // Fills a row from the logs of one launch; throws ReportError/std::exception for what cannot be read.
  void read_run(nlohmann::json& r, const std::string& logs, bool icount) {
    const std::string sender_log = vm::slurp(logs + "/sender.log"), proxy_log = vm::slurp(logs + "/proxy.log"),
                      receiver_log = vm::slurp(logs + "/receiver.log");
    // (The console's first line may start with the firmware's escape sequences.)
    if (auto at = proxy_log.find("ULSNET-GUEST-UP "); at != std::string::npos) {
      const std::string up = proxy_log.substr(at, proxy_log.find_first_of("\r\n", at) - at);
      if (auto k = up.find("kernel="); k != std::string::npos) guest_kernel_ = up.substr(k + 7);
    }
    r["labels"]["kernel"] = "patched: Linux " + guest_kernel_ + " + kernel/patches (ULS)";
    nlohmann::json clocksources = nlohmann::json::object();
    for (const auto& [role, log] : {std::pair{"sender", &sender_log}, std::pair{"proxy", &proxy_log},
                                    std::pair{"receiver", &receiver_log}})
      clocksources[role] = vm::line_after(*log, "ULSNET-CLOCK source=");
    r["labels"]["guest_clocksource"] = clocksources;
    for (const auto& [log, marker] : {std::pair{&proxy_log, "ULSNET-METHOD-ERROR "},
                                      std::pair{&sender_log, "ULSNET-TRAFFIC-ERROR "},
                                      std::pair{&receiver_log, "ULSNET-TRAFFIC-ERROR "}})
      if (const std::string e = vm::line_after(*log, marker); !e.empty()) throw ReportError(e);
    const nlohmann::json qemu = qemu_labels(logs);
    for (auto it = qemu.begin(); it != qemu.end(); ++it) r["labels"][it.key()] = it.value();
    const nlohmann::json sender = vmrun::report_json(sender_log, "ULSNET-TRAFFIC-SENDER ");
    const nlohmann::json proxy = vmrun::report_json(proxy_log, "ULSNET-METHOD-REPORT ");
    const nlohmann::json receiver = vmrun::report_json(receiver_log, "ULSNET-TRAFFIC-RECEIVER ");
    const nlohmann::json links =
        vmrun::link_counters(vm::slurp(logs + "/links.txt"), vm::slurp(logs + "/links-udp.txt"),
                             vm::slurp(logs + "/links-snmp.txt"), vm::slurp(logs + "/links-dev.txt"));
    r["sender"] = sender;
    r["proxy"] = proxy;
    r["receiver"] = receiver;
    r["links"] = links;
    r["accounting"] = vmrun::account_vm_run(sender, proxy, receiver, links);

    const nlohmann::json& g = sender["generator"];
    const nlohmann::json& sink = receiver["sink"];
    r["payload_bytes"] = sender.value("payload_bytes", 0);
    r["frame_bytes"] = sender.value("frame_bytes", 0);
    r["labels"]["frame_bytes"] = fmt::format("{} (Ethernet + IPv4 + UDP + {} B payload, FCS not counted)",
                                             sender.value("frame_bytes", 0), sender.value("payload_bytes", 0));
    r["labels"]["generator"] = g.value("generator", "?") + " (bench/traffic.h run_generator in the sender VM)";
    r["labels"]["sink"] = sink.value("sink", "?") + " (bench/traffic.h run_sink in the receiver VM)";
    if (proxy.contains("protection")) r["labels"]["protection"] = proxy["protection"];
    if (proxy.contains("device")) r["labels"]["device_mode"] = proxy["device"]["in"].value("copy_mode", "?");
    else if (proxy.contains("device_mode")) r["labels"]["device_mode"] = proxy["device_mode"];

    const double secs = g.value("duration_s", 0.0);
    const double sent = r["accounting"]["sent"].get<double>(), received = r["accounting"]["received"].get<double>();
    const double fwd = proxy.value("forwarded", 0.0);
    r["rate_basis"] = icount ? "the sender's sending time under icount: its own instruction-driven clock"
                             : "the sender's sending time (guest CLOCK_MONOTONIC)";
    r["offered_pps"] = secs > 0 ? sent / secs : 0;
    // The proxy's own rate: what it forwarded while the sender offered (the receiver VM, emulated
    // as well, may itself be the narrower end: delivered_pps says so).
    r["forwarded_pps"] = secs > 0 ? fwd / secs : 0;
    r["delivered_pps"] = secs > 0 ? received / secs : 0;
    r["loss_ratio"] = sent > 0 ? (sent - received) / sent : 0;
    r["proxy_loss_ratio"] = sent > 0 ? std::max(0.0, (sent - fwd) / sent) : 0;
    r["latency"] = latency_of(sender, sink, icount, r["labels"]["guest_clocksource"]);
    nlohmann::json cost = vmrun::proxy_cpu_per_packet(proxy);
    cost["unit"] = icount ? "guest ns under -icount shift=0: one per executed guest instruction"
                          : "guest ns (wall time under TCG: moves with host load)";
    cost["basis"] = "proxy VM busy time (/proc/stat, sampled at its 250 Hz tick, from the method's start to its "
                    "end) / datagrams forwarded; kernel = system + irq + softirq";
    cost["icount"] = icount;
    r["proxy_vm_cpu_ns_per_forwarded"] = cost;
    nlohmann::json insns = vmrun::insns_per_packet(proxy, vm::slurp(logs + "/proxy.insn.log"));
    insns["basis"] = "instructions the proxy VM executed from the method's start to its end (QEMU plugin "
                     "kernel/qemu/insn_count.c; kernel = in the kernel's half of the address space, which the ULS "
                     "extension's upcalls are not) / datagrams forwarded";
    insns["icount"] = icount;
    r["proxy_vm_insns_per_forwarded"] = insns;
  }

  static void print_progress(const nlohmann::json& r) {
    const nlohmann::json& a = r["accounting"];
    std::string lat = "-";
    if (r["latency"].value("one_way_valid", false) && r["latency"].contains("latency_ns") &&
        r["latency"]["latency_ns"].contains("p99"))
      lat = fmt::format("p50 {:.0f} / p99 {:.0f} us (+-{:.0f})", r["latency"]["latency_ns"]["p50"].get<double>() / 1e3,
                        r["latency"]["latency_ns"]["p99"].get<double>() / 1e3,
                        r["latency"]["clock_error_bound_ns"].get<double>() / 1e3);
    fmt::print(stderr, "  offered {:.0f}/s, forwarded {:.0f}/s, delivered {:.0f}/s; sent {} received {} dropped {} "
                       "unaccounted {}; latency {}; proxy CPU {:.0f} ns/pkt{}, {:.0f} instructions/pkt\n",
               r["offered_pps"].get<double>(), r["forwarded_pps"].get<double>(), r["delivered_pps"].get<double>(),
               a["sent"].get<uint64_t>(), a["received"].get<uint64_t>(), a["dropped"].get<uint64_t>(),
               a["unaccounted"].get<int64_t>(), lat, r["proxy_vm_cpu_ns_per_forwarded"].value("total", 0.0),
               r["labels"].value("icount", false) ? " (icount)" : "", r["proxy_vm_insns_per_forwarded"].value("total", 0.0));
  }

  const VmThroughputOptions& o_;
  const vm::Prepared& prep_;
  std::map<std::string, nlohmann::json> finished_;
  int failures_ = 0, kept_ = 0, n_ = 0, launched_ = 0;
  double launch_seconds_ = 0;
  std::string guest_kernel_ = "unknown";
};

// The rows of (method, variant) in relay mode with `purpose`, without error; for "rate+latency"
// those at max load only.
std::vector<const nlohmann::json*> rows_of(const nlohmann::json& results, const std::string& m, const std::string& v,
                                           const std::string& purpose, uint32_t payload) {
  std::vector<const nlohmann::json*> out;
  for (const auto& r : results)
    if (r["method"] == m && r["variant"] == v && r["mode"] == "relay" && r["purpose"] == purpose &&
        r.value("payload_bytes", 0u) == payload &&
        !r.contains("error") && (purpose != "rate+latency" || r["offered"] == "max"))
      out.push_back(&r);
  return out;
}

// The targets this run can decide (sandbox:uls against the others).
nlohmann::json vm_targets(const nlohmann::json& results, const nlohmann::json& capacity, const std::string& accel,
                          uint32_t payload) {
  nlohmann::json targets = nlohmann::json::array();
  auto best_fwd = [&](const std::string& m, const std::string& v) -> const nlohmann::json* {
    const nlohmann::json* b = nullptr;
    for (const nlohmann::json* r : rows_of(results, m, v, "rate+latency", payload))
      if (!b || (*r)["forwarded_pps"].get<double>() > (*b)["forwarded_pps"].get<double>()) b = r;
    return b;
  };
  const nlohmann::json* uls = best_fwd("sandbox", "uls");
  auto ratio = [&](const std::string& name, const std::string& m, const std::string& v, double goal) {
    nlohmann::json t{{"target", name}, {"goal", ">= " + fmt::format("{}", goal)}};
    const nlohmann::json* b = best_fwd(m, v);
    if (!uls || !b || (*b)["forwarded_pps"].get<double>() <= 0) {
      t["status"] = "not measured in this run";
    } else {
      const double x = (*uls)["forwarded_pps"].get<double>() / (*b)["forwarded_pps"].get<double>();
      t["value"] = x;
      const bool uls_censored = (*uls)["proxy_loss_ratio"].get<double>() < 0.001;
      const bool b_censored = (*b)["proxy_loss_ratio"].get<double>() < 0.001;
      t["status"] = uls_censored && b_censored ? "undecided: neither lost anything (the sender was the limit)"
                    : uls_censored              ? (x >= goal ? "met (lower bound)" : "undecided: the ULS path lost nothing")
                    : b_censored                ? (x < goal ? "not met (upper bound)" : "undecided")
                    : x >= goal                 ? "met"
                                                : "not met";
    }
    t["accelerator"] = accel;
    t["basis"] = "the best forwarded_pps of each method's repetitions, relay mode, unpaced sender";
    targets.push_back(t);
  };
  ratio("capacity vs kernel-socket batched relay", "kernel-socket", "batched", 2);
  ratio("capacity vs raw-socket (paper-era, af_packet)", "raw-socket", "af_packet", 3);
  ratio("capacity vs user-thread (paper-era, af_packet)", "user-thread", "af_packet", 3);
  ratio("capacity vs in-kernel XDP redirect (skb mode: e1000 has no native XDP)", "xdp-redirect", "skb", 0.8);

  // Cost: instructions per forwarded packet (exact, host load cannot move them) in the cost runs
  // (a paced load every method carries), medians of repetitions; the busy time next to it.
  {
    nlohmann::json t{{"target", "proxy-VM cost per forwarded packet vs kernel-socket batched, relay, cost runs"},
                     {"goal", "<= 0.4"},
                     {"measure", "guest instructions per forwarded packet (QEMU plugin), median of repetitions"}};
    auto cost_rows = [&](const std::string& m, const std::string& v) { return rows_of(results, m, v, "cost", payload); };
    auto med = [](const std::vector<const nlohmann::json*>& rows, const char* what, const char* k) {
      std::vector<double> x;
      for (const nlohmann::json* r : rows)
        if ((*r)[what].contains(k)) x.push_back((*r)[what][k]);
      return median_or_nan(x);
    };
    const auto u = cost_rows("sandbox", "uls"), k = cost_rows("kernel-socket", "batched");
    const char* I = "proxy_vm_insns_per_forwarded";
    const char* B = "proxy_vm_cpu_ns_per_forwarded";
    if (!u.empty() && !k.empty() && med(k, I, "total") > 0) {
      const double x = med(u, I, "total") / med(k, I, "total");
      t["value"] = x;
      t["status"] = x <= 0.4 ? "met" : "not met";
      for (const auto& [name, rows] : {std::pair{"sandbox_uls", &u}, std::pair{"kernel_socket_batched", &k}})
        t[name] = {{"instructions", {{"total", med(*rows, I, "total")}, {"user", med(*rows, I, "user")},
                                     {"kernel", med(*rows, I, "kernel")}}},
                   {"busy_ns", {{"total", med(*rows, B, "total")}, {"user", med(*rows, B, "user")},
                                {"kernel", med(*rows, B, "kernel")}}},
                   {"repetitions", rows->size()}};
      t["busy_ns_ratio"] = med(u, B, "total") / med(k, B, "total");
      t["icount"] = (*u.front())["labels"].value("icount", false) && (*k.front())["labels"].value("icount", false);
      t["load"] = (*u.front())["offered"];
    } else {
      t["status"] = "not measured in this run";
    }
    targets.push_back(t);
  }
  {
    nlohmann::json t{{"target", "p99 one-way latency vs kernel-socket batched (relay, unpaced sender)"},
                     {"goal", "<= 0.5 (the netns target is at the common load; here both at max load)"}};
    const auto u = rows_of(results, "sandbox", "uls", "rate+latency", payload),
               k = rows_of(results, "kernel-socket", "batched", "rate+latency", payload);
    auto p99 = [](const std::vector<const nlohmann::json*>& rows) {
      std::vector<double> x;
      for (const nlohmann::json* r : rows)
        if ((*r)["latency"].value("one_way_valid", false) && (*r)["latency"]["latency_ns"].contains("p99"))
          x.push_back((*r)["latency"]["latency_ns"]["p99"]);
      return median_or_nan(x);
    };
    if (!std::isnan(p99(u)) && !std::isnan(p99(k)) && p99(k) > 0) {
      t["value"] = p99(u) / p99(k);
      t["status"] = t["value"].get<double>() <= 0.5 ? "met (at max load)" : "not met (at max load)";
    } else {
      t["status"] = "not measured in this run";
    }
    targets.push_back(t);
  }
  // With the search (--vm-search): the PDR brackets' ratio, as on the namespace hosts
  // (bench/targets.h), sandbox:uls against each baseline in relay mode.
  if (capacity.is_array() && !capacity.empty()) {
    TargetSubject subject;
    subject.method = "sandbox";
    subject.variant = "uls";
    subject.payload = payload;
    for (nlohmann::json t : evaluate_targets({{"capacity", capacity}, {"results", nlohmann::json::array()}}, subject))
      if (t.value("target", "").rfind("pdr of ", 0) == 0 && t.value("target", "").find("xdp-redirect") == std::string::npos) {
        t["accelerator"] = accel;
        t["basis"] = "the PDR brackets of both, from this run's search (one launch of the VMs per trial)";
        targets.push_back(t);
      }
  }
  return targets;
}

// The jobs of `o` (`modes_given`: --modes was on the command line); false (exit 2) after one line
// on stderr.
bool expand_vm_jobs(const VmThroughputOptions& o, bool modes_given, std::vector<VmJob>& jobs) {
  try {
    jobs = expand(o, modes_given);
  } catch (const MethodError& e) {
    fmt::print(stderr, "throughput: {}\n", e.what());
    return false;
  }
  if (jobs.empty()) {
    fmt::print(stderr, "throughput: no method supports the modes asked for\n");
    return false;
  }
  return true;
}

// The plan by accelerator (--vm-tcg-reps, --vm-tcg-search-trials): under TCG those replace
// `o.reps` and `o.search_trials`. Null when neither is given; false (exit 1) when the
// accelerator cannot be resolved.
bool plan_for_accelerator(VmThroughputOptions& o, const vm::Prepared& prep, nlohmann::json& accel_plan) {
  if (o.tcg_reps <= 0 && o.tcg_search_trials <= 0) return true;
  const vm::Accelerator a = vm::resolve_accelerator(prep, o.accel);
  if (!a.error.empty()) {
    fmt::print(stderr, "throughput: which accelerator the VMs would run under: {}\n", a.error);
    return false;
  }
  accel_plan = {{"accelerator", a.name},
                {"reason", a.reason},
                {"reps_requested", o.reps},
                {"search_trials_requested", o.search_trials}};
  if (a.name == "tcg") {
    if (o.tcg_reps > 0) o.reps = o.tcg_reps;
    if (o.tcg_search_trials > 0) o.search_trials = o.tcg_search_trials;
  }
  accel_plan["reps"] = o.reps;
  accel_plan["search_trials"] = o.search_trials;
  fmt::print(stderr, "throughput: the VMs run under {} ({}): {} repetition(s) per point{}\n", a.name, a.reason,
             o.reps, o.search ? fmt::format(", at most {} launches per search", o.search_trials) : std::string());
  return true;
}

// The run's configuration as the result file records it (and a resumed run must match).
nlohmann::json vm_config_json(const VmThroughputOptions& o, int cost_reps, const SearchOptions& so) {
  nlohmann::json config = {
      {"hosts", "vm"},
      {"methods", o.methods},
      {"modes", o.modes},
      {"rates", o.rates},
      {"duration_s", o.duration},
      {"reps", o.reps},
      {"quick", o.quick},
      {"accel_requested", o.accel},
      {"icount", o.icount},
      {"cost_runs", {{"rate_pps", o.cost_rate}, {"datagrams", o.cost_count}, {"per_job", cost_reps}}},
      {"uls_protection", o.protection},
      {"payload_bytes", o.payloads.front()},
      {"payloads", o.payloads},
      {"payload_note", "rates at every size; the cost runs, the search, the sweep and the targets at the first"},
      {"search", o.search ? search_settings_json(so) : nlohmann::json(false)},
      {"loads", o.loads},
      {"load_sweep_basis", "fractions of each job's own PDR lower bound at the first size"},
      {"warmup_s", std::min(o.warmup, 0.1 * o.duration)},
      {"generator", "bench/traffic.h run_generator (UDP socket, sendmmsg, per-datagram CLOCK_MONOTONIC "
                    "stamps) in the sender VM; 'max' = unpaced"},
      {"sink", "bench/traffic.h run_sink (UDP socket, recvmmsg, per-datagram kernel receive times) in "
               "the receiver VM"},
      {"links", "kernel/vm.sh --link udp: one UDP datagram per frame between the QEMUs, drops counted "
                "per socket by the host kernel; --mgmt: a direct sender-receiver link for the clocks"},
      {"guests", {{"vcpus", 1}, {"mem_mb", 256}, {"nic", "e1000"}}}};
  if (o.tcg_reps > 0 || o.tcg_search_trials > 0)
    config["under_tcg"] = {{"reps", o.tcg_reps}, {"search_trials", o.tcg_search_trials}};
  return config;
}

// One VM run after its checks: the result document, saved after every launch and search, and
// the estimate of the launches left.
class VmRun {
 public:
  VmRun(const VmThroughputOptions& o, const vm::Prepared& prep, std::vector<double> rates,
        const nlohmann::json& accel_plan)
      : o_(o), prep_(prep), rates_(std::move(rates)), cost_reps_(o.cost_reps > 0 ? o.cost_reps : o.reps),
        size0_(o.payloads.front()), runner_(o, prep) {
    // One phase: a narrowing trial would cost a whole launch (the boot) as well.
    so_ = ndr_pdr_search_options(o.pdr_loss, {o.duration}, o.search_precision, o.search_trials, o.search_max,
                                 o.final_trials);
    so_.min_rate_pps = 100;
    doc_["schema"] = "ulsnet.throughput-vm.v2";
    doc_["config"] = vm_config_json(o, cost_reps_, so_);
    // The image's path is per run (a temporary directory): not part of the configuration.
    doc_["guest_image"] = prep.image;
    if (!accel_plan.is_null()) doc_["accelerator_plan"] = accel_plan;
    path_ = result_path(o.out, "throughput-vm");
  }

  bool resume();
  void start(size_t jobs);
  void run_job(const VmJob& j, size_t ji, size_t jobs);
  int finish();
  int end_by_peer(const nlohmann::json& row);

 private:
  void save() {
    doc_["complete"] = false;
    doc_["run_seconds"] = seconds_since_start();
    write_result(doc_, path_, "throughput-vm");
  }
  void add(nlohmann::json row) {
    doc_["results"].push_back(std::move(row));
    save();
  }
  uint64_t count_for(double rate) const {
    return rate > 0 ? std::max<uint64_t>(1, uint64_t(rate * o_.duration))
                    : std::min<uint64_t>(kMaxCount, uint64_t(kMaxRateGuess * o_.duration));
  }
  nlohmann::json rate_points(const VmJob& j);
  nlohmann::json search(const VmJob& j, const nlohmann::json& max_row);
  TrialOutcome search_trial(const VmJob& j, double rate, int& step, const nlohmann::json& max_row);
  void sweep(const VmJob& j, const nlohmann::json& cap);

  const VmThroughputOptions& o_;
  const vm::Prepared& prep_;
  const std::vector<double> rates_;
  const int cost_reps_;
  const uint32_t size0_;
  SearchOptions so_;
  nlohmann::json doc_;
  std::string path_;
  VmRunner runner_;
  size_t left_ = 0;  // launches known to be ahead (a search counts as its bound on trials)
};

// An existing --out with the same configuration: its finished launches are kept. False (exit 2)
// when it cannot be resumed.
bool VmRun::resume() {
  if (o_.out.empty() || !std::filesystem::exists(path_) || o_.fresh) return true;
  nlohmann::json old;
  if (!read_earlier_run(path_, old)) return false;
  nlohmann::json old_config = old.value("config", nlohmann::json::object());
  if (old_config.is_object()) old_config.erase("argv");
  if (old.value("schema", "") != doc_["schema"] || old_config != doc_["config"]) {
    refuse_other_configuration(path_);
    return false;
  }
  std::map<std::string, nlohmann::json> finished;
  for (const auto& r : old.value("results", nlohmann::json::array()))
    if (r.contains("point") && !r.contains("error")) finished[r["point"].get<std::string>()] = r;
  fmt::print(stderr, "throughput: resuming {}: {} launches finished there\n", path_, finished.size());
  runner_.set_finished(std::move(finished));
  return true;
}

void VmRun::start(size_t jobs) {
  doc_["config"]["argv"] = o_.argv;
  doc_["environment"] = host_environment("vm");
  doc_["results"] = nlohmann::json::array();
  doc_["capacity"] = nlohmann::json::array();
  const size_t per_job = o_.reps * (o_.payloads.size() * rates_.size() + o_.loads.size()) + size_t(cost_reps_) +
                         (o_.search ? size_t(o_.search_trials) : 0);
  left_ = per_job * jobs;
}

void VmRun::run_job(const VmJob& j, size_t ji, size_t jobs) {
  fmt::print(stderr, "job {}/{}: {}:{} {}{}\n", ji + 1, jobs, j.method, j.variant, j.mode, runner_.eta(left_));
  const nlohmann::json max_row = rate_points(j);
  if (o_.search) sweep(j, search(j, max_row));
  for (int rep = 0; rep < cost_reps_; ++rep) {
    add(runner_.run({j, o_.cost_rate, rep, o_.icount != "off", "cost", o_.cost_count, size0_}));
    if (left_) --left_;
  }
}

// The --rates points at every size. Returns the first repetition's unpaced row at the first
// size: the search's first step (an unpaced trial at --duration) would be the same launch again.
nlohmann::json VmRun::rate_points(const VmJob& j) {
  nlohmann::json max_row;
  for (int rep = 0; rep < o_.reps; ++rep)
    for (uint32_t payload : o_.payloads)
      for (double rate : rates_) {
        add(runner_.run({j, rate, rep, o_.icount == "all", "rate+latency", count_for(rate), payload}));
        if (rep == 0 && payload == size0_ && rate == 0) max_row = doc_["results"].back();
        --left_;
      }
  return max_row;
}

// NDR and PDR of `j` at the first size, one launch per trial; the capacity entry, also saved.
nlohmann::json VmRun::search(const VmJob& j, const nlohmann::json& max_row) {
  int step = 0;
  SearchResult sr = throughput_search(so_, [&](double rate, double d) {
    (void)d;  // one phase: every trial lasts --duration
    return search_trial(j, rate, step, max_row);
  });
  nlohmann::json cap = search_result_json(sr, so_);
  cap.update({{"method", j.method},
              {"variant", j.variant},
              {"mode", j.mode},
              {"payload_bytes", size0_},
              {"search_ceiling_basis",
               "what the sender VM's generator offered unpaced in this job's own first step, lowered to "
               "what it offered where a paced trial fell short"},
              {"trial", "one launch of the three VMs per trial (boot, stream of --duration, reports)"}});
  for (const CriterionResult& c : sr.criteria)
    fmt::print(stderr, "{}:{} {} {}B {}: {}\n", j.method, j.variant, j.mode, size0_, c.criterion.name,
               describe_bracket(cap[c.criterion.name]));
  // The trials the search did not need.
  const size_t unused = size_t(o_.search_trials) - std::min<size_t>(size_t(o_.search_trials), size_t(step));
  left_ -= std::min(left_, unused);
  doc_["capacity"].push_back(cap);
  save();
  return cap;
}

// One step of the search: a launch at `rate`, or the job's unpaced point for its first step.
TrialOutcome VmRun::search_trial(const VmJob& j, double rate, int& step, const nlohmann::json& max_row) {
  VmPoint p{j, rate, 0, o_.icount == "all", "search", count_for(rate), size0_};
  p.step = fmt::format("{}@{}", step, rate > 0 ? fmt::format("{:.0f}", rate) : std::string("max"));
  const bool reuse = step++ == 0 && rate == 0 && max_row.is_object() && !max_row.contains("error");
  nlohmann::json row = reuse ? max_row : runner_.run(p);
  TrialOutcome out;
  out.sample = {{"point", row.value("point", "")}};
  if (row.contains("error")) {
    out.error = row["error"];
  } else {
    out.offered_pps = row["offered_pps"];
    out.loss = row["loss_ratio"];
    out.tester_loss = tester_loss(row["accounting"]["drops"], row["accounting"].value("sent", uint64_t(0)));
    for (const char* k : {"offered_pps", "forwarded_pps", "delivered_pps", "loss_ratio", "proxy_loss_ratio"})
      out.sample[k] = row[k];
    out.sample["unaccounted"] = row["accounting"]["unaccounted"];
  }
  if (reuse) {
    out.sample["reused"] = "the job's unpaced point (first repetition), the same launch";
  } else {
    add(std::move(row));
  }
  if (left_) --left_;
  return out;
}

// The offered-load sweep at the first size: fractions of the job's own PDR lower bound.
void VmRun::sweep(const VmJob& j, const nlohmann::json& cap) {
  const std::optional<double> pdr_lo = pdr_lower_bound(cap);
  if (!o_.loads.empty() && !pdr_lo) {
    fmt::print(stderr, "{}:{} {}: no offered-load sweep: no PDR lower bound at {} B\n", j.method, j.variant, j.mode,
               size0_);
    left_ -= std::min(left_, o_.reps * o_.loads.size());
  }
  if (!pdr_lo) return;
  for (double f : o_.loads)
    for (int rep = 0; rep < o_.reps; ++rep) {
      const double rate = sweep_rate(f, *pdr_lo);
      VmPoint p{j, rate, rep, o_.icount == "all", "load", count_for(rate), size0_};
      p.load_fraction = f;
      p.load_basis = sweep_basis(f, size0_, *pdr_lo, cap);
      add(runner_.run(p));
      if (left_) --left_;
    }
}

// A host VM died: its launch's row and "ended_by" saved ("complete": false), the logs kept.
// Returns the exit status (1).
int VmRun::end_by_peer(const nlohmann::json& row) {
  const nlohmann::json d = row["peer_died"];
  doc_["ended_by"] = {{"peer_died", d}};
  add(row);
  fmt::print(stderr, "throughput: the run ends: {}, {:.0f} s into the run; the results so far are in {} (\"complete\": false)\n",
             row.value("error", "?"), d.value("run_s", 0.0), path_);
  vm::cleanup(prep_, true);
  return 1;
}

// The summary, the targets and the report; the file written whole. Returns the exit status.
int VmRun::finish() {
  std::string accel = "unknown";
  for (const auto& r : doc_["results"])
    if (r.contains("labels") && r["labels"].contains("accelerator") && r["purpose"] != "cost") accel = r["labels"]["accelerator"];
  doc_["environment"]["accel"] = accel;
  doc_["environment"]["guest_kernel"] = runner_.guest_kernel();
  doc_["summary"] = vmrun::summarize_vm_points(doc_["results"]);
  doc_["targets"] = vm_targets(doc_["results"], doc_["capacity"], accel, size0_);
  doc_["run_seconds"] = seconds_since_start();  // guest kernel build or cache check included
  doc_["complete"] = true;
  write_result(doc_, path_, "throughput-vm");
  print_vm_report(doc_, accel, runner_.guest_kernel(), path_);
  vm::cleanup(prep_, runner_.failures() != 0);
  const size_t n = doc_["results"].size();
  if (runner_.kept()) fmt::print(stderr, "throughput: {} of {} launches kept from the earlier run\n", runner_.kept(), n);
  if (runner_.failures()) fmt::print(stderr, "throughput: {} of {} VM runs failed\n", runner_.failures(), n);
  return runner_.failures() ? 1 : 0;
}

}  // namespace

std::optional<double> parse_offered_rate(const std::string& r) {
  if (r == "max") return 0.0;
  char* end = nullptr;
  const double v = std::strtod(r.c_str(), &end);
  if (!end || *end || !(v > 0)) return std::nullopt;
  return v;
}

int run_vm_throughput(VmThroughputOptions o) {
  const bool modes_given = !(o.modes.size() == 2 && o.modes[0] == "relay" && o.modes[1] == "router");
  if (o.quick) apply_quick_defaults(o);
  std::vector<double> rates;
  if (!check_vm_options(o, rates)) return 2;
  std::vector<VmJob> jobs;
  if (!expand_vm_jobs(o, modes_given, jobs)) return 2;
  if (!check_vm_search_options(o)) return 2;
  const vm::Prepared prep = vm::prepare({vm::runfile("bench/ulsnet_proxy"), vm::runfile("bench/ulsnet_traffic")});
  if (!prep.error.empty()) {
    fmt::print(stderr, "throughput: --hosts=vm: {}\n", prep.error);
    return prep.usage_error ? 2 : 1;
  }
  nlohmann::json accel_plan;
  if (!plan_for_accelerator(o, prep, accel_plan)) {
    vm::cleanup(prep, true);
    return 1;
  }
  VmRun run(o, prep, std::move(rates), accel_plan);
  if (!run.resume()) {
    vm::cleanup(prep, false);
    return 2;
  }
  run.start(jobs.size());
  try {
    for (size_t ji = 0; ji < jobs.size(); ++ji) run.run_job(jobs[ji], ji, jobs.size());
  } catch (const VmPeerDied& d) {
    return run.end_by_peer(d.row);
  }
  return run.finish();
}

}  // namespace ulsnet
