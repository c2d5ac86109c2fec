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
