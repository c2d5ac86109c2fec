#include "paper/verdict.h"

#include <algorithm>
#include <cmath>
#include <random>

#include <fmt/core.h>

namespace ulsnet::paper {

const char* verdict_name(Verdict v) {
  switch (v) {
    case Verdict::kHolds: return "holds";
    case Verdict::kPartly: return "partly";
    case Verdict::kDoesNot: return "does not";
    case Verdict::kUndecided: return "undecided";
  }
  return "?";
}

namespace {
std::string fmt_bound(double x) { return std::isinf(x) ? "inf" : fmt::format("{:.2f}", x); }
}  // namespace

Judged judge(const Comparison& c) {
  if (!c.value && !c.interval) return {Verdict::kUndecided, "not measured"};
  Interval iv = c.interval ? *c.interval : Interval{*c.value, *c.value, "one value"};
  if (std::isnan(iv.lo) || std::isnan(iv.hi) || iv.lo > iv.hi || iv.lo < 0)
    return {Verdict::kUndecided, "no valid interval"};
  const std::string where = fmt::format("[{}, {}] ({})", fmt_bound(iv.lo), fmt_bound(iv.hi), iv.kind);
  if (c.better == Better::kHigher) {
    if (iv.lo >= c.goal) return {Verdict::kHolds, fmt::format("{} at or above the goal {:g}", where, c.goal)};
    if (iv.lo > 1) return {Verdict::kPartly, fmt::format("{} above 1 but not wholly at the goal {:g}", where, c.goal)};
    if (iv.hi <= 1) return {Verdict::kDoesNot, fmt::format("{}: not higher", where)};
    return {Verdict::kUndecided, fmt::format("{} contains 1", where)};
  }
  if (iv.hi <= c.goal) return {Verdict::kHolds, fmt::format("{} at or below the goal {:g}", where, c.goal)};
  if (iv.hi < 1) return {Verdict::kPartly, fmt::format("{} below 1 but not wholly at the goal {:g}", where, c.goal)};
  if (iv.lo >= 1) return {Verdict::kDoesNot, fmt::format("{}: not lower", where)};
  return {Verdict::kUndecided, fmt::format("{} contains 1", where)};
}

Verdict combine(const std::vector<Verdict>& parts) {
  size_t holds = 0, partly = 0, doesnot = 0;
  for (Verdict v : parts) {
    holds += v == Verdict::kHolds;
    partly += v == Verdict::kPartly;
    doesnot += v == Verdict::kDoesNot;
  }
  if (parts.empty() || holds + partly + doesnot == 0) return Verdict::kUndecided;
  if (holds == parts.size()) return Verdict::kHolds;
  if (holds + partly == 0) return 2 * doesnot >= parts.size() ? Verdict::kDoesNot : Verdict::kUndecided;
  return Verdict::kPartly;
}

Interval bracket_ratio(double a_lo, double a_hi, double b_lo, double b_hi) {
  const double inf = std::numeric_limits<double>::infinity();
  Interval r;
  r.kind = "brackets";
  r.lo = std::isinf(b_hi) || b_hi <= 0 ? 0 : a_lo / b_hi;
  r.hi = std::isinf(a_hi) || b_lo <= 0 ? inf : a_hi / b_lo;
  return r;
}

Interval range_over(const std::vector<Interval>& runs) {
  Interval r;
  r.lo = std::numeric_limits<double>::infinity();
  r.hi = 0;
  for (const Interval& i : runs) r.lo = std::min(r.lo, i.lo), r.hi = std::max(r.hi, i.hi);
  if (runs.empty()) r.lo = 0, r.hi = std::numeric_limits<double>::infinity();
  r.kind = fmt::format("range over {} runs", runs.size());
  return r;
}

double stddev(const std::vector<double>& v) {
  if (v.size() < 2) return 0;
  double mean = 0;
  for (double x : v) mean += x;
  mean /= double(v.size());
  double ss = 0;
  for (double x : v) ss += (x - mean) * (x - mean);
  return std::sqrt(ss / double(v.size() - 1));
}

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / double(v.size());
}

namespace {

// Percentile bootstrap (95%) of stat(a) / stat(b); resamples whose stat(b) is not positive are
// left out (and the interval is refused when they are half or more).
template <typename Stat>
std::optional<Interval> bootstrap_ratio(const std::vector<double>& a, const std::vector<double>& b, Stat stat,
                                        int resamples, uint64_t seed) {
  if (a.size() < 2 || b.size() < 2 || resamples < 20) return std::nullopt;
  std::mt19937_64 rng(seed);
  std::vector<double> ratios, ra(a.size()), rb(b.size());
  ratios.reserve(size_t(resamples));
  std::uniform_int_distribution<size_t> pa(0, a.size() - 1), pb(0, b.size() - 1);
  for (int i = 0; i < resamples; ++i) {
    for (double& x : ra) x = a[pa(rng)];
    for (double& x : rb) x = b[pb(rng)];
    const double sb = stat(rb);
    if (sb > 0) ratios.push_back(stat(ra) / sb);
  }
  if (ratios.size() < size_t(resamples) / 2) return std::nullopt;
  std::sort(ratios.begin(), ratios.end());
  auto at = [&](double q) { return ratios[std::min(ratios.size() - 1, size_t(q * double(ratios.size())))]; };
  return Interval{at(0.025), at(0.975), fmt::format("bootstrap 95% CI, {} resamples", ratios.size())};
}

}  // namespace

std::optional<Interval> bootstrap_stddev_ratio(const std::vector<double>& a, const std::vector<double>& b,
                                               int resamples, uint64_t seed) {
  return bootstrap_ratio(a, b, [](const std::vector<double>& v) { return stddev(v); }, resamples, seed);
}

std::optional<Interval> bootstrap_mean_ratio(const std::vector<double>& a, const std::vector<double>& b,
                                             int resamples, uint64_t seed) {
  return bootstrap_ratio(a, b, mean_of, resamples, seed);
}

}  // namespace ulsnet::paper
