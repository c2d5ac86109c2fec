// What //bench:throughput's two runners do alike: see bench/throughput_common.h.
#include "bench/throughput_common.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>

#include <fmt/core.h>

namespace ulsnet {

SearchOptions ndr_pdr_search_options(double pdr_loss, std::vector<double> durations, double precision, int max_trials,
                                     double max_rate_pps, int final_trials) {
  SearchOptions so;
  so.criteria = {{"ndr", 0.0}, {"pdr", pdr_loss}};
  so.durations = std::move(durations);
  so.precision = precision;
  so.max_trials = max_trials;
  so.max_rate_pps = max_rate_pps;
  so.final_trials = final_trials;
  return so;
}

std::optional<double> pdr_lower_bound(const nlohmann::json& cap) {
  if (!cap.is_object() || !cap.contains("pdr")) return std::nullopt;
  const nlohmann::json& pdr = cap["pdr"];
  if (!pdr.is_object() || !pdr.contains("lower_pps") || !pdr["lower_pps"].is_number()) return std::nullopt;
  const double lower = pdr["lower_pps"].get<double>();
  if (lower <= 0) return std::nullopt;
  return lower;
}

double sweep_rate(double fraction, double pdr_lower) { return std::max(1.0, std::round(fraction * pdr_lower)); }

std::string sweep_basis(double fraction, uint32_t size, double pdr_lower, const nlohmann::json& cap) {
  return fmt::format("{} x this job's PDR lower bound at {} B ({:.0f} pps{})", fraction, size, pdr_lower,
                     cap["pdr"].value("censored", false) ? ", censored at the generator" : "");
}

bool read_earlier_run(const std::string& path, nlohmann::json& old) {
  try {
    std::ifstream in(path);
    old = nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    fmt::print(stderr, "throughput: {} exists but is not a result file ({}): give another --out, or --fresh to "
                       "overwrite it\n", path, e.what());
    return false;
  }
  return true;
}

void refuse_other_configuration(const std::string& path) {
  fmt::print(stderr, "throughput: {} holds a run with another configuration: give another --out, or --fresh to "
                     "overwrite it\n", path);
}

}  // namespace ulsnet
