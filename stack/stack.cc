#include "stack/stack.h"

#include <algorithm>
#include <cstring>

#include "stack/checksum.h"
#include "stack/fail.h"

namespace ulsnet {

const char* forward_mode_name(ForwardMode m) {
  return m == ForwardMode::kRouter ? "router" : "relay";
}

Stack::Stack(StackConfig cfg) : cfg_(std::move(cfg)), arp_(cfg_.arp_ttl_ns) {
  if (cfg_.ifaces.empty()) throw_invalid_argument("Stack: no interfaces");
  for (const RelayRule& r : cfg_.relays) {
    if (r.listen_port == 0 || r.to_port == 0)
      throw_invalid_argument("Stack: relay rule with port 0");
    int out = route(r.to_ip);
    if (out < 0)
      throw_invalid_argument("Stack: relay target " + r.to_ip.str() +
                                  " is on no interface's subnet");
    relay_routes_.push_back({r, out});
  }
  for (const StaticNeighbor& n : cfg_.neighbors) arp_.insert(n.ip, n.mac, 0, /*is_static=*/true);
}

int Stack::route(Ipv4Addr dst) const noexcept {
  for (size_t i = 0; i < cfg_.ifaces.size(); ++i)
    if (dst.in_subnet(cfg_.ifaces[i].ip, cfg_.ifaces[i].prefix_len)) return int(i);
  return -1;
}

bool Stack::is_local(Ipv4Addr a) const noexcept {
  for (const InterfaceConfig& i : cfg_.ifaces)
    if (i.ip == a) return true;
  return false;
}

void Stack::drop(const Frame& f, DropReason r) noexcept {
  counters_.drops.count(r);
  f.release();
}

void Stack::process(int iface, std::span<Frame> frames, TxBatch& out, uint64_t now_ns) {
  for (Frame& f : frames) process_one(iface, f, out, now_ns);
}

void Stack::process_one(int iface, Frame& f, TxBatch& out, uint64_t now_ns) {
  ++counters_.rx_frames;
  EthView eth;
  if (auto r = parse_eth(f.bytes(), eth)) return drop(f, *r);
  const InterfaceConfig& ic = cfg_.ifaces[size_t(iface)];
  if (eth.dst != ic.mac && !eth.dst.is_broadcast()) return drop(f, DropReason::kEthNotForUs);
  switch (eth.ethertype) {
    case kEtherTypeIpv4:
      if (eth.dst.is_broadcast()) return drop(f, DropReason::kEthNotForUs);
      return handle_ipv4(iface, f, out, now_ns);
    case kEtherTypeArp:
      return handle_arp(iface, f, out, now_ns);
    default:
      return drop(f, DropReason::kEthUnknownType);
  }
}

void Stack::handle_arp(int iface, Frame& f, TxBatch& out, uint64_t now_ns) {
  ArpView a;
  std::span<const uint8_t> body(f.data + kEthHeaderLen, f.len - kEthHeaderLen);
  if (auto r = parse_arp(body, a)) return drop(f, *r);
  const InterfaceConfig& ic = cfg_.ifaces[size_t(iface)];
  if (a.tpa != ic.ip) return drop(f, DropReason::kArpNotForUs);
  if (!a.sha.is_multicast() && !a.sha.is_zero()) arp_.insert(a.spa, a.sha, now_ns);
  ++counters_.consumed;
  if (a.op == kArpReply) {
    f.release();
    return;
  }
  // Answer in place: the request's buffer becomes the reply (no allocation, no copy).
  write_eth(f.data, a.sha, ic.mac, kEtherTypeArp);
  write_arp(f.data + kEthHeaderLen, kArpReply, ic.mac, ic.ip, a.sha, a.spa);
  f.len = kEthHeaderLen + kArpLen;
  if (queue_reply(iface, f, out)) ++counters_.arp_replies_sent;
}

void Stack::handle_ipv4(int iface, Frame& f, TxBatch& out, uint64_t now_ns) {
  uint8_t* ip = f.data + kEthHeaderLen;
  Ipv4View v;
  if (auto r = parse_ipv4({ip, f.len - kEthHeaderLen}, v)) return drop(f, *r);
  f.len = kEthHeaderLen + v.total_len;  // trim Ethernet padding (length only)
  const InterfaceConfig& ic = cfg_.ifaces[size_t(iface)];

  if (is_local(v.dst)) {
    if (v.fragment) return drop(f, DropReason::kIpFragment);
    if (v.header_len != kIpv4MinHeaderLen) return drop(f, DropReason::kIpOptions);
    uint8_t* l4 = ip + v.header_len;
    std::span<const uint8_t> l4span(l4, v.total_len - v.header_len);
    if (v.protocol == kProtoIcmp) {
      IcmpView icmp;
      if (auto r = parse_icmp(l4span, icmp)) return drop(f, *r);
      if (icmp.type != kIcmpEchoRequest) return drop(f, DropReason::kIcmpUnsupportedType);
      // Echo reply in place: swap addresses (the header sum is unchanged by a swap), type 0
      // with an incremental ICMP checksum update, fresh TTL.
      store_be32(ip + kIpOffSrc, v.dst.v);
      store_be32(ip + kIpOffDst, v.src.v);
      uint16_t old_tc = load_be16(l4);
      l4[0] = kIcmpEchoReply;
      store_be16(l4 + 2, checksum_update16(load_be16(l4 + 2), old_tc, load_be16(l4)));
      uint16_t old_ttl = load_be16(ip + kIpOffTtl);
      ip[kIpOffTtl] = 64;
      store_be16(ip + kIpOffChecksum, checksum_update16(load_be16(ip + kIpOffChecksum), old_ttl,
                                                        load_be16(ip + kIpOffTtl)));
      MacAddr requester;
      std::memcpy(requester.b.data(), f.data + 6, 6);
      write_eth(f.data, requester, ic.mac, kEtherTypeIpv4);
      ++counters_.consumed;
      if (queue_reply(iface, f, out)) ++counters_.icmp_echo_replies;
      return;
    }
    if (v.protocol == kProtoUdp) {
      UdpView u;
      if (auto r = parse_udp(l4span, v.src, v.dst, cfg_.verify_udp_checksum, u))
        return drop(f, *r);
      if (cfg_.mode == ForwardMode::kRelay) {
        for (const RelayRoute& rr : relay_routes_)
          if (rr.rule.listen_port == u.dst_port) return relay_udp(iface, f, rr, out, now_ns);
      }
      return drop(f, DropReason::kUdpNoListener);
    }
    return drop(f, DropReason::kIpUnsupportedProto);
  }

  if (cfg_.mode == ForwardMode::kRelay) return drop(f, DropReason::kIpNotForUs);
  int out_if = route(v.dst);
  if (out_if < 0) return drop(f, DropReason::kIpNoRoute);
  if (v.ttl <= 1) {
    if (cfg_.icmp_time_exceeded) send_time_exceeded(iface, f, out);
    return drop(f, DropReason::kIpTtlExpired);
  }
  ipv4_decrement_ttl(ip);
  send_to(out_if, v.dst, f, out, now_ns);
}

void Stack::relay_udp(int iface, Frame& f, const RelayRoute& rr, TxBatch& out, uint64_t now_ns) {
  (void)iface;
  uint8_t* ip = f.data + kEthHeaderLen;
  uint8_t* udp = ip + kIpv4MinHeaderLen;
  const Ipv4Addr new_src = cfg_.ifaces[size_t(rr.out_iface)].ip;
  const uint32_t old_src = load_be32(ip + kIpOffSrc), old_dst = load_be32(ip + kIpOffDst);
  const uint16_t old_sport = load_be16(udp), old_dport = load_be16(udp + 2);
  const uint16_t old_ttl_word = load_be16(ip + kIpOffTtl);
  // Re-address in place as a socket proxy would, with RFC 1624 updates instead of full sums.
  store_be32(ip + kIpOffSrc, new_src.v);
  store_be32(ip + kIpOffDst, rr.rule.to_ip.v);
  ip[kIpOffTtl] = 64;  // a proxy sends a new datagram, with a fresh TTL
  uint16_t hc = load_be16(ip + kIpOffChecksum);
  hc = checksum_update32(hc, old_src, new_src.v);
  hc = checksum_update32(hc, old_dst, rr.rule.to_ip.v);
  hc = checksum_update16(hc, old_ttl_word, load_be16(ip + kIpOffTtl));
  store_be16(ip + kIpOffChecksum, hc);
  store_be16(udp, rr.rule.listen_port);
  store_be16(udp + 2, rr.rule.to_port);
  uint16_t uc = load_be16(udp + 6);
  if (uc != 0) {  // zero means "no checksum" and stays zero
    uc = checksum_update32(uc, old_src, new_src.v);
    uc = checksum_update32(uc, old_dst, rr.rule.to_ip.v);
    uc = checksum_update16(uc, old_sport, rr.rule.listen_port);
    uc = checksum_update16(uc, old_dport, rr.rule.to_port);
    store_be16(udp + 6, uc == 0 ? 0xffff : uc);
  }
  send_to(rr.out_iface, rr.rule.to_ip, f, out, now_ns);
}

void Stack::send_to(int out_if, Ipv4Addr next_hop, Frame& f, TxBatch& out, uint64_t now_ns) {
  auto mac = arp_.lookup(next_hop, now_ns);
  if (!mac) {
    send_arp_request(out_if, next_hop, out, now_ns);
    return drop(f, DropReason::kNoArpEntry);
  }
  write_eth(f.data, *mac, cfg_.ifaces[size_t(out_if)].mac, kEtherTypeIpv4);
  if (!out.per_iface[size_t(out_if)].push_back(f)) return drop(f, DropReason::kTxBatchFull);
  ++counters_.forwarded;
}

void Stack::send_arp_request(int out_if, Ipv4Addr target, TxBatch& out, uint64_t now_ns) {
  if (!arp_.should_request(target, now_ns)) return;
  const InterfaceConfig& ic = cfg_.ifaces[size_t(out_if)];
  Frame g;
  if (ic.allocator == nullptr || ic.allocator->alloc_tx({&g, 1}) != 1) {
    ++counters_.generate_failed;
    return;
  }
  write_eth(g.data, MacAddr::broadcast(), ic.mac, kEtherTypeArp);
  write_arp(g.data + kEthHeaderLen, kArpRequest, ic.mac, ic.ip, MacAddr{}, target);
  g.len = kEthHeaderLen + kArpLen;
  if (!queue_reply(out_if, g, out)) return;
  ++counters_.generated;
  ++counters_.arp_requests_sent;
}

void Stack::send_time_exceeded(int iface, const Frame& f, TxBatch& out) {
  const InterfaceConfig& ic = cfg_.ifaces[size_t(iface)];
  const uint8_t* ip = f.data + kEthHeaderLen;
  const uint32_t hl = uint32_t(ip[0] & 0xf) * 4;
  const uint32_t quote = std::min<uint32_t>(hl + 8, load_be16(ip + 2));
  const uint32_t total = kIpv4MinHeaderLen + kIcmpHeaderLen + quote;
  Frame g;
  if (ic.allocator == nullptr || ic.allocator->alloc_tx({&g, 1}) != 1) {
    ++counters_.generate_failed;
    return;
  }
  if (g.capacity < kEthHeaderLen + total) {
    g.release();
    ++counters_.generate_failed;
    return;
  }
  MacAddr back;
  std::memcpy(back.b.data(), f.data + 6, 6);
  write_eth(g.data, back, ic.mac, kEtherTypeIpv4);
  write_ipv4(g.data + kEthHeaderLen, ic.ip, Ipv4Addr{load_be32(ip + kIpOffSrc)}, kProtoIcmp,
             uint16_t(total), 64);
  uint8_t* icmp = g.data + kEthHeaderLen + kIpv4MinHeaderLen;
  std::memset(icmp, 0, kIcmpHeaderLen);
  icmp[0] = kIcmpTimeExceeded;
  std::memcpy(icmp + kIcmpHeaderLen, ip, quote);  // copies the quoted header: an ICMP error
  store_be16(icmp + 2, internet_checksum(icmp, kIcmpHeaderLen + quote));
  g.len = kEthHeaderLen + total;
  if (!queue_reply(iface, g, out)) return;
  ++counters_.generated;
  ++counters_.icmp_time_exceeded_sent;
}

bool Stack::queue_reply(int iface, const Frame& f, TxBatch& out) noexcept {
  if (out.per_iface[size_t(iface)].push_back(f)) return true;
  f.release();
  ++counters_.generate_failed;
  return false;
}

}  // namespace ulsnet
