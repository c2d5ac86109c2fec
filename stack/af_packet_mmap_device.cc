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
// Where a TPACKET_V3 transmit slot's frame starts: the kernel takes it at tp_hdrlen minus the
// sockaddr_ll it reserves for receive, i.e. right after the aligned tpacket3_hdr.
constexpr uint32_t kTxDataOffset = TPACKET_ALIGN(sizeof(tpacket3_hdr));

// Ring status words are shared with the kernel; these are the only accesses to them.
//
// load_acquire on a receive block's status pairs with the kernel's smp_wmb() before it sets
// TP_STATUS_USER: once we see the block as ours, every frame byte and header the kernel wrote
// into it is visible to the reads that follow. On a transmit slot it orders our later writes
// of the slot after seeing it free.
inline uint32_t load_acquire(const volatile uint32_t* p) noexcept {
  return __atomic_load_n(const_cast<const uint32_t*>(p), __ATOMIC_ACQUIRE);
}
// store_release when handing a block or slot to the kernel: every earlier read and write of
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
  const long page = sysconf(_SC_PAGESIZE);
  auto bad = [&](const std::string& why) {
    throw std::runtime_error("af_packet_mmap on " + ifname + ": bad ring options: " + why);
  };
  if (o.rx_block_count == 0 || o.rx_block_size == 0 || o.rx_block_size % page != 0)
    bad("rx_block_size must be a non-zero multiple of the page size, rx_block_count > 0");
  if (o.tx_frame_count == 0 || o.tx_frame_size < kTxDataOffset + 64 ||
      o.tx_frame_size % TPACKET_ALIGNMENT != 0 || o.tx_frame_size > (64u << 10))
    bad("tx_frame_size must be 112..65536 bytes and 16-byte aligned, tx_frame_count > 0");
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
  int v3 = TPACKET_V3;
  if (setsockopt(fd_, SOL_PACKET, PACKET_VERSION, &v3, sizeof v3) != 0)
    fail(fd_, ifname, "PACKET_VERSION TPACKET_V3");
  // PACKET_LOSS: a slot the kernel finds malformed is skipped (status back to available)
  // instead of stopping the transmit ring for good at TP_STATUS_WRONG_FORMAT. tx_burst checks
  // lengths first, so this is a safety net, not a drop path.
  int one = 1;
  if (setsockopt(fd_, SOL_PACKET, PACKET_LOSS, &one, sizeof one) != 0)
    fail(fd_, ifname, "PACKET_LOSS");
  if (opt_.qdisc_bypass &&
      setsockopt(fd_, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one) != 0)
    fail(fd_, ifname, "PACKET_QDISC_BYPASS");

  tpacket_req3 rx{};
  rx.tp_block_size = opt_.rx_block_size;
  rx.tp_block_nr = opt_.rx_block_count;
  // For V3 receive the frame size only has to divide the block; frames are packed by length.
  rx.tp_frame_size = TPACKET_ALIGNMENT << 7;  // 2048
  while (rx.tp_frame_size > rx.tp_block_size) rx.tp_frame_size /= 2;
  rx.tp_frame_nr = rx.tp_block_size / rx.tp_frame_size * rx.tp_block_nr;
  rx.tp_retire_blk_tov = opt_.rx_block_timeout_ms;
  if (setsockopt(fd_, SOL_PACKET, PACKET_RX_RING, &rx, sizeof rx) != 0)
    fail(fd_, ifname, "PACKET_RX_RING (TPACKET_V3)");

  // Transmit slots are fixed-size; blocks only group them for the kernel's allocation.
  const uint32_t page = uint32_t(sysconf(_SC_PAGESIZE));
  uint32_t tx_block = std::max(page, opt_.tx_frame_size);
  while (tx_block < (64u << 10) && tx_block * 2 <= opt_.tx_frame_size * opt_.tx_frame_count)
    tx_block *= 2;
  const uint32_t per_block = tx_block / opt_.tx_frame_size;
  tpacket_req3 tx{};  // retire timeout, private area and features must be 0 for transmit
  tx.tp_block_size = tx_block;
  tx.tp_block_nr = (opt_.tx_frame_count + per_block - 1) / per_block;
  tx.tp_frame_size = opt_.tx_frame_size;
  tx.tp_frame_nr = tx.tp_block_nr * per_block;
  opt_.tx_frame_count = tx.tp_frame_nr;
  if (setsockopt(fd_, SOL_PACKET, PACKET_TX_RING, &tx, sizeof tx) != 0)
    fail(fd_, ifname, "PACKET_TX_RING (TPACKET_V3)");

  // One mapping: the receive ring first, the transmit ring right after it. Slot i of the
  // transmit ring is at i * tx_frame_size because the block size is a multiple of the slot.
  rx_ring_bytes_ = size_t(rx.tp_block_size) * rx.tp_block_nr;
  ring_bytes_ = rx_ring_bytes_ + size_t(tx.tp_block_size) * tx.tp_block_nr;
  void* m = mmap(nullptr, ring_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd_, 0);
  if (m == MAP_FAILED) fail(fd_, ifname, "mmap of the rings");
  ring_ = static_cast<uint8_t*>(m);
  outstanding_.assign(opt_.rx_block_count, 0);
  read_done_.assign(opt_.rx_block_count, 0);

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

bool AfPacketMmapDevice::open_block() noexcept {
  // A block read to its end but still held (frames not released) is not the kernel's yet:
  // the whole ring is in user hands, so there is nothing new to read.
  if (read_done_[cur_block_]) return false;
  auto* bd = reinterpret_cast<tpacket_block_desc*>(rx_block(cur_block_));
  if (!(load_acquire(&bd->hdr.bh1.block_status) & TP_STATUS_USER)) return false;
  in_block_ = true;
  pkts_left_ = bd->hdr.bh1.num_pkts;
  next_pkt_ = rx_block(cur_block_) + bd->hdr.bh1.offset_to_first_pkt;
  if (pkts_left_ == 0) finish_block();
  return true;
}

void AfPacketMmapDevice::finish_block() noexcept {
  read_done_[cur_block_] = 1;
  in_block_ = false;
  cur_block_ = (cur_block_ + 1) % opt_.rx_block_count;
  return_blocks();
}

size_t AfPacketMmapDevice::rx_burst(std::span<Frame> out) {
  if (kick_needed_) kick_tx();
  size_t n = 0;
  while (n < out.size()) {
    if (!in_block_ && !open_block()) break;
    if (!in_block_) continue;  // an empty block was opened and finished
    auto* h = reinterpret_cast<tpacket3_hdr*>(next_pkt_);
    uint8_t* data = next_pkt_ + h->tp_mac;
    next_pkt_ += h->tp_next_offset;
    --pkts_left_;
    if (h->tp_snaplen < h->tp_len) {
      // Longer than a block: the kernel kept only a prefix. Dropped, never handed on cut short.
      ++st_.rx_truncated;
    } else {
      Frame f;
      f.data = data;
      f.len = h->tp_snaplen;
      f.capacity = h->tp_snaplen;
      f.headroom = 0;
      f.handle = cur_block_;
      f.owner = this;
      ++outstanding_[cur_block_];
      ++st_.rx_frames;
      ++st_.copies;  // the kernel's copy into the ring
      st_.rx_bytes += f.len;
      out[n++] = f;
    }
    if (pkts_left_ == 0) finish_block();
  }
  return n;
}

void AfPacketMmapDevice::release(const Frame& f) noexcept {
  if (f.owner != this || f.handle >= outstanding_.size() || outstanding_[f.handle] == 0) {
    ++bad_releases_;
    return;
  }
  if (--outstanding_[f.handle] == 0 && read_done_[f.handle]) return_blocks();
}

void AfPacketMmapDevice::return_blocks() noexcept {
  while (read_done_[return_block_] && outstanding_[return_block_] == 0) {
    auto* bd = reinterpret_cast<tpacket_block_desc*>(rx_block(return_block_));
    read_done_[return_block_] = 0;
    store_release(&bd->hdr.bh1.block_status, TP_STATUS_KERNEL);
    return_block_ = (return_block_ + 1) % opt_.rx_block_count;
  }
}

uint64_t AfPacketMmapDevice::frames_outstanding() const noexcept {
  uint64_t n = 0;
  for (uint32_t v : outstanding_) n += v;
  return n;
}

// ---- Transmit

size_t AfPacketMmapDevice::tx_burst(std::span<Frame> frames) {
  if (kick_needed_) kick_tx();
  size_t queued = 0;
  for (const Frame& f : frames) {
    auto* h = reinterpret_cast<tpacket3_hdr*>(tx_slot(tx_head_));
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
      h = reinterpret_cast<tpacket3_hdr*>(tx_slot(tx_head_));
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
    h->tp_next_offset = 0;  // the kernel refuses variable-size transmit slots
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
    auto* h = reinterpret_cast<tpacket3_hdr*>(tx_slot(tx_pending_));
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
    store_release(&reinterpret_cast<tpacket3_hdr*>(tx_slot(tx_head_))->tp_status,
                  TP_STATUS_AVAILABLE);
    --tx_pending_count_;
    ++st_.tx_dropped;
  }
}

DeviceStats AfPacketMmapDevice::stats() {
  tpacket_stats_v3 s{};
  socklen_t len = sizeof s;
  // Reading resets the kernel's counters, so accumulate.
  if (getsockopt(fd_, SOL_PACKET, PACKET_STATISTICS, &s, &len) == 0)
    st_.rx_kernel_drops += s.tp_drops;
  return st_;
}

}  // namespace ulsnet
