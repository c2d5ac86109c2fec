// The accounting of one trial on real hosts, and a point's summary over its repetitions (pure,
// unit-tested).
//
// The three reports are what bench/accounting.h reads on the namespace hosts (the agent runs the
// same generator, sink and proxy methods), so the counted stages are the same: `sender` (send
// errors), `link_sender_proxy` and `link_proxy_receiver` (the named interfaces' drop counters at
// both ends of each link), the method's `proxy_*` stages, `receiver_kernel` and `receiver_app`.
// Between real hosts a link is more than two counters (cables, switches, NICs' own queues), so
// what no counter saw is one more stage, by difference:
//   link_or_other.by_difference = sent - received - counted drops   (when >= 0)
// and `unaccounted` is what cannot be a drop: the counted drops and receptions exceeding what
// was sent (negative; a counter that also counted other traffic), 0 otherwise.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace ulsnet::ssh {

// The test interfaces, by host.
struct LinkNames {
  std::string sender_if, proxy_in_if, proxy_out_if, receiver_if;
};

// One trial's record: bench/accounting.h's account_trial (sent, received, lost, loss, drops by
// stage, offered_pps, delivered_pps, latency_ns, ipdv_ns, pdv_ns, reordered, duplicates,
// forwarded, reports) plus drops.link_or_other, dropped_counted, dropped_by_difference, dropped
// (both), and unaccounted as above. Throws std::invalid_argument for reports that cannot be
// accounted (a missing count, a method naming a stage that is not its own).
nlohmann::json account_ssh_trial(const nlohmann::json& generator, const nlohmann::json& proxy,
                                 const nlohmann::json& sink, const LinkNames& links, uint32_t payload);

// Whether a trial's latency_ns are one-way delays, from the clocks they were taken on (as
// //bench:throughput --hosts=vm's latency_of): `clock_shared` (the sender and the receiver have
// one boot_id: one CLOCK_MONOTONIC) and the sender's report's `clock` ({offset, shifted, shift_ns,
// shift_error, residual_before, residual_after}, or null: not compared). Returns {one_way_valid,
// basis, clock_error_bound_ns, clock_drift_during_stream_ns} or {one_way_valid: false, why}:
//   shifted: the stamps were taken on the receiver's clock to within the residual difference
//     measured right before and right after the stream, each known to within its uncertainty:
//     bound = max(|residual| + uncertainty), drift = residual_after - residual_before;
//   not shifted, one clock: bound 0, drift 0 (and `shared_clock_check`: whether each measured
//     offset is 0 within its uncertainty, as it must be);
//   otherwise not valid, and why (no comparison, no answer, the shift refused).
nlohmann::json one_way_latency(bool clock_shared, const nlohmann::json& sender_clock);

// A point's summary from `point` = {..., "samples": [trial records or {"error"}]}: repetitions,
// offered_pps and delivered_pps (medians, with min and max of delivered), sums of sent, received,
// forwarded, dropped, dropped_counted, dropped_by_difference and unaccounted, loss (from the
// sums), drops (every stage and reason summed, link_or_other included), latency_ns (percentiles
// of the repetitions' merged histograms, min and max exact), ipdv_ns (medians of the repetitions'
// p50 and p99, max of all), the 95% confidence intervals of the mean over the repetitions that
// //bench:throughput gives (delivered_pps_ci95, latency_p99_ns_ci95, ipdv_p99_ns_ci95: Student t,
// bench/stats.h's mean_ci95, {mean, lo, hi, level}; absent with fewer than two values; the latency
// one only when the delays are valid), `latency` from the repetitions' own (one_way_latency):
// one_way_valid if all are, the largest clock_error_bound_ns and clock_drift_during_stream_ns (by
// magnitude), the first why; latency_valid = latency.one_way_valid; `cpu` (summarize_cpu of
// the trials' `cpu`, the point's `competitors`); `proxy_placement` {cpu, pinned: in every
// repetition} from the trials' own; and error (the last repetition's) if any failed.
nlohmann::json summarize_ssh_point(nlohmann::json point);

// One trial's CPU cost from the proxy agent's report, in //bench:throughput's fields (bench/
// trial.cc): the report's `forwarded`; `process_cpu` {user_ns, sys_ns, children_user_ns,
// children_sys_ns}: the agent's getrusage (SELF and CHILDREN; the method runs in it) over the
// measuring window (from ready to stop); `host_cpu`: the /proc/stat delta over the same window
// per CPU ("cpu" all, "cpuN", each class in ns and busy_ns); `placement` {cpu, pinned}: where
// the agent pinned the method. Returns {per_cpu: the "cpu" and the proxy CPU's entries,
// all_busy_ns, proxy_process_ns, proxy_forwarded, proxy_process_ns_per_forwarded (forwarded >
// 0), all_busy_ns_per_received (received > 0), and when pinned: proxy_host_cpu,
// proxy_host_busy_ns, proxy_host_ns_per_forwarded, proxy_host_ns_per_received}. A report
// without process_cpu or host_cpu gives the fields it can.
nlohmann::json trial_cpu(const nlohmann::json& proxy_report, uint64_t received);

// A point's CPU summary from its trials' `cpu` (trial_cpu), as //bench:throughput's
// summarize_point: proxy_process_ns_per_forwarded, proxy_host_ns_per_forwarded,
// proxy_host_ns_per_received, all_cpus_ns_per_received (medians over the repetitions that have
// them), proxy_cpu_split_ns_per_forwarded {user (+ nice), system, softirq, irq} (the proxy CPU's
// /proc/stat time by class per forwarded packet, medians) with its note. With competitors > 0
// the host CPUs' figures are left out (they include the competitors' time) and a note says so.
nlohmann::json summarize_cpu(const nlohmann::json& samples, int competitors);

}  // namespace ulsnet::ssh
