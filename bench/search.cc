#include "bench/search.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <optional>

namespace ulsnet {
namespace {

enum class Verdict { kPass, kFail, kShort, kError };

const char* verdict_name(Verdict v) {
  switch (v) {
    case Verdict::kPass: return "pass";
    case Verdict::kFail: return "fail";
    case Verdict::kShort: return "short";
    case Verdict::kError: return "error";
  }
  return "?";
}

struct Trial {
  double rate, duration, offered, loss;
  bool error;
  size_t step;
  double tester_loss = 0;
};

Verdict classify(const Trial& t, double loss_criterion, double tolerance) {
  if (t.error) return Verdict::kError;
  if (t.loss - t.tester_loss > loss_criterion) return Verdict::kFail;
  if (t.loss > loss_criterion) return Verdict::kShort;  // the tester's own losses
  if (t.offered < tolerance * t.rate) return Verdict::kShort;
  return Verdict::kPass;
}

// The largest loss any criterion allows (0 with none).
double loosest_loss(const std::vector<SearchCriterion>& criteria) {
  double c = 0;
  for (const auto& k : criteria) c = std::max(c, k.loss);
  return c;
}

// The tester's losses took the trial over the criterion, which the device's alone did not
// exceed: for that criterion the tester was the limit at this rate.
bool tester_limited_for(const Trial& t, double criterion_loss) {
  if (t.error || t.tester_loss <= 0) return false;
  return t.loss > criterion_loss && t.loss - t.tester_loss <= criterion_loss;
}

// The same under the loosest criterion: the step's "tester_limited" flag.
bool tester_limited(const Trial& t, const std::vector<SearchCriterion>& criteria) {
  return !criteria.empty() && tester_limited_for(t, loosest_loss(criteria));
}

// A step record: what the search asked, then the trial's own sample fields (which never
// overwrite the search's).
nlohmann::json step_record(size_t step, const std::string& phase, double rate, double d, const TrialOutcome& out) {
  nlohmann::json j = {{"step", step}, {"phase", phase}, {"rate_pps", rate}, {"duration_s", d}};
  if (!out.disturbed.empty()) j["disturbed"] = out.disturbed;
  return j;
}
void add_sample(nlohmann::json& step, const TrialOutcome& out) {
  if (!out.sample.is_object()) return;
  for (auto it = out.sample.begin(); it != out.sample.end(); ++it)
    if (!step.contains(it.key())) step[it.key()] = *it;
}

// A load's verdict at one duration: the majority of its trials there (see load_verdict()), and
// one trial of that verdict to point at.
struct Load {
  double rate = 0;
  Verdict verdict = Verdict::kShort;
  const Trial* witness = nullptr;
};

struct Bracket {
  std::optional<Load> lo;  // the highest passing load below hi
  std::optional<Load> hi;  // the lowest failing load
};

class Search {
 public:
  Search(const SearchOptions& o, const Measurer& m, SearchResult& r) : o_(o), measure_(m), r_(r) {
    trials_.reserve(size_t(std::max(o.max_trials, 1)));  // pointers into trials_ stay valid
    tester_.resize(o.criteria.size());
  }

  void run() {
    if (o_.durations.empty() || o_.criteria.empty()) {
      r_.error = "search: no durations or no criteria";
      return;
    }
    // The ceiling: one unpaced trial in the same setting as every other step.
    const Trial* c = trial(0, o_.durations.front(), "ceiling: unpaced");
    if (!c || c->error) return;
    r_.ceiling_pps = c->offered;
    ceiling_ = o_.max_rate_pps > 0 ? std::min(c->offered, o_.max_rate_pps) : c->offered;
    if (ceiling_ < o_.min_rate_pps) {
      r_.error = "search: the generator offered " + std::to_string(int64_t(ceiling_)) +
                 " pps unpaced, below the lowest rate the search tries";
      return;
    }
    const double first_guess = std::clamp(c->offered * (1 - c->loss), o_.min_rate_pps, ceiling_);
    std::vector<const SearchCriterion*> order;
    for (const auto& k : o_.criteria) order.push_back(&k);
    std::stable_sort(order.begin(), order.end(),
                     [](const SearchCriterion* a, const SearchCriterion* b) { return a->loss > b->loss; });
    std::vector<std::pair<double, double>> hints(o_.criteria.size(), {first_guess, 0});
    std::vector<double> widths(o_.criteria.size(), ceiling_ / 4);
    for (size_t p = 0; p < o_.durations.size(); ++p) {
      const double d = o_.durations[p];
      const std::string phase = p + 1 == o_.durations.size() ? "final" : "narrowing";
      for (const SearchCriterion* k : order) {
        const size_t ki = size_t(k - o_.criteria.data());
        narrow(*k, d, phase, hints[ki], widths[ki]);
        if (!r_.error.empty() || out_of_trials_) return;
        const Bracket b = bracket(*k, d);
        hints[ki] = {b.lo ? b.lo->rate : 0, b.hi ? b.hi->rate : 0};
        if (b.lo && b.hi) widths[ki] = std::max(b.hi->rate - b.lo->rate, o_.precision * b.hi->rate);
      }
    }
  }

  void finish() {
    r_.ceiling_final_pps = o_.criteria.empty() ? ceiling_ : ceiling_for(loosest());
    const double final_d = o_.durations.empty() ? 0 : o_.durations.back();
    for (const auto& k : o_.criteria) {
      CriterionResult cr;
      cr.criterion = k;
      if (!r_.error.empty()) {
        cr.status = "error";
        cr.note = r_.error;
        r_.criteria.push_back(cr);
        continue;
      }
      const Bracket b = bracket(k, final_d);
      const double ceil = ceiling_for(k);
      cr.ceiling_pps = ceil;
      if (b.lo) cr.lower_pps = b.lo->rate, cr.lower_step = b.lo->witness->step;
      if (b.hi) cr.upper_pps = b.hi->rate, cr.upper_step = b.hi->witness->step;
      if (b.lo && b.hi) {
        cr.status = "measured";
        int limited = 0;
        for (const Trial& t : trials_)
          if (t.rate > b.lo->rate && t.rate < b.hi->rate && tester_limited(t, o_.criteria)) ++limited;
        if (limited > 0)
          cr.note = "between the bounds the tester itself lost frames (" + std::to_string(limited) +
                    " trials): its limit, not the device's, keeps the bracket from narrowing";
        else if (b.hi->rate - b.lo->rate > o_.precision * b.hi->rate * (1 + 1e-9))
          cr.note = "wider than the precision asked for: the trial budget ran out";
      } else if (b.hi) {
        cr.status = b.hi->rate <= o_.min_rate_pps * (1 + 1e-9) ? "no passing rate" : "trial budget exhausted";
      } else if (b.lo) {
        // No final-duration load failed. Censored only at the ceiling and only if no load of any
        // duration failed at or below the passing rate (the unpaced trial's rate is what it
        // offered).
        auto rate_of = [](const Trial& t) { return t.rate > 0 ? t.rate : t.offered; };
        const Trial* below = nullptr;
        for (const Trial& t : trials_) {
          const bool failed = t.rate > 0 ? load_verdict(t.rate, t.duration, k).verdict == Verdict::kFail &&
                                               load_verdict(t.rate, t.duration, k).decided
                                         : classify(t, k.loss, o_.offered_tolerance) == Verdict::kFail;
          if (failed && rate_of(t) <= b.lo->rate && (!below || rate_of(t) < rate_of(*below))) below = &t;
        }
        if (below) {
          cr.status = "inconsistent";
          cr.note = "a " + fmt_d(below->duration) + " s trial failed at " + std::to_string(int64_t(rate_of(*below))) +
                    " pps, at or below the rate that passed at the final duration";
        } else if (b.lo->rate >= ceil * (1 - o_.precision) - 1e-9) {
          cr.status = "censored";
          cr.censored = true;
        } else {
          cr.status = "trial budget exhausted";
        }
      } else {
        // No final-duration load decided: every one was short.
        int limited = 0;
        for (const Trial& t : trials_)
          if (t.duration == final_d && t.rate > 0 && tester_limited_for(t, k.loss)) ++limited;
        cr.status = limited > 0 && !out_of_trials_ ? "tester-limited" : "trial budget exhausted";
        if (limited > 0)
          cr.note = "every final trial was short: the tester itself lost frames in " + std::to_string(limited) +
                    " of them" +
                    (out_of_trials_ ? ", and the budget ran out before a rate below its limit was reached"
                                    : ", down to the lowest rate the search tries");
      }
      r_.criteria.push_back(cr);
    }
  }

 private:
  static std::string fmt_d(double d) {
    char b[32];
    std::snprintf(b, sizeof b, "%g", d);
    return b;
  }

  // Brings the criterion's bracket at duration d to the precision (or runs out of trials).
  void narrow(const SearchCriterion& k, double d, const std::string& phase, std::pair<double, double> hint,
              double& width) {
    // The previous phase's ends first, measured again at this duration.
    for (double h : {hint.first, hint.second}) {
      if (h <= 0 || measured_at(h, d)) continue;
      if (!load(std::round(std::min(h, ceiling_for(k))), d, phase)) return;
    }
    double down = o_.precision;  // how far below the ceiling to go when it was short there
    for (int guard = 0; guard < o_.max_trials; ++guard) {
      const Bracket b = bracket(k, d);
      const double ceil = ceiling_for(k);
      double next;
      if (b.lo && b.hi) {
        if (b.hi->rate - b.lo->rate <= o_.precision * b.hi->rate) return;
        next = (b.lo->rate + b.hi->rate) / 2;
      } else if (b.hi) {
        if (b.hi->rate <= o_.min_rate_pps * (1 + 1e-9)) return;  // nothing passes
        next = std::max(o_.min_rate_pps, b.hi->rate - width);
        width *= 2;
      } else if (b.lo) {
        if (b.lo->rate >= ceil * (1 - o_.precision) - 1e-9) return;  // at the ceiling
        next = std::min(ceil, b.lo->rate + width);
        // The ceiling itself was short here (the tester's limit): bisect below it, each short
        // lowering it further, until the passing rate reaches it (censored).
        if (measured_at(std::round(next), d)) next = (b.lo->rate + ceil) / 2;
        width *= 2;
      } else {
        // Nothing decided here yet (only short trials): the ceiling as it is now, and once that
        // was short too, further below it each time (the tester's limit for this criterion can
        // lie well under the looser one's: a few frames of its own lost spoil a zero-loss trial).
        next = ceil;
        if (measured_at(std::round(next), d)) {
          next = std::max(o_.min_rate_pps, ceil * (1 - down));
          down = std::min(2 * down, 0.5);
        }
      }
      next = std::round(next);
      if (measured_at(next, d)) {
        // Only a short trial can be there again (a pass or fail would have moved the bracket):
        // the ceiling has come down to it; try just under it.
        next = std::round(std::min(next, ceil) * (1 - o_.precision / 2));
        if (next < o_.min_rate_pps || measured_at(next, d)) return;
      }
      if (!load(next, d, phase)) return;
    }
  }

  // The trials at one duration: one in the narrowing phases, final_trials in the final one.
  int trials_at(double d) const { return d == o_.durations.back() ? std::max(1, o_.final_trials) : 1; }

  // Measures `rate` at duration d until every criterion's verdict there is decided; false when
  // the search must stop (budget spent, or a trial errored).
  bool load(double rate, double d, const std::string& phase) {
    for (int i = 0; i < trials_at(d); ++i) {
      bool all_decided = true;
      for (const auto& k : o_.criteria)
        if (!load_verdict(rate, d, k).decided) all_decided = false;
      if (all_decided) break;
      if (!trial(rate, d, phase)) return false;
      if (!r_.error.empty()) return false;
    }
    return true;
  }

  struct LoadVerdict {
    Verdict verdict = Verdict::kShort;
    bool decided = false;
    const Trial* witness = nullptr;
  };

  // The majority of the load's trials at d, out of trials_at(d): pass when more than half
  // passed, fail when at least half (rounded up) failed, short likewise; an error decides at
  // once. Undecided while the remaining trials could still change it; when all are in without a
  // majority (a pass, a fail, a short), it does not pass: it counts as a fail.
  LoadVerdict load_verdict(double rate, double d, const SearchCriterion& k) const {
    const int n = trials_at(d);
    int pass = 0, fail = 0, shrt = 0, done = 0;
    const Trial *wp = nullptr, *wf = nullptr, *ws = nullptr;
    for (const Trial& t : trials_)
      if (t.duration == d && std::fabs(t.rate - rate) < 0.5) {
        ++done;
        switch (classify(t, k.loss, o_.offered_tolerance)) {
          case Verdict::kError: return {Verdict::kError, true, &t};
          case Verdict::kPass: ++pass, wp = wp ? wp : &t; break;
          case Verdict::kFail: ++fail, wf = wf ? wf : &t; break;
          case Verdict::kShort: ++shrt, ws = ws ? ws : &t; break;
        }
      }
    const int need = n / 2 + 1;
    if (pass >= need) return {Verdict::kPass, true, wp};
    if (fail >= (n + 1) / 2) return {Verdict::kFail, true, wf};
    if (shrt >= (n + 1) / 2) return {Verdict::kShort, true, ws};
    if (done >= n) return {Verdict::kFail, true, wf ? wf : ws};
    return {Verdict::kShort, false, nullptr};
  }

  bool measured_at(double rate, double d) const {
    for (const Trial& t : trials_)
      if (t.duration == d && std::fabs(t.rate - rate) < 0.5) return true;
    return false;
  }

  // From the decided loads at duration d: the lowest failing one, and the highest passing one
  // below it.
  Bracket bracket(const SearchCriterion& k, double d) const {
    std::vector<Load> loads;
    for (const Trial& t : trials_) {
      if (t.duration != d || t.rate <= 0) continue;
      bool seen = false;
      for (const Load& l : loads) seen |= std::fabs(l.rate - t.rate) < 0.5;
      if (seen) continue;
      const LoadVerdict v = load_verdict(t.rate, d, k);
      if (v.decided) loads.push_back({t.rate, v.verdict, v.witness});
    }
    Bracket b;
    for (const Load& l : loads)
      if (l.verdict == Verdict::kFail && (!b.hi || l.rate < b.hi->rate)) b.hi = l;
    for (const Load& l : loads)
      if (l.verdict == Verdict::kPass && (!b.hi || l.rate < b.hi->rate) && (!b.lo || l.rate > b.lo->rate)) b.lo = l;
    return b;
  }

  // Runs one trial and records it; nullptr when the budget is spent. A failing trial that was
  // disturbed is set aside and run again (SearchOptions::retry_disturbed).
  const Trial* trial(double rate, double d, const std::string& phase) {
    for (int retries = 0;; ++retries) {
      if (int(r_.steps.size()) >= o_.max_trials) {
        out_of_trials_ = true;
        return nullptr;
      }
      TrialOutcome out = measure_(rate, d);
      Trial t{rate, d, out.offered_pps, out.loss, !out.error.empty(), r_.steps.size(),
              std::clamp(out.tester_loss, 0.0, std::max(out.loss, 0.0))};
      bool fails = false;
      for (const auto& k : o_.criteria) fails |= classify(t, k.loss, o_.offered_tolerance) == Verdict::kFail;
      if (rate > 0 && !t.error && fails && !out.disturbed.empty() && retries < o_.retry_disturbed) {
        nlohmann::json step = step_record(t.step, phase, rate, d, out);
        step["set_aside"] = true;
        add_sample(step, out);
        r_.steps.push_back(std::move(step));
        continue;
      }
      return record(t, out, phase);
    }
  }

  const Trial* record(const Trial& t, const TrialOutcome& out, const std::string& phase) {
    const double rate = t.rate, d = t.duration;
    nlohmann::json step = step_record(t.step, phase, rate, d, out);
    if (t.tester_loss > 0) step["tester_loss"] = t.tester_loss;
    if (rate > 0 && tester_limited(t, o_.criteria)) step["tester_limited"] = true;
    nlohmann::json v = nlohmann::json::object();
    for (const auto& k : o_.criteria)
      v[k.name] = rate > 0 ? verdict_name(classify(t, k.loss, o_.offered_tolerance))
                           : (t.error ? "error" : "unpaced");
    step["verdicts"] = v;
    add_sample(step, out);
    if (t.error) {
      step["error"] = out.error;
      r_.error = "trial at " + (rate > 0 ? std::to_string(int64_t(rate)) + " pps" : std::string("max")) + ": " +
                 out.error;
    }
    r_.steps.push_back(std::move(step));
    trials_.push_back(t);
    if (!t.error && rate > 0) {
      if (t.offered >= o_.offered_tolerance * rate) proven_ = std::max(proven_, rate);
      else ceiling_ = std::max(std::min(ceiling_, t.offered), proven_);
      for (size_t i = 0; i < o_.criteria.size(); ++i) {
        TesterLimit& tl = tester_[i];
        if (tester_limited_for(t, o_.criteria[i].loss)) {
          tl.ceiling = std::max(std::min(tl.ceiling, rate), tl.clean);
        } else if (t.duration == o_.durations.back() && t.offered >= o_.offered_tolerance * rate &&
                   t.tester_loss <= o_.criteria[i].loss) {
          tl.clean = std::max(tl.clean, rate);
        }
      }
    }
    return &trials_.back();
  }

  // The ceiling a criterion's search works under: what the generator could offer, lowered to
  // the tester's own limit for that criterion.
  double ceiling_for(const SearchCriterion& k) const {
    return std::min(ceiling_, tester_[size_t(&k - o_.criteria.data())].ceiling);
  }
  const SearchCriterion& loosest() const {
    return *std::max_element(o_.criteria.begin(), o_.criteria.end(),
                             [](const SearchCriterion& a, const SearchCriterion& b) { return a.loss < b.loss; });
  }

  // The tester's own limit as one criterion sees it.
  struct TesterLimit {
    // The lowest rate at which the tester's losses alone took a trial over the criterion (never
    // below `clean`).
    double ceiling = std::numeric_limits<double>::infinity();
    // The highest rate a final-duration trial ran at whose tester losses stayed within the
    // criterion (whatever the device did): the tester's limit is above it. A shorter trial
    // proves nothing at the final duration (the tester's queues fill over time).
    double clean = 0;
  };

  const SearchOptions& o_;
  const Measurer& measure_;
  SearchResult& r_;
  std::vector<Trial> trials_;
  double ceiling_ = 0, proven_ = 0;  // the generator's: what it offered unpaced, or fell short at
  std::vector<TesterLimit> tester_;  // per criterion, as o_.criteria
  bool out_of_trials_ = false;
};

}  // namespace

SearchResult throughput_search(const SearchOptions& o, const Measurer& measure) {
  SearchResult r;
  Search s(o, measure, r);
  s.run();
  s.finish();
  return r;
}

nlohmann::json search_settings_json(const SearchOptions& o) {
  nlohmann::json criteria = nlohmann::json::object();
  for (const SearchCriterion& c : o.criteria) criteria[c.name] = c.loss;
  return {{"criteria", criteria},
          {"durations_s", o.durations},
          {"precision", o.precision},
          {"offered_tolerance", o.offered_tolerance},
          {"max_trials", o.max_trials},
          {"final_trials_per_load", o.final_trials},
          {"retry_disturbed", o.retry_disturbed},
          {"max_rate_pps", o.max_rate_pps}};
}

nlohmann::json search_result_json(const SearchResult& r, const SearchOptions& o) {
  nlohmann::json j{{"search", search_settings_json(o)},
                   {"search_ceiling_pps", r.ceiling_pps},
                   {"search_ceiling_final_pps", r.ceiling_final_pps},
                   {"steps", r.steps}};
  for (const CriterionResult& c : r.criteria) j[c.criterion.name] = criterion_json(c, o);
  if (!r.error.empty()) j["error"] = r.error;
  return j;
}

std::string describe_bracket(const nlohmann::json& k) {
  auto rate = [](const nlohmann::json& v) {
    if (!v.is_number()) return std::string("-");
    char b[64];
    std::snprintf(b, sizeof b, "%.0f", v.get<double>());
    return std::string(b);
  };
  const std::string st = k.value("status", "");
  if (st == "measured") return "[" + rate(k["lower_pps"]) + ", " + rate(k["upper_pps"]) + ") pps";
  if (st == "censored") return ">= " + rate(k["lower_pps"]) + " pps (the tester's ceiling: what its generator offered or its receiver took)";
  return st + " (passed " + rate(k["lower_pps"]) + ", failed " + rate(k["upper_pps"]) + ")";
}

nlohmann::json criterion_json(const CriterionResult& c, const SearchOptions& o) {
  auto opt = [](const auto& v) { return v ? nlohmann::json(*v) : nlohmann::json(nullptr); };
  nlohmann::json j = {{"loss_criterion", c.criterion.loss},
                      {"lower_pps", opt(c.lower_pps)},
                      {"upper_pps", opt(c.upper_pps)},
                      {"censored", c.censored},
                      {"ceiling_pps", c.ceiling_pps},
                      {"lower_step", opt(c.lower_step)},
                      {"upper_step", opt(c.upper_step)},
                      {"status", c.status},
                      {"final_duration_s", o.durations.empty() ? 0.0 : o.durations.back()}};
  if (c.lower_pps && c.upper_pps) j["width"] = (*c.upper_pps - *c.lower_pps) / *c.upper_pps;
  if (!c.note.empty()) j["note"] = c.note;
  return j;
}

}  // namespace ulsnet
