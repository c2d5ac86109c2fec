// ForwardingLoop: the one receive -> process -> transmit loop every user-level method runs. It
// moves frames between the Devices and whatever invokes the Stack, and touches no packet bytes.
// Methods differ only in the Devices they give it and in their Invoker, the policy that gets a
// received burst to the Stack and the Stack's output back:
//
//   std::span<Frame> rx_buffer(int iface)   where the next burst from `iface` goes (called just
//                                           before each receive; empty: no room, see refuse)
//   void submit(int iface, std::span<Frame> burst, uint64_t now_ns)
//                                           hands a received burst (possibly empty) to the Stack
//   void refuse(int iface, std::span<Frame> burst)
//                                           a burst received while rx_buffer had no room: the
//                                           invoker releases and counts it
//   bool collect(Send send)                 calls send(TxBatch&) for every batch of output that
//                                           is ready; true if any came back
//   int wait_fd() const                     an extra fd to wake the idle wait on (-1: none)
//   void on_wake()                          that fd polled readable
//   void finish()                           after the last submit: wait for outstanding work
//
// The invokers: DirectInvoker below (raw-socket: a plain call), HandOffInvoker (user-thread, a
// second thread: baselines/handoff_invoker.h), UpcallInvoker (sandbox on a stock kernel, an upcall
// through the extension registry: sandbox/stack_extension.h) and the sandbox image's (sandbox:uls,
// sandbox/uls/image_main.cc), which runs this same header compiled freestanding inside the image,
// one pass per kernel upcall.
#pragma once

#include <poll.h>

#include <atomic>
#include <cstdint>
#include <span>
#include <vector>

#include "stack/device.h"
#include "stack/stack.h"

namespace ulsnet {

struct LoopOptions {
  uint32_t batch = 32;  // frames per receive
  // Frames one pass takes from each device: 0 = one burst; more = bursts until the device is
  // empty or this many were taken (the image: a ring's worth per upcall).
  uint32_t frames_per_pass = 0;
  int idle_wait_ms = 10;  // block in poll(2) this long when a pass found nothing
  // Passes run after stop to take what the devices already hold (the sender may still send).
  int drain_passes = 64;
};

struct LoopCounters {
  uint64_t passes = 0;      // poll_once calls
  uint64_t bursts = 0;      // receives that returned frames
  uint64_t frames = 0;      // frames received
  uint64_t idle_waits = 0;  // poll(2) calls after a pass that found nothing
};

template <class Invoker>
class ForwardingLoop {
 public:
  // devices[i] is the Stack's interface i.
  ForwardingLoop(Invoker& invoker, std::vector<Device*> devices, LoopOptions opt)
      : inv_(invoker), devices_(std::move(devices)), opt_(opt), scratch_(opt.batch) {}

  // One pass over every device: receive, submit, transmit what came back. Returns frames received.
  size_t poll_once(uint64_t now_ns) {
    ++c_.passes;
    size_t total = 0;
    const uint64_t budget = opt_.frames_per_pass == 0 ? 1 : opt_.frames_per_pass;
    for (size_t i = 0; i < devices_.size(); ++i) {
      uint64_t taken = 0;
      while (taken < budget) {
        std::span<Frame> buf = inv_.rx_buffer(int(i));
        const bool refused = buf.empty();
        if (refused) buf = scratch_;
        if (buf.size() > opt_.batch) buf = buf.first(opt_.batch);
        const size_t n = devices_[i]->rx_burst(buf);
        if (refused) {
          inv_.refuse(int(i), buf.first(n));
        } else {
          inv_.submit(int(i), buf.first(n), now_ns);
        }
        collect();
        if (n == 0) break;
        ++c_.bursts;
        c_.frames += n;
        total += n;
        taken += opt_.frames_per_pass == 0 ? budget : n;
      }
    }
    return total;
  }

  // Transmits every batch the invoker has ready; true if any came back.
  bool collect() {
    return inv_.collect([this](TxBatch& out) { transmit(out); });
  }

  // poll_once until `stop` (seen within about idle_wait_ms), then the drain passes, then the
  // invoker's outstanding work. `between()` runs after every pass and idle wait, where no burst
  // is in the loop's hands (a method answers live counter requests there: stack/live_exchange.h).
  template <class Clock, class Between = void (*)()>
  void run(const std::atomic<bool>& stop, Clock now_ns, Between between = [] {}) {
    while (!stop.load(std::memory_order_relaxed)) {
      const bool busy = poll_once(now_ns()) != 0;
      if (!busy && !collect()) wait_idle();
      between();
    }
    for (int k = 0; k < opt_.drain_passes; ++k)
      if (poll_once(now_ns()) == 0 && !collect()) break;
    inv_.finish();
    collect();
  }

  const LoopCounters& counters() const noexcept { return c_; }

 private:
  // Hands each per-interface list to its device's tx_burst (which takes the frames over).
  void transmit(TxBatch& out) {
    for (size_t k = 0; k < out.per_iface.size() && k < devices_.size(); ++k) {
      auto& list = out.per_iface[k];
      if (!list.empty()) devices_[k]->tx_burst(list);
      list.clear();
    }
  }

  // Blocks up to idle_wait_ms until a device (or the invoker's fd) is readable.
  void wait_idle() {
    pollfd fds[8];
    nfds_t n = 0;
    for (Device* d : devices_)
      if (n < 7) fds[n++] = {d->wait_fd(), POLLIN, 0};
    const nfds_t own = n;
    if (inv_.wait_fd() >= 0) fds[n++] = {inv_.wait_fd(), POLLIN, 0};
    ++c_.idle_waits;
    if (poll(fds, n, opt_.idle_wait_ms) > 0 && n > own && (fds[own].revents & POLLIN)) inv_.on_wake();
  }

  Invoker& inv_;
  std::vector<Device*> devices_;
  LoopOptions opt_;
  std::vector<Frame> scratch_;  // a burst refused for want of room
  LoopCounters c_;
};

// raw-socket's invoker: the Stack called directly by the thread that does the device I/O.
class DirectInvoker {
 public:
  DirectInvoker(Stack& stack, size_t ifaces, uint32_t batch)
      : stack_(stack), rx_(batch), out_(ifaces, tx_capacity(batch)) {}
  std::span<Frame> rx_buffer(int) { return rx_; }
  void submit(int iface, std::span<Frame> burst, uint64_t now_ns) {
    if (!burst.empty()) stack_.process(iface, burst, out_, now_ns);
  }
  void refuse(int, std::span<Frame>) {}  // rx_buffer always has room
  template <class Send>
  bool collect(Send send) {
    bool any = false;
    for (auto& l : out_.per_iface) any |= !l.empty();
    if (any) send(out_);
    return false;  // nothing outstanding: output is collected in the same pass
  }
  int wait_fd() const { return -1; }
  void on_wake() {}
  void finish() {}

 private:
  Stack& stack_;
  std::vector<Frame> rx_;
  TxBatch out_;
};

}  // namespace ulsnet
