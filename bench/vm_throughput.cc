#include "bench/vm_throughput.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "baselines/proxy_method.h"
#include "bench/environment.h"
#include "kernel/vm_harness.h"

namespace ulsnet {
namespace {

struct VmJob {
  std::string method, variant, mode;
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

// key=value (a number, possibly fractional) from a "key=value ..." line; NaN if absent.
double num(const std::string& line, const std::string& key) {
  auto k = (" " + line).find(" " + key + "=");
  if (k == std::string::npos) return std::nan("");
  return std::strtod(line.c_str() + k + key.size() + 1, nullptr);
}

uint64_t sum_drops(const nlohmann::json& drops) {
  uint64_t t = 0;
  if (!drops.is_object()) return 0;
  for (auto st = drops.begin(); st != drops.end(); ++st)
    for (auto r = st->begin(); r != st->end(); ++r)
      if (r->is_number_unsigned() || r->is_number_integer()) t += r->get<uint64_t>();
  return t;
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
  if (o.quick) {
    if (o.methods.empty())
      o.methods = {"sandbox:uls", "kernel-socket:batched", "raw-socket:af_packet", "user-thread:af_packet"};
    o.duration = std::min(o.duration, 2.0);
  }
  for (const auto& m : o.modes)
    if (m != "relay" && m != "router") {
      fmt::print(stderr, "throughput: bad mode '{}' (relay, router)\n", m);
      return 2;
    }
  std::vector<double> rates;
  for (const auto& r : o.rates) {
    const std::optional<double> v = parse_offered_rate(r);
    if (!v || (*v != 0 && (*v < 1 || *v > 1e6))) {
      fmt::print(stderr, "throughput: bad rate '{}' (use 'max' or datagrams per second)\n", r);
      return 2;
    }
    rates.push_back(*v);
  }
  if (o.protection != "kernel" && o.protection != "none") {
    fmt::print(stderr, "throughput: --vm-protection is kernel or none\n");
    return 2;
  }
  std::vector<VmJob> jobs;
  try {
    jobs = expand(o, modes_given);
  } catch (const MethodError& e) {
    fmt::print(stderr, "throughput: {}\n", e.what());
    return 2;
  }
  if (jobs.empty()) {
    fmt::print(stderr, "throughput: no method supports the modes asked for\n");
    return 2;
  }

  const vm::Prepared prep = vm::prepare({vm::runfile("bench/ulsnet_proxy"), vm::runfile("kernel/uls_udp")});
  if (!prep.error.empty()) {
    fmt::print(stderr, "throughput: --hosts=vm: {}\n", prep.error);
    return prep.usage_error ? 2 : 1;
  }

  nlohmann::json doc;
  doc["schema"] = "ulsnet.throughput-vm.v1";
  doc["config"] = {{"hosts", "vm"},
                   {"methods", o.methods},
                   {"modes", o.modes},
                   {"rates", o.rates},
                   {"duration_s", o.duration},
                   {"reps", o.reps},
                   {"quick", o.quick},
                   {"accel_requested", o.accel},
                   {"uls_protection", o.protection},
                   {"payload_bytes", 18},
                   {"frame_bytes", 64},
                   {"generator", "kernel UDP socket in the sender VM, one send() per datagram (kernel/tests/uls_udp.c); "
                                 "'max' = unpaced"},
                   {"sink", "kernel UDP socket in the receiver VM, every sequence number checked"},
                   {"guests", {{"vcpus", 1}, {"mem_mb", 256}, {"nic", "e1000"}, {"image", prep.image}}},
                   {"argv", o.argv}};
  doc["environment"] = host_environment("vm");
  doc["results"] = nlohmann::json::array();
  std::string accel = "unknown", guest_kernel = "unknown";
  int failures = 0, n = 0;
  const int total = int(jobs.size() * rates.size()) * o.reps;
  for (const VmJob& j : jobs)
    for (double rate : rates)
      for (int rep = 0; rep < o.reps; ++rep) {
        ++n;
        const uint64_t count = rate > 0 ? uint64_t(rate * o.duration)
                                         : std::min<uint64_t>(kMaxCount, uint64_t(kMaxRateGuess * o.duration));
        const std::string tag = j.method + "-" + j.variant + "-" + j.mode + "-" +
                                (rate > 0 ? std::to_string(uint64_t(rate)) : std::string("max")) + "-" + std::to_string(rep);
        const std::string logs = prep.workdir + "/" + tag;
        std::string append = "ulsnet.path=method ulsnet.method=" + j.method + " ulsnet.variant=" + j.variant +
                             " ulsnet.mode=" + j.mode + " ulsnet.count=" + std::to_string(count) +
                             " ulsnet.pps=" + std::to_string(uint64_t(rate));
        if (o.protection == "none") append += " uls.protect=0";
        fmt::print(stderr, "[{}/{}] {}:{} {} at {} ({} datagrams)...\n", n, total, j.method, j.variant, j.mode,
                   rate > 0 ? fmt::format("{} /s", rate) : std::string("max"), count);
        auto [rc, out] = vm::launch(prep.image, prep.initrd, logs,
                                    "--hosts 3 --accel " + o.accel + " --test uls-forward --append '" + append + "'",
                                    150 + 4 * int(o.duration));
        const std::string a = vm::last_line(vm::slurp(logs + "/accel"));
        if (!a.empty()) accel = a;
        const std::string sender = vm::slurp(logs + "/sender.log"), proxy = vm::slurp(logs + "/proxy.log"),
                          receiver = vm::slurp(logs + "/receiver.log");
        const std::string up = vm::line_after(proxy, "ULSNET-GUEST-UP ");
        if (auto k = up.find("kernel="); k != std::string::npos) guest_kernel = up.substr(k + 7);
        const std::string sent_line = vm::line_after(sender, "ULSNET-UDP-SENT "),
                          recv_line = vm::line_after(receiver, "ULSNET-UDP-RECV "),
                          report_line = vm::line_after(proxy, "ULSNET-METHOD-REPORT "),
                          error_line = vm::line_after(proxy, "ULSNET-METHOD-ERROR ");
        nlohmann::json r = {{"method", j.method}, {"variant", j.variant}, {"mode", j.mode},
                            {"offered", rate > 0 ? nlohmann::json(rate) : nlohmann::json("max")},
                            {"rep", rep}, {"count", count}, {"logs", logs}};
        r["labels"] = {{"hosts", "vm"},
                       {"kernel", "patched: Linux " + guest_kernel + " + kernel/patches (ULS)"},
                       {"accelerator", accel},
                       {"path", path_label(j)}};
        if (!error_line.empty()) {
          r["error"] = error_line;
        } else if (report_line.empty() || sent_line.empty() || recv_line.empty()) {
          r["error"] = "the run did not complete (launcher exit " + std::to_string(rc) + "); logs kept in " + logs;
          ++failures;
        } else {
          nlohmann::json rep_json = nlohmann::json::parse(report_line, nullptr, false);
          const double sent = num(sent_line, "sent"), errors = num(sent_line, "errors"),
                       secs = num(sent_line, "seconds"), received = num(recv_line, "received"),
                       span = num(recv_line, "span"), rcvbuf = num(recv_line, "rcvbuf_errors");
          r["sender"] = {{"sent", sent}, {"errors", errors}, {"seconds", secs}, {"nic_tx", num(sent_line, "nic_tx")}};
          r["receiver"] = {{"received", received}, {"span_s", span}, {"dup", num(recv_line, "dup")},
                           {"bad", num(recv_line, "bad")}, {"rcvbuf_errors", rcvbuf}};
          r["proxy"] = rep_json;
          r["offered_pps"] = secs > 0 ? sent / secs : 0;
          r["delivered_pps"] = span > 0 ? received / span : 0;
          r["loss_ratio"] = sent > 0 ? (sent - received) / sent : 0;
          // Where what was sent went: arrived, or dropped at a counted place (the proxy's stages,
          // the receiver's socket); the rest was lost on the links (QEMU's NIC models drop
          // frames they cannot deliver, counted only as 'missed', an inflated bound).
          const uint64_t proxy_drops = rep_json.is_object() ? sum_drops(rep_json.value("drops", nlohmann::json())) : 0;
          r["accounting"] = {{"sent", sent},
                             {"received", received},
                             {"proxy_drops", proxy_drops},
                             {"receiver_rcvbuf", rcvbuf},
                             {"proxy_nic_missed_bound",
                              rep_json.is_object() ? rep_json["proxy_vm"].value("eth0_rx_missed", 0) : 0},
                             {"not_counted", sent - received - double(proxy_drops) - rcvbuf}};
          if (rep_json.is_object()) {
            if (rep_json.contains("protection")) r["labels"]["protection"] = rep_json["protection"];
            if (rep_json.contains("device")) r["labels"]["device_mode"] = rep_json["device"]["in"].value("copy_mode", "?");
            const double fwd = rep_json.value("forwarded", 0.0);
            const double busy = rep_json["proxy_vm"].value("cpu_busy_s", 0.0);
            if (fwd > 0) r["proxy_vm_cpu_ns_per_forwarded"] = busy * 1e9 / fwd;
            // The proxy's own rate: what it forwarded while the sender offered (the receiver VM,
            // emulated as well, may itself be the narrower end: delivered_pps says so).
            r["forwarded_pps"] = secs > 0 ? fwd / secs : 0;
            r["proxy_loss_ratio"] = sent > 0 ? std::max(0.0, (sent - fwd) / sent) : 0;
          }
        }
        if (r.contains("error"))
          fmt::print(stderr, "  {}\n", r["error"].get<std::string>());
        else
          fmt::print(stderr, "  offered {:.0f}/s, proxy forwarded {:.0f}/s, delivered {:.0f}/s (loss {:.2f}%)\n",
                     r["offered_pps"].get<double>(), r.value("forwarded_pps", 0.0), r["delivered_pps"].get<double>(),
                     100 * r["loss_ratio"].get<double>());
        doc["results"].push_back(r);
      }
  doc["environment"]["accel"] = accel;
  doc["environment"]["guest_kernel"] = guest_kernel;

  // The targets, as far as this run measures them: the proxy's forwarding rate at the unpaced
  // sender (its capacity, unless it kept up with the sender: then only a lower bound) and
  // proxy-VM CPU per forwarded packet.
  auto best = [&](const std::string& m, const std::string& v) -> const nlohmann::json* {
    const nlohmann::json* b = nullptr;
    for (const auto& r : doc["results"])
      if (r["method"] == m && r["variant"] == v && r["mode"] == "relay" && r["offered"] == "max" &&
          r.contains("forwarded_pps"))
        if (!b || r["forwarded_pps"].get<double>() > (*b)["forwarded_pps"].get<double>()) b = &r;
    return b;
  };
  nlohmann::json targets = nlohmann::json::array();
  const nlohmann::json* uls = best("sandbox", "uls");
  auto ratio = [&](const std::string& name, const std::string& m, const std::string& v, double goal) {
    nlohmann::json t{{"target", name}, {"goal", ">= " + fmt::format("{}", goal)}};
    const nlohmann::json* b = best(m, v);
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
  {
    nlohmann::json t{{"target", "proxy-VM CPU per forwarded packet vs kernel-socket batched, at max load"},
                     {"goal", "<= 0.4"}};
    const nlohmann::json* b = best("kernel-socket", "batched");
    if (uls && b && uls->contains("proxy_vm_cpu_ns_per_forwarded") && b->contains("proxy_vm_cpu_ns_per_forwarded")) {
      const double x = (*uls)["proxy_vm_cpu_ns_per_forwarded"].get<double>() /
                       (*b)["proxy_vm_cpu_ns_per_forwarded"].get<double>();
      t["value"] = x;
      t["status"] = x <= 0.4 ? "met" : "not met";
    } else {
      t["status"] = "not measured in this run";
    }
    targets.push_back(t);
  }
  targets.push_back({{"target", "p99 latency at half load vs kernel-socket batched"},
                     {"status", "not measured on VMs: the guests' generator does not timestamp (netns runs do)"}});
  doc["targets"] = targets;
  const std::string path = write_result(doc, o.out, "throughput-vm");

  fmt::print("\nulsnet throughput, hosts=vm (3 VMs, 1 vCPU, e1000), accelerator {}, guest kernel {} (ULS patches), "
             "64 B frames\n",
             accel, guest_kernel);
  fmt::print("{:<14} {:<15} {:<6} {:>8} {:>9} {:>9} {:>9} {:>7} {:>11}  {}\n", "method", "variant", "mode",
             "offered", "sent/s", "fwd/s", "deliv/s", "loss%", "cpu ns/pkt", "device");
  for (const auto& r : doc["results"]) {
    const std::string offered = r["offered"].is_string() ? "max" : fmt::format("{:.0f}", r["offered"].get<double>());
    if (r.contains("error")) {
      fmt::print("{:<14} {:<15} {:<6} {:>8}  error: {}\n", r["method"].get<std::string>(), r["variant"].get<std::string>(),
                 r["mode"].get<std::string>(), offered, r["error"].get<std::string>().substr(0, 90));
      continue;
    }
    fmt::print("{:<14} {:<15} {:<6} {:>8} {:>9.0f} {:>9.0f} {:>9.0f} {:>7.2f} {:>11.0f}  {}\n",
               r["method"].get<std::string>(), r["variant"].get<std::string>(), r["mode"].get<std::string>(), offered,
               r["offered_pps"].get<double>(), r.value("forwarded_pps", 0.0), r["delivered_pps"].get<double>(),
               100 * r["loss_ratio"].get<double>(),
               r.value("proxy_vm_cpu_ns_per_forwarded", 0.0), r["labels"].value("device_mode", "kernel"));
  }
  fmt::print("\ntargets (sandbox:uls; {}):\n", accel);
  for (const auto& t : targets)
    fmt::print("  {:<75} {}{}\n", t["target"].get<std::string>(), t["status"].get<std::string>(),
               t.contains("value") ? fmt::format(" ({:.2f})", t["value"].get<double>()) : "");
  fmt::print("results: {}\n", path);
  vm::cleanup(prep, failures != 0);
  return failures ? 1 : 0;
}

}  // namespace ulsnet
