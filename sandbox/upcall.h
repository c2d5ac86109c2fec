// Upcall dispatch: events invoke an extension in the context of whichever attached process is
// waiting for them, not of a dedicated server process.
//
// Events:
//  - frames (or any readiness): an fd that polls readable (a device's wait_fd, an eventfd
//    signalled by a producer on a region ring). Each serving process binds its own fd for the
//    event (fds are per process); the dispatcher waits on them with epoll, level-triggered.
//  - timers: the period and the next deadline live in the extension's record in the region, so
//    however many processes serve the extension, each deadline fires one upcall: the process
//    that wins the compare-and-swap on next_timer_ns runs it.
// Several processes can serve one extension at once; ExtensionRegistry::invoke lets one run it
// at a time (the others see it claimed, sleep on the claim word and retry).
//
// What a stock kernel allows, exactly: the upcall runs in a process that has called
// dispatch_once()/serve() (or polls from its own loop), i.e. one that is *waiting for the
// event* or checks for it; the kernel wakes that process (a scheduling decision and a context
// switch, unless it is already running). With the kernel patch (kernel/patches, the `uls` variant) the
// kernel instead runs the extension when *any* process, busy with its own work, next returns to
// user mode on that CPU: no wake-up, no scheduling. The extension code, its state and the
// dispatch protocol are the same in both; only who makes the call differs.
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

#include "sandbox/extension.h"

namespace ulsnet {

struct DispatcherStats {
  uint64_t waits = 0;         // epoll_wait calls
  uint64_t wakeups = 0;       // waits that returned events
  uint64_t upcalls = 0;       // invocations this process made
  uint64_t timer_upcalls = 0;
  uint64_t busy = 0;          // found the extension claimed by another thread/process
  uint64_t not_active = 0;    // event for a disabled / faulted / removed extension (ignored)
  uint64_t faults = 0;        // contained faults in upcalls made here
};

class UpcallDispatcher {
 public:
  explicit UpcallDispatcher(ExtensionRegistry& reg);
  ~UpcallDispatcher();
  UpcallDispatcher(const UpcallDispatcher&) = delete;
  UpcallDispatcher& operator=(const UpcallDispatcher&) = delete;

  // How an fd's readiness is consumed: kLevel fds stop polling readable once the extension has
  // done its work (a device whose ring it drains); a kEventfd is read (cleared) by the
  // dispatcher before the upcall, and written back if the upcall could not be made, so that a
  // signal is never lost to a race between servers.
  enum class FdKind { kLevel, kEventfd };
  // When `fd` polls readable, invoke `h` with a frames event {source, grant}. The fd stays
  // owned by the caller. Throws std::runtime_error if epoll refuses it.
  void bind_fd(ExtensionHandle h, int fd, uint32_t source, void* grant = nullptr,
               FdKind kind = FdKind::kLevel);
  // A timer upcall every period_ns, shared by all processes serving `h` (stored in the region).
  // period_ns = 0 cancels it.
  void bind_timer(ExtensionHandle h, uint64_t period_ns);
  // This process also serves the timers of `h` (bind_timer does it for the caller; other
  // processes call this to share the work).
  void serve_timers_of(ExtensionHandle h);

  // Waits up to max_wait_ms for events (0: poll without blocking) and makes the upcalls they
  // call for. Returns the number of upcalls made.
  size_t dispatch_once(int max_wait_ms);
  // dispatch_once until stop is set (checked at least every 20 ms).
  void serve(const std::atomic<bool>& stop);

  const DispatcherStats& stats() const noexcept { return stats_; }

 private:
  struct FdBinding {
    ExtensionHandle h;
    int fd;
    uint32_t source;
    void* grant;
    FdKind kind;
  };
  // 1: the upcall ran; 0: the extension stayed claimed by another server (bounded retries);
  // -1: not active (disabled, faulted, removed, or a type unknown here).
  int upcall(ExtensionHandle h, ExtensionEvent ev, bool retry_busy);
  // How long to wait for events, in ns: up to max_wait_ms (< 0: no bound), less if a timer is
  // due sooner; -1 for no bound.
  int64_t timer_wait_ns(int max_wait_ms) const;
  size_t run_due_timers();

  ExtensionRegistry& reg_;
  int epfd_ = -1;
  std::vector<FdBinding> fds_;
  std::vector<ExtensionHandle> timers_;
  DispatcherStats stats_;
};

}  // namespace ulsnet
