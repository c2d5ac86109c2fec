// //bench:throughput --hosts=vm: the proxy methods on three virtual hosts running the patched
// kernel (kernel/): sender VM -> proxy VM -> receiver VM over e1000, the method inside the proxy
// VM (bench/guest/ulsnet_proxy.cc, the same baselines/ code as on the namespace hosts), the
// sandbox method's uls variant on the real ULS path. See bench/README.md.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace ulsnet {

struct VmThroughputOptions {
  std::vector<std::string> methods;  // "name" or "name:variant"; empty: every method and variant
  std::vector<std::string> modes = {"relay", "router"};
  std::vector<std::string> rates = {"max"};  // "max" (unpaced sender) or datagrams/s
  double duration = 5;                       // seconds of stream per run (at "max": an estimate)
  int reps = 1;
  bool quick = false;
  std::string accel = "auto";       // auto | kvm | tcg
  std::string protection = "kernel";  // the ULS region's protection: kernel (uls.protect=1) | none
  std::string out;
  std::vector<std::string> argv;
};

// An offered rate as the throughput flags take it: "max" -> 0, a positive number of packets
// per second -> itself, anything else -> nullopt.
std::optional<double> parse_offered_rate(const std::string& r);

// Returns the process exit status (2: bad usage or environment, 1: a run failed).
int run_vm_throughput(VmThroughputOptions o);

}  // namespace ulsnet
