// A point's summary over its repetitions: see bench/throughput_point.h. The samples are read
// once into a PointTotals; each group of summary fields is then written from it in the result
// file's order.
#include "bench/throughput_point.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "stack/drop_stage.h"
#include "bench/stats.h"

namespace ulsnet {
namespace {

// The median, 0 for none (bench/stats.h median).
double median0(std::vector<double> v) { return median(std::move(v)).value_or(0); }

// The value at `path` in j, if it is a number.
std::optional<double> number_at(const nlohmann::json& j, std::initializer_list<const char*> path) {
  const nlohmann::json* x = &j;
  for (const char* k : path) {
    if (!x->is_object() || !x->contains(k)) return std::nullopt;
    x = &(*x)[k];
  }
  return x->is_number() ? std::optional<double>(x->get<double>()) : std::nullopt;
}

// One label for a result from its samples: the one value they all report, or "mixed: a, b".
nlohmann::json common_label(const nlohmann::json& samples, const std::function<nlohmann::json(const nlohmann::json&)>& get) {
  std::set<std::string> seen;
  nlohmann::json first;
  for (const auto& s : samples) {
    nlohmann::json v = get(s);
    if (v.is_null()) continue;
    if (first.is_null()) first = v;
    seen.insert(v.dump());
  }
  if (seen.size() <= 1) return first;
  std::string all;
  for (const auto& v : seen) all += (all.empty() ? "" : ", ") + v;
  return "mixed: " + all;
}

// What the repetitions add up to, gathered in one pass over the samples.
struct PointTotals {
  std::vector<double> delivered, offered, pdv99, ipdv50, ipdv99, rfc3550, cpu_proc, cpu_host_fwd, cpu_host_rx, cpu_all,
      lat99;
  std::map<std::string, std::vector<double>> split;  // the proxy CPU's time by /proc/stat class, per forwarded
  uint64_t warmup_excluded = 0;
  nlohmann::json host_note;  // why the proxy CPU's figures were left out, if in every repetition
  uint64_t sent = 0, received = 0, forwarded = 0;
  int64_t unaccounted = 0;
  DropLedger drops;
  LogHistogram lat;
  int64_t lat_min = INT64_MAX, lat_max = INT64_MIN, ipdv_max = INT64_MIN;
  std::string error;

  void add(const nlohmann::json& s);
  void add_cpu(const nlohmann::json& s);
};

void PointTotals::add(const nlohmann::json& s) {
  delivered.push_back(s["delivered_pps"]);
  offered.push_back(s["offered_pps"]);
  sent += s["sent"].get<uint64_t>();
  received += s["received"].get<uint64_t>();
  forwarded += s.value("forwarded", uint64_t(0));
  unaccounted += s["unaccounted"].get<int64_t>();
  drops.merge(DropLedger::from_json(s["drops"]));
  if (s["latency_ns"].contains("histogram")) {
    lat.merge(LogHistogram::from_json(s["latency_ns"]["histogram"]));
    lat_min = std::min(lat_min, s["latency_ns"]["min"].get<int64_t>());
    lat_max = std::max(lat_max, s["latency_ns"]["max"].get<int64_t>());
  }
  if (auto v = number_at(s, {"latency_ns", "p99"})) lat99.push_back(*v);
  if (auto v = number_at(s, {"latency_ns", "warmup_excluded"})) warmup_excluded += uint64_t(*v);
  add_cpu(s);
  if (auto v = number_at(s, {"ipdv_ns", "p50"})) ipdv50.push_back(*v);
  if (auto v = number_at(s, {"ipdv_ns", "p99"})) ipdv99.push_back(*v);
  if (auto v = number_at(s, {"ipdv_ns", "max"})) ipdv_max = std::max(ipdv_max, int64_t(*v));
  if (auto v = number_at(s, {"pdv_ns", "p99"})) pdv99.push_back(*v);
  if (auto v = number_at(s, {"rfc3550_jitter_ns", "final_estimate"})) rfc3550.push_back(*v);
  if (auto v = number_at(s, {"cpu", "proxy_process_ns_per_forwarded"})) cpu_proc.push_back(*v);
  if (auto v = number_at(s, {"cpu", "proxy_host_ns_per_forwarded"})) cpu_host_fwd.push_back(*v);
  if (auto v = number_at(s, {"cpu", "proxy_host_ns_per_received"})) cpu_host_rx.push_back(*v);
  if (auto v = number_at(s, {"cpu", "all_busy_ns_per_received"})) cpu_all.push_back(*v);
}

// The proxy CPU's note and its time split by class.
void PointTotals::add_cpu(const nlohmann::json& s) {
  // The split only where the total was measured (bench/trial.cc: a CPU no tick found busy).
  if (!s["cpu"].contains("proxy_host_ns_per_forwarded") && s["cpu"].contains("proxy_host_note"))
    host_note = s["cpu"]["proxy_host_note"];
  if (auto c = number_at(s, {"cpu", "proxy_host_cpu"}), f = number_at(s, {"cpu", "proxy_forwarded"});
      c && f && *f > 0 && s["cpu"].contains("proxy_host_ns_per_forwarded")) {
    const std::string key = "cpu" + std::to_string(int(*c));
    if (s["cpu"].contains("per_cpu") && s["cpu"]["per_cpu"].contains(key)) {
      const nlohmann::json& t = s["cpu"]["per_cpu"][key];
      auto ns = [&](const char* k) { return t.contains(k) && t[k].is_number() ? t[k].get<double>() : 0.0; };
      split["user"].push_back((ns("user_ns") + ns("nice_ns")) / *f);
      split["system"].push_back(ns("system_ns") / *f);
      split["softirq"].push_back(ns("softirq_ns") / *f);
      split["irq"].push_back(ns("irq_ns") / *f);
    }
  }
}

// Repetitions, rates (median, min, max, stddev, CIs) and the datagrams' accounting.
void put_rates(nlohmann::json& res, const PointTotals& t) {
  const std::vector<double>& delivered = t.delivered;
  const uint32_t size = res["payload_bytes"];
  const double med = median0(delivered);
  double mean = 0, var = 0;
  for (double d : delivered) mean += d;
  if (!delivered.empty()) mean /= double(delivered.size());
  for (double d : delivered) var += (d - mean) * (d - mean);
  res["repetitions"] = delivered.size();
  res["offered_pps"] = median0(t.offered);
  res["delivered_pps"] = med;
  res["delivered_pps_min"] = delivered.empty() ? 0 : *std::min_element(delivered.begin(), delivered.end());
  res["delivered_pps_max"] = delivered.empty() ? 0 : *std::max_element(delivered.begin(), delivered.end());
  res["delivered_pps_stddev"] = delivered.size() > 1 ? std::sqrt(var / double(delivered.size() - 1)) : 0.0;
  // 95% confidence intervals of the mean over the repetitions (Student t; none with one).
  if (auto ci = mean_ci95(delivered)) res["delivered_pps_ci95"] = to_json(*ci);
  if (auto ci = mean_ci95(t.lat99)) res["latency_p99_ns_ci95"] = to_json(*ci);
  if (auto ci = mean_ci95(t.ipdv99)) res["ipdv_p99_ns_ci95"] = to_json(*ci);
  res["gbps"] = med * size * 8 / 1e9;
  res["sent"] = t.sent;
  res["received"] = t.received;
  res["forwarded"] = t.forwarded;
  res["loss"] = t.sent ? 1.0 - double(t.received) / double(t.sent) : 0.0;
  res["drops"] = t.drops.to_json();
  res["unaccounted"] = t.unaccounted;
}

// Delay, IPDV, PDV and RFC 3550 jitter.
void put_delays(nlohmann::json& res, const PointTotals& t) {
  // Percentiles of all repetitions together, from their merged histograms (bucket width <= 1/64
  // of the value; each sample has its own exact ones).
  nlohmann::json l = nlohmann::json::object();
  if (t.lat.count()) {
    l = {{"samples", t.lat.count()}, {"min", t.lat_min}, {"p50", t.lat.percentile(0.5)}, {"p90", t.lat.percentile(0.9)},
         {"p99", t.lat.percentile(0.99)}, {"p999", t.lat.percentile(0.999)}, {"max", t.lat_max},
         {"percentiles", "nearest rank in the merged histogram of the repetitions: the bucket's upper edge"},
         {"histogram", t.lat.to_json()}};
  }
  l["warmup_excluded"] = t.warmup_excluded;
  res["latency_ns"] = l;
  nlohmann::json v = nlohmann::json::object();
  if (!t.ipdv99.empty()) {
    v = {{"p50", median0(t.ipdv50)}, {"p99", median0(t.ipdv99)}, {"max", t.ipdv_max},
         {"percentiles", "medians of the repetitions' exact values; max of all"},
         {"definition", "RFC 3393/5481 IPDV over consecutive sequence numbers, whole trial"}};
  }
  res["ipdv_ns"] = v;
  res["pdv_ns"] = {{"p99_median_of_repetitions", median0(t.pdv99)}, {"definition", "RFC 5481: delay - the trial's minimum"}};
  res["rfc3550_jitter_ns"] = {{"final_estimate_median", median0(t.rfc3550)},
                              {"definition", "RFC 3550 running estimate, its last value: the final few dozen packets"}};
}

// CPU per packet: medians of the repetitions.
nlohmann::json cpu_json(const PointTotals& t) {
  nlohmann::json cpu = nlohmann::json::object();
  if (!t.cpu_proc.empty()) cpu["proxy_process_ns_per_forwarded"] = median0(t.cpu_proc);
  if (!t.cpu_host_fwd.empty()) cpu["proxy_host_ns_per_forwarded"] = median0(t.cpu_host_fwd);
  else if (!t.host_note.is_null()) cpu["proxy_host_note"] = t.host_note;
  if (!t.cpu_host_rx.empty()) cpu["proxy_host_ns_per_received"] = median0(t.cpu_host_rx);
  if (!t.cpu_all.empty()) cpu["all_cpus_ns_per_received"] = median0(t.cpu_all);
  if (!t.split.empty()) {
    nlohmann::json sp = nlohmann::json::object();
    for (const auto& [k, v] : t.split) sp[k] = median0(v);
    cpu["proxy_cpu_split_ns_per_forwarded"] = sp;
    cpu["proxy_cpu_split_note"] =
        "the proxy host CPU's /proc/stat time by class per forwarded packet, medians of the repetitions; "
        "10 ms ticks; threaded NAPI (the veth receive work on that CPU) counts as system";
  }
  return cpu;
}

// Labels from what ran: the generator and sink objects, the proxy's own report.
nlohmann::json labels_json(const nlohmann::json& samples, const nlohmann::json& base_labels) {
  nlohmann::json labels = base_labels;
  labels["generator"] = common_label(samples, [](const nlohmann::json& s) { return s.value("generator", nlohmann::json()); });
  labels["sink"] = common_label(samples, [](const nlohmann::json& s) { return s.value("sink", nlohmann::json()); });
  auto from_proxy = [&](const char* k) {
    return common_label(samples, [k](const nlohmann::json& s) {
      return s.contains("reports") && s["reports"]["proxy"].is_object() && s["reports"]["proxy"].contains(k)
                 ? s["reports"]["proxy"][k]
                 : nlohmann::json();
    });
  };
  for (const char* k : {"device_mode", "protection", "xdp_attached", "upcall_model"})
    if (nlohmann::json x = from_proxy(k); !x.is_null()) labels[k] = x;
  return labels;
}

}  // namespace

nlohmann::json summarize_point(nlohmann::json res, const nlohmann::json& base_labels) {
  const nlohmann::json& samples = res["samples"];
  PointTotals t;
  for (const auto& s : samples) {
    if (s.contains("error")) {
      t.error = s["error"].get<std::string>();
      continue;
    }
    t.add(s);
  }
  // No repetition measured anything (each errored): no rates, delays or CPU figures, which would
  // read as zeros measured.
  if (!t.delivered.empty()) {
    put_rates(res, t);
    put_delays(res, t);
    res["cpu"] = cpu_json(t);
  } else {
    res["repetitions"] = 0;
  }
  res["labels"] = labels_json(samples, base_labels);
  if (!t.error.empty()) res["error"] = t.error;
  return res;
}

}  // namespace ulsnet
