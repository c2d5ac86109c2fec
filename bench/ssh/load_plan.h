// What a //bench/ssh:ssh_throughput run measures beyond its fixed rates and searches, decided
// from what the hosts and the run report (pure, unit-tested): the proxy's CPU, the common load
// and the competitor counts, as //bench:throughput decides them on the namespace hosts.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace ulsnet::ssh {

// A kernel CPU list ("0-3,8,10-11", as /sys/devices/system/cpu/online and cpuset files write
// it), sorted, without duplicates; nullopt when malformed (empty is an empty list).
std::optional<std::vector<int>> parse_cpu_list(const std::string& s);

// The CPU the proxy's method is pinned to: `asked` is "auto", "none" or a CPU number; `online`
// the proxy host's online CPUs, `allowed` those its agent may run on (sched_getaffinity; empty:
// not known, all online). auto: the last online CPU the agent may use, when the host has >= 2
// online CPUs, else none (one CPU: nothing to keep apart). A number must be online and allowed.
// cpu = -1 for none; basis says why. Throws std::invalid_argument for an unusable `asked`.
struct ProxyCpu {
  int cpu = -1;
  std::string basis;
};
ProxyCpu resolve_proxy_cpu(const std::string& asked, const std::vector<int>& online, const std::vector<int>& allowed);

// --competitors "0,1,2,4": the competitor counts of the common-load points, each in [0, 16],
// in the order given without repeats, 0 first (the point without competitors is always
// measured: the targets read it). "" is {0}. Throws std::invalid_argument.
std::vector<int> parse_competitors(const std::string& s);

// The CPUs for a sender or receiver agent that shares the proxy's machine (one boot_id): that
// machine's usable CPUs (online, and in the agent's mask when known) but the proxy's, so that the
// proxy CPU's time is the proxy's (and its competitors') alone. Empty (not pinned) when the proxy
// is not pinned (proxy_cpu < 0) or no other CPU is usable.
std::vector<int> cpus_off_proxy(int proxy_cpu, const std::vector<int>& online, const std::vector<int>& allowed);

// The job whose PDR sets the common load, and which therefore runs first.
bool is_common_load_basis_job(const std::string& method, const std::string& variant, const std::string& mode);

// The common load //bench:throughput derives when --common-load is 0: half the batched
// kernel-socket relay's PDR lower bound at the first payload, from that job's capacity entry
// (bench/search.h search_result_json, with method, variant, mode). nullopt for any other job's
// entry, an errored search or no positive lower bound.
struct CommonLoad {
  double pps = 0;
  std::string basis;
};
std::optional<CommonLoad> derived_common_load(const nlohmann::json& capacity_entry);

}  // namespace ulsnet::ssh
