// What an ssh_throughput run will do, checked before any host is touched: the payloads, rates,
// modes, load fractions and competitor counts parsed from the flags, the jobs (a method, its
// variant and a forwarding mode; the batched kernel-socket relay first, since the common load
// comes from its PDR) and what was skipped, the agent binary and the result file's path. A flag
// that cannot work is a UsageError (exit 2).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "baselines/registry.h"
#include "bench/ssh/ssh_options.h"

namespace ulsnet::ssh {

// A flag that cannot work: one line on stderr, exit 2.
struct UsageError {
  std::string message;
};

// One job: a method, its variant, a forwarding mode.
struct SshJob {
  const MethodInfo* info;
  std::string variant;
  ForwardMode mode;
  std::string name() const;
  // The sandbox's protection domain as asked (the agent resolves "auto" on the proxy host).
  std::string protection(const std::string& asked) const { return info->name == "sandbox" ? asked : "n/a"; }
  // The job's points and searches at `payload` in a result file (bench/ssh/resume.h job_key).
  std::string key(const std::string& asked, uint32_t payload) const;
};

struct SshPlan {
  std::vector<uint32_t> payloads;
  std::vector<double> rates;  // 0: max
  std::vector<ForwardMode> modes;
  std::vector<double> loads;  // fractions of each job's PDR lower bound
  std::vector<int> competitor_counts;
  std::vector<SshJob> jobs;
  nlohmann::json skipped = nlohmann::json::array();  // "method:variant has no MODE mode"
  std::string agent_path, out_path;
};

// The comma-separated words of `s`, empty ones left out.
std::vector<std::string> split(const std::string& s);

// The run `o` asks for; throws UsageError. --loads turns the search on in `o` (and says so).
SshPlan plan_run(SshThroughputOptions& o);

}  // namespace ulsnet::ssh
