// Protection domains: who may touch an extension's memory, and when.
//
// The paper's rule, and what each mode enforces on a stock kernel:
//  (1) ordinary process code cannot write an extension's memory (its slot: state, heap, stack);
//  (2) an extension cannot reach process-private memory, except through what the interface
//      grants it.
//
//   mode      (1) outside an invocation               (2) during an invocation
//   pkey      slot pages carry key E; this thread's    ranges the process registered as private
//             PKRU has E write-disabled                carry key P, access-disabled in PKRU
//   mprotect  slot pages are PROT_READ                 registered private ranges are PROT_NONE
//   none      nothing (trusted extensions)             nothing
//
// Entering and leaving an invocation is one WRPKRU each way with pkeys (no system call, per
// thread), and 2 + 2 x (private ranges) mprotect(2) calls with page protections (process-wide:
// other threads of the same process see the extension's slot writable while it runs; a TLB
// flush on every change). The micro-benchmarks measure both.
//
// What a stock kernel cannot give, and the kernel patch (kernel/patches, the `uls` variant) does: (2) for ALL of the
// process's memory, not only ranges it registered (here the libc heap and other threads' stacks
// stay reachable from an extension), and (1) without a system call per invocation on CPUs
// without protection keys.
//
// Fault containment: an extension's stray access raises SIGSEGV inside the invocation; the
// handler (on its own signal stack) unwinds to the invocation with siglongjmp, protections are
// restored, the extension is marked faulted and disabled, and the caller gets the fault address
// back. A process's write into extension memory outside an invocation is reported on stderr
// (naming the address and the extension slot) and then kills the process with SIGSEGV, as the
// hardware intended: the extension's state is never silently corrupted.
#pragma once

#include <csetjmp>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ulsnet {

enum class ProtectionMode : uint8_t { kNone, kMprotect, kPkey };
const char* protection_mode_name(ProtectionMode m);  // "none" / "mprotect" / "pkey"

struct ProtectionSupport {
  ProtectionMode mode;
  bool available;
  std::string reason;  // why not, when not available
};

// Probes each mode on this machine and kernel (pkey_alloc, mprotect). Cheap; cached.
const std::vector<ProtectionSupport>& protection_support();
// The strongest available mode (pkey, else mprotect).
ProtectionMode best_protection_mode();
// "none" | "mprotect" | "pkey" | "auto" (= best). Throws std::invalid_argument naming the valid
// values, or std::runtime_error saying why a named mode is not available here.
ProtectionMode parse_protection_mode(std::string_view s);

// What an invocation reports.
struct InvokeResult {
  bool faulted = false;
  uintptr_t fault_address = 0;
  int fault_signal = 0;
  bool threw = false;  // the entry point let a C++ exception escape (caught at the boundary)
};

// One extension's protection: its slot memory (state, heap, stack) and the process ranges it
// must not reach. One domain per extension per process. Not thread-safe: one thread invokes.
class ProtectionDomain {
 public:
  // `slot` is the extension's memory inside the sandbox region (page aligned); the top
  // `stack_bytes` of it are the stack the extension runs on (modes other than none).
  // Applies the "outside an invocation" protection at once. Throws std::runtime_error if the
  // mode is unavailable or a protection call fails.
  ProtectionDomain(ProtectionMode mode, std::span<uint8_t> slot, size_t stack_bytes);
  ~ProtectionDomain();  // restores read-write access to the slot and to private ranges
  ProtectionDomain(const ProtectionDomain&) = delete;
  ProtectionDomain& operator=(const ProtectionDomain&) = delete;

  // Registers process-private memory (page aligned) the extension must not reach.
  void add_private_range(std::span<uint8_t> r);

  // Runs fn(arg) as the extension: protections switched, on the extension's stack (modes other
  // than none; `none` is a plain call on the caller's stack), faults contained.
  InvokeResult invoke(void (*fn)(void*), void* arg) noexcept;

  // Makes the slot writable for the process while `fn` runs (set-up and tear-down of the
  // extension's state by the registering process: an explicit, audited grant).
  template <class F>
  void with_slot_writable(F&& f) {
    set_slot_writable(true);
    try {
      f();
    } catch (...) {
      set_slot_writable(false);
      throw;
    }
    set_slot_writable(false);
  }

  ProtectionMode mode() const noexcept { return mode_; }
  std::span<uint8_t> slot() const noexcept { return slot_; }
  uint64_t invocations() const noexcept { return invocations_; }
  uint64_t protection_calls() const noexcept { return protection_calls_; }  // mprotect/WRPKRU

 private:
  void open_slot();   // slot writable, private ranges closed (entering an invocation)
  void close_slot();  // the reverse
  void set_slot_writable(bool w);  // the slot only (set-up grants)
  void protect(void* p, size_t n, int prot, int pkey);

  ProtectionMode mode_;
  std::span<uint8_t> slot_;
  uint8_t* stack_top_ = nullptr;
  std::vector<std::span<uint8_t>> private_;
  int pkey_ext_ = -1;
  int pkey_private_ = -1;
  uint64_t invocations_ = 0;
  uint64_t protection_calls_ = 0;
};

// Installs (once per process) the SIGSEGV/SIGBUS handler that contains extension faults, with
// a signal stack for the calling thread. ProtectionDomain calls it; tests may too.
void install_fault_handler();

}  // namespace ulsnet
