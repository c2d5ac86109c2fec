// The paper's claims C1-C4 judged from stored results (pure: JSON in, verdicts out; unit-tested).
//
// Inputs are result files of the bench/ experiments, recognised by their content, not their
// names (load_inputs). Each claim holds comparisons (ratios with intervals, paper/verdict.h)
// and checks (a property that held or not in every run that could show it); its verdict
// combines both. What no input measures is said so ("not measured"), never filled in.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "paper/verdict.h"

namespace ulsnet::paper {

struct Inputs {
  // The netns throughput run with the most capacity entries (ties: the newest), and the
  // others (e.g. the protection run).
  std::optional<nlohmann::json> netns;
  std::optional<nlohmann::json> netns_stability, vm, vm_stability, vm_jitter, vm_forward, micro;
  std::optional<nlohmann::json> host_jitter;  // //bench:jitter (stock kernel)
  std::optional<nlohmann::json> vm_micro;     // //bench:vm_micro (in-guest, ULS kernel)
  std::optional<nlohmann::json> ssh;          // //bench/ssh:ssh_throughput (real hosts)
  std::map<std::string, std::string> files;  // kind -> path, for the report
  std::vector<std::string> ignored;          // files not recognised, with the reason
};

// Every *.json directly in `dir`. Throws std::runtime_error when `dir` cannot be read.
Inputs load_inputs(const std::string& dir);
// The same over several directories together (one kind's newest file wins wherever it is).
Inputs load_inputs(const std::vector<std::string>& dirs);
// What a document is: "netns", "vm", "netns-stability", "vm-stability", "vm-jitter",
// "vm-forward", "micro", "jitter", "vm-micro", "ssh", or "" (unknown).
std::string kind_of(const nlohmann::json& doc);
// The JSON document in `path` (non-finite tokens read as null: bench/micro_resume.h
// null_non_finite); discarded when the file cannot be
// read or is not JSON.
nlohmann::json read_result(const std::string& path);

struct Check {
  std::string name, evidence;
  bool passed = false;
  std::string detail;
};

struct ClaimResult {
  std::string id, title, statement;
  std::vector<Comparison> comparisons;
  std::vector<Judged> judged;  // one per comparison
  std::vector<Check> checks;
  Verdict verdict = Verdict::kUndecided;
  std::vector<std::string> caveats;
};

std::vector<ClaimResult> evaluate_claims(const Inputs& in);

}  // namespace ulsnet::paper
