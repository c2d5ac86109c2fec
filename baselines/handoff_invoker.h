// HandOffInvoker: user-thread's way of invoking the Stack (stack/forwarding_loop.h): the Stack
// runs in a second thread, and every received burst is handed to it and back, with a blocking
// wake-up each way, so every hand-off pays for scheduling like the paper's user-thread baseline.
//
// Ownership (PacketPool and the mmap ring are single-threaded): the I/O thread (the loop's) alone
// calls the devices and releases device buffers. A burst travels in a slot: the I/O thread
// receives into slot.rx and passes the slot's index through to_stack_; the stack thread processes
// it into slot.tx and passes the index back through to_io_; the I/O thread transmits, releases
// and reuses the slot. A slot is touched by one thread at a time; the rings' release/acquire
// order the hand-over. Received frames cross with their owner replaced by a stand-in: a frame the
// Stack drops or consumes is only recorded (with its real owner) in slot.released, and the I/O
// thread releases it; a forwarded frame gets its real owner back before tx_burst. Frames the
// Stack generates (ARP, ICMP) come from a locked pool either thread may use. No free slot (the
// stack thread is kSlots bursts behind): the burst is released and counted as a queue drop.
//
// Wake-ups: an eventfd each way. The stack thread sleeps in a blocking read() whenever nothing is
// queued; the I/O thread sleeps in the loop's poll(), on the devices and io_efd (wait_fd()).
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "stack/frame.h"
#include "stack/live_exchange.h"
#include "stack/packet_pool.h"
#include "stack/stack.h"

namespace ulsnet {

// A PacketPool any thread may use.
class LockedPool final : public FrameAllocator, public FrameOwner {
 public:
  explicit LockedPool(uint32_t n) : pool_(n) {}
  size_t alloc_tx(std::span<Frame> out) override;
  void release(const Frame& f) noexcept override;

 private:
  std::mutex mu_;
  PacketPool pool_;
};

// A single-producer, single-consumer ring of slot indices.
class IndexRing {
 public:
  explicit IndexRing(uint32_t capacity_pow2) : slots_(capacity_pow2), mask_(capacity_pow2 - 1) {}
  bool push(uint32_t v) noexcept;  // producer only; false if full
  bool pop(uint32_t& v) noexcept;  // consumer only; false if empty

 private:
  std::vector<uint32_t> slots_;
  const uint32_t mask_;
  alignas(64) std::atomic<uint32_t> head_{0};  // (consumer) next entry to pop
  alignas(64) std::atomic<uint32_t> tail_{0};  // (producer) next entry to fill
};

class HandOffInvoker {
 public:
  // Bursts in flight between the threads. A burst can be a single frame (a device that hands
  // frames over as they arrive, at a low rate), so the count of slots bounds frames too: at 64,
  // a 3 ms stall of the stack thread at 20 kpps overflowed it. The devices' rings, whose
  // buffers the slots carry, bound the frames held either way.
  static constexpr uint32_t kSlots = 1024;

  // The Stack must allocate generated frames from generated() (the Stack is built after this).
  HandOffInvoker(size_t ifaces, uint32_t batch);
  ~HandOffInvoker();
  HandOffInvoker(const HandOffInvoker&) = delete;
  HandOffInvoker& operator=(const HandOffInvoker&) = delete;

  FrameAllocator* generated() { return &generated_; }
  // Starts the stack thread, which runs `stack` until finish().
  void start(Stack& stack);

  // The loop's side (stack/forwarding_loop.h).
  std::span<Frame> rx_buffer(int iface);
  void submit(int iface, std::span<Frame> burst, uint64_t now_ns);
  void refuse(int iface, std::span<Frame> burst);
  template <class Send>
  bool collect(Send send) {
    bool any = false;
    uint32_t idx;
    while (to_io_.pop(idx)) {
      any = true;
      HandOff& h = slots_[idx];
      for (auto& list : h.tx.per_iface)
        for (Frame& f : list) f.owner = real_owner(f.owner);
      send(h.tx);
      h.tx.clear();
      release_all(h.released);
      h.released.clear();
      free_.push_back(idx);
    }
    return any;
  }
  int wait_fd() const { return io_efd_; }
  void on_wake();  // io_efd polled readable: clears it
  void finish();  // stops and joins the stack thread; collect() then returns every slot

  // From any thread while the stack thread runs: a copy of the Stack's counters, taken by the
  // stack thread between two bursts (woken for it if it sleeps); nullopt if it did not answer
  // within timeout_ms (not started, or finished).
  std::optional<StackCounters> stack_counters(int timeout_ms);

  uint64_t queue_drops() const { return queue_drops_; }
  nlohmann::json report(uint64_t io_polls) const;  // the hand-off's counters
  const nlohmann::json& stack_thread_times() const { return stack_thread_; }

 private:
  struct HandOff {
    int iface = 0;                // (io) the interface the burst came from
    size_t count = 0;             // (io) frames in rx
    std::vector<Frame> rx;        // (io) received frames, owners replaced by stand-ins
    TxBatch tx;                   // (stack) frames to transmit; (io) sends and clears
    std::vector<Frame> released;  // (stack) frames the stack let go, with their real owners
  };

  // Stands in for a device as owner of frames the stack thread holds.
  class StackSideOwner final : public FrameOwner {
   public:
    StackSideOwner(FrameOwner* real, std::vector<Frame>* const* sink) : real_(real), sink_(sink) {}
    FrameOwner* real() const noexcept { return real_; }
    void release(const Frame& f) noexcept override;  // stack thread only: records the frame

   private:
    FrameOwner* const real_;
    std::vector<Frame>* const* sink_;
  };

  void stack_loop(Stack& stack);
  FrameOwner* stand_in_for(FrameOwner* real);
  FrameOwner* real_owner(FrameOwner* o) const;

  const uint32_t batch_;
  LockedPool generated_{256};
  std::vector<HandOff> slots_;
  std::vector<uint32_t> free_;           // (io) slots not in flight
  IndexRing to_stack_{kSlots};           // (io -> stack)
  IndexRing to_io_{kSlots};              // (stack -> io)
  int stack_efd_ = -1;                   // (io writes, stack reads blocking)
  int io_efd_ = -1;                      // (stack writes, io polls and reads)
  std::atomic<bool> stopping_{false};    // (io writes once)
  LiveExchange<StackCounters> live_;     // (stack answers) the Stack's counters for another thread
  std::thread thread_;
  std::deque<StackSideOwner> stand_ins_;      // (io creates; stack calls release())
  std::vector<Frame>* stack_sink_ = nullptr;  // (stack) the slot being processed
  // (io) counters
  uint64_t handoffs_ = 0, handoff_frames_ = 0, queue_full_bursts_ = 0, queue_drops_ = 0;
  uint64_t stack_signals_ = 0, io_wakeups_ = 0;
  // (stack) counters, read after join
  uint64_t stack_sleeps_ = 0, io_signals_ = 0;
  nlohmann::json stack_thread_ = nlohmann::json::object();
};

}  // namespace ulsnet
