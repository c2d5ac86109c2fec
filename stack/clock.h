// CLOCK_MONOTONIC in nanoseconds. Shared by all network namespaces on one machine, so a send
// time stamped into a payload in one namespace can be compared with the receive time in another.
#pragma once

#include <time.h>

#include <cstdint>

namespace ulsnet {

inline uint64_t monotonic_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1'000'000'000ull + uint64_t(ts.tv_nsec);
}

}  // namespace ulsnet
