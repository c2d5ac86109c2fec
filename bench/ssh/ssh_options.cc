// //bench/ssh:ssh_throughput's flags: see bench/ssh/ssh_options.h.
#include "bench/ssh/ssh_options.h"

namespace ulsnet::ssh {
namespace {

// The hosts, what each point runs, the result file.
void add_host_and_point_flags(CLI::App& app, SshThroughputOptions& o) {
  app.add_option("--sender", o.sender, "the sender's host (HOST or USER@HOST, as for ssh)")->required();
  app.add_option("--proxy", o.proxy, "the proxy's host")->required();
  app.add_option("--receiver", o.receiver, "the receiver's host")->required();
  app.add_option("--method,--methods", o.methods, "NAME or NAME:VARIANT, comma-separated");
  app.add_option("--mode,--modes", o.modes, "relay and/or router, comma-separated");
  app.add_option("--payload,--sizes", o.payloads, "UDP payload bytes (24..1472), comma-separated");
  app.add_option("--rates", o.rates, "max (the generator unpaced) and/or packets/s, comma-separated");
  app.add_option("--duration", o.duration, "seconds per trial")->check(CLI::Range(0.05, 600.0));
  app.add_option("--reps", o.reps, "repetitions per point")->check(CLI::Range(1, 1000));
  app.add_option("--out", o.out,
                 "result file (default results/throughput-ssh-<UTC time>.json); an existing one of the same "
                 "configuration is resumed: its finished points and searches are kept");
  app.add_flag("--fresh", o.fresh, "--out names an existing file: start over instead of resuming it");
}

// One-way delays across machines: comparing the sender's and the receiver's clocks.
void add_clock_flags(CLI::App& app, SshThroughputOptions& o) {
  app.add_option("--clock-sync", o.clock_sync,
                 "one-way delays across machines: auto (compare the sender's and the receiver's clocks over UDP before "
                 "and after every stream; run the generator on the receiver's clock when they are different machines), "
                 "always (shift even on one machine), off (no comparison: delays valid on one machine only)")
      ->check(CLI::IsMember({"auto", "always", "off"}));
  app.add_option("--clock-sync-addr", o.clock_sync_addr,
                 "the receiver's address as the sender reaches it for the comparison (default: the address the "
                 "receiver's sshd was reached on)");
  app.add_option("--clock-sync-port", o.clock_sync_port, "UDP port of the receiver's clock responder")
      ->check(CLI::Range(1, 65535));
}

// The test links: each interface, address and MAC; the proxy's kernel addresses (the stream's
// port apart: //bench:proxy names it --relay-port).
void add_link_flags_but_port(CLI::App& app, SshThroughputOptions& o) {
  app.add_option("--sender-if", o.sender_if, "the sender's test interface (default: the one holding --sender-ip)");
  app.add_option("--sender-ip", o.sender_ip, "");
  app.add_option("--sender-mac", o.sender_mac, "(default: read on the host)");
  app.add_option("--proxy-in-if", o.proxy_in_if, "the proxy's interface toward the sender (default: the one holding --proxy-in-ip)");
  app.add_option("--proxy-in-ip", o.proxy_in_ip, "");
  app.add_option("--proxy-in-mac", o.proxy_in_mac);
  app.add_option("--proxy-out-if", o.proxy_out_if, "the proxy's interface toward the receiver (default: the one holding --proxy-out-ip)");
  app.add_option("--proxy-out-ip", o.proxy_out_ip, "");
  app.add_option("--proxy-out-mac", o.proxy_out_mac);
  app.add_option("--receiver-if", o.receiver_if, "the receiver's test interface (default: the one holding --receiver-ip)");
  app.add_option("--receiver-ip", o.receiver_ip, "");
  app.add_option("--receiver-mac", o.receiver_mac);
  app.add_option("--prefix", o.prefix, "prefix length of the test subnets")->check(CLI::Range(1, 32));
  app.add_option("--proxy-addresses", o.proxy_addresses,
                 "as-is: the proxy's kernel addresses stay as configured; adjust: the agent adds or removes the "
                 "proxy's test addresses as each method needs (kernel methods own them, the Stack's do not) and "
                 "restores them")
      ->check(CLI::IsMember({"as-is", "adjust"}));
}

void add_link_flags(CLI::App& app, SshThroughputOptions& o) {
  add_link_flags_but_port(app, o);
  app.add_option("--port", o.port, "UDP port of the stream");
}

// SSH, and where the agent comes from and goes.
void add_ssh_flags(CLI::App& app, SshThroughputOptions& o) {
  app.add_option("--ssh-user", o.ssh_user, "user on every host (default: ssh's)");
  app.add_option("--ssh-port", o.ssh_port, "port of every host's sshd")->check(CLI::Range(1, 65535));
  app.add_option("--ssh-identity", o.ssh_identity, "private key file (ssh -i)");
  app.add_option("--ssh-option", o.ssh_options, "ssh -o KEY=VALUE (repeatable), e.g. StrictHostKeyChecking=accept-new");
  app.add_option("--ssh-connect-timeout", o.ssh_connect_timeout, "seconds")->check(CLI::Range(1, 300));
  app.add_flag("--no-ssh-multiplex", o.no_multiplex, "a new SSH connection per session instead of one master per host");
  app.add_option("--remote-tmp", o.remote_tmp, "where the agent's temporary directory is made on each host");
  app.add_option("--agent", o.agent, "the agent binary to copy (default: //bench/ssh:ulsnet_agent from the runfiles)");
}

// One trial: bursts, bounds, drain, warm-up, the remote steps' time.
void add_trial_flags(CLI::App& app, SshThroughputOptions& o) {
  app.add_option("--batch", o.batch, "datagrams per mmsg call, frames per burst")->check(CLI::Range(1, 1024));
  app.add_option("--max-packets", o.max_packets, "bound on datagrams per trial")
      ->check(CLI::Range(uint64_t(1000), uint64_t(100'000'000)));
  app.add_option("--protection", o.protection, "the sandbox method's protection domain");
  app.add_option("--drain", o.drain, "seconds between the generator's end and stopping the proxy")
      ->check(CLI::Range(0.0, 10.0));
  app.add_option("--warmup", o.warmup, "seconds of each trial left out of the delay statistics")
      ->check(CLI::Range(0.0, 60.0));
  app.add_option("--setup-timeout", o.setup_timeout, "seconds for a remote step (a role getting ready, mktemp)")
      ->check(CLI::Range(1.0, 300.0));
}

// The NDR/PDR search, the offered-load sweep, the proxy's CPU, the common load, competitors.
void add_search_and_load_flags(CLI::App& app, SshThroughputOptions& o) {
  app.add_flag("--search", o.search, "also NDR and PDR per job at the first payload size (bench/search.h)");
  app.add_option("--pdr-loss", o.pdr_loss, "the PDR's loss criterion")->check(CLI::Range(0.0, 0.5));
  app.add_option("--search-duration", o.search_duration, "seconds per narrowing trial")->check(CLI::Range(0.05, 60.0));
  app.add_option("--search-precision", o.search_precision, "relative width of the final brackets")
      ->check(CLI::Range(0.001, 1.0));
  app.add_option("--search-trials", o.search_trials, "bound on one search's trials")->check(CLI::Range(2, 1000));
  app.add_option("--final-trials", o.final_trials, "trials per load at the final duration (odd)")
      ->check(CLI::Range(1, 99));
  app.add_option("--search-max", o.search_max, "cap on the search ceiling, pps (0: none)")->check(CLI::Range(0.0, 1e9));
  app.add_option("--loads", o.loads,
                 "the offered-load sweep at the first payload size, as fractions of each job's own PDR lower bound "
                 "there, comma-separated (e.g. 0.1,0.5,0.9: latency at 10/50/90% of capacity; above 1 reaches into "
                 "overload; in (0.01, 10]); implies --search");
  app.add_option("--proxy-cpu", o.proxy_cpu,
                 "the CPU the proxy's agent pins the method to (sched_setaffinity, every thread; the CPU whose "
                 "/proc/stat time is the proxy's in the CPU figures): auto (the proxy host's last online CPU when it "
                 "has >= 2, else none), none, or a CPU number");
  app.add_option("--common-load", o.common_load,
                 "pps of the common-load point every job gets (latency and CPU per packet at equal work: the "
                 "targets); 0: half the batched kernel-socket relay's PDR lower bound when that job's search runs "
                 "(it runs first), else no common-load point")
      ->check(CLI::Range(0.0, 1e9));
  app.add_option("--competitors", o.competitors,
                 "the common-load point again with N CPU-bound competitor processes on the proxy's CPU, a list "
                 "(e.g. 0,1,2,4; each in [0, 16]; default none), started and killed by the proxy's agent around "
                 "each trial");
}

}  // namespace

void add_ssh_throughput_flags(CLI::App& app, SshThroughputOptions& o) {
  app.option_defaults()->always_capture_default();
  add_host_and_point_flags(app, o);
  add_clock_flags(app, o);
  add_link_flags(app, o);
  add_ssh_flags(app, o);
  add_trial_flags(app, o);
  add_search_and_load_flags(app, o);
}

void add_ssh_host_flags(CLI::App& app, SshThroughputOptions& o, const std::string& group) {
  const std::string was = app.option_defaults()->get_group();
  app.option_defaults()->group(group);
  app.add_option("--sender", o.sender, "the sender's host (HOST or USER@HOST, as for ssh)");
  app.add_option("--proxy", o.proxy, "the proxy's host");
  app.add_option("--receiver", o.receiver, "the receiver's host");
  add_link_flags_but_port(app, o);
  add_ssh_flags(app, o);
  app.add_option("--setup-timeout", o.setup_timeout, "seconds for a remote step (a role getting ready, mktemp)")
      ->check(CLI::Range(1.0, 300.0));
  app.option_defaults()->group(was);
}

SshOptions ssh_options_of(const SshThroughputOptions& o) {
  return {o.ssh_user, o.ssh_port, o.ssh_identity, o.ssh_options, o.ssh_connect_timeout, ""};
}

}  // namespace ulsnet::ssh
