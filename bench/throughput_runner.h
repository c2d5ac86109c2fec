// The namespace hosts' measurements of one job: a trial (one accounted stream through the proxy,
// with its progress line), a point (`--reps` trials at one rate, summarised, optionally with
// CPU-bound competitors on the proxy's CPU) and the NDR/PDR search (bench/search.h) whose every
// step is such a trial; what an earlier run of the same configuration finished is kept instead
// of measured again.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "bench/throughput_jobs.h"
#include "bench/throughput_options.h"
#include "bench/topology.h"

namespace ulsnet {

// What an earlier run with the same --out and the same configuration finished: its points,
// searches and calibrations by key, reused instead of re-run (a point that errored is re-run).
struct Finished {
  std::map<std::string, nlohmann::json> points, capacity, calibration;
  size_t reused = 0;
  const nlohmann::json* find(const std::map<std::string, nlohmann::json>& m, const std::string& key);
  // The points, searches and calibrations of an earlier run's whole document.
  static Finished from(const nlohmann::json& old);
};

class Runner {
 public:
  Runner(const ThroughputOptions& o, bool pin, Finished& finished);

  int failures() const { return failures_; }

  // The peer (generator, proxy or sink process) that died during a trial, null while none has:
  // {"role", "pid", "after_s" (into its trial), "how", "run_s" (into the run), "trial", "during"}.
  // The run ends there (a method that crashes is not measured further).
  const nlohmann::json& peer_died() const { return peer_died_; }
  // Records `sample`'s dead peer (if any) as the run's, adding when and during what.
  void note_peer_death(nlohmann::json& sample, const std::string& during);

  // One trial of `job` on `topo`.
  nlohmann::json trial(const Job& job, const Topology& topo, uint32_t size, double rate, double duration,
                       const std::string& what);

  // `reps` trials at one rate, summarised; `extra` fields are added to the point (what its load
  // is based on); `competitors` CPU-bound processes share the proxy's CPU meanwhile. `key` names
  // the point for resuming.
  nlohmann::json point(const Job& job, const Topology& topo, const nlohmann::json& labels, uint32_t size, double rate,
                       const std::string& what, const std::string& key, const nlohmann::json& extra = {},
                       int competitors = 0);

  // NDR and PDR of `job` at `size`.
  nlohmann::json capacity(const Job& job, const Topology& topo, uint32_t size);

 private:
  void measure_point(nlohmann::json& res, const Job& job, const Topology& topo, uint32_t size, double rate,
                     const std::string& what, int competitors);

  const ThroughputOptions& o_;
  bool pin_;
  Finished& finished_;
  std::chrono::steady_clock::time_point t0_;
  uint32_t run_id_ = 0;
  int trials_ = 0, failures_ = 0;
  nlohmann::json peer_died_;
};

}  // namespace ulsnet
