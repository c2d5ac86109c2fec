#include "stack/engine.h"

#include <poll.h>

#include "stack/clock.h"

namespace ulsnet {

ForwardingEngine::ForwardingEngine(Stack& stack, std::vector<Device*> devices, EngineOptions opt)
    : stack_(stack), devices_(std::move(devices)), opt_(opt), tx_(devices_.size()),
      rx_(opt.batch) {
  for (auto& v : tx_.per_iface) v.reserve(size_t(opt.batch) * 2);
}

void ForwardingEngine::transmit(TxBatch& batch) {
  for (size_t i = 0; i < batch.per_iface.size(); ++i) {
    auto& list = batch.per_iface[i];
    if (!list.empty()) devices_[i]->tx_burst(list);
    list.clear();
  }
}

size_t ForwardingEngine::poll_once(uint64_t now_ns) {
  ++passes_;
  size_t total = 0;
  for (size_t i = 0; i < devices_.size(); ++i) {
    size_t n = devices_[i]->rx_burst(rx_);
    if (n == 0) continue;
    total += n;
    stack_.process(int(i), {rx_.data(), n}, tx_, now_ns);
    transmit(tx_);
  }
  return total;
}

void ForwardingEngine::wait_idle() {
  std::vector<pollfd> fds;
  for (Device* d : devices_) fds.push_back({d->wait_fd(), POLLIN, 0});
  ++idle_waits_;
  poll(fds.data(), fds.size(), opt_.idle_wait_ms);
}

void ForwardingEngine::run(const std::atomic<bool>& stop) {
  while (!stop.load(std::memory_order_relaxed)) {
    if (poll_once(monotonic_ns()) == 0 && !opt_.busy_poll) wait_idle();
  }
}

}  // namespace ulsnet
