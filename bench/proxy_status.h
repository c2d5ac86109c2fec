// What //bench:proxy prints while a method stands between the hosts: one interval per status
// line, computed from two snapshots of the proxy host. Pure, so that the arithmetic behind every
// line is unit-tested (bench/proxy_status_test.cc) with made-up snapshots.
//
// A snapshot (taken in the proxy's namespace, bench/proxy_main.cc):
//   {"t": seconds since the method started,
//    "method": ProxyMethod::live() -- or, in the last one, the method's final report() -- or
//              null when the method did not answer,
//    "netdev": {"p0.rx_packets": n, "p0.tx_packets": n, "p0.rx_drop": n, "p0.tx_drop": n, ...}
//              (the proxy host's interface counters, read_netdev()),
//    "cpu_ns": the proxy process's CPU time (user + system, every thread)}
// An interval: {"t", "interval_s",
//   "interfaces": {IF: {"rx", "tx", "rx_drop", "tx_drop"}} (frames in and out of each interface),
//   "forwarded", "forwarded_per_s" (over the time since the method's counters were last seen), "drops": {stage: {reason: n}} (only the reasons that moved),
//   "cpu_percent" (of one CPU), "method_counters": false when the method did not answer (its
//   counts then go into the next interval that has them: nothing is lost from the sums), and
//   "method_live": false when the snapshot said the method has no live counters at all
//   ("method_live": false in the snapshot: the VM guests' proxy; its report closes the sums)}.
// A counter that went down (which the methods promise never happens) is reported under
// "went_down" and counted as 0 in that interval.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace ulsnet {

class ProxyStatus {
 public:
  // `ifaces`: the proxy's interfaces, in print order; `first`: the snapshot before the method
  // started (its "method" may be null: every method's counters start at 0).
  ProxyStatus(std::vector<std::string> ifaces, const nlohmann::json& first);

  // The interval from the previous snapshot to `s`; adds it to totals().
  nlohmann::json next(const nlohmann::json& s);
  // The sums of every interval so far: {"seconds", "interfaces", "forwarded", "drops", "cpu_ns"}.
  const nlohmann::json& totals() const { return totals_; }

 private:
  std::vector<std::string> ifaces_;
  nlohmann::json last_;         // the previous snapshot
  nlohmann::json last_method_;  // the newest method counters seen (zero before the first)
  double last_method_t_ = 0;    // and when
  nlohmann::json totals_;
};

// One line for people: "  3.0 s  p0 in 120 out 118 | p1 in 118 out 120 | forwarded 238 (238/s)
// | drops 2: proxy_stack/ttl_expired 2 | cpu 1.2%".
std::string format_status(const nlohmann::json& interval, const std::vector<std::string>& ifaces);

}  // namespace ulsnet
