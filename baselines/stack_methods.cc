// raw-socket and user-thread: the same Stack over the same packet-socket Devices; they differ
// only in how the stack is invoked.
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "baselines/proxy_method.h"
#include "stack/clock.h"
#include "stack/device_factory.h"
#include "stack/engine.h"
#include "stack/packet_pool.h"

namespace ulsnet {
namespace {

StackConfig stack_config(const ProxyConfig& cfg) {
  StackConfig s;
  s.mode = cfg.mode;
  s.ifaces = {{cfg.in.ifname, cfg.in.mac, cfg.in.ip, cfg.in.prefix_len, nullptr},
              {cfg.out.ifname, cfg.out.mac, cfg.out.ip, cfg.out.prefix_len, nullptr}};
  if (cfg.mode == ForwardMode::kRelay) s.relays = {{cfg.relay_port, cfg.out.peer_ip, cfg.relay_to_port}};
  if (cfg.static_neighbors)
    s.neighbors = {{cfg.in.peer_ip, cfg.in.peer_mac}, {cfg.out.peer_ip, cfg.out.peer_mac}};
  s.verify_udp_checksum = cfg.verify_udp_checksum;
  return s;
}

nlohmann::json device_json(const Device& d, const DeviceStats& s) {
  return {{"kind", d.kind()},           {"ifname", d.ifname()},
          {"copy_mode", d.copy_mode()}, {"rx_frames", s.rx_frames},
          {"tx_frames", s.tx_frames},   {"tx_dropped", s.tx_dropped},
          {"rx_kernel_drops", s.rx_kernel_drops}, {"rx_no_buffer", s.rx_no_buffer},
          {"rx_truncated", s.rx_truncated},       {"syscalls", s.syscalls},
          {"copies", s.copies}};
}

nlohmann::json stack_json(const StackCounters& c) {
  nlohmann::json drops = nlohmann::json::object();
  for (size_t r = 0; r < kDropReasonCount; ++r)
    if (c.drops.by_reason[r]) drops[std::string(drop_reason_name(DropReason(r)))] = c.drops.by_reason[r];
  return {{"rx_frames", c.rx_frames},
          {"forwarded", c.forwarded},
          {"consumed", c.consumed},
          {"generated", c.generated},
          {"generate_failed", c.generate_failed},
          {"arp_requests_sent", c.arp_requests_sent},
          {"arp_replies_sent", c.arp_replies_sent},
          {"icmp_echo_replies", c.icmp_echo_replies},
          {"icmp_time_exceeded_sent", c.icmp_time_exceeded_sent},
          {"drops", drops}};
}

// Shared by both: two devices, one Stack, and the common report.
class StackMethodBase : public ProxyMethod {
 protected:
  void open(const ProxyConfig& cfg, const char* name) {
    std::string kind = cfg.variant.empty() ? "af_packet" : cfg.variant;
    try {
      DeviceOptions o;
      o.pool_frames = cfg.pool_frames;
      dev_[0] = make_device(kind, cfg.in.ifname, o);
      dev_[1] = make_device(kind, cfg.out.ifname, o);
    } catch (const std::exception& e) {
      throw MethodError(std::string(name) + ": " + e.what());
    }
    batch_ = std::max<uint32_t>(1, cfg.batch);
  }
  nlohmann::json base_report(const Stack& stack) {
    nlohmann::json j;
    const StackCounters& c = stack.counters();
    j["forwarded"] = c.forwarded;
    j["stack"] = stack_json(c);
    j["drops"]["proxy_stack"] = j["stack"]["drops"];
    uint64_t kdrops = 0, txd = 0, trunc = 0;
    for (auto& d : dev_) {
      DeviceStats s = d->stats();
      j["devices"].push_back(device_json(*d, s));
      kdrops += s.rx_kernel_drops;
      txd += s.tx_dropped;
      trunc += s.rx_truncated;
    }
    j["drops"]["proxy_kernel"] = nlohmann::json::object();
    if (kdrops) j["drops"]["proxy_kernel"]["packet_socket_drops"] = kdrops;
    if (trunc) j["drops"]["proxy_kernel"]["rx_truncated"] = trunc;
    j["drops"]["proxy_tx"] = nlohmann::json::object();
    if (txd) j["drops"]["proxy_tx"]["tx_dropped"] = txd;
    j["device_mode"] = dev_[0]->copy_mode();
    j["device"] = dev_[0]->kind();
    return j;
  }
  std::unique_ptr<Device> dev_[2];
  std::unique_ptr<Stack> stack_;
  uint32_t batch_ = 32;
};

// The stack in the thread that does the device I/O: one system call per frame with af_packet.
class RawSocketMethod final : public StackMethodBase {
 public:
  void start(const ProxyConfig& cfg) override {
    open(cfg, "raw-socket");
    StackConfig sc = stack_config(cfg);
    sc.ifaces[0].allocator = dev_[0].get();
    sc.ifaces[1].allocator = dev_[1].get();
    stack_ = std::make_unique<Stack>(std::move(sc));
    EngineOptions eo;
    eo.batch = batch_;
    engine_ = std::make_unique<ForwardingEngine>(*stack_, std::vector<Device*>{dev_[0].get(), dev_[1].get()}, eo);
  }
  void run(const std::atomic<bool>& stop) override { engine_->run(stop); }
  nlohmann::json report() override {
    nlohmann::json j = base_report(*stack_);
    j["idle_waits"] = engine_->idle_waits();
    return j;
  }

 private:
  std::unique_ptr<ForwardingEngine> engine_;
};

// A PacketPool any thread may use: for the frames the stack thread generates (rare: ARP, ICMP).
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
    std::lock_guard<std::mutex> g(mu_);
    Frame copy = f;
    copy.owner = &pool_;
    pool_.release(copy);
  }

 private:
  std::mutex mu_;
  PacketPool pool_;
};

// Collects frames the stack thread releases, so the I/O thread (which owns the device pools)
// can release them: PacketPool is single-threaded.
class DeferredRelease final : public FrameOwner {
 public:
  FrameOwner* real = nullptr;
  std::vector<Frame> frames;  // written by the stack thread, drained under the hand-off lock
  void release(const Frame& f) noexcept override { frames.push_back(f); }
};

// Data ownership for user-thread:
//  - The I/O thread owns both devices and their pools: it alone calls rx_burst, tx_burst and
//    releases device buffers.
//  - Received frames go to the stack thread with their owner swapped to a DeferredRelease, so a
//    drop in the stack thread only records the frame; the I/O thread gets those records back
//    with the frames to transmit and releases them to the real owner.
//  - Frames the stack generates come from a LockedPool, safe to release from either thread.
//  - Hand-offs: rx_q_ (I/O -> stack) wakes the stack thread through a condition variable (the
//    thread sleeps when the queue is empty, so each hand-off after an idle period pays a
//    wake-up and a context switch, as the paper's user-thread baseline does); tx_q_ (stack ->
//    I/O) wakes the I/O thread through an eventfd it polls with the devices.
class UserThreadMethod final : public StackMethodBase {
 public:
  void start(const ProxyConfig& cfg) override {
    open(cfg, "user-thread");
    gen_ = std::make_unique<LockedPool>(256);
    StackConfig sc = stack_config(cfg);
    sc.ifaces[0].allocator = gen_.get();
    sc.ifaces[1].allocator = gen_.get();
    stack_ = std::make_unique<Stack>(std::move(sc));
    efd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (efd_ < 0) throw MethodError("user-thread: eventfd failed");
    max_queued_ = 1024;
  }
  ~UserThreadMethod() override {
    if (efd_ >= 0) close(efd_);
  }
  void run(const std::atomic<bool>& stop) override {
    std::thread worker([this] { stack_thread(); });
    std::vector<Frame> rx(batch_);
    std::vector<pollfd> fds = {{dev_[0]->wait_fd(), POLLIN, 0},
                               {dev_[1]->wait_fd(), POLLIN, 0},
                               {efd_, POLLIN, 0}};
    while (!stop.load(std::memory_order_relaxed)) {
      bool any = false;
      for (int i = 0; i < 2; ++i) {
        size_t n = dev_[i]->rx_burst(rx);
        if (n == 0) continue;
        any = true;
        if (!real_owner_[i]) real_owner_[i] = rx[0].owner;
        for (size_t k = 0; k < n; ++k) rx[k].owner = &deferred_[i];
        std::unique_lock<std::mutex> g(mu_);
        if (queued_ + n > max_queued_) {
          g.unlock();
          queue_drops_ += n;
          for (size_t k = 0; k < n; ++k) {
            rx[k].owner = real_owner_[i];
            rx[k].release();
          }
          continue;
        }
        queued_ += n;
        rx_q_.push_back({i, std::vector<Frame>(rx.begin(), rx.begin() + long(n))});
        ++handoffs_;
        g.unlock();
        cv_.notify_one();
      }
      any |= drain_tx();
      if (!any) {
        ++idle_waits_;
        poll(fds.data(), fds.size(), 10);
        uint64_t v;
        if (read(efd_, &v, sizeof v) > 0) ++io_wakeups_;
      }
    }
    {
      std::lock_guard<std::mutex> g(mu_);
      done_ = true;
    }
    cv_.notify_one();
    worker.join();
    drain_tx();
  }
  nlohmann::json report() override {
    nlohmann::json j = base_report(*stack_);
    j["drops"]["proxy_queue"] = nlohmann::json::object();
    if (queue_drops_) j["drops"]["proxy_queue"]["handoff_queue_full"] = queue_drops_;
    j["handoffs"] = handoffs_;
    j["stack_thread_wakeups"] = stack_wakeups_;
    j["io_thread_wakeups"] = io_wakeups_;
    j["idle_waits"] = idle_waits_;
    return j;
  }

 private:
  struct RxBurst {
    int iface;
    std::vector<Frame> frames;
  };
  void stack_thread() {
    TxBatch out(2);
    for (;;) {
      RxBurst b;
      {
        std::unique_lock<std::mutex> g(mu_);
        if (rx_q_.empty() && !done_) {
          ++stack_wakeups_;
          cv_.wait(g, [&] { return !rx_q_.empty() || done_; });
        }
        if (rx_q_.empty()) return;
        b = std::move(rx_q_.front());
        rx_q_.pop_front();
        queued_ -= b.frames.size();
      }
      stack_->process(b.iface, b.frames, out, monotonic_ns());
      {
        std::lock_guard<std::mutex> g(mu_);
        for (int i = 0; i < 2; ++i) {
          tx_q_[i].insert(tx_q_[i].end(), out.per_iface[i].begin(), out.per_iface[i].end());
          released_q_[i].insert(released_q_[i].end(), deferred_[i].frames.begin(),
                                deferred_[i].frames.end());
          deferred_[i].frames.clear();
        }
      }
      out.clear();
      uint64_t one = 1;
      (void)!write(efd_, &one, sizeof one);
    }
  }
  // Transmits and releases what the stack thread handed back. I/O thread only.
  bool drain_tx() {
    std::vector<Frame> tx[2], rel[2];
    {
      std::lock_guard<std::mutex> g(mu_);
      for (int i = 0; i < 2; ++i) {
        tx[i].swap(tx_q_[i]);
        rel[i].swap(released_q_[i]);
      }
    }
    bool any = false;
    for (int i = 0; i < 2; ++i) {
      // A forwarded frame may have come from either device: restore each frame's real owner.
      for (Frame& f : tx[i]) restore_owner(f);
      for (Frame& f : rel[i]) restore_owner(f);
      if (!tx[i].empty()) dev_[i]->tx_burst(tx[i]);
      for (Frame& f : rel[i]) f.release();
      any |= !tx[i].empty() || !rel[i].empty();
    }
    return any;
  }
  void restore_owner(Frame& f) {
    for (int d = 0; d < 2; ++d)
      if (f.owner == &deferred_[d]) f.owner = real_owner_[d];
  }

  std::unique_ptr<LockedPool> gen_;
  DeferredRelease deferred_[2];
  FrameOwner* real_owner_[2] = {nullptr, nullptr};
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<RxBurst> rx_q_;
  std::vector<Frame> tx_q_[2], released_q_[2];
  size_t queued_ = 0, max_queued_ = 1024;
  bool done_ = false;
  int efd_ = -1;
  uint64_t queue_drops_ = 0, handoffs_ = 0, stack_wakeups_ = 0, io_wakeups_ = 0, idle_waits_ = 0;
};

}  // namespace

std::unique_ptr<ProxyMethod> make_raw_socket() { return std::make_unique<RawSocketMethod>(); }
std::unique_ptr<ProxyMethod> make_user_thread() { return std::make_unique<UserThreadMethod>(); }

}  // namespace ulsnet
