// ForwardingEngine: the poll loop that moves frames between Devices and the Stack in one
// thread. It is how the raw-socket method invokes the stack (and, split across two threads,
// how user-thread does). No packet bytes are touched here.
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

#include "stack/device.h"
#include "stack/stack.h"

namespace ulsnet {

struct EngineOptions {
  uint32_t batch = 32;     // frames per rx_burst
  int idle_wait_ms = 10;   // block in poll(2) this long when a pass found nothing
  bool busy_poll = false;  // never block (burns a core)
};

class ForwardingEngine {
 public:
  // devices[i] is the Stack's interface i.
  ForwardingEngine(Stack& stack, std::vector<Device*> devices, EngineOptions opt);
  // One pass: rx_burst on each device, Stack::process, transmit. Returns frames received.
  size_t poll_once(uint64_t now_ns);
  // Hands each per-interface list to its device's tx_burst and clears it.
  void transmit(TxBatch& batch);
  // poll_once until `stop`; returns within about idle_wait_ms of stop being set.
  void run(const std::atomic<bool>& stop);
  // Blocks up to idle_wait_ms until some device is readable.
  void wait_idle();
  uint64_t idle_waits() const noexcept { return idle_waits_; }
  uint64_t passes() const noexcept { return passes_; }

 private:
  Stack& stack_;
  std::vector<Device*> devices_;
  EngineOptions opt_;
  TxBatch tx_;
  std::vector<Frame> rx_;
  uint64_t idle_waits_ = 0;
  uint64_t passes_ = 0;
};

}  // namespace ulsnet
