// The namespace hosts' jobs: see bench/throughput_jobs.h.
#include "bench/throughput_jobs.h"

#include <algorithm>

#include <fmt/core.h>

#include "sandbox/protection.h"

namespace ulsnet {
namespace {

// The (method, variant) pairs --methods names. The ULS kernel's variant only by name, and then
// refused: it needs --hosts=vm.
bool expand_methods(const ThroughputOptions& o, std::vector<MethodVariant>& mv) {
  try {
    mv = expand_method_specs(o.methods, [](const MethodInfo& m, std::string_view v, bool) {
      return !needs_uls_kernel(m.name, v);
    });
  } catch (const MethodError& e) {
    fmt::print(stderr, "throughput: {}\n", e.what());
    return false;
  }
  if (o.methods.empty()) fmt::print(stderr, "note: sandbox:uls runs on the ULS kernel only: --hosts=vm\n");
  for (const auto& [m, v] : mv)
    if (needs_uls_kernel(m->name, v)) {
      fmt::print(stderr, "throughput: {}:{} needs the ULS kernel: run it with --hosts=vm\n", m->name, v);
      return false;
    }
  return true;
}

}  // namespace

std::string Job::name() const {
  return fmt::format("{}:{} {}{}", info->name, variant, forward_mode_name(mode),
                     protection == "n/a" ? "" : "/" + protection);
}

std::string job_key(const Job& job, uint32_t size) {
  return fmt::format("{}|{}|{}|{}|{}", job.info->name, job.variant, forward_mode_name(job.mode), job.protection, size);
}

bool resolve_protection(const std::vector<std::string>& asked, std::vector<std::string>& in_force) {
  try {
    for (const auto& p : asked) {
      std::string m = protection_mode_name(parse_protection_mode(p));
      if (std::find(in_force.begin(), in_force.end(), m) == in_force.end()) in_force.push_back(m);
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "throughput: --protection: {}\n", e.what());
    return false;
  }
  return true;
}

bool expand_jobs(const ThroughputOptions& o, bool modes_given, const std::vector<std::string>& in_force,
                 std::vector<Job>& jobs) {
  std::vector<ForwardMode> modes;
  for (const auto& m : o.modes) modes.push_back(m == "relay" ? ForwardMode::kRelay : ForwardMode::kRouter);
  std::vector<MethodVariant> mv;
  if (!expand_methods(o, mv)) return false;
  // Without --modes: relay for every method, and router where it is the point: the kernel's
  // own forwarding (router only) and the sandbox, to compare the two routers (as --hosts=vm).
  for (auto& [m, v] : mv)
    for (ForwardMode md : modes) {
      if ((md == ForwardMode::kRelay && !m->relay) || (md == ForwardMode::kRouter && !m->router)) {
        if (modes_given)
          fmt::print(stderr, "note: {} does not support {} mode: skipped\n", m->name, forward_mode_name(md));
        continue;
      }
      if (!modes_given && md == ForwardMode::kRouter && m->relay && m->name != "sandbox") continue;
      if (m->name == "sandbox") {
        for (const auto& p : in_force) jobs.push_back({m, v, md, p});
      } else {
        jobs.push_back({m, v, md});
      }
    }
  if (jobs.empty()) {
    fmt::print(stderr, "throughput: no method supports the modes asked for\n");
    return false;
  }
  // The common load comes from the batched kernel-socket relay's PDR: that job goes first.
  std::stable_partition(jobs.begin(), jobs.end(), [](const Job& j) {
    return j.info->name == "kernel-socket" && j.variant == "batched" && j.mode == ForwardMode::kRelay;
  });
  return true;
}

}  // namespace ulsnet
