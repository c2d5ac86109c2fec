// Hosts as network namespaces: sender -- proxy -- receiver (or sender -- receiver).
//
// Names are unique per run ("ulsnet-<pid>-<n>-snd"), so two runs never collide. A Topology
// removes its namespaces in its destructor; on SIGINT/SIGTERM/SIGHUP a handler kills the
// harness's children and removes every live namespace (umount + unlink, which is all
// `ip netns del` does, and async-signal-safe) before the process dies. Namespaces of a run
// killed by SIGKILL are removed by the next run (reap_stale_namespaces).
//
// Addressing (fixed: each run has its own namespaces, so equal addresses never meet):
//   sender   s0 10.201.1.1/24  02:00:0a:c9:01:01   route 10.201.2.0/24 via 10.201.1.2
//   proxy    p0 10.201.1.2/24  02:00:0a:c9:01:02
//            p1 10.201.2.1/24  02:00:0a:c9:02:01
//   receiver r0 10.201.2.2/24  02:00:0a:c9:02:02   route 10.201.1.0/24 via 10.201.2.1
// The proxy's kernel holds p0/p1's addresses only for methods that use kernel protocol
// processing; for user-level stacks the Stack owns them (and answers ARP), the kernel has none
// and ip_forward stays 0, so the kernel ignores the traffic. Transmit checksum offload is off
// on every veth so UDP checksums on the wire are complete (veth otherwise leaves partial
// checksums that packet sockets and XDP see). IPv6 is disabled in every host, so the only
// frames on the links are the experiment's.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "stack/proxy_method.h"
#include "stack/net_types.h"

namespace ulsnet {

struct TopologyOptions {
  bool three_hosts = true;             // false: sender -- receiver directly (calibration)
  bool proxy_kernel_addresses = true;  // see above
  bool static_neighbors = true;        // else hosts resolve each other by ARP
  // GRO on every veth end, which puts veth receive in NAPI mode (a per-queue ring drained by
  // a NAPI poll instead of the per-CPU backlog). XDP redirects and XDP_TX into a veth are
  // dropped unless the receiving end is in NAPI mode, so xdp-redirect and the in-kernel
  // generator need it; results record it.
  bool veth_napi = false;
  // With veth_napi: the proxy's interfaces poll in NAPI kernel threads pinned to this CPU
  // (-1: softirq on whichever CPU sent the frame, i.e. the sender's). A real proxy host does
  // its kernel receive work on its own CPUs; this puts it on the proxy's CPU here too.
  int proxy_napi_cpu = -1;
  // Likewise for the receiver's interface (its host's CPU), so that the proxy's CPU does not
  // pay for the receiver's kernel receive work (veth receive runs on the sending CPU).
  int receiver_napi_cpu = -1;
  // The NAPI threads' scheduling: SCHED_FIFO at this priority (1..99), or 0 for SCHED_OTHER
  // (what the kernel gives threaded NAPI by default).
  int napi_fifo_priority = 50;
};

struct HostPort {
  std::string ns, ifname;
  MacAddr mac;
  Ipv4Addr ip;
};

class Topology {
 public:
  // Creates the hosts; throws std::runtime_error (naming the failed command and its stderr),
  // removing whatever it had made.
  explicit Topology(const TopologyOptions& opt);
  ~Topology();
  Topology(const Topology&) = delete;
  Topology& operator=(const Topology&) = delete;

  HostPort sender, proxy_in, proxy_out, receiver;  // proxy_* empty in the two-host form
  // The proxy's view for a ProxyConfig.
  ProxyPort proxy_port_in() const;
  ProxyPort proxy_port_out() const;
  const std::vector<std::string>& namespaces() const { return ns_; }
  // The proxy's NAPI threads and where they run: {"p0": [{"pid":..,"cpu":..}], ...}.
  const std::string& napi_report() const { return napi_; }

 private:
  void destroy() noexcept;
  std::vector<std::string> ns_;
  std::string napi_;
};

// Runs a shell command; throws std::runtime_error with its output if it fails.
std::string run_command(const std::string& cmd);
// Registers/unregisters a child pid that the signal handler must kill.
void register_child(pid_t pid);
void unregister_child(pid_t pid);
// Installs the SIGINT/SIGTERM/SIGHUP clean-up handler (idempotent).
void install_cleanup_handler();
// Names of live namespaces this process created.
std::vector<std::string> live_namespaces();
// Removes "ulsnet-<pid>-..." namespaces whose <pid> no process has (left by a run killed with
// SIGKILL, which no handler sees); returns their names. The first Topology of a run calls it.
std::vector<std::string> reap_stale_namespaces();

}  // namespace ulsnet
