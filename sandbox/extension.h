// Extensions: code an application registers to run in the sandbox, its state in the region.
//
// The extension table lives in the region's control area (the header page, after the
// RegionHeader), so every attached process sees the same extensions, states and counters. An
// extension occupies one of the region's extension slots:
//   [guard page][stack][state and heap]
// Its state is constructed in the slot by the registering process (an explicit, audited grant
// of write access; see ProtectionDomain::with_slot_writable) and from then on written only by
// the extension itself, inside invocations.
//
// Entry points. In the paper the extension's code lives in the region too. On a stock kernel
// the region is not executable: an extension's code is in each process's own text, and the
// table stores the extension's *type name*; every process that serves it resolves the name to
// its entry point (register_extension_type, a process-local table). A process that does not
// know the type cannot run the extension (reported, not guessed).
//
// Handles carry a generation: after remove(), old handles are refused even if the slot is
// reused. State transitions (free -> active <-> disabled -> free; active -> faulted on a
// contained fault) are atomic compare-and-swaps on the record, so concurrent processes agree.
//
// One serving thread at a time: an invocation first claims the record (owner_tid, a
// compare-and-swap from 0 to the caller's thread id, which is unique across processes of one
// pid namespace); a process that finds it claimed skips (the claimer serves the event) and may
// wait on the owner word (a shared futex) until it is released.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sandbox/protection.h"
#include "sandbox/region.h"

namespace ulsnet {

enum class ExtensionState : uint32_t { kFree = 0, kBusySetup = 1, kActive = 2, kDisabled = 3, kFaulted = 4 };
const char* extension_state_name(ExtensionState s);

// One entry of the table in the region's control area. Ownership tags as in sandbox/region.h
// ((a): under the protocol above).
struct ExtensionRecord {
  std::atomic<uint32_t> state;        // (a) ExtensionState
  std::atomic<uint32_t> generation;   // (a) bumped by register and remove
  char type[32];                      // (a) entry-point name, NUL-terminated
  char name[32];                      // (a) instance name
  uint64_t state_offset;              // (a) from the region base: the state, inside the slot
  uint64_t state_bytes;               // (a)
  uint64_t stack_bytes;               // (a)
  uint32_t protection;                // (a) ProtectionMode every server uses for this extension
  std::atomic<uint32_t> owner_tid;    // (x) thread running it now, 0 if none (futex word)
  std::atomic<uint32_t> waiters;      // (a) threads sleeping on owner_tid (wake only if any)
  std::atomic<uint64_t> invocations;  // (x)
  std::atomic<uint64_t> faults;       // (x)
  std::atomic<uint64_t> last_fault_address;  // (x)
  std::atomic<uint32_t> last_pid;     // (x) process that ran the latest invocation
  std::atomic<uint32_t> servers;      // (a) processes that invoked it at least once
  std::atomic<uint64_t> timer_period_ns;  // (a) 0: no timer
  std::atomic<uint64_t> next_timer_ns;    // (x) CLOCK_MONOTONIC deadline of the next timer upcall
};
static_assert(std::atomic<uint32_t>::is_always_lock_free && std::atomic<uint64_t>::is_always_lock_free,
              "shared-memory atomics must be lock-free");

inline constexpr uint32_t kExtensionTableOffset = 1024;  // inside the header page
inline constexpr uint32_t kMaxExtensions =
    (4096 - kExtensionTableOffset) / sizeof(ExtensionRecord);

struct ExtensionHandle {
  uint32_t index = ~0u;
  uint32_t generation = 0;
};

// What an upcall tells the extension.
struct ExtensionEvent {
  enum Kind : uint32_t { kFrames = 0, kTimer = 1, kMessage = 2 } kind = kFrames;
  uint32_t source = 0;  // which bound event (e.g. the interface whose frames arrived)
  uint64_t now_ns = 0;  // CLOCK_MONOTONIC at dispatch
  void* grant = nullptr;  // what the interface grants for this upcall (a burst, a message)
};
const char* event_kind_name(ExtensionEvent::Kind k);

// An entry point: runs on the extension's stack under its protection domain.
using ExtensionEntry = void (*)(void* state, const ExtensionEvent& ev);

// Process-local table of extension code, by type name. Throws std::invalid_argument for an
// empty or too long name, or a name already bound to another entry.
void register_extension_type(std::string_view type, ExtensionEntry entry);
ExtensionEntry find_extension_type(std::string_view type);

struct ExtensionInfo {
  ExtensionHandle handle;
  std::string type, name;
  ExtensionState state;
  ProtectionMode protection;
  uint64_t invocations, faults, last_fault_address;
  uint32_t last_pid, servers;
};

struct UpcallResult {
  enum Status { kRan, kBusy, kNotActive, kGone, kUnknownType } status = kGone;
  InvokeResult invoke;  // when kRan
};
const char* upcall_status_name(UpcallResult::Status s);

// A process's view of the table. Several processes (each with its own registry over the same
// region) may register, list, invoke and remove extensions concurrently.
class ExtensionRegistry {
 public:
  explicit ExtensionRegistry(SandboxRegion& region);
  ~ExtensionRegistry();

  // Takes a free slot, constructs the state with init(state) (process granted write access for
  // the call) and activates it. Throws std::runtime_error if no slot is free or the sizes do not
  // fit, std::invalid_argument for a type this process does not know.
  ExtensionHandle register_extension(std::string_view type, std::string_view name,
                                     size_t state_bytes, ProtectionMode mode,
                                     const std::function<void(void*)>& init,
                                     size_t stack_bytes = 64 * 1024);
  std::vector<ExtensionInfo> list() const;
  // false if the handle is stale or the extension is not in the state required.
  bool disable(ExtensionHandle h);
  bool enable(ExtensionHandle h);  // also re-enables a faulted extension
  // Waits (bounded by timeout_ms) for a running invocation to end, runs fini(state) with write
  // access (may be empty), frees the slot. false if stale or still running at the timeout.
  bool remove(ExtensionHandle h, const std::function<void(void*)>& fini = {}, int timeout_ms = 1000);

  // The extension's state, read-only for the process (writes fault in protected modes).
  const void* state(ExtensionHandle h) const;
  ExtensionInfo info(ExtensionHandle h) const;  // throws std::invalid_argument if stale

  // One upcall: claims the extension, runs its entry under its protection domain, releases.
  UpcallResult invoke(ExtensionHandle h, const ExtensionEvent& ev);
  // Blocks up to timeout_ms until the extension is not claimed (shared futex). 
  void wait_unclaimed(ExtensionHandle h, int timeout_ms) const;
  // This process's domain for the extension (created on first use). Throws if stale.
  ProtectionDomain& domain(ExtensionHandle h);

  SandboxRegion& region() const noexcept { return region_; }
  ExtensionRecord* record(uint32_t index) const noexcept;
  uint32_t capacity() const noexcept { return capacity_; }

 private:
  ExtensionRecord* checked(ExtensionHandle h) const;  // nullptr if stale
  ExtensionEntry entry_for(ExtensionHandle h, ExtensionRecord* r);  // cached per slot
  std::span<uint8_t> slot(uint32_t index) const;

  SandboxRegion& region_;
  uint32_t capacity_;
  struct Local {
    uint32_t generation = 0;
    std::unique_ptr<ProtectionDomain> domain;
    bool counted_as_server = false;
    ExtensionEntry entry = nullptr;  // this process's code for the type, resolved once
    uint32_t entry_generation = 0;
  };
  std::vector<Local> local_;
};

}  // namespace ulsnet
