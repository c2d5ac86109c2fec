#include "baselines/handoff_invoker.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

#include "stack/clock.h"
#include "stack/stack_method.h"

namespace ulsnet {
namespace {

void signal(int efd) {
  uint64_t one = 1;
  (void)!write(efd, &one, sizeof one);
}

}  // namespace

size_t LockedPool::alloc_tx(std::span<Frame> out) {
  std::lock_guard<std::mutex> g(mu_);
  size_t n = pool_.alloc(out);
  for (size_t i = 0; i < n; ++i) out[i].owner = this;
  return n;
}

void LockedPool::release(const Frame& f) noexcept {
  Frame own = f;
  own.owner = &pool_;
  std::lock_guard<std::mutex> g(mu_);
  pool_.release(own);
}

bool IndexRing::push(uint32_t v) noexcept {
  const uint32_t t = tail_.load(std::memory_order_relaxed);
  // Acquire: the consumer has finished reading the entry we may overwrite.
  if (t - head_.load(std::memory_order_acquire) == slots_.size()) return false;
  slots_[t & mask_] = v;
  // Release: the entry, and everything written to the slot it names, is visible to the consumer
  // before the new tail is.
  tail_.store(t + 1, std::memory_order_release);
  return true;
}

bool IndexRing::pop(uint32_t& v) noexcept {
  const uint32_t h = head_.load(std::memory_order_relaxed);
  // Acquire: pairs with push's release.
  if (h == tail_.load(std::memory_order_acquire)) return false;
  v = slots_[h & mask_];
  head_.store(h + 1, std::memory_order_release);
  return true;
}

void HandOffInvoker::StackSideOwner::release(const Frame& f) noexcept {
  Frame g = f;
  g.owner = real_;
  (*sink_)->push_back(g);  // within the reserved capacity: no allocation
}

HandOffInvoker::HandOffInvoker(size_t ifaces, uint32_t batch) : batch_(batch) {
  stack_efd_ = eventfd(0, EFD_CLOEXEC);  // blocking: the stack thread sleeps in read()
  io_efd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stack_efd_ < 0 || io_efd_ < 0) {
    const std::string why = std::strerror(errno);
    if (stack_efd_ >= 0) close(stack_efd_);
    if (io_efd_ >= 0) close(io_efd_);
    throw std::runtime_error("eventfd: " + why);
  }
  slots_.resize(kSlots);
  for (HandOff& h : slots_) {
    h.rx.resize(batch_);
    h.released.reserve(batch_);  // the stack releases at most the frames it was given
    h.tx = TxBatch(ifaces, tx_capacity(batch_));
  }
  for (uint32_t i = kSlots; i > 0; --i) free_.push_back(i - 1);
}

HandOffInvoker::~HandOffInvoker() {
  finish();
  close(stack_efd_);
  close(io_efd_);
}

void HandOffInvoker::start(Stack& stack) {
  thread_ = std::thread([this, &stack] { stack_loop(stack); });
}

std::span<Frame> HandOffInvoker::rx_buffer(int) {
  if (free_.empty()) return {};
  return {slots_[free_.back()].rx.data(), batch_};
}

void HandOffInvoker::submit(int iface, std::span<Frame> burst, uint64_t) {
  if (burst.empty()) return;
  const uint32_t idx = free_.back();
  free_.pop_back();
  HandOff& h = slots_[idx];
  for (Frame& f : burst) f.owner = stand_in_for(f.owner);
  h.iface = iface;
  h.count = burst.size();
  to_stack_.push(idx);  // never full: both rings hold every slot
  signal(stack_efd_);
  ++stack_signals_;
  ++handoffs_;
  handoff_frames_ += burst.size();
}

void HandOffInvoker::refuse(int, std::span<Frame> burst) {
  if (burst.empty()) return;
  ++queue_full_bursts_;
  queue_drops_ += burst.size();
  release_all(burst);
}

void HandOffInvoker::on_wake() {
  uint64_t v;
  if (read(io_efd_, &v, sizeof v) > 0) ++io_wakeups_;
}

void HandOffInvoker::finish() {
  if (!thread_.joinable()) return;
  // No push after this store: once the stack thread sees it with to_stack_ empty, it is done.
  stopping_.store(true, std::memory_order_release);
  signal(stack_efd_);
  thread_.join();
}

void HandOffInvoker::stack_loop(Stack& stack) {
  const stack_methods::ThreadTimes t0 = stack_methods::thread_times();
  for (;;) {
    if (live_.asked()) live_.answer([&stack](StackCounters& c) { c = stack.counters(); });
    uint32_t idx;
    if (!to_stack_.pop(idx)) {
      if (!stopping_.load(std::memory_order_acquire)) {
        // Nothing queued: sleep until the I/O thread signals the next hand-off (or stop).
        ++stack_sleeps_;
        uint64_t v;
        (void)!read(stack_efd_, &v, sizeof v);
        continue;
      }
      // The acquire above makes every push made before the stop visible here.
      if (!to_stack_.pop(idx)) break;
    }
    HandOff& h = slots_[idx];
    stack_sink_ = &h.released;
    stack.process(h.iface, {h.rx.data(), h.count}, h.tx, monotonic_ns());
    stack_sink_ = nullptr;
    to_io_.push(idx);
    signal(io_efd_);
    ++io_signals_;
  }
  stack_thread_ = stack_methods::times_since(t0);
}

std::optional<StackCounters> HandOffInvoker::stack_counters(int timeout_ms) {
  // The stack thread answers at the top of its loop; one sleeping in read() is woken for it
  // (it finds nothing queued and sleeps again: one more of its "stack_sleeps").
  return live_.ask(timeout_ms, [this] { signal(stack_efd_); });
}

FrameOwner* HandOffInvoker::stand_in_for(FrameOwner* real) {
  for (StackSideOwner& s : stand_ins_)
    if (s.real() == real) return &s;
  stand_ins_.emplace_back(real, &stack_sink_);  // deque: existing stand-ins never move
  return &stand_ins_.back();
}

FrameOwner* HandOffInvoker::real_owner(FrameOwner* o) const {
  for (const StackSideOwner& s : stand_ins_)
    if (o == &s) return s.real();
  return o;  // a generated frame (LockedPool)
}

nlohmann::json HandOffInvoker::report(uint64_t io_polls) const {
  return {{"slots", kSlots},
          {"bursts", handoffs_},
          {"frames", handoff_frames_},
          {"queue_full_bursts", queue_full_bursts_},
          {"stack_signals", stack_signals_},
          {"stack_sleeps", stack_sleeps_},
          {"io_signals", io_signals_},
          {"io_wakeups", io_wakeups_},
          {"io_polls", io_polls},
          {"slots_in_flight_at_end", kSlots - free_.size()}};
}

}  // namespace ulsnet
