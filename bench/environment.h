// What every result file records about where it was produced: the host's kernel, CPU, cores,
// features, the commit (when run through `bazel run`), the time. Experiments add what is theirs
// (which hosts, checksum mode, the guest kernel and accelerator for VMs).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace ulsnet {

// `hosts`: "netns" or "vm".
nlohmann::json host_environment(const std::string& hosts);

// Writes `doc` to `out`, or to results/<prefix>-<UTC time>.json when `out` is empty; a relative
// path is taken from where `bazel run` was started (BUILD_WORKING_DIRECTORY). Returns the path
// written.
// The file is replaced whole (written beside it, then renamed): a run killed while writing leaves
// the previous version, never half a file.
std::string write_result(const nlohmann::json& doc, std::string out, const std::string& prefix);

// The path write_result(doc, out, prefix) writes to, made absolute (so that a run writing its
// file several times, e.g. after every point, keeps one name).
std::string result_path(std::string out, const std::string& prefix);

// Seconds since this process started (steady clock, from static initialisation): results record
// it as `run_seconds`, the run's own measured duration.
double seconds_since_start();

// The field of /proc/cpuinfo named `name` (first CPU), or "".
std::string cpuinfo_field(const std::string& name);

}  // namespace ulsnet
