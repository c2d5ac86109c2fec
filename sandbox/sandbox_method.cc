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
//  - the burst descriptor the upcall hands over (the rings area).
// What is not: the Stack's small configuration tables (allocated on the registering process's
// heap when the Stack is constructed) and the device objects (process-side, the "kernel" part
// of this emulation: they move descriptors between the AF_XDP rings and the burst).
//
// How the stack is invoked: this process waits on both devices (poll), and for every received
// burst makes one upcall through ExtensionRegistry::invoke, the same path UpcallDispatcher uses:
// the extension is claimed, its protection domain entered (mprotect: two mprotect calls per
// burst; pkey: two WRPKRU; none: a plain call), Stack::process runs on the extension's stack,
// and the frames it forwards are transmitted after the upcall returns. Compared with
// raw-socket on the same device, the difference is exactly the invocation (and the region).
// What a stock kernel cannot do: run the upcall in whatever process is current when frames
// arrive; here the proxy process must be woken for them (poll), as raw-socket is. The kernel
// patch (issue 4) removes that wake-up.
#include <poll.h>

#include <cstring>
#include <optional>

#include "baselines/stack_method.h"
#include "sandbox/extension.h"
#include "sandbox/protection.h"
#include "sandbox/region.h"
#include "stack/clock.h"

namespace ulsnet {

std::unique_ptr<ProxyMethod> make_uls_sandbox_method();  // sandbox/uls/uls_method.cc

namespace {

using namespace stack_methods;

constexpr char kStackType[] = "ulsnet-stack";

// The extension's state, in its slot.
struct StackExtension {
  Stack* stack;  // points into storage
  uint64_t bursts;
  uint64_t frames;
  alignas(64) unsigned char storage[sizeof(Stack)];
};

// One upcall's grant: a burst received on `iface`, and where forwarded frames go.
struct Burst {
  int iface;
  uint32_t n;
  Frame* frames;  // in the region's rings area
  TxBatch* out;   // process-side transmit lists
};

void stack_entry(void* state, const ExtensionEvent& ev) {
  auto* s = static_cast<StackExtension*>(state);
  auto* b = static_cast<Burst*>(ev.grant);
  s->stack->process(b->iface, {b->frames, b->n}, *b->out, ev.now_ns);
  ++s->bursts;
  s->frames += b->n;
}

class SandboxMethod final : public StackMethod {
 public:
  SandboxMethod() : StackMethod("sandbox") {}
  ~SandboxMethod() override {
    if (reg_ && registered_)
      reg_->remove(h_, [](void* st) { static_cast<StackExtension*>(st)->stack->~Stack(); });
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
    layout.ring_bytes = 64 << 10;
    layout.pool_bytes = uint64_t(2) * cfg.pool_frames * 2048;
    layout.extension_slots = 4;
    layout.extension_slot_bytes = 1 << 20;
    try {
      region_.emplace(SandboxRegion::create(layout));
    } catch (const std::exception& e) {
      throw MethodError(std::string("sandbox: ") + e.what());
    }
    open_sandbox_devices(cfg);
    register_extension_type(kStackType, stack_entry);
    reg_.emplace(*region_);
    const StackConfig sc = stack_config(cfg, dev_[0].get(), dev_[1].get());
    try {
      h_ = reg_->register_extension(kStackType, "proxy-stack", sizeof(StackExtension), mode_,
                                    [&](void* st) {
                                      auto* s = static_cast<StackExtension*>(st);
                                      s->stack = new (s->storage) Stack(sc);
                                    });
    } catch (const std::exception& e) {
      throw MethodError(std::string("sandbox: stack extension: ") + e.what());
    }
    registered_ = true;
    stack_raw_ = static_cast<const StackExtension*>(reg_->state(h_))->stack;
    // The burst descriptor and its frame array, in the region's rings area.
    burst_ = reinterpret_cast<Burst*>(region_->rings());
    frames_ = reinterpret_cast<Frame*>(region_->rings() + 64);
    if (64 + sizeof(Frame) * batch_ > region_->header().rings_bytes)
      throw MethodError("sandbox: batch too large for the region's rings area");
    tx_ = TxBatch(2);
    for (auto& l : tx_.per_iface) l.reserve(2 * size_t(batch_) + 8);
  }

  void run(const std::atomic<bool>& stop) override {
    const ThreadTimes t0 = thread_times();
    pollfd fds[2] = {{dev_[0]->wait_fd(), POLLIN, 0}, {dev_[1]->wait_fd(), POLLIN, 0}};
    while (!stop.load(std::memory_order_relaxed)) {
      if (pass() == 0) {
        ++idle_waits_;
        poll(fds, 2, kIdleWaitMs);
      }
    }
    // Frames already queued to the devices were received by the proxy: process them too
    // (bounded: the sender may still be sending).
    for (int i = 0; i < 64 && pass() > 0; ++i) {
    }
    io_thread_ = times_since(t0);
  }

  nlohmann::json report() override {
    DropLedger ext;
    ext.add(DropStage::kProxyExtension, "extension_not_active", not_active_drops_);
    ext.add(DropStage::kProxyExtension, "extension_faulted", faulted_drops_);
    nlohmann::json j = base_report(ext);
    const ExtensionInfo info = reg_->info(h_);
    const ProtectionDomain& d = reg_->domain(h_);
    j["protection"] = protection_mode_name(mode_);
    // Exactly what ran, for readers of the results.
    j["upcall_model"] =
        "stock kernel (emulated): the proxy process waits in poll() on the devices, is woken by "
        "the kernel, and makes one upcall per received burst through the extension registry; the "
        "kernel patch (issue 4) instead runs the extension in whatever process is current";
    j["frames_in_region"] = frames_in_region_;
    j["extension"] = {{"type", info.type},
                      {"state", extension_state_name(info.state)},
                      {"upcalls", info.invocations},
                      {"faults", info.faults},
                      {"protection_calls", d.protection_calls()},
                      {"region_address", reinterpret_cast<uintptr_t>(region_->base())},
                      {"region_bytes", region_->header().total_bytes}};
    j["idle_waits"] = idle_waits_;
    j["threads"]["io_and_upcalls"] = io_thread_;
    return j;
  }

 private:
  void open_sandbox_devices(const ProxyConfig& cfg) {
    // af_xdp: both sockets share one umem, and it is the region's packet-pool area.
    // af_packet_mmap: the devices keep their own rings and pools (not in the region); the
    // variant isolates the cost of invocation through the sandbox against raw-socket.
    open_devices(cfg, {region_->pool(), region_->header().pool_bytes});
    frames_in_region_ = kind_ == "af_xdp";
  }

  // One pass over both devices: receive a burst, upcall, transmit. Returns frames received.
  size_t pass() {
    size_t total = 0;
    for (int i = 0; i < 2; ++i) {
      const size_t n = dev_[i]->rx_burst({frames_, batch_});
      if (n == 0) continue;
      total += n;
      *burst_ = Burst{i, uint32_t(n), frames_, &tx_};
      ExtensionEvent ev;
      ev.kind = ExtensionEvent::kFrames;
      ev.source = uint32_t(i);
      ev.now_ns = monotonic_ns();
      ev.grant = burst_;
      UpcallResult r = reg_->invoke(h_, ev);
      if (r.status != UpcallResult::kRan) {
        // Disabled or removed under us: the frames never reached the stack.
        release_all({frames_, n});
        not_active_drops_ += n;
        extension_drops_ += n;
      } else if (r.invoke.faulted || r.invoke.threw) {
        // The Stack faulted part-way through the burst (contained). Frames it had not yet
        // handled are counted here; the ones it forwarded are in tx_ and still go out.
        faulted_drops_ += n;
        extension_drops_ += n;
      }
      for (int k = 0; k < 2; ++k) {
        auto& l = tx_.per_iface[size_t(k)];
        if (!l.empty()) dev_[k]->tx_burst(l);
      }
      tx_.clear();
    }
    return total;
  }

  ProtectionMode mode_ = ProtectionMode::kNone;
  std::optional<SandboxRegion> region_;
  std::optional<ExtensionRegistry> reg_;
  ExtensionHandle h_;
  bool registered_ = false;
  bool frames_in_region_ = false;
  Burst* burst_ = nullptr;
  Frame* frames_ = nullptr;
  TxBatch tx_;
  uint64_t idle_waits_ = 0;
  uint64_t not_active_drops_ = 0, faulted_drops_ = 0, extension_drops_ = 0;
  nlohmann::json io_thread_ = nlohmann::json::object();
};

// The sandbox method picks its backend by variant when it starts: the stock-kernel emulation
// above (af_xdp, af_packet_mmap) or the real ULS kernel (uls: sandbox/uls/uls_method.cc).
class SandboxByVariant final : public ProxyMethod {
 public:
  void start(const ProxyConfig& cfg) override {
    impl_ = cfg.variant == "uls" ? make_uls_sandbox_method() : std::make_unique<SandboxMethod>();
    impl_->start(cfg);
  }
  void run(const std::atomic<bool>& stop) override { impl_->run(stop); }
  nlohmann::json report() override { return impl_->report(); }

 private:
  std::unique_ptr<ProxyMethod> impl_;
};

}  // namespace

std::unique_ptr<ProxyMethod> make_sandbox_method() { return std::make_unique<SandboxByVariant>(); }

}  // namespace ulsnet
