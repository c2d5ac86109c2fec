// The zero-copy device of the ULS kernel (kernel/patches/0005): one e1000 interface bound to the
// sandbox hands its frames over on four descriptor rings in the region (fill, rx, tx, comp; see
// kernel/uapi/linux/uls.h). A descriptor names a 2 KiB buffer of the region's pool by its offset;
// the NIC DMAs frames straight into those buffers and sends straight out of them.
//
// This is the Device the Stack sees on that path, and it runs where the Stack runs: inside the
// sandbox image, in upcalls (sandbox/uls/). It makes no system call and copies nothing:
//   rx_burst   takes descriptors off the rx ring and hands out Frames on their buffers;
//   tx_burst   posts the frames' buffers on the tx ring (the kernel takes them when the upcall
//              ends); a frame that is not a whole pool buffer, or finds the ring full, is
//              released and counted (tx_dropped); one cut short is finished by settle_tx;
//   alloc_tx   takes free buffers for frames the Stack generates (ARP, ICMP);
//   reclaim    takes buffers back from the completion ring (sent, refused, unused);
//   refill     keeps the fill ring stocked from the free pool, leaving a reserve for alloc_tx.
// Buffers are shared between the interfaces (a frame received on one is sent on the other and
// comes back on that one's completion ring): they belong to one UlsBufferPool.
//
// Only this side writes fill.producer, rx.consumer, tx.producer and comp.consumer; the kernel
// the others. Every index and descriptor the kernel wrote is checked before use (counted, never
// trusted), as the kernel checks ours.
#pragma once

#include <linux/uls.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "stack/device.h"
#include "stack/frame.h"

namespace ulsnet {

// The free buffers of the pool: a stack of region offsets.
class UlsBufferPool final : public FrameOwner {
 public:
  struct Counters {
    uint64_t bad_release = 0;  // a release of something that is not one of its buffers (ignored)
    uint64_t overflow = 0;     // more buffers released than it has (ignored; must stay 0)
  };
  // region_base: where the region is mapped; the pool is `count` buffers of ULS_NET_BUF_SIZE
  // bytes from region offset `pool_off`. All of them start free.
  UlsBufferPool(uint8_t* region_base, uint32_t pool_off, uint32_t count);

  void release(const Frame& f) noexcept override { put(f.handle); }
  // Takes a free buffer's offset; false if none is free.
  bool take(uint32_t& off) noexcept;
  // Gives a buffer back by its offset (checked).
  void put(uint32_t off) noexcept;
  // Whether `off` is the start of one of the pool's buffers.
  bool valid(uint32_t off) const noexcept {
    return off >= pool_off_ && (off - pool_off_) % ULS_NET_BUF_SIZE == 0 &&
           (off - pool_off_) / ULS_NET_BUF_SIZE < count_;
  }
  // Whether buffer `off` is on the free list now (a linear scan: for recovery, not the fast path).
  bool is_free(uint32_t off) const noexcept {
    for (uint32_t f : free_)
      if (f == off) return true;
    return false;
  }
  // A Frame on buffer `off` (owned by this pool), `len` bytes long.
  Frame frame(uint32_t off, uint32_t len) noexcept;

  uint8_t* region_base() const noexcept { return base_; }
  uint32_t pool_off() const noexcept { return pool_off_; }
  uint32_t count() const noexcept { return count_; }
  size_t free_count() const noexcept { return free_.size(); }
  const Counters& counters() const noexcept { return c_; }

 private:
  uint8_t* base_;
  uint32_t pool_off_, count_;
  std::vector<uint32_t> free_;
  Counters c_;
};

class UlsRingDevice final : public Device {
 public:
  struct Counters {
    uint64_t comp_sent = 0;      // buffers back from the kernel as sent
    uint64_t comp_refused = 0;   // ... refused by the kernel (ULS_DESC_INVALID): not sent
    uint64_t comp_unused = 0;    // ... receive buffers never used (ULS_DESC_UNUSED, at unbind)
    uint64_t ring_corrupt = 0;   // a kernel index that made no sense (the ring was skipped)
    uint64_t rx_invalid = 0;     // rx descriptors naming no pool buffer or a bad length
    uint64_t comp_invalid = 0;   // completion descriptors naming no pool buffer
    uint64_t tx_ring_full = 0;   // of tx_dropped: the tx ring was full
    uint64_t tx_not_buffer = 0;  // of tx_dropped: the frame did not start a pool buffer
    uint64_t fill_posted = 0;    // buffers posted on the fill ring
  };
  // `rings` is this interface's struct uls_net_rings in the region; the fill ring is kept at
  // most `fill_target` deep and `reserve` buffers stay free for alloc_tx.
  UlsRingDevice(std::string ifname, uls_net_rings* rings, UlsBufferPool& pool,
                uint32_t fill_target = ULS_NET_RING_SIZE, uint32_t reserve = 16);

  const char* kind() const noexcept override { return "uls"; }
  const char* copy_mode() const noexcept override { return "zero-copy"; }
  const std::string& ifname() const noexcept override { return ifname_; }
  size_t rx_burst(std::span<Frame> out) override;
  size_t tx_burst(std::span<Frame> frames) override;
  size_t alloc_tx(std::span<Frame> out) override;
  int wait_fd() const noexcept override { return -1; }  // events are upcalls, not fds
  DeviceStats stats() override { return s_; }

  void reclaim() noexcept;
  void refill() noexcept;
  // Frames waiting on the rx ring now.
  uint32_t rx_pending() const noexcept;
  // The rx ring's consumer index and the invalid entries rx_burst skipped so far: a caller cut
  // short inside rx_burst learns from them how many frames it holds (every valid entry given
  // up is in its array, in order).
  uint32_t rx_consumer() const noexcept { return r_->rx.consumer; }
  // Nothing on the rx ring (its producer index is its consumer's; a corrupt ring is not empty).
  bool rx_empty() const noexcept { return __atomic_load_n(&r_->rx.producer, __ATOMIC_ACQUIRE) == r_->rx.consumer; }
  uint64_t rx_invalid() const noexcept { return c_.rx_invalid; }
  uint64_t rx_frames_taken() const noexcept { return s_.rx_frames; }
  // Counts the frames a cut-short rx_burst handed out but had not counted yet: rx_frames becomes
  // frames_taken, the missing ones taken from the end of `uncounted` (the burst's frames).
  void settle_rx(uint64_t frames_taken, std::span<const Frame> uncounted) noexcept;

  // Where a tx_burst begins (taken just before it): what settle_tx needs to finish one the
  // kernel cut short. tx_burst has one commit point, its store of the tx ring's producer index:
  // before it nothing is released and no descriptor is the kernel's; after it the frames it
  // posted are the kernel's and the ones it refused are released, one by one.
  struct TxMark {
    uint32_t prod0 = 0, cons0 = 0;
    DeviceStats s0;
    Counters c0;
  };
  TxMark tx_mark() const noexcept;
  // tx_burst from the ring indices of `m`, taken on this device just before (tx_burst(frames)
  // takes its own).
  size_t tx_burst(std::span<Frame> frames, const TxMark& m);
  // After tx_burst(frames), begun at `m`, was cut short, and before anything else runs on this
  // device: false if it had not committed (the counters are back to `m`, nothing was released:
  // every frame is still the caller's, to post again); true if it had (the counters are the whole
  // call's, every refused frame of this pool not yet released is released now: the caller drops
  // the frames). Settling twice is settling once.
  bool settle_tx(const TxMark& m, std::span<const Frame> frames) noexcept;

  const Counters& counters() const noexcept { return c_; }

 private:
  enum class TxVerdict { kPost, kNotBuffer, kRingFull };
  // What tx_burst does with `f` when `queued` entries are on the tx ring before it.
  TxVerdict tx_verdict(const Frame& f, uint32_t queued) const noexcept;
  template <class Fn>
  void for_each_tx_verdict(std::span<const Frame> frames, uint32_t prod0, uint32_t cons, Fn fn) const;

  std::string ifname_;
  uls_net_rings* r_;
  UlsBufferPool& pool_;
  uint32_t fill_target_, reserve_;
  DeviceStats s_;
  Counters c_;
};

}  // namespace ulsnet
