// Stack: the user-level network stack and forwarding service that every user-level method runs.
//
// It is pure protocol code: frames in, frames out, counters. It makes no system call and reads
// no clock (the caller passes now_ns). Methods differ only in how frames reach process() and
// how it is invoked (the invoker the forwarding loop calls: stack/forwarding_loop.h), never in
// this code.
//
// Modes:
//  - router: forwards any valid IPv4 packet between its interfaces: Ethernet addresses
//    rewritten, TTL decremented with an RFC 1624 incremental header-checksum update, ICMP
//    time-exceeded sent back (or a counted drop) when TTL <= 1. Transparent to end hosts: ping
//    and traceroute work across it.
//  - relay: a UDP proxy. A datagram to one of our addresses on a relayed port is re-addressed
//    (source = our address on the outgoing interface, destination = the rule's target) and sent
//    on, as an application-level proxy would, but rewritten in place: no copy.
// In both modes the stack answers ARP for its own addresses and ICMP echo to them.
//
// Forwarding happens in place in the received buffer: a forwarded frame is never copied.
// Generated frames (ARP requests/replies, ICMP errors) come from the FrameAllocator of the
// interface they leave on, and are built by copying the few header bytes they quote.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "stack/arp.h"
#include "stack/protocols.h"
#include "stack/drop_reason.h"
#include "stack/frame.h"
#include "stack/net_types.h"

namespace ulsnet {

enum class ForwardMode : uint8_t { kRouter, kRelay };
const char* forward_mode_name(ForwardMode m);  // "router" / "relay"

struct InterfaceConfig {
  std::string name;  // for reports only
  MacAddr mac;
  Ipv4Addr ip;
  int prefix_len = 24;
  FrameAllocator* allocator = nullptr;  // buffers for frames generated on this interface
};

// Relay: UDP to any of our addresses on `listen_port` goes to `to_ip:to_port`, from our
// address on the interface that reaches to_ip, with source port `listen_port`.
struct RelayRule {
  uint16_t listen_port = 0;
  Ipv4Addr to_ip;
  uint16_t to_port = 0;
};

struct StaticNeighbor {
  Ipv4Addr ip;
  MacAddr mac;
};

struct StackConfig {
  ForwardMode mode = ForwardMode::kRouter;
  std::vector<InterfaceConfig> ifaces;  // interface index = position
  std::vector<RelayRule> relays;
  std::vector<StaticNeighbor> neighbors;  // never expire
  uint64_t arp_ttl_ns = 60'000'000'000ull;
  bool verify_udp_checksum = true;        // checked on datagrams we relay or consume
  bool icmp_time_exceeded = true;         // else a TTL-expired packet is only a counted drop
};

struct StackCounters {
  uint64_t rx_frames = 0;
  uint64_t forwarded = 0;   // frames sent on, in place
  uint64_t generated = 0;   // frames the stack built (ARP, ICMP)
  uint64_t arp_requests_sent = 0;
  uint64_t arp_replies_sent = 0;
  uint64_t icmp_echo_replies = 0;
  uint64_t icmp_time_exceeded_sent = 0;
  uint64_t consumed = 0;    // frames handled here: ARP/echo answered in place, ARP replies learned
  uint64_t generate_failed = 0;  // a frame the stack wanted to build had no buffer
  DropCounters drops;
};

// Frames the stack wants transmitted, one list per interface. The caller passes each list to
// that interface's Device::tx_burst and clears it.
struct TxBatch {
  std::vector<std::vector<Frame>> per_iface;
  explicit TxBatch(size_t ifaces = 0) : per_iface(ifaces) {}
  void clear() {
    for (auto& v : per_iface) v.clear();
  }
};

class Stack {
 public:
  // Throws std::invalid_argument for a config that cannot work (no interfaces, a relay target
  // no interface reaches, a zero port).
  explicit Stack(StackConfig cfg);

  // Takes over the frames received on interface `iface`: each is forwarded (appended to
  // out.per_iface[k]), consumed, or released and counted as a drop. `out` must have one list
  // per interface. now_ns (CLOCK_MONOTONIC) drives ARP expiry.
  void process(int iface, std::span<Frame> frames, TxBatch& out, uint64_t now_ns);

  const StackCounters& counters() const noexcept { return counters_; }
  const StackConfig& config() const noexcept { return cfg_; }
  ArpCache& arp_cache() noexcept { return arp_; }

 private:
  struct RelayRoute {
    RelayRule rule;
    int out_iface;
  };
  void process_one(int iface, Frame& f, TxBatch& out, uint64_t now_ns);
  void handle_arp(int iface, Frame& f, TxBatch& out, uint64_t now_ns);
  void handle_ipv4(int iface, Frame& f, TxBatch& out, uint64_t now_ns);
  void relay_udp(int iface, Frame& f, const RelayRoute& r, TxBatch& out, uint64_t now_ns);
  void drop(const Frame& f, DropReason r) noexcept;
  // Sends frame `f` to `next_hop` on `out_iface`, or asks ARP and drops (kNoArpEntry).
  void send_to(int out_iface, Ipv4Addr next_hop, Frame& f, TxBatch& out, uint64_t now_ns);
  void send_arp_request(int out_iface, Ipv4Addr target, TxBatch& out, uint64_t now_ns);
  void send_time_exceeded(int iface, const Frame& f, TxBatch& out);
  int route(Ipv4Addr dst) const noexcept;  // interface whose subnet holds dst, or -1
  bool is_local(Ipv4Addr a) const noexcept;

  StackConfig cfg_;
  std::vector<RelayRoute> relay_routes_;
  ArpCache arp_;
  StackCounters counters_;
};

}  // namespace ulsnet
