#include "sandbox/upcall.h"

#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "stack/clock.h"

namespace ulsnet {

UpcallDispatcher::UpcallDispatcher(ExtensionRegistry& reg) : reg_(reg) {
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) throw std::runtime_error(std::string("upcall dispatcher: epoll_create1: ") + std::strerror(errno));
}

UpcallDispatcher::~UpcallDispatcher() {
  if (epfd_ >= 0) close(epfd_);
}

void UpcallDispatcher::bind_fd(ExtensionHandle h, int fd, uint32_t source, void* grant, FdKind kind) {
  epoll_event e{};
  e.events = EPOLLIN;
  e.data.u64 = fds_.size();
  if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &e) != 0)
    throw std::runtime_error("upcall dispatcher: cannot wait on fd " + std::to_string(fd) + ": " +
                             std::strerror(errno));
  fds_.push_back({h, fd, source, grant, kind});
}

void UpcallDispatcher::bind_timer(ExtensionHandle h, uint64_t period_ns) {
  ExtensionRecord* r = reg_.record(h.index);
  if (r == nullptr || r->generation.load() != h.generation)
    throw std::invalid_argument("bind_timer: stale extension handle");
  r->next_timer_ns.store(monotonic_ns() + period_ns);
  r->timer_period_ns.store(period_ns);
  if (period_ns != 0) serve_timers_of(h);
}

void UpcallDispatcher::serve_timers_of(ExtensionHandle h) {
  for (const auto& t : timers_)
    if (t.index == h.index && t.generation == h.generation) return;
  timers_.push_back(h);
}

int UpcallDispatcher::upcall(ExtensionHandle h, ExtensionEvent ev, bool retry_busy) {
  // A claimed extension is being served by someone else: wait for them (bounded) and retry,
  // so that an event that is still pending is not lost to the race.
  for (int attempt = 0; attempt < 20; ++attempt) {
    ev.now_ns = monotonic_ns();
    UpcallResult r = reg_.invoke(h, ev);
    switch (r.status) {
      case UpcallResult::kRan:
        ++stats_.upcalls;
        if (ev.kind == ExtensionEvent::kTimer) ++stats_.timer_upcalls;
        if (r.invoke.faulted || r.invoke.threw) ++stats_.faults;
        return 1;
      case UpcallResult::kBusy:
        ++stats_.busy;
        // Level-triggered fds: if the other server consumed the event, nothing is lost by
        // returning; if not, the next wait reports it again. Eventfd signals and timer
        // deadlines are ours: wait for the other server and retry.
        if (!retry_busy) return 0;
        reg_.wait_unclaimed(h, 2);
        break;
      default:
        ++stats_.not_active;
        return -1;
    }
  }
  return 0;
}

int64_t UpcallDispatcher::timer_wait_ns(int max_wait_ms) const {
  int64_t w = max_wait_ms < 0 ? -1 : int64_t(max_wait_ms) * 1'000'000;
  const uint64_t now = monotonic_ns();
  for (const auto& h : timers_) {
    ExtensionRecord* r = reg_.record(h.index);
    if (r == nullptr || r->generation.load() != h.generation || r->timer_period_ns.load() == 0) continue;
    const uint64_t next = r->next_timer_ns.load();
    const int64_t ns = next <= now ? 0 : int64_t(next - now);
    if (w < 0 || ns < w) w = ns;
  }
  return w;
}

size_t UpcallDispatcher::run_due_timers() {
  size_t n = 0;
  for (const auto& h : timers_) {
    ExtensionRecord* r = reg_.record(h.index);
    if (r == nullptr || r->generation.load() != h.generation) continue;
    const uint64_t period = r->timer_period_ns.load();
    if (period == 0) continue;
    const uint64_t now = monotonic_ns();
    uint64_t next = r->next_timer_ns.load();
    if (now < next) continue;
    // One winner per deadline across every serving process. Missed deadlines are not
    // replayed: the next one is the first after now.
    uint64_t after = next + period;
    if (after <= now) after = now + period;
    if (!r->next_timer_ns.compare_exchange_strong(next, after)) continue;
    ExtensionEvent ev;
    ev.kind = ExtensionEvent::kTimer;
    n += upcall(h, ev, true) > 0;
  }
  return n;
}

size_t UpcallDispatcher::dispatch_once(int max_wait_ms) {
  epoll_event evs[16];
  ++stats_.waits;
  // To the nanosecond (epoll_pwait2, Linux 5.11): epoll_wait's whole milliseconds would make a
  // timer upcall up to 1 ms late, every period.
  const int64_t wait_ns = timer_wait_ns(max_wait_ms);
  int n;
  if (wait_ns < 0) {
    n = epoll_wait(epfd_, evs, 16, -1);
  } else {
    const timespec ts{time_t(wait_ns / 1'000'000'000), long(wait_ns % 1'000'000'000)};
    n = epoll_pwait2(epfd_, evs, 16, &ts, nullptr);
    if (n < 0 && errno == ENOSYS) n = epoll_wait(epfd_, evs, 16, int((wait_ns + 999'999) / 1'000'000));
  }
  size_t made = 0;
  if (n > 0) {
    ++stats_.wakeups;
    for (int i = 0; i < n; ++i) {
      const FdBinding& b = fds_[evs[i].data.u64];
      ExtensionEvent ev;
      ev.kind = ExtensionEvent::kFrames;
      ev.source = b.source;
      ev.grant = b.grant;
      if (b.kind == FdKind::kEventfd) {
        uint64_t v;
        if (read(b.fd, &v, sizeof v) != sizeof v) continue;  // another server took the signal
        const int ran = upcall(b.h, ev, true);
        if (ran == 0) {
          v = 1;  // not delivered: put the signal back for whoever serves next
          (void)!write(b.fd, &v, sizeof v);
        }
        made += ran > 0;
      } else {
        made += upcall(b.h, ev, false) > 0;
      }
    }
  }
  made += run_due_timers();
  return made;
}

void UpcallDispatcher::serve(const std::atomic<bool>& stop) {
  while (!stop.load(std::memory_order_relaxed)) dispatch_once(20);
}

}  // namespace ulsnet
