#include "bench/ssh/load_plan.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <stdexcept>

namespace ulsnet::ssh {
namespace {

std::optional<long> to_long(const std::string& s) {
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos || s.size() > 9) return std::nullopt;
  return std::strtol(s.c_str(), nullptr, 10);
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> v;
  size_t i = 0;
  for (;;) {
    const size_t c = s.find(sep, i);
    v.push_back(s.substr(i, c == std::string::npos ? std::string::npos : c - i));
    if (c == std::string::npos) return v;
    i = c + 1;
  }
}

}  // namespace

std::optional<std::vector<int>> parse_cpu_list(const std::string& raw) {
  std::string s = raw;
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  std::vector<int> cpus;
  if (s.empty()) return cpus;
  for (const std::string& part : split(s, ',')) {
    const size_t dash = part.find('-');
    auto a = to_long(part.substr(0, dash));
    auto b = dash == std::string::npos ? a : to_long(part.substr(dash + 1));
    if (!a || !b || *b < *a || *b > 65535) return std::nullopt;
    for (long c = *a; c <= *b; ++c) cpus.push_back(int(c));
  }
  std::sort(cpus.begin(), cpus.end());
  cpus.erase(std::unique(cpus.begin(), cpus.end()), cpus.end());
  return cpus;
}

ProxyCpu resolve_proxy_cpu(const std::string& asked, const std::vector<int>& online, const std::vector<int>& allowed) {
  auto usable = [&](int c) {
    return std::find(online.begin(), online.end(), c) != online.end() &&
           (allowed.empty() || std::find(allowed.begin(), allowed.end(), c) != allowed.end());
  };
  if (asked == "none") return {-1, "--proxy-cpu none: not pinned"};
  if (asked == "auto") {
    if (online.size() < 2) return {-1, "the proxy host has " + std::to_string(online.size()) + " online CPU(s): not pinned"};
    for (auto it = online.rbegin(); it != online.rend(); ++it)
      if (usable(*it))
        return {*it, "the proxy host's last online CPU" +
                         std::string(*it == online.back() ? "" : " its agent may run on") + " (of " +
                         std::to_string(online.size()) + ")"};
    return {-1, "none of the proxy host's online CPUs is in its agent's affinity mask: not pinned"};
  }
  auto n = to_long(asked);
  if (!n) throw std::invalid_argument("--proxy-cpu: '" + asked + "' is neither auto, none nor a CPU number");
  if (!usable(int(*n)))
    throw std::invalid_argument("--proxy-cpu " + asked + ": not an online CPU of the proxy host that its agent may use");
  return {int(*n), "--proxy-cpu " + asked};
}

std::vector<int> cpus_off_proxy(int proxy_cpu, const std::vector<int>& online, const std::vector<int>& allowed) {
  std::vector<int> v;
  if (proxy_cpu < 0) return v;
  for (int c : online)
    if (c != proxy_cpu && (allowed.empty() || std::find(allowed.begin(), allowed.end(), c) != allowed.end()))
      v.push_back(c);
  return v;
}

std::vector<int> parse_competitors(const std::string& s) {
  std::vector<int> v = {0};
  if (s.empty()) return v;
  for (const std::string& x : split(s, ',')) {
    auto n = to_long(x);
    if (!n || *n > 16) throw std::invalid_argument("--competitors: '" + x + "' is not a count in [0, 16]");
    if (std::find(v.begin(), v.end(), int(*n)) == v.end()) v.push_back(int(*n));
  }
  return v;
}

bool is_common_load_basis_job(const std::string& method, const std::string& variant, const std::string& mode) {
  return method == "kernel-socket" && variant == "batched" && mode == "relay";
}

std::optional<CommonLoad> derived_common_load(const nlohmann::json& c) {
  if (!c.is_object() || c.contains("error") ||
      !is_common_load_basis_job(c.value("method", ""), c.value("variant", ""), c.value("mode", "")))
    return std::nullopt;
  if (!c.contains("pdr") || !c["pdr"].is_object() || !c["pdr"].contains("lower_pps") || !c["pdr"]["lower_pps"].is_number())
    return std::nullopt;
  const double lo = c["pdr"]["lower_pps"].get<double>();
  if (!std::isfinite(lo) || lo <= 0) return std::nullopt;
  // As //bench:throughput: the rate rounded; at least 1 pps.
  return CommonLoad{std::max(1.0, std::round(0.5 * lo)), "half of kernel-socket:batched relay's PDR lower bound"};
}

}  // namespace ulsnet::ssh
