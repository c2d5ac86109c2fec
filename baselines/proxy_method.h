// ProxyMethod: one way of running the proxy host in the middle of sender -> proxy -> receiver.
//
// The bench harness creates the three hosts, then, in a child process that has entered the
// proxy's network namespace, makes the method by name, start()s it, run()s it until told to
// stop, and collects report(). Method names are exactly those used in flags and results.
//
//   kernel-socket   UDP relay on kernel sockets (relay mode only). Variants: "per-datagram"
//                   (one recvfrom/sendto per datagram: the paper-era form) and "batched"
//                   (recvmmsg/sendmmsg).
//   raw-socket      the ulsnet Stack over a packet-socket Device in one thread. Variants name
//                   the device: "af_packet" (plain recvfrom/sendto: the paper's raw socket) and
//                   "af_packet_mmap" (TPACKET_V3 rings).
//   user-thread     device I/O in one thread, the Stack in another, frames handed over queues
//                   with blocking wake-ups so every hand-off pays for scheduling. Variants as
//                   raw-socket.
//   sandbox         the ulsnet Stack as a sandbox extension (sandbox/): its state in the shared
//                   region, invoked by an upcall per received burst under a protection domain.
//                   Variants name the device: "af_xdp" (AF_XDP with the region's packet pool
//                   as UMEM) and "af_packet_mmap" (to compare invocation with raw-socket alone),
//                   both on a stock kernel; and "uls": the real ULS kernel (kernel/patches),
//                   the Stack as the region's image run by kernel upcalls in whatever process
//                   is current, frames on the zero-copy e1000 rings (only in the VMs).
//   xdp-redirect    an in-kernel XDP program doing the Stack's rewrite and redirecting to the
//                   other interface: the fastest this path allows. Variants: "native", "skb".
//   kernel-forward  the kernel's own IP forwarding (router mode only): the reference for router
//                   mode. The method only switches ip_forward on and counts.
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
  // After run(): {"forwarded": N, "drops": {stage: {reason: N}}, "device": {...}, ...}.
  // Stages used: "proxy_kernel" (dropped by the kernel before the method saw it),
  // "proxy_stack" (the Stack's drop reasons), "proxy_tx" (could not be sent), "proxy_queue"
  // (user-thread hand-off). Every frame that entered and did not leave is in one of them.
  virtual nlohmann::json report() = 0;
};

struct MethodInfo {
  std::string_view name;
  std::vector<std::string_view> variants;  // first is the default
  bool relay;                              // supports relay mode
  bool router;                             // supports router mode
  bool kernel_owns_addresses;  // proxy's kernel holds its IP addresses (else the Stack does)
  std::string_view doc;
  // Forwards by XDP redirect into the veth toward the receiver: the receiving veth end must be
  // in NAPI mode (TopologyOptions::veth_napi) or the kernel drops every redirected frame.
  bool needs_veth_napi = false;
};

// Whether (method, variant) needs the ULS kernel (/dev/uls: the VMs of --hosts=vm).
inline bool needs_uls_kernel(std::string_view method, std::string_view variant) {
  return method == "sandbox" && variant == "uls";
}

// The registry: every method, in the order experiments run them.
const std::vector<MethodInfo>& proxy_methods();
const MethodInfo* find_proxy_method(std::string_view name);
// Makes a method; throws MethodError for an unknown name.
std::unique_ptr<ProxyMethod> make_proxy_method(std::string_view name);

// "name" or "name:variant" specs (as in --methods) -> (method, variant) pairs in order; no specs
// means every method. A variant named in a spec always goes in; one the spec leaves implicit (all
// methods, or all variants of a named method) only if implicit(method, variant, every_method).
// Throws MethodError for an unknown method or variant.
using MethodVariant = std::pair<const MethodInfo*, std::string>;
std::vector<MethodVariant> expand_method_specs(
    const std::vector<std::string>& specs,
    const std::function<bool(const MethodInfo&, std::string_view variant, bool every_method)>& implicit);

}  // namespace ulsnet
