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
#include "baselines/proxy_method.h"
#include "stack/clock.h"
#include "stack/device_factory.h"
#include "stack/engine.h"
#include "stack/packet_pool.h"

namespace ulsnet {
namespace {

constexpr int kIdleWaitMs = 10;  // poll bound when idle: stop is seen within this

// CPU time and context switches of the calling thread.
struct ThreadTimes {
  uint64_t user_ns = 0, sys_ns = 0, voluntary_switches = 0, involuntary_switches = 0;
};

ThreadTimes thread_times() {
  rusage r{};
  getrusage(RUSAGE_THREAD, &r);
  auto ns = [](const timeval& t) {
    return uint64_t(t.tv_sec) * 1'000'000'000ull + uint64_t(t.tv_usec) * 1000;
  };
  return {ns(r.ru_utime), ns(r.ru_stime), uint64_t(r.ru_nvcsw), uint64_t(r.ru_nivcsw)};
}

nlohmann::json times_since(const ThreadTimes& t0) {
  ThreadTimes t = thread_times();
  return {{"user_ns", t.user_ns - t0.user_ns},
          {"sys_ns", t.sys_ns - t0.sys_ns},
          {"voluntary_switches", t.voluntary_switches - t0.voluntary_switches},
          {"involuntary_switches", t.involuntary_switches - t0.involuntary_switches}};
}

StackConfig stack_config(const ProxyConfig& cfg, FrameAllocator* in_alloc,
                         FrameAllocator* out_alloc) {
  StackConfig s;
  s.mode = cfg.mode;
  s.ifaces.resize(2);
  const ProxyPort* ports[2] = {&cfg.in, &cfg.out};
  FrameAllocator* allocs[2] = {in_alloc, out_alloc};
  for (int i = 0; i < 2; ++i) {
    s.ifaces[size_t(i)].name = ports[i]->ifname;
    s.ifaces[size_t(i)].mac = ports[i]->mac;
    s.ifaces[size_t(i)].ip = ports[i]->ip;
    s.ifaces[size_t(i)].prefix_len = ports[i]->prefix_len;
    s.ifaces[size_t(i)].allocator = allocs[i];
  }
  if (cfg.mode == ForwardMode::kRelay) {
    RelayRule r;
    r.listen_port = cfg.relay_port;
    r.to_ip = cfg.out.peer_ip;
    r.to_port = cfg.relay_to_port;
    s.relays.push_back(r);
  }
  if (cfg.static_neighbors)
    for (const ProxyPort* p : ports) s.neighbors.push_back({p->peer_ip, p->peer_mac});
  s.verify_udp_checksum = cfg.verify_udp_checksum;
  return s;
}

nlohmann::json device_json(const Device& d, const DeviceStats& s) {
  return {{"kind", d.kind()},
          {"ifname", d.ifname()},
          {"copy_mode", d.copy_mode()},
          {"rx_frames", s.rx_frames},
          {"rx_bytes", s.rx_bytes},
          {"tx_frames", s.tx_frames},
          {"tx_bytes", s.tx_bytes},
          {"tx_dropped", s.tx_dropped},
          {"rx_kernel_drops", s.rx_kernel_drops},
          {"rx_no_buffer", s.rx_no_buffer},
          {"rx_truncated", s.rx_truncated},
          {"syscalls", s.syscalls},
          {"copies", s.copies}};
}

nlohmann::json stack_drops_json(const DropCounters& d) {
  nlohmann::json j = nlohmann::json::object();
  for (size_t r = 0; r < kDropReasonCount; ++r)
    if (d.by_reason[r] != 0) j[std::string(drop_reason_name(DropReason(r)))] = d.by_reason[r];
  return j;
}

nlohmann::json stack_json(const StackCounters& c) {
  return {{"rx_frames", c.rx_frames},
          {"forwarded", c.forwarded},
          {"consumed", c.consumed},
          {"generated", c.generated},
          {"generate_failed", c.generate_failed},
          {"arp_requests_sent", c.arp_requests_sent},
          {"arp_replies_sent", c.arp_replies_sent},
          {"icmp_echo_replies", c.icmp_echo_replies},
          {"icmp_time_exceeded_sent", c.icmp_time_exceeded_sent},
          {"drops", stack_drops_json(c.drops)}};
}

// What raw-socket and user-thread share: config checks, two devices (0 = in, 1 = out), one
// Stack, and the report.
class StackMethod : public ProxyMethod {
 protected:
  explicit StackMethod(std::string name) : name_(std::move(name)) {}

  // Checks the config and opens both devices. Throws MethodError.
  void open_devices(const ProxyConfig& cfg) {
    kind_ = check_method_config(name_, cfg);
    for (const ProxyPort* p : {&cfg.in, &cfg.out})
      if (p->mac.is_zero() || p->ip.v == 0)
        throw MethodError(name_ + ": interface " + p->ifname +
                          " needs the Stack's MAC and IP address in the config");
    batch_ = std::min<uint32_t>(cfg.batch, 1024);
    DeviceOptions o;
    o.pool_frames = cfg.pool_frames;
    o.batch = batch_;
    try {
      dev_[0] = make_device(kind_, cfg.in.ifname, o);
      dev_[1] = make_device(kind_, cfg.out.ifname, o);
    } catch (const std::exception& e) {
      throw MethodError(name_ + ": " + e.what());
    }
  }

  void make_stack(const ProxyConfig& cfg, FrameAllocator* in_alloc, FrameAllocator* out_alloc) {
    try {
      stack_ = std::make_unique<Stack>(stack_config(cfg, in_alloc, out_alloc));
    } catch (const std::exception& e) {
      throw MethodError(name_ + ": stack config: " + e.what());
    }
  }

  // The common report. Every frame a device received ends as forwarded, consumed, a stack drop
  // or (user-thread) a hand-off queue drop; "accounting" shows the balance.
  nlohmann::json base_report(uint64_t queue_drops) {
    const StackCounters& c = stack_->counters();
    nlohmann::json j;
    j["forwarded"] = c.forwarded;
    j["stack"] = stack_json(c);
    uint64_t kernel_drops = 0, truncated = 0, tx_dropped = 0, device_rx = 0;
    const char* side[2] = {"in", "out"};
    for (int i = 0; i < 2; ++i) {
      DeviceStats s = dev_[i]->stats();
      j["device"][side[i]] = device_json(*dev_[i], s);
      kernel_drops += s.rx_kernel_drops;
      truncated += s.rx_truncated;
      tx_dropped += s.tx_dropped;
      device_rx += s.rx_frames;
    }
    j["drops"]["proxy_stack"] = stack_drops_json(c.drops);
    // Dropped before the method saw them: the packet socket's queue or ring was full, or the
    // frame was longer than the buffer the device gave the kernel.
    j["drops"]["proxy_kernel"] = {{"packet_socket_drops", kernel_drops},
                                  {"rx_truncated", truncated}};
    // Transmit drops include the stack's own generated frames (ARP, ICMP), which are rare.
    j["drops"]["proxy_tx"] = {{"tx_dropped", tx_dropped}};
    const uint64_t ended = c.forwarded + c.consumed + c.drops.total() + queue_drops;
    j["accounting"] = {{"device_rx", device_rx},
                       {"stack_rx", c.rx_frames},
                       {"forwarded", c.forwarded},
                       {"consumed", c.consumed},
                       {"stack_drops", c.drops.total()},
                       {"queue_drops", queue_drops},
                       {"unaccounted", int64_t(device_rx) - int64_t(ended)}};
    j["device_kind"] = kind_;
    j["device_mode"] = dev_[0]->copy_mode();
    j["batch"] = batch_;
    return j;
  }

  std::string name_;
  std::string kind_;
  uint32_t batch_ = 32;
  std::unique_ptr<Device> dev_[2];
  std::unique_ptr<Stack> stack_;
};

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
    nlohmann::json j = base_report(0);
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
    nlohmann::json j = base_report(queue_drops_);
    j["drops"]["proxy_queue"] = {{"handoff_queue_full", queue_drops_}};
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
