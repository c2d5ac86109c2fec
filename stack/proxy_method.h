// ProxyMethod: one way of running the proxy host in the middle of sender -> proxy -> receiver,
// and the contract every method keeps: the bench harness creates the three hosts, then, in a
// child process that has entered the proxy's network namespace, makes the method by name (the
// registry, baselines/registry.h, lists every method with its description), start()s it, run()s
// it until told to stop, and collects report(). baselines/README.md explains each method.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "stack/net_types.h"
#include "stack/stack.h"

namespace ulsnet {

// One side of the proxy: its interface and the host on the other end of the link.
struct ProxyPort {
  std::string ifname;
  MacAddr mac;
  Ipv4Addr ip;
  int prefix_len = 24;
  Ipv4Addr peer_ip;
  MacAddr peer_mac;
  // The link's IP MTU for the Stack; 0 (the default) = the interface's own, read when the
  // method starts (interface_mtu). A method never assumes 1500.
  uint32_t mtu = 0;
};

struct ProxyConfig {
  std::string method;
  std::string variant;         // see above; empty = the method's default
  ForwardMode mode = ForwardMode::kRelay;
  ProxyPort in;                // toward the sender
  ProxyPort out;               // toward the receiver
  uint16_t relay_port = 9000;  // relay: listen port on in.ip
  uint16_t relay_to_port = 9000;  // relay: destination port on out.peer_ip
  uint32_t batch = 32;         // frames per burst / datagrams per mmsg call
  uint32_t pool_frames = 4096; // PacketPool size per device
  bool verify_udp_checksum = true;
  bool static_neighbors = true;  // seed ARP with both peers (else resolve by ARP)
  // sandbox only: the extension's protection domain, "auto" | "pkey" | "mprotect" | "none"
  // (see sandbox/protection.h); auto = the strongest this machine has.
  std::string protection = "auto";
  // af_xdp devices only: see stack/af_xdp_device.h.
  bool need_wakeup = true;
  bool busy_poll = false;
};

// Thrown by start() when the method cannot run here, with a message that says why
// (missing privilege, missing kernel feature, bad interface).
class MethodError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class ProxyMethod {
 public:
  virtual ~ProxyMethod() = default;
  // Opens sockets/devices in the current network namespace. Throws MethodError.
  virtual void start(const ProxyConfig& cfg) = 0;
  // Forwards until `stop` becomes true; checks it at least every 50 ms.
  virtual void run(const std::atomic<bool>& stop) = 0;
  // After run(): {"forwarded": N, "drops": {stage: {reason: N}}, "device": {...}, ...}. The
  // stages are the proxy's of DropStage (stack/drop_stage.h: is_proxy_stage); every frame that
  // entered and did not leave is in one of them.
  virtual nlohmann::json report() = 0;
  // While run() runs, from another thread (//bench:proxy's status lines): the counters so far,
  // {"forwarded": N, "drops": {stage: {reason: N}}} as in report() (without what only stopping
  // decides, e.g. frames left in a device), and, where the method has devices of its own,
  // "device": {"in"|"out": {"rx_frames", "tx_frames"}}. Counts never go down from one call to the
  // next, and report() counts at least as many. Waits at most about kLiveWaitMs; null when the
  // method has no live counters or its loop did not answer in time (not running).
  static constexpr int kLiveWaitMs = 250;
  virtual nlohmann::json live() { return nullptr; }
};

// What the registry knows of a method: its name and variants as used in flags and results, and
// what it can do. Every factory gets its row, so a method checks its config against it.
struct MethodInfo {
  std::string_view name;
  std::vector<std::string_view> variants;  // first is the default
  // Variants run only when named (`method:variant`), not when a run takes every variant: each
  // changes one thing a reader asks about, at a cost a default run need not pay.
  std::vector<std::string_view> named_only;
  bool relay = false;                      // supports relay mode
  bool router = false;                     // supports router mode
  bool kernel_owns_addresses = false;  // proxy's kernel holds its IP addresses (else the Stack does)
  // Forwards by XDP redirect into the veth toward the receiver: the receiving veth end must be
  // in NAPI mode (TopologyOptions::veth_napi) or the kernel drops every redirected frame.
  bool needs_veth_napi = false;
  std::string_view doc;
};

// The IP MTU of interface `ifname` in the calling thread's network namespace (SIOCGIFMTU).
// Throws MethodError naming the interface if it cannot be read.
uint32_t interface_mtu(const std::string& ifname);

// Validates cfg against the method's row, before a method touches the system: the mode is
// supported, the variant is known (empty means the default), both interfaces are named, distinct
// and exist in the calling thread's network namespace, and exactly one of the kernel and the Stack
// owns the proxy's addresses. Returns the variant to use. Throws MethodError saying why.
std::string check_method_config(const MethodInfo& m, const ProxyConfig& cfg);

}  // namespace ulsnet
