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

bool Stack::is_broadcast(Ipv4Addr a) const noexcept {
  if (a.v == 0xffffffffu) return true;
  for (const InterfaceConfig& i : cfg_.ifaces) {
    if (i.prefix_len <= 0 || i.prefix_len >= 31) continue;  // RFC 3021: /31 has no broadcast
    const uint32_t host = (1u << (32 - i.prefix_len)) - 1;
    if (a.in_subnet(i.ip, i.prefix_len) && (a.v & host) == host) return true;
  }
  return false;
}

namespace {
bool is_multicast(Ipv4Addr a) noexcept { return (a.v >> 28) == 0xe; }
}  // namespace

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

  // Never forwarded, never ARPed for, in either mode.
  if (is_multicast(v.dst)) return drop(f, DropReason::kIpMulticastDestination);
  if (is_broadcast(v.dst)) return drop(f, DropReason::kIpBroadcastDestination);

  if (is_local(v.dst)) {
    if (v.fragment) return drop(f, DropReason::kIpFragment);
    if (v.header_len != kIpv4MinHeaderLen) return drop(f, DropReason::kIpOptions);
    uint8_t* l4 = ip + v.header_len;
    std::span<const uint8_t> l4span(l4, v.total_len - v.header_len);
    if (v.protocol == kProtoIcmp) {
      IcmpView icmp;
      if (auto r = parse_icmp(l4span, icmp)) return drop(f, *r);
      if (icmp.type != kIcmpEchoRequest) return drop(f, DropReason::kIcmpUnsupportedType);
      // The reply is the request's size: it goes back on the same link only if that carries it.
      if (v.total_len > ic.mtu) return drop(f, DropReason::kIpNeedsFragmenting);
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
    if (cfg_.icmp_time_exceeded)
      send_icmp_error(iface, f, v, kIcmpTimeExceeded, 0, 0, out, now_ns);
    return drop(f, DropReason::kIpTtlExpired);
  }
  // After the TTL check, as Linux's ip_forward orders them.
  if (const uint32_t mtu = cfg_.ifaces[size_t(out_if)].mtu; v.total_len > mtu) {
    if (!v.dont_fragment) return drop(f, DropReason::kIpNeedsFragmenting);
    send_icmp_error(iface, f, v, kIcmpDestUnreachable, kIcmpCodeFragNeeded,
                    uint16_t(std::min<uint32_t>(mtu, 0xffff)), out, now_ns);
    return drop(f, DropReason::kIpTooBig);
  }
  ipv4_decrement_ttl(ip);
  send_to(out_if, v.dst, f, out, now_ns);
}

void Stack::relay_udp(int iface, Frame& f, const RelayRoute& rr, TxBatch& out, uint64_t now_ns) {
  (void)iface;
  // A socket proxy's kernel would fragment a datagram its outgoing link cannot carry; this one
  // re-addresses the received buffer and does not (see the header).
  if (f.len - kEthHeaderLen > cfg_.ifaces[size_t(rr.out_iface)].mtu)
    return drop(f, DropReason::kIpNeedsFragmenting);
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

bool Stack::icmp_rate_allow(Ipv4Addr dst, uint64_t now_ns) noexcept {
  const uint64_t interval = cfg_.icmp_rate_interval_ns;
  if (interval == 0) return true;
  const uint64_t cap = uint64_t(cfg_.icmp_rate_burst) * interval;
  IcmpBucket& b = icmp_buckets_[(dst.v * 2654435761u) >> 24];  // 256 slots
  if (!b.used || b.dst != dst.v) {
    b = {dst.v, true, cap, now_ns};
  } else {
    if (now_ns > b.last_ns) b.credit_ns = std::min(cap, b.credit_ns + (now_ns - b.last_ns));
    b.last_ns = std::max(b.last_ns, now_ns);
  }
  if (b.credit_ns < interval) return false;
  b.credit_ns -= interval;
  return true;
}

void Stack::send_icmp_error(int iface, const Frame& f, const Ipv4View& v, uint8_t type,
                            uint8_t code, uint16_t mtu, TxBatch& out, uint64_t now_ns) {
  const uint8_t* ip = f.data + kEthHeaderLen;
  // RFC 1812 4.3.2.7: not about an ICMP error (its type is in the first fragment only), a
  // non-first fragment, a packet to a broadcast/multicast address, or from a source that is not
  // one host (parse_ipv4 already refused zero-net, loopback, multicast and limited broadcast).
  const bool about_icmp_error = v.protocol == kProtoIcmp && v.frag_offset == 0 &&
                                v.total_len > v.header_len && icmp_is_error(ip[v.header_len]);
  if (about_icmp_error || v.frag_offset != 0 || is_broadcast(v.dst) || is_multicast(v.dst) ||
      is_broadcast(v.src)) {
    ++counters_.icmp_errors_suppressed;
    return;
  }
  // Linux's icmpv4_mask_allow: "Don't limit PMTU discovery".
  const bool limited = !(type == kIcmpDestUnreachable && code == kIcmpCodeFragNeeded);
  if (limited && !icmp_rate_allow(v.src, now_ns)) {
    ++counters_.icmp_errors_rate_limited;
    return;
  }
  const InterfaceConfig& ic = cfg_.ifaces[size_t(iface)];
  const uint32_t quote = std::min<uint32_t>(v.header_len + 8, v.total_len);
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
  write_ipv4(g.data + kEthHeaderLen, ic.ip, v.src, kProtoIcmp, uint16_t(total), 64);
  uint8_t* icmp = g.data + kEthHeaderLen + kIpv4MinHeaderLen;
  std::memset(icmp, 0, kIcmpHeaderLen);
  icmp[0] = type;
  icmp[1] = code;
  store_be16(icmp + 6, mtu);  // RFC 1191: the next-hop MTU (zero for other errors)
  std::memcpy(icmp + kIcmpHeaderLen, ip, quote);  // copies the quoted header: an ICMP error
  store_be16(icmp + 2, internet_checksum(icmp, kIcmpHeaderLen + quote));
  g.len = kEthHeaderLen + total;
  if (!queue_reply(iface, g, out)) return;
  ++counters_.generated;
  if (type == kIcmpTimeExceeded)
    ++counters_.icmp_time_exceeded_sent;
  else
    ++counters_.icmp_frag_needed_sent;
}

bool Stack::queue_reply(int iface, const Frame& f, TxBatch& out) noexcept {
  if (out.per_iface[size_t(iface)].push_back(f)) return true;
  f.release();
  ++counters_.generate_failed;
  return false;
}

}  // namespace ulsnet
