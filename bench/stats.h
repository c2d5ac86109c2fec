// Statistics of per-packet measurements, shared by every sink (network namespaces and VMs):
// exact order statistics, a log-spaced histogram that can be merged and re-read, and the delay
// and delay-variation metrics of RFC 3393 / RFC 5481.
//
// Percentiles are nearest-rank (the smallest value such that at least q of the values are less
// than or equal to it): always a value that occurred, never an interpolation. Percentiles of one
// trial are exact (computed from every value); percentiles of merged trials come from the
// histogram and carry its bucket width (<= 1/64 of the value).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include <nlohmann/json.hpp>

namespace ulsnet {

// The nearest-rank q-quantile (0 < q <= 1) of sorted values; `sorted` must not be empty.
int64_t nearest_rank(std::span<const int64_t> sorted, double q);

// {"samples", "min", "mean", "p50", "p90", "p99", "p999", "max"} of the values (exact); an empty
// object when there are none.
nlohmann::json summarize(std::vector<int64_t> values);

// The 0.975 quantile of Student's t distribution with df >= 1 degrees of freedom (the factor of
// a two-sided 95% confidence interval): tabulated to df 30, then a Cornish-Fisher expansion
// (error < 1e-7). Throws std::invalid_argument for df < 1.
double student_t975(int df);

// The median of `v` (the mean of the middle two for an even count); nullopt when `v` is empty.
std::optional<double> median(std::vector<double> v);

// The mean of `v` and its two-sided 95% confidence interval, mean +- t975(n-1) * s / sqrt(n)
// (s: the sample standard deviation); nullopt for fewer than two values. Assumes independent
// repetitions of roughly normal spread: with 3 repetitions the factor is 4.30.
struct Interval95 {
  double mean = 0, lo = 0, hi = 0;
};
std::optional<Interval95> mean_ci95(const std::vector<double>& v);
nlohmann::json to_json(const Interval95& i);  // {"mean", "lo", "hi", "level": 0.95}

// Log-linear histogram of non-negative integers (nanoseconds): values below 64 each have their
// own bucket, above that every power of two is cut into 64 equal buckets, so a bucket's width is
// at most 1/64 of its values. Negative values are counted apart (`below_zero`).
class LogHistogram {
 public:
  static constexpr int kSubBits = 6;
  static constexpr uint64_t kSub = uint64_t(1) << kSubBits;

  void record(int64_t v, uint64_t n = 1);
  void merge(const LogHistogram& o);
  uint64_t count() const noexcept { return total_; }
  uint64_t below_zero() const noexcept { return below_zero_; }

  static size_t index_of(uint64_t v) noexcept;
  static uint64_t bucket_lower(size_t i) noexcept;
  static uint64_t bucket_upper(size_t i) noexcept;  // exclusive

  // The nearest-rank q-quantile as the upper edge (exclusive) of the bucket holding it, minus 1:
  // never below the true value, at most 1/64 above it. -1 if no value was recorded; a rank that
  // falls among the negative values gives -1 too.
  int64_t percentile(double q) const;

  // {"scheme", "unit": "ns", "count", "below_zero", "buckets": [[lower, n]...]} (non-empty
  // buckets only, ascending; a bucket ends where the scheme's next one starts:
  // bucket_upper(index_of(lower))).
  nlohmann::json to_json() const;
  // Inverse of to_json; throws std::invalid_argument for buckets that are not this scheme's.
  static LogHistogram from_json(const nlohmann::json& j);

 private:
  std::vector<uint64_t> counts_;
  uint64_t total_ = 0, below_zero_ = 0;
};

// One-way delays of a numbered stream, by sequence number, as a sink records them.
//   latency_ns: the delay of every packet that has a receive time (summary + histogram);
//   ipdv_ns (RFC 3393, RFC 5481): |delay[i] - delay[i-1]| for every pair of consecutive
//            sequence numbers that both arrived with a time, over the whole trial (summary only);
//   pdv_ns (RFC 5481): delay - the smallest delay of the trial, its p50/p99/max;
//   rfc3550_jitter_ns: RFC 3550's running interarrival-jitter estimate (gain 1/16) in arrival
//            order, its final value: it describes the last few dozen packets only, and is kept as
//            a labelled extra.
class DelayRecorder {
 public:
  explicit DelayRecorder(uint64_t max_seq);
  // The first arrival of `seq` (the caller filters duplicates and out-of-range numbers).
  void record(uint64_t seq, int64_t delay_ns);
  // A packet that arrived without a usable receive time: counted, not in the statistics.
  void record_untimed() { ++untimed_; }
  // A packet of the warm-up: counted (`warmup_excluded`), not in the statistics.
  void record_warmup() { ++warmup_; }
  uint64_t timed() const noexcept { return timed_; }
  nlohmann::json report() const;

 private:
  static constexpr int64_t kNone = INT64_MIN;
  uint64_t max_seq_;
  std::vector<int64_t> delay_;  // by sequence number, grown as needed; kNone: no delay recorded
  uint64_t timed_ = 0, untimed_ = 0, warmup_ = 0;
  bool any_ = false;
  int64_t prev_ = 0;
  double rfc3550_ = 0;
};

}  // namespace ulsnet
