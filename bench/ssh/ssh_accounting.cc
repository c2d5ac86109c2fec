#include "bench/ssh/ssh_accounting.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <stdexcept>
#include <vector>

#include "stack/drop_stage.h"
#include "bench/accounting.h"
#include "bench/stats.h"

namespace ulsnet::ssh {
namespace {

constexpr const char* kByDifference = "link_or_other";

// The median, 0 for none (bench/stats.h median).
double median0(std::vector<double> v) { return median(std::move(v)).value_or(0); }

const nlohmann::json* at(const nlohmann::json& j, std::initializer_list<const char*> path) {
  const nlohmann::json* x = &j;
  for (const char* k : path) {
    if (!x->is_object() || !x->contains(k)) return nullptr;
    x = &(*x)[k];
  }
  return x;
}

std::optional<double> number_at(const nlohmann::json& j, std::initializer_list<const char*> path) {
  const nlohmann::json* x = at(j, path);
  return x && x->is_number() ? std::optional<double>(x->get<double>()) : std::nullopt;
}

}  // namespace

nlohmann::json account_ssh_trial(const nlohmann::json& g, const nlohmann::json& p, const nlohmann::json& s,
                                 const LinkNames& links, uint32_t payload) {
  if (!p.is_object()) throw std::invalid_argument("proxy report is not an object");
  TrialLinks tl;
  tl.into_proxy = {links.sender_if, links.proxy_in_if};
  tl.out_of_proxy = {links.proxy_out_if, links.receiver_if};
  nlohmann::json rec = account_trial(g, p, s, tl, payload);
  const int64_t diff = rec["unaccounted"].get<int64_t>();
  const uint64_t counted = rec["dropped"].get<uint64_t>();
  const uint64_t by_difference = diff > 0 ? uint64_t(diff) : 0;
  rec["drops"][kByDifference] = {{"by_difference", by_difference}};
  rec["dropped_counted"] = counted;
  rec["dropped_by_difference"] = by_difference;
  rec["dropped"] = counted + by_difference;
  rec["unaccounted"] = diff < 0 ? diff : 0;
  rec["accounting"] =
      "sent = received + dropped + unaccounted; dropped = the counted stages + link_or_other, "
      "which is sent - received - counted (no counter saw those); unaccounted < 0: counted more "
      "than was sent";
  return rec;
}

nlohmann::json one_way_latency(bool clock_shared, const nlohmann::json& c) {
  auto has_offset = [&](const char* k) {
    return c.is_object() && c.contains(k) && c[k].is_object() && c[k].contains("offset_ns") &&
           c[k].contains("uncertainty_ns");
  };
  auto what = [&](const char* k) {
    return c.is_object() && c.contains(k) ? c[k].value("error", c[k].dump()) : std::string("not measured");
  };
  nlohmann::json l = nlohmann::json::object();
  if (c.is_object() && c.value("shifted", false)) {
    if (!has_offset("residual_before") || !has_offset("residual_after")) {
      l["one_way_valid"] = false;
      l["why"] = "the sender ran on the receiver's clock, but the residual difference could not be measured (before: " +
                 what("residual_before") + "; after: " + what("residual_after") + ")";
      return l;
    }
    int64_t bound = 0;
    for (const char* k : {"residual_before", "residual_after"})
      bound = std::max(bound, std::abs(c[k]["offset_ns"].get<int64_t>()) + c[k]["uncertainty_ns"].get<int64_t>());
    l["one_way_valid"] = true;
    l["basis"] = "the sender's send times on the receiver's clock (a time namespace shifted by the measured offset), "
                 "to within the residual difference measured right before and right after the stream";
    l["clock_error_bound_ns"] = bound;
    l["clock_drift_during_stream_ns"] =
        c["residual_after"]["offset_ns"].get<int64_t>() - c["residual_before"]["offset_ns"].get<int64_t>();
    return l;
  }
  if (clock_shared) {
    l["one_way_valid"] = true;
    l["basis"] = "the sender and the receiver have one boot_id: one CLOCK_MONOTONIC";
    l["clock_error_bound_ns"] = 0;
    l["clock_drift_during_stream_ns"] = 0;
    nlohmann::json check = nlohmann::json::object();
    for (const char* k : {"offset", "residual_before", "residual_after"})
      if (has_offset(k))
        check[k] = std::abs(c[k]["offset_ns"].get<int64_t>()) <= c[k]["uncertainty_ns"].get<int64_t>();
    if (!check.empty()) l["shared_clock_check"] = check;  // each measured offset 0 within its bound
    return l;
  }
  l["one_way_valid"] = false;
  if (!c.is_object())
    l["why"] = "the sender and the receiver are different machines and their clocks were not compared "
               "(--clock-sync off, or no address for it)";
  else if (c.contains("shift_error"))
    l["why"] = "the sender's generator could not be put on the receiver's clock: " + c["shift_error"].get<std::string>() +
               (has_offset("offset") ? "" : " (" + what("offset") + ")");
  else
    l["why"] = "the sender and the receiver are different machines and the sender's clock was not shifted onto the "
               "receiver's (" + what("offset") + ")";
  return l;
}

namespace {

// The repetitions' one-way validity (one_way_latency), when they have it: valid if every one
// is, the largest clock_error_bound_ns and clock_drift_during_stream_ns (by magnitude), the
// first why.
struct LatencyValidity {
  bool any = false, all_valid = true;
  int64_t bound = 0, drift = 0;
  std::string why, basis;

  void add(const nlohmann::json& s) {
    const nlohmann::json* l = at(s, {"latency"});
    if (!l || !l->is_object() || !l->contains("one_way_valid")) return;
    any = true;
    if (!l->value("one_way_valid", false)) {
      all_valid = false;
      if (why.empty()) why = l->value("why", "");
      return;
    }
    if (basis.empty()) basis = l->value("basis", "");
    if (auto v = number_at(*l, {"clock_error_bound_ns"})) bound = std::max(bound, int64_t(*v));
    if (auto v = number_at(*l, {"clock_drift_during_stream_ns"}); v && std::abs(int64_t(*v)) > std::abs(drift))
      drift = int64_t(*v);
  }

  nlohmann::json to_json() const {
    nlohmann::json l = {{"one_way_valid", all_valid}};
    if (all_valid) {
      l["basis"] = basis;
      l["clock_error_bound_ns"] = bound;
      l["clock_drift_during_stream_ns"] = drift;
    } else {
      l["why"] = why;
    }
    return l;
  }
};

// What a point sums and collects over its measured repetitions: rates, counts, drops by stage
// (link_or_other apart), the merged delay histogram and each repetition's delay figures.
struct PointTotals {
  std::vector<double> delivered, offered, ipdv50, ipdv99, pdv99, lat99;
  uint64_t sent = 0, received = 0, forwarded = 0, dropped = 0, counted = 0, by_difference = 0;
  int64_t unaccounted = 0;
  DropLedger drops;
  LogHistogram lat;
  int64_t lat_min = INT64_MAX, lat_max = INT64_MIN, ipdv_max = INT64_MIN;

  void add_counts(const nlohmann::json& s) {
    delivered.push_back(s.value("delivered_pps", 0.0));
    offered.push_back(s.value("offered_pps", 0.0));
    sent += s.value("sent", uint64_t(0));
    received += s.value("received", uint64_t(0));
    forwarded += s.value("forwarded", uint64_t(0));
    dropped += s.value("dropped", uint64_t(0));
    counted += s.value("dropped_counted", uint64_t(0));
    by_difference += s.value("dropped_by_difference", uint64_t(0));
    unaccounted += s.value("unaccounted", int64_t(0));
    nlohmann::json d = s.value("drops", nlohmann::json::object());
    d.erase(kByDifference);
    drops.merge(DropLedger::from_json(d));
  }

  void add_delays(const nlohmann::json& s) {
    if (const nlohmann::json* h = at(s, {"latency_ns", "histogram"})) {
      lat.merge(LogHistogram::from_json(*h));
      if (auto v = number_at(s, {"latency_ns", "min"})) lat_min = std::min(lat_min, int64_t(*v));
      if (auto v = number_at(s, {"latency_ns", "max"})) lat_max = std::max(lat_max, int64_t(*v));
    }
    if (auto v = number_at(s, {"latency_ns", "p99"})) lat99.push_back(*v);
    if (auto v = number_at(s, {"ipdv_ns", "p50"})) ipdv50.push_back(*v);
    if (auto v = number_at(s, {"ipdv_ns", "p99"})) ipdv99.push_back(*v);
    if (auto v = number_at(s, {"ipdv_ns", "max"})) ipdv_max = std::max(ipdv_max, int64_t(*v));
    if (auto v = number_at(s, {"pdv_ns", "p99"})) pdv99.push_back(*v);
  }
};

// The rates (medians, spread) and the 95% confidence intervals of the mean over the repetitions
// (Student t, bench/stats.h; none with fewer than two), as //bench:throughput gives them, with the
// point's one-way validity.
void add_rates_and_intervals(nlohmann::json& res, const PointTotals& t, const LatencyValidity& v) {
  res["offered_pps"] = median0(t.offered);
  res["delivered_pps"] = median0(t.delivered);
  res["delivered_pps_min"] = t.delivered.empty() ? 0.0 : *std::min_element(t.delivered.begin(), t.delivered.end());
  res["delivered_pps_max"] = t.delivered.empty() ? 0.0 : *std::max_element(t.delivered.begin(), t.delivered.end());
  if (auto ci = mean_ci95(t.delivered)) res["delivered_pps_ci95"] = to_json(*ci);
  if (v.any) {
    res["latency"] = v.to_json();
    res["latency_valid"] = v.all_valid;
  }
  if (auto ci = mean_ci95(t.lat99); ci && (!v.any || v.all_valid)) res["latency_p99_ns_ci95"] = to_json(*ci);
  if (auto ci = mean_ci95(t.ipdv99)) res["ipdv_p99_ns_ci95"] = to_json(*ci);
}

// The datagram counts and drops summed, the loss from the sums.
void add_counts(nlohmann::json& res, const PointTotals& t) {
  res["sent"] = t.sent;
  res["received"] = t.received;
  res["forwarded"] = t.forwarded;
  res["loss"] = t.sent ? double(t.sent - std::min(t.sent, t.received)) / double(t.sent) : 0.0;
  nlohmann::json dj = t.drops.to_json();
  dj[kByDifference] = {{"by_difference", t.by_difference}};
  res["drops"] = dj;
  res["dropped"] = t.dropped;
  res["dropped_counted"] = t.counted;
  res["dropped_by_difference"] = t.by_difference;
  res["unaccounted"] = t.unaccounted;
}

// The merged histogram's percentiles, the delay variation's medians.
void add_delays(nlohmann::json& res, const PointTotals& t) {
  nlohmann::json l = nlohmann::json::object();
  if (t.lat.count()) {
    l = {{"samples", t.lat.count()}, {"min", t.lat_min}, {"p50", t.lat.percentile(0.5)}, {"p90", t.lat.percentile(0.9)},
         {"p99", t.lat.percentile(0.99)}, {"p999", t.lat.percentile(0.999)}, {"max", t.lat_max},
         {"percentiles", "nearest rank in the merged histogram of the repetitions: the bucket's upper edge"},
         {"histogram", t.lat.to_json()}};
  }
  res["latency_ns"] = l;
  nlohmann::json v = nlohmann::json::object();
  if (!t.ipdv99.empty())
    v = {{"p50", median0(t.ipdv50)}, {"p99", median0(t.ipdv99)}, {"max", t.ipdv_max},
         {"percentiles", "medians of the repetitions' exact values; max of all"}};
  res["ipdv_ns"] = v;
  res["pdv_ns"] = {{"p99_median_of_repetitions", median0(t.pdv99)}};
}

// Where the agent put the method (each trial's own report): the CPU, pinned in every trial.
void add_proxy_placement(nlohmann::json& res, const nlohmann::json& samples, size_t good) {
  nlohmann::json cpus = nlohmann::json::array();
  bool all_pinned = good > 0;
  for (const auto& s : samples) {
    if (!s.is_object() || s.contains("error")) continue;
    const nlohmann::json* pl = at(s, {"proxy_placement"});
    const bool pinned = pl && pl->is_object() && pl->value("pinned", false);
    all_pinned = all_pinned && pinned;
    const nlohmann::json c = pl && pl->is_object() && pl->contains("cpu") ? (*pl)["cpu"] : nlohmann::json(nullptr);
    if (std::find(cpus.begin(), cpus.end(), c) == cpus.end()) cpus.push_back(c);
  }
  if (good > 0)
    res["proxy_placement"] = {{"cpu", cpus.size() == 1 ? cpus[0] : cpus}, {"pinned", all_pinned},
                              {"basis", "each repetition's proxy agent report (its tasks' affinity read back)"}};
}

}  // namespace

nlohmann::json summarize_ssh_point(nlohmann::json res) {
  const nlohmann::json samples = res.value("samples", nlohmann::json::array());
  PointTotals totals;
  LatencyValidity validity;
  std::string error;
  size_t good = 0;
  for (const auto& s : samples) {
    if (!s.is_object() || s.contains("error")) {
      error = s.is_object() && s["error"].is_string() ? s["error"].get<std::string>() : "a repetition failed";
      continue;
    }
    ++good;
    validity.add(s);
    totals.add_counts(s);
    totals.add_delays(s);
  }
  res["repetitions"] = good;
  add_rates_and_intervals(res, totals, validity);
  add_counts(res, totals);
  add_delays(res, totals);
  res["cpu"] = summarize_cpu(samples, res.value("competitors", 0));
  add_proxy_placement(res, samples, good);
  if (!error.empty()) res["error"] = error;
  return res;
}

namespace {

uint64_t u64(const nlohmann::json& j, const char* k) {
  return j.is_object() && j.contains(k) && j[k].is_number() ? j[k].get<uint64_t>() : 0;
}

}  // namespace

nlohmann::json trial_cpu(const nlohmann::json& p, uint64_t received) {
  nlohmann::json cpu = nlohmann::json::object();
  if (!p.is_object()) return cpu;
  const uint64_t fwd = u64(p, "forwarded");
  cpu["proxy_forwarded"] = fwd;
  if (const nlohmann::json* w = at(p, {"cpu_window"}); w && w->is_object()) cpu["window"] = *w;
  if (const nlohmann::json* pc = at(p, {"process_cpu"}); pc && pc->is_object()) {
    const uint64_t ns =
        u64(*pc, "user_ns") + u64(*pc, "sys_ns") + u64(*pc, "children_user_ns") + u64(*pc, "children_sys_ns");
    cpu["proxy_process_ns"] = ns;
    if (fwd) cpu["proxy_process_ns_per_forwarded"] = double(ns) / double(fwd);
  }
  const nlohmann::json* hc = at(p, {"host_cpu"});
  if (!hc || !hc->is_object()) return cpu;
  nlohmann::json per = nlohmann::json::object();
  if (hc->contains("cpu")) {
    per["cpu"] = (*hc)["cpu"];
    const uint64_t all = u64((*hc)["cpu"], "busy_ns");
    cpu["all_busy_ns"] = all;
    if (received) cpu["all_busy_ns_per_received"] = double(all) / double(received);
  }
  const nlohmann::json* pl = at(p, {"placement"});
  if (pl && pl->is_object() && pl->value("pinned", false) && pl->contains("cpu") && (*pl)["cpu"].is_number_integer()) {
    const int c = (*pl)["cpu"].get<int>();
    const std::string key = "cpu" + std::to_string(c);
    if (hc->contains(key)) {
      per[key] = (*hc)[key];
      const uint64_t busy = u64((*hc)[key], "busy_ns");
      cpu["proxy_host_cpu"] = c;
      add_proxy_host_cpu(cpu, busy, fwd, received);  // bench/accounting.h: 0 ticks is not 0 CPU
    }
  }
  cpu["per_cpu"] = per;
  return cpu;
}

nlohmann::json summarize_cpu(const nlohmann::json& samples, int competitors) {
  std::vector<double> proc, host_fwd, host_rx, all;
  std::map<std::string, std::vector<double>> split;
  nlohmann::json host_note;
  if (samples.is_array())
    for (const auto& s : samples) {
      if (!s.is_object() || s.contains("error") || !s.contains("cpu")) continue;
      const nlohmann::json& c = s["cpu"];
      // The split only where the total was measured (trial_cpu: a CPU no tick found busy).
      if (!c.contains("proxy_host_ns_per_forwarded") && c.contains("proxy_host_note")) host_note = c["proxy_host_note"];
      if (auto h = number_at(c, {"proxy_host_cpu"}), f = number_at(c, {"proxy_forwarded"});
          h && f && *f > 0 && c.contains("proxy_host_ns_per_forwarded")) {
        if (const nlohmann::json* t = at(c, {"per_cpu", ("cpu" + std::to_string(int(*h))).c_str()})) {
          auto ns = [&](const char* k) { return t->contains(k) && (*t)[k].is_number() ? (*t)[k].get<double>() : 0.0; };
          split["user"].push_back((ns("user_ns") + ns("nice_ns")) / *f);
          split["system"].push_back(ns("system_ns") / *f);
          split["softirq"].push_back(ns("softirq_ns") / *f);
          split["irq"].push_back(ns("irq_ns") / *f);
        }
      }
      if (auto v = number_at(c, {"proxy_process_ns_per_forwarded"})) proc.push_back(*v);
      if (auto v = number_at(c, {"proxy_host_ns_per_forwarded"})) host_fwd.push_back(*v);
      if (auto v = number_at(c, {"proxy_host_ns_per_received"})) host_rx.push_back(*v);
      if (auto v = number_at(c, {"all_busy_ns_per_received"})) all.push_back(*v);
    }
  nlohmann::json cpu = nlohmann::json::object();
  if (!proc.empty()) cpu["proxy_process_ns_per_forwarded"] = median0(proc);
  if (competitors > 0) {
    // The proxy CPU's busy time now includes the competitors': not a cost of the method.
    cpu["note"] = "CPU-time figures of the host's CPUs are left out: they include the competitors' time";
    return cpu;
  }
  if (!host_fwd.empty()) cpu["proxy_host_ns_per_forwarded"] = median0(host_fwd);
  else if (!host_note.is_null()) cpu["proxy_host_note"] = host_note;
  if (!host_rx.empty()) cpu["proxy_host_ns_per_received"] = median0(host_rx);
  if (!all.empty()) cpu["all_cpus_ns_per_received"] = median0(all);
  if (!split.empty()) {
    nlohmann::json sp = nlohmann::json::object();
    for (const auto& [k, v] : split) sp[k] = median0(v);
    cpu["proxy_cpu_split_ns_per_forwarded"] = sp;
    cpu["proxy_cpu_split_note"] =
        "the proxy host CPU's /proc/stat time by class per forwarded packet, medians of the repetitions; "
        "10 ms ticks (USER_HZ); the proxy's process time is getrusage of its agent over the same window";
  }
  return cpu;
}

}  // namespace ulsnet::ssh
