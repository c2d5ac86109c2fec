#include "bench/stats.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <stdexcept>

namespace ulsnet {

int64_t nearest_rank(std::span<const int64_t> sorted, double q) {
  const size_t n = sorted.size();
  // rank = ceil(q * n), 1-based; computed in integers where q * n is whole, so that 0.99 * 100
  // is rank 99 and not 100 by rounding.
  double r = std::ceil(q * double(n) - 1e-6);
  size_t rank = r < 1 ? 1 : size_t(r);
  if (rank > n) rank = n;
  return sorted[rank - 1];
}

nlohmann::json summarize(std::vector<int64_t> v) {
  if (v.empty()) return nlohmann::json::object();
  std::sort(v.begin(), v.end());
  long double sum = 0;
  for (int64_t x : v) sum += x;
  return {{"samples", v.size()},
          {"min", v.front()},
          {"mean", double(sum / (long double)v.size())},
          {"p50", nearest_rank(v, 0.50)},
          {"p90", nearest_rank(v, 0.90)},
          {"p99", nearest_rank(v, 0.99)},
          {"p999", nearest_rank(v, 0.999)},
          {"max", v.back()}};
}

// --- LogHistogram ----------------------------------------------------------------------------

size_t LogHistogram::index_of(uint64_t v) noexcept {
  if (v < kSub) return size_t(v);
  const int e = 63 - std::countl_zero(v);  // >= kSubBits
  const uint64_t m = v >> (e - kSubBits);  // in [kSub, 2 kSub)
  return size_t(kSub + uint64_t(e - kSubBits) * kSub + (m - kSub));
}

uint64_t LogHistogram::bucket_lower(size_t i) noexcept {
  if (i < kSub) return i;
  const uint64_t e = (i - kSub) / kSub;  // exponent - kSubBits
  const uint64_t m = kSub + (i - kSub) % kSub;
  return m << e;
}

uint64_t LogHistogram::bucket_upper(size_t i) noexcept {
  if (i < kSub) return i + 1;
  const uint64_t e = (i - kSub) / kSub;
  return bucket_lower(i) + (uint64_t(1) << e);
}

void LogHistogram::record(int64_t v, uint64_t n) {
  total_ += n;
  if (v < 0) {
    below_zero_ += n;
    return;
  }
  const size_t i = index_of(uint64_t(v));
  if (i >= counts_.size()) counts_.resize(i + 1, 0);
  counts_[i] += n;
}

void LogHistogram::merge(const LogHistogram& o) {
  if (o.counts_.size() > counts_.size()) counts_.resize(o.counts_.size(), 0);
  for (size_t i = 0; i < o.counts_.size(); ++i) counts_[i] += o.counts_[i];
  total_ += o.total_;
  below_zero_ += o.below_zero_;
}

int64_t LogHistogram::percentile(double q) const {
  if (total_ == 0) return -1;
  double r = std::ceil(q * double(total_) - 1e-6);
  uint64_t rank = r < 1 ? 1 : uint64_t(r);
  if (rank > total_) rank = total_;
  if (rank <= below_zero_) return -1;
  uint64_t seen = below_zero_;
  for (size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) return int64_t(bucket_upper(i) - 1);
  }
  return -1;  // unreachable: the counts add up to total_
}

nlohmann::json LogHistogram::to_json() const {
  nlohmann::json b = nlohmann::json::array();
  for (size_t i = 0; i < counts_.size(); ++i)
    if (counts_[i]) b.push_back({bucket_lower(i), counts_[i]});
  return {{"scheme", "log-linear: one bucket per value below 64, then 64 equal buckets per power of two; "
                     "[lower, n], a bucket ending where the next possible one starts"},
          {"unit", "ns"},
          {"count", total_},
          {"below_zero", below_zero_},
          {"buckets", b}};
}

LogHistogram LogHistogram::from_json(const nlohmann::json& j) {
  LogHistogram h;
  if (!j.is_object() || !j.contains("buckets") || !j["buckets"].is_array())
    throw std::invalid_argument("histogram: no buckets");
  uint64_t sum = 0;
  for (const auto& b : j["buckets"]) {
    if (!b.is_array() || b.size() != 2) throw std::invalid_argument("histogram: a bucket is not [lower, n]");
    const uint64_t lo = b[0].get<uint64_t>(), n = b[1].get<uint64_t>();
    if (bucket_lower(index_of(lo)) != lo)
      throw std::invalid_argument("histogram: " + std::to_string(lo) + " is not a bucket edge of this scheme");
    h.record(int64_t(lo), n);
    sum += n;
  }
  const uint64_t below = j.value("below_zero", uint64_t(0));
  if (below) h.record(-1, below);
  if (j.contains("count") && j["count"].get<uint64_t>() != sum + below)
    throw std::invalid_argument("histogram: count does not match its buckets");
  return h;
}

// --- Confidence intervals ------------------------------------------------------------------

double student_t975(int df) {
  // t(0.975, df) for df = 1..30 (checked against a numerical inversion of the t CDF).
  static constexpr double kTable[30] = {
      12.70620474, 4.30265273, 3.18244631, 2.77644511, 2.57058184, 2.44691185, 2.36462425, 2.30600414,
      2.26215716,  2.22813885, 2.20098516, 2.17881283, 2.16036866, 2.14478669, 2.13144955, 2.11990530,
      2.10981558,  2.10092204, 2.09302405, 2.08596345, 2.07961384, 2.07387307, 2.06865761, 2.06389856,
      2.05953855,  2.05552944, 2.05183052, 2.04840714, 2.04522964, 2.04227246};
  if (df < 1) throw std::invalid_argument("student_t975: df must be >= 1");
  if (df <= 30) return kTable[df - 1];
  // Cornish-Fisher expansion of t around the normal quantile z (Abramowitz & Stegun 26.7.5);
  // at df = 31 it is within 1e-7 of the exact value, and closer above.
  const double z = 1.959963984540054, v = double(df);
  const double z3 = z * z * z, z5 = z3 * z * z, z7 = z5 * z * z, z9 = z7 * z * z;
  const double g1 = (z3 + z) / 4;
  const double g2 = (5 * z5 + 16 * z3 + 3 * z) / 96;
  const double g3 = (3 * z7 + 19 * z5 + 17 * z3 - 15 * z) / 384;
  const double g4 = (79 * z9 + 776 * z7 + 1482 * z5 - 1920 * z3 - 945 * z) / 92160;
  return z + g1 / v + g2 / (v * v) + g3 / (v * v * v) + g4 / (v * v * v * v);
}

std::optional<double> median(std::vector<double> v) {
  if (v.empty()) return std::nullopt;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::optional<Interval95> mean_ci95(const std::vector<double>& v) {
  if (v.size() < 2) return std::nullopt;
  double m = 0;
  for (double x : v) m += x;
  m /= double(v.size());
  double ss = 0;
  for (double x : v) ss += (x - m) * (x - m);
  const double half = student_t975(int(v.size()) - 1) * std::sqrt(ss / double(v.size() - 1)) / std::sqrt(double(v.size()));
  return Interval95{m, m - half, m + half};
}

nlohmann::json to_json(const Interval95& i) {
  return {{"mean", i.mean}, {"lo", i.lo}, {"hi", i.hi}, {"level", 0.95}};
}

// --- DelayRecorder ---------------------------------------------------------------------------

DelayRecorder::DelayRecorder(uint64_t max_seq) : max_seq_(max_seq) {}

void DelayRecorder::record(uint64_t seq, int64_t d) {
  if (seq >= max_seq_ || d == kNone) return;
  if (seq >= delay_.size()) delay_.resize(std::min<uint64_t>(max_seq_, std::max<uint64_t>(seq + 1, 2 * delay_.size() + 4096)), kNone);
  delay_[seq] = d;
  ++timed_;
  if (any_) rfc3550_ += (std::fabs(double(d - prev_)) - rfc3550_) / 16.0;
  prev_ = d;
  any_ = true;
}

nlohmann::json DelayRecorder::report() const {
  std::vector<int64_t> lat, ipdv;
  lat.reserve(timed_);
  ipdv.reserve(timed_);
  LogHistogram lat_h;
  int64_t prev = kNone;
  for (int64_t d : delay_) {
    if (d != kNone) {
      lat.push_back(d);
      lat_h.record(d);
      if (prev != kNone) {
        const int64_t v = d > prev ? d - prev : prev - d;
        ipdv.push_back(v);
      }
    }
    prev = d;
  }
  nlohmann::json j;
  nlohmann::json l = summarize(lat);
  if (!lat.empty()) l["histogram"] = lat_h.to_json();
  l["untimed"] = untimed_;
  l["warmup_excluded"] = warmup_;
  j["latency_ns"] = l;
  nlohmann::json v = summarize(ipdv);
  v["definition"] = "RFC 3393/5481 IPDV: |delay[i] - delay[i-1]| over consecutive sequence numbers";
  j["ipdv_ns"] = v;
  nlohmann::json p = nlohmann::json::object();
  if (!lat.empty()) {
    // PDV = delay - min delay: its order statistics are the delay's shifted by the minimum.
    const int64_t mn = *std::min_element(lat.begin(), lat.end());
    std::vector<int64_t> pdv(lat);
    for (int64_t& x : pdv) x -= mn;
    p = summarize(std::move(pdv));
    p["min_delay_ns"] = mn;
  }
  p["definition"] = "RFC 5481 PDV: delay - the trial's minimum delay";
  j["pdv_ns"] = p;
  j["rfc3550_jitter_ns"] = {{"final_estimate", rfc3550_},
                            {"definition", "RFC 3550 running estimate (gain 1/16) in arrival order, its last "
                                           "value: describes the final few dozen packets only"}};
  return j;
}

}  // namespace ulsnet
