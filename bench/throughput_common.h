// What the throughput runners (namespace hosts: bench/throughput.cc; VMs: bench/vm_throughput.cc;
// real hosts: bench/ssh/ssh_throughput.cc) do alike: the NDR/PDR search's options from the flags,
// the offered-load sweep's rates and their basis from a job's PDR bracket, and (the first two) an
// earlier run's result file read back for resuming, with the same refusals.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/search.h"

namespace ulsnet {

// NDR (loss 0) and PDR (loss <= pdr_loss) over the phases `durations` (the last the final one).
SearchOptions ndr_pdr_search_options(double pdr_loss, std::vector<double> durations, double precision, int max_trials,
                                     double max_rate_pps, int final_trials);

// A capacity entry's PDR lower bound when it is a rate above 0: what the sweep's fractions are of.
std::optional<double> pdr_lower_bound(const nlohmann::json& cap);

// The sweep's rate at `fraction` of `pdr_lower` (at least 1 pps).
double sweep_rate(double fraction, double pdr_lower);

// The sweep point's load_basis: "F x this job's PDR lower bound at S B (R pps[, censored ...])".
std::string sweep_basis(double fraction, uint32_t size, double pdr_lower, const nlohmann::json& cap);

// The document at `path` (an existing result file given as --out): false (exit 2) after one line
// on stderr when it is not JSON.
bool read_earlier_run(const std::string& path, nlohmann::json& old);

// The line on stderr refusing to resume `path`: it holds a run with another configuration.
void refuse_other_configuration(const std::string& path);

}  // namespace ulsnet
