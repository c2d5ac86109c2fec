#include "bench/jitter_stats.h"

#include "bench/stats.h"

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

ConfidenceInterval ci95(std::span<const double> v) {
  ConfidenceInterval c;
  c.n = v.size();
  c.mean = mean(v);
  c.lo = c.hi = c.mean;
  if (v.size() < 2) return c;
  const double half = ulsnet::student_t975(int(v.size() - 1)) * sample_stddev(v) / std::sqrt(double(v.size()));
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
