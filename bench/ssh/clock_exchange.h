// Comparing the sender's and the receiver's CLOCK_MONOTONIC over UDP between their agents, for
// one-way delays across machines (bench/guest/clock_sync.h's exchange and estimate: the sample
// with the smallest round trip, its error at most half that round trip).
//
// The receiver's agent answers requests on a UDP port (ClockResponder, while its sink runs);
// the sender's agent sends them (exchange_clocks) to the receiver's management address, never
// through the proxy. Messages carry the trial's run id, so a stale answer is never taken. Both
// ends are this agent on x86-64: the message is in host byte order.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/guest/clock_sync.h"

namespace ulsnet::ssh {

inline constexpr uint32_t kClockMagic = 0x4b534c55;  // "ULSK"

struct ClockMessage {
  uint32_t magic = kClockMagic;
  uint32_t type = 0;  // 1 request, 2 answer
  uint32_t run_id = 0;
  uint32_t pad = 0;
  uint64_t seq = 0;
  int64_t t1 = 0, t2 = 0, t3 = 0;
};

// Answers requests of `run_id` on UDP `port` (every local address; 0: any free port, see port())
// from a thread, stamping t2 and t3 with this host's CLOCK_MONOTONIC, until destroyed. error()
// says why it could not bind.
class ClockResponder {
 public:
  ClockResponder(uint16_t port, uint32_t run_id);
  ~ClockResponder();
  ClockResponder(const ClockResponder&) = delete;
  ClockResponder& operator=(const ClockResponder&) = delete;
  const std::string& error() const { return error_; }
  uint64_t answered() const { return answered_; }
  uint16_t port() const { return port_; }
  nlohmann::json report() const;  // {"port", "answered"} or {"port", "error"}

 private:
  int fd_ = -1;
  uint16_t port_;
  uint32_t run_id_;
  std::string error_;
  std::atomic<bool> done_{false};
  std::atomic<uint64_t> answered_{0};
  std::thread thread_;
};

// `n` request/answer exchanges with the responder at peer:port, `gap_ms` apart, each answer
// awaited at most `timeout_ms` (the first 3 unanswered: nobody there, no more tries); this side's times are CLOCK_MONOTONIC as this process reads it
// (shifted, inside a time namespace). Throws std::runtime_error for a bad address or socket.
std::vector<SyncSample> exchange_clocks(const std::string& peer, uint16_t port, uint32_t run_id, int n, int gap_ms,
                                        int timeout_ms);

// estimate_clock_offset's result as JSON, or {"error": why} without a usable sample.
nlohmann::json offset_or_error(const std::vector<SyncSample>& samples, const std::string& peer, uint16_t port);

}  // namespace ulsnet::ssh
