// The ulsnet Stack as a sandbox extension, and UpcallInvoker: the sandbox method's way of invoking
// it from the forwarding loop (stack/forwarding_loop.h) on a stock kernel -- one upcall per
// received burst through ExtensionRegistry::invoke, the same path UpcallDispatcher uses: the
// extension is claimed, its protection domain entered (mprotect: two mprotect calls per burst;
// pkey: two WRPKRU; none: a plain call), Stack::process runs on the extension's stack, and the
// frames it forwards are transmitted by the loop after the upcall returns.
//
// In the region: the Stack object and its counters (in the extension's slot, written only inside
// upcalls), and the whole of the upcall's grant in the rings area: the burst descriptor, the
// received frames' descriptors and the TX batch the Stack fills, with its storage. Not in the
// region: the Stack's small configuration tables (on the registering process's heap).
#pragma once

#include <cstdint>
#include <span>

#include "sandbox/extension.h"
#include "sandbox/protection.h"
#include "sandbox/region.h"
#include "stack/stack.h"

namespace ulsnet {

// Registers the Stack extension type (idempotent) and an instance of it built from `config`.
// Throws what ExtensionRegistry::register_extension throws.
ExtensionHandle register_stack_extension(ExtensionRegistry& reg, const StackConfig& config,
                                         ProtectionMode mode);
// The instance's Stack (in its slot) and its destruction with the extension.
const Stack* stack_extension_stack(const ExtensionRegistry& reg, ExtensionHandle h);
void remove_stack_extension(ExtensionRegistry& reg, ExtensionHandle h);

struct StackUpcallGrant;  // what one upcall is given (stack_extension.cc)

class UpcallInvoker {
 public:
  // `grant_area`: where the grant goes (the region's rings area); throws std::invalid_argument if
  // it is smaller than grant_bytes(ifaces, batch).
  UpcallInvoker(ExtensionRegistry& reg, ExtensionHandle h, std::span<uint8_t> grant_area, size_t ifaces,
                uint32_t batch);
  ~UpcallInvoker();
  UpcallInvoker(const UpcallInvoker&) = delete;
  UpcallInvoker& operator=(const UpcallInvoker&) = delete;
  static size_t grant_bytes(size_t ifaces, uint32_t batch);

  std::span<Frame> rx_buffer(int) { return {frames_, batch_}; }
  void submit(int iface, std::span<Frame> burst, uint64_t now_ns);
  void refuse(int, std::span<Frame>) {}  // rx_buffer always has room
  template <class Send>
  bool collect(Send send) {
    bool any = false;
    for (auto& l : out_->per_iface) any |= !l.empty();
    if (any) send(*out_);
    return false;  // nothing outstanding: output is collected in the same pass
  }
  int wait_fd() const { return -1; }
  void on_wake() {}
  void finish() {}

  // Frames of bursts the Stack never saw (the extension was disabled or removed under us) or
  // did not finish (it faulted; what it had forwarded still goes out).
  uint64_t not_active_drops() const noexcept { return not_active_drops_; }
  uint64_t faulted_drops() const noexcept { return faulted_drops_; }

 private:
  ExtensionRegistry& reg_;
  ExtensionHandle h_;
  const uint32_t batch_;
  StackUpcallGrant* grant_;
  Frame* frames_;
  TxBatch* out_;  // in grant_area
  uint64_t not_active_drops_ = 0, faulted_drops_ = 0;
};

}  // namespace ulsnet
