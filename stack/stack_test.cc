// The forwarding service: relay and router behaviour, answers, drops, and the accounting
// invariant rx_frames == forwarded + consumed + drops.
#include "stack/stack.h"

#include <gtest/gtest.h>

#include <random>

#include "stack/test_frames.h"

namespace ulsnet {
namespace {
using namespace ulsnet::testing;

class StackTest : public ::testing::Test {
 protected:
  // 0: 10.201.1.2/24 (mac 10) toward sender 10.201.1.1 (mac 1)
  // 1: 10.201.2.1/24 (mac 20) toward receiver 10.201.2.2 (mac 2)
  StackConfig config(ForwardMode mode, bool neighbors = true) {
    StackConfig c;
    c.mode = mode;
    c.ifaces = {{"p0", mac(10), ip("10.201.1.2"), 24, &alloc0},
                {"p1", mac(20), ip("10.201.2.1"), 24, &alloc1}};
    c.relays = {{9000, ip("10.201.2.2"), 9001}};
    if (neighbors) c.neighbors = {{ip("10.201.1.1"), mac(1)}, {ip("10.201.2.2"), mac(2)}};
    return c;
  }
  void expect_balanced(const Stack& s) {
    const StackCounters& c = s.counters();
    EXPECT_EQ(c.rx_frames, c.forwarded + c.consumed + c.drops.total());
  }
  void run(Stack& s, int iface, Frame f) {
    Frame one[1] = {f};
    s.process(iface, one, out, 1000);
  }
  PoolAllocator alloc0, alloc1;
  PacketPool pool{64};
  TxBatch out{2};
};

TEST_F(StackTest, RelayReaddressesInPlaceWithValidChecksums) {
  Stack s(config(ForwardMode::kRelay));
  Frame f = udp_frame(pool, mac(10), mac(1), ip("10.201.1.1"), ip("10.201.1.2"), 4444, 9000, 100);
  uint8_t* data = f.data;
  run(s, 0, f);
  ASSERT_EQ(out.per_iface[1].size(), 1u);
  Frame g = out.per_iface[1][0];
  EXPECT_EQ(g.data, data);  // same buffer: no copy
  EthView e;
  ASSERT_FALSE(parse_eth(g.bytes(), e));
  EXPECT_EQ(e.dst, mac(2));
  EXPECT_EQ(e.src, mac(20));
  Ipv4View v;
  ASSERT_FALSE(parse_ipv4({g.data + 14, g.len - 14}, v));  // header checksum still valid
  EXPECT_EQ(v.src, ip("10.201.2.1"));
  EXPECT_EQ(v.dst, ip("10.201.2.2"));
  UdpView u;
  ASSERT_FALSE(parse_udp({g.data + 34, g.len - 34}, v.src, v.dst, true, u));  // UDP checksum too
  EXPECT_EQ(u.src_port, 9000);
  EXPECT_EQ(u.dst_port, 9001);
  EXPECT_EQ(g.data[42 + 50], uint8_t(50 * 7 + 3));  // payload untouched
  EXPECT_EQ(s.counters().forwarded, 1u);
  expect_balanced(s);
}

TEST_F(StackTest, RelayKeepsZeroChecksumAndDropsByRule) {
  Stack s(config(ForwardMode::kRelay));
  run(s, 0, udp_frame(pool, mac(10), mac(1), ip("10.201.1.1"), ip("10.201.1.2"), 1, 9000, 64, 64,
                      false));
  ASSERT_EQ(out.per_iface[1].size(), 1u);
  EXPECT_EQ(load_be16(out.per_iface[1][0].data + 40), 0);
  run(s, 0, udp_frame(pool, mac(10), mac(1), ip("10.201.1.1"), ip("10.201.1.2"), 1, 9999, 64));
  EXPECT_EQ(s.counters().drops[DropReason::kUdpNoListener], 1u);
  run(s, 0, udp_frame(pool, mac(10), mac(1), ip("10.201.1.1"), ip("10.201.2.2"), 1, 9000, 64));
  EXPECT_EQ(s.counters().drops[DropReason::kIpNotForUs], 1u);  // a relay is not a router
  Frame frag = udp_frame(pool, mac(10), mac(1), ip("10.201.1.1"), ip("10.201.1.2"), 1, 9000, 64);
  store_be16(frag.data + 14 + 6, 0x2000);
  fix_ip_checksum(frag);
  run(s, 0, frag);
  EXPECT_EQ(s.counters().drops[DropReason::kIpFragment], 1u);
  Frame bad = udp_frame(pool, mac(10), mac(1), ip("10.201.1.1"), ip("10.201.1.2"), 1, 9000, 64);
  bad.data[60] ^= 0xff;
  run(s, 0, bad);
  EXPECT_EQ(s.counters().drops[DropReason::kUdpBadChecksum], 1u);
  expect_balanced(s);
  EXPECT_EQ(pool.available(), 64u - 1);  // every dropped buffer went back to its pool
}

TEST_F(StackTest, RouterDecrementsTtlAndAnswersExpiry) {
  Stack s(config(ForwardMode::kRouter));
  run(s, 0, udp_frame(pool, mac(10), mac(1), ip("10.201.1.1"), ip("10.201.2.2"), 1, 9000, 64, 9));
  ASSERT_EQ(out.per_iface[1].size(), 1u);
  Frame g = out.per_iface[1][0];
  Ipv4View v;
  ASSERT_FALSE(parse_ipv4({g.data + 14, g.len - 14}, v));
  EXPECT_EQ(v.ttl, 8);
  EXPECT_EQ(v.src, ip("10.201.1.1"));  // transparent: addresses unchanged
  UdpView u;
  EXPECT_FALSE(parse_udp({g.data + 34, g.len - 34}, v.src, v.dst, true, u));
  for (uint8_t ttl : {1, 0}) {
    run(s, 0,
        udp_frame(pool, mac(10), mac(1), ip("10.201.1.1"), ip("10.201.2.2"), 1, 9000, 64, ttl));
  }
  EXPECT_EQ(s.counters().drops[DropReason::kIpTtlExpired], 2u);
  ASSERT_EQ(out.per_iface[0].size(), 2u);  // two time-exceeded messages back to the sender
  Frame te = out.per_iface[0][0];
  ASSERT_FALSE(parse_ipv4({te.data + 14, te.len - 14}, v));
  EXPECT_EQ(v.dst, ip("10.201.1.1"));
  IcmpView iv;
  ASSERT_FALSE(parse_icmp({te.data + 34, v.total_len - 20}, iv));
  EXPECT_EQ(iv.type, kIcmpTimeExceeded);
  EXPECT_EQ(s.counters().icmp_time_exceeded_sent, 2u);
  run(s, 0, udp_frame(pool, mac(10), mac(1), ip("10.201.1.1"), ip("10.9.9.9"), 1, 9000, 64));
  EXPECT_EQ(s.counters().drops[DropReason::kIpNoRoute], 1u);
  expect_balanced(s);
}

TEST_F(StackTest, RouterForwardsOptionsAndFragments) {
  Stack s(config(ForwardMode::kRouter));
  Frame frag = udp_frame(pool, mac(10), mac(1), ip("10.201.1.1"), ip("10.201.2.2"), 1, 9000, 64);
  store_be16(frag.data + 14 + 6, 0x2000);
  fix_ip_checksum(frag);
  run(s, 0, frag);
  EXPECT_EQ(s.counters().forwarded, 1u);
}

TEST_F(StackTest, AnswersArpAndEchoInPlace) {
  Stack s(config(ForwardMode::kRelay, false));
  run(s, 0, arp_frame(pool, kArpRequest, MacAddr::broadcast(), mac(1), ip("10.201.1.1"),
                      MacAddr{}, ip("10.201.1.2")));
  ASSERT_EQ(out.per_iface[0].size(), 1u);
  ArpView a;
  ASSERT_FALSE(parse_arp({out.per_iface[0][0].data + 14, 28}, a));
  EXPECT_EQ(a.op, kArpReply);
  EXPECT_EQ(a.sha, mac(10));
  EXPECT_EQ(a.tpa, ip("10.201.1.1"));
  EXPECT_EQ(s.arp_cache().lookup(ip("10.201.1.1"), 1000), mac(1));  // learned from the request
  run(s, 0, arp_frame(pool, kArpRequest, MacAddr::broadcast(), mac(1), ip("10.201.1.1"),
                      MacAddr{}, ip("10.201.1.77")));
  EXPECT_EQ(s.counters().drops[DropReason::kArpNotForUs], 1u);

  run(s, 0, icmp_echo_frame(pool, mac(10), mac(1), ip("10.201.1.1"), ip("10.201.1.2")));
  ASSERT_EQ(out.per_iface[0].size(), 2u);
  Frame r = out.per_iface[0][1];
  Ipv4View v;
  ASSERT_FALSE(parse_ipv4({r.data + 14, r.len - 14}, v));
  EXPECT_EQ(v.dst, ip("10.201.1.1"));
  IcmpView iv;
  ASSERT_FALSE(parse_icmp({r.data + 34, v.total_len - 20}, iv));
  EXPECT_EQ(iv.type, kIcmpEchoReply);
  expect_balanced(s);
}

TEST_F(StackTest, UnresolvedNextHopSendsOneArpRequestAndCountsDrops) {
  Stack s(config(ForwardMode::kRelay, false));
  for (int i = 0; i < 3; ++i)
    run(s, 0, udp_frame(pool, mac(10), mac(1), ip("10.201.1.1"), ip("10.201.1.2"), 1, 9000, 64));
  EXPECT_EQ(s.counters().drops[DropReason::kNoArpEntry], 3u);
  ASSERT_EQ(out.per_iface[1].size(), 1u);  // rate limited: one request
  ArpView a;
  ASSERT_FALSE(parse_arp({out.per_iface[1][0].data + 14, 28}, a));
  EXPECT_EQ(a.op, kArpRequest);
  EXPECT_EQ(a.tpa, ip("10.201.2.2"));
  // The reply teaches the stack; the next datagram goes through.
  run(s, 1, arp_frame(pool, kArpReply, mac(20), mac(2), ip("10.201.2.2"), mac(20),
                      ip("10.201.2.1")));
  run(s, 0, udp_frame(pool, mac(10), mac(1), ip("10.201.1.1"), ip("10.201.1.2"), 1, 9000, 64));
  EXPECT_EQ(s.counters().forwarded, 1u);
  expect_balanced(s);
}

TEST_F(StackTest, EthernetLevelDrops) {
  Stack s(config(ForwardMode::kRouter));
  Frame f;
  pool.alloc_one(f);
  f.len = 10;
  run(s, 0, f);
  EXPECT_EQ(s.counters().drops[DropReason::kEthTooShort], 1u);
  run(s, 0, udp_frame(pool, mac(99), mac(1), ip("10.201.1.1"), ip("10.201.2.2"), 1, 9000, 64));
  EXPECT_EQ(s.counters().drops[DropReason::kEthNotForUs], 1u);
  Frame vlan = udp_frame(pool, mac(10), mac(1), ip("10.201.1.1"), ip("10.201.2.2"), 1, 9, 64);
  store_be16(vlan.data + 12, 0x8100);
  run(s, 0, vlan);
  EXPECT_EQ(s.counters().drops[DropReason::kEthUnknownType], 1u);
  expect_balanced(s);
}

TEST_F(StackTest, RandomMutationsNeverCrashAndAlwaysBalance) {
  for (ForwardMode mode : {ForwardMode::kRelay, ForwardMode::kRouter}) {
    Stack s(config(mode));
    std::mt19937 rng(7);
    for (int i = 0; i < 20000; ++i) {
      Frame f = (i % 3 == 0)
                    ? icmp_echo_frame(pool, mac(10), mac(1), ip("10.201.1.1"), ip("10.201.1.2"))
                    : udp_frame(pool, mac(10), mac(1), ip("10.201.1.1"),
                                i % 2 ? ip("10.201.1.2") : ip("10.201.2.2"), 1, 9000, 64);
      int flips = 1 + int(rng() % 4);
      for (int k = 0; k < flips; ++k) f.data[rng() % f.len] ^= uint8_t(1u << (rng() % 8));
      if (rng() % 4 == 0) f.len = rng() % (f.len + 1);
      run(s, int(rng() % 2), f);
      for (auto& l : out.per_iface) release_all(l);
      out.clear();
    }
    expect_balanced(s);
    EXPECT_EQ(pool.available(), 64u);
    EXPECT_EQ(alloc0.pool.available() + alloc1.pool.available(), 512u);
  }
}


// The ICMP message in an IPv4 frame the Stack sent: its header fields and what it quotes.
struct SentIcmp {
  Ipv4View ip;
  IcmpView icmp;
  uint16_t mtu = 0;           // bytes 6-7 (the next-hop MTU of a 3/4)
  Ipv4View quoted;            // the quoted header
};
SentIcmp parse_sent_icmp(const Frame& g) {
  SentIcmp s;
  EXPECT_FALSE(parse_ipv4({g.data + 14, g.len - 14}, s.ip));
  EXPECT_EQ(s.ip.protocol, kProtoIcmp);
  const uint8_t* m = g.data + 14 + s.ip.header_len;
  EXPECT_FALSE(parse_icmp({m, s.ip.total_len - s.ip.header_len}, s.icmp));  // checksum valid
  s.mtu = load_be16(m + 6);
  // The quote is a header plus 8 bytes; its checksum still verifies, its length is the original's.
  const uint32_t qlen = s.ip.total_len - s.ip.header_len - kIcmpHeaderLen;
  std::vector<uint8_t> q(m + kIcmpHeaderLen, m + kIcmpHeaderLen + qlen);
  q.resize(4096);  // parse_ipv4 checks total length against what follows
  EXPECT_FALSE(parse_ipv4(q, s.quoted));
  return s;
}

// RFC 1191 / RFC 1812 5.2.7.1: DF over the next hop's MTU -> ICMP 3/4 with that MTU, never
// counted as forwarded; without DF a counted drop (no fragmenting); exactly the MTU passes.
TEST_F(StackTest, RouterAnswersTooBigWithFragmentationNeededAndTheNextHopMtu) {
  StackConfig c = config(ForwardMode::kRouter);
  c.ifaces[1].mtu = 1000;
  Stack s(c);
  // 20 + 8 + 973 = 1001 bytes, DF set (write_ipv4 sets it).
  run(s, 0, udp_frame(pool, mac(10), mac(1), ip("10.201.1.1"), ip("10.201.2.2"), 7, 9000, 973));
  EXPECT_EQ(s.counters().forwarded, 0u);
  EXPECT_EQ(s.counters().drops[DropReason::kIpTooBig], 1u);
  EXPECT_TRUE(out.per_iface[1].empty());
  ASSERT_EQ(out.per_iface[0].size(), 1u);  // back toward the sender
  SentIcmp e = parse_sent_icmp(out.per_iface[0][0]);
  EXPECT_EQ(e.ip.src, ip("10.201.1.2"));
  EXPECT_EQ(e.ip.dst, ip("10.201.1.1"));
  EXPECT_EQ(e.icmp.type, kIcmpDestUnreachable);
  EXPECT_EQ(e.icmp.code, kIcmpCodeFragNeeded);
  EXPECT_EQ(e.mtu, 1000);
  EXPECT_EQ(e.quoted.total_len, 1001u);
  EXPECT_EQ(e.quoted.dst, ip("10.201.2.2"));
  EXPECT_EQ(s.counters().icmp_frag_needed_sent, 1u);
  EXPECT_EQ(s.counters().generated, 1u);
  release_all(out.per_iface[0]);
  out.clear();

  Frame no_df = udp_frame(pool, mac(10), mac(1), ip("10.201.1.1"), ip("10.201.2.2"), 7, 9000, 973);
  store_be16(no_df.data + 14 + 6, 0);
  fix_ip_checksum(no_df);
  run(s, 0, no_df);
  EXPECT_EQ(s.counters().drops[DropReason::kIpNeedsFragmenting], 1u);
  EXPECT_TRUE(out.per_iface[0].empty() && out.per_iface[1].empty());

  run(s, 0, udp_frame(pool, mac(10), mac(1), ip("10.201.1.1"), ip("10.201.2.2"), 7, 9000, 972));
  EXPECT_EQ(s.counters().forwarded, 1u);  // 1000 bytes: fits
  ASSERT_EQ(out.per_iface[1].size(), 1u);
  release_all(out.per_iface[1]);
  out.clear();
  // The other direction has the default 1500.
  run(s, 1, udp_frame(pool, mac(20), mac(2), ip("10.201.2.2"), ip("10.201.1.1"), 7, 9000, 1400));
  EXPECT_EQ(s.counters().forwarded, 2u);
  release_all(out.per_iface[0]);
  out.clear();
  expect_balanced(s);
  EXPECT_EQ(pool.available(), 64u);
}

TEST_F(StackTest, RelayDropsADatagramItsOutgoingLinkCannotCarry) {
  StackConfig c = config(ForwardMode::kRelay);
  c.ifaces[1].mtu = 576;
  Stack s(c);
  run(s, 0, udp_frame(pool, mac(10), mac(1), ip("10.201.1.1"), ip("10.201.1.2"), 7, 9000, 549));
  EXPECT_EQ(s.counters().drops[DropReason::kIpNeedsFragmenting], 1u);
  EXPECT_EQ(s.counters().forwarded, 0u);
  run(s, 0, udp_frame(pool, mac(10), mac(1), ip("10.201.1.1"), ip("10.201.1.2"), 7, 9000, 548));
  EXPECT_EQ(s.counters().forwarded, 1u);
  release_all(out.per_iface[1]);
  out.clear();
  expect_balanced(s);
}

// RFC 1812 4.3.2.7: no ICMP error about an ICMP error, a non-first fragment, or a source that
// is not one host; an echo request whose TTL expires is not an error and is answered.
TEST_F(StackTest, RouterSendsNoIcmpErrorAboutAnIcmpErrorAFragmentOrABroadcastSource) {
  Stack s(config(ForwardMode::kRouter));
  Frame err = icmp_echo_frame(pool, mac(10), mac(1), ip("10.201.1.1"), ip("10.201.2.2"), 1);
  uint8_t* m = err.data + 34;
  m[0] = kIcmpTimeExceeded;
  store_be16(m + 2, 0);
  store_be16(m + 2, internet_checksum(m, kIcmpHeaderLen + 16));
  run(s, 0, err);
  Frame frag = udp_frame(pool, mac(10), mac(1), ip("10.201.1.1"), ip("10.201.2.2"), 7, 9000, 64, 1);
  store_be16(frag.data + 14 + 6, 0x2000 | 185);  // offset 1480, more fragments
  fix_ip_checksum(frag);
  run(s, 0, frag);
  run(s, 0, udp_frame(pool, mac(10), mac(1), ip("10.201.1.255"), ip("10.201.2.2"), 7, 9000, 64, 1));
  EXPECT_EQ(s.counters().drops[DropReason::kIpTtlExpired], 3u);
  EXPECT_EQ(s.counters().icmp_errors_suppressed, 3u);
  EXPECT_TRUE(out.per_iface[0].empty());
  // An echo request is a query, not an error: traceroute by ping gets its time-exceeded, and so
  // does a first fragment.
  run(s, 0, icmp_echo_frame(pool, mac(10), mac(1), ip("10.201.1.1"), ip("10.201.2.2"), 1));
  Frame first = udp_frame(pool, mac(10), mac(1), ip("10.201.1.1"), ip("10.201.2.2"), 7, 9000, 64, 1);
  store_be16(first.data + 14 + 6, 0x2000);
  fix_ip_checksum(first);
  run(s, 0, first);
  ASSERT_EQ(out.per_iface[0].size(), 2u);
  EXPECT_EQ(parse_sent_icmp(out.per_iface[0][0]).icmp.type, kIcmpTimeExceeded);
  EXPECT_EQ(s.counters().icmp_time_exceeded_sent, 2u);
  EXPECT_EQ(s.counters().icmp_errors_suppressed, 3u);
  release_all(out.per_iface[0]);
  out.clear();
  expect_balanced(s);
}

// Like Linux's icmp_ratelimit: per destination a burst of 6, then one per second; a second
// destination has its own bucket; "fragmentation needed" is not limited.
TEST_F(StackTest, IcmpErrorsAreRateLimitedPerDestination) {
  StackConfig c = config(ForwardMode::kRouter);
  c.ifaces[1].mtu = 576;
  Stack s(c);
  auto expire = [&](const char* src, uint64_t now) {
    Frame f = udp_frame(pool, mac(10), mac(1), ip(src), ip("10.201.2.2"), 7, 9000, 64, 1);
    s.process(0, {&f, 1}, out, now);
    release_all(out.per_iface[0]);
    out.clear();
  };
  const uint64_t t0 = 5'000'000'000ull;
  for (int i = 0; i < 10; ++i) expire("10.201.1.1", t0 + uint64_t(i) * 1000);
  EXPECT_EQ(s.counters().icmp_time_exceeded_sent, 6u);
  EXPECT_EQ(s.counters().icmp_errors_rate_limited, 4u);
  expire("10.201.1.7", t0 + 20'000);  // another destination: its own burst
  EXPECT_EQ(s.counters().icmp_time_exceeded_sent, 7u);
  expire("10.201.1.1", t0 + 500'000'000ull);  // half a second: no token yet
  EXPECT_EQ(s.counters().icmp_errors_rate_limited, 5u);
  expire("10.201.1.1", t0 + 1'000'100'000ull);  // a second after the burst: one more
  expire("10.201.1.1", t0 + 1'000'200'000ull);
  EXPECT_EQ(s.counters().icmp_time_exceeded_sent, 8u);
  EXPECT_EQ(s.counters().icmp_errors_rate_limited, 6u);
  for (int i = 0; i < 10; ++i) {
    Frame f = udp_frame(pool, mac(10), mac(1), ip("10.201.1.1"), ip("10.201.2.2"), 7, 9000, 600);
    s.process(0, {&f, 1}, out, t0 + 2'000'000'000ull);
  }
  EXPECT_EQ(out.per_iface[0].size(), 10u);
  EXPECT_EQ(s.counters().icmp_frag_needed_sent, 10u);
  EXPECT_EQ(s.counters().icmp_errors_rate_limited, 6u);
  release_all(out.per_iface[0]);
  out.clear();
  expect_balanced(s);
}

// RFC 2644: directed broadcasts are not forwarded (and the router never ARPs for a broadcast
// or multicast address); neither is multicast, which it does not route.
TEST_F(StackTest, RouterDropsBroadcastAndMulticastDestinationsWithoutArp) {
  Stack s(config(ForwardMode::kRouter, /*neighbors=*/false));
  for (const char* dst : {"10.201.2.255", "10.201.1.255", "255.255.255.255"})
    run(s, 0, udp_frame(pool, mac(10), mac(1), ip("10.201.1.1"), ip(dst), 7, 9000, 64));
  for (const char* dst : {"224.0.0.5", "239.1.2.3"})
    run(s, 0, udp_frame(pool, mac(10), mac(1), ip("10.201.1.1"), ip(dst), 7, 9000, 64));
  EXPECT_EQ(s.counters().drops[DropReason::kIpBroadcastDestination], 3u);
  EXPECT_EQ(s.counters().drops[DropReason::kIpMulticastDestination], 2u);
  EXPECT_EQ(s.counters().arp_requests_sent, 0u);
  EXPECT_TRUE(out.per_iface[0].empty() && out.per_iface[1].empty());
  // A unicast host on the same subnet is still ARPed for and forwarded once resolved.
  run(s, 0, udp_frame(pool, mac(10), mac(1), ip("10.201.1.1"), ip("10.201.2.254"), 7, 9000, 64));
  EXPECT_EQ(s.counters().arp_requests_sent, 1u);
  release_all(out.per_iface[1]);
  out.clear();
  // On a /31 (RFC 3021) both addresses are hosts.
  StackConfig p31 = config(ForwardMode::kRouter);
  p31.ifaces[1].ip = ip("10.9.0.0");
  p31.ifaces[1].prefix_len = 31;
  p31.relays.clear();
  p31.neighbors = {{ip("10.9.0.1"), mac(2)}};
  Stack t(p31);
  run(t, 0, udp_frame(pool, mac(10), mac(1), ip("10.201.1.1"), ip("10.9.0.1"), 7, 9000, 64));
  EXPECT_EQ(t.counters().forwarded, 1u);
  release_all(out.per_iface[1]);
  out.clear();
  expect_balanced(s);
  expect_balanced(t);
}

}  // namespace
}  // namespace ulsnet

namespace ulsnet {
namespace {
using namespace ulsnet::testing;

// A TX list has a fixed capacity and the Stack never grows it: a forwarded frame that finds its
// list full is dropped as tx_batch_full (buffer released), an answer or generated frame is not
// sent and counts as generate_failed; the accounting still balances.
TEST(StackTxBatch, AFullListDropsAndCountsInsteadOfGrowing) {
  PoolAllocator a0, a1;
  PacketPool pool{8};
  StackConfig c;
  c.mode = ForwardMode::kRelay;
  c.ifaces = {{"p0", mac(10), ip("10.201.1.2"), 24, &a0}, {"p1", mac(20), ip("10.201.2.1"), 24, &a1}};
  c.relays = {{9000, ip("10.201.2.2"), 9001}};
  c.neighbors = {{ip("10.201.1.1"), mac(1)}, {ip("10.201.2.2"), mac(2)}};
  Stack s(c);
  TxBatch out(2, 1);
  Frame burst[3];
  for (Frame& f : burst) f = udp_frame(pool, mac(10), mac(1), ip("10.201.1.1"), ip("10.201.1.2"), 1, 9000, 64);
  EXPECT_EQ(pool.available(), 5u);
  s.process(0, burst, out, 1000);
  EXPECT_EQ(out.per_iface[1].size(), 1u);
  EXPECT_EQ(s.counters().forwarded, 1u);
  EXPECT_EQ(s.counters().drops[DropReason::kTxBatchFull], 2u);
  EXPECT_EQ(pool.available(), 7u);  // the two that did not fit went back
  EXPECT_EQ(s.counters().rx_frames, s.counters().forwarded + s.counters().consumed + s.counters().drops.total());
  out.per_iface[1][0].release();
  out.clear();
}

TEST(StackTxBatch, ABatchInCallerStorageUsesOnlyThatStorage) {
  Frame storage[2 * 3];
  TxBatch b(2, 3, storage);
  Frame f;
  f.len = 7;
  for (int k = 0; k < 3; ++k) EXPECT_TRUE(b.per_iface[1].push_back(f));
  EXPECT_FALSE(b.per_iface[1].push_back(f));
  EXPECT_EQ(b.per_iface[1].begin(), storage + 3);
  EXPECT_EQ(storage[5].len, 7u);
  b.per_iface[1].erase(0);
  EXPECT_EQ(b.per_iface[1].size(), 2u);
  TxBatch moved = std::move(b);
  EXPECT_EQ(moved.per_iface.size(), 2u);
  EXPECT_EQ(b.per_iface.size(), 0u);
}

}  // namespace
}  // namespace ulsnet
