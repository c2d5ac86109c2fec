// The accounting of one trial, from the reports of the objects that ran it: the generator, the
// proxy method (absent in the two-host calibration) and the sink.
//
//   sent = received + sum over every drop stage (stack/drop_stage.h) + unaccounted
//
// Stages: sender (the generator's send errors), link_sender_proxy and link_proxy_receiver (veth
// drop counters, see below), the method's own proxy_* stages, receiver_kernel (the sink's kernel
// or socket drops) and receiver_app (corrupted payloads). `unaccounted` is signed and never
// hidden. Pure: it reads only the reports, so unit tests drive it with synthetic ones.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "stack/drop_stage.h"

namespace ulsnet {

// The interfaces of one link: the sending end (in the report that carries its netdev deltas)
// and the receiving end.
struct LinkEnds {
  std::string tx_if, rx_if;
};

struct TrialLinks {
  LinkEnds into_proxy;  // sender -> proxy (unused without a proxy)
  LinkEnds out_of_proxy;  // proxy -> receiver
  LinkEnds direct;      // sender -> receiver (only without a proxy)
};

// A veth link's drops from both ends' /proc/net/dev deltas ("IF.tx_drop", "IF.rx_drop"). veth
// counts a drop in the sending end's tx_dropped and again in the peer's rx_dropped, so the link's
// drops are the larger of the two, not their sum, after taking out what is counted elsewhere:
// `tx_refused` (sends the sender's side already counted as refused: ENOBUFS; in both ends'
// counters) and `rx_redirect_failed` (frames an XDP program redirected into an AF_XDP socket
// that could not take them; the receiving end counts them as rx_dropped, the socket's owner in
// its own stage).
uint64_t link_drops(const nlohmann::json& tx_netdev, const std::string& tx_if,
                    const nlohmann::json& rx_netdev, const std::string& rx_if, uint64_t tx_refused,
                    uint64_t rx_redirect_failed);

// The record of one trial: "generator" and "sink" (what the objects that ran say they are),
// sent, received, lost, loss, drops (every stage), dropped, unaccounted, duration_s, offered_pps,
// delivered_pps, gbps, latency_ns, ipdv_ns, pdv_ns, rfc3550_jitter_ns, reordered, duplicates,
// forwarded (the proxy's count), and "reports" {generator, proxy, sink} as they came (the sink's
// without the statistics the record took over).
// `proxy` is null for the two-host calibration. Throws std::invalid_argument for a report that
// cannot be accounted (a missing count, an unknown drop stage, a method naming a stage that is
// not its own).
nlohmann::json account_trial(const nlohmann::json& generator, const nlohmann::json& proxy,
                             const nlohmann::json& sink, const TrialLinks& links, uint32_t payload);

// The proxy's CPU figures from its pinned CPU's /proc/stat busy time over a trial: into `cpu`,
// proxy_host_busy_ns and, per forwarded and per received packet, proxy_host_ns_per_forwarded /
// proxy_host_ns_per_received. /proc/stat is sampled by the scheduler tick, which an otherwise
// idle CPU stops (NO_HZ_IDLE): a proxy that wakes briefly for each packet at a low rate can be
// busy for a third of the window and never be sampled. A busy time of 0 with packets forwarded
// is then "below the resolution", not "no CPU": the per-packet figures are left out and
// proxy_host_note says why.
void add_proxy_host_cpu(nlohmann::json& cpu, uint64_t busy_ns, uint64_t forwarded, uint64_t received);

// Of `sent`, the fraction the tester itself lost (drops {stage: {reason: n}}): its sender, the
// link into its receiver (the receiver not draining its interface) and its receiver. What the
// device under test lost is the rest: the link into the proxy and the proxy's own stages.
// RFC 2544 assumes a tester that loses nothing; where it does, a trial says nothing about the
// device (the search counts it as the tester's limit: bench/search.h, tester_loss).
double tester_loss(const nlohmann::json& drops, uint64_t sent);

}  // namespace ulsnet
