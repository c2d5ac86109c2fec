// One trial on real hosts and the NDR/PDR search made of them. A trial: the sink (`ulsnet_agent
// recv`) ready on the receiver, the method (`proxy`) ready on the proxy, the generator (`send`)
// for the trial's duration (its "ready" marks the proxy's CPU window), a drain, the proxy and the
// sink told to stop; the three JSON reports accounted (bench/ssh/ssh_accounting.h) with the
// one-way validity of the delays and the proxy's CPU per packet. Every wait is bounded; a role
// that says nothing usable makes the trial an error record, never skipped.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/ssh/ssh_hosts.h"
#include "bench/ssh/ssh_options.h"
#include "bench/ssh/ssh_plan.h"

namespace ulsnet::ssh {

struct TrialParams {
  SshJob job;
  uint32_t payload;
  double rate_pps;  // 0: max
  double duration_s;
  uint32_t run_id;
  int competitors = 0;  // CPU-bound processes on the proxy's CPU during the trial
};

// "0,1,3": a CPU list as the agent's --cpus takes it.
std::string cpu_list(const std::vector<int>& v);

// One trial's record (account_ssh_trial's, with latency, cpu, proxy_placement and the trial's
// settings), or {error, run_id, reports}.
nlohmann::json run_trial(const SshThroughputOptions& o, std::vector<Host>& hosts, const Addressing& ad,
                         const TrialParams& t);

// NDR and PDR of `job` at `payload` (bench/search.h), every trial a run_trial numbered from
// `run_id` on; the capacity entry, its brackets on stderr.
nlohmann::json search_capacity(const SshThroughputOptions& o, std::vector<Host>& hosts, const Addressing& ad,
                               const SshJob& job, uint32_t payload, uint32_t& run_id);

}  // namespace ulsnet::ssh
