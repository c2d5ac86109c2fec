// Traffic generator and sink over kernel UDP sockets, run inside the sender and receiver hosts.
//
// Payload layout (little-endian, 24 bytes, then a pattern): magic "ULSN" | run id (u32) |
// sequence number (u64) | send time, CLOCK_MONOTONIC ns (u64) | byte i = (seq + i) & 0xff.
// Timestamps are per packet at both ends: the generator reads the clock for each datagram as it
// writes it into its batch (AF_XDP: into the umem frame that goes on the TX ring), and the sink
// takes each datagram's receive time from the kernel (socket sink: SO_TIMESTAMPNS; AF_XDP sink:
// the steering XDP program's bpf_ktime_get_ns() in the frame's metadata). CLOCK_MONOTONIC is
// shared by all namespaces on a machine, so receive - send is the one-way delay of that packet.
// The sink checks magic, run id and pattern of every datagram (content integrity).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/stats.h"
#include "stack/net_types.h"

namespace ulsnet {

inline constexpr uint32_t kPayloadMagic = 0x4e534c55;  // "ULSN"
inline constexpr uint32_t kPayloadHeader = 24;
inline constexpr uint32_t kMinPayload = kPayloadHeader;
inline constexpr uint32_t kMaxPayload = 1472;  // 1500 MTU - 20 - 8

struct GeneratorConfig {
  Ipv4Addr dst;
  uint16_t dst_port = 9000;
  uint32_t payload = 64;
  uint64_t count = 1'000'000;  // upper bound on datagrams
  double duration_s = 1.0;     // upper bound on time
  double rate_pps = 0;         // 0: as fast as possible
  uint32_t batch = 32;
  uint32_t run_id = 1;
};

// Sends until count or duration is reached or stop is set. Result: "generator": "socket", sent,
// attempted, send_errors {errno name: n}, duration_s, achieved_pps, tx_timestamp. Throws std::invalid_argument for a bad payload size.
nlohmann::json run_generator(const GeneratorConfig& cfg, const std::atomic<bool>& stop);

struct SinkConfig {
  uint16_t port = 9000;
  uint32_t run_id = 1;
  uint64_t max_seq = 1'000'000;  // sequence numbers at or past this are counted as corrupted
  double max_duration_s = 120;   // hard bound even if never stopped
  // Warm-up: datagrams sent less than this long after the first datagram to arrive was sent are
  // received and accounted like any other, but left out of the delay statistics (latency, IPDV,
  // PDV), which then describe the trial's steady state. 0: none left out.
  double warmup_s = 0;
  // If set: the distinct datagrams of this run received so far, stored after every batch (so
  // that a caller who knows how many were sent can tell when the stream is wholly through).
  std::atomic<uint64_t>* received_so_far = nullptr;
};

// Receives until stop is set (or max_duration_s). `ready` is called once the socket is bound.
// Result: SinkStats::report() plus "sink": "socket", "rx_timestamp" (where receive times come
// from), receiver_kernel: Udp counter deltas of this namespace, netdev deltas.
nlohmann::json run_sink(const SinkConfig& cfg, const std::atomic<bool>& stop,
                        const std::function<void()>& ready);

// What every sink records per datagram: uniqueness by sequence number, reordering, payload
// integrity, and its one-way delay (receive time - the send time stamped in the payload) into a
// DelayRecorder (bench/stats.h: latency, IPDV, PDV).
class SinkStats {
 public:
  explicit SinkStats(const SinkConfig& cfg);
  // One received UDP payload (`truncated`: it did not fit the receive buffer). `rx_ns`: this
  // datagram's own receive time (CLOCK_MONOTONIC ns), or 0 if the receive path gave none (the
  // datagram is then counted as received and `untimed`).
  void on_datagram(const uint8_t* payload, uint32_t len, bool truncated, uint64_t rx_ns);
  // received, duplicates, reordered, corrupted, and DelayRecorder::report()'s latency_ns (with
  // its histogram), ipdv_ns, pdv_ns, rfc3550_jitter_ns.
  nlohmann::json report();
  uint64_t received() const { return received_; }  // distinct valid datagrams so far

 private:
  SinkConfig cfg_;
  std::vector<uint8_t> seen_;
  DelayRecorder delays_;
  uint64_t received_ = 0, dup_ = 0, reordered_ = 0, corrupted_ = 0, max_seq_ = 0;
  uint64_t first_sent_ns_ = 0;
  bool any_ = false;
};

// Fills `p` (payload bytes) for sequence `seq`.
void fill_payload(uint8_t* p, uint32_t len, uint32_t run_id, uint64_t seq, uint64_t send_ns);
// Checks a received payload; returns false if corrupted. Sets seq and send_ns.
bool check_payload(const uint8_t* p, uint32_t len, uint32_t run_id, uint64_t& seq,
                   uint64_t& send_ns);

}  // namespace ulsnet
