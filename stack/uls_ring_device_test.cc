// The zero-copy device of the ULS kernel, against a simulated kernel side of its rings in
// ordinary memory: the test plays the driver (takes fill buffers, "DMAs" frames into them,
// posts rx descriptors, takes tx descriptors, returns completions) exactly as patch 0005 does.
#include "stack/uls_ring_device.h"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <vector>

#include "stack/stack.h"
#include "stack/test_frames.h"

namespace ulsnet {
namespace {

using testing::ip;
using testing::mac;

constexpr uint32_t kMask = ULS_NET_RING_SIZE - 1;
constexpr uint32_t kPoolOff = 0x10000;

// A region: two interfaces' rings and a pool of `bufs` buffers.
struct FakeRegion {
  explicit FakeRegion(uint32_t bufs)
      : mem(kPoolOff + size_t(bufs) * ULS_NET_BUF_SIZE), pool(mem.data(), kPoolOff, bufs) {
    std::memset(mem.data(), 0, mem.size());
  }
  uls_net_rings* rings(int i) { return reinterpret_cast<uls_net_rings*>(mem.data() + 0x4000 * i); }
  std::vector<uint8_t> mem;
  UlsBufferPool pool;
};

// The driver's side of one interface's rings.
struct FakeNic {
  uls_net_rings* r;
  uint8_t* base;
  // Receives a frame: into the next fill buffer, then an rx descriptor. false if no buffer.
  bool receive(const uint8_t* bytes, uint32_t len) {
    if (r->fill.consumer == r->fill.producer) return false;
    const uint32_t off = r->fill.desc[r->fill.consumer++ & kMask].off;
    std::memcpy(base + off, bytes, len);
    post_rx(off, len);
    return true;
  }
  void post_rx(uint32_t off, uint32_t len) {
    r->rx.desc[r->rx.producer & kMask] = {off, uint16_t(len), 0};
    ++r->rx.producer;
  }
  // Takes every tx descriptor and completes it with `flags`; returns them.
  std::vector<uls_desc> send_all(uint16_t flags = 0) {
    std::vector<uls_desc> out;
    while (r->tx.consumer != r->tx.producer) {
      uls_desc d = r->tx.desc[r->tx.consumer++ & kMask];
      out.push_back(d);
      r->comp.desc[r->comp.producer++ & kMask] = {d.off, d.len, flags};
    }
    return out;
  }
};

TEST(UlsBufferPool, HandsOutEachBufferOnceAndChecksWhatComesBack) {
  FakeRegion reg(4);
  UlsBufferPool& p = reg.pool;
  EXPECT_EQ(p.free_count(), 4u);
  std::vector<uint32_t> got;
  uint32_t off;
  while (p.take(off)) got.push_back(off);
  ASSERT_EQ(got.size(), 4u);
  for (uint32_t o : got) EXPECT_TRUE(p.valid(o));
  EXPECT_FALSE(p.valid(kPoolOff + 1));                         // not a chunk boundary
  EXPECT_FALSE(p.valid(kPoolOff + 4 * ULS_NET_BUF_SIZE));      // past the end
  EXPECT_FALSE(p.valid(kPoolOff - ULS_NET_BUF_SIZE));          // before it
  p.put(kPoolOff + 3);
  EXPECT_EQ(p.counters().bad_release, 1u);
  for (uint32_t o : got) p.put(o);
  EXPECT_EQ(p.free_count(), 4u);
  p.put(got[0]);  // a fifth buffer back: impossible, counted, not stored
  EXPECT_EQ(p.counters().overflow, 1u);
  EXPECT_EQ(p.free_count(), 4u);
}

TEST(UlsRingDevice, RefillKeepsAReserveAndReceivesIntoPoolBuffersWithoutCopying) {
  FakeRegion reg(64);
  UlsRingDevice dev("eth0", reg.rings(0), reg.pool, /*fill_target=*/32, /*reserve=*/8);
  dev.refill();
  EXPECT_EQ(reg.rings(0)->fill.producer, 32u);
  dev.refill();  // already at its target
  EXPECT_EQ(reg.rings(0)->fill.producer, 32u);
  EXPECT_EQ(reg.pool.free_count(), 32u);

  FakeNic nic{reg.rings(0), reg.mem.data()};
  std::vector<uint8_t> bytes(60);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = uint8_t(i);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(nic.receive(bytes.data(), 60));
  EXPECT_EQ(dev.rx_pending(), 5u);
  Frame f[8];
  ASSERT_EQ(dev.rx_burst({f, 3}), 3u);
  ASSERT_EQ(dev.rx_burst({f + 3, 5}), 2u);
  for (int i = 0; i < 5; ++i) {
    const uint32_t off = reg.rings(0)->fill.desc[i].off;
    EXPECT_EQ(f[i].data, reg.mem.data() + off) << "the frame is the buffer the NIC wrote";
    EXPECT_EQ(f[i].len, 60u);
    EXPECT_EQ(std::memcmp(f[i].data, bytes.data(), 60), 0);
    f[i].release();
  }
  EXPECT_EQ(reg.pool.free_count(), 37u);
  EXPECT_EQ(dev.stats().rx_frames, 5u);
  EXPECT_EQ(dev.stats().copies, 0u);
  EXPECT_EQ(dev.stats().syscalls, 0u);

  // The pool never drops below the reserve for alloc_tx.
  for (int i = 0; i < 10; ++i) dev.refill(), nic.receive(bytes.data(), 60);
  EXPECT_GE(reg.pool.free_count(), 8u);
}

TEST(UlsRingDevice, DescriptorsAndIndicesTheKernelWroteAreCheckedNotTrusted) {
  FakeRegion reg(16);
  UlsRingDevice dev("eth0", reg.rings(0), reg.pool, 8, 0);
  FakeNic nic{reg.rings(0), reg.mem.data()};
  uint32_t off;
  ASSERT_TRUE(reg.pool.take(off));
  nic.post_rx(kPoolOff + 5, 60);                   // inside a buffer
  nic.post_rx(0x100, 60);                          // outside the pool
  nic.post_rx(off, 10);                            // shorter than an Ethernet header
  nic.post_rx(off, ULS_NET_BUF_SIZE + 1);          // longer than a buffer
  Frame f[8];
  EXPECT_EQ(dev.rx_burst(f), 0u);
  EXPECT_EQ(dev.counters().rx_invalid, 4u);
  EXPECT_EQ(reg.pool.free_count(), 16u) << "a pool buffer in a refused descriptor is free again";

  // An rx producer more than a ring ahead: nothing is read from the ring.
  reg.rings(0)->rx.producer = reg.rings(0)->rx.consumer + ULS_NET_RING_SIZE + 1;
  EXPECT_EQ(dev.rx_burst(f), 0u);
  EXPECT_EQ(dev.counters().ring_corrupt, 1u);
  reg.rings(0)->comp.producer = reg.rings(0)->comp.consumer - 1;
  dev.reclaim();
  EXPECT_EQ(dev.counters().ring_corrupt, 2u);

  // A completion naming no pool buffer.
  reg.rings(1)->comp.desc[0] = {0x42, 60, 0};
  reg.rings(1)->comp.producer = 1;
  UlsRingDevice dev1("eth1", reg.rings(1), reg.pool, 8, 0);
  dev1.reclaim();
  EXPECT_EQ(dev1.counters().comp_invalid, 1u);
  EXPECT_EQ(reg.rings(1)->comp.consumer, 1u);
}

TEST(UlsRingDevice, TransmitsOnlyWholePoolBuffersAndCountsWhatItCannotSend) {
  FakeRegion reg(ULS_NET_RING_SIZE + 8);
  UlsRingDevice dev("eth1", reg.rings(1), reg.pool, 0, 0);
  std::vector<Frame> fs(ULS_NET_RING_SIZE + 2);
  ASSERT_EQ(dev.alloc_tx(fs), fs.size());
  for (Frame& f : fs) f.len = 60;
  // A frame moved inside its buffer cannot be described by (offset, length).
  fs[0].pull_front(2);
  // One that is not a pool buffer at all.
  uint8_t other[64] = {};
  Frame foreign{other, 60, 0, 64, 0, nullptr};
  std::vector<Frame> batch(fs.begin(), fs.end());
  batch.push_back(foreign);
  EXPECT_EQ(dev.tx_burst(batch), size_t(ULS_NET_RING_SIZE));
  EXPECT_EQ(dev.counters().tx_not_buffer, 2u);
  EXPECT_EQ(dev.counters().tx_ring_full, 1u);
  EXPECT_EQ(dev.stats().tx_frames, uint64_t(ULS_NET_RING_SIZE));
  EXPECT_EQ(dev.stats().tx_dropped, 3u);
  EXPECT_EQ(reg.pool.free_count(), 6u + 2u) << "dropped pool frames are free again";

  FakeNic nic{reg.rings(1), reg.mem.data()};
  auto sent = nic.send_all();
  ASSERT_EQ(sent.size(), size_t(ULS_NET_RING_SIZE));
  for (size_t i = 0; i < sent.size(); ++i) EXPECT_EQ(sent[i].off, fs[i + 1].handle);
  dev.reclaim();
  EXPECT_EQ(dev.counters().comp_sent, uint64_t(ULS_NET_RING_SIZE));
  EXPECT_EQ(reg.pool.free_count(), size_t(ULS_NET_RING_SIZE + 8));
}

// A tx_burst the kernel cut short (an upcall ended anywhere) is finished by settle_tx from its
// mark: before the commit (the producer index) every frame is still the caller's; after it, the
// posted ones are the kernel's, every refused one is released exactly once, and the counters are
// those of the whole call. Each state a cut can leave is built here by hand.
TEST(UlsRingDevice, ATransmitCutShortIsSettledFromItsMarkExactlyOnce) {
  FakeRegion reg(ULS_NET_RING_SIZE + 8);
  UlsRingDevice dev("eth1", reg.rings(1), reg.pool, 0, 0);
  // The ring holds all but two: of four frames two are posted, two refused (ring full).
  std::vector<Frame> filler(ULS_NET_RING_SIZE - 2);
  ASSERT_EQ(dev.alloc_tx(filler), filler.size());
  for (Frame& f : filler) f.len = 60;
  ASSERT_EQ(dev.tx_burst(filler), filler.size());
  std::vector<Frame> fs(4);
  ASSERT_EQ(dev.alloc_tx(fs), fs.size());
  for (Frame& f : fs) f.len = 60;
  const size_t free0 = reg.pool.free_count();
  const DeviceStats s0 = dev.stats();
  const uint32_t prod0 = reg.rings(1)->tx.producer;

  // Cut before anything (or anywhere before the commit): not committed, counters as before,
  // nothing released, and again the same.
  const UlsRingDevice::TxMark m = dev.tx_mark();
  EXPECT_FALSE(dev.settle_tx(m, fs));
  EXPECT_FALSE(dev.settle_tx(m, fs));
  EXPECT_EQ(dev.stats().tx_frames, s0.tx_frames);
  EXPECT_EQ(dev.stats().tx_dropped, s0.tx_dropped);
  EXPECT_EQ(reg.pool.free_count(), free0);
  EXPECT_EQ(reg.rings(1)->tx.producer, prod0);

  // The whole call, then a cut after its commit and before its releases: the two refused
  // buffers (released last, so the first two a take returns) are held again.
  ASSERT_EQ(dev.tx_burst(fs, m), 2u);
  const DeviceStats s1 = dev.stats();
  const UlsRingDevice::Counters c1 = dev.counters();
  EXPECT_EQ(s1.tx_frames, s0.tx_frames + 2);
  EXPECT_EQ(s1.tx_dropped, s0.tx_dropped + 2);
  EXPECT_EQ(reg.pool.free_count(), free0 + 2);
  uint32_t a = 0, b = 0;
  ASSERT_TRUE(reg.pool.take(a));
  ASSERT_TRUE(reg.pool.take(b));
  EXPECT_TRUE((a == fs[3].handle && b == fs[2].handle) || (a == fs[2].handle && b == fs[3].handle));
  EXPECT_TRUE(dev.settle_tx(m, fs));
  EXPECT_EQ(reg.pool.free_count(), free0 + 2) << "the refused frames released once";
  // Settled again (the settling upcall was ended too): the same state.
  EXPECT_TRUE(dev.settle_tx(m, fs));
  EXPECT_EQ(reg.pool.free_count(), free0 + 2);
  EXPECT_EQ(reg.pool.counters().overflow, 0u);
  EXPECT_EQ(dev.stats().tx_frames, s1.tx_frames);
  EXPECT_EQ(dev.stats().tx_dropped, s1.tx_dropped);
  EXPECT_EQ(dev.counters().tx_ring_full, c1.tx_ring_full);
  // The posted two are on the ring once, after the filler.
  FakeNic nic{reg.rings(1), reg.mem.data()};
  auto sent = nic.send_all();
  ASSERT_EQ(sent.size(), size_t(ULS_NET_RING_SIZE));
  EXPECT_EQ(sent[ULS_NET_RING_SIZE - 2].off, fs[0].handle);
  EXPECT_EQ(sent[ULS_NET_RING_SIZE - 1].off, fs[1].handle);
  dev.reclaim();
  EXPECT_EQ(reg.pool.free_count(), size_t(ULS_NET_RING_SIZE + 8));
}

// The project's Stack, routing between two zero-copy devices: frames are forwarded in the very
// buffers the NIC received them into, and every buffer comes back.
TEST(UlsRingDevice, TheStackRoutesBetweenTwoRingDevicesInPlace) {
  FakeRegion reg(128);
  UlsRingDevice d0("eth0", reg.rings(0), reg.pool, 32, 8);
  UlsRingDevice d1("eth1", reg.rings(1), reg.pool, 32, 8);
  StackConfig c;
  c.mode = ForwardMode::kRouter;
  c.ifaces = {{"eth0", mac(1), ip("10.201.1.2"), 24, &d0}, {"eth1", mac(2), ip("10.201.2.1"), 24, &d1}};
  c.neighbors = {{ip("10.201.2.2"), mac(20)}};
  Stack stack(c);
  d0.refill();
  d1.refill();

  FakeNic nic0{reg.rings(0), reg.mem.data()}, nic1{reg.rings(1), reg.mem.data()};
  testing::PoolAllocator scratch;
  for (uint32_t i = 0; i < 20; ++i) {
    Frame t = testing::udp_frame(scratch.pool, mac(1), mac(10), ip("10.201.1.1"), ip("10.201.2.2"),
                                 5000, 9000, 18 + i);
    ASSERT_TRUE(nic0.receive(t.data, t.len));
    t.release();
  }
  // An ARP request for the proxy's address: answered from a generated frame on eth0.
  Frame a = testing::arp_frame(scratch.pool, kArpRequest, MacAddr::broadcast(), mac(10),
                               ip("10.201.1.1"), MacAddr{}, ip("10.201.1.2"));
  ASSERT_TRUE(nic0.receive(a.data, a.len));
  a.release();

  std::vector<uint32_t> rx_offs;
  for (uint32_t i = 0; i < 21; ++i) rx_offs.push_back(reg.rings(0)->rx.desc[i].off);
  Frame burst[64];
  TxBatch out(2);
  const size_t n = d0.rx_burst(burst);
  ASSERT_EQ(n, 21u);
  stack.process(0, {burst, n}, out, 1);
  d0.tx_burst(out.per_iface[0]);
  d1.tx_burst(out.per_iface[1]);
  out.clear();

  auto fwd = nic1.send_all();
  ASSERT_EQ(fwd.size(), 20u);
  for (uint32_t i = 0; i < 20; ++i) {
    EXPECT_EQ(fwd[i].off, rx_offs[i]) << "forwarded in the buffer it arrived in";
    const uint8_t* p = reg.mem.data() + fwd[i].off;
    EXPECT_EQ(std::memcmp(p, mac(20).b.data(), 6), 0);       // to the receiver
    EXPECT_EQ(std::memcmp(p + 6, mac(2).b.data(), 6), 0);    // from eth1
    EXPECT_EQ(p[kEthHeaderLen + 8], 63);                     // TTL - 1
  }
  auto arp = nic0.send_all();
  ASSERT_EQ(arp.size(), 1u);
  EXPECT_EQ(load_be16(reg.mem.data() + arp[0].off + 12), kEtherTypeArp);
  EXPECT_EQ(stack.counters().forwarded, 20u);
  EXPECT_EQ(stack.counters().drops.total(), 0u);

  d0.reclaim();
  d1.reclaim();
  d0.refill();
  d1.refill();
  // Conservation: every buffer is free or on a fill ring.
  const uint32_t on_fill = (reg.rings(0)->fill.producer - reg.rings(0)->fill.consumer) +
                           (reg.rings(1)->fill.producer - reg.rings(1)->fill.consumer);
  EXPECT_EQ(reg.pool.free_count() + on_fill, 128u);
  EXPECT_EQ(reg.pool.counters().overflow, 0u);
}

}  // namespace
}  // namespace ulsnet
