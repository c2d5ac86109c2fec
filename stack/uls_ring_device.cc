#include "stack/uls_ring_device.h"

namespace ulsnet {
namespace {

constexpr uint32_t kMask = ULS_NET_RING_SIZE - 1;
constexpr uint32_t kMinFrame = 14, kMaxFrame = 1514;  // what the kernel accepts on tx

// The kernel runs on other CPUs: indices are published with release and read with acquire
// (the descriptors before them are then visible).
inline uint32_t load_acquire(const uint32_t& v) { return __atomic_load_n(&v, __ATOMIC_ACQUIRE); }
inline void store_release(uint32_t& v, uint32_t x) { __atomic_store_n(&v, x, __ATOMIC_RELEASE); }

// How many entries a ring holds between `cons` and `prod`, or -1 if the indices are impossible.
inline int64_t ring_count(uint32_t prod, uint32_t cons) {
  uint32_t n = prod - cons;
  return n > ULS_NET_RING_SIZE ? -1 : int64_t(n);
}

}  // namespace

UlsBufferPool::UlsBufferPool(uint8_t* region_base, uint32_t pool_off, uint32_t count)
    : base_(region_base), pool_off_(pool_off), count_(count) {
  free_.reserve(count);
  for (uint32_t i = count; i-- > 0;) free_.push_back(pool_off + i * ULS_NET_BUF_SIZE);
}

bool UlsBufferPool::take(uint32_t& off) noexcept {
  if (free_.empty()) return false;
  off = free_.back();
  free_.pop_back();
  return true;
}

void UlsBufferPool::put(uint32_t off) noexcept {
  if (!valid(off)) {
    ++c_.bad_release;
  } else if (free_.size() >= count_) {
    ++c_.overflow;
  } else {
    free_.push_back(off);  // never grows past count_: reserved
  }
}

Frame UlsBufferPool::frame(uint32_t off, uint32_t len) noexcept {
  Frame f;
  f.data = base_ + off;
  f.len = len;
  f.headroom = 0;
  f.capacity = ULS_NET_BUF_SIZE;
  f.handle = off;
  f.owner = this;
  return f;
}

UlsRingDevice::UlsRingDevice(std::string ifname, uls_net_rings* rings, UlsBufferPool& pool,
                             uint32_t fill_target, uint32_t reserve)
    : ifname_(std::move(ifname)),
      r_(rings),
      pool_(pool),
      fill_target_(fill_target > ULS_NET_RING_SIZE ? ULS_NET_RING_SIZE : fill_target),
      reserve_(reserve) {}

uint32_t UlsRingDevice::rx_pending() const noexcept {
  int64_t n = ring_count(load_acquire(r_->rx.producer), r_->rx.consumer);
  return n < 0 ? 0 : uint32_t(n);
}

size_t UlsRingDevice::rx_burst(std::span<Frame> out) {
  uls_ring& rx = r_->rx;
  const uint32_t prod = load_acquire(rx.producer);
  uint32_t cons = rx.consumer;
  if (ring_count(prod, cons) < 0) {
    ++c_.ring_corrupt;
    return 0;
  }
  // Entry by entry, each frame in `out` before its ring entry is given up and counted after: cut
  // short anywhere (the kernel ends an upcall that runs past its budget), every entry given up
  // is in `out` (rx_frames may lag by one: see settle_rx), none is taken twice.
  size_t n = 0;
  while (cons != prod && n < out.size()) {
    const uls_desc d = rx.desc[cons & kMask];
    if (!pool_.valid(d.off) || d.len < kMinFrame || d.len > ULS_NET_BUF_SIZE) {
      // Not a buffer we can hand out. If it is one of ours, it is free again.
      store_release(rx.consumer, ++cons);
      ++c_.rx_invalid;
      if (pool_.valid(d.off)) pool_.put(d.off);
      continue;
    }
    out[n++] = pool_.frame(d.off, d.len);
    store_release(rx.consumer, ++cons);
    ++s_.rx_frames;
    s_.rx_bytes += d.len;
  }
  return n;
}

void UlsRingDevice::settle_rx(uint64_t frames_taken, std::span<const Frame> uncounted) noexcept {
  while (s_.rx_frames < frames_taken && !uncounted.empty()) {
    ++s_.rx_frames;
    s_.rx_bytes += uncounted.back().len;
    uncounted = uncounted.first(uncounted.size() - 1);
  }
}

UlsRingDevice::TxVerdict UlsRingDevice::tx_verdict(const Frame& f, uint32_t queued) const noexcept {
  // The descriptor carries only a buffer offset and a length: the frame must start its buffer,
  // in this region's pool.
  const bool whole = f.owner == &pool_ && pool_.valid(uint32_t(f.handle)) &&
                     f.data == pool_.region_base() + f.handle && f.len >= kMinFrame && f.len <= kMaxFrame;
  if (!whole) return TxVerdict::kNotBuffer;
  return queued >= ULS_NET_RING_SIZE ? TxVerdict::kRingFull : TxVerdict::kPost;
}

size_t UlsRingDevice::tx_burst(std::span<Frame> frames) { return tx_burst(frames, tx_mark()); }

// tx_burst's decisions, in its order: fn(frame, verdict, slot) for each frame, slot being the
// ring index a posted frame takes. Replayed, the same indices give the same decisions.
template <class Fn>
void UlsRingDevice::for_each_tx_verdict(std::span<const Frame> frames, uint32_t prod0, uint32_t cons,
                                        Fn fn) const {
  uint32_t prod = prod0;
  for (const Frame& f : frames) {
    const TxVerdict v = tx_verdict(f, prod - cons);
    fn(f, v, prod);
    if (v == TxVerdict::kPost) ++prod;
  }
}

size_t UlsRingDevice::tx_burst(std::span<Frame> frames, const TxMark& m) {
  uls_ring& tx = r_->tx;
  const uint32_t prod0 = m.prod0, cons = m.cons0;
  if (ring_count(prod0, cons) < 0) {
    ++c_.ring_corrupt;
    s_.tx_dropped += frames.size();
    for (const Frame& f : frames) f.release();
    return 0;
  }
  // Descriptors and counts first, then the commit (the producer index), then the releases of
  // the refused frames: cut short before the commit, the call left nothing the caller cannot
  // post again; after it, settle_tx knows from the same verdicts which frames to release.
  size_t sent = 0;
  for_each_tx_verdict(frames, prod0, cons, [&](const Frame& f, TxVerdict v, uint32_t slot) {
    switch (v) {
      case TxVerdict::kPost: {
        uls_desc& d = tx.desc[slot & kMask];
        d.off = uint32_t(f.handle);
        d.len = uint16_t(f.len);
        d.flags = 0;
        ++sent;
        ++s_.tx_frames;
        s_.tx_bytes += f.len;
        break;
      }
      case TxVerdict::kNotBuffer:
        ++c_.tx_not_buffer;
        ++s_.tx_dropped;
        break;
      case TxVerdict::kRingFull:
        ++c_.tx_ring_full;
        ++s_.tx_dropped;
        break;
    }
  });
  store_release(tx.producer, prod0 + uint32_t(sent));
  if (sent < frames.size())
    for_each_tx_verdict(frames, prod0, cons, [](const Frame& f, TxVerdict v, uint32_t) {
      if (v != TxVerdict::kPost) f.release();
    });
  return sent;
}

UlsRingDevice::TxMark UlsRingDevice::tx_mark() const noexcept {
  TxMark m;
  m.prod0 = r_->tx.producer;
  m.cons0 = load_acquire(r_->tx.consumer);
  m.s0 = s_;
  m.c0 = c_;
  return m;
}

bool UlsRingDevice::settle_tx(const TxMark& m, std::span<const Frame> frames) noexcept {
  // tx_burst's verdicts again, from the indices it began with (the mark's).
  const bool corrupt = ring_count(m.prod0, m.cons0) < 0;
  uint64_t posted = 0, bytes = 0, not_buffer = 0, full = 0;
  if (!corrupt)
    for_each_tx_verdict(frames, m.prod0, m.cons0, [&](const Frame& f, TxVerdict v, uint32_t) {
      if (v == TxVerdict::kPost) {
        ++posted;
        bytes += f.len;
      } else {
        ++(v == TxVerdict::kNotBuffer ? not_buffer : full);
      }
    });
  s_ = m.s0;
  c_ = m.c0;
  if (posted > 0 && __atomic_load_n(&r_->tx.producer, __ATOMIC_RELAXED) == m.prod0) return false;
  // Committed (or nothing to commit): the whole call's counts, and the refused frames released.
  // A refused frame was released already or is released now; one not on this pool's buffers
  // cannot be told either way and is left (the image has no other).
  auto release_refused = [this](const Frame& f) {
    if (f.owner == &pool_ && pool_.valid(uint32_t(f.handle)) && !pool_.is_free(uint32_t(f.handle))) f.release();
  };
  if (corrupt) {
    ++c_.ring_corrupt;
    s_.tx_dropped += frames.size();
    for (const Frame& f : frames) release_refused(f);
    return true;
  }
  s_.tx_frames += posted;
  s_.tx_bytes += bytes;
  s_.tx_dropped += not_buffer + full;
  c_.tx_not_buffer += not_buffer;
  c_.tx_ring_full += full;
  for_each_tx_verdict(frames, m.prod0, m.cons0, [&](const Frame& f, TxVerdict v, uint32_t) {
    if (v != TxVerdict::kPost) release_refused(f);
  });
  return true;
}

size_t UlsRingDevice::alloc_tx(std::span<Frame> out) {
  size_t n = 0;
  uint32_t off;
  while (n < out.size() && pool_.take(off)) out[n++] = pool_.frame(off, 0);
  return n;
}

void UlsRingDevice::reclaim() noexcept {
  uls_ring& c = r_->comp;
  const uint32_t prod = load_acquire(c.producer);
  uint32_t cons = c.consumer;
  if (ring_count(prod, cons) < 0) {
    ++c_.ring_corrupt;
    return;
  }
  // Entry by entry, the ring entry given up before its buffer is freed: cut short anywhere (the
  // kernel ends an upcall that runs past its budget), this loses at most one buffer and never
  // frees one twice.
  while (cons != prod) {
    const uls_desc d = c.desc[cons & kMask];
    store_release(c.consumer, ++cons);
    if (!pool_.valid(d.off)) {
      ++c_.comp_invalid;
      continue;
    }
    if (d.flags & ULS_DESC_INVALID)
      ++c_.comp_refused;
    else if (d.flags & ULS_DESC_UNUSED)
      ++c_.comp_unused;
    else
      ++c_.comp_sent;
    pool_.put(d.off);
  }
}

void UlsRingDevice::refill() noexcept {
  uls_ring& f = r_->fill;
  uint32_t prod = f.producer;
  const uint32_t cons = load_acquire(f.consumer);
  if (ring_count(prod, cons) < 0) {
    ++c_.ring_corrupt;
    return;
  }
  // Entry by entry (as reclaim): cut short, at most the one buffer taken is lost.
  uint32_t off;
  while (prod - cons < fill_target_ && pool_.free_count() > reserve_ && pool_.take(off)) {
    f.desc[prod & kMask].off = off;
    f.desc[prod & kMask].len = 0;
    f.desc[prod & kMask].flags = 0;
    store_release(f.producer, ++prod);
    ++c_.fill_posted;
  }
}

}  // namespace ulsnet
