// sandbox, variant uls: the same sandbox method on the real ULS kernel (kernel/patches). The
// Stack -- the same code every user-level method runs -- is the sandbox image (image.h) in the
// kernel's region; the proxy's two e1000 interfaces are bound to it, so their frames arrive by
// descriptor on rings in the region (no skb, no copy, no kernel protocol processing) and the
// kernel runs the Stack by an upcall in whatever process is current when they come. This
// process only loads it and, while the method runs, waits in ULS_IOC_HOST so that upcalls that
// find the CPU idle have somewhere to run; it forwards nothing itself.
//
// Runs only where /dev/uls exists (the VMs of --hosts=vm); elsewhere start() says so.
#include <linux/uls.h>

#include <cstdio>
#include <filesystem>

#include "sandbox/uls/stack_image_blob.h"
#include "sandbox/uls/uls_host.h"
#include "sandbox/uls/uls_method.h"
#include "stack/stack_method.h"

namespace ulsnet {
namespace {

using namespace stack_methods;

class UlsSandboxMethod final : public ProxyMethod {
 public:
  explicit UlsSandboxMethod(const MethodInfo& info) : info_(info) {}

  void start(const ProxyConfig& cfg) override {
    check_method_config(info_, cfg);
    uls::HostOptions o;
    o.stack = stack_config(cfg, nullptr, nullptr);
    o.burst = std::clamp<uint32_t>(cfg.batch, 1, 64);
    try {
      host_ = uls::UlsStackHost::start(o, {kStackImage, sizeof kStackImage});
    } catch (const std::exception& e) {
      throw MethodError(std::string("sandbox (uls): ") + e.what());
    }
    base_ = host_->extension_stats();
    for (int i = 0; i < 2; ++i) net0_[i] = host_->interface_stats(i);
  }

  void run(const std::atomic<bool>& stop) override {
    // With the region protected, the kernel runs upcalls only in single-threaded processes: a
    // host with a second thread takes none (the upcalls then wait for another eligible task).
    threads_ = 0;
    for ([[maybe_unused]] const auto& t : std::filesystem::directory_iterator("/proc/self/task")) ++threads_;
    if (threads_ > 1 && host_->protected_region())
      std::fprintf(stderr, "sandbox (uls): this host process has %u threads: under protection it takes no "
                           "upcalls (run the method in a single-threaded process)\n", threads_);
    const ThreadTimes t0 = thread_times();
    while (!stop.load(std::memory_order_relaxed)) host_->host(20);
    host_thread_ = times_since(t0);
  }

  nlohmann::json report() override {
    uls::ImageControl c = host_->control();
    // An upcall was ended (inside a burst, or anywhere: an ended upcall publishes nothing) and
    // perhaps none came after it: one more upcall counts what it left and publishes the counters.
    bool final_upcall = false;
    uls_stats e = host_->extension_stats();
    if (c.inflight != 0 || e.overruns > base_.overruns) {
      final_upcall = host_->run_once(500);
      c = host_->control();
      e = host_->extension_stats();
    }
    uls_net_stats n[2];
    for (int i = 0; i < 2; ++i) n[i] = host_->interface_stats(i);
    const char* side[2] = {"in", "out"};
    nlohmann::json devices;
    uint64_t tx_dropped = 0, ring_full = 0, rx_errors = 0, device_rx = 0, rx_invalid = 0;
    for (int i = 0; i < 2; ++i) {
      const DeviceStats& s = c.dev[i];
      devices[side[i]] = {
          {"kind", "uls"},
          {"ifname", host_->ifname(i)},
          // From the image's own device counters: a frame copied would count in s.copies.
          {"copy_mode", s.copies == 0 ? "zero-copy" : "copy"},
          {"rx_frames", s.rx_frames},
          {"tx_frames", s.tx_frames},
          {"tx_dropped", s.tx_dropped},
          {"syscalls", s.syscalls},
          {"copies", s.copies},
          {"ring", {{"tx_ring_full", c.ring[i].tx_ring_full},
                    {"tx_not_buffer", c.ring[i].tx_not_buffer},
                    {"rx_invalid", c.ring[i].rx_invalid},
                    {"comp_sent", c.ring[i].comp_sent},
                    {"comp_refused", c.ring[i].comp_refused},
                    {"ring_corrupt", c.ring[i].ring_corrupt}}},
          {"kernel", {{"rx_frames", n[i].rx_frames - net0_[i].rx_frames},
                      {"tx_frames", n[i].tx_frames - net0_[i].tx_frames},
                      {"rx_ring_full", n[i].rx_ring_full - net0_[i].rx_ring_full},
                      {"rx_errors", n[i].rx_errors - net0_[i].rx_errors},
                      {"fill_empty", n[i].fill_empty - net0_[i].fill_empty},
                      {"tx_invalid", n[i].tx_invalid - net0_[i].tx_invalid},
                      {"tx_nic_full", n[i].tx_nic_full - net0_[i].tx_nic_full},
                      {"comp_full", n[i].comp_full - net0_[i].comp_full}}}};
      tx_dropped += s.tx_dropped + (n[i].tx_invalid - net0_[i].tx_invalid);
      ring_full += n[i].rx_ring_full - net0_[i].rx_ring_full;
      rx_errors += n[i].rx_errors - net0_[i].rx_errors;
      rx_invalid += c.ring[i].rx_invalid;
      device_rx += s.rx_frames;
    }
    DropLedger drops;
    // Dropped by the kernel's zero-copy path before the Stack saw them: the rx ring was full
    // (the Stack was not run soon enough), the NIC flagged the frame, or its descriptor was bad.
    drops.add(DropStage::kProxyKernel, "uls_rx_ring_full", ring_full);
    drops.add(DropStage::kProxyKernel, "uls_rx_errors", rx_errors);
    drops.add(DropStage::kProxyKernel, "uls_rx_invalid", rx_invalid);
    drops.add(DropStage::kProxyTx, "tx_dropped", tx_dropped);
    const uint64_t ended = c.stack.forwarded + c.stack.consumed + c.stack.drops.total();
    // The kernel ends an upcall that runs past its budget (uls.budget_ms; under emulation a
    // descheduled vCPU can make one look that long): the frames that upcall had taken off the rx
    // ring and the Stack had not finished are gone. The next upcall counts them by their kind
    // when taken (image.h, ended_burst): the IPv4 UDP datagrams are drops of the stream, the
    // rest (a readiness ping, ARP) are not the stream's and are reported apart. Frames the
    // image's devices took that neither the Stack nor that count names (an upcall ended while a
    // device was taking them) are drops of unknown kind.
    const int64_t unnamed = int64_t(device_rx) - int64_t(ended) - int64_t(c.ended_udp + c.ended_other);
    drops.add(DropStage::kProxyExtension, "taken_by_an_upcall_the_kernel_ended", c.ended_udp);
    if (e.overruns > base_.overruns && unnamed > 0)
      drops.add(DropStage::kProxyExtension, "taken_by_an_upcall_the_kernel_ended_unclassified", uint64_t(unnamed));
    nlohmann::json j = stack_report(c.stack, drops, device_rx, 0, c.ended_udp + c.ended_other);
    j["device"] = devices;
    j["device_mode"] = c.dev[0].copies + c.dev[1].copies == 0 ? "zero-copy" : "copy";
    j["tx_refused_by_link"] = 0;
    j["ended_upcalls"] = {{"overruns", e.overruns - base_.overruns},
                          {"bursts_cut_short", c.ended_bursts},
                          {"frames_udp", c.ended_udp},
                          {"frames_other", c.ended_other},
                          {"frames_cut_mid_work", c.ended_partial},
                          {"tx_posts_cut_committed", c.ended_posts_committed},
                          {"tx_posts_cut_redone", c.ended_posts_redone},
                          {"counted_by_a_final_upcall", final_upcall}};
    j["accounting"]["ended_upcall_frames"] = c.ended_udp + c.ended_other;
    j["protection"] = host_->protected_region() ? "page-table (kernel: region mapped only inside upcalls)"
                                                : "none (uls.protect=0)";
    j["upcall_model"] =
        "real ULS kernel: frames reach the Stack by descriptor on rings in the sandbox region, and "
        "the kernel runs it by an upcall in whatever process is current (or a waiting host when "
        "the CPU is idle); no process is woken or scheduled for it";
    j["frames_in_region"] = true;
    j["extension"] = {{"type", "ulsnet-stack (sandbox image)"},
                      {"state", c.phase == uls::Phase::kRunning ? "running" : "failed"},
                      {"error", std::string(c.error, strnlen(c.error, sizeof c.error))},
                      {"upcalls", e.upcalls - base_.upcalls},
                      {"in_current", e.in_current - base_.in_current},
                      {"in_host", e.in_host - base_.in_host},
                      {"host_wakeups", e.host_wakeups - base_.host_wakeups},
                      {"coalesced", e.coalesced - base_.coalesced},
                      {"faults", e.faults - base_.faults},
                      {"last_fault", {{"signal", e.last_fault_sig},
                                      {"address", e.last_fault_addr},
                                      {"ip", e.last_fault_ip}}},
                      {"overruns", e.overruns - base_.overruns},
                      {"setup_overruns", host_->setup_overruns()},
                      {"run_ns", e.run_ns - base_.run_ns},
                      {"pages_mapped", e.pages_mapped - base_.pages_mapped},
                      {"heap_used", c.heap_used},
                      {"pool_free", c.pool_free},
                      {"pool_overflow", c.pool.overflow},
                      {"region_address", ULS_REGION_BASE},
                      {"image_bytes", sizeof kStackImage}};
    j["threads"]["host"] = host_thread_;
    j["host_process_threads"] = threads_;
    return j;
  }

 private:
  const MethodInfo& info_;
  std::unique_ptr<uls::UlsStackHost> host_;
  uls_stats base_{};
  uls_net_stats net0_[2]{};
  nlohmann::json host_thread_ = nlohmann::json::object();
  unsigned threads_ = 0;
};

}  // namespace

std::unique_ptr<ProxyMethod> make_uls_sandbox_method(const MethodInfo& info) {
  return std::make_unique<UlsSandboxMethod>(info);
}

}  // namespace ulsnet
