// What //bench:throughput prints at the end of a run: see bench/throughput_report.h.
#include "bench/throughput_report.h"

#include <cstdint>

#include <fmt/core.h>

#include "bench/search.h"

namespace ulsnet {
namespace {

// The variant column: "variant" or "variant/protection".
std::string shown_variant(const nlohmann::json& r) {
  const std::string v = r["variant"].get<std::string>(), p = r.value("protection", "n/a");
  return p == "n/a" ? v : v + "/" + p;
}

// Nanoseconds at j[k] as microseconds with one decimal, "-" when absent.
std::string us(const nlohmann::json& j, const char* k) {
  return j.contains(k) && j[k].is_number() ? fmt::format("{:.1f}", j[k].get<double>() / 1000) : "-";
}

// One point's row of the namespace hosts' table.
void print_netns_point(const nlohmann::json& r) {
  std::string load = r["load"].is_string()         ? "max"
                     : r.contains("load_fraction") ? fmt::format("{:.0f}%PDR", 100 * r["load_fraction"].get<double>())
                                                   : fmt::format("{:.0f}", r["load"].get<double>());
  if (r.value("competitors", 0) > 0) load += fmt::format("+{}c", r["competitors"].get<int>());
  if (r.contains("error")) {
    fmt::print("{:<15} {:<16} {:<6} {:>5} {:>12}  ERROR: {}\n", r["method"].get<std::string>(), shown_variant(r),
               r["mode"].get<std::string>(), r["payload_bytes"].get<uint32_t>(), load, r["error"].get<std::string>());
    return;
  }
  fmt::print("{:<15} {:<16} {:<6} {:>5} {:>12} {:>9.0f} {:>9.0f} {:>7.2f} {:>9} {:>9} {:>9} {:>9}\n",
             r["method"].get<std::string>(), shown_variant(r), r["mode"].get<std::string>(),
             r["payload_bytes"].get<uint32_t>(), load, r["offered_pps"].get<double>(), r["delivered_pps"].get<double>(),
             100 * r["loss"].get<double>(), us(r["latency_ns"], "p50"), us(r["latency_ns"], "p99"),
             us(r["ipdv_ns"], "p99"),
             r["cpu"].contains("proxy_host_ns_per_forwarded")
                 ? fmt::format("{:.0f}", r["cpu"]["proxy_host_ns_per_forwarded"].get<double>())
                 : "-");
}

// The calibration rows and the NDR/PDR brackets.
void print_netns_capacity(const nlohmann::json& doc, const ThroughputOptions& o) {
  for (auto& c : doc["calibration"])
    fmt::print("calibration, no proxy ({}): {:>5} B  {:>8.0f} pps\n", c["placement"].get<std::string>(),
               c["payload_bytes"].get<uint32_t>(), c["delivered_pps"].get<double>());
  if (doc["capacity"].empty()) return;
  fmt::print("\nNDR (loss 0) and PDR (loss <= {}%): [passed, failed) pps, final trials of {} s\n", 100 * o.pdr_loss,
             o.duration);
  for (auto& c : doc["capacity"]) {
    if (c.contains("error")) {
      fmt::print("  {:<15} {:<20} {:<6} {:>5} B ERROR: {}\n", c["method"].get<std::string>(), shown_variant(c),
                 c["mode"].get<std::string>(), c["payload_bytes"].get<uint32_t>(), c["error"].get<std::string>());
      continue;
    }
    fmt::print("  {:<15} {:<20} {:<6} {:>5} B NDR {:<42} PDR {}\n", c["method"].get<std::string>(), shown_variant(c),
               c["mode"].get<std::string>(), c["payload_bytes"].get<uint32_t>(), describe_bracket(c["ndr"]),
               describe_bracket(c["pdr"]));
  }
}

// The common load and the targets.
void print_netns_targets(const nlohmann::json& doc) {
  const double common_rate = doc["common_load_pps"].get<double>();
  if (common_rate > 0)
    fmt::print("common load for latency and CPU: {:.0f} pps ({})\n", common_rate,
               doc["common_load_basis"].get<std::string>());
  const nlohmann::json& subject = doc["targets_subject"];
  fmt::print("\ntargets ({}:{}, relay, protection {}, {}):\n", subject["method"].get<std::string>(),
             subject["variant"].get<std::string>(), subject["protection"].get<std::string>(),
             subject["criterion"].get<std::string>());
  for (auto& t : doc["targets"])
    fmt::print("  {:<82} goal {:<6} value {:<6} {}{}\n", t["target"].get<std::string>(), t["goal"].get<std::string>(),
               t.contains("value") ? fmt::format("{:.2f}", t["value"].get<double>()) : "-",
               t["status"].get<std::string>(), t.contains("note") ? " (" + t["note"].get<std::string>() + ")" : "");
}

// One launch's row of the VMs' table.
void print_vm_launch(const nlohmann::json& r) {
  const std::string offered = r["offered"].is_string() ? "max" : fmt::format("{:.0f}", r["offered"].get<double>());
  const std::string head = fmt::format("{:<14} {:<15} {:<6} {:<12} {:>5} {:>7}", r["method"].get<std::string>(),
                                       r["variant"].get<std::string>(), r["mode"].get<std::string>(),
                                       r["purpose"].get<std::string>(), r.value("payload_bytes", 0u), offered);
  if (r.contains("error")) {
    fmt::print("{} error: {}\n", head, r["error"].get<std::string>().substr(0, 100));
    return;
  }
  std::string lat = "-";
  const nlohmann::json& l = r["latency"];
  if (l.value("one_way_valid", false) && l["latency_ns"].contains("p99"))
    lat = fmt::format("{:.0f}/{:.0f} +-{:.0f}", l["latency_ns"]["p50"].get<double>() / 1e3,
                      l["latency_ns"]["p99"].get<double>() / 1e3, l["clock_error_bound_ns"].get<double>() / 1e3);
  const nlohmann::json& c = r["proxy_vm_insns_per_forwarded"];
  const std::string cpu = c.contains("total") ? fmt::format("{:.0f} ({:.0f}/{:.0f}){}", c["total"].get<double>(),
                                                            c["user"].get<double>(), c["kernel"].get<double>(),
                                                            c.value("icount", false) ? " ic" : "")
                                              : "-";
  fmt::print("{} {:>8.0f} {:>8.0f} {:>8.0f} {:>6.2f} {:>8} {:>18} {:>22}\n", head, r["offered_pps"].get<double>(),
             r["forwarded_pps"].get<double>(), r["delivered_pps"].get<double>(), 100 * r["loss_ratio"].get<double>(),
             r["accounting"]["unaccounted"].get<int64_t>(), lat, cpu);
}

}  // namespace

void print_netns_report(const nlohmann::json& doc, const ThroughputOptions& o, const std::string& path) {
  const nlohmann::json& env = doc["environment"];
  fmt::print("\nulsnet throughput: {} on {} ({} cores), hosts=netns, commit {}{}, {} s x {} reps, run took {:.0f} s\n",
             env["kernel"].get<std::string>(), env["cpu_model"].get<std::string>(), env["cores"].get<int>(),
             env["describe"].get<std::string>(), env["dirty"].get<bool>() ? " (DIRTY TREE)" : "", o.duration, o.reps,
             doc["run_seconds"].get<double>());
  fmt::print("{:<15} {:<16} {:<6} {:>5} {:>12} {:>9} {:>9} {:>7} {:>9} {:>9} {:>9} {:>9}\n", "method", "variant", "mode",
             "bytes", "load", "offered", "delivered", "loss%", "p50 us", "p99 us", "ipdv99us", "host ns/f");
  for (auto& r : doc["results"]) print_netns_point(r);
  print_netns_capacity(doc, o);
  print_netns_targets(doc);
  fmt::print("\nresults: {}\n", path);
}

void print_vm_report(const nlohmann::json& doc, const std::string& accel, const std::string& guest_kernel,
                     const std::string& path) {
  fmt::print("\nulsnet throughput, hosts=vm (3 VMs, 1 vCPU, e1000, UDP links), accelerator {}, guest kernel {} (ULS "
             "patches)\n",
             accel, guest_kernel);
  fmt::print("{:<14} {:<15} {:<6} {:<12} {:>5} {:>7} {:>8} {:>8} {:>8} {:>6} {:>8} {:>18} {:>22}\n", "method", "variant",
             "mode", "purpose", "B", "offered", "sent/s", "fwd/s", "deliv/s", "loss%", "unacc.", "p50/p99 lat us", "insns/pkt (u/k)");
  for (const auto& r : doc["results"]) print_vm_launch(r);
  fmt::print("(insns/pkt: guest instructions the proxy VM executed per forwarded packet, user/kernel; ic: under "
             "-icount shift=0)\n");
  if (doc.contains("capacity") && !doc["capacity"].empty()) {
    fmt::print("\nNDR/PDR (measured brackets [passed, failed), pps; one launch per trial):\n");
    for (const auto& c : doc["capacity"]) {
      std::string line = fmt::format("  {:<14} {:<15} {:<6} {:>5} B", c.value("method", ""), c.value("variant", ""),
                                     c.value("mode", ""), c.value("payload_bytes", 0u));
      for (const char* k : {"ndr", "pdr"})
        if (c.contains(k)) line += fmt::format("  {} {}", k, describe_bracket(c[k]));
      if (c.contains("error")) line += "  error: " + c["error"].get<std::string>();
      fmt::print("{}\n", line);
    }
  }
  fmt::print("\ntargets (sandbox:uls; {}):\n", accel);
  for (const auto& t : doc["targets"])
    fmt::print("  {:<75} {}{}\n", t["target"].get<std::string>(), t["status"].get<std::string>(),
               t.contains("value") ? fmt::format(" ({:.2f})", t["value"].get<double>()) : "");
  fmt::print("results: {}\n", path);
}

}  // namespace ulsnet
