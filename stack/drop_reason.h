// Why a frame was dropped, and where. Every drop anywhere in ulsnet is counted under one of
// these, so that sent = received + sum(drops) can be checked.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace ulsnet {

#define ULSNET_DROP_REASONS(X)                                                       \
  X(kEthTooShort, "eth_too_short")               /* shorter than an Ethernet header */ \
  X(kEthNotForUs, "eth_not_for_us")              /* unicast to another MAC */          \
  X(kEthUnknownType, "eth_unknown_ethertype")    /* not IPv4 or ARP (incl. VLAN) */    \
  X(kArpMalformed, "arp_malformed")                                                    \
  X(kArpNotForUs, "arp_not_for_us")              /* request for an address we don't own */ \
  X(kArpUnsupportedOp, "arp_unsupported_op")                                           \
  X(kIpTooShort, "ipv4_too_short")               /* frame shorter than 20-byte header */ \
  X(kIpBadVersion, "ipv4_bad_version")                                                 \
  X(kIpBadIhl, "ipv4_bad_ihl")                   /* IHL < 5 or header past frame end */ \
  X(kIpBadTotalLength, "ipv4_bad_total_length")  /* total length < IHL or > frame */   \
  X(kIpBadChecksum, "ipv4_bad_checksum")                                               \
  X(kIpBadSource, "ipv4_bad_source")             /* multicast/broadcast/loopback source */ \
  X(kIpFragment, "ipv4_fragment")                /* fragments are dropped by rule */   \
  X(kIpOptions, "ipv4_options")                  /* options are dropped by rule (relay) */ \
  X(kIpTtlExpired, "ipv4_ttl_expired")           /* TTL <= 1 when forwarding */        \
  X(kIpNoRoute, "ipv4_no_route")                                                       \
  X(kIpTooBig, "ipv4_too_big")                   /* DF set, over the outgoing MTU */  \
  X(kIpNeedsFragmenting, "ipv4_needs_fragmenting") /* DF clear, over the MTU: no frag */ \
  X(kIpBroadcastDestination, "ipv4_broadcast_destination") /* RFC 2644: not forwarded */ \
  X(kIpMulticastDestination, "ipv4_multicast_destination") /* no multicast routing */ \
  X(kIpNotForUs, "ipv4_not_for_us")              /* relay mode: not to our address */  \
  X(kIpUnsupportedProto, "ipv4_unsupported_protocol") /* to us, not ICMP/UDP */        \
  X(kIcmpMalformed, "icmp_malformed")                                                  \
  X(kIcmpBadChecksum, "icmp_bad_checksum")                                             \
  X(kIcmpUnsupportedType, "icmp_unsupported_type")                                     \
  X(kUdpMalformed, "udp_malformed")              /* length field inconsistent */       \
  X(kUdpBadChecksum, "udp_bad_checksum")                                               \
  X(kUdpNoListener, "udp_no_listener")           /* relay: port not relayed */         \
  X(kNoArpEntry, "no_arp_entry")                 /* next hop unresolved; ARP sent */   \
  X(kNoBuffer, "no_buffer")                      /* could not allocate a frame */      \
  X(kFrameTooLong, "frame_too_long")             /* result would exceed the buffer */ \
  X(kTxBatchFull, "tx_batch_full")               /* its interface's TX list was full */

enum class DropReason : uint8_t {
#define ULSNET_X(id, name) id,
  ULSNET_DROP_REASONS(ULSNET_X)
#undef ULSNET_X
      kCount
};

inline constexpr size_t kDropReasonCount = size_t(DropReason::kCount);

// Stable snake_case name used in results JSON.
constexpr std::string_view drop_reason_name(DropReason r) {
  constexpr std::array<std::string_view, kDropReasonCount> names = {
#define ULSNET_X(id, name) name,
      ULSNET_DROP_REASONS(ULSNET_X)
#undef ULSNET_X
  };
  return size_t(r) < names.size() ? names[size_t(r)] : "unknown";
}

// Drop counters, one per reason. Plain counters: a DropCounters belongs to one thread.
struct DropCounters {
  std::array<uint64_t, kDropReasonCount> by_reason{};
  void count(DropReason r, uint64_t n = 1) noexcept { by_reason[size_t(r)] += n; }
  uint64_t operator[](DropReason r) const noexcept { return by_reason[size_t(r)]; }
  uint64_t total() const noexcept {
    uint64_t t = 0;
    for (uint64_t v : by_reason) t += v;
    return t;
  }
};

}  // namespace ulsnet
