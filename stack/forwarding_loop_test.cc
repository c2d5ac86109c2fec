// The forwarding loop with in-memory devices and a scripted invoker: what each pass receives,
// where every frame goes (submitted, refused, transmitted) and what run() does after stop.
#include "stack/forwarding_loop.h"

#include <gtest/gtest.h>

#include <deque>

#include "stack/packet_pool.h"

namespace ulsnet {
namespace {

// Frames queued for rx_burst; tx_burst keeps what it is given (then releases it to the pool).
class QueueDevice final : public Device {
 public:
  QueueDevice(PacketPool& pool, size_t frames) : pool_(pool) {
    for (size_t i = 0; i < frames; ++i) {
      Frame f;
      EXPECT_TRUE(pool.alloc_one(f));
      f.len = 60;
      f.handle = uint32_t(i);
      queue_.push_back(f);
    }
  }
  ~QueueDevice() override {
    for (Frame& f : queue_) f.release();
  }
  const char* kind() const noexcept override { return "queue"; }
  const char* copy_mode() const noexcept override { return "zero-copy"; }
  const std::string& ifname() const noexcept override { return name_; }
  size_t rx_burst(std::span<Frame> out) override {
    ++rx_calls;
    size_t n = 0;
    while (n < out.size() && !queue_.empty()) {
      out[n++] = queue_.front();
      queue_.pop_front();
    }
    return n;
  }
  size_t tx_burst(std::span<Frame> frames) override {
    sent += frames.size();
    for (Frame& f : frames) f.release();
    return frames.size();
  }
  size_t alloc_tx(std::span<Frame> out) override { return pool_.alloc(out); }
  int wait_fd() const noexcept override { return -1; }
  DeviceStats stats() override { return {}; }
  size_t queued() const { return queue_.size(); }

  size_t rx_calls = 0, sent = 0;

 private:
  PacketPool& pool_;
  std::deque<Frame> queue_;
  std::string name_ = "q";
};

// Forwards every submitted frame to the other interface, now (sync) or on the next collect
// (async); `room` false makes rx_buffer report no room.
struct ScriptedInvoker {
  bool room = true, async = false;
  std::vector<Frame> rx = std::vector<Frame>(8);
  TxBatch out{2}, pending{2};
  std::vector<std::pair<int, size_t>> submits;
  size_t refused = 0, finishes = 0;

  std::span<Frame> rx_buffer(int) { return room ? std::span<Frame>(rx) : std::span<Frame>(); }
  void submit(int iface, std::span<Frame> burst, uint64_t) {
    submits.push_back({iface, burst.size()});
    for (const Frame& f : burst) (async ? pending : out).per_iface[size_t(1 - iface)].push_back(f);
  }
  void refuse(int, std::span<Frame> burst) {
    refused += burst.size();
    release_all(burst);
  }
  template <class Send>
  bool collect(Send send) {
    bool back = false;
    if (async) {
      for (size_t k = 0; k < 2; ++k) {
        back |= !pending.per_iface[k].empty();
        for (const Frame& f : pending.per_iface[k]) out.per_iface[k].push_back(f);
        pending.per_iface[k].clear();
      }
    }
    if (!out.per_iface[0].empty() || !out.per_iface[1].empty()) send(out);
    return back;
  }
  int wait_fd() const { return -1; }
  void on_wake() {}
  void finish() { ++finishes; }
};

LoopOptions options(uint32_t batch, uint32_t frames_per_pass = 0) {
  LoopOptions o;
  o.batch = batch;
  o.frames_per_pass = frames_per_pass;
  o.idle_wait_ms = 1;
  return o;
}

TEST(ForwardingLoop, OnePassTakesOneBurstPerDeviceAndTransmitsWhatTheInvokerForwards) {
  PacketPool pool(64);
  QueueDevice d0(pool, 5), d1(pool, 0);
  ScriptedInvoker inv;
  ForwardingLoop<ScriptedInvoker> loop(inv, {&d0, &d1}, options(2));
  EXPECT_EQ(loop.poll_once(0), 2u);
  ASSERT_EQ(inv.submits.size(), 2u);  // every receive is submitted, an empty one too
  EXPECT_EQ(inv.submits[0], (std::pair<int, size_t>{0, 2}));
  EXPECT_EQ(inv.submits[1], (std::pair<int, size_t>{1, 0}));
  EXPECT_EQ(d1.sent, 2u);  // forwarded to interface 1, in the same pass
  EXPECT_EQ(d0.queued(), 3u);
  EXPECT_EQ(loop.counters().bursts, 1u);
  EXPECT_EQ(loop.counters().frames, 2u);
}

TEST(ForwardingLoop, AFramesPerPassBudgetTakesBurstsUntilTheBudgetOrAnEmptyDevice) {
  PacketPool pool(64);
  QueueDevice d0(pool, 7), d1(pool, 3);
  ScriptedInvoker inv;
  ForwardingLoop<ScriptedInvoker> loop(inv, {&d0, &d1}, options(2, 4));
  EXPECT_EQ(loop.poll_once(0), 4u + 3u);
  EXPECT_EQ(d0.queued(), 3u);  // the budget stopped it
  EXPECT_EQ(d1.queued(), 0u);  // emptied: 2 + 1, then an empty receive ended the pass
  EXPECT_EQ(d1.rx_calls, 3u);
  EXPECT_EQ(d1.sent, 4u);
  EXPECT_EQ(d0.sent, 3u);
}

TEST(ForwardingLoop, ABurstTheInvokerHasNoRoomForIsReceivedAndRefusedNotLeftOrLost) {
  PacketPool pool(64);
  QueueDevice d0(pool, 3), d1(pool, 0);
  ScriptedInvoker inv;
  inv.room = false;
  ForwardingLoop<ScriptedInvoker> loop(inv, {&d0, &d1}, options(8));
  EXPECT_EQ(loop.poll_once(0), 3u);
  EXPECT_EQ(inv.refused, 3u);
  EXPECT_TRUE(inv.submits.empty());
  EXPECT_EQ(pool.available(), 64u);  // every buffer back
}

TEST(ForwardingLoop, RunAfterStopDrainsTheDevicesFinishesTheInvokerAndSendsWhatCameBackLast) {
  PacketPool pool(256);
  QueueDevice d0(pool, 100), d1(pool, 0);
  ScriptedInvoker inv;
  inv.async = true;  // output comes back one collect later, as from a second thread
  ForwardingLoop<ScriptedInvoker> loop(inv, {&d0, &d1}, options(8));
  std::atomic<bool> stop{true};
  loop.run(stop, [] { return uint64_t(0); });
  EXPECT_EQ(d0.queued(), 0u);  // 13 drain passes took all 100
  EXPECT_EQ(inv.finishes, 1u);
  EXPECT_EQ(d1.sent, 100u);  // every forwarded frame transmitted, the last batch after finish
  EXPECT_EQ(pool.available(), 256u);
}

TEST(ForwardingLoop, TheDrainIsBoundedWhileTheSenderKeepsSending) {
  PacketPool pool(1024);
  QueueDevice d0(pool, 1000), d1(pool, 0);
  ScriptedInvoker inv;
  LoopOptions o = options(4);
  o.drain_passes = 10;
  ForwardingLoop<ScriptedInvoker> loop(inv, {&d0, &d1}, o);
  std::atomic<bool> stop{true};
  loop.run(stop, [] { return uint64_t(0); });
  EXPECT_EQ(d0.queued(), 1000u - 40u);
  EXPECT_EQ(loop.counters().passes, 10u);
}

TEST(ForwardingLoop, DirectInvokerRunsTheStackInTheCallersPass) {
  // A frame the Stack cannot parse is dropped and released in the pass that received it.
  PacketPool pool(16);
  QueueDevice d0(pool, 1), d1(pool, 0);
  StackConfig sc;
  sc.ifaces.resize(2);
  sc.ifaces[0].name = "a";
  sc.ifaces[1].name = "b";
  sc.ifaces[0].ip = Ipv4Addr{0x0a000001};
  sc.ifaces[1].ip = Ipv4Addr{0x0a000101};
  sc.ifaces[0].allocator = &d0;
  sc.ifaces[1].allocator = &d1;
  sc.mode = ForwardMode::kRouter;
  Stack stack(sc);
  DirectInvoker inv(stack, 2, 8);
  ForwardingLoop<DirectInvoker> loop(inv, {&d0, &d1}, options(8));
  EXPECT_EQ(loop.poll_once(0), 1u);
  EXPECT_EQ(stack.counters().rx_frames, 1u);
  EXPECT_EQ(stack.counters().drops.total(), 1u);
  EXPECT_EQ(pool.available(), 16u);
}

}  // namespace
}  // namespace ulsnet
