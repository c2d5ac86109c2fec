// Host stalls on one CPU, measured while a trial runs. This machine's CPUs are a hypervisor's
// vCPUs: the host can take one away for milliseconds (measured here: README, "Are the ratios
// stable?"), and the guest cannot see it (no steal time is reported). A proxy whose CPU is taken
// away loses whatever arrives meanwhile, and whether a 1 s trial meets such a stall decides
// whether it passes -- luck, not the method.
//
// The probe is a thread pinned to the CPU at SCHED_FIFO priority 99 (above every thread of the
// guest, the NAPI threads included) that sleeps to absolute deadlines `period_us` apart and
// reads the clock when it wakes. Nothing in the guest can keep it from running for long (only
// code with interrupts or preemption off, for microseconds), so a wake-up much later than its
// deadline means the CPU itself was not running: a host stall. It costs the CPU one short
// wake-up per period (the same for every method).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace ulsnet {

struct StallSummary {
  uint64_t wakeups = 0;
  double max_late_us = 0;
  uint64_t over_threshold = 0;  // wake-ups later than the threshold
  double late_over_threshold_ms = 0;  // their lateness, summed
  // The latest ones over the threshold (at most 8): seconds since the probe started, lateness.
  std::vector<std::pair<double, double>> stalls;
};

// Summarizes lateness samples (microseconds, with the second they were taken at).
StallSummary summarize_stalls(const std::vector<std::pair<double, double>>& at_late_us, double threshold_us);

class StallProbe {
 public:
  StallProbe() = default;
  ~StallProbe() { stop(); }
  StallProbe(const StallProbe&) = delete;
  StallProbe& operator=(const StallProbe&) = delete;

  // Starts the probe on `cpu`. false (and error() says why) if it cannot pin itself there or
  // cannot take SCHED_FIFO 99 (it then does not run: a probe that ordinary threads can delay
  // would report their scheduling as host stalls).
  bool start(int cpu, uint32_t period_us, double threshold_us);
  // Stops it and returns {"cpu", "period_us", "threshold_us", "wakeups", "max_late_us",
  // "over_threshold", "late_over_threshold_ms", "stalls": [[at_s, late_us], ...]}, or
  // {"error": why} if it did not run.
  nlohmann::json stop();
  const std::string& error() const { return error_; }

 private:
  void loop();
  int cpu_ = -1;
  uint32_t period_us_ = 1000;
  double threshold_us_ = 2000;
  std::atomic<bool> stop_{false}, started_{false};
  std::atomic<int> ready_{0};  // 1 running, -1 failed
  std::thread t_;
  std::string error_;
  std::vector<std::pair<double, double>> samples_;  // over 100 us only, and the maximum
  double max_late_us_ = 0;
  uint64_t wakeups_ = 0;
};

nlohmann::json stall_summary_json(const StallSummary& s);

}  // namespace ulsnet
