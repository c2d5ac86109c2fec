// sandbox: the ulsnet Stack as a sandbox extension, the paper's own system as far as a stock
// kernel allows.
//
// What is in the sandbox region (sandbox/region.h):
//  - the Stack object and its counters, constructed in the extension's slot (state area) and
//    written only inside invocations (in pkey/mprotect modes the process cannot write it);
//  - the packet buffers: with the af_xdp device the region's pool area is the AF_XDP UMEM, so
//    a frame is written once by the kernel into region memory, rewritten in place by the Stack
//    and transmitted by moving its descriptor from one socket's RX ring to the other's TX ring
//    (no copy in user space; the kernel copies once on receive in XDP copy mode, e.g. on veth;
//    none in zero-copy mode);
//  - the whole of the upcall's grant (the rings area): the burst descriptor, the received frames'
//    descriptors and the TX batch the Stack fills (sandbox/stack_extension.h).
// What is not: the Stack's small configuration tables (allocated on the registering process's
// heap when the Stack is constructed) and the device objects (process-side, the "kernel" part
// of this emulation: they move descriptors between the AF_XDP rings and the burst).
//
// How the stack is invoked: the forwarding loop every user-level method runs, with UpcallInvoker
// (sandbox/stack_extension.h): one upcall per received burst through the extension registry,
// under the extension's protection domain. Compared with raw-socket on the same device, the
// difference is exactly the invocation (and the region). What a stock kernel cannot do: run the
// upcall in whatever process is current when frames arrive; here the proxy process must be woken
// for them (poll), as raw-socket is. The uls variant (the kernel patch) removes that wake-up.
#include "sandbox/sandbox_method.h"

#include <cstring>
#include <optional>

#include "sandbox/extension.h"
#include "sandbox/protection.h"
#include "sandbox/region.h"
#include "sandbox/stack_extension.h"
#include "sandbox/uls/uls_method.h"
#include "stack/stack_method.h"

namespace ulsnet {
namespace {

using namespace stack_methods;

class SandboxMethod final : public StackMethod {
 public:
  explicit SandboxMethod(const MethodInfo& info) : StackMethod(info) {}
  ~SandboxMethod() override {
    invoker_.reset();  // its grant is in the region
    if (reg_ && registered_) remove_stack_extension(*reg_, h_);
    stack_raw_ = nullptr;
    dev_[0].reset();
    dev_[1].reset();
    reg_.reset();
    region_.reset();
  }

  void start(const ProxyConfig& cfg) override {
    try {
      mode_ = parse_protection_mode(cfg.protection);
    } catch (const std::exception& e) {
      throw MethodError(std::string("sandbox: ") + e.what());
    }
    batch_ = std::min<uint32_t>(cfg.batch, 1024);
    RegionLayout layout;
    // The rings area holds the upcall's grant (the burst and the TX batch: stack_extension.h).
    layout.ring_bytes = std::max<uint64_t>(64 << 10, (UpcallInvoker::grant_bytes(2, batch_) + 4095) & ~uint64_t(4095));
    // With af_xdp this area is the devices' shared UMEM.
    layout.pool_bytes = af_xdp_pair_umem_bytes(device_options(cfg));
    layout.extension_slots = 4;
    layout.extension_slot_bytes = 1 << 20;
    try {
      region_.emplace(SandboxRegion::create(layout));
    } catch (const std::exception& e) {
      throw MethodError(std::string("sandbox: ") + e.what());
    }
    open_sandbox_devices(cfg);
    reg_.emplace(*region_);
    try {
      h_ = register_stack_extension(*reg_, stack_config(cfg, dev_[0].get(), dev_[1].get()), mode_);
    } catch (const std::exception& e) {
      throw MethodError(std::string("sandbox: stack extension: ") + e.what());
    }
    registered_ = true;
    stack_raw_ = stack_extension_stack(*reg_, h_);
    try {
      invoker_.emplace(*reg_, h_, std::span<uint8_t>(region_->rings(), region_->header().rings_bytes), 2,
                       batch_);
    } catch (const std::exception& e) {
      throw MethodError(std::string("sandbox: ") + e.what());
    }
  }

  void run(const std::atomic<bool>& stop) override { run_loop(*invoker_, stop); }

  nlohmann::json report() override {
    nlohmann::json j = base_report(live_method_drops());
    const ExtensionInfo info = reg_->info(h_);
    const ProtectionDomain& d = reg_->domain(h_);
    j["protection"] = protection_mode_name(mode_);
    // Exactly what ran, for readers of the results.
    j["upcall_model"] =
        "stock kernel (emulated): the proxy process waits in poll() on the devices, is woken by "
        "the kernel, and makes one upcall per received burst through the extension registry; the "
        "ULS kernel (variant uls) instead runs the extension in whatever process is current";
    j["frames_in_region"] = frames_in_region_;
    j["extension"] = {{"type", info.type},
                      {"state", extension_state_name(info.state)},
                      {"upcalls", info.invocations},
                      {"faults", info.faults},
                      {"protection_calls", d.protection_calls()},
                      {"region_address", reinterpret_cast<uintptr_t>(region_->base())},
                      {"region_bytes", region_->header().total_bytes}};
    j["threads"]["io_and_upcalls"] = loop_thread_;
    return j;
  }

 private:
  DropLedger live_method_drops() const override {
    DropLedger ext;
    ext.add(DropStage::kProxyExtension, "extension_not_active", invoker_->not_active_drops());
    ext.add(DropStage::kProxyExtension, "extension_faulted", invoker_->faulted_drops());
    return ext;
  }

  void open_sandbox_devices(const ProxyConfig& cfg) {
    // af_xdp: both sockets share one umem, and it is the region's packet-pool area.
    // af_packet_mmap: the devices keep their own rings and pools (not in the region); the
    // variant isolates the cost of invocation through the sandbox against raw-socket.
    open_devices(cfg, {region_->pool(), region_->header().pool_bytes});
    frames_in_region_ = kind_ == "af_xdp";
  }

  ProtectionMode mode_ = ProtectionMode::kNone;
  std::optional<SandboxRegion> region_;
  std::optional<ExtensionRegistry> reg_;
  ExtensionHandle h_;
  bool registered_ = false;
  bool frames_in_region_ = false;
  std::optional<UpcallInvoker> invoker_;
};

// The sandbox method picks its backend by variant when it starts: the stock-kernel emulation
// above (af_xdp, af_packet_mmap) or the real ULS kernel (uls: sandbox/uls/uls_method.cc).
class SandboxByVariant final : public ProxyMethod {
 public:
  explicit SandboxByVariant(const MethodInfo& info) : info_(info) {}
  void start(const ProxyConfig& cfg) override {
    impl_ = cfg.variant == "uls" ? make_uls_sandbox_method(info_) : std::make_unique<SandboxMethod>(info_);
    impl_->start(cfg);
  }
  void run(const std::atomic<bool>& stop) override { impl_->run(stop); }
  nlohmann::json report() override { return impl_->report(); }
  nlohmann::json live() override { return impl_ ? impl_->live() : nullptr; }

 private:
  const MethodInfo& info_;
  std::unique_ptr<ProxyMethod> impl_;
};

}  // namespace

std::unique_ptr<ProxyMethod> make_sandbox_method(const MethodInfo& info) {
  return std::make_unique<SandboxByVariant>(info);
}

}  // namespace ulsnet
