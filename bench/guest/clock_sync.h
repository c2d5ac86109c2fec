// Comparing two hosts' CLOCK_MONOTONIC over a network, NTP-style (RFC 5905's on-wire exchange):
// the sender stamps t1 and sends, the peer stamps t2 on receipt and t3 as it answers, the sender
// stamps t4 on the answer's arrival. With the path's delay the same both ways, the peer's clock
// minus the sender's is ((t2 - t1) + (t3 - t4)) / 2, and whatever asymmetry there is can move
// that estimate by at most half the round trip, (t4 - t1) - (t3 - t2). Queueing and scheduling
// only ever add delay, so the sample with the smallest round trip is the best one, and half its
// round trip bounds its error.
//
// Used by the guests of //bench:throughput --hosts=vm (bench/guest/ulsnet_traffic.cc), whose
// clocks each start at their own boot; pure, so that tests drive it with synthetic samples.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include <nlohmann/json.hpp>

namespace ulsnet {

// One exchange; each time on the clock of the host that took it (ns).
struct SyncSample {
  int64_t t1 = 0;  // sender: request sent
  int64_t t2 = 0;  // peer: request received
  int64_t t3 = 0;  // peer: answer sent
  int64_t t4 = 0;  // sender: answer received
};

struct ClockOffset {
  int64_t offset_ns = 0;       // peer clock - sender clock
  int64_t rtt_ns = 0;          // round trip of the sample used (peer's hold time excluded)
  int64_t uncertainty_ns = 0;  // |error| <= rtt / 2
  size_t samples = 0;          // usable exchanges
  int64_t at_ns = 0;           // sender clock at the sample used (t1 + rtt / 2)
};

// The offset from the exchange with the smallest round trip; nullopt without a usable sample
// (one whose times are inconsistent, a negative round trip, is skipped).
inline std::optional<ClockOffset> estimate_clock_offset(const std::vector<SyncSample>& s) {
  std::optional<ClockOffset> best;
  size_t usable = 0;
  for (const SyncSample& x : s) {
    const int64_t rtt = (x.t4 - x.t1) - (x.t3 - x.t2);
    if (x.t4 < x.t1 || x.t3 < x.t2 || rtt < 0) continue;
    ++usable;
    if (best && rtt >= best->rtt_ns) continue;
    ClockOffset o;
    // Halved separately: no overflow for clocks far apart.
    o.offset_ns = (x.t2 - x.t1) / 2 + (x.t3 - x.t4) / 2;
    o.rtt_ns = rtt;
    o.uncertainty_ns = (rtt + 1) / 2;
    o.at_ns = x.t1 + rtt / 2;
    best = o;
  }
  if (best) best->samples = usable;
  return best;
}

inline nlohmann::json to_json(const ClockOffset& o) {
  return {{"offset_ns", o.offset_ns}, {"min_rtt_ns", o.rtt_ns}, {"uncertainty_ns", o.uncertainty_ns},
          {"samples", o.samples}, {"at_ns", o.at_ns}};
}

}  // namespace ulsnet
