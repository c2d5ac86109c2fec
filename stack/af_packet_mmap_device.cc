#include "stack/af_packet_mmap_device.h"

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "stack/af_packet_device.h"

namespace ulsnet {

namespace {

[[noreturn]] void fail(const std::string& ifname, const char* what) {
  int e = errno;
  throw std::runtime_error("af_packet_mmap on " + ifname + ": " + what + ": " + std::strerror(e));
}

// Ring status words are shared with the kernel. Acquire on reading TP_STATUS_USER makes the
// frame bytes the kernel wrote visible before we read them; release on handing a block or slot
// back makes our reads (rx) or writes (tx) complete before the kernel may reuse or send it.
inline uint32_t load_acquire(const volatile uint32_t* p) {
  return __atomic_load_n(const_cast<const uint32_t*>(p), __ATOMIC_ACQUIRE);
}
template <typename T>
inline void store_release(volatile T* p, T v) {
  __atomic_store_n(const_cast<T*>(p), v, __ATOMIC_RELEASE);
}

}  // namespace

AfPacketMmapDevice::AfPacketMmapDevice(const std::string& ifname, uint32_t pool_frames,
                                       const MmapRingOptions& opt)
    : ifname_(ifname), opt_(opt), pool_(pool_frames) {
  rx_fd_ = open_packet_socket(ifname, ifindex_);
  try {
    int v3 = TPACKET_V3;
    if (setsockopt(rx_fd_, SOL_PACKET, PACKET_VERSION, &v3, sizeof v3) != 0)
      fail(ifname, "PACKET_VERSION TPACKET_V3");
    tpacket_req3 req{};
    req.tp_block_size = opt.rx_block_size;
    req.tp_block_nr = opt.rx_block_count;
    req.tp_frame_size = 2048;
    req.tp_frame_nr = opt.rx_block_size / 2048 * opt.rx_block_count;
    req.tp_retire_blk_tov = opt.rx_block_timeout_ms;
    if (setsockopt(rx_fd_, SOL_PACKET, PACKET_RX_RING, &req, sizeof req) != 0)
      fail(ifname, "PACKET_RX_RING");
    rx_ring_bytes_ = size_t(opt.rx_block_size) * opt.rx_block_count;
    void* m = mmap(nullptr, rx_ring_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                   rx_fd_, 0);
    if (m == MAP_FAILED) fail(ifname, "mmap RX ring");
    rx_ring_ = static_cast<uint8_t*>(m);
    outstanding_.assign(opt.rx_block_count, 0);
    consumed_.assign(opt.rx_block_count, 0);

    // Transmit: a second socket that receives nothing (protocol 0) with a TPACKET_V2 TX ring.
    tx_fd_ = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
    if (tx_fd_ < 0) fail(ifname, "TX socket");
    int v2 = TPACKET_V2;
    if (setsockopt(tx_fd_, SOL_PACKET, PACKET_VERSION, &v2, sizeof v2) != 0)
      fail(ifname, "TX PACKET_VERSION TPACKET_V2");
    tpacket_req treq{};
    treq.tp_frame_size = opt.tx_frame_size;
    treq.tp_frame_nr = opt.tx_frame_count;
    treq.tp_block_size = 1u << 16;
    treq.tp_block_nr = opt.tx_frame_size * opt.tx_frame_count / treq.tp_block_size;
    if (setsockopt(tx_fd_, SOL_PACKET, PACKET_TX_RING, &treq, sizeof treq) != 0)
      fail(ifname, "PACKET_TX_RING");
    tx_ring_bytes_ = size_t(treq.tp_block_size) * treq.tp_block_nr;
    m = mmap(nullptr, tx_ring_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, tx_fd_, 0);
    if (m == MAP_FAILED) fail(ifname, "mmap TX ring");
    tx_ring_ = static_cast<uint8_t*>(m);
    ifreq ifr{};
    std::snprintf(ifr.ifr_name, IFNAMSIZ, "%s", ifname.c_str());
    if (ioctl(tx_fd_, SIOCGIFMTU, &ifr) != 0) fail(ifname, "SIOCGIFMTU");
    max_frame_ = uint32_t(ifr.ifr_mtu) + 14;
    sockaddr_ll sll{};
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = 0;
    sll.sll_ifindex = ifindex_;
    if (bind(tx_fd_, reinterpret_cast<sockaddr*>(&sll), sizeof sll) != 0) fail(ifname, "TX bind");
  } catch (...) {
    if (rx_ring_) munmap(rx_ring_, rx_ring_bytes_);
    if (tx_ring_) munmap(tx_ring_, tx_ring_bytes_);
    close(rx_fd_);
    if (tx_fd_ >= 0) close(tx_fd_);
    throw;
  }
}

AfPacketMmapDevice::~AfPacketMmapDevice() {
  munmap(rx_ring_, rx_ring_bytes_);
  munmap(tx_ring_, tx_ring_bytes_);
  close(rx_fd_);
  close(tx_fd_);
}

size_t AfPacketMmapDevice::rx_burst(std::span<Frame> out) {
  size_t n = 0;
  while (n < out.size()) {
    if (!in_block_) {
      auto* bd = reinterpret_cast<tpacket_block_desc*>(block(cur_block_));
      // A block still held by us (not yet returned) is never re-read: the ring is full.
      if (consumed_[cur_block_] || !(load_acquire(&bd->hdr.bh1.block_status) & TP_STATUS_USER))
        break;
      in_block_ = true;
      pkts_left_ = bd->hdr.bh1.num_pkts;
      next_pkt_ = block(cur_block_) + bd->hdr.bh1.offset_to_first_pkt;
    }
    if (pkts_left_ > 0) {
      auto* h = reinterpret_cast<tpacket3_hdr*>(next_pkt_);
      Frame f;
      f.data = next_pkt_ + h->tp_mac;
      f.len = h->tp_snaplen;
      f.capacity = h->tp_snaplen;
      f.headroom = 0;
      f.handle = cur_block_;
      f.owner = this;
      if (h->tp_snaplen < h->tp_len) ++st_.rx_truncated;  // cannot happen at 2048-byte frames
      next_pkt_ += h->tp_next_offset;
      --pkts_left_;
      ++outstanding_[cur_block_];
      ++st_.rx_frames;
      ++st_.copies;  // the kernel's copy into the ring
      st_.rx_bytes += f.len;
      out[n++] = f;
    }
    if (pkts_left_ == 0) {
      consumed_[cur_block_] = 1;
      in_block_ = false;
      cur_block_ = (cur_block_ + 1) % opt_.rx_block_count;
      return_blocks();
    }
  }
  return n;
}

void AfPacketMmapDevice::release(const Frame& f) noexcept {
  if (f.owner != this || f.handle >= outstanding_.size() || outstanding_[f.handle] == 0) {
    ++bad_releases_;
    return;
  }
  --outstanding_[f.handle];
  return_blocks();
}

void AfPacketMmapDevice::return_blocks() noexcept {
  while (consumed_[return_block_] && outstanding_[return_block_] == 0) {
    auto* bd = reinterpret_cast<tpacket_block_desc*>(block(return_block_));
    consumed_[return_block_] = 0;
    store_release(&bd->hdr.bh1.block_status, uint32_t(TP_STATUS_KERNEL));
    return_block_ = (return_block_ + 1) % opt_.rx_block_count;
  }
}

size_t AfPacketMmapDevice::tx_burst(std::span<Frame> frames) {
  const uint32_t hdr = TPACKET_ALIGN(sizeof(tpacket2_hdr));
  size_t queued = 0, pending = 0;
  for (const Frame& f : frames) {
    auto* h = reinterpret_cast<tpacket2_hdr*>(tx_ring_ + size_t(tx_slot_) * opt_.tx_frame_size);
    uint32_t status = load_acquire(&h->tp_status);
    if (status != TP_STATUS_AVAILABLE && pending > 0) {
      // The ring is full of our own unsent requests: kick the kernel (on veth it sends them
      // synchronously) and look again, rather than drop while the ring could drain.
      ++st_.syscalls;
      send(tx_fd_, nullptr, 0, MSG_DONTWAIT);
      pending = 0;
      status = load_acquire(&h->tp_status);
    }
    // The kernel would reject an over-MTU frame only later, asynchronously, in the slot status:
    // check here so the drop is counted against the frame that caused it.
    if (f.len > max_frame_ || f.len + hdr > opt_.tx_frame_size || status != TP_STATUS_AVAILABLE) {
      ++st_.tx_dropped;  // oversize, or the ring is full (or a slot reported a format error)
      if (status == TP_STATUS_WRONG_FORMAT) store_release(&h->tp_status, uint32_t(TP_STATUS_AVAILABLE));
      f.release();
      continue;
    }
    std::memcpy(reinterpret_cast<uint8_t*>(h) + hdr, f.data, f.len);
    h->tp_len = f.len;
    store_release(&h->tp_status, uint32_t(TP_STATUS_SEND_REQUEST));
    tx_slot_ = (tx_slot_ + 1) % opt_.tx_frame_count;
    ++queued;
    ++pending;
    ++st_.copies;
    ++st_.tx_frames;
    st_.tx_bytes += f.len;
    f.release();
  }
  if (pending) {
    ++st_.syscalls;
    // One kick per burst; ENOBUFS/EAGAIN leave the frames queued in the ring for the next kick.
    send(tx_fd_, nullptr, 0, MSG_DONTWAIT);
  }
  return queued;
}

DeviceStats AfPacketMmapDevice::stats() {
  tpacket_stats_v3 s{};
  socklen_t len = sizeof s;
  // Reading resets the kernel's counters, so accumulate.
  if (getsockopt(rx_fd_, SOL_PACKET, PACKET_STATISTICS, &s, &len) == 0)
    st_.rx_kernel_drops += s.tp_drops;
  return st_;
}

}  // namespace ulsnet
