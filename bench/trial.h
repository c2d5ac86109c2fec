// One trial: sink, proxy and generator in their hosts, one stream, every packet accounted.
//
// Order: sink ready -> proxy ready -> generator runs (bounded by count and time) -> drain ->
// proxy stopped (its counters final) -> sink stopped. Accounting:
//   sent = received + sum over stages of drops + unaccounted
// with stages sender (send errors), link_sender_proxy (veth drop counters on both ends),
// proxy_kernel / proxy_stack / proxy_queue / proxy_tx (from the method), link_proxy_receiver,
// receiver_kernel (Udp/Ip counter deltas in the receiver namespace), receiver_app (corrupted
// payloads). `unaccounted` is reported, never hidden; it should be 0.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/netns_child.h"
#include "bench/topology.h"
#include "stack/stack.h"

namespace ulsnet {

struct TrialConfig {
  std::string method, variant;
  ForwardMode mode = ForwardMode::kRelay;
  uint32_t payload = 64;
  double rate_pps = 0;  // 0: the generator's maximum
  double duration_s = 1.0;
  uint64_t max_packets = 5'000'000;
  uint32_t batch = 32;
  std::string protection = "auto";  // sandbox method's protection domain
  // "socket" (sendmmsg), "af_xdp" (bench/xsk_traffic.h) or "xdp-live" (bench/xdp_generator.h)
  std::string generator = "socket";
  std::string sink = "socket";
  bool busy_poll = false, need_wakeup = true;  // af_xdp proxy devices  // "socket" (recvmmsg) or "af_xdp" (bench/xsk_traffic.h)
  uint32_t run_id = 1;
  int generator_cpu = -1, proxy_cpu = -1, sink_cpu = -1;
  // The proxy process's scheduling: SCHED_FIFO at this priority (below the NAPI threads', so
  // that the kernel's receive work still comes first, and above every ordinary process, which
  // could otherwise take the proxy's CPU for a time slice), or 0 for SCHED_OTHER.
  int proxy_fifo_priority = 0;
  // After the generator: until the proxy's and the receiver's interface counters stood still
  // for drain_quiet_s (frames in flight have landed or been dropped), at most drain_s.
  double drain_s = 0.3;
  double drain_quiet_s = 0.03;
  // The sink's warm-up (SinkConfig::warmup_s): accounted, left out of the delay statistics.
  double warmup_s = 0;
  // Host stalls measured on these CPUs while the stream runs (bench/stall_probe.h): the
  // record's "host_stalls" {"cpuN": probe summary}; empty: none.
  std::vector<int> stall_probe_cpus;
  uint32_t stall_probe_period_us = 1000;
  double stall_threshold_us = 2000;
};

// The trial's host stalls as a one-line reason (the longest over the threshold, on which CPU,
// how many), or "" if no probe saw one. For TrialOutcome::disturbed.
std::string host_stall_reason(const nlohmann::json& record);

// Runs one trial on `topo` (a three-host topology whose proxy addressing suits the method).
// Returns the sample record; {"error": ...} inside it if a role failed.
nlohmann::json run_trial(const Topology& topo, const TrialConfig& cfg);

// Waits until the interface counters of the hosts of `pids` (a trial's proxy and receiver, or
// just a receiver) stood still for quiet_s, at most max_s: frames in flight have landed or been
// dropped. Returns the seconds waited.
double wait_until_quiet(std::initializer_list<pid_t> pids, double max_s, double quiet_s);

// The plain proxy role for a NetnsChild in the proxy's namespace: makes `pc`'s method, starts
// it, reports ready, runs until stopped and returns its report (tests that drive the hosts
// themselves; run_trial's own proxy also sets its priority and reads the interfaces' counters).
RoleFn proxy_role(ProxyConfig pc);

// Calibration: the generator straight to the sink on a two-host topology (no proxy), the
// ceiling this machine's sender and receiver reach. Same accounting without proxy stages.
nlohmann::json run_direct(const Topology& two_hosts, const TrialConfig& cfg);

// Per-CPU busy time from /proc/stat: {"cpuN": {"user_ns", "system_ns", "softirq_ns", ...}}.
nlohmann::json read_cpu_times();
nlohmann::json cpu_delta(const nlohmann::json& a, const nlohmann::json& b);

}  // namespace ulsnet
