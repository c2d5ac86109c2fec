#include "bench/proxy_status.h"

#include <cstdint>

#include <fmt/core.h>

namespace ulsnet {
namespace {

uint64_t u(const nlohmann::json& j, const std::string& k) {
  return j.is_object() && j.contains(k) && j[k].is_number_unsigned() ? j[k].get<uint64_t>()
         : j.is_object() && j.contains(k) && j[k].is_number_integer() && j[k].get<int64_t>() > 0
             ? uint64_t(j[k].get<int64_t>())
             : 0;
}

// now - before, or 0 (noted in `down`) if the counter went down.
uint64_t delta(uint64_t before, uint64_t now, const std::string& name, nlohmann::json& down) {
  if (now >= before) return now - before;
  down.push_back(name);
  return 0;
}

void add_to(nlohmann::json& sum, const std::string& k, uint64_t n) { sum[k] = u(sum, k) + n; }

}  // namespace

ProxyStatus::ProxyStatus(std::vector<std::string> ifaces, const nlohmann::json& first)
    : ifaces_(std::move(ifaces)), last_(first) {
  last_method_ = first.value("method", nlohmann::json());
  last_method_t_ = first.value("t", 0.0);
  if (!last_method_.is_object()) last_method_ = {{"forwarded", 0}, {"drops", nlohmann::json::object()}};
  totals_ = {{"seconds", 0.0}, {"interfaces", nlohmann::json::object()}, {"forwarded", 0},
             {"drops", nlohmann::json::object()}, {"cpu_ns", 0}};
  for (const std::string& i : ifaces_) totals_["interfaces"][i] = {{"rx", 0}, {"tx", 0}, {"rx_drop", 0}, {"tx_drop", 0}};
}

nlohmann::json ProxyStatus::next(const nlohmann::json& s) {
  nlohmann::json down = nlohmann::json::array();
  nlohmann::json iv;
  const double t = s.value("t", 0.0), dt = t - last_.value("t", 0.0);
  iv["t"] = t;
  iv["interval_s"] = dt;
  totals_["seconds"] = totals_["seconds"].get<double>() + dt;

  const nlohmann::json& nd0 = last_["netdev"];
  const nlohmann::json& nd1 = s["netdev"];
  for (const std::string& i : ifaces_) {
    nlohmann::json c;
    for (const auto& [key, counter] : {std::pair<const char*, const char*>{"rx", "rx_packets"},
                                       {"tx", "tx_packets"}, {"rx_drop", "rx_drop"}, {"tx_drop", "tx_drop"}}) {
      const std::string name = i + "." + counter;
      const uint64_t d = delta(u(nd0, name), u(nd1, name), name, down);
      c[key] = d;
      add_to(totals_["interfaces"][i], key, d);
    }
    iv["interfaces"][i] = c;
  }

  const nlohmann::json& m = s.contains("method") ? s["method"] : nlohmann::json();
  iv["method_counters"] = m.is_object();
  if (!m.is_object() && !s.value("method_live", true)) iv["method_live"] = false;
  iv["drops"] = nlohmann::json::object();
  if (m.is_object()) {
    const uint64_t f = delta(u(last_method_, "forwarded"), u(m, "forwarded"), "forwarded", down);
    iv["forwarded"] = f;
    add_to(totals_, "forwarded", f);
    const nlohmann::json& d0 = last_method_.contains("drops") ? last_method_["drops"] : nlohmann::json::object();
    const nlohmann::json empty = nlohmann::json::object();
    if (m.contains("drops") && m["drops"].is_object())
      for (auto st = m["drops"].begin(); st != m["drops"].end(); ++st) {
        const nlohmann::json& before = d0.contains(st.key()) ? d0[st.key()] : empty;
        for (auto r = st->begin(); r != st->end(); ++r) {
          const uint64_t d = delta(u(before, r.key()), u(*st, r.key()), st.key() + "/" + r.key(), down);
          if (d == 0) continue;
          iv["drops"][st.key()][r.key()] = d;
          add_to(totals_["drops"][st.key()], r.key(), d);
        }
      }
    // Per second since the method's counters were last seen (which may be more than this line).
    const double since = t - last_method_t_;
    iv["forwarded_per_s"] = since > 0 ? double(f) / since : 0.0;
    last_method_ = m;
    last_method_t_ = t;
  } else {
    iv["forwarded"] = 0;
    iv["forwarded_per_s"] = 0.0;
  }

  const uint64_t cpu = delta(u(last_, "cpu_ns"), u(s, "cpu_ns"), "cpu_ns", down);
  add_to(totals_, "cpu_ns", cpu);
  iv["cpu_percent"] = dt > 0 ? 100.0 * double(cpu) / (dt * 1e9) : 0.0;
  if (!down.empty()) iv["went_down"] = down;
  last_ = s;
  return iv;
}

std::string format_status(const nlohmann::json& iv, const std::vector<std::string>& ifaces) {
  std::string line = fmt::format("{:7.1f} s ", iv.value("t", 0.0));
  for (const std::string& i : ifaces) {
    if (!iv["interfaces"].contains(i)) continue;
    const nlohmann::json& c = iv["interfaces"][i];
    line += fmt::format(" {} in {} out {}", i, u(c, "rx"), u(c, "tx"));
    if (u(c, "rx_drop") + u(c, "tx_drop") != 0)
      line += fmt::format(" (dropped: in {} out {})", u(c, "rx_drop"), u(c, "tx_drop"));
    line += " |";
  }
  if (iv.value("method_counters", false))
    line += fmt::format(" forwarded {} ({:.0f}/s) |", u(iv, "forwarded"), iv.value("forwarded_per_s", 0.0));
  else if (!iv.value("method_live", true))
    line += " forwarded: in the final report (no live counters here) |";
  else
    line += " forwarded ? (the method did not answer: counted in the next line) |";
  uint64_t total = 0;
  std::string reasons;
  for (auto st = iv["drops"].begin(); st != iv["drops"].end(); ++st)
    for (auto r = st->begin(); r != st->end(); ++r) {
      total += r->get<uint64_t>();
      reasons += fmt::format(" {}/{} {}", st.key(), r.key(), r->get<uint64_t>());
    }
  line += fmt::format(" drops {}{} | cpu {:.1f}%", total, reasons.empty() ? "" : ":" + reasons,
                      iv.value("cpu_percent", 0.0));
  if (iv.contains("went_down")) line += " | WENT DOWN: " + iv["went_down"].dump();
  return line;
}

}  // namespace ulsnet
