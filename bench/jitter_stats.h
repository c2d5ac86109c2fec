// What //bench:jitter computes from a periodic service's (due, ran) times: pure, unit-tested
// (bench/jitter_stats_test.cc).
//
//  - nearest-rank percentiles (the same convention as bench/stats.h: the smallest value such that
//    at least q of the values are less or equal), mean, sample standard deviation (n - 1);
//  - the two-sided 95% confidence interval of a mean over repetitions (Student t with n - 1
//    degrees of freedom: exact table for df 1..30, a Cornish-Fisher expansion above, within 1e-7);
//  - the summary of one repetition's series of invocations: the first `warmup` invocations are
//    discarded, delay = ran - due of the rest, intervals between consecutive measured runs, and
//    the deadlines that were never served (skipped) between measured invocations.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace ulsnet::jitter {

// Nearest-rank q-quantile (0 < q <= 1; q <= 0 gives the minimum) of `sorted` (ascending).
// 0 for an empty input.
double nearest_rank(std::span<const double> sorted, double q);

double mean(std::span<const double> v);            // 0 for an empty input
double sample_stddev(std::span<const double> v);   // sqrt(sum (x - mean)^2 / (n - 1)); 0 if n < 2

struct Distribution {
  size_t n = 0;
  double mean = 0, stddev = 0, p50 = 0, p99 = 0, max = 0;
};
Distribution describe(std::vector<double> values);  // all zero for an empty input

// mean +- t(n-1) * s / sqrt(n) of `v`. With fewer than two values there is no interval:
// defined = false and lo = hi = mean.
struct ConfidenceInterval {
  size_t n = 0;
  double mean = 0, lo = 0, hi = 0;
  bool defined = false;
};
ConfidenceInterval ci95(std::span<const double> v);

// One invocation of the service: when it was due and when it ran (CLOCK_MONOTONIC, ns), in the
// order they ran.
struct Invocation {
  uint64_t due_ns = 0, ran_ns = 0;
};

struct SeriesSummary {
  size_t recorded = 0;          // invocations in the series
  size_t warmup_discarded = 0;  // of them, discarded at the start
  size_t samples = 0;           // measured: recorded - warmup_discarded
  size_t expected = 0;          // what the run asked for (measured invocations)
  // Deadlines never served inside the measured part: between two consecutive measured
  // invocations whose due times are `gap` apart, floor(gap / period) - 1 deadlines were skipped
  // (a grid service has gap == period; a timer that skips what it missed restarts its grid).
  uint64_t missed = 0;
  // Measured invocations that ran before they were due: a grid service or a timer cannot, so
  // anything but 0 means the due times were reconstructed wrongly.
  size_t early = 0;
  std::vector<double> delay_us;     // ran - due of each measured invocation, microseconds
  std::vector<double> interval_us;  // ran - previous ran, between consecutive measured ones
  Distribution delay, interval;
};
// period_ns must be > 0 (std::invalid_argument otherwise).
SeriesSummary summarize_series(std::span<const Invocation> series, uint64_t period_ns, size_t warmup,
                               size_t expected);

}  // namespace ulsnet::jitter
