// Test-only: builds well-formed frames into PacketPool buffers so tests can break them.
#pragma once

#include <cstring>
#include <vector>

#include "stack/checksum.h"
#include "stack/packet_pool.h"
#include "stack/protocols.h"

namespace ulsnet::testing {

inline MacAddr mac(uint8_t last) { return MacAddr{{0x02, 0, 0, 0, 0, last}}; }
inline Ipv4Addr ip(const char* s) { return *Ipv4Addr::parse(s); }

// A pool that also acts as the stack's allocator for generated frames.
struct PoolAllocator : FrameAllocator {
  PacketPool pool{256};
  size_t alloc_tx(std::span<Frame> out) override { return pool.alloc(out); }
};

// Ethernet + IPv4 + UDP with a patterned payload and correct checksums.
inline Frame udp_frame(PacketPool& pool, MacAddr dst_mac, MacAddr src_mac, Ipv4Addr src,
                       Ipv4Addr dst, uint16_t sport, uint16_t dport, uint32_t payload,
                       uint8_t ttl = 64, bool udp_csum = true) {
  Frame f;
  pool.alloc_one(f);
  uint16_t udp_len = uint16_t(kUdpHeaderLen + payload);
  uint16_t total = uint16_t(kIpv4MinHeaderLen + udp_len);
  write_eth(f.data, dst_mac, src_mac, kEtherTypeIpv4);
  uint8_t* ipp = f.data + kEthHeaderLen;
  write_ipv4(ipp, src, dst, kProtoUdp, total, ttl);
  uint8_t* u = ipp + kIpv4MinHeaderLen;
  store_be16(u, sport);
  store_be16(u + 2, dport);
  store_be16(u + 4, udp_len);
  store_be16(u + 6, 0);
  for (uint32_t i = 0; i < payload; ++i) u[8 + i] = uint8_t(i * 7 + 3);
  if (udp_csum) store_be16(u + 6, udp_checksum(u, udp_len, src, dst));
  f.len = kEthHeaderLen + total;
  return f;
}

inline Frame icmp_echo_frame(PacketPool& pool, MacAddr dst_mac, MacAddr src_mac, Ipv4Addr src,
                             Ipv4Addr dst, uint8_t ttl = 64) {
  Frame f;
  pool.alloc_one(f);
  const uint16_t total = kIpv4MinHeaderLen + kIcmpHeaderLen + 16;
  write_eth(f.data, dst_mac, src_mac, kEtherTypeIpv4);
  uint8_t* ipp = f.data + kEthHeaderLen;
  write_ipv4(ipp, src, dst, kProtoIcmp, total, ttl);
  uint8_t* m = ipp + kIpv4MinHeaderLen;
  std::memset(m, 0, kIcmpHeaderLen + 16);
  m[0] = kIcmpEchoRequest;
  store_be16(m + 4, 0x1234);
  store_be16(m + 6, 1);
  for (int i = 0; i < 16; ++i) m[8 + i] = uint8_t(i);
  store_be16(m + 2, internet_checksum(m, kIcmpHeaderLen + 16));
  f.len = kEthHeaderLen + total;
  return f;
}

inline Frame arp_frame(PacketPool& pool, uint16_t op, MacAddr eth_dst, MacAddr sha, Ipv4Addr spa,
                       MacAddr tha, Ipv4Addr tpa) {
  Frame f;
  pool.alloc_one(f);
  write_eth(f.data, eth_dst, sha, kEtherTypeArp);
  write_arp(f.data + kEthHeaderLen, op, sha, spa, tha, tpa);
  f.len = kEthHeaderLen + kArpLen;
  return f;
}

// Recomputes the IPv4 header checksum after a test corrupted another field.
inline void fix_ip_checksum(Frame& f) {
  uint8_t* ipp = f.data + kEthHeaderLen;
  uint32_t hl = uint32_t(ipp[0] & 0xf) * 4;
  store_be16(ipp + kIpOffChecksum, 0);
  store_be16(ipp + kIpOffChecksum, internet_checksum(ipp, hl));
}

}  // namespace ulsnet::testing
