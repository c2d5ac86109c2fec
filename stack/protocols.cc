#include "stack/protocols.h"

#include <cstring>

#include "stack/checksum.h"

namespace ulsnet {

std::optional<DropReason> parse_eth(std::span<const uint8_t> f, EthView& out) noexcept {
  if (f.size() < kEthHeaderLen) return DropReason::kEthTooShort;
  std::memcpy(out.dst.b.data(), f.data(), 6);
  std::memcpy(out.src.b.data(), f.data() + 6, 6);
  out.ethertype = load_be16(f.data() + 12);
  return std::nullopt;
}

void write_eth(uint8_t* p, const MacAddr& dst, const MacAddr& src, uint16_t type) noexcept {
  std::memcpy(p, dst.b.data(), 6);
  std::memcpy(p + 6, src.b.data(), 6);
  store_be16(p + 12, type);
}

std::optional<DropReason> parse_arp(std::span<const uint8_t> a, ArpView& out) noexcept {
  if (a.size() < kArpLen) return DropReason::kArpMalformed;
  const uint8_t* p = a.data();
  if (load_be16(p) != 1 || load_be16(p + 2) != kEtherTypeIpv4 || p[4] != 6 || p[5] != 4)
    return DropReason::kArpMalformed;
  out.op = load_be16(p + 6);
  if (out.op != kArpRequest && out.op != kArpReply) return DropReason::kArpUnsupportedOp;
  std::memcpy(out.sha.b.data(), p + 8, 6);
  out.spa = Ipv4Addr{load_be32(p + 14)};
  std::memcpy(out.tha.b.data(), p + 18, 6);
  out.tpa = Ipv4Addr{load_be32(p + 24)};
  return std::nullopt;
}

void write_arp(uint8_t* p, uint16_t op, const MacAddr& sha, Ipv4Addr spa, const MacAddr& tha,
               Ipv4Addr tpa) noexcept {
  store_be16(p, 1);
  store_be16(p + 2, kEtherTypeIpv4);
  p[4] = 6;
  p[5] = 4;
  store_be16(p + 6, op);
  std::memcpy(p + 8, sha.b.data(), 6);
  store_be32(p + 14, spa.v);
  std::memcpy(p + 18, tha.b.data(), 6);
  store_be32(p + 24, tpa.v);
}

std::optional<DropReason> parse_ipv4(std::span<const uint8_t> pk, Ipv4View& out) noexcept {
  if (pk.size() < kIpv4MinHeaderLen) return DropReason::kIpTooShort;
  const uint8_t* p = pk.data();
  if ((p[0] >> 4) != 4) return DropReason::kIpBadVersion;
  out.header_len = uint32_t(p[0] & 0xf) * 4;
  if (out.header_len < kIpv4MinHeaderLen || out.header_len > pk.size())
    return DropReason::kIpBadIhl;
  out.total_len = load_be16(p + 2);
  if (out.total_len < out.header_len || out.total_len > pk.size())
    return DropReason::kIpBadTotalLength;
  if (internet_checksum(p, out.header_len) != 0) return DropReason::kIpBadChecksum;
  out.ttl = p[kIpOffTtl];
  out.protocol = p[kIpOffProtocol];
  uint16_t frag = load_be16(p + 6);
  out.fragment = (frag & 0x2000) != 0 || (frag & 0x1fff) != 0;
  out.dont_fragment = (frag & 0x4000) != 0;
  out.frag_offset = uint16_t(frag & 0x1fff);
  out.src = Ipv4Addr{load_be32(p + kIpOffSrc)};
  out.dst = Ipv4Addr{load_be32(p + kIpOffDst)};
  uint8_t s0 = uint8_t(out.src.v >> 24);
  if (s0 >= 224 || s0 == 127 || s0 == 0) return DropReason::kIpBadSource;
  return std::nullopt;
}

void write_ipv4(uint8_t* p, Ipv4Addr src, Ipv4Addr dst, uint8_t protocol, uint16_t total_len,
                uint8_t ttl) noexcept {
  p[0] = 0x45;
  p[1] = 0;
  store_be16(p + 2, total_len);
  store_be16(p + 4, 0);
  store_be16(p + 6, 0x4000);
  p[8] = ttl;
  p[kIpOffProtocol] = protocol;
  store_be16(p + 10, 0);
  store_be32(p + 12, src.v);
  store_be32(p + 16, dst.v);
  store_be16(p + 10, internet_checksum(p, 20));
}

void ipv4_decrement_ttl(uint8_t* ip) noexcept {
  // TTL shares a 16-bit word with the protocol field.
  uint16_t old_word = load_be16(ip + kIpOffTtl);
  ip[kIpOffTtl] -= 1;
  uint16_t new_word = load_be16(ip + kIpOffTtl);
  store_be16(ip + kIpOffChecksum,
             checksum_update16(load_be16(ip + kIpOffChecksum), old_word, new_word));
}

uint16_t udp_checksum(const uint8_t* udp, uint16_t length, Ipv4Addr src, Ipv4Addr dst) noexcept {
  uint64_t sum = pseudo_header_sum(src, dst, kProtoUdp, length);
  sum = checksum_partial(udp, 6, sum);  // ports and length; the checksum field is skipped
  sum = checksum_partial(udp + 8, length - 8u, sum);
  uint16_t c = checksum_finish(sum);
  return c == 0 ? 0xffff : c;  // RFC 768: a computed zero is sent as all ones
}

std::optional<DropReason> parse_udp(std::span<const uint8_t> seg, Ipv4Addr src, Ipv4Addr dst,
                                    bool verify, UdpView& out) noexcept {
  if (seg.size() < kUdpHeaderLen) return DropReason::kUdpMalformed;
  const uint8_t* p = seg.data();
  out.src_port = load_be16(p);
  out.dst_port = load_be16(p + 2);
  out.length = load_be16(p + 4);
  out.checksum = load_be16(p + 6);
  if (out.length < kUdpHeaderLen || out.length > seg.size()) return DropReason::kUdpMalformed;
  if (verify && out.checksum != 0) {
    uint64_t sum = pseudo_header_sum(src, dst, kProtoUdp, out.length);
    if (checksum_finish(checksum_partial(p, out.length, sum)) != 0)
      return DropReason::kUdpBadChecksum;
  }
  return std::nullopt;
}

std::optional<DropReason> parse_icmp(std::span<const uint8_t> m, IcmpView& out) noexcept {
  if (m.size() < kIcmpHeaderLen) return DropReason::kIcmpMalformed;
  out.type = m[0];
  out.code = m[1];
  if (internet_checksum(m.data(), m.size()) != 0) return DropReason::kIcmpBadChecksum;
  return std::nullopt;
}

}  // namespace ulsnet
