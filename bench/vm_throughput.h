// //bench:throughput --hosts=vm: the proxy methods on three virtual hosts running the patched
// kernel (kernel/): sender VM -> proxy VM -> receiver VM over e1000, the method inside the proxy
// VM (bench/guest/ulsnet_proxy.cc, the same baselines/ code as on the namespace hosts), the
// sandbox method's uls variant on the real ULS path; the project's own generator and sink at the
// ends (bench/guest/ulsnet_traffic.cc). See bench/README.md.
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
  // The cost measure: per (method, variant, mode) and repetition, one more run of cost_count
  // datagrams paced at cost_rate, a load every method carries without loss here, so that the
  // proxy does the same work in every run: instructions per forwarded packet (and busy time).
  // At an unpaced sender the work per forwarded packet grows with what the proxy receives and
  // then drops (receive livelock), which the host's scheduling of the three VMs moves from run
  // to run: the max-load rows report it, but it is no basis for comparing runs.
  double cost_rate = 2000;
  uint64_t cost_count = 10000;
  // Cost runs per job: 0 = --reps. Under -icount a cost run counts instructions, which host load
  // cannot move, so one is enough where the rate and delay points need repetitions.
  int cost_reps = 0;
  // QEMU's instruction counting (kernel/vm.sh --icount, TCG only):
  //   "cost" (default): the cost runs under -icount (guest time = instructions, so the busy time
  //                     measured in the guest cannot move with host load either);
  //   "off": no run under icount;
  //   "all": every run under icount (rates and delays are then in each guest's own
  //          instruction-driven time: only the cost is comparable).
  std::string icount = "cost";
  // UDP payload bytes, each a set of points (default: the traffic header alone, 66-byte
  // frames). The cost runs and the targets are at the first size.
  std::vector<uint32_t> payloads = {24};
  // NDR/PDR per job at the first size (bench/search.h), each trial one launch of the three VMs
  // (~30-50 s under TCG, the boot being most of it): so one phase only, at `duration`, a coarse
  // precision and few trials by default. Off unless asked for (--vm-search, or --loads).
  bool search = false;
  double pdr_loss = 0.005;
  double search_precision = 0.1;
  int search_trials = 8;
  // Under TCG, when > 0, these replace `reps` and `search_trials` (the accelerator is resolved
  // before anything is planned, kernel/vm.sh --probe-accel). A launch takes ~13 s under TCG and a
  // few under KVM: a plan sized for KVM (repetitions with confidence intervals, a finer search)
  // does not fit a time budget under TCG. The result says which plan ran (accelerator_plan).
  int tcg_reps = 0;
  int tcg_search_trials = 0;
  int final_trials = 1;
  double search_max = 0;
  // The offered-load sweep: fractions of each job's own PDR lower bound (implies the search).
  std::vector<double> loads;
  // Seconds at the start of each stream left out of the delay statistics (at most a tenth of
  // `duration`), still accounted.
  double warmup = 0.05;
  // An existing `out` is resumed (finished launches kept, the same configuration required)
  // unless `fresh`.
  bool fresh = false;
  std::string out;
  std::vector<std::string> argv;
};

// An offered rate as the throughput flags take it: "max" -> 0, a positive number of packets
// per second -> itself, anything else -> nullopt.
std::optional<double> parse_offered_rate(const std::string& r);

// Returns the process exit status (2: bad usage or environment, 1: a run failed or a guest's
// report could not be read).
int run_vm_throughput(VmThroughputOptions o);

}  // namespace ulsnet
