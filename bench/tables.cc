// //bench:tables: the Markdown tables of the README from result files, so that every number in
// the README comes from a stored result and can be regenerated.
//
//   bazel run //bench:tables -- bench/reference/throughput-default.json
//   bazel run //bench:tables -- bench/reference/throughput-vm-tcg.json
//   bazel run //bench:tables -- bench/reference/stability-netns.json
//
// Reads results only (netns ulsnet.throughput.v2, VM ulsnet.throughput-vm.v2, a stability
// record, a vm_jitter or vm_forward result) and prints Markdown on stdout. Relative paths are taken from where `bazel run` was
// started. Exit 2 for a file it cannot read or does not know.
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <string>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "bench/targets.h"

namespace {

using nlohmann::json;

std::string num(const json& v, const char* fmtspec = "{:.0f}") {
  return v.is_number() ? fmt::format(fmt::runtime(fmtspec), v.get<double>()) : "-";
}

std::string us(const json& obj, const char* k) {
  return obj.is_object() && obj.contains(k) && obj[k].is_number() ? fmt::format("{:.0f}", obj[k].get<double>() / 1000)
                                                                    : "-";
}

std::string variant(const json& r) {
  const std::string v = r.value("variant", ""), p = r.value("protection", "n/a");
  return p == "n/a" || p.empty() ? v : v + "/" + p;
}

std::string bracket(const json& k) {
  const std::string st = k.value("status", "");
  if (st == "measured") return fmt::format("[{}, {})", num(k["lower_pps"]), num(k["upper_pps"]));
  if (st == "censored") return fmt::format("&ge; {} (ceiling)", num(k["lower_pps"]));
  return fmt::format("{} ({} / {})", st, num(k.value("lower_pps", json())), num(k.value("upper_pps", json())));
}

// The run's command as a user types it: `bazel run //bench:NAME -- ARGS`.
std::string command(const json& argv) {
  if (!argv.is_array() || argv.empty()) return "?";
  std::string a0 = argv[0].get<std::string>();
  const size_t slash = a0.rfind('/');
  std::string out = "bazel run //bench:" + (slash == std::string::npos ? a0 : a0.substr(slash + 1));
  if (argv.size() > 1) out += " --";
  for (size_t i = 1; i < argv.size(); ++i) out += " " + argv[i].get<std::string>();
  return out;
}

void environment_line(const json& d) {
  const json& e = d["environment"];
  std::string took;
  if (d.contains("run_seconds") && d["run_seconds"].is_number()) {
    const int t = int(std::lround(d["run_seconds"].get<double>()));
    took = fmt::format("; the run took {} min {} s", t / 60, t % 60);
  }
  fmt::print("Taken at commit {}{} on {}, {} ({} cores), {}, hosts = {}{}.\n\n", e.value("describe", e.value("commit", "?")),
             e.value("dirty", false) ? " (DIRTY TREE)" : "", e.value("date", "?"), e.value("cpu_model", "?"),
             e.value("cores", 0), e.value("kernel", "?"), e.value("hosts", "?"), took);
}

// The rows of a capacity table (| method | variant | mode | B | NDR | PDR | search ceiling | trials |).
void capacity_rows(const json& d) {
  for (const auto& k : d["capacity"]) {
    if (k.contains("error")) {
      fmt::print("| {} | {} | {} | {} | error: {} | | | {} |\n", k["method"].get<std::string>(), variant(k),
                 k["mode"].get<std::string>(), k.value("payload_bytes", 0), k["error"].get<std::string>(), k["steps"].size());
      continue;
    }
    size_t aside = 0;
    for (const auto& s : k["steps"]) aside += s.value("set_aside", false) ? 1 : 0;
    fmt::print("| {} | {} | {} | {} | {} | {} | {} | {}{} |\n", k["method"].get<std::string>(), variant(k),
               k["mode"].get<std::string>(), k.value("payload_bytes", 0), bracket(k["ndr"]), bracket(k["pdr"]),
               num(k["search_ceiling_final_pps"]), k["steps"].size(),
               aside ? fmt::format(" ({} set aside: host stall)", aside) : "");
  }
}

// The rows of a targets table (| target | goal | value | interval | status |); `notes`: a target's
// note after its status.
void target_rows(const json& d, bool notes) {
  for (const auto& t : d["targets"]) {
    std::string iv = "-";
    if (t.contains("interval"))
      iv = fmt::format("[{}, {}]", num(t["interval"][0], "{:.2f}"), num(t["interval"][1], "{:.2f}"));
    fmt::print("| {} | {} | {} | {} | {}{} |\n", t["target"].get<std::string>(), t.value("goal", "-"),
               num(t.value("value", json()), "{:.2f}"), iv, t["status"].get<std::string>(),
               notes && t.contains("note") ? " (" + t["note"].get<std::string>() + ")" : "");
  }
}

void netns(const json& d) {
  environment_line(d);
  const json& c = d["config"];
  fmt::print("Run: `{}`; trials of {} s, {} repetitions per point; PDR loss <= {}%.\n\n",
             command(c.value("argv", json::array())), c.value("duration_s", 0.0), c.value("reps", 0),
             100 * c.value("pdr_loss", 0.0));
  fmt::print("**NDR and PDR**: [passed, failed) pps, final trials of {} s (`&ge;`: censored at the search "
             "ceiling, the generator's rate in that job):\n\n",
             c.value("duration_s", 0.0));
  fmt::print("| method | variant | mode | B | NDR | PDR | search ceiling | trials |\n|---|---|---|---:|---|---|---:|---:|\n");
  capacity_rows(d);
  fmt::print("\n**Common load** ({} pps, {}), 64 B: latency per packet, delay variation and CPU at equal work:\n\n",
             num(d["common_load_pps"]), d.value("common_load_basis", ""));
  fmt::print("| method | variant | mode | delivered pps | loss % | p50 us | p99 us | p99.9 us | IPDV p99 us | "
             "proxy host ns/fwd | proxy process ns/fwd |\n|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const auto& r : d["results"]) {
    if (!ulsnet::is_common_load_point(r)) continue;
    if (r.contains("error")) {
      fmt::print("| {} | {} | {} | error: {} |\n", r["method"].get<std::string>(), variant(r),
                 r["mode"].get<std::string>(), r["error"].get<std::string>());
      continue;
    }
    fmt::print("| {} | {} | {} | {} | {:.2f} | {} | {} | {} | {} | {} | {} |\n", r["method"].get<std::string>(),
               variant(r), r["mode"].get<std::string>(), num(r["delivered_pps"]), 100 * r["loss"].get<double>(),
               us(r["latency_ns"], "p50"), us(r["latency_ns"], "p99"), us(r["latency_ns"], "p999"),
               us(r["ipdv_ns"], "p99"), num(r["cpu"].value("proxy_host_ns_per_forwarded", json())),
               num(r["cpu"].value("proxy_process_ns_per_forwarded", json())));
  }
  fmt::print("\n**Overload** (`max`: the generator unpaced; median of the repetitions):\n\n");
  fmt::print("| method | variant | mode | B | offered pps | delivered pps, median (min-max) | loss % | p99 us | "
             "unaccounted |\n|---|---|---|---:|---:|---|---:|---:|---:|\n");
  for (const auto& r : d["results"]) {
    if (!r["load"].is_string()) continue;
    if (r.contains("error")) {
      fmt::print("| {} | {} | {} | {} | error: {} |\n", r["method"].get<std::string>(), variant(r),
                 r["mode"].get<std::string>(), r["payload_bytes"].get<int>(), r["error"].get<std::string>());
      continue;
    }
    fmt::print("| {} | {} | {} | {} | {} | {} ({}-{}) | {:.1f} | {} | {} |\n", r["method"].get<std::string>(),
               variant(r), r["mode"].get<std::string>(), r["payload_bytes"].get<int>(), num(r["offered_pps"]),
               num(r["delivered_pps"]), num(r["delivered_pps_min"]), num(r["delivered_pps_max"]),
               100 * r["loss"].get<double>(), us(r["latency_ns"], "p99"), r["unaccounted"].get<int64_t>());
  }
  int64_t trials = 0, nonzero = 0, sum = 0;
  auto count = [&](const json& s) {
    if (!s.contains("unaccounted")) return;
    ++trials;
    const int64_t u = s["unaccounted"].get<int64_t>();
    if (u != 0) ++nonzero, sum += u;
  };
  for (const auto& r : d["results"])
    for (const auto& s : r["samples"]) count(s);
  for (const auto& k : d["capacity"])
    for (const auto& s : k["steps"]) count(s);
  fmt::print("\nAccounting: {} trials, {} with a non-zero `unaccounted` (sum {}).\n", trials, nonzero, sum);
  const json subj = d.value("targets_subject", json::object());
  fmt::print("\n**Targets** (subject {}:{}, protection {}, capacity criterion {}):\n\n"
             "| target | goal | value | interval | status |\n|---|---|---:|---|---|\n",
             subj.value("method", "?"), subj.value("variant", "?"), subj.value("protection", "?"),
             subj.value("criterion", "?"));
  target_rows(d, true);
}

void vm(const json& d) {
  environment_line(d);
  const json& c = d["config"];
  fmt::print("Run: `{}`; accelerator {}, guest kernel {}; cost runs: {} datagrams at {}/s, icount {}.\n\n",
             command(c.value("argv", json::array())), d["environment"].value("accel", "?"),
             d["environment"].value("guest_kernel", "?"), num(c["cost_runs"]["datagrams"]),
             num(c["cost_runs"]["rate_pps"]), c.value("icount", "?"));
  // A run at several payload sizes gets a size column (one size: the table as it always was).
  const bool sizes = c.contains("payloads") && c["payloads"].size() > 1;
  fmt::print("| method | variant | mode | purpose | {}offered /s | fwd /s | delivered /s | loss % | unaccounted | "
             "p50 / p99 latency us (clock bound) | instructions per packet (user / kernel) |\n"
             "|---|---|---|---|{}---:|---:|---:|---:|---:|---|---|\n",
             sizes ? "B | " : "", sizes ? "---:|" : "");
  size_t search_rows = 0;
  for (const auto& r : d["results"]) {
    // The search's trials are in its capacity table below (accounted like every row).
    if (r.value("purpose", "") == "search") {
      ++search_rows;
      continue;
    }
    if (r.contains("error")) {
      fmt::print("| {} | {} | {} | {} | error: {} |\n", r["method"].get<std::string>(), r["variant"].get<std::string>(),
                 r["mode"].get<std::string>(), r.value("purpose", ""), r["error"].get<std::string>());
      continue;
    }
    std::string lat = "-";
    const json& l = r.value("latency", json::object());
    if (l.value("one_way_valid", false) && l.contains("latency_ns") && l["latency_ns"].contains("p99"))
      lat = fmt::format("{} / {} (&plusmn;{})", us(l["latency_ns"], "p50"), us(l["latency_ns"], "p99"),
                        us(l, "clock_error_bound_ns"));
    const json& i = r.value("proxy_vm_insns_per_forwarded", json::object());
    fmt::print("| {} | {} | {} | {}{} | {}{} | {} | {} | {:.2f} | {} | {} | {} ({} / {}) |\n",
               r["method"].get<std::string>(), r["variant"].get<std::string>(), r["mode"].get<std::string>(),
               r.value("purpose", "") +
                   (r.contains("load_fraction") ? fmt::format(" {:g}% PDR", 100 * r["load_fraction"].get<double>()) : ""),
               r["labels"].value("icount", false) ? " (icount)" : "",
               sizes ? fmt::format("{} | ", r.value("payload_bytes", 0)) : "", num(r["offered_pps"]),
               num(r["forwarded_pps"]), num(r["delivered_pps"]), 100 * r.value("loss_ratio", 0.0),
               r["accounting"]["unaccounted"].get<int64_t>(), lat, num(i.value("total", json())),
               num(i.value("user", json())), num(i.value("kernel", json())));
  }
  if (d.contains("capacity") && !d["capacity"].empty()) {
    int64_t unaccounted = 0, nonzero = 0;
    for (const auto& r : d["results"])
      if (r.value("purpose", "") == "search" && r.contains("accounting")) {
        const int64_t u = r["accounting"]["unaccounted"].get<int64_t>();
        unaccounted += u, nonzero += u != 0;
      }
    fmt::print("\n**NDR and PDR** ([passed, failed) datagrams/s; one launch of the VMs per trial, {} s streams; {} "
               "search launches, {} with a non-zero `unaccounted` (sum {})):\n\n"
               "| method | variant | mode | B | NDR | PDR | search ceiling | trials |\n|---|---|---|---:|---|---|---:|---:|\n",
               num(c["duration_s"], "{:g}"), search_rows, nonzero, unaccounted);
    capacity_rows(d);
  }
  fmt::print("\n**Targets**:\n\n| target | goal | value | interval | status |\n|---|---|---:|---|---|\n");
  target_rows(d, false);
}

void vm_jitter(const json& d) {
  environment_line(d);
  const json& c = d["config"];
  const json& plan = d.value("clock_plan", json::object());
  fmt::print("Accelerator {}, {} clock{}; a service due every {} us, {} invocations per row, the first {} ms a "
             "warm-up left out; jitter = standard deviation of the delay from due time to the service's first clock "
             "read.\n\n",
             d["environment"].value("accel", "?"), plan.value("clock", "wall"),
             plan.contains("why") ? " (" + plan.value("why", "") + ")" : "", c.value("period_us", 0),
             c.value("count", 0), c.value("warmup_ms", 0));
  fmt::print("| protection | launch | service | hogs | delay mean us | jitter us | p99 us | max us | warm-up max us | "
             "where the upcalls ran |\n"
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---|\n");
  for (const auto& r : d["runs"]) {
    std::string where = "-";
    const json& k = r.value("kernel_counters", json::object());
    if (k.contains("upcalls"))
      where = fmt::format("current process {}, host {} ({} coalesced)", k.value("in_current", 0),
                          k.value("in_host", 0), k.value("coalesced", 0));
    const json& dl = r["delay_us"];
    const json& wu = r.value("warmup_delay_us", json::object());
    fmt::print("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n", r.value("protection", "?"),
               r.value("launch", 1), r.value("service", "?"), r.value("hogs", 0), num(dl["mean"]),
               num(dl["stddev"], "{:.3g}"), num(dl["p99"]), num(dl["max"]), wu.contains("max") ? num(wu["max"]) : "-", where);
  }
  fmt::print("\n| target | protection | uls jitter us | user-thread jitter us | ratio (median) | per launch | mean delay "
             "ratio | limit | status |\n"
             "|---|---|---:|---:|---:|---|---:|---:|---|\n");
  for (const auto& t : d["targets"]) {
    std::string per;
    for (const auto& x : t.value("ratio_per_launch", json::array()))
      per += (per.empty() ? "" : ", ") + num(x, "{:.3g}");
    fmt::print("| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n", t.value("name", "?"), t.value("protection", "?"),
               num(t["uls_jitter_us"], "{:.3g}"), num(t["user_thread_jitter_us"], "{:.3g}"), num(t["ratio"], "{:.3g}"),
               per.empty() ? "-" : per, t.contains("mean_delay_ratio") ? num(t["mean_delay_ratio"], "{:.3f}") : "-",
               num(t["limit"], "{:.1f}"), t.value("met", false) ? "met" : "not met");
  }
}

void vm_forward(const json& d) {
  environment_line(d);
  const json& c = d["config"];
  fmt::print("Accelerator {}; {} s streams of {}-byte frames, sender VM -> proxy VM -> receiver VM; `uls`: {}; "
             "`kernel`: the proxy's own IP forwarding.\n\n",
             d["environment"].value("accel", "?"), c.value("seconds", 0), c.value("frame_bytes", 0),
             c.value("uls_forwarder", "?"));
  fmt::print("| path | offered /s | sent | delivered | loss % | proxy: rx ring full / NIC missed (bound) | proxy kernel "
             "IP in | upcalls (in a host) |\n|---|---:|---:|---:|---:|---|---:|---|\n");
  for (const auto& r : d["runs"]) {
    if (!r.value("complete", false)) {
      fmt::print("| {} | {} | incomplete | | | | | |\n", r.value("path", "?"), num(r["offered_pps"]));
      continue;
    }
    std::string ring = "-", ipin = "-", up = "-";
    if (r.contains("proxy")) {
      const json& p = r["proxy"];
      if (p.contains("eth0_rx_ring_full"))
        ring = fmt::format("{} / {}", num(p["eth0_rx_ring_full"]), num(p.value("eth0_nic_missed", json(0))));
      if (p.contains("kernel_ip_in_receives")) ipin = num(p["kernel_ip_in_receives"]);
      if (p.contains("upcalls")) up = fmt::format("{} ({})", num(p["upcalls"]), num(p.value("in_host", json())));
    }
    fmt::print("| {} | {} | {} | {} | {:.1f} | {} | {} | {} |\n", r.value("path", "?"), num(r["offered_pps"]),
               num(r["sender"].value("sent", json())), num(r["delivered"]), 100 * r.value("loss_ratio", 0.0), ring,
               ipin, up);
  }
}

void stability(const json& d) {
  fmt::print("{}: {}\n\n| run | commit | date | headline ratio |\n|---|---|---|---:|\n", d.value("kind", "?"),
             d.value("headline", ""));
  int i = 0;
  for (const auto& r : d["runs"]) {
    const json& e = r.value("environment", json::object());
    fmt::print("| {} | {} | {} | {} |\n", ++i, e.value("describe", e.value("commit", "?")), e.value("date", "?"),
               num(r.value("headline_ratio", json()), "{:.3f}"));
  }
  fmt::print("\nSpread (max/min - 1): {} (goal <= {:.0f}%): {}\n",
             d.contains("spread") ? fmt::format("{:.1f}%", 100 * d["spread"].get<double>()) : "-",
             100 * d.value("goal_spread", 0.0), d.value("status", "?"));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    fmt::print(stderr, "usage: tables RESULT.json\n");
    return 2;
  }
  std::string path = argv[1];
  if (const char* wd = std::getenv("BUILD_WORKING_DIRECTORY"); wd && !path.empty() && path[0] != '/')
    path = std::string(wd) + "/" + path;
  std::ifstream in(path);
  if (!in) {
    fmt::print(stderr, "tables: cannot read {}\n", argv[1]);
    return 2;
  }
  json d = json::parse(in, nullptr, false);
  if (d.is_discarded() || !d.is_object()) {
    fmt::print(stderr, "tables: {} is not JSON\n", argv[1]);
    return 2;
  }
  try {
    const std::string schema = d.value("schema", "");
    if (schema == "ulsnet.throughput.v2") netns(d);
    else if (schema == "ulsnet.throughput-vm.v2") vm(d);
    else if (d.value("experiment", "") == "vm_jitter") vm_jitter(d);
    else if (d.value("experiment", "") == "vm_forward") vm_forward(d);
    else if (d.contains("runs") && d.contains("headline")) stability(d);
    else {
      fmt::print(stderr, "tables: {}: not a result this tool knows (schema '{}')\n", argv[1], schema);
      return 2;
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "tables: {}: {}\n", argv[1], e.what());
    return 2;
  }
  return 0;
}
