#include "bench/targets.h"

#include <cmath>
#include <limits>

#include <fmt/core.h>

namespace ulsnet {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

bool fits(const nlohmann::json& e, const std::string& m, const std::string& v, const TargetSubject& s) {
  return e.value("payload_bytes", 0u) == s.payload && e.value("method", "") == m && e.value("variant", "") == v && e.value("mode", "") == "relay" &&
         (m != s.method || s.protection.empty() || e.value("protection", "") == s.protection);
}

const nlohmann::json* find(const nlohmann::json& list, const std::string& m, const std::string& v,
                           const TargetSubject& s, bool common_load) {
  if (!list.is_array()) return nullptr;
  for (const auto& e : list)
    if (fits(e, m, v, s) && (!common_load || is_common_load_point(e))) return &e;
  return nullptr;
}

std::string label(const std::string& m, const std::string& v) { return m + ":" + v; }

// The error of a capacity entry or its criterion, "" if none.
std::string capacity_error(const nlohmann::json& c, const std::string& criterion) {
  if (c.contains("error")) return c["error"].get<std::string>();
  if (!c.contains(criterion)) return "no " + criterion + " in its capacity entry";
  if (c[criterion].value("status", "") == "error") return c[criterion].value("note", "error");
  return "";
}

std::pair<double, double> bounds(const nlohmann::json& k) {
  const double lo = k.contains("lower_pps") && k["lower_pps"].is_number() ? k["lower_pps"].get<double>() : 0;
  const double hi = k.contains("upper_pps") && k["upper_pps"].is_number() ? k["upper_pps"].get<double>() : kInf;
  return {lo, hi};
}

nlohmann::json num_or_null(double x) { return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(nullptr); }

}  // namespace

bool is_common_load_point(const nlohmann::json& r) {
  return r.is_object() && r.contains("load_basis") && !r.contains("load_fraction") && r.value("competitors", 0) == 0;
}

nlohmann::json evaluate_targets(const nlohmann::json& doc, const TargetSubject& s) {
  nlohmann::json out = nlohmann::json::array();
  const nlohmann::json empty = nlohmann::json::array();
  const nlohmann::json& caps = doc.contains("capacity") ? doc["capacity"] : empty;
  const nlohmann::json& results = doc.contains("results") ? doc["results"] : empty;

  auto capacity_ratio = [&](const std::string& m, const std::string& v, double goal) {
    nlohmann::json t{{"target", s.criterion + " of " + label(s.method, s.variant) + " vs " + label(m, v) + " (relay)"},
                     {"goal", ">= " + fmt::format("{}", goal)},
                     {"basis", "the " + s.criterion + " brackets of both, from this run's search"}};
    const nlohmann::json *a = find(caps, s.method, s.variant, s, false), *b = find(caps, m, v, s, false);
    if (!a || !b) {
      t["status"] = "not measured in this run";
      out.push_back(t);
      return;
    }
    if (std::string e = capacity_error(*a, s.criterion); !e.empty()) {
      t["status"] = "error";
      t["note"] = label(s.method, s.variant) + ": " + e;
    } else if (std::string e2 = capacity_error(*b, s.criterion); !e2.empty()) {
      t["status"] = "error";
      t["note"] = label(m, v) + ": " + e2;
    } else {
      const auto [alo, ahi] = bounds((*a)[s.criterion]);
      const auto [blo, bhi] = bounds((*b)[s.criterion]);
      const double rmin = bhi == kInf ? 0 : alo / bhi;
      const double rmax = blo <= 0 ? kInf : ahi / blo;
      if (blo > 0 && alo > 0) t["value"] = alo / blo;
      t["interval"] = {num_or_null(rmin), num_or_null(rmax)};
      if (rmin >= goal) t["status"] = "met";
      else if (rmax < goal) t["status"] = "not met";
      else t["status"] = "undecided";
      std::string note;
      using Who = std::pair<std::string, const nlohmann::json*>;
      for (const auto& [who, e] : {Who{label(s.method, s.variant), a}, Who{label(m, v), b}}) {
        const std::string st = (*e)[s.criterion].value("status", "");
        if (st != "measured") note += (note.empty() ? "" : "; ") + who + ": " + st;
      }
      if (!note.empty()) t["note"] = note;
    }
    out.push_back(t);
  };
  capacity_ratio("kernel-socket", "batched", 2);
  capacity_ratio("raw-socket", "af_packet", 3);
  capacity_ratio("user-thread", "af_packet", 3);
  capacity_ratio("xdp-redirect", "native", 0.8);

  auto common_ratio = [&](const std::string& name, const std::vector<std::string>& path, double goal) {
    nlohmann::json t{{"target", name}, {"goal", "<= " + fmt::format("{}", goal)},
                     {"basis", "the common-load point of both (same offered rate)"}};
    const nlohmann::json *a = find(results, s.method, s.variant, s, true),
                         *b = find(results, "kernel-socket", "batched", s, true);
    auto get = [&](const nlohmann::json& r) -> double {
      const nlohmann::json* x = &r;
      for (const auto& k : path) {
        if (!x->contains(k)) return std::nan("");
        x = &(*x)[k];
      }
      return x->is_number() ? x->get<double>() : std::nan("");
    };
    if (!a || !b) {
      t["status"] = "not measured in this run";
    } else if (a->contains("error") || b->contains("error")) {
      t["status"] = "error";
      t["note"] = a->contains("error") ? label(s.method, s.variant) + ": " + (*a)["error"].get<std::string>()
                                       : "kernel-socket:batched: " + (*b)["error"].get<std::string>();
    } else if (const double x = get(*a), y = get(*b); std::isnan(x) || std::isnan(y) || y <= 0) {
      t["status"] = "not measured in this run";
      t["note"] = "no value at the common load";
    } else {
      t["value"] = x / y;
      t["status"] = x / y <= goal ? "met" : "not met";
      t["load_pps"] = (*a)["load"];
    }
    out.push_back(t);
  };
  common_ratio("p99 latency at the common load vs kernel-socket:batched", {"latency_ns", "p99"}, 0.5);
  common_ratio("proxy-host CPU per forwarded packet at the common load vs kernel-socket:batched",
               {"cpu", "proxy_host_ns_per_forwarded"}, 0.4);
  return out;
}

}  // namespace ulsnet
