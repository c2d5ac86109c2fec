// libFuzzer target: the ULS ring device (two interfaces sharing one buffer pool) against a
// simulated kernel side of its rings, driven by the input. Byte 0 picks the kernel: bit 0 clear,
// an honest one (takes fill buffers, posts received frames of any length, takes and completes
// tx descriptors, hands fill buffers back unused at unbind); set, the same plus writes of any
// value to any ring index or descriptor (a corrupt or hostile kernel). The rest is a sequence
// of operations (one byte each, with an argument byte) by either side.
//
// For every input: no read or write outside the region (AddressSanitizer; every frame handed
// out is touched end to end), no frame outside the pool, and a tx_burst settled after it
// finished changes nothing (settle_tx is idempotent). With the honest kernel, also: every buffer
// is in exactly one place (free, held, or on a ring), none released wrongly or twice.
#include <linux/uls.h>

#include <cstring>
#include <vector>

#include "stack/fuzz/fuzz_check.h"
#include "stack/uls_ring_device.h"

using namespace ulsnet;

namespace {

constexpr uint32_t kMask = ULS_NET_RING_SIZE - 1;
constexpr uint32_t kRingsStride = 0x4000;
constexpr uint32_t kPoolOff = 0x10000;
constexpr uint32_t kBuffers = 32;

struct Input {
  const uint8_t* p;
  size_t n;
  bool empty() const { return n == 0; }
  uint8_t byte() {
    if (n == 0) return 0;
    --n;
    return *p++;
  }
  uint16_t u16() {  // big-endian; each byte read in its own statement (operands of | are unsequenced)
    const uint16_t hi = byte();
    return uint16_t(hi << 8 | byte());
  }
  uint32_t u32() {
    const uint32_t hi = u16();
    return hi << 16 | u16();
  }
};

uint32_t entries(const uls_ring& r) { return r.producer - r.consumer; }

void touch(const Frame& f, const std::vector<uint8_t>& mem) {
  FUZZ_CHECK(f.data >= mem.data() + kPoolOff && f.data + f.capacity <= mem.data() + mem.size());
  FUZZ_CHECK(f.len <= f.capacity);
  volatile uint8_t x = 0;
  if (f.len > 0) x = x + f.data[0] + f.data[f.len - 1];
  (void)x;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in{data, size};
  const bool honest = (in.byte() & 1) == 0;
  // The region outlives each input (allocating it anew costs more than the rest of a run).
  static std::vector<uint8_t> mem(kPoolOff + size_t(kBuffers) * ULS_NET_BUF_SIZE);
  std::memset(mem.data(), 0, kPoolOff);  // the rings; the buffers' bytes are never read as state
  UlsBufferPool pool(mem.data(), kPoolOff, kBuffers);
  uls_net_rings* rings[2] = {reinterpret_cast<uls_net_rings*>(mem.data()),
                             reinterpret_cast<uls_net_rings*>(mem.data() + kRingsStride)};
  static_assert(sizeof(uls_net_rings) <= kRingsStride);
  uint32_t fill[2], reserve[2];
  for (int i = 0; i < 2; ++i) {
    fill[i] = 1 + in.byte() % 16;
    reserve[i] = in.byte() % 8;
  }
  UlsRingDevice dev[2] = {UlsRingDevice("a", rings[0], pool, fill[0], reserve[0]),
                          UlsRingDevice("b", rings[1], pool, fill[1], reserve[1])};
  std::vector<Frame> held;

  while (!in.empty()) {
    const uint8_t op = in.byte();
    const int i = op & 1;
    uls_net_rings& r = *rings[i];
    switch ((op >> 1) % 12) {
      case 0: {  // kernel: a frame arrives into the next fill buffer (any length)
        if (r.fill.consumer == r.fill.producer || entries(r.rx) >= ULS_NET_RING_SIZE) break;
        const uint32_t off = r.fill.desc[r.fill.consumer & kMask].off;
        ++r.fill.consumer;
        const uint16_t len = in.u16() & 0xfff;  // 0..4095
        if (off >= kPoolOff && off < mem.size()) mem[off] = 0xaa;  // "DMA"
        r.rx.desc[r.rx.producer & kMask] = {off, len, 0};
        ++r.rx.producer;
        break;
      }
      case 1: {  // kernel: sends (or refuses) the next tx descriptor
        if (r.tx.consumer == r.tx.producer || entries(r.comp) >= ULS_NET_RING_SIZE) break;
        const uls_desc d = r.tx.desc[r.tx.consumer & kMask];
        ++r.tx.consumer;
        r.comp.desc[r.comp.producer & kMask] = {d.off, d.len, uint16_t(in.byte() & 1 ? ULS_DESC_INVALID : 0)};
        ++r.comp.producer;
        break;
      }
      case 2:  // kernel: unbind hands every fill buffer back unused
        while (r.fill.consumer != r.fill.producer && entries(r.comp) < ULS_NET_RING_SIZE) {
          r.comp.desc[r.comp.producer & kMask] = {r.fill.desc[r.fill.consumer & kMask].off, 0, ULS_DESC_UNUSED};
          ++r.fill.consumer;
          ++r.comp.producer;
        }
        break;
      case 3: {  // a hostile kernel writes any value anywhere on the rings
        if (honest) break;
        uls_ring* ring = &r.fill + (in.byte() & 3);
        const uint8_t what = in.byte();
        const uint32_t v = in.u32();
        if (what % 3 == 0) ring->producer = v;
        else if (what % 3 == 1) ring->consumer = v;
        else {
          const uint16_t len = in.u16();
          ring->desc[what & kMask] = {v, len, uint16_t(in.byte())};
        }
        break;
      }
      case 4: {  // extension: rx_burst
        Frame f[16];
        const size_t want = 1 + in.byte() % 16;
        const size_t n = dev[i].rx_burst({f, want});
        FUZZ_CHECK(n <= want);
        for (size_t k = 0; k < n; ++k) {
          FUZZ_CHECK(pool.valid(f[k].handle) && f[k].owner == &pool);
          touch(f[k], mem);
          held.push_back(f[k]);
        }
        break;
      }
      case 5: {  // extension: tx_burst of held frames, some of them spoiled; then settled again
        std::vector<Frame> fs;
        const size_t want = in.byte() % 20;
        while (fs.size() < want && !held.empty()) {
          Frame f = held.back();
          held.pop_back();
          const uint8_t how = in.byte();
          if (how % 7 == 1) f.len = 14 + how;          // any frame length
          if (how % 7 == 2) f.len = 1515 + how;         // longer than the kernel sends
          if (how % 7 == 3) f.data += 1, --f.capacity;  // not the start of its buffer
          if (how % 7 == 4) f.len = 13;
          fs.push_back(f);
        }
        const UlsRingDevice::TxMark m = dev[i].tx_mark();
        const size_t free_before_tx = pool.free_count();
        const size_t sent = dev[i].tx_burst(fs, m);
        FUZZ_CHECK(sent <= fs.size());
        const DeviceStats s = dev[i].stats();
        FUZZ_CHECK(s.tx_frames == m.s0.tx_frames + sent);
        FUZZ_CHECK(s.tx_dropped == m.s0.tx_dropped + (fs.size() - sent));
        if (honest) FUZZ_CHECK(pool.free_count() == free_before_tx + (fs.size() - sent));
        const size_t free_after = pool.free_count();
        FUZZ_CHECK(dev[i].settle_tx(m, fs) || sent == 0);
        const DeviceStats t = dev[i].stats();
        FUZZ_CHECK(t.tx_frames == s.tx_frames && t.tx_dropped == s.tx_dropped);
        if (honest) FUZZ_CHECK(pool.free_count() == free_after);
        break;
      }
      case 6: dev[i].reclaim(); break;
      case 7: dev[i].refill(); break;
      case 8: {  // extension: buffers for generated frames
        Frame f[8];
        const size_t n = dev[i].alloc_tx({f, size_t(1 + in.byte() % 8)});
        for (size_t k = 0; k < n; ++k) {
          FUZZ_CHECK(f[k].len == 0);
          f[k].len = 60;
          touch(f[k], mem);
          held.push_back(f[k]);
        }
        break;
      }
      case 9: {  // extension: drops some held frames
        size_t n = in.byte() % 8;
        while (n-- > 0 && !held.empty()) {
          held.back().release();
          held.pop_back();
        }
        break;
      }
      case 10: (void)dev[i].rx_pending(); (void)dev[i].rx_empty(); break;
      case 11: {  // a frame of no pool's buffers offered for transmit: refused, counted
        uint8_t buf[64] = {};
        Frame f{buf, 60, 0, 64, 0, nullptr};
        FUZZ_CHECK(dev[i].tx_burst({&f, 1}) == 0);
        break;
      }
    }
    if (honest) {
      size_t on_rings = 0;
      for (auto* rr : rings) on_rings += entries(rr->fill) + entries(rr->rx) + entries(rr->tx) + entries(rr->comp);
      FUZZ_CHECK(pool.free_count() + held.size() + on_rings == kBuffers);
      FUZZ_CHECK(pool.counters().bad_release == 0 && pool.counters().overflow == 0);
    }
    FUZZ_CHECK(pool.free_count() <= kBuffers);
  }
  for (const Frame& f : held) f.release();
  return 0;
}
