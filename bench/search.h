// Throughput search per RFC 2544, reported as FD.io CSIT does (NDR and PDR as measured
// brackets), narrowing with short trials as MLRsearch does and confirming at the final duration.
//
// A trial at target rate r with final or short duration d is classified per loss criterion c:
//   error  the trial did not run (an error is never loss 0: the search stops with it);
//   fail   the device lost more than c (loss - tester_loss > c; whatever the generator offered:
//          losing at less than r is losing at r);
//   short  no verdict on r, the tester is the limit there: its own losses took the trial over c
//          (loss > c, the device's share <= c), or loss <= c but the generator offered less
//          than `offered_tolerance` x r;
//   pass   loss <= c and the generator offered at least `offered_tolerance` x r.
// A trial the tester's losses made short under a criterion lowers that criterion's ceiling to
// its rate (never below a rate a final-duration trial ran at with the tester's own losses within
// that criterion), as a generator's shortfall lowers every criterion's: a bracket that reaches
// it is censored there, the tester's limit, not the device's. The limits differ by criterion: a
// tester that loses a few frames of its own near its limit spoils zero-loss trials at rates
// where the PDR's still pass, so the NDR's search goes on below them. Steps carry "tester_loss"
// and "tester_limited" (under the loosest criterion); each criterion's result its ceiling.
// A load (a rate at one duration) has the majority verdict of its trials there: one trial in the
// narrowing phases, `final_trials` at the final duration (pass: more than half passed; fail: at
// least half failed). The result for each criterion, from the final-duration loads only:
//   upper_pps = the lowest rate whose final-duration trials failed,
//   lower_pps = the highest rate below it whose final-duration trials passed,
// so the lower bound is always a rate final-duration trials were measured to pass (lower_step
// points at one of them) and the upper bound one they were measured to fail. When no final-duration trial failed and the passing rate reached the search
// ceiling (what the generator could offer, measured by the search's own first, unpaced trial
// in the same topology, sink, CPU placement and frame size, and lowered by any trial the
// generator fell short on), the result is censored: lower_pps with upper_pps null, and only if
// no trial of any duration at or below lower_pps failed.
//
// Procedure: one unpaced trial (the ceiling, and a first guess: what it delivered), then per
// phase (each duration in `durations`, the last being the final one) and per criterion (loosest
// first; trials are shared, so a PDR trial also narrows the NDR), starting from the previous
// phase's bracket: measure the bracket's ends again at this duration, expand (doubling the
// step) until a pass lies below a fail, then bisect to `precision` (relative width).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace ulsnet {

// What the search needs from one trial; `sample` is the whole record, kept in the steps.
struct TrialOutcome {
  double offered_pps = 0;  // what the generator achieved
  double loss = 0;         // (sent - received) / sent
  double tester_loss = 0;  // of loss, what the tester's own hosts lost (bench/accounting.h)
  std::string error;       // non-empty: the trial did not run
  // Non-empty: something outside the method disturbed the trial, and what (a host stall on a
  // CPU the trial ran on, measured: bench/stall_probe.h). See SearchOptions::retry_disturbed.
  std::string disturbed;
  nlohmann::json sample;
};

// Runs one trial at `rate_pps` (0: unpaced, as fast as the generator goes) for `duration_s`.
using Measurer = std::function<TrialOutcome(double rate_pps, double duration_s)>;

struct SearchCriterion {
  std::string name;  // "ndr", "pdr"
  double loss = 0;   // the largest loss ratio that passes
};

struct SearchOptions {
  std::vector<SearchCriterion> criteria = {{"ndr", 0.0}, {"pdr", 0.005}};
  std::vector<double> durations = {0.25, 1.0};  // narrowing phases; the last is the final one
  double precision = 0.02;          // done when (upper - lower) <= precision x upper
  double offered_tolerance = 0.97;  // a pass needs offered >= this x the rate
  double min_rate_pps = 1000;       // below this no rate is tried
  double max_rate_pps = 0;          // > 0: the ceiling never exceeds it (--search-max)
  int max_trials = 60;              // bound on the whole search
  // Trials per load at the final duration (odd): a load passes when more than half of them
  // pass, fails when at least half fail (stopping as soon as that is decided), as MLRsearch's
  // goal exceed ratio of 0.5 does. One noisy trial then cannot decide a load. Narrowing phases
  // use one trial per load.
  int final_trials = 1;
  // A trial that failed a criterion while it was disturbed (TrialOutcome::disturbed) is set
  // aside -- kept in the steps with "set_aside", counted against max_trials, given no verdict --
  // and run again, at most this many times in a row; the last one counts whatever it saw. A
  // disturbed trial that passed counts: the disturbance did not make it fail.
  int retry_disturbed = 0;
};

struct CriterionResult {
  SearchCriterion criterion;
  std::optional<double> lower_pps, upper_pps;
  std::optional<size_t> lower_step, upper_step;  // indices into SearchResult::steps
  bool censored = false;
  // The ceiling this criterion's search ended under: the generator's, or lower, the tester's own
  // limit as this criterion sees it.
  double ceiling_pps = 0;
  // "measured" (both bounds), "censored", "no passing rate" (the lowest rate tried failed),
  // "tester-limited" (no verdict: the tester lost frames of its own at every final rate down to
  // the lowest the search tries), "inconsistent" (a shorter trial failed at or below the final
  // passing rate), "error", "trial budget exhausted".
  std::string status;
  std::string note;  // anything a reader must know (an inconsistency between durations)
};

struct SearchResult {
  double ceiling_pps = 0;       // what the generator offered unpaced (the first step)
  double ceiling_final_pps = 0;  // after lowering by short trials
  std::vector<CriterionResult> criteria;
  // Every trial, in order: {"step", "phase", "rate_pps" (0: unpaced), "duration_s",
  // "verdicts": {criterion: pass|fail|short|error}, then the trial's sample fields}; a trial
  // set aside (retry_disturbed) also has "disturbed" and "set_aside": true.
  nlohmann::json steps = nlohmann::json::array();
  std::string error;  // a trial errored: the search stopped there
};

SearchResult throughput_search(const SearchOptions& o, const Measurer& measure);

// The capacity entry's "ndr"/"pdr" objects: loss_criterion, lower_pps, upper_pps, censored,
// ceiling_pps, lower_step, upper_step, status, final_duration_s, width (relative), note.
nlohmann::json criterion_json(const CriterionResult& c, const SearchOptions& o);

// The search's settings as a result records them: {"criteria": {name: loss}, "durations_s",
// "precision", "offered_tolerance", "max_trials", "final_trials_per_load", "retry_disturbed",
// "max_rate_pps"}.
nlohmann::json search_settings_json(const SearchOptions& o);

// A search as a capacity entry records it (the runner adds what the job was): {"search":
// search_settings_json, "search_ceiling_pps", "search_ceiling_final_pps", one criterion_json per
// criterion by its name, "steps", and "error" when a trial errored}.
nlohmann::json search_result_json(const SearchResult& r, const SearchOptions& o);

// One criterion's bracket for a progress line: "[lower, upper) pps", ">= lower pps (the
// generator's ceiling)" when censored, else "status (passed lower, failed upper)".
std::string describe_bracket(const nlohmann::json& criterion);

}  // namespace ulsnet
