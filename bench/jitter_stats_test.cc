// bench/jitter_stats.h on inputs whose answers are known.
#include "bench/jitter_stats.h"

#include <cmath>
#include <stdexcept>
#include <vector>

#include <gtest/gtest.h>

namespace ulsnet::jitter {
namespace {

TEST(JitterStats, NearestRankPercentiles) {
  std::vector<double> v;
  for (int i = 1; i <= 100; ++i) v.push_back(i);
  EXPECT_EQ(nearest_rank(v, 0.50), 50);
  EXPECT_EQ(nearest_rank(v, 0.99), 99);  // not 100 by rounding 0.99 * 100
  EXPECT_EQ(nearest_rank(v, 1.0), 100);
  EXPECT_EQ(nearest_rank(v, 0.001), 1);
  EXPECT_EQ(nearest_rank(v, 0.0), 1);
  const std::vector<double> three = {10, 20, 30};
  EXPECT_EQ(nearest_rank(three, 0.50), 20);  // rank ceil(1.5) = 2
  EXPECT_EQ(nearest_rank(three, 0.99), 30);
  EXPECT_EQ(nearest_rank(three, 0.34), 20);  // rank ceil(1.02) = 2
  EXPECT_EQ(nearest_rank(three, 0.33), 10);
  EXPECT_EQ(nearest_rank(std::vector<double>{}, 0.5), 0);
}

TEST(JitterStats, MeanAndSampleStddev) {
  const std::vector<double> v = {2, 4, 4, 4, 5, 5, 7, 9};
  EXPECT_DOUBLE_EQ(mean(v), 5);
  EXPECT_NEAR(sample_stddev(v), std::sqrt(32.0 / 7.0), 1e-12);  // n - 1, not n
  EXPECT_EQ(sample_stddev(std::vector<double>{3}), 0);
  EXPECT_EQ(mean(std::vector<double>{}), 0);
}

TEST(JitterStats, DescribeSortsAndSummarizes) {
  const Distribution d = describe({9, 1, 5, 3, 7});
  EXPECT_EQ(d.n, 5u);
  EXPECT_DOUBLE_EQ(d.mean, 5);
  EXPECT_NEAR(d.stddev, std::sqrt(10.0), 1e-12);
  EXPECT_EQ(d.p50, 5);
  EXPECT_EQ(d.p99, 9);
  EXPECT_EQ(d.max, 9);
  const Distribution e = describe({});
  EXPECT_EQ(e.n, 0u);
  EXPECT_EQ(e.max, 0);
}

TEST(JitterStats, ConfidenceInterval) {
  const ConfidenceInterval c = ci95(std::vector<double>{1, 2, 3});
  EXPECT_TRUE(c.defined);
  EXPECT_EQ(c.n, 3u);
  EXPECT_DOUBLE_EQ(c.mean, 2);
  const double half = 4.30265273 * 1.0 / std::sqrt(3.0);  // t(2) * s / sqrt(n), s = 1
  EXPECT_NEAR(c.lo, 2 - half, 1e-6);
  EXPECT_NEAR(c.hi, 2 + half, 1e-6);
  EXPECT_NEAR(c.hi - c.lo, 2 * 2.48414, 1e-4);

  const ConfidenceInterval same = ci95(std::vector<double>{4, 4, 4, 4});
  EXPECT_TRUE(same.defined);
  EXPECT_EQ(same.lo, 4);
  EXPECT_EQ(same.hi, 4);

  const ConfidenceInterval one = ci95(std::vector<double>{7});
  EXPECT_FALSE(one.defined);
  EXPECT_EQ(one.mean, 7);
  EXPECT_EQ(one.lo, 7);
  EXPECT_EQ(one.hi, 7);
}

// A grid service: due every 1000 ns from 1000, running `late[i]` ns after each deadline.
std::vector<Invocation> grid(const std::vector<uint64_t>& late) {
  std::vector<Invocation> s;
  for (size_t i = 0; i < late.size(); ++i) s.push_back({1000 * (i + 1), 1000 * (i + 1) + late[i]});
  return s;
}

TEST(JitterStats, SeriesDelaysIntervalsAndWarmup) {
  // The first two are the warm-up: their large delays must not count.
  const auto s = summarize_series(grid({90000, 50000, 100, 300, 200, 400}), 1000, 2, 4);
  EXPECT_EQ(s.recorded, 6u);
  EXPECT_EQ(s.warmup_discarded, 2u);
  EXPECT_EQ(s.samples, 4u);
  EXPECT_EQ(s.expected, 4u);
  EXPECT_EQ(s.missed, 0u);
  EXPECT_EQ(s.early, 0u);
  ASSERT_EQ(s.delay_us.size(), 4u);
  EXPECT_DOUBLE_EQ(s.delay_us[0], 0.1);
  EXPECT_DOUBLE_EQ(s.delay.max, 0.4);
  EXPECT_DOUBLE_EQ(s.delay.mean, 0.25);
  EXPECT_DOUBLE_EQ(s.delay.p50, 0.2);
  // Intervals only between measured invocations: 1.2, 0.9, 1.2 us.
  ASSERT_EQ(s.interval_us.size(), 3u);
  EXPECT_DOUBLE_EQ(s.interval_us[0], 1.2);
  EXPECT_DOUBLE_EQ(s.interval_us[1], 0.9);
  EXPECT_NEAR(s.interval.mean, 1.1, 1e-12);

  // A warm-up longer than the series: nothing measured, nothing invented.
  const auto none = summarize_series(grid({1, 2}), 1000, 5, 10);
  EXPECT_EQ(none.warmup_discarded, 2u);
  EXPECT_EQ(none.samples, 0u);
  EXPECT_EQ(none.delay.n, 0u);
  EXPECT_EQ(none.missed, 0u);
  EXPECT_THROW(summarize_series(grid({1}), 0, 0, 1), std::invalid_argument);
}

TEST(JitterStats, SeriesCountsSkippedDeadlines) {
  // Period 1000: served at due 1000 and 2000; the one due at 2000 ran at 4500, so the dispatcher
  // skipped 3000 and 4000 and restarted its grid at 4500 + 1000 = 5500; then 6500.
  std::vector<Invocation> s = {{1000, 1010}, {2000, 4500}, {5500, 5510}, {6500, 6520}};
  const auto a = summarize_series(s, 1000, 0, 4);
  EXPECT_EQ(a.missed, 2u);  // gap 3500: floor(3.5) - 1
  EXPECT_EQ(a.samples, 4u);
  EXPECT_DOUBLE_EQ(a.delay.max, 2.5);

  // A gap just short of two periods skips nothing; exactly three periods skips two.
  std::vector<Invocation> t = {{1000, 1000}, {2999, 3000}, {5999, 6000}};
  EXPECT_EQ(summarize_series(t, 1000, 0, 3).missed, 2u);

  // A run before its due time is counted (and its negative delay kept).
  std::vector<Invocation> e = {{1000, 1100}, {2000, 1900}, {3000, 3000}};
  const auto c = summarize_series(e, 1000, 0, 3);
  EXPECT_EQ(c.early, 1u);
  EXPECT_DOUBLE_EQ(c.delay_us[1], -0.1);

  // Skips before the first measured invocation belong to the warm-up.
  const auto b = summarize_series(s, 1000, 2, 2);
  EXPECT_EQ(b.missed, 0u);
  EXPECT_EQ(b.samples, 2u);
}

}  // namespace
}  // namespace ulsnet::jitter
