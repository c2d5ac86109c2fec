#include "stack/af_packet_mmap_device.h"

#include <linux/if_packet.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "stack/af_packet_device.h"

namespace ulsnet {

namespace {

constexpr uint32_t kEthernetHeaderBytes = 14;
// Where a TPACKET_V2 transmit slot's frame starts: the kernel takes it at tp_hdrlen minus the
// sockaddr_ll it reserves for receive, i.e. right after the aligned tpacket2_hdr.
constexpr uint32_t kTxDataOffset = TPACKET_ALIGN(sizeof(tpacket2_hdr));

// Ring status words are shared with the kernel; these are the only accesses to them.
//
// load_acquire on a receive slot's status pairs with the kernel's smp_wmb() before it sets
// TP_STATUS_USER: once we see the slot as ours, every frame byte and header the kernel wrote
// into it is visible to the reads that follow. On a transmit slot it orders our later writes
// of the slot after seeing it free.
inline uint32_t load_acquire(const volatile uint32_t* p) noexcept {
  return __atomic_load_n(const_cast<const uint32_t*>(p), __ATOMIC_ACQUIRE);
}
// store_release when handing a slot to the kernel: every earlier read and write of
// its bytes (our reads of received frames, the stack's in-place rewrites, the copy into a
// transmit slot) completes before the kernel can see the new status and reuse or send it.
// (x86 needs only the compiler barrier this implies; weakly ordered CPUs get a real fence.)
inline void store_release(volatile uint32_t* p, uint32_t v) noexcept {
  __atomic_store_n(const_cast<uint32_t*>(p), v, __ATOMIC_RELEASE);
}

[[noreturn]] void fail(int fd, const std::string& ifname, const std::string& what) {
  int e = errno;
  if (fd >= 0) close(fd);
  throw std::runtime_error("af_packet_mmap on " + ifname + ": " + what + ": " +
                           std::strerror(e));
}

void check_options(const MmapRingOptions& o, const std::string& ifname) {
  auto bad = [&](const std::string& why) {
    throw std::runtime_error("af_packet_mmap on " + ifname + ": bad ring options: " + why);
  };
  auto pow2 = [](uint32_t v) { return v != 0 && (v & (v - 1)) == 0; };
  if (o.rx_frame_count == 0 || !pow2(o.rx_frame_size) || o.rx_frame_size < 256 ||
      o.rx_frame_size > (64u << 10))
    bad("rx_frame_size must be a power of two of 256..65536 bytes, rx_frame_count > 0");
  if (o.tx_frame_count == 0 || !pow2(o.tx_frame_size) || o.tx_frame_size < 128 ||
      o.tx_frame_size > (64u << 10))
    bad("tx_frame_size must be a power of two of 128..65536 bytes, tx_frame_count > 0");
}

// A ring of at least `count` slots of `frame_size` bytes, in blocks of a page or more that hold
// whole slots (up to 64 KiB each, so that no high-order allocation is needed).
tpacket_req ring_request(uint32_t frame_size, uint32_t count) {
  const uint32_t page = uint32_t(sysconf(_SC_PAGESIZE));
  uint32_t block = std::max(page, frame_size);
  while (block < (64u << 10) && uint64_t(block) * 2 <= uint64_t(frame_size) * count) block *= 2;
  const uint32_t per_block = block / frame_size;
  tpacket_req r{};
  r.tp_block_size = block;
  r.tp_block_nr = (count + per_block - 1) / per_block;
  r.tp_frame_size = frame_size;
  r.tp_frame_nr = r.tp_block_nr * per_block;
  return r;
}

}  // namespace

AfPacketMmapDevice::AfPacketMmapDevice(const std::string& ifname, uint32_t pool_frames,
                                       const MmapRingOptions& opt)
    : ifname_(ifname), opt_(opt), pool_(pool_frames) {
  check_options(opt_, ifname);
  PacketSocket s = open_packet_socket(ifname);
  fd_ = s.fd;
  max_frame_ = s.mtu + kEthernetHeaderBytes;

  // Version and loss mode must be set before the rings exist.
  int v2 = TPACKET_V2;
  if (setsockopt(fd_, SOL_PACKET, PACKET_VERSION, &v2, sizeof v2) != 0)
    fail(fd_, ifname, "PACKET_VERSION TPACKET_V2");
  // PACKET_LOSS: a slot the kernel finds malformed is skipped (status back to available)
  // instead of stopping the transmit ring for good at TP_STATUS_WRONG_FORMAT. tx_burst checks
  // lengths first, so this is a safety net, not a drop path.
  int one = 1;
  if (setsockopt(fd_, SOL_PACKET, PACKET_LOSS, &one, sizeof one) != 0)
    fail(fd_, ifname, "PACKET_LOSS");
  if (opt_.qdisc_bypass &&
      setsockopt(fd_, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one) != 0)
    fail(fd_, ifname, "PACKET_QDISC_BYPASS");

  // Both rings are fixed-size slots; slot i is at i * frame_size because each block holds whole
  // slots and the blocks are mapped one after another.
  tpacket_req rx = ring_request(opt_.rx_frame_size, opt_.rx_frame_count);
  if (setsockopt(fd_, SOL_PACKET, PACKET_RX_RING, &rx, sizeof rx) != 0)
    fail(fd_, ifname, "PACKET_RX_RING (TPACKET_V2)");
  opt_.rx_frame_count = rx.tp_frame_nr;
  tpacket_req tx = ring_request(opt_.tx_frame_size, opt_.tx_frame_count);
  if (setsockopt(fd_, SOL_PACKET, PACKET_TX_RING, &tx, sizeof tx) != 0)
    fail(fd_, ifname, "PACKET_TX_RING (TPACKET_V2)");
  opt_.tx_frame_count = tx.tp_frame_nr;

  // One mapping: the receive ring first, the transmit ring right after it.
  rx_ring_bytes_ = size_t(rx.tp_block_size) * rx.tp_block_nr;
  ring_bytes_ = rx_ring_bytes_ + size_t(tx.tp_block_size) * tx.tp_block_nr;
  void* m = mmap(nullptr, ring_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd_, 0);
  if (m == MAP_FAILED) fail(fd_, ifname, "mmap of the rings");
  ring_ = static_cast<uint8_t*>(m);
  held_.assign(opt_.rx_frame_count, 0);

  try {
    bind_packet_socket(s, ifname);  // closes the socket on failure
  } catch (...) {
    munmap(ring_, ring_bytes_);
    throw;
  }
}

AfPacketMmapDevice::~AfPacketMmapDevice() {
  if (tx_pending_count_ > 0) kick_tx();  // best effort for frames left queued by an EAGAIN
  munmap(ring_, ring_bytes_);
  close(fd_);
}

// ---- Receive

size_t AfPacketMmapDevice::rx_burst(std::span<Frame> out) {
  if (kick_needed_) kick_tx();
  size_t n = 0;
  while (n < out.size()) {
    // A slot still handed out is not the kernel's to fill: the whole ring is in user hands.
    if (held_[rx_head_]) break;
    auto* h = reinterpret_cast<tpacket2_hdr*>(rx_slot(rx_head_));
    if (!(load_acquire(&h->tp_status) & TP_STATUS_USER)) break;
    const uint32_t slot = rx_head_;
    rx_head_ = (rx_head_ + 1) % opt_.rx_frame_count;
    if (h->tp_snaplen < h->tp_len) {
      // Longer than a slot: the kernel kept only a prefix. Dropped, never handed on cut short.
      ++st_.rx_truncated;
      store_release(&h->tp_status, TP_STATUS_KERNEL);
      continue;
    }
    Frame f;
    f.data = rx_slot(slot) + h->tp_mac;
    f.len = h->tp_snaplen;
    f.capacity = opt_.rx_frame_size - h->tp_mac;  // the rest of the slot is this frame's
    f.headroom = 0;
    f.handle = slot;
    f.owner = this;
    held_[slot] = 1;
    ++outstanding_;
    ++st_.rx_frames;
    ++st_.copies;  // the kernel's copy into the ring
    st_.rx_bytes += f.len;
    out[n++] = f;
  }
  return n;
}

void AfPacketMmapDevice::release(const Frame& f) noexcept {
  if (f.owner != this || f.handle >= held_.size() || !held_[f.handle]) {
    ++bad_releases_;
    return;
  }
  held_[f.handle] = 0;
  --outstanding_;
  store_release(&reinterpret_cast<tpacket2_hdr*>(rx_slot(uint32_t(f.handle)))->tp_status,
                TP_STATUS_KERNEL);
}

uint64_t AfPacketMmapDevice::frames_outstanding() const noexcept { return outstanding_; }

// ---- Transmit

size_t AfPacketMmapDevice::tx_burst(std::span<Frame> frames) {
  if (kick_needed_) kick_tx();
  size_t queued = 0;
  for (const Frame& f : frames) {
    auto* h = reinterpret_cast<tpacket2_hdr*>(tx_slot(tx_head_));
    // The kernel would reject these only inside the kick (or, with PACKET_LOSS, skip them
    // silently): check here so the drop is counted against the frame that caused it.
    const bool malformed = f.len < kEthernetHeaderBytes || f.len > max_frame_ ||
                           f.len > opt_.tx_frame_size - kTxDataOffset;
    // A slot is free once the kernel is done with it: TP_STATUS_AVAILABLE. SEND_REQUEST
    // (queued) or SENDING (in flight) means the ring is full.
    bool free_slot = !malformed && load_acquire(&h->tp_status) == TP_STATUS_AVAILABLE;
    if (!malformed && !free_slot && tx_pending_count_ > 0) {
      // Full of our own requests not yet handed over (a burst longer than the ring): kick now
      // and look again rather than drop while the ring could drain (on veth the kernel sends
      // synchronously within the kick).
      kick_tx();  // may rewind tx_head_ (failed kick): look at the slot it names now
      h = reinterpret_cast<tpacket2_hdr*>(tx_slot(tx_head_));
      free_slot = load_acquire(&h->tp_status) == TP_STATUS_AVAILABLE;
    }
    if (!free_slot) {
      ++st_.tx_dropped;
      f.release();
      continue;
    }
    std::memcpy(tx_slot(tx_head_) + kTxDataOffset, f.data, f.len);
    h->tp_len = f.len;
    h->tp_snaplen = f.len;
    store_release(&h->tp_status, TP_STATUS_SEND_REQUEST);
    tx_head_ = (tx_head_ + 1) % opt_.tx_frame_count;
    ++tx_pending_count_;
    ++queued;
    ++st_.copies;
    f.release();
  }
  if (tx_pending_count_ > 0) kick_tx();
  return queued;
}

void AfPacketMmapDevice::kick_tx() noexcept {
  ++st_.syscalls;
  // The kernel walks the ring from its cursor (== tx_pending_) and takes every slot marked
  // SEND_REQUEST, in order, until the first one that is not.
  ssize_t r = send(fd_, nullptr, 0, MSG_DONTWAIT);
  if (r < 0 && errno == ENETDOWN) {
    // Possibly stale: an interface that went down (and may be up again) is reported once to
    // the next call on the socket, and that call then sends nothing. Retry once.
    ++st_.syscalls;
    r = send(fd_, nullptr, 0, MSG_DONTWAIT);
  }
  int err = r < 0 ? errno : 0;
  while (tx_pending_count_ > 0) {
    auto* h = reinterpret_cast<tpacket2_hdr*>(tx_slot(tx_pending_));
    if (load_acquire(&h->tp_status) == TP_STATUS_SEND_REQUEST) break;
    ++st_.tx_frames;
    st_.tx_bytes += h->tp_len;
    tx_pending_ = (tx_pending_ + 1) % opt_.tx_frame_count;
    --tx_pending_count_;
  }
  kick_needed_ = false;
  if (tx_pending_count_ == 0) return;
  if (err == EAGAIN || err == EWOULDBLOCK || err == 0) {
    // Socket send buffer full (skbs still in flight): the slots stay queued; kick again on the
    // next rx_burst / tx_burst. If that never succeeds the ring fills and new frames are
    // counted as tx_dropped.
    kick_needed_ = true;
    return;
  }
  // The interface dropped the head frame and counted it: so do we, once, as refused.
  if (err == ENOBUFS) ++st_.tx_refused;
  // ENETDOWN, ENOBUFS (the device dropped the head frame; the kernel re-queued it and would
  // retry it forever) and anything else: take the slots back. No kernel thread touches
  // SEND_REQUEST slots outside our send() call, so this cannot race; rewinding tx_head_ keeps
  // our cursor equal to the kernel's.
  while (tx_pending_count_ > 0) {
    tx_head_ = (tx_head_ + opt_.tx_frame_count - 1) % opt_.tx_frame_count;
    store_release(&reinterpret_cast<tpacket2_hdr*>(tx_slot(tx_head_))->tp_status,
                  TP_STATUS_AVAILABLE);
    --tx_pending_count_;
    ++st_.tx_dropped;
  }
}

DeviceStats AfPacketMmapDevice::stats() {
  tpacket_stats s{};
  socklen_t len = sizeof s;
  // Reading resets the kernel's counters, so accumulate.
  if (getsockopt(fd_, SOL_PACKET, PACKET_STATISTICS, &s, &len) == 0)
    st_.rx_kernel_drops += s.tp_drops;
  return st_;
}

}  // namespace ulsnet
