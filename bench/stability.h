// How much a headline ratio moves between runs of the same experiment: the stability record of
// several result files (bench/reference/stability-netns.json, stability-vm.json).
//
//   netns: the PDR of sandbox:af_xdp over the PDR of kernel-socket:batched, relay (the
//          capacity target's value: the ratio of the PDR brackets' lower bounds);
//   vm:    sandbox:uls's proxy-VM cost per forwarded packet over kernel-socket:batched's (the
//          cost target's value: guest instructions per packet).
// spread = max / min - 1 over the runs; goals: <= 0.10 (netns), <= 0.05 (vm).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace ulsnet {

enum class StabilityKind { kNetns, kVm };

// The headline of one result document: {"value", "status", "target", ...} (the target entry it
// comes from), or {"error": why} when the document has none (a missing or errored target).
nlohmann::json headline_of(const nlohmann::json& doc, StabilityKind kind);

// {"kind", "headline", "goal_spread", "runs": [{"file", "environment", "argv", "headline_ratio",
// "headline", "summary"}], "headline_ratios", "spread", "status": met | not met | error}.
// `files` name the documents (same order). A run without a headline makes the status "error".
nlohmann::json stability_record(const std::vector<nlohmann::json>& docs, const std::vector<std::string>& files,
                                StabilityKind kind);

}  // namespace ulsnet
