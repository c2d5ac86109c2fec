// The project's targets (README "Targets"), evaluated from one run's own results: the sandbox
// method's partial-drop rate against the baselines', and its latency and CPU per forwarded
// packet at the common load against the batched kernel-socket relay's.
//
// A capacity is a measured bracket [lower_pps, upper_pps] (bench/search.h), so a ratio of two
// capacities is an interval: [lower_a / upper_b, upper_a / lower_b] (an open end where a bound is
// missing: censored at the generator, or nothing passed). A ">= goal" target is "met" when the
// whole interval is at or above the goal, "not met" when it is wholly below, and "undecided"
// otherwise; `value` is lower_a / lower_b, the ratio of the reported rates. A method whose
// search or common-load point errored makes the target "error", never "not met".
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace ulsnet {

struct TargetSubject {
  std::string method = "sandbox", variant = "af_xdp";
  uint32_t payload = 64;  // the frame size the targets are about (capacity entries and points of others are ignored)
  std::string protection;  // the sandbox job's protection in force ("" = any)
  std::string criterion = "pdr";
};

// A results[] point at the run's common load with no CPU competitors: what the latency and CPU
// targets compare. (The offered-load sweep's points carry load_fraction; the competitor points a
// competitors count above 0.)
bool is_common_load_point(const nlohmann::json& r);

// One entry per target: {target, goal, status, value?, interval?, basis, note?}.
// Reads doc["capacity"] (entries with method, variant, mode, protection, criterion objects, and
// "error" when the search failed) and doc["results"] (common-load points carry "load_basis").
nlohmann::json evaluate_targets(const nlohmann::json& doc, const TargetSubject& subject);

}  // namespace ulsnet
