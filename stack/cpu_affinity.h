// The calling thread's CPU affinity: what it may run on, pinning it to one CPU, and putting its
// mask back at the end of a scope.
#pragma once

#include <sched.h>

#include <vector>

namespace ulsnet {

// The CPUs the calling thread may run on (its affinity mask, which taskset or a cgroup may
// narrow), ascending; empty if it cannot be read.
inline std::vector<int> allowed_cpus() {
  cpu_set_t s;
  CPU_ZERO(&s);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof s, &s) != 0) return cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &s)) cpus.push_back(c);
  return cpus;
}

// The calling thread onto `cpu` alone; false (errno set) if the kernel refused.
inline bool pin_to(int cpu) {
  cpu_set_t s;
  CPU_ZERO(&s);
  CPU_SET(cpu, &s);
  return sched_setaffinity(0, sizeof s, &s) == 0;
}

// Restores the calling thread's affinity, as it was at construction, at the end of the scope.
struct AffinityRestore {
  cpu_set_t saved;
  bool ok;
  AffinityRestore() { ok = sched_getaffinity(0, sizeof saved, &saved) == 0; }
  ~AffinityRestore() {
    if (ok) sched_setaffinity(0, sizeof saved, &saved);
  }
  AffinityRestore(const AffinityRestore&) = delete;
  AffinityRestore& operator=(const AffinityRestore&) = delete;
};

}  // namespace ulsnet
