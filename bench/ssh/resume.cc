#include "bench/ssh/resume.h"

#include <algorithm>

namespace ulsnet::ssh {

std::string job_key(const std::string& method, const std::string& variant, const std::string& mode,
                    const std::string& protection, uint32_t payload) {
  return method + "|" + variant + "|" + mode + "|" + protection + "|" + std::to_string(payload);
}

nlohmann::json comparable_config(nlohmann::json config, bool with_addressing) {
  if (!config.is_object()) return config;
  for (const char* k : {"argv", "agent", "ssh"}) config.erase(k);
  if (!with_addressing) {
    config.erase("addressing");
    config.erase("placement");
  }
  return config;
}

namespace {

void note_run_ids(const nlohmann::json& samples, uint32_t& max_id) {
  if (!samples.is_array()) return;
  for (const auto& s : samples)
    if (s.is_object() && s.contains("run_id") && s["run_id"].is_number_integer() && s["run_id"].get<int64_t>() > 0)
      max_id = std::max(max_id, uint32_t(s["run_id"].get<int64_t>()));
}

}  // namespace

Finished finished_points(const nlohmann::json& old, const nlohmann::json& config) {
  if (!old.is_object() || old.value("schema", "") != kSshSchema)
    throw ResumeRefused(std::string("it is not an ") + kSshSchema + " result");
  const std::string diff = config_difference(comparable_config(old.value("config", nlohmann::json::object()), false),
                                             comparable_config(config, false));
  if (!diff.empty()) throw ResumeRefused("it holds a run with another configuration (" + diff + ")");
  const int reps = config.value("reps", 0);
  Finished f;
  for (const auto& r : old.value("results", nlohmann::json::array())) {
    if (!r.is_object()) continue;
    note_run_ids(r.value("samples", nlohmann::json::array()), f.max_run_id);
    if (!r.contains("point") || !r["point"].is_string() || r.contains("error") || r.value("interrupted", false))
      continue;
    if (r.value("repetitions", 0) != reps || r.value("samples", nlohmann::json::array()).size() != size_t(reps)) continue;
    f.points[r["point"].get<std::string>()] = r;
  }
  for (const auto& c : old.value("capacity", nlohmann::json::array())) {
    if (!c.is_object()) continue;
    note_run_ids(c.value("steps", nlohmann::json::array()), f.max_run_id);
    if (c.contains("error") || !c.contains("pdr")) continue;
    f.capacity[job_key(c.value("method", ""), c.value("variant", ""), c.value("mode", ""), c.value("protection", "n/a"),
                       c.value("payload_bytes", 0u))] = c;
  }
  return f;
}

}  // namespace ulsnet::ssh
