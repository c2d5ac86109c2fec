// Verdicts on the paper's claims, from measured ratios and their intervals (pure, unit-tested).
//
// A comparison is one measured ratio, subject / baseline, with the interval the measurement
// allows: from search brackets (a ratio of two brackets), a bootstrap confidence interval, or
// the range over repeated runs. Its verdict, for a claim that the subject is better ("higher"
// for throughput, "lower" for cost and jitter), against the claim's goal g and parity 1:
//
//   higher is better                      lower is better
//   holds      lo >= g                    hi <= g
//   partly     lo > 1 (better, not g)     hi < 1
//   does not   hi <= 1 (not better)       lo >= 1
//   undecided  the interval contains 1, or nothing was measured
//
// An open end (a censored bracket) is an infinite bound (higher) or zero (lower). A claim's
// verdict combines its comparisons (combine()).
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace ulsnet::paper {

enum class Verdict { kHolds, kPartly, kDoesNot, kUndecided };
enum class Better { kHigher, kLower };

const char* verdict_name(Verdict v);  // "holds", "partly", "does not", "undecided"

struct Interval {
  double lo = 0, hi = std::numeric_limits<double>::infinity();
  std::string kind;  // "brackets", "range over 3 runs", "bootstrap 95% CI", "one value"
};

struct Comparison {
  std::string name;      // what is compared, in words
  std::string evidence;  // where the numbers come from (file, hosts)
  Better better = Better::kHigher;
  double goal = 1;                 // the claim's (the project's target) threshold
  std::optional<double> value;     // the point estimate
  std::optional<Interval> interval;  // absent: the value alone (a degenerate interval)
  std::string note;                // a caveat the reader needs
};

struct Judged {
  Verdict verdict = Verdict::kUndecided;
  std::string reason;
};

Judged judge(const Comparison& c);

// A claim's verdict from its comparisons' (and checks'): all holds -> holds; none decided ->
// undecided; every decided one "does not" -> does not when those are at least half of all,
// else undecided; any other mixture -> partly.
Verdict combine(const std::vector<Verdict>& parts);

// The ratio a / b of two brackets [a_lo, a_hi] and [b_lo, b_hi] (hi = +inf: open):
// [a_lo / b_hi, a_hi / b_lo] (0 and +inf where a bound is open or zero).
Interval bracket_ratio(double a_lo, double a_hi, double b_lo, double b_hi);

// The union of intervals (repeated runs): [min lo, max hi]; kind "range over N runs".
Interval range_over(const std::vector<Interval>& runs);

// Percentile bootstrap (95%) of stddev(a) / stddev(b), resampling each sample with replacement
// `resamples` times with a fixed-seed generator (reproducible). Needs >= 2 values in each.
std::optional<Interval> bootstrap_stddev_ratio(const std::vector<double>& a, const std::vector<double>& b,
                                               int resamples = 2000, uint64_t seed = 1);

// The same for mean(a) / mean(b) (e.g. how much sooner one service runs than another).
std::optional<Interval> bootstrap_mean_ratio(const std::vector<double>& a, const std::vector<double>& b,
                                             int resamples = 2000, uint64_t seed = 1);

double stddev(const std::vector<double>& v);  // sample standard deviation (n - 1); 0 below 2
double mean_of(const std::vector<double>& v);  // 0 when empty

}  // namespace ulsnet::paper
