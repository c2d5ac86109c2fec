// libFuzzer target: Stack::process fed whole frames, in router or relay mode, with a live ARP
// cache (entries learned from the input's ARP, expiring as its clock advances) and TX lists small
// enough to fill. Input: one byte of set-up (bit 0: relay; bits 1-3: TX list capacity 1..8;
// bit 4: no UDP checksum verification; bit 5: no ICMP time-exceeded; bit 6: the out link's MTU
// is 576; bit 7: the in link's is 1280), then records of
// [interface (1 byte)][clock advance in ms (1 byte)][length (2 bytes, big-endian)][frame bytes].
//
// After every record, for every input:
//   - every frame the stack took is accounted once: rx_frames = forwarded + consumed + drops;
//   - every frame it asks to send is a frame on one of our buffers, from the interface's MAC, and
//     an IPv4 one parses (header checksum correct after the TTL decrement or the relay's
//     re-addressing; a relayed datagram's UDP checksum verifies) and is no longer than the
//     link's MTU; an ARP one parses;
//   - every generated frame is an ARP request or an ICMP error the counters name;
//   - every buffer comes back exactly once (none lost, none released twice).
#include <cstring>
#include <memory>
#include <optional>
#include <span>

#include "stack/fuzz/fuzz_check.h"
#include "stack/packet_pool.h"
#include "stack/protocols.h"
#include "stack/stack.h"
#include "stack/test_frames.h"

using namespace ulsnet;
using testing::ip;
using testing::mac;
using testing::PoolAllocator;

namespace {

constexpr uint32_t kBuffers = 64;

void check_sent(const Stack& s, int iface, const Frame& f, const PacketPool& rx, const PacketPool& gen) {
  auto within = [&](const PacketPool& p) {
    return f.data >= p.base() && f.data + f.len <= p.base() + p.region_bytes();
  };
  FUZZ_CHECK(within(rx) || within(gen));
  FUZZ_CHECK(f.len >= kEthHeaderLen && f.len <= f.capacity);
  EthView e;
  FUZZ_CHECK(!parse_eth(f.bytes(), e).has_value());
  FUZZ_CHECK(e.src == s.config().ifaces[size_t(iface)].mac);
  const std::span<const uint8_t> body(f.data + kEthHeaderLen, f.len - kEthHeaderLen);
  if (e.ethertype == kEtherTypeArp) {
    ArpView a;
    FUZZ_CHECK(!parse_arp(body, a).has_value());
    return;
  }
  FUZZ_CHECK(e.ethertype == kEtherTypeIpv4);
  Ipv4View v;
  FUZZ_CHECK(!parse_ipv4(body, v).has_value());
  FUZZ_CHECK(v.total_len == body.size());  // padding trimmed
  FUZZ_CHECK(v.total_len <= s.config().ifaces[size_t(iface)].mtu);  // never over the link's MTU
  if (s.config().mode == ForwardMode::kRelay && v.protocol == kProtoUdp && !v.fragment &&
      s.config().verify_udp_checksum && v.header_len == kIpv4MinHeaderLen) {
    UdpView u;
    FUZZ_CHECK(!parse_udp(body.subspan(v.header_len, v.total_len - v.header_len), v.src, v.dst,
                          true, u).has_value());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t setup = data[0];
  // The pools outlive each input (mapping them anew costs more than the rest of a run); every
  // input gives every buffer back, which the checks below make sure of.
  static PoolAllocator gen[2];
  static PacketPool rx(kBuffers);
  StackConfig cfg;
  cfg.mode = (setup & 1) ? ForwardMode::kRelay : ForwardMode::kRouter;
  cfg.ifaces = {{"in", mac(1), ip("10.0.1.1"), 24, &gen[0]},
                {"out", mac(2), ip("10.0.2.1"), 24, &gen[1]}};
  cfg.relays = {{9000, ip("10.0.2.2"), 9001}, {9002, ip("10.0.1.2"), 9003}};
  cfg.neighbors = {{ip("10.0.1.3"), mac(0x13)}};
  cfg.arp_ttl_ns = 2'000'000'000ull;
  cfg.verify_udp_checksum = (setup & 16) == 0;
  cfg.icmp_time_exceeded = (setup & 32) == 0;
  if (setup & 64) cfg.ifaces[1].mtu = 576;   // the smallest MTU every IPv4 host must accept
  if (setup & 128) cfg.ifaces[0].mtu = 1280;
  Stack stack(cfg);
  uint64_t now = 1'000'000'000ull;
  stack.arp_cache().insert(ip("10.0.1.2"), mac(0x12), now);
  stack.arp_cache().insert(ip("10.0.2.2"), mac(0x22), now);
  TxBatch out(2, 1 + ((setup >> 1) & 7));

  size_t at = 1;
  while (at + 4 <= size) {
    const int iface = data[at] & 1;
    now += uint64_t(data[at + 1]) * 1'000'000ull;
    const size_t len = std::min<size_t>(load_be16(data + at + 2), size - at - 4);
    at += 4;
    Frame f;
    FUZZ_CHECK(rx.alloc_one(f));
    const size_t n = std::min<size_t>(len, f.capacity);
    std::memcpy(f.data, data + at, n);
    f.len = uint32_t(n);
    at += len;
    stack.process(iface, {&f, 1}, out, now);

    const StackCounters& c = stack.counters();
    FUZZ_CHECK(c.rx_frames == c.forwarded + c.consumed + c.drops.total());
    FUZZ_CHECK(c.generated ==
               c.arp_requests_sent + c.icmp_time_exceeded_sent + c.icmp_frag_needed_sent);
    for (int k = 0; k < 2; ++k) {
      for (const Frame& g : out.per_iface[size_t(k)]) {
        check_sent(stack, k, g, rx, gen[k].pool);
        g.release();  // sent
      }
    }
    out.clear();
    FUZZ_CHECK(rx.available() == kBuffers && rx.bad_releases() == 0);
    for (auto& g : gen) FUZZ_CHECK(g.pool.available() == g.pool.count() && g.pool.bad_releases() == 0);
  }
  return 0;
}
