// What an ssh_throughput result file records about its run beyond the points: the `config`
// (every flag, the jobs, the agent, SSH), an earlier run of the same --out read back for
// resuming (what it finished, and its addressing and placement to compare once the hosts are
// known), and what the prepared hosts decide: the test interfaces (`config.addressing`), how the
// sender's and the receiver's clocks are compared (`clock`), the proxy's CPU and the other roles'
// CPUs on its machine (`config.placement`, `proxy_placement`).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/ssh/load_plan.h"
#include "bench/ssh/resume.h"
#include "bench/ssh/ssh_hosts.h"
#include "bench/ssh/ssh_options.h"
#include "bench/ssh/ssh_plan.h"

namespace ulsnet::ssh {

// The result file's `config` before the hosts are prepared.
nlohmann::json config_json(const SshThroughputOptions& o, const SshPlan& plan, int argc, char** argv);

// An earlier run at --out: what it finished, and the addressing and placement it ran with.
struct EarlierRun {
  Finished finished;
  nlohmann::json addressing, placement;
};

// The earlier run at `plan.out_path` when --out names an existing file and --fresh is not given
// (said on stderr); throws UsageError when it cannot be resumed with `config`.
EarlierRun read_earlier_ssh_run(const SshThroughputOptions& o, const SshPlan& plan, const nlohmann::json& config);

// `config.addressing`: each test interface, address and MAC as resolved.
nlohmann::json addressing_json(const Addressing& ad);

// How one-way delays are measured: the clocks shared (one boot_id) or compared, at which
// address, the generator shifted or not, into `ad`; the result file's `clock` (a note on stderr
// when they cannot be compared).
nlohmann::json settle_clocks(const SshThroughputOptions& o, const std::vector<Host>& hosts, Addressing& ad);

// --proxy-cpu against the proxy host's CPUs (its agent's env report); throws what
// resolve_proxy_cpu throws for a CPU the host cannot give.
ProxyCpu resolve_proxy_cpu_on(const SshThroughputOptions& o, const Host& proxy);

// The proxy's CPU and, on its machine, the other roles' CPUs off it, into `ad` and `doc`
// (`config.placement`, `proxy_placement`), said on stderr.
void settle_placement(const SshThroughputOptions& o, const std::vector<Host>& hosts, const ProxyCpu& pcpu,
                      Addressing& ad, nlohmann::json& doc);

// The stderr line refusing to resume `path` when the earlier run's placement or addressing
// differs from `doc`'s (false then), true when they agree or there was none.
bool earlier_run_fits_hosts(const EarlierRun& earlier, const nlohmann::json& doc, const std::string& path);

}  // namespace ulsnet::ssh
