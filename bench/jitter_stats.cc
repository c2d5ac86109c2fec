#include "bench/jitter_stats.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace ulsnet::jitter {

double nearest_rank(std::span<const double> sorted, double q) {
  const size_t n = sorted.size();
  if (n == 0) return 0;
  // rank = ceil(q * n), 1-based, with a tolerance so that 0.99 * 100 is rank 99, not 100.
  const double r = std::ceil(q * double(n) - 1e-6);
  size_t rank = r < 1 ? 1 : size_t(r);
  if (rank > n) rank = n;
  return sorted[rank - 1];
}

double mean(std::span<const double> v) {
  if (v.empty()) return 0;
  double s = 0;
  for (double x : v) s += x;
  return s / double(v.size());
}

double sample_stddev(std::span<const double> v) {
  if (v.size() < 2) return 0;
  const double m = mean(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / double(v.size() - 1));
}

Distribution describe(std::vector<double> values) {
  Distribution d;
  if (values.empty()) return d;
  d.n = values.size();
  d.mean = mean(values);
  d.stddev = sample_stddev(values);
  std::sort(values.begin(), values.end());
  d.p50 = nearest_rank(values, 0.50);
  d.p99 = nearest_rank(values, 0.99);
  d.max = values.back();
  return d;
}

double student_t_975(unsigned df) {
  // t(0.975, df) for df = 1..30 (checked against a numerical inversion of the t CDF).
  static constexpr double kTable[30] = {
      12.70620474, 4.30265273, 3.18244631, 2.77644511, 2.57058184, 2.44691185, 2.36462425, 2.30600414,
      2.26215716,  2.22813885, 2.20098516, 2.17881283, 2.16036866, 2.14478669, 2.13144955, 2.11990530,
      2.10981558,  2.10092204, 2.09302405, 2.08596345, 2.07961384, 2.07387307, 2.06865761, 2.06389856,
      2.05953855,  2.05552944, 2.05183052, 2.04840714, 2.04522964, 2.04227246};
  if (df == 0) throw std::invalid_argument("student_t_975: no degrees of freedom");
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

ConfidenceInterval ci95(std::span<const double> v) {
  ConfidenceInterval c;
  c.n = v.size();
  c.mean = mean(v);
  c.lo = c.hi = c.mean;
  if (v.size() < 2) return c;
  const double half = student_t_975(unsigned(v.size() - 1)) * sample_stddev(v) / std::sqrt(double(v.size()));
  c.lo = c.mean - half;
  c.hi = c.mean + half;
  c.defined = true;
  return c;
}

SeriesSummary summarize_series(std::span<const Invocation> series, uint64_t period_ns, size_t warmup,
                               size_t expected) {
  if (period_ns == 0) throw std::invalid_argument("summarize_series: period 0");
  SeriesSummary s;
  s.recorded = series.size();
  s.warmup_discarded = std::min(warmup, series.size());
  s.samples = series.size() - s.warmup_discarded;
  s.expected = expected;
  for (size_t i = s.warmup_discarded; i < series.size(); ++i) {
    const Invocation& x = series[i];
    s.delay_us.push_back((double(x.ran_ns) - double(x.due_ns)) / 1e3);
    if (x.ran_ns < x.due_ns) ++s.early;
    if (i == s.warmup_discarded) continue;  // the first measured one has no measured predecessor
    const Invocation& p = series[i - 1];
    s.interval_us.push_back((double(x.ran_ns) - double(p.ran_ns)) / 1e3);
    if (x.due_ns > p.due_ns) {
      const uint64_t slots = (x.due_ns - p.due_ns) / period_ns;
      if (slots > 1) s.missed += slots - 1;
    }
  }
  s.delay = describe(s.delay_us);
  s.interval = describe(s.interval_us);
  return s;
}

}  // namespace ulsnet::jitter
