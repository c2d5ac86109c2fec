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
//    and traceroute work across it. As RFC 1812 asks of a router:
//     * a packet larger than the outgoing interface's MTU with DF set is answered with ICMP
//       "fragmentation needed" (3/4) carrying that MTU, so path-MTU discovery works across it;
//       one without DF is dropped and counted (ipv4_needs_fragmenting): the zero-copy path
//       forwards a frame in its own buffer and never splits it, and a fragmenting router is
//       a slow path this benchmark has no use for;
//     * packets to a limited or directed broadcast address (of any of its subnets) or to a
//       multicast group are dropped and counted, never forwarded and never ARPed for (RFC 2644:
//       directed broadcasts are not forwarded by default);
//     * no ICMP error is sent about an ICMP error, a fragment other than the first, a packet to
//       a broadcast/multicast address, or from a source that is not one host (RFC 1812
//       4.3.2.7; counted icmp_errors_suppressed);
//     * ICMP errors to one destination are rate-limited by a token bucket, as Linux's
//       icmp_ratelimit (a burst of 6, then one per second), except "fragmentation needed",
//       which Linux does not limit either, so as not to slow path-MTU discovery (counted
//       icmp_errors_rate_limited).
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
  // The link's IP MTU: the largest IPv4 packet (total length) the Stack sends on it. Methods
  // read it off the interface (SIOCGIFMTU); 1500 is only the default of a hand-made config.
  uint32_t mtu = 1500;
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
  // ICMP error rate limit per destination (see above): `icmp_rate_burst` errors at once, then
  // one per `icmp_rate_interval_ns`. An interval of 0 turns the limit off.
  uint32_t icmp_rate_burst = 6;
  uint64_t icmp_rate_interval_ns = 1'000'000'000ull;
};

struct StackCounters {
  uint64_t rx_frames = 0;
  uint64_t forwarded = 0;   // frames sent on, in place
  uint64_t generated = 0;   // frames the stack built (ARP, ICMP)
  uint64_t arp_requests_sent = 0;
  uint64_t arp_replies_sent = 0;
  uint64_t icmp_echo_replies = 0;
  uint64_t icmp_time_exceeded_sent = 0;
  uint64_t icmp_frag_needed_sent = 0;     // ICMP 3/4 with the next-hop MTU
  uint64_t icmp_errors_suppressed = 0;    // an error RFC 1812 4.3.2.7 forbids (about an error...)
  uint64_t icmp_errors_rate_limited = 0;  // an error its destination's token bucket refused
  uint64_t consumed = 0;    // frames handled here: ARP/echo answered in place, ARP replies learned
  uint64_t generate_failed = 0;  // a frame the stack wanted to build or answer with could not
                                 // be (no buffer, or its TX list was full)
  DropCounters drops;
};

// One interface's frames to transmit: a list of fixed capacity over storage its TxBatch owns or
// was given. push_back never allocates; a full list refuses the frame (the Stack counts it).
class TxList {
 public:
  bool push_back(const Frame& f) noexcept {
    if (size_ == capacity_) return false;
#ifdef ULSNET_SANDBOX_IMAGE
    // In the sandbox image the kernel may end an upcall at any instruction, and the next one
    // reads this list as the ended one left it (sandbox/uls/image_main.cc): the entry is whole
    // before the size counts it, and the caller's count of the outcome comes after both.
    // Compiler barriers only; the other methods' builds do not have them.
    data_[size_] = f;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    ++size_;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
#else
    data_[size_++] = f;
#endif
    return true;
  }
  void erase(size_t i) noexcept {  // keeps the order of the rest
    for (size_t k = i + 1; k < size_; ++k) data_[k - 1] = data_[k];
    --size_;
  }
  void clear() noexcept { size_ = 0; }
  size_t size() const noexcept { return size_; }
  size_t capacity() const noexcept { return capacity_; }
  bool empty() const noexcept { return size_ == 0; }
  Frame& operator[](size_t i) noexcept { return data_[i]; }
  const Frame& operator[](size_t i) const noexcept { return data_[i]; }
  Frame* begin() noexcept { return data_; }
  Frame* end() noexcept { return data_ + size_; }
  const Frame* begin() const noexcept { return data_; }
  const Frame* end() const noexcept { return data_ + size_; }
  operator std::span<Frame>() noexcept { return {data_, size_}; }

 private:
  friend class TxBatch;
  Frame* data_ = nullptr;
  uint32_t size_ = 0, capacity_ = 0;
};

// Frames the stack wants transmitted, one list per interface, `capacity` frames each. The caller
// passes each list to that interface's Device::tx_burst and clears it. The storage is the
// batch's own (allocated once, when it is made) or the caller's, e.g. in the sandbox region with
// the rest of an upcall's grant: then the whole batch can live there too (it holds no pointer
// to the process heap).
class TxBatch {
 public:
  static constexpr size_t kMaxIfaces = 4;
  static constexpr uint32_t kDefaultCapacity = 256;

  class Lists {
   public:
    size_t size() const noexcept { return n_; }
    TxList& operator[](size_t i) noexcept { return l_[i]; }
    const TxList& operator[](size_t i) const noexcept { return l_[i]; }
    TxList* begin() noexcept { return l_; }
    TxList* end() noexcept { return l_ + n_; }
    const TxList* begin() const noexcept { return l_; }
    const TxList* end() const noexcept { return l_ + n_; }

   private:
    friend class TxBatch;
    TxList l_[kMaxIfaces];
    size_t n_ = 0;
  };

  // `ifaces` lists (at most kMaxIfaces) of `capacity` frames in storage of its own.
  explicit TxBatch(size_t ifaces = 0, uint32_t capacity = kDefaultCapacity)
      : own_(ifaces == 0 ? nullptr : new Frame[ifaces * size_t(capacity)]) {
    place(ifaces, capacity, own_);
  }
  // The same in `storage`, which must hold ifaces * capacity frames and outlive the batch.
  TxBatch(size_t ifaces, uint32_t capacity, Frame* storage) { place(ifaces, capacity, storage); }
  ~TxBatch() { delete[] own_; }
  TxBatch(const TxBatch&) = delete;
  TxBatch& operator=(const TxBatch&) = delete;
  TxBatch(TxBatch&& o) noexcept : per_iface(o.per_iface), own_(o.own_) {
    o.own_ = nullptr;
    o.per_iface = Lists{};
  }
  TxBatch& operator=(TxBatch&& o) noexcept {
    if (this != &o) {
      delete[] own_;
      per_iface = o.per_iface;
      own_ = o.own_;
      o.own_ = nullptr;
      o.per_iface = Lists{};
    }
    return *this;
  }

  void clear() noexcept {
    for (auto& l : per_iface) l.clear();
  }

  Lists per_iface;

 private:
  void place(size_t ifaces, uint32_t capacity, Frame* storage) noexcept {
    per_iface.n_ = ifaces < kMaxIfaces ? ifaces : kMaxIfaces;
    for (size_t i = 0; i < per_iface.n_; ++i) {
      per_iface.l_[i].data_ = storage + i * capacity;
      per_iface.l_[i].capacity_ = capacity;
    }
  }

  Frame* own_ = nullptr;
};

// A TX list's capacity that one burst of `batch` received frames cannot fill: each frame yields
// at most one frame on a list (forwarded or answered) and one generated frame (an ARP request or
// an ICMP error), plus room for a few more.
constexpr uint32_t tx_capacity(uint32_t batch) noexcept { return 2 * batch + 8; }

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
  // Queues a frame that is not a forwarded one (an answer in place, a generated frame) on
  // iface's TX list; a full list releases it and counts generate_failed. False if so.
  bool queue_reply(int iface, const Frame& f, TxBatch& out) noexcept;
  // Sends frame `f` to `next_hop` on `out_iface`, or asks ARP and drops (kNoArpEntry).
  void send_to(int out_iface, Ipv4Addr next_hop, Frame& f, TxBatch& out, uint64_t now_ns);
  void send_arp_request(int out_iface, Ipv4Addr target, TxBatch& out, uint64_t now_ns);
  // Sends an ICMP error (type, code; `mtu` goes in bytes 6-7, for 3/4) about the packet in `f`
  // back out of `iface`, unless RFC 1812 forbids it or the destination's rate limit refuses it.
  void send_icmp_error(int iface, const Frame& f, const Ipv4View& v, uint8_t type, uint8_t code,
                       uint16_t mtu, TxBatch& out, uint64_t now_ns);
  bool icmp_rate_allow(Ipv4Addr dst, uint64_t now_ns) noexcept;
  int route(Ipv4Addr dst) const noexcept;  // interface whose subnet holds dst, or -1
  bool is_local(Ipv4Addr a) const noexcept;
  // 255.255.255.255 or the directed broadcast address of one of our subnets.
  bool is_broadcast(Ipv4Addr a) const noexcept;

  // One token bucket per destination, direct-mapped by address: a destination that lands on an
  // occupied slot takes it over with a full bucket (so the limit holds per destination for up
  // to kIcmpBuckets destinations at once; beyond that a slot's owner can start afresh).
  struct IcmpBucket {
    uint32_t dst = 0;
    bool used = false;
    uint64_t credit_ns = 0, last_ns = 0;
  };
  static constexpr size_t kIcmpBuckets = 256;

  StackConfig cfg_;
  std::vector<RelayRoute> relay_routes_;
  ArpCache arp_;
  StackCounters counters_;
  IcmpBucket icmp_buckets_[kIcmpBuckets] = {};
};

}  // namespace ulsnet
