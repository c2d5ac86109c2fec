#include "sandbox/extension.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <pthread.h>
#include <mutex>
#include <stdexcept>

namespace ulsnet {
namespace {

constexpr size_t kPage = 4096;

std::mutex g_types_mu;
std::map<std::string, ExtensionEntry, std::less<>>& types() {
  static std::map<std::string, ExtensionEntry, std::less<>> t;
  return t;
}

// This thread's tid and process's pid, without a system call per invocation. A forked child
// inherits the parent's thread-local copies: the fork generation (bumped in the child by a
// pthread_atfork handler) makes them stale there.
std::atomic<uint64_t> g_fork_generation{1};
struct Ids {
  uint64_t generation = 0;
  uint32_t pid = 0, tid = 0;
};
thread_local Ids t_ids;

const Ids& my_ids() {
  static std::once_flag once;
  std::call_once(once, [] { pthread_atfork(nullptr, nullptr, [] { g_fork_generation.fetch_add(1); }); });
  const uint64_t gen = g_fork_generation.load(std::memory_order_relaxed);
  if (t_ids.generation != gen) t_ids = {gen, uint32_t(getpid()), uint32_t(syscall(SYS_gettid))};
  return t_ids;
}
uint32_t my_tid() { return my_ids().tid; }

// Ends a claim; wakes sleepers only if there are any (no system call on the common path).
void release_claim(ExtensionRecord* r) {
  r->owner_tid.store(0);
  if (r->waiters.load() != 0)
    // Not FUTEX_PRIVATE_FLAG: waiters may be other processes mapping the same region.
    syscall(SYS_futex, reinterpret_cast<uint32_t*>(&r->owner_tid), FUTEX_WAKE, INT32_MAX, nullptr,
            nullptr, 0);
}

void copy_name(char (&dst)[32], std::string_view s) {
  std::memset(dst, 0, sizeof dst);
  std::memcpy(dst, s.data(), std::min(s.size(), sizeof dst - 1));
}

struct EntryCall {
  ExtensionEntry entry;
  void* state;
  const ExtensionEvent* ev;
};
void run_entry(void* p) {
  auto* c = static_cast<EntryCall*>(p);
  c->entry(c->state, *c->ev);
}

}  // namespace

const char* extension_state_name(ExtensionState s) {
  switch (s) {
    case ExtensionState::kFree: return "free";
    case ExtensionState::kBusySetup: return "setting-up";
    case ExtensionState::kActive: return "active";
    case ExtensionState::kDisabled: return "disabled";
    case ExtensionState::kFaulted: return "faulted";
  }
  return "?";
}

const char* event_kind_name(ExtensionEvent::Kind k) {
  switch (k) {
    case ExtensionEvent::kFrames: return "frames";
    case ExtensionEvent::kTimer: return "timer";
    case ExtensionEvent::kMessage: return "message";
  }
  return "?";
}

const char* upcall_status_name(UpcallResult::Status s) {
  switch (s) {
    case UpcallResult::kRan: return "ran";
    case UpcallResult::kBusy: return "busy";
    case UpcallResult::kNotActive: return "not-active";
    case UpcallResult::kGone: return "gone";
    case UpcallResult::kUnknownType: return "unknown-type";
  }
  return "?";
}

void register_extension_type(std::string_view type, ExtensionEntry entry) {
  if (type.empty() || type.size() >= 32)
    throw std::invalid_argument("extension type name must be 1..31 characters");
  if (entry == nullptr) throw std::invalid_argument("extension type needs an entry point");
  std::lock_guard<std::mutex> g(g_types_mu);
  auto [it, inserted] = types().emplace(std::string(type), entry);
  if (!inserted && it->second != entry)
    throw std::invalid_argument("extension type '" + std::string(type) +
                                "' is already bound to another entry point");
}

ExtensionEntry find_extension_type(std::string_view type) {
  std::lock_guard<std::mutex> g(g_types_mu);
  auto it = types().find(type);
  return it == types().end() ? nullptr : it->second;
}

ExtensionRegistry::ExtensionRegistry(SandboxRegion& region)
    : region_(region),
      capacity_(std::min<uint32_t>(region.header().extension_slots, kMaxExtensions)),
      local_(capacity_) {}

ExtensionRegistry::~ExtensionRegistry() = default;

ExtensionRecord* ExtensionRegistry::record(uint32_t index) const noexcept {
  if (index >= capacity_) return nullptr;
  return reinterpret_cast<ExtensionRecord*>(region_.base() + kExtensionTableOffset) + index;
}

std::span<uint8_t> ExtensionRegistry::slot(uint32_t index) const {
  return {region_.extension_slot(index), region_.header().extension_slot_bytes};
}

ExtensionRecord* ExtensionRegistry::checked(ExtensionHandle h) const {
  ExtensionRecord* r = record(h.index);
  if (r == nullptr || r->generation.load(std::memory_order_acquire) != h.generation) return nullptr;
  auto s = ExtensionState(r->state.load(std::memory_order_acquire));
  if (s == ExtensionState::kFree || s == ExtensionState::kBusySetup) return nullptr;
  return r;
}

ExtensionEntry ExtensionRegistry::entry_for(ExtensionHandle h, ExtensionRecord* r) {
  Local& l = local_[h.index];
  if (l.entry == nullptr || l.entry_generation != h.generation) {
    l.entry = find_extension_type(r->type);
    l.entry_generation = h.generation;
  }
  return l.entry;
}

ProtectionDomain& ExtensionRegistry::domain(ExtensionHandle h) {
  ExtensionRecord* r = record(h.index);
  if (r == nullptr || r->generation.load() != h.generation)
    throw std::invalid_argument("stale extension handle");
  Local& l = local_[h.index];
  if (!l.domain || l.generation != h.generation) {
    l.domain.reset();
    l.domain = std::make_unique<ProtectionDomain>(ProtectionMode(r->protection), slot(h.index),
                                                  r->stack_bytes);
    l.generation = h.generation;
    l.counted_as_server = false;
  }
  return *l.domain;
}

ExtensionHandle ExtensionRegistry::register_extension(std::string_view type, std::string_view name,
                                                      size_t state_bytes, ProtectionMode mode,
                                                      const std::function<void(void*)>& init,
                                                      size_t stack_bytes) {
  if (find_extension_type(type) == nullptr)
    throw std::invalid_argument("extension type '" + std::string(type) +
                                "' has no entry point in this process");
  if (name.size() >= 32) throw std::invalid_argument("extension name longer than 31 characters");
  stack_bytes = (stack_bytes + kPage - 1) / kPage * kPage;
  const uint64_t slot_bytes = region_.header().extension_slot_bytes;
  const uint64_t state_offset_in_slot = kPage + stack_bytes;
  if (state_offset_in_slot + state_bytes > slot_bytes)
    throw std::runtime_error("extension '" + std::string(name) + "': " + std::to_string(state_bytes) +
                             " bytes of state and a " + std::to_string(stack_bytes) +
                             "-byte stack do not fit a " + std::to_string(slot_bytes) +
                             "-byte slot");
  for (uint32_t i = 0; i < capacity_; ++i) {
    ExtensionRecord* r = record(i);
    uint32_t expected = uint32_t(ExtensionState::kFree);
    if (!r->state.compare_exchange_strong(expected, uint32_t(ExtensionState::kBusySetup))) continue;
    const uint32_t gen = r->generation.fetch_add(1) + 1;
    copy_name(r->type, type);
    copy_name(r->name, name);
    r->state_offset = region_.header().extensions_offset + uint64_t(i) * slot_bytes + state_offset_in_slot;
    r->state_bytes = state_bytes;
    r->stack_bytes = stack_bytes;
    r->protection = uint32_t(mode);
    r->owner_tid.store(0);
    r->invocations.store(0);
    r->faults.store(0);
    r->last_fault_address.store(0);
    r->last_pid.store(0);
    r->servers.store(0);
    r->timer_period_ns.store(0);
    r->next_timer_ns.store(0);
    ExtensionHandle h{i, gen};
    try {
      ProtectionDomain& d = domain(h);
      void* st = region_.base() + r->state_offset;
      d.with_slot_writable([&] {
        std::memset(st, 0, state_bytes);
        if (init) init(st);
      });
    } catch (...) {
      local_[i].domain.reset();
      r->generation.fetch_add(1);
      r->state.store(uint32_t(ExtensionState::kFree));
      throw;
    }
    r->state.store(uint32_t(ExtensionState::kActive), std::memory_order_release);
    return h;
  }
  throw std::runtime_error("no free extension slot (" + std::to_string(capacity_) + " in this region)");
}

std::vector<ExtensionInfo> ExtensionRegistry::list() const {
  std::vector<ExtensionInfo> v;
  for (uint32_t i = 0; i < capacity_; ++i) {
    ExtensionRecord* r = record(i);
    auto s = ExtensionState(r->state.load(std::memory_order_acquire));
    if (s == ExtensionState::kFree || s == ExtensionState::kBusySetup) continue;
    v.push_back(info({i, r->generation.load()}));
  }
  return v;
}

ExtensionInfo ExtensionRegistry::info(ExtensionHandle h) const {
  ExtensionRecord* r = checked(h);
  if (r == nullptr) throw std::invalid_argument("stale extension handle");
  ExtensionInfo x;
  x.handle = h;
  x.type = r->type;
  x.name = r->name;
  x.state = ExtensionState(r->state.load());
  x.protection = ProtectionMode(r->protection);
  x.invocations = r->invocations.load();
  x.faults = r->faults.load();
  x.last_fault_address = r->last_fault_address.load();
  x.last_pid = r->last_pid.load();
  x.servers = r->servers.load();
  return x;
}

bool ExtensionRegistry::disable(ExtensionHandle h) {
  ExtensionRecord* r = checked(h);
  uint32_t expected = uint32_t(ExtensionState::kActive);
  return r != nullptr && r->state.compare_exchange_strong(expected, uint32_t(ExtensionState::kDisabled));
}

bool ExtensionRegistry::enable(ExtensionHandle h) {
  ExtensionRecord* r = checked(h);
  if (r == nullptr) return false;
  for (auto from : {ExtensionState::kDisabled, ExtensionState::kFaulted}) {
    uint32_t expected = uint32_t(from);
    if (r->state.compare_exchange_strong(expected, uint32_t(ExtensionState::kActive))) return true;
  }
  return false;
}

const void* ExtensionRegistry::state(ExtensionHandle h) const {
  ExtensionRecord* r = checked(h);
  return r == nullptr ? nullptr : region_.base() + r->state_offset;
}

void ExtensionRegistry::wait_unclaimed(ExtensionHandle h, int timeout_ms) const {
  ExtensionRecord* r = record(h.index);
  if (r == nullptr) return;
  uint32_t owner = r->owner_tid.load(std::memory_order_acquire);
  if (owner == 0) return;
  timespec ts{timeout_ms / 1000, (timeout_ms % 1000) * 1'000'000L};
  // Sequentially consistent with release_claim(): either the releaser sees us counted and
  // wakes us, or our FUTEX_WAIT sees the word already changed and returns at once.
  r->waiters.fetch_add(1);
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&r->owner_tid), FUTEX_WAIT, owner, &ts, nullptr, 0);
  r->waiters.fetch_sub(1);
}

bool ExtensionRegistry::remove(ExtensionHandle h, const std::function<void(void*)>& fini,
                               int timeout_ms) {
  ExtensionRecord* r = checked(h);
  if (r == nullptr) return false;
  // Stop new invocations, then wait out a running one.
  r->state.store(uint32_t(ExtensionState::kDisabled));
  timespec t0{};
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (;;) {
    uint32_t expected = 0;
    // Claim it ourselves so that nobody can start an invocation while we tear it down.
    if (r->owner_tid.compare_exchange_strong(expected, my_tid())) break;
    timespec t{};
    clock_gettime(CLOCK_MONOTONIC, &t);
    if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1'000'000 > timeout_ms) return false;
    wait_unclaimed(h, 10);
  }
  ProtectionDomain& d = domain(h);
  void* st = region_.base() + r->state_offset;
  if (fini) d.with_slot_writable([&] { fini(st); });
  local_[h.index].domain.reset();  // this process's protections off the slot
  r->generation.fetch_add(1);      // every outstanding handle is now stale
  r->timer_period_ns.store(0);
  r->state.store(uint32_t(ExtensionState::kFree), std::memory_order_release);
  release_claim(r);
  return true;
}

UpcallResult ExtensionRegistry::invoke(ExtensionHandle h, const ExtensionEvent& ev) {
  UpcallResult res;
  ExtensionRecord* r = checked(h);
  if (r == nullptr) return res;  // kGone
  uint32_t expected = 0;
  if (!r->owner_tid.compare_exchange_strong(expected, my_tid(), std::memory_order_acquire)) {
    res.status = UpcallResult::kBusy;
    return res;
  }
  // Re-check under the claim: it may have been disabled or removed meanwhile.
  if (r->generation.load() != h.generation ||
      ExtensionState(r->state.load(std::memory_order_acquire)) != ExtensionState::kActive) {
    res.status = r->generation.load() != h.generation ? UpcallResult::kGone : UpcallResult::kNotActive;
  } else if (ExtensionEntry entry = entry_for(h, r); entry == nullptr) {
    res.status = UpcallResult::kUnknownType;
  } else {
    ProtectionDomain& d = domain(h);
    Local& l = local_[h.index];
    if (!l.counted_as_server) {
      r->servers.fetch_add(1);
      l.counted_as_server = true;
    }
    EntryCall call{entry, region_.base() + r->state_offset, &ev};
    res.invoke = d.invoke(run_entry, &call);
    res.status = UpcallResult::kRan;
    r->invocations.fetch_add(1, std::memory_order_relaxed);
    r->last_pid.store(my_ids().pid, std::memory_order_relaxed);
    if (res.invoke.faulted || res.invoke.threw) {
      r->faults.fetch_add(1);
      r->last_fault_address.store(res.invoke.fault_address);
      r->state.store(uint32_t(ExtensionState::kFaulted));
    }
  }
  release_claim(r);
  return res;
}

}  // namespace ulsnet
