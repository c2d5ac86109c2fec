// The statistics every result's latency and delay variation come from, on inputs whose answers
// are known exactly.
#include "bench/stats.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <random>

namespace ulsnet {
namespace {

TEST(NearestRank, OneToHundred) {
  std::vector<int64_t> v(100);
  std::iota(v.begin(), v.end(), 1);
  EXPECT_EQ(nearest_rank(v, 0.50), 50);
  EXPECT_EQ(nearest_rank(v, 0.90), 90);
  EXPECT_EQ(nearest_rank(v, 0.99), 99);
  EXPECT_EQ(nearest_rank(v, 0.999), 100);
  EXPECT_EQ(nearest_rank(v, 1.0), 100);
  EXPECT_EQ(nearest_rank(v, 0.001), 1);
}

TEST(NearestRank, SmallSamplesNeverInterpolate) {
  std::vector<int64_t> two = {10, 20};
  EXPECT_EQ(nearest_rank(two, 0.5), 10);  // rank ceil(1.0) = 1
  EXPECT_EQ(nearest_rank(two, 0.51), 20);
  std::vector<int64_t> one = {7};
  EXPECT_EQ(nearest_rank(one, 0.99), 7);
}

TEST(Summarize, ExactOnAKnownSample) {
  std::vector<int64_t> v(1000);
  std::iota(v.begin(), v.end(), 1);
  std::shuffle(v.begin(), v.end(), std::mt19937(1));
  nlohmann::json s = summarize(v);
  EXPECT_EQ(s["samples"], 1000);
  EXPECT_EQ(s["min"], 1);
  EXPECT_EQ(s["p50"], 500);
  EXPECT_EQ(s["p90"], 900);
  EXPECT_EQ(s["p99"], 990);
  EXPECT_EQ(s["p999"], 999);
  EXPECT_EQ(s["max"], 1000);
  EXPECT_DOUBLE_EQ(s["mean"].get<double>(), 500.5);
  EXPECT_TRUE(summarize({}).empty());
}

TEST(LogHistogram, BucketsTileTheLineWithBoundedWidth) {
  // Consecutive buckets share edges, and each is at most 1/64 of its lower edge wide.
  for (size_t i = 0; i < 64 * 50; ++i) {
    ASSERT_EQ(LogHistogram::bucket_upper(i), LogHistogram::bucket_lower(i + 1)) << i;
    const uint64_t lo = LogHistogram::bucket_lower(i), w = LogHistogram::bucket_upper(i) - lo;
    if (lo >= 64) {
      EXPECT_LE(w * 64, lo) << i;
    }
    EXPECT_EQ(LogHistogram::index_of(lo), i);
    EXPECT_EQ(LogHistogram::index_of(lo + w - 1), i);
  }
  EXPECT_EQ(LogHistogram::index_of(0), 0u);
  EXPECT_EQ(LogHistogram::index_of(63), 63u);
  EXPECT_EQ(LogHistogram::index_of(64), 64u);
  EXPECT_EQ(LogHistogram::index_of(127), 127u);
  EXPECT_EQ(LogHistogram::bucket_upper(LogHistogram::index_of(128)) - 128, 2u);
}

TEST(LogHistogram, PercentileIsTheBucketHoldingTheNearestRank) {
  LogHistogram h;
  for (int64_t v = 1; v <= 100; ++v) h.record(v);  // every value its own bucket
  EXPECT_EQ(h.percentile(0.5), 50);
  EXPECT_EQ(h.percentile(0.99), 99);
  EXPECT_EQ(h.percentile(1.0), 100);
  LogHistogram big;
  big.record(1'000'000, 99);
  big.record(5'000'000, 1);
  const int64_t p99 = big.percentile(0.99), p100 = big.percentile(1.0);
  EXPECT_GE(p99, 1'000'000);
  EXPECT_LE(p99, 1'000'000 + 1'000'000 / 64);
  EXPECT_GE(p100, 5'000'000);
  EXPECT_LE(p100, 5'000'000 + 5'000'000 / 64);
  EXPECT_EQ(LogHistogram().percentile(0.5), -1);
}

TEST(LogHistogram, NegativeValuesAreCountedApart) {
  LogHistogram h;
  h.record(-5, 3);
  h.record(10, 1);
  EXPECT_EQ(h.count(), 4u);
  EXPECT_EQ(h.below_zero(), 3u);
  EXPECT_EQ(h.percentile(0.5), -1);
  EXPECT_EQ(h.percentile(1.0), 10);
}

TEST(LogHistogram, JsonRoundTripAndMerge) {
  LogHistogram a, b;
  std::mt19937_64 rng(7);
  for (int i = 0; i < 10000; ++i) a.record(int64_t(rng() % 50'000'000));
  for (int i = 0; i < 5000; ++i) b.record(int64_t(rng() % 1'000));
  b.record(-1);
  LogHistogram back = LogHistogram::from_json(a.to_json());
  EXPECT_EQ(back.to_json(), a.to_json());
  LogHistogram m = a;
  m.merge(b);
  EXPECT_EQ(m.count(), 15001u);
  EXPECT_EQ(m.below_zero(), 1u);
  LogHistogram m2 = LogHistogram::from_json(a.to_json());
  m2.merge(LogHistogram::from_json(b.to_json()));
  EXPECT_EQ(m2.to_json(), m.to_json());
}

TEST(LogHistogram, RefusesBucketsOfAnotherScheme) {
  nlohmann::json j = {{"buckets", {{1001, 5}}}};  // not a bucket edge of this scheme
  EXPECT_THROW(LogHistogram::from_json(j), std::invalid_argument);
  EXPECT_THROW(LogHistogram::from_json({{"buckets", {{1000, 1010, 5}}}}), std::invalid_argument);
  nlohmann::json k = {{"count", 6}, {"buckets", {{5, 5}}}};
  EXPECT_THROW(LogHistogram::from_json(k), std::invalid_argument);
  EXPECT_THROW(LogHistogram::from_json(nlohmann::json::array()), std::invalid_argument);
}

TEST(DelayRecorder, LatencyIpdvAndPdvOfAKnownStream) {
  // Delays by sequence number: 100, 130, (lost), 110, 190; received out of order.
  DelayRecorder r(8);
  r.record(1, 130);
  r.record(0, 100);
  r.record(4, 190);
  r.record(3, 110);
  r.record_untimed();
  nlohmann::json j = r.report();
  EXPECT_EQ(j["latency_ns"]["samples"], 4);
  EXPECT_EQ(j["latency_ns"]["min"], 100);
  EXPECT_EQ(j["latency_ns"]["p50"], 110);
  EXPECT_EQ(j["latency_ns"]["max"], 190);
  EXPECT_EQ(j["latency_ns"]["untimed"], 1);
  EXPECT_EQ(j["latency_ns"]["histogram"]["count"], 4);
  // Pairs (0,1) and (3,4) only: the loss of 2 breaks (1,2) and (2,3).
  EXPECT_EQ(j["ipdv_ns"]["samples"], 2);
  EXPECT_EQ(j["ipdv_ns"]["p50"], 30);
  EXPECT_EQ(j["ipdv_ns"]["max"], 80);
  // PDV: delay - 100 = 0, 30, 10, 90.
  EXPECT_EQ(j["pdv_ns"]["min_delay_ns"], 100);
  EXPECT_EQ(j["pdv_ns"]["p50"], 10);
  EXPECT_EQ(j["pdv_ns"]["p99"], 90);
  // RFC 3550 in arrival order: |100-130| = 30 -> 30/16; |190-100| = 90; |110-190| = 80.
  double e = 0;
  for (double d : {30.0, 90.0, 80.0}) e += (d - e) / 16;
  EXPECT_DOUBLE_EQ(j["rfc3550_jitter_ns"]["final_estimate"].get<double>(), e);
}

TEST(DelayRecorder, ConstantDelayHasNoVariation) {
  DelayRecorder r(1000);
  for (uint64_t s = 0; s < 1000; ++s) r.record(s, 5000);
  nlohmann::json j = r.report();
  EXPECT_EQ(j["ipdv_ns"]["samples"], 999);
  EXPECT_EQ(j["ipdv_ns"]["max"], 0);
  EXPECT_EQ(j["pdv_ns"]["max"], 0);
  EXPECT_EQ(j["latency_ns"]["p99"], 5000);
}

TEST(DelayRecorder, OutOfRangeSequenceNumbersAreIgnored) {
  DelayRecorder r(2);
  r.record(2, 10);
  r.record(1'000'000, 10);
  EXPECT_EQ(r.timed(), 0u);
  EXPECT_TRUE(r.report()["ipdv_ns"].contains("definition"));
}


TEST(ConfidenceInterval, StudentQuantiles) {
  EXPECT_NEAR(student_t975(1), 12.7062, 1e-4);
  EXPECT_NEAR(student_t975(2), 4.3027, 1e-4);
  EXPECT_NEAR(student_t975(10), 2.2281, 1e-4);
  EXPECT_NEAR(student_t975(30), 2.0423, 1e-4);
  // Above the table: the expansion, against a numerical inversion of the t CDF.
  EXPECT_NEAR(student_t975(31), 2.03951345, 1e-6);
  EXPECT_NEAR(student_t975(40), 2.02107539, 1e-6);
  EXPECT_NEAR(student_t975(120), 1.97993041, 1e-6);
  EXPECT_NEAR(student_t975(1000), 1.96233908, 1e-6);
  EXPECT_NEAR(student_t975(1000000), 1.959964, 1e-5);  // the normal quantile
  // Monotone decreasing in df, across the table's edge too.
  for (int df = 1; df < 200; ++df) EXPECT_GT(student_t975(df), student_t975(df + 1)) << df;
  EXPECT_THROW(student_t975(0), std::invalid_argument);
}

TEST(ConfidenceInterval, MeanPlusMinusTTimesStandardError) {
  auto ci = mean_ci95({1, 2, 3});
  ASSERT_TRUE(ci);
  EXPECT_DOUBLE_EQ(ci->mean, 2);
  EXPECT_NEAR(ci->hi - 2, 4.30265273 / std::sqrt(3.0), 1e-12);  // s = 1
  EXPECT_NEAR(2 - ci->lo, 4.30265273 / std::sqrt(3.0), 1e-12);
  auto flat = mean_ci95({5, 5, 5, 5});
  ASSERT_TRUE(flat);
  EXPECT_EQ(flat->lo, 5);
  EXPECT_EQ(flat->hi, 5);
  EXPECT_FALSE(mean_ci95({7}));
  EXPECT_FALSE(mean_ci95({}));
  nlohmann::json j = to_json(*ci);
  EXPECT_EQ(j["level"], 0.95);
  EXPECT_DOUBLE_EQ(j["mean"].get<double>(), 2);
}

TEST(Median, MiddleValueOrMeanOfTheMiddleTwoNoneWhenEmpty) {
  EXPECT_EQ(median({3, 1, 2}), 2.0);
  EXPECT_EQ(median({4, 1, 3, 2}), 2.5);
  EXPECT_EQ(median({7}), 7.0);
  EXPECT_FALSE(median({}));
}

}  // namespace
}  // namespace ulsnet
