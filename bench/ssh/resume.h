// Resuming a //bench/ssh:ssh_throughput run (pure, unit-tested): a rerun with the same --out and
// the same configuration keeps what the earlier run finished and runs only the rest, as
// //bench:throughput does.
//
// A point is named by its `point` key, job_key(...) + "|max", "|rate:R", "|fraction:F" or
// "|common:N" (the common load with N competitors; the namespace runner's keys); a search by
// job_key(...). Kept: every point that has all of the
// configuration's repetitions and no error (an errored, interrupted or short point runs again),
// every search without an error (an interrupted search has one).
#pragma once

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "bench/resume.h"

namespace ulsnet::ssh {

inline constexpr const char* kSshSchema = "ulsnet.throughput-ssh.v1";

// "method|variant|mode|protection|payload" ("n/a" for a method without protection domains).
std::string job_key(const std::string& method, const std::string& variant, const std::string& mode,
                    const std::string& protection, uint32_t payload);

// The earlier run cannot be resumed: what to tell the user.
class ResumeRefused : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The configuration fields two runs must agree on to share a result file: all of `config` but
// `argv` (how it was typed), `agent` (where the binary was found) and `ssh` (how to log in),
// and, unless `with_addressing`, `addressing` and `placement` (the test interfaces and the
// proxy's CPU, known only once the hosts are prepared).
nlohmann::json comparable_config(nlohmann::json config, bool with_addressing);

// "" if equal, else the first difference (bench/resume.h).
using resume::config_difference;

struct Finished {
  std::map<std::string, nlohmann::json> points, capacity;  // by key
  uint32_t max_run_id = 0;  // the largest trial run_id in the earlier file
  size_t reused = 0;
  // The finished entry under `key` (counted as reused), or nullptr.
  const nlohmann::json* find(const std::map<std::string, nlohmann::json>& m, const std::string& key) {
    auto it = m.find(key);
    if (it == m.end()) return nullptr;
    ++reused;
    return &it->second;
  }
};

// What `old` (an earlier run's whole file) finished that a run with `config` keeps. Throws
// ResumeRefused when `old` is not an ulsnet.throughput-ssh.v1 result or its configuration
// differs (comparable_config without addressing).
Finished finished_points(const nlohmann::json& old, const nlohmann::json& config);

}  // namespace ulsnet::ssh
