// What //bench:throughput prints on stdout at the end of a run, from its finished result
// document: for the namespace hosts a row per point, the calibration, the NDR/PDR brackets, the
// common load and the targets; for the VMs (bench/vm_throughput.cc) a row per launch, the
// brackets and the targets. Both end with the result file's path.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "bench/throughput_options.h"

namespace ulsnet {

// The namespace hosts' report of `doc` (written to `path`), run with `o`.
void print_netns_report(const nlohmann::json& doc, const ThroughputOptions& o, const std::string& path);

// The VMs' report of `doc` (written to `path`): the launches ran under `accel` with
// `guest_kernel`.
void print_vm_report(const nlohmann::json& doc, const std::string& accel, const std::string& guest_kernel,
                     const std::string& path);

}  // namespace ulsnet
