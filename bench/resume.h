// Resuming an experiment's result file, point by point (pure, unit-tested). The runners that
// write one row per measured point — //bench:jitter, //bench:vm_jitter, //bench:vm_forward,
// //bench:vm_micro — write their file after every point with "complete": false, and a rerun with
// the same --out and the same configuration keeps the points that file finished and runs only
// the rest (--fresh starts over); //bench:micro does the same per benchmark instance
// (bench/micro_resume.h, rows "benchmarks"). //bench:throughput (namespaces, VMs) and the SSH
// runner keep their own, richer resume (searches, repetitions) on the same config_difference.
//
// A point is named by the "point" string of its rows (a point may have several rows: one VM
// launch gives a row per service and competitor count). A point is kept when it has rows and
// none of them has an "error" or "complete": false.
#pragma once

#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace ulsnet::resume {

// The earlier file cannot be resumed: what to tell the user.
class Refused : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// "" if equal, else the first difference, e.g. "duration_s: 0.5 there, 1 here".
std::string config_difference(const nlohmann::json& there, const nlohmann::json& here);

// The configuration as two runs must agree on it: all but `argv` (how it was typed).
nlohmann::json comparable(nlohmann::json config);

// What an earlier run finished, by point.
struct Earlier {
  std::map<std::string, std::vector<nlohmann::json>> points;
  size_t reused = 0;  // points handed out by take()
  // The rows of a finished `point` (counted as reused), or nullptr.
  const std::vector<nlohmann::json>* take(const std::string& point);
};

// The finished points of `old` (an earlier run's whole document) under old[rows], for a run of
// `experiment` with `config`. Throws Refused when `old` is not a result of `experiment` or its
// configuration differs (comparable()).
Earlier finished_points(const nlohmann::json& old, const std::string& experiment, const nlohmann::json& config,
                        const std::string& rows = "runs");

// Reads the file at `path` and returns finished_points() of it; an empty Earlier when `fresh` or
// there is no file. Throws Refused for a file that is not JSON (naming --fresh) or does not match.
Earlier load(const std::string& path, bool fresh, const std::string& experiment, const nlohmann::json& config,
             const std::string& rows = "runs");

// The progress line's estimate of the time left, at this run's average per measured point so far
// (points kept from an earlier file take no time and do not count).
class Eta {
 public:
  explicit Eta(double first_guess_s) : guess_(first_guess_s) {}
  void measured(double seconds) {
    total_ += seconds;
    ++n_;
  }
  double per_point() const { return n_ ? total_ / double(n_) : guess_; }
  // ", about N s left (K points at S s)" or "" when nothing is left.
  std::string left(size_t points_left) const;

 private:
  double guess_, total_ = 0;
  size_t n_ = 0;
};

}  // namespace ulsnet::resume
