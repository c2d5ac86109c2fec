#include "bench/stability.h"

#include <algorithm>
#include <cmath>

namespace ulsnet {
namespace {

// The target entry whose name starts with `prefix`.
const nlohmann::json* target(const nlohmann::json& doc, const std::string& prefix) {
  if (!doc.contains("targets") || !doc["targets"].is_array()) return nullptr;
  for (const auto& t : doc["targets"])
    if (t.value("target", "").rfind(prefix, 0) == 0) return &t;
  return nullptr;
}

nlohmann::json summary(const nlohmann::json& doc, StabilityKind kind) {
  nlohmann::json s = nlohmann::json::array();
  if (kind == StabilityKind::kNetns) {
    for (const auto& c : doc.value("capacity", nlohmann::json::array())) {
      nlohmann::json e{{"method", c.value("method", "")}, {"variant", c.value("variant", "")},
                       {"mode", c.value("mode", "")}, {"protection", c.value("protection", "")}};
      for (const char* k : {"ndr", "pdr"})
        if (c.contains(k))
          e[k] = {{"lower_pps", c[k].value("lower_pps", nlohmann::json())},
                  {"upper_pps", c[k].value("upper_pps", nlohmann::json())},
                  {"status", c[k].value("status", "")}};
      if (c.contains("error")) e["error"] = c["error"];
      s.push_back(e);
    }
  } else {
    for (const auto& r : doc.value("results", nlohmann::json::array())) {
      nlohmann::json e{{"method", r.value("method", "")}, {"variant", r.value("variant", "")},
                       {"mode", r.value("mode", "")}, {"purpose", r.value("purpose", "")}};
      for (const char* k : {"proxy_vm_insns_per_forwarded", "proxy_vm_cpu_ns_per_forwarded", "accounting"})
        if (r.contains(k)) e[k] = r[k];
      if (r.contains("error")) e["error"] = r["error"];
      s.push_back(e);
    }
  }
  return s;
}

}  // namespace

nlohmann::json headline_of(const nlohmann::json& doc, StabilityKind kind) {
  const std::string prefix = kind == StabilityKind::kNetns ? "pdr of sandbox:af_xdp vs kernel-socket:batched"
                                                           : "proxy-VM cost per forwarded packet vs kernel-socket batched";
  const nlohmann::json* t = target(doc, prefix);
  if (!t) return {{"error", "no target '" + prefix + "' in the document"}};
  if (!t->contains("value") || !(*t)["value"].is_number())
    return {{"error", "target '" + prefix + "' has no value: " + t->value("status", "?") +
                          (t->contains("note") ? " (" + (*t)["note"].get<std::string>() + ")" : "")}};
  nlohmann::json h = *t;
  // A capacity target notes every side whose bracket is not "measured" (censored at the
  // tester's ceiling, budget exhausted...): its value is then a ratio of lower bounds of which
  // one is no point estimate, and the runs' spread compares nothing.
  if (kind == StabilityKind::kNetns && t->contains("note")) h["not_comparable"] = (*t)["note"];
  return h;
}

nlohmann::json stability_record(const std::vector<nlohmann::json>& docs, const std::vector<std::string>& files,
                                StabilityKind kind) {
  const bool netns = kind == StabilityKind::kNetns;
  nlohmann::json rec;
  rec["kind"] = netns ? "netns" : "vm";
  rec["headline"] = netns ? "PDR of sandbox:af_xdp / PDR of kernel-socket:batched, relay, 64 B (the lower bounds "
                            "of the brackets)"
                          : "proxy-VM instructions per forwarded packet, sandbox:uls / kernel-socket:batched, "
                            "relay (cost runs, medians of repetitions)";
  rec["goal_spread"] = netns ? 0.10 : 0.05;
  rec["spread_definition"] = "max / min - 1 of the runs' headline ratios";
  rec["runs"] = nlohmann::json::array();
  std::vector<double> ratios;
  std::string error, not_comparable;
  for (size_t i = 0; i < docs.size(); ++i) {
    const nlohmann::json& d = docs[i];
    nlohmann::json run{{"file", i < files.size() ? files[i] : ""},
                       {"environment", d.value("environment", nlohmann::json::object())},
                       {"argv", d.contains("config") ? d["config"].value("argv", nlohmann::json()) : nlohmann::json()},
                       {"summary", summary(d, kind)},
                       {"targets", d.value("targets", nlohmann::json::array())}};
    const nlohmann::json h = headline_of(d, kind);
    run["headline"] = h;
    if (h.contains("error")) {
      run["headline_ratio"] = nullptr;
      if (error.empty()) error = "run " + std::to_string(i + 1) + ": " + h["error"].get<std::string>();
    } else {
      run["headline_ratio"] = h["value"];
      ratios.push_back(h["value"].get<double>());
      if (h.contains("not_comparable") && not_comparable.empty())
        not_comparable = "run " + std::to_string(i + 1) + ": " + h["not_comparable"].get<std::string>();
    }
    rec["runs"].push_back(run);
  }
  rec["headline_ratios"] = ratios;
  if (!error.empty() || ratios.size() < 2) {
    rec["status"] = "error";
    rec["note"] = error.empty() ? "fewer than two runs with a headline" : error;
    return rec;
  }
  const auto [mn, mx] = std::minmax_element(ratios.begin(), ratios.end());
  if (*mn <= 0) {
    rec["status"] = "error";
    rec["note"] = "a headline ratio is not positive";
    return rec;
  }
  const double spread = *mx / *mn - 1;
  rec["spread"] = spread;
  rec["status"] = spread <= rec["goal_spread"].get<double>() ? "met" : "not met";
  if (!not_comparable.empty()) {
    rec["status"] = "undecided";
    rec["note"] = not_comparable + " (a bracket that is not measured gives no point value: the spread compares lower bounds)";
  }
  return rec;
}

}  // namespace ulsnet
