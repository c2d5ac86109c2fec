// Parsers and builders, including every malformed input the parsers reject.
#include "stack/protocols.h"

#include <gtest/gtest.h>

#include <random>

#include "stack/arp.h"
#include "stack/checksum.h"
#include "stack/test_frames.h"

namespace ulsnet {
namespace {
using namespace ulsnet::testing;

std::span<const uint8_t> ipspan(const Frame& f) {
  return {f.data + kEthHeaderLen, f.len - kEthHeaderLen};
}

TEST(Checksum, Rfc1071Example) {
  // RFC 1071 section 3: words 0001 f203 f4f5 f6f7 sum to ddf2 (before complement).
  const uint8_t d[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  EXPECT_EQ(internet_checksum(d, sizeof d), uint16_t(~0xddf2));
  const uint8_t odd[] = {0x01, 0x02, 0x03};  // odd byte padded with zero
  EXPECT_EQ(internet_checksum(odd, 3), uint16_t(~(0x0102 + 0x0300)));
}

TEST(Checksum, IncrementalEqualsFullRecomputation) {
  std::mt19937 rng(12345);
  PacketPool pool(4);
  for (int i = 0; i < 2000; ++i) {
    Frame f = udp_frame(pool, mac(1), mac(2), Ipv4Addr{uint32_t(rng()) | 0x01000000u}, Ipv4Addr{uint32_t(rng())}, 1, 2,
                        16, uint8_t(2 + rng() % 250));
    uint8_t* ipp = f.data + kEthHeaderLen;
    uint32_t old_src = load_be32(ipp + kIpOffSrc), new_src = uint32_t(rng());
    store_be32(ipp + kIpOffSrc, new_src);
    uint16_t inc = checksum_update32(load_be16(ipp + kIpOffChecksum), old_src, new_src);
    fix_ip_checksum(f);
    EXPECT_EQ(inc, load_be16(ipp + kIpOffChecksum));
    ipv4_decrement_ttl(ipp);
    EXPECT_EQ(internet_checksum(ipp, 20), 0);
    f.release();
  }
}

TEST(Ethernet, TooShortAndRoundTrip) {
  uint8_t b[14];
  EthView e;
  EXPECT_EQ(parse_eth({b, 13}, e), DropReason::kEthTooShort);
  write_eth(b, mac(1), mac(2), 0x0806);
  ASSERT_FALSE(parse_eth({b, 14}, e));
  EXPECT_EQ(e.dst, mac(1));
  EXPECT_EQ(e.src, mac(2));
  EXPECT_EQ(e.ethertype, 0x0806);
}

TEST(Arp, RoundTripAndEveryBadField) {
  uint8_t b[kArpLen];
  write_arp(b, kArpRequest, mac(1), ip("10.0.0.1"), MacAddr{}, ip("10.0.0.2"));
  ArpView a;
  ASSERT_FALSE(parse_arp({b, kArpLen}, a));
  EXPECT_EQ(a.op, kArpRequest);
  EXPECT_EQ(a.sha, mac(1));
  EXPECT_EQ(a.spa, ip("10.0.0.1"));
  EXPECT_EQ(a.tpa, ip("10.0.0.2"));
  EXPECT_EQ(parse_arp({b, kArpLen - 1}, a), DropReason::kArpMalformed);
  for (int off : {1, 3, 4, 5}) {  // htype, ptype, hlen, plen
    uint8_t c[kArpLen];
    std::memcpy(c, b, kArpLen);
    c[off] ^= 0x40;
    EXPECT_EQ(parse_arp({c, kArpLen}, a), DropReason::kArpMalformed) << off;
  }
  b[7] = 3;
  EXPECT_EQ(parse_arp({b, kArpLen}, a), DropReason::kArpUnsupportedOp);
}

TEST(ArpCache, ExpiryStaticAndRateLimit) {
  ArpCache c(1000, 2);
  c.insert(ip("10.0.0.1"), mac(1), 0);
  EXPECT_EQ(c.lookup(ip("10.0.0.1"), 999), mac(1));
  EXPECT_FALSE(c.lookup(ip("10.0.0.1"), 1000));
  EXPECT_EQ(c.expire(1000), 1u);
  c.insert(ip("10.0.0.9"), mac(9), 0, true);
  c.insert(ip("10.0.0.9"), mac(8), 0);  // learning never overrides a static entry
  EXPECT_EQ(c.lookup(ip("10.0.0.9"), ~0ull - 1), mac(9));
  c.insert(ip("10.0.0.2"), mac(2), 0);
  c.insert(ip("10.0.0.3"), mac(3), 10);  // full: evicts the dynamic entry, keeps the static one
  EXPECT_EQ(c.size(), 2u);
  EXPECT_EQ(c.lookup(ip("10.0.0.3"), 11), mac(3));
  EXPECT_FALSE(c.lookup(ip("10.0.0.2"), 11));
  EXPECT_TRUE(c.should_request(ip("10.0.0.4"), 0, 100));
  EXPECT_FALSE(c.should_request(ip("10.0.0.4"), 50, 100));
  EXPECT_TRUE(c.should_request(ip("10.0.0.4"), 150, 100));
}

class Ipv4Parse : public ::testing::Test {
 protected:
  PacketPool pool{4};
  Frame f = udp_frame(pool, mac(1), mac(2), ip("10.1.1.1"), ip("10.2.2.2"), 5, 9000, 64);
  uint8_t* p = f.data + kEthHeaderLen;
  Ipv4View v;
};

TEST_F(Ipv4Parse, Valid) {
  ASSERT_FALSE(parse_ipv4(ipspan(f), v));
  EXPECT_EQ(v.header_len, 20u);
  EXPECT_EQ(v.total_len, 20u + 8 + 64);
  EXPECT_EQ(v.protocol, kProtoUdp);
  EXPECT_FALSE(v.fragment);
}
TEST_F(Ipv4Parse, TruncatedHeader) {
  EXPECT_EQ(parse_ipv4({p, 19}, v), DropReason::kIpTooShort);
}
TEST_F(Ipv4Parse, BadVersion) {
  p[0] = 0x65;
  fix_ip_checksum(f);
  EXPECT_EQ(parse_ipv4(ipspan(f), v), DropReason::kIpBadVersion);
}
TEST_F(Ipv4Parse, IhlTooSmallOrPastFrame) {
  p[0] = 0x44;
  EXPECT_EQ(parse_ipv4(ipspan(f), v), DropReason::kIpBadIhl);
  p[0] = 0x4f;  // 60-byte header in a 25-byte view
  EXPECT_EQ(parse_ipv4({p, 25}, v), DropReason::kIpBadIhl);
}
TEST_F(Ipv4Parse, TotalLengthOutOfRange) {
  store_be16(p + 2, uint16_t(f.len - kEthHeaderLen + 1));
  fix_ip_checksum(f);
  EXPECT_EQ(parse_ipv4(ipspan(f), v), DropReason::kIpBadTotalLength);
  store_be16(p + 2, 19);
  fix_ip_checksum(f);
  EXPECT_EQ(parse_ipv4(ipspan(f), v), DropReason::kIpBadTotalLength);
}
TEST_F(Ipv4Parse, BadChecksum) {
  p[kIpOffChecksum] ^= 1;
  EXPECT_EQ(parse_ipv4(ipspan(f), v), DropReason::kIpBadChecksum);
}
TEST_F(Ipv4Parse, BadSources) {
  for (const char* s : {"224.0.0.1", "255.255.255.255", "127.0.0.1", "0.1.2.3"}) {
    store_be32(p + kIpOffSrc, ip(s).v);
    fix_ip_checksum(f);
    EXPECT_EQ(parse_ipv4(ipspan(f), v), DropReason::kIpBadSource) << s;
  }
}
TEST_F(Ipv4Parse, FragmentsFlagged) {
  store_be16(p + 6, 0x2000);  // MF
  fix_ip_checksum(f);
  ASSERT_FALSE(parse_ipv4(ipspan(f), v));
  EXPECT_TRUE(v.fragment);
  store_be16(p + 6, 0x0010);  // offset
  fix_ip_checksum(f);
  ASSERT_FALSE(parse_ipv4(ipspan(f), v));
  EXPECT_TRUE(v.fragment);
}
TEST_F(Ipv4Parse, PaddingAccepted) {
  ASSERT_FALSE(parse_ipv4({p, f.len - kEthHeaderLen + 10}, v));
  EXPECT_EQ(v.total_len, f.len - kEthHeaderLen);
}

TEST(Udp, ChecksumLengthAndZero) {
  PacketPool pool(2);
  Frame f = udp_frame(pool, mac(1), mac(2), ip("10.1.1.1"), ip("10.2.2.2"), 5, 9000, 33);
  uint8_t* u = f.data + kEthHeaderLen + 20;
  std::span<const uint8_t> seg(u, 8 + 33);
  UdpView uv;
  ASSERT_FALSE(parse_udp(seg, ip("10.1.1.1"), ip("10.2.2.2"), true, uv));
  EXPECT_EQ(uv.dst_port, 9000);
  // Wrong pseudo-header address: the checksum covers it.
  EXPECT_EQ(parse_udp(seg, ip("10.1.1.9"), ip("10.2.2.2"), true, uv), DropReason::kUdpBadChecksum);
  EXPECT_FALSE(parse_udp(seg, ip("10.1.1.9"), ip("10.2.2.2"), false, uv));
  u[20] ^= 0xff;  // payload corruption
  EXPECT_EQ(parse_udp(seg, ip("10.1.1.1"), ip("10.2.2.2"), true, uv), DropReason::kUdpBadChecksum);
  store_be16(u + 6, 0);  // zero: no checksum, accepted
  EXPECT_FALSE(parse_udp(seg, ip("10.1.1.1"), ip("10.2.2.2"), true, uv));
  EXPECT_EQ(parse_udp({u, 7}, ip("10.1.1.1"), ip("10.2.2.2"), true, uv), DropReason::kUdpMalformed);
  store_be16(u + 4, 7);
  EXPECT_EQ(parse_udp(seg, ip("10.1.1.1"), ip("10.2.2.2"), true, uv), DropReason::kUdpMalformed);
  store_be16(u + 4, 8 + 34);
  EXPECT_EQ(parse_udp(seg, ip("10.1.1.1"), ip("10.2.2.2"), true, uv), DropReason::kUdpMalformed);
}

TEST(Icmp, ShortAndBadChecksum) {
  PacketPool pool(2);
  Frame f = icmp_echo_frame(pool, mac(1), mac(2), ip("10.1.1.1"), ip("10.1.1.2"));
  uint8_t* m = f.data + kEthHeaderLen + 20;
  IcmpView iv;
  ASSERT_FALSE(parse_icmp({m, 24}, iv));
  EXPECT_EQ(iv.type, kIcmpEchoRequest);
  EXPECT_EQ(parse_icmp({m, 7}, iv), DropReason::kIcmpMalformed);
  m[10] ^= 1;
  EXPECT_EQ(parse_icmp({m, 24}, iv), DropReason::kIcmpBadChecksum);
}

TEST(NetTypes, ParseAndFormat) {
  EXPECT_EQ(Ipv4Addr::parse("10.201.1.2")->str(), "10.201.1.2");
  for (const char* bad : {"10.1.1", "10.1.1.256", "a.b.c.d", "10.1.1.1.1", "", "1..1.1"})
    EXPECT_FALSE(Ipv4Addr::parse(bad)) << bad;
  EXPECT_EQ(MacAddr::parse("02:00:0a:0b:0c:ff")->str(), "02:00:0a:0b:0c:ff");
  EXPECT_FALSE(MacAddr::parse("02:00:0a:0b:0c"));
  EXPECT_FALSE(MacAddr::parse("02-00-0a-0b-0c-ff"));
  EXPECT_TRUE(ip("10.201.2.7").in_subnet(ip("10.201.2.1"), 24));
  EXPECT_FALSE(ip("10.201.3.7").in_subnet(ip("10.201.2.1"), 24));
}

}  // namespace
}  // namespace ulsnet
