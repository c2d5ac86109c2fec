// //bench:throughput's flags and their checks, for both kinds of hosts: the options struct and
// its CLI11 definitions, the flags only one kind of hosts takes, the `--quick` plans (namespaces
// and VMs), the hand-off of the parsed flags to the VM runner (bench/vm_throughput.h), and the
// checks a run makes before it plans anything (namespace tools and root, the VM runner's own
// options, which it also takes from callers other than the command line).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "bench/vm_throughput.h"

namespace ulsnet {

struct ThroughputOptions {
  std::vector<std::string> methods, modes = {"relay", "router"};
  std::vector<uint32_t> sizes = {64, 1472};
  std::vector<std::string> rates = {"max"};
  bool rates_all_sizes = false;
  double duration = 1.0;
  int reps = 3;
  bool quick = false;
  std::string out;
  uint32_t batch = 32;
  std::vector<std::string> protection = {"auto"};
  bool veth_napi = true;
  bool busy_poll = false;
  bool need_wakeup = true;
  std::string generator = "af_xdp";
  std::string sink = "af_xdp";
  bool napi_per_host = true;
  int napi_priority = 50;
  int proxy_priority = 0;
  uint64_t max_packets = 5'000'000;
  bool pin = true;
  bool calibrate = true;
  bool search = true;
  double pdr_loss = 0.005;
  double search_duration = 0.25;
  double search_precision = 0.02;
  int search_trials = 40;
  int final_trials = 1;
  bool stall_probe = true;
  double stall_threshold_ms = 5;
  int retry_disturbed = 1;
  double search_max = 0;
  double common_load = 0;
  bool sweep = true;
  bool search_all_sizes = false;  // with --sizes given: the search at every size
  std::vector<double> loads;  // none unless asked (--quick: 0.5)
  std::vector<int> competitors = {0};
  double warmup = 0.05;
  bool fresh = false;
  std::string hosts = "netns", accel = "auto", vm_protection = "kernel";
  std::string vm_icount = "cost";
  double vm_cost_rate = 2000;
  uint64_t vm_cost_count = 10000;
  int vm_cost_reps = 0;
  int vm_tcg_reps = 0;
  int vm_tcg_search_trials = 0;
  bool vm_search = false;
};

// An offered rate as --rates takes it: "max" (0) or a finite number of packets per second in
// (0, 1e9]; nullopt otherwise.
std::optional<double> parse_rate(const std::string& r);

// Every flag of //bench:throughput (both kinds of hosts), bound to `o`.
void add_throughput_flags(CLI::App& app, ThroughputOptions& o);

// A flag given on the command line that the chosen hosts do not take: one line on stderr and
// false (exit 2).
bool flags_fit_hosts(const CLI::App& app, const std::string& hosts);

// --quick on the namespace hosts: every default the user did not give replaced by the quick
// plan's.
void apply_quick_defaults(ThroughputOptions& o, const CLI::App& app);

// --quick on the VMs: the quick plan's methods (unless named) and streams of at most 2 s.
void apply_quick_defaults(VmThroughputOptions& o);

// The parsed flags as the VM runner takes them (only those the user gave replace its defaults).
VmThroughputOptions vm_options_from(const ThroughputOptions& o, const CLI::App& app, int argc, char** argv);

// Root and the tools the namespace hosts need; false (exit 2) after one line on stderr.
bool netns_prerequisites_met();

// --search-duration no longer than --duration; false (exit 2) after one line on stderr.
bool search_fits_duration(const ThroughputOptions& o);

// The VM runner's options checked (after its quick plan): modes, rates (parsed into `rates`),
// protection, cost runs, instruction counting; false (exit 2) after one line on stderr.
bool check_vm_options(const VmThroughputOptions& o, std::vector<double>& rates);

// The VM runner's payload sizes and search settings checked (`--loads` turns the search on);
// false (exit 2) after one line on stderr.
bool check_vm_search_options(VmThroughputOptions& o);

}  // namespace ulsnet
