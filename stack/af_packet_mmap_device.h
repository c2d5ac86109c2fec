// AfPacketMmapDevice: one packet socket with memory-mapped rings, TPACKET_V3 for both
// directions, one mmap holding the receive ring and then the transmit ring.
//
// Design: the kernel still copies every received frame into the receive ring and every sent
// frame out of the transmit ring ("copy" mode), but the system call per frame is gone: receive
// needs none while blocks are waiting, transmit needs one kick (send with no data) per burst.
//
// Receive: the ring is a sequence of blocks; the kernel fills a block with many frames and
// hands the whole block over (full, or after rx_block_timeout_ms). rx_burst returns Frames that
// are views straight into the block (no user-space copy) with owner = this device and handle =
// the block index. Headroom is 0 and capacity = the frame's length: the bytes before a frame
// are the kernel's tpacket3_hdr and the bytes after it the next frame, so a ring view can be
// rewritten in place but never grown. Each block counts the frames handed out from it; a block
// goes back to the kernel when it has been read to the end and all its frames were released,
// and blocks go back strictly in ring order (the kernel fills them in that order). A slow
// consumer therefore holds blocks and the kernel drops new frames (PACKET_STATISTICS) instead
// of overwriting frames still in use.
//
// Transmit: tx_burst copies each frame into the next free slot of the transmit ring, marks it
// TP_STATUS_SEND_REQUEST and releases the frame to its owner; one send() per burst makes the
// kernel transmit every requested slot. A full ring, or a frame shorter than an Ethernet header
// or longer than MTU + 14, is counted in tx_dropped. If the kick fails with EAGAIN the requested
// slots stay queued and the next rx_burst or tx_burst kicks again; on any other error they are
// taken back and counted in tx_dropped. tx_frames counts frames the kernel has taken (a frame it
// then drops for lack of carrier is in the interface's tx_dropped, not here). When a kick fails
// because the kernel dropped the first frame (ENOBUFS, or ENETDOWN while an interface is going
// down), that frame is counted both here and by the kernel. A burst longer than the free ring
// gets an extra kick when the ring is full of its own requests. alloc_tx gives buffers from a
// small PacketPool.
//
// Thread safety: none; one thread owns the device and releases its frames.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "stack/device.h"
#include "stack/packet_pool.h"

namespace ulsnet {

struct MmapRingOptions {
  // Receive ring: rx_block_count blocks of rx_block_size bytes (a multiple of the page size).
  // 32 x 128 KiB = 4 MiB holds ~29000 minimum-size frames.
  uint32_t rx_block_size = 128u << 10;
  uint32_t rx_block_count = 32;
  // A partly filled block is handed over after this long (the kernel rounds up to a jiffy): the
  // latency floor at low rates.
  uint32_t rx_block_timeout_ms = 2;
  // Transmit ring: tx_frame_count slots of tx_frame_size bytes (48 of them the slot header).
  uint32_t tx_frame_size = 2048;
  uint32_t tx_frame_count = 512;
  // PACKET_QDISC_BYPASS: hand frames straight to the driver, skipping the qdisc layer.
  bool qdisc_bypass = false;
};

class AfPacketMmapDevice final : public Device, public FrameOwner {
 public:
  // Throws std::runtime_error naming what failed (interface, privilege, ring option, errno).
  AfPacketMmapDevice(const std::string& ifname, uint32_t pool_frames,
                     const MmapRingOptions& opt = {});
  ~AfPacketMmapDevice() override;
  AfPacketMmapDevice(const AfPacketMmapDevice&) = delete;
  AfPacketMmapDevice& operator=(const AfPacketMmapDevice&) = delete;

  const char* kind() const noexcept override { return "af_packet_mmap"; }
  const char* copy_mode() const noexcept override { return "copy"; }
  const std::string& ifname() const noexcept override { return ifname_; }
  // Views into the receive ring (no copy, no system call).
  size_t rx_burst(std::span<Frame> out) override;
  // Copies each frame into the transmit ring; one system call per burst. Releases every frame.
  // Returns how many were queued for the kernel.
  size_t tx_burst(std::span<Frame> frames) override;
  // Fresh pool buffers (no copy).
  size_t alloc_tx(std::span<Frame> out) override { return pool_.alloc(out); }
  int wait_fd() const noexcept override { return fd_; }
  // Reads PACKET_STATISTICS (one getsockopt, not counted as a data-path system call).
  DeviceStats stats() override;
  // Takes back a receive-ring frame; returns finished blocks to the kernel.
  void release(const Frame& f) noexcept override;

  // Frames handed out by rx_burst and not yet released.
  uint64_t frames_outstanding() const noexcept;
  // release() calls with a frame this device does not own or has no outstanding frame for.
  uint64_t bad_releases() const noexcept { return bad_releases_; }

 private:
  bool open_block() noexcept;
  void finish_block() noexcept;
  void return_blocks() noexcept;
  void kick_tx() noexcept;
  uint8_t* rx_block(uint32_t i) const noexcept {
    return ring_ + size_t(i) * opt_.rx_block_size;
  }
  uint8_t* tx_slot(uint32_t i) const noexcept {
    return ring_ + rx_ring_bytes_ + size_t(i) * opt_.tx_frame_size;
  }

  std::string ifname_;
  MmapRingOptions opt_;
  int fd_ = -1;
  uint32_t max_frame_ = 1514;  // MTU + Ethernet header
  uint8_t* ring_ = nullptr;    // receive ring, then transmit ring
  size_t rx_ring_bytes_ = 0;
  size_t ring_bytes_ = 0;

  // Receive cursor: the block being read, packets left in it, the next packet.
  uint32_t cur_block_ = 0;
  bool in_block_ = false;
  uint32_t pkts_left_ = 0;
  uint8_t* next_pkt_ = nullptr;
  uint32_t return_block_ = 0;          // oldest block not yet given back to the kernel
  std::vector<uint32_t> outstanding_;  // frames handed out and not released, per block
  std::vector<uint8_t> read_done_;     // block read to its end (and not yet given back)

  // Transmit: slots [tx_pending_, tx_head_) are requested and not yet taken by the kernel; the
  // kernel's own cursor is at tx_pending_.
  uint32_t tx_head_ = 0;
  uint32_t tx_pending_ = 0;
  uint32_t tx_pending_count_ = 0;
  bool kick_needed_ = false;

  PacketPool pool_;
  DeviceStats st_;
  uint64_t bad_releases_ = 0;
};

}  // namespace ulsnet
