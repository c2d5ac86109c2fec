// The namespace hosts' jobs: what one fresh topology runs (a method, its variant, a forwarding
// mode, and for the sandbox the protection domain in force), expanded from --methods, --modes and
// --protection with the run's default-mode rules, and the key that names a job's points and
// searches in a result file for resuming.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "baselines/registry.h"
#include "bench/throughput_options.h"

namespace ulsnet {

struct Job {
  const MethodInfo* info;
  std::string variant;
  ForwardMode mode;
  std::string protection = "n/a";  // sandbox only: the protection domain in force
  std::string name() const;
};

// "method|variant|mode|protection|size": a job's points and searches at `size` in a result file.
std::string job_key(const Job& job, uint32_t size);

// --protection's modes as they resolve here, each once; false (exit 2) after one line on stderr.
bool resolve_protection(const std::vector<std::string>& asked, std::vector<std::string>& in_force);

// The jobs of `o` (`modes_given`: --modes was on the command line), the batched kernel-socket
// relay first (the common load comes from its PDR); false (exit 2) after one line on stderr.
bool expand_jobs(const ThroughputOptions& o, bool modes_given, const std::vector<std::string>& in_force,
                 std::vector<Job>& jobs);

}  // namespace ulsnet
