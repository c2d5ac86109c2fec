// Wire formats: Ethernet II, ARP, IPv4, ICMP and UDP. Parsers validate a view of the frame's
// bytes in place and return a DropReason on the first rule broken (no copy, no allocation);
// builders write headers into a caller's buffer. Nothing here does I/O or reads a clock.
//
// Rules for awkward IPv4 (documented here because they decide what counts as a drop):
//  - Fragments (MF set or offset != 0) are forwarded by the router (it needs no reassembly) and
//    dropped by rule (kIpFragment) where the stack itself would consume the datagram: relay and
//    local delivery. A relay cannot re-address a fragment whose UDP header is elsewhere.
//  - Options (IHL > 5) are forwarded untouched by the router and dropped by rule (kIpOptions)
//    by the relay and local delivery, which keep to 20-byte headers.
//  - A frame longer than 14 + total length (Ethernet padding) is accepted; the padding is
//    trimmed (length only, no copy) before the frame is forwarded.
#pragma once

#include <cstdint>
#include <optional>
#include <span>

#include "stack/drop_reason.h"
#include "stack/net_types.h"

namespace ulsnet {

inline constexpr uint16_t kEtherTypeIpv4 = 0x0800;
inline constexpr uint16_t kEtherTypeArp = 0x0806;
inline constexpr uint32_t kEthHeaderLen = 14;
inline constexpr uint32_t kIpv4MinHeaderLen = 20;
inline constexpr uint32_t kUdpHeaderLen = 8;
inline constexpr uint32_t kIcmpHeaderLen = 8;
inline constexpr uint32_t kArpLen = 28;
inline constexpr uint8_t kProtoIcmp = 1;
inline constexpr uint8_t kProtoUdp = 17;

// ---- Ethernet II
struct EthView {
  MacAddr dst, src;
  uint16_t ethertype = 0;
};
// Parses the 14-byte header (no copy). kEthTooShort if the frame is shorter.
std::optional<DropReason> parse_eth(std::span<const uint8_t> frame, EthView& out) noexcept;
// Writes dst, src, ethertype at p[0..14).
void write_eth(uint8_t* p, const MacAddr& dst, const MacAddr& src, uint16_t ethertype) noexcept;

// ---- ARP (Ethernet/IPv4 only)
inline constexpr uint16_t kArpRequest = 1;
inline constexpr uint16_t kArpReply = 2;
struct ArpView {
  uint16_t op = 0;
  MacAddr sha, tha;
  Ipv4Addr spa, tpa;
};
// Validates htype 1, ptype 0x0800, hlen 6, plen 4, op 1 or 2 and length (kArpMalformed,
// kArpUnsupportedOp). `payload` starts after the Ethernet header.
std::optional<DropReason> parse_arp(std::span<const uint8_t> payload, ArpView& out) noexcept;
// Writes a 28-byte ARP body at p.
void write_arp(uint8_t* p, uint16_t op, const MacAddr& sha, Ipv4Addr spa, const MacAddr& tha,
               Ipv4Addr tpa) noexcept;

// ---- IPv4
struct Ipv4View {
  uint32_t header_len = 0;  // IHL * 4
  uint32_t total_len = 0;
  uint8_t ttl = 0;
  uint8_t protocol = 0;
  bool fragment = false;  // MF set or offset != 0
  bool dont_fragment = false;  // DF set
  uint16_t frag_offset = 0;    // in 8-byte units; 0 for an unfragmented packet or a first fragment
  Ipv4Addr src, dst;
};
// Full validation of the header at `packet` (the bytes after Ethernet): length >= 20,
// version 4, IHL >= 5 and header within the packet, total length within [IHL*4, packet size],
// header checksum, source not multicast/broadcast/loopback/zero-net.
std::optional<DropReason> parse_ipv4(std::span<const uint8_t> packet, Ipv4View& out) noexcept;
// Writes a 20-byte header with checksum (DF set, id 0).
void write_ipv4(uint8_t* p, Ipv4Addr src, Ipv4Addr dst, uint8_t protocol, uint16_t total_len,
                uint8_t ttl) noexcept;
// Field offsets used by in-place rewrites.
inline constexpr uint32_t kIpOffTtl = 8, kIpOffProtocol = 9, kIpOffChecksum = 10, kIpOffSrc = 12, kIpOffDst = 16;
// Decrements TTL in place with an RFC 1624 update of the header checksum (no copy).
void ipv4_decrement_ttl(uint8_t* ip) noexcept;

// ---- UDP
struct UdpView {
  uint16_t src_port = 0, dst_port = 0, length = 0, checksum = 0;
};
// `segment` is the IP payload (total_len - header_len bytes). kUdpMalformed if shorter than 8
// or the length field is < 8 or > the segment; kUdpBadChecksum if the checksum is nonzero and
// wrong (zero means "no checksum" and is accepted, RFC 768).
std::optional<DropReason> parse_udp(std::span<const uint8_t> segment, Ipv4Addr src, Ipv4Addr dst,
                                    bool verify_checksum, UdpView& out) noexcept;
// Full UDP checksum of a datagram (header's checksum field must be zero or is skipped).
uint16_t udp_checksum(const uint8_t* udp, uint16_t length, Ipv4Addr src, Ipv4Addr dst) noexcept;

// ---- ICMP
inline constexpr uint8_t kIcmpEchoReply = 0;
inline constexpr uint8_t kIcmpEchoRequest = 8;
inline constexpr uint8_t kIcmpDestUnreachable = 3;
inline constexpr uint8_t kIcmpCodeFragNeeded = 4;  // with type 3: "fragmentation needed and DF set"
inline constexpr uint8_t kIcmpTimeExceeded = 11;
// ICMP error messages (RFC 1812 4.3.2.7: a router sends no ICMP error about one of these):
// destination unreachable, source quench, redirect, time exceeded, parameter problem.
constexpr bool icmp_is_error(uint8_t type) noexcept {
  return type == 3 || type == 4 || type == 5 || type == 11 || type == 12;
}
struct IcmpView {
  uint8_t type = 0, code = 0;
};
// kIcmpMalformed if shorter than 8; kIcmpBadChecksum if the checksum over the message is wrong.
std::optional<DropReason> parse_icmp(std::span<const uint8_t> message, IcmpView& out) noexcept;

}  // namespace ulsnet
