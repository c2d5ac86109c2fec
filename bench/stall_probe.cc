#include "bench/stall_probe.h"

#include <pthread.h>
#include <sched.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace ulsnet {
namespace {

uint64_t mono_ns() {
  timespec t{};
  clock_gettime(CLOCK_MONOTONIC, &t);
  return uint64_t(t.tv_sec) * 1000000000ull + uint64_t(t.tv_nsec);
}

}  // namespace

StallSummary summarize_stalls(const std::vector<std::pair<double, double>>& at_late_us, double threshold_us) {
  StallSummary s;
  s.wakeups = at_late_us.size();
  for (const auto& [at, late] : at_late_us) {
    s.max_late_us = std::max(s.max_late_us, late);
    if (late > threshold_us) {
      ++s.over_threshold;
      s.late_over_threshold_ms += late / 1000.0;
      s.stalls.emplace_back(at, late);
    }
  }
  if (s.stalls.size() > 8) s.stalls.erase(s.stalls.begin(), s.stalls.end() - 8);
  return s;
}

nlohmann::json stall_summary_json(const StallSummary& s) {
  nlohmann::json st = nlohmann::json::array();
  for (const auto& [at, late] : s.stalls) st.push_back({at, late});
  return {{"wakeups", s.wakeups},
          {"max_late_us", s.max_late_us},
          {"over_threshold", s.over_threshold},
          {"late_over_threshold_ms", s.late_over_threshold_ms},
          {"stalls", st}};
}

bool StallProbe::start(int cpu, uint32_t period_us, double threshold_us) {
  stop();
  cpu_ = cpu;
  period_us_ = std::max<uint32_t>(period_us, 100);
  threshold_us_ = threshold_us;
  stop_ = false;
  ready_ = 0;
  error_.clear();
  samples_.clear();
  max_late_us_ = 0;
  wakeups_ = 0;
  t_ = std::thread([this] { loop(); });
  started_ = true;
  while (ready_.load() == 0) std::this_thread::yield();
  if (ready_.load() < 0) {
    t_.join();
    started_ = false;
    return false;
  }
  return true;
}

void StallProbe::loop() {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu_, &set);
  if (int e = pthread_setaffinity_np(pthread_self(), sizeof set, &set); e != 0) {
    error_ = "cannot pin the stall probe to CPU " + std::to_string(cpu_) + ": " + std::strerror(e);
    ready_ = -1;
    return;
  }
  sched_param p{};
  p.sched_priority = 99;
  if (int e = pthread_setschedparam(pthread_self(), SCHED_FIFO, &p); e != 0) {
    error_ = std::string("the stall probe cannot run at SCHED_FIFO 99 (needs CAP_SYS_NICE): ") + std::strerror(e);
    ready_ = -1;
    return;
  }
  ready_ = 1;
  const uint64_t period = uint64_t(period_us_) * 1000, t0 = mono_ns();
  uint64_t next = t0;
  while (!stop_.load(std::memory_order_relaxed)) {
    next += period;
    timespec a{time_t(next / 1000000000ull), long(next % 1000000000ull)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &a, nullptr) == EINTR) {
    }
    const uint64_t now = mono_ns();
    const double late_us = now > next ? double(now - next) / 1000.0 : 0.0;
    ++wakeups_;
    max_late_us_ = std::max(max_late_us_, late_us);
    // Only the late ones are kept (a few per second at most), each with its time.
    if (late_us > 100) samples_.emplace_back(double(now - t0) / 1e9, late_us);
    if (now > next + period) next = now;  // a stall: start again from now
  }
}

nlohmann::json StallProbe::stop() {
  if (!started_) return error_.empty() ? nlohmann::json(nullptr) : nlohmann::json{{"error", error_}};
  stop_ = true;
  t_.join();
  started_ = false;
  StallSummary s = summarize_stalls(samples_, threshold_us_);
  s.wakeups = wakeups_;
  s.max_late_us = max_late_us_;
  nlohmann::json j = stall_summary_json(s);
  j["cpu"] = cpu_;
  j["period_us"] = period_us_;
  j["threshold_us"] = threshold_us_;
  return j;
}

}  // namespace ulsnet
