// LiveExchange: how a running method hands a copy of its counters to another thread
// (ProxyMethod::live) without sharing them. The counters stay the property of the thread that
// updates them (the forwarding loop's, the user-thread Stack's); a reader asks, and that thread
// answers at a point where they are consistent (between two bursts), by copying them under a
// mutex. Until someone asks, the owner pays one relaxed load per pass.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>

namespace ulsnet {

template <class T>
class LiveExchange {
 public:
  // Reader: asks, calls nudge() (e.g. to wake an owner that sleeps), then waits up to timeout_ms
  // for the owner's answer. nullopt when none came (the owner is not running: before run(),
  // after it, or blocked longer than that).
  template <class Nudge = void (*)()>
  std::optional<T> ask(int timeout_ms, Nudge nudge = [] {}) {
    uint64_t want = 0;
    {
      std::lock_guard<std::mutex> lk(mu_);
      want = ++asks_;
      asked_.store(true, std::memory_order_relaxed);
    }
    nudge();
    std::unique_lock<std::mutex> lk(mu_);
    if (!cv_.wait_for(lk, std::chrono::milliseconds(timeout_ms), [&] { return answers_ >= want; }))
      return std::nullopt;
    return value_;
  }

  // Owner: whether a reader waits (cheap; call once per pass).
  bool asked() const noexcept { return asked_.load(std::memory_order_relaxed); }

  // Owner: fill(T&) writes the answer; every reader waiting so far gets it.
  template <class Fill>
  void answer(Fill fill) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      fill(value_);
      answers_ = asks_;
      asked_.store(false, std::memory_order_relaxed);
    }
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<bool> asked_{false};
  uint64_t asks_ = 0, answers_ = 0;  // under mu_
  T value_{};
};

}  // namespace ulsnet
