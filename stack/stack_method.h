// StackMethod: what the methods that run the ulsnet Stack share (raw-socket, user-thread, sandbox):
// the Stack's configuration from a ProxyConfig, the two devices from the device factory, the
// forwarding loop (stack/forwarding_loop.h) run with the method's invoker, thread CPU times, and
// the report with its packet accounting (stack_report, which sandbox:uls's report uses too).
#pragma once

#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include <nlohmann/json.hpp>

#include "stack/clock.h"
#include "stack/device.h"
#include "stack/device_factory.h"
#include "stack/drop_stage.h"
#include "stack/forwarding_loop.h"
#include "stack/live_exchange.h"
#include "stack/proxy_method.h"
#include "stack/stack.h"

namespace ulsnet {
namespace stack_methods {

inline constexpr int kIdleWaitMs = 10;  // poll bound when idle: stop is seen within this

// CPU time and context switches of the calling thread.
struct ThreadTimes {
  uint64_t user_ns = 0, sys_ns = 0, voluntary_switches = 0, involuntary_switches = 0;
};

inline ThreadTimes thread_times() {
  rusage r{};
  getrusage(RUSAGE_THREAD, &r);
  auto ns = [](const timeval& t) {
    return uint64_t(t.tv_sec) * 1'000'000'000ull + uint64_t(t.tv_usec) * 1000;
  };
  return {ns(r.ru_utime), ns(r.ru_stime), uint64_t(r.ru_nvcsw), uint64_t(r.ru_nivcsw)};
}

inline nlohmann::json times_since(const ThreadTimes& t0) {
  ThreadTimes t = thread_times();
  return {{"user_ns", t.user_ns - t0.user_ns},
          {"sys_ns", t.sys_ns - t0.sys_ns},
          {"voluntary_switches", t.voluntary_switches - t0.voluntary_switches},
          {"involuntary_switches", t.involuntary_switches - t0.involuntary_switches}};
}

// The Stack's config for a method's ports. An interface's MTU is its port's, or (0) the
// interface's own, read in the calling thread's namespace (interface_mtu: throws MethodError).
StackConfig stack_config(const ProxyConfig& cfg, FrameAllocator* in_alloc, FrameAllocator* out_alloc);
nlohmann::json device_json(const Device& d, const DeviceStats& s);
nlohmann::json stack_json(const StackCounters& c);
// The Stack's drops (the reasons that occurred) into the ledger's proxy_stack stage.
void add_stack_drops(DropLedger& l, const DropCounters& d);

// The report's common part, for a method whose Stack has stopped: {"forwarded", "stack",
// "drops", "accounting"}. Every frame the devices received (device_rx) ends as forwarded,
// consumed, a stack drop, one of the method's own drops in `queue_drops` (frames it dropped
// before or instead of the Stack) or one of `other_ended` (frames a method can name only by
// count, e.g. sandbox:uls's upcalls the kernel ended); "unaccounted" is what is left.
// `method_drops` holds the method's stages (the Stack's are added here).
nlohmann::json stack_report(const StackCounters& c, DropLedger method_drops, uint64_t device_rx,
                            uint64_t queue_drops, uint64_t other_ended = 0);

class StackMethod : public ProxyMethod {
 public:
  // Answered by the loop's thread between two passes (live_exchange.h).
  nlohmann::json live() override;

 protected:
  explicit StackMethod(const MethodInfo& info) : info_(info), name_(info.name) {}

  // Checks the config against the method's row and opens both devices (make_device_pair: with
  // af_xdp one shared UMEM, in `umem_memory` if given, of at least
  // af_xdp_pair_umem_bytes(device_options(cfg)) bytes). Throws MethodError.
  void open_devices(const ProxyConfig& cfg, std::span<uint8_t> umem_memory = {});
  // The options open_devices gives the devices.
  static DeviceOptions device_options(const ProxyConfig& cfg);
  // Builds the Stack the method runs (it may also live elsewhere: set stack_raw_).
  void make_stack(const ProxyConfig& cfg, FrameAllocator* in_alloc, FrameAllocator* out_alloc);

  // Runs the forwarding loop with `invoker` until `stop`; records the calling thread's CPU times.
  template <class Invoker>
  void run_loop(Invoker& invoker, const std::atomic<bool>& stop) {
    LoopOptions o;
    o.batch = batch_;
    o.idle_wait_ms = kIdleWaitMs;
    ForwardingLoop<Invoker> loop(invoker, {dev_[0].get(), dev_[1].get()}, o);
    const ThreadTimes t0 = thread_times();
    loop.run(stop, monotonic_ns, [this] {
      if (live_.asked()) answer_live();
    });
    loop_thread_ = times_since(t0);
    loop_ = loop.counters();
  }

  // The report, for a method that has stopped: stack_report over both devices, plus the devices,
  // the loop and the AF_XDP sockets. Frames still queued in a device (the method fell behind,
  // e.g. under CPU competition) are taken off it now and counted as dropped at the proxy's queue.
  nlohmann::json base_report(const DropLedger& method_drops);

  // For live(), on the loop's thread: the method's own drops so far (its stages of report()).
  virtual DropLedger live_method_drops() const { return {}; }
  // Whether the Stack's counters are the loop thread's to copy; if not (user-thread: the Stack
  // runs in a thread of its own), live() asks live_stack_counters() for them.
  virtual bool stack_on_loop_thread() const { return true; }
  virtual std::optional<StackCounters> live_stack_counters() { return std::nullopt; }

  const MethodInfo& info_;
  std::string name_;
  std::string kind_;
  uint32_t batch_ = 32;
  std::shared_ptr<XskUmem> umem_;  // af_xdp: shared by both devices (declared first: outlives them)
  std::unique_ptr<Device> dev_[2];
  std::unique_ptr<Stack> stack_;
  const Stack* stack_raw_ = nullptr;  // the Stack in use (owned by stack_, or living elsewhere)
  uint64_t left_at_stop_ = 0;   // frames base_report took off the devices unprocessed
  LoopCounters loop_;
  nlohmann::json loop_thread_ = nlohmann::json::object();  // the loop's thread CPU times

 private:
  // What the loop's thread copies for live().
  struct LiveCopy {
    std::optional<StackCounters> stack;
    DeviceStats dev[2];
    uint64_t xdp_passed_to_kernel = 0;
    DropLedger method;
  };
  void answer_live();
  // The drops the devices counted (base_report's and live()'s).
  DropLedger device_drops(const DeviceStats (&s)[2], uint64_t xdp_passed_to_kernel) const;
  uint64_t xdp_passed_to_kernel() const;
  LiveExchange<LiveCopy> live_;
};

}  // namespace stack_methods
}  // namespace ulsnet
