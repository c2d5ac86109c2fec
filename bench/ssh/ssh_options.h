// //bench/ssh:ssh_throughput's flags (and those //bench:proxy --hosts=ssh shares): the options
// struct (the hosts, the test links, SSH, the trials, the NDR/PDR search, the offered-load sweep,
// clocks, CPU placement, the common load and competitors) and their CLI11 definitions, in the
// order --help lists them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "bench/ssh/ssh_command.h"

namespace ulsnet::ssh {

struct SshThroughputOptions {
  std::string sender, proxy, receiver;
  std::string methods = "kernel-socket:batched", modes = "relay", payloads = "64", rates = "max";
  double duration = 1;
  int reps = 3;
  std::string out;
  // The test links (defaults: bench/topology.h's plan).
  std::string sender_if, sender_ip = "10.201.1.1", sender_mac;
  std::string proxy_in_if, proxy_in_ip = "10.201.1.2", proxy_in_mac;
  std::string proxy_out_if, proxy_out_ip = "10.201.2.1", proxy_out_mac;
  std::string receiver_if, receiver_ip = "10.201.2.2", receiver_mac;
  int prefix = 24;
  uint16_t port = 9000;
  std::string proxy_addresses = "as-is";
  // SSH.
  std::string ssh_user, ssh_identity;
  int ssh_port = 0, ssh_connect_timeout = 10;
  std::vector<std::string> ssh_options;
  bool no_multiplex = false;
  std::string remote_tmp = "/tmp";
  std::string agent;
  // Trials.
  uint32_t batch = 32;
  uint64_t max_packets = 5'000'000;
  std::string protection = "auto";
  double drain = 0.3, warmup = 0, setup_timeout = 20;
  // The NDR/PDR search (bench/search.h), at the first payload size.
  bool search = false;
  double pdr_loss = 0.005, search_duration = 0.25, search_precision = 0.02, search_max = 0;
  int search_trials = 40, final_trials = 1;
  // The offered-load sweep: fractions of each job's own PDR lower bound (implies the search).
  std::string loads;
  bool fresh = false;
  // One-way delays across machines (bench/ssh/clock_exchange.h).
  std::string clock_sync = "auto", clock_sync_addr;
  uint16_t clock_sync_port = 9101;
  // CPU placement, the common load and competitors (bench/ssh/load_plan.h).
  std::string proxy_cpu = "auto";
  double common_load = 0;
  std::string competitors;
};

// Every flag of ssh_throughput, bound to `o`.
void add_ssh_throughput_flags(CLI::App& app, SshThroughputOptions& o);

// The flags //bench:proxy --hosts=ssh shares with ssh_throughput, in the --help group `group`:
// the three hosts (not required: that tool asks for them with --hosts=ssh), the test links but
// --port, SSH and the agent, --setup-timeout.
void add_ssh_host_flags(CLI::App& app, SshThroughputOptions& o, const std::string& group);

// The SSH settings every host's ssh and scp get.
SshOptions ssh_options_of(const SshThroughputOptions& o);

}  // namespace ulsnet::ssh
