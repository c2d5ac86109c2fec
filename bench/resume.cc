#include "bench/resume.h"

#include <cstdio>
#include <filesystem>
#include <fstream>

namespace ulsnet::resume {

std::string config_difference(const nlohmann::json& there, const nlohmann::json& here) {
  if (there == here) return "";
  if (!there.is_object() || !here.is_object()) return there.dump() + " there, " + here.dump() + " here";
  for (const auto& [k, v] : here.items()) {
    if (!there.contains(k)) return k + ": absent there, " + v.dump() + " here";
    if (there[k] != v) return k + ": " + there[k].dump() + " there, " + v.dump() + " here";
  }
  for (const auto& [k, v] : there.items())
    if (!here.contains(k)) return k + ": " + v.dump() + " there, absent here";
  return "";
}

nlohmann::json comparable(nlohmann::json config) {
  if (config.is_object()) config.erase("argv");
  return config;
}

const std::vector<nlohmann::json>* Earlier::take(const std::string& point) {
  auto it = points.find(point);
  if (it == points.end()) return nullptr;
  ++reused;
  return &it->second;
}

Earlier finished_points(const nlohmann::json& old, const std::string& experiment, const nlohmann::json& config,
                        const std::string& rows) {
  if (!old.is_object() || !old.contains("experiment") || old["experiment"] != experiment)
    throw Refused("it is not a " + experiment + " result");
  const std::string diff =
      config_difference(comparable(old.value("config", nlohmann::json::object())), comparable(config));
  if (!diff.empty()) throw Refused("it holds a run with another configuration (" + diff + ")");
  std::map<std::string, std::vector<nlohmann::json>> all;
  std::map<std::string, bool> bad;
  const nlohmann::json none = nlohmann::json::array();
  const nlohmann::json& list = old.contains(rows) && old[rows].is_array() ? old[rows] : none;
  for (const auto& r : list) {
    if (!r.is_object() || !r.contains("point") || !r["point"].is_string()) continue;
    const std::string p = r["point"].get<std::string>();
    all[p].push_back(r);
    if (r.contains("error") || (r.contains("complete") && r["complete"] != true)) bad[p] = true;
  }
  Earlier e;
  for (auto& [p, v] : all)
    if (!bad[p]) e.points[p] = std::move(v);
  return e;
}

Earlier load(const std::string& path, bool fresh, const std::string& experiment, const nlohmann::json& config,
             const std::string& rows) {
  if (fresh || path.empty() || !std::filesystem::exists(path)) return {};
  nlohmann::json old;
  try {
    std::ifstream in(path);
    old = nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    throw Refused(path + " exists but is not a result file (" + e.what() +
                  "): give another --out, or --fresh to overwrite it");
  }
  try {
    return finished_points(old, experiment, config, rows);
  } catch (const Refused& e) {
    throw Refused(path + ": " + e.what() + ": give another --out, or --fresh to overwrite it");
  }
}

std::string Eta::left(size_t points_left) const {
  if (points_left == 0) return "";
  char buf[160];
  std::snprintf(buf, sizeof buf, ", about %.0f s left (%zu point%s at %s%.0f s)", per_point() * double(points_left),
                points_left, points_left == 1 ? "" : "s", n_ ? "" : "a guessed ", per_point());
  return buf;
}

}  // namespace ulsnet::resume
