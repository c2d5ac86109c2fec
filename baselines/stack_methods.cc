// raw-socket and user-thread: the same Stack over the same packet-socket Devices. They differ
// only in how the stack is invoked: in the thread that does the device I/O (raw-socket), or in
// a second thread that every burst must be handed to and back from (user-thread).
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

#include "baselines/method_checks.h"
#include "baselines/stack_method.h"
#include "baselines/proxy_method.h"
#include "stack/clock.h"
#include "stack/device_factory.h"
#include "stack/engine.h"
#include "stack/packet_pool.h"

namespace ulsnet {
namespace {

using namespace stack_methods;

// raw-socket: the Stack runs in the thread that does the device I/O, in a ForwardingEngine
// poll loop. With af_packet every frame costs a system call and a copy each way (the paper's
// raw socket); with af_packet_mmap a receive costs no system call and a transmit burst one.
class RawSocketMethod final : public StackMethod {
 public:
  RawSocketMethod() : StackMethod("raw-socket") {}

  void start(const ProxyConfig& cfg) override {
    open_devices(cfg);
    make_stack(cfg, dev_[0].get(), dev_[1].get());
    EngineOptions eo;
    eo.batch = batch_;
    eo.idle_wait_ms = kIdleWaitMs;
    engine_ = std::make_unique<ForwardingEngine>(
        *stack_, std::vector<Device*>{dev_[0].get(), dev_[1].get()}, eo);
  }

  void run(const std::atomic<bool>& stop) override {
    const ThreadTimes t0 = thread_times();
    engine_->run(stop);
    // Frames already queued to the devices were received by the proxy: process them too,
    // so they are not left uncounted (bounded: the sender may still be sending).
    for (int i = 0; i < 64 && engine_->poll_once(monotonic_ns()) > 0; ++i) {
    }
    io_thread_ = times_since(t0);
  }

  nlohmann::json report() override {
    nlohmann::json j = base_report(DropLedger{});
    j["idle_waits"] = engine_->idle_waits();
    j["threads"]["io_and_stack"] = io_thread_;
    return j;
  }

 private:
  std::unique_ptr<ForwardingEngine> engine_;
  nlohmann::json io_thread_ = nlohmann::json::object();
};

// A PacketPool any thread may use, for the frames the stack thread generates (ARP, ICMP:
// rare), which the I/O thread releases after transmitting them.
class LockedPool final : public FrameAllocator, public FrameOwner {
 public:
  explicit LockedPool(uint32_t n) : pool_(n) {}
  size_t alloc_tx(std::span<Frame> out) override {
    std::lock_guard<std::mutex> g(mu_);
    size_t n = pool_.alloc(out);
    for (size_t i = 0; i < n; ++i) out[i].owner = this;
    return n;
  }
  void release(const Frame& f) noexcept override {
    Frame own = f;
    own.owner = &pool_;
    std::lock_guard<std::mutex> g(mu_);
    pool_.release(own);
  }

 private:
  std::mutex mu_;
  PacketPool pool_;
};

// A single-producer, single-consumer ring of slot indices. Both rings hold every slot, so a
// push never finds them full.
class IndexRing {
 public:
  explicit IndexRing(uint32_t capacity_pow2) : slots_(capacity_pow2), mask_(capacity_pow2 - 1) {}

  bool push(uint32_t v) noexcept {  // producer only
    const uint32_t t = tail_.load(std::memory_order_relaxed);
    // Acquire: the consumer has finished reading the entry we may overwrite.
    if (t - head_.load(std::memory_order_acquire) == slots_.size()) return false;
    slots_[t & mask_] = v;
    // Release: the entry, and everything written to the slot it names, is visible to the
    // consumer before the new tail is.
    tail_.store(t + 1, std::memory_order_release);
    return true;
  }
  bool pop(uint32_t& v) noexcept {  // consumer only
    const uint32_t h = head_.load(std::memory_order_relaxed);
    // Acquire: pairs with push's release.
    if (h == tail_.load(std::memory_order_acquire)) return false;
    v = slots_[h & mask_];
    head_.store(h + 1, std::memory_order_release);
    return true;
  }

 private:
  std::vector<uint32_t> slots_;
  const uint32_t mask_;
  alignas(64) std::atomic<uint32_t> head_{0};  // (consumer) next entry to pop
  alignas(64) std::atomic<uint32_t> tail_{0};  // (producer) next entry to fill
};

// user-thread: device I/O in one thread, the Stack in another.
//
// Data ownership (PacketPool and the mmap ring are single-threaded):
//  - The I/O thread (the caller of run()) owns both devices: it alone calls rx_burst, tx_burst
//    and releases device buffers.
//  - A burst travels in a HandOff slot: the I/O thread fills slot.rx and passes the slot's
//    index through to_stack_; the stack thread processes it into slot.tx and passes the index
//    back through to_io_; the I/O thread transmits, releases, and reuses the slot. A slot is
//    touched by one thread at a time, and the rings' release/acquire order the hand-over.
//  - Received frames cross with their owner replaced by a StackSideOwner stand-in. When the
//    Stack drops or consumes a frame in the stack thread, release() only records it (with its
//    real owner) in slot.released; the I/O thread releases those for real. Frames the stack
//    forwards keep the stand-in, which the I/O thread swaps back before tx_burst.
//  - Frames the stack generates (ARP, ICMP) come from a LockedPool, safe from either thread.
//  - No free slot (the stack thread is behind by kSlots bursts): the I/O thread still drains
//    the device, releases the burst itself and counts it as a "proxy_queue" drop.
//
// Wake-ups: every hand-off is signalled through an eventfd, each way. The stack thread sleeps
// in a blocking read() on stack_efd_ whenever it has nothing queued, so a hand-off to an idle
// stack thread pays a wake-up and a context switch, like the paper's user-thread baseline; the
// I/O thread sleeps in poll() on both devices and io_efd_.
class UserThreadMethod final : public StackMethod {
 public:
  UserThreadMethod() : StackMethod("user-thread") {}
  ~UserThreadMethod() override {
    if (stack_efd_ >= 0) close(stack_efd_);
    if (io_efd_ >= 0) close(io_efd_);
  }

  void start(const ProxyConfig& cfg) override {
    open_devices(cfg);
    generated_ = std::make_unique<LockedPool>(256);
    make_stack(cfg, generated_.get(), generated_.get());
    stack_efd_ = eventfd(0, EFD_CLOEXEC);  // blocking: the stack thread sleeps in read()
    io_efd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (stack_efd_ < 0 || io_efd_ < 0)
      throw MethodError(std::string("user-thread: eventfd: ") + std::strerror(errno));
    slots_.resize(kSlots);
    for (HandOff& h : slots_) {
      h.rx.resize(batch_);
      h.released.reserve(batch_);  // the stack releases at most the frames it was given
      for (auto& l : h.tx.per_iface) l.reserve(2 * size_t(batch_));
    }
    for (uint32_t i = kSlots; i > 0; --i) free_.push_back(i - 1);
    scratch_.resize(batch_);
  }

  void run(const std::atomic<bool>& stop) override {
    const ThreadTimes t0 = thread_times();
    std::thread stack_thread([this] { stack_loop(); });
    pollfd fds[3] = {{dev_[0]->wait_fd(), POLLIN, 0},
                     {dev_[1]->wait_fd(), POLLIN, 0},
                     {io_efd_, POLLIN, 0}};
    while (!stop.load(std::memory_order_relaxed)) {
      bool busy = false;
      for (int i = 0; i < 2; ++i) busy |= hand_off(i);
      busy |= take_back();
      if (busy) continue;
      ++io_polls_;
      poll(fds, 3, kIdleWaitMs);
      if (fds[2].revents & POLLIN) {
        uint64_t v;
        if (read(io_efd_, &v, sizeof v) > 0) ++io_wakeups_;
      }
    }
    // Frames already queued to the devices were received by the proxy: hand them off too
    // (bounded: the sender may still be sending).
    for (int i = 0; i < 64; ++i) {
      bool busy = hand_off(0);
      busy |= hand_off(1);
      busy |= take_back();
      if (!busy) break;
    }
    // No push after this store: once the stack thread sees it with to_stack_ empty, it is done.
    stopping_.store(true, std::memory_order_release);
    signal(stack_efd_);
    stack_thread.join();
    take_back();  // every slot is back now
    io_thread_ = times_since(t0);
  }

  nlohmann::json report() override {
    DropLedger queue;
    queue.add(DropStage::kProxyQueue, "handoff_queue_full", queue_drops_);
    nlohmann::json j = base_report(queue);
    j["handoff"] = {{"slots", kSlots},
                    {"bursts", handoffs_},
                    {"frames", handoff_frames_},
                    {"queue_full_bursts", queue_full_bursts_},
                    {"stack_signals", stack_signals_},
                    {"stack_sleeps", stack_sleeps_},
                    {"io_signals", io_signals_},
                    {"io_wakeups", io_wakeups_},
                    {"io_polls", io_polls_},
                    {"slots_in_flight_at_end", kSlots - free_.size()}};
    j["threads"]["io"] = io_thread_;
    j["threads"]["stack"] = stack_thread_;
    return j;
  }

 private:
  static constexpr uint32_t kSlots = 64;

  // One burst's trip: I/O thread -> stack thread -> I/O thread.
  struct HandOff {
    int iface = 0;                // (io) the interface the burst came from
    size_t count = 0;             // (io) frames in rx
    std::vector<Frame> rx;        // (io) received frames, owners replaced by stand-ins
    TxBatch tx{2};                // (stack) frames to transmit; (io) sends and clears
    std::vector<Frame> released;  // (stack) frames the stack let go, with their real owners
  };

  // Stands in for a device as owner of frames the stack thread holds (see the class comment).
  class StackSideOwner final : public FrameOwner {
   public:
    StackSideOwner(FrameOwner* real, std::vector<Frame>* const* sink) : real_(real), sink_(sink) {}
    FrameOwner* real() const noexcept { return real_; }
    // Stack thread only: records the frame; the I/O thread releases it.
    void release(const Frame& f) noexcept override {
      Frame g = f;
      g.owner = real_;
      (*sink_)->push_back(g);  // within the reserved capacity: no allocation
    }

   private:
    FrameOwner* const real_;
    std::vector<Frame>* const* sink_;
  };

  static void signal(int efd) {
    uint64_t one = 1;
    (void)!write(efd, &one, sizeof one);
  }

  // I/O thread: one rx_burst on device i, handed to the stack thread. True if frames came.
  bool hand_off(int i) {
    if (free_.empty()) {
      size_t n = dev_[i]->rx_burst(scratch_);
      if (n == 0) return false;
      ++queue_full_bursts_;
      queue_drops_ += n;
      release_all({scratch_.data(), n});
      return true;
    }
    const uint32_t idx = free_.back();
    HandOff& h = slots_[idx];
    size_t n = dev_[i]->rx_burst({h.rx.data(), batch_});
    if (n == 0) return false;
    free_.pop_back();
    for (size_t k = 0; k < n; ++k) h.rx[k].owner = stand_in_for(h.rx[k].owner);
    h.iface = i;
    h.count = n;
    to_stack_.push(idx);
    signal(stack_efd_);
    ++stack_signals_;
    ++handoffs_;
    handoff_frames_ += n;
    return true;
  }

  // I/O thread: transmits and releases what the stack thread handed back. True if any.
  bool take_back() {
    bool any = false;
    uint32_t idx;
    while (to_io_.pop(idx)) {
      any = true;
      HandOff& h = slots_[idx];
      for (int i = 0; i < 2; ++i) {
        std::vector<Frame>& list = h.tx.per_iface[size_t(i)];
        for (Frame& f : list) f.owner = real_owner(f.owner);
        if (!list.empty()) dev_[i]->tx_burst(list);
        list.clear();
      }
      release_all(h.released);
      h.released.clear();
      free_.push_back(idx);
    }
    return any;
  }

  // Stack thread.
  void stack_loop() {
    const ThreadTimes t0 = thread_times();
    for (;;) {
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
      stack_->process(h.iface, {h.rx.data(), h.count}, h.tx, monotonic_ns());
      stack_sink_ = nullptr;
      to_io_.push(idx);
      signal(io_efd_);
      ++io_signals_;
    }
    stack_thread_ = times_since(t0);
  }

  FrameOwner* stand_in_for(FrameOwner* real) {
    for (StackSideOwner& s : stand_ins_)
      if (s.real() == real) return &s;
    stand_ins_.emplace_back(real, &stack_sink_);  // deque: existing stand-ins never move
    return &stand_ins_.back();
  }
  FrameOwner* real_owner(FrameOwner* o) const {
    for (const StackSideOwner& s : stand_ins_)
      if (o == &s) return s.real();
    return o;  // a generated frame (LockedPool)
  }

  std::unique_ptr<LockedPool> generated_;
  std::vector<HandOff> slots_;
  std::vector<uint32_t> free_;           // (io) slots not in flight
  std::vector<Frame> scratch_;           // (io) a burst with no free slot
  IndexRing to_stack_{kSlots};           // (io -> stack)
  IndexRing to_io_{kSlots};              // (stack -> io)
  int stack_efd_ = -1;                   // (io writes, stack reads blocking)
  int io_efd_ = -1;                      // (stack writes, io polls and reads)
  std::atomic<bool> stopping_{false};    // (io writes once)
  std::deque<StackSideOwner> stand_ins_;  // (io creates; stack calls release())
  std::vector<Frame>* stack_sink_ = nullptr;  // (stack) the slot being processed
  // (io) counters
  uint64_t handoffs_ = 0, handoff_frames_ = 0, queue_full_bursts_ = 0, queue_drops_ = 0;
  uint64_t stack_signals_ = 0, io_wakeups_ = 0, io_polls_ = 0;
  // (stack) counters, read after join
  uint64_t stack_sleeps_ = 0, io_signals_ = 0;
  nlohmann::json io_thread_ = nlohmann::json::object(), stack_thread_ = nlohmann::json::object();
};

}  // namespace

std::unique_ptr<ProxyMethod> make_raw_socket() { return std::make_unique<RawSocketMethod>(); }
std::unique_ptr<ProxyMethod> make_user_thread() { return std::make_unique<UserThreadMethod>(); }

}  // namespace ulsnet
