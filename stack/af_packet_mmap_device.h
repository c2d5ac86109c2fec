// AfPacketMmapDevice: one packet socket with memory-mapped rings, TPACKET_V2 for both
// directions, one mmap holding the receive ring and then the transmit ring.
//
// Design: the kernel still copies every received frame into the receive ring and every sent
// frame out of the transmit ring ("copy" mode), but the system call per frame is gone: receive
// needs none while frames are waiting, transmit needs one kick (send with no data) per burst.
//
// Receive: the ring is rx_frame_count fixed slots; the kernel writes each frame into the next
// slot and hands that slot over at once (its status word), waking a poll()ing reader per frame.
// (TPACKET_V3, which this device used before, packs frames into blocks and hands a block over
// only when it is full or its retire timer fires -- one jiffy at the least, 4 ms at HZ=250 --
// so at low rates every frame waited for the timer: a latency floor of milliseconds.) rx_burst
// returns Frames that are views straight into their slots (no user-space copy) with owner =
// this device and handle = the slot index; headroom 0, capacity = to the slot's end. A slot
// goes back to the kernel when its frame is released, in any order. The kernel writes slots
// strictly in ring order and drops a frame (PACKET_STATISTICS) when the next slot is still held,
// so a slow consumer never has a frame still in use overwritten.
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
  // Receive ring: rx_frame_count slots of rx_frame_size bytes (a power of two; each slot holds
  // the kernel's 32-byte tpacket2_hdr, alignment, then the frame: 2048 takes an MTU-1500 frame,
  // a longer one is truncated by the kernel and counted). 4096 x 2 KiB = 8 MiB.
  uint32_t rx_frame_size = 2048;
  uint32_t rx_frame_count = 4096;
  // Transmit ring: tx_frame_count slots of tx_frame_size bytes (a power of two; 32 of them the
  // slot header).
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
  // Takes back a receive-ring frame: its slot goes back to the kernel.
  void release(const Frame& f) noexcept override;

  // Frames handed out by rx_burst and not yet released.
  uint64_t frames_outstanding() const noexcept;
  // release() calls with a frame this device does not own or has no outstanding frame for.
  uint64_t bad_releases() const noexcept { return bad_releases_; }

 private:
  uint8_t* rx_slot(uint32_t i) const noexcept {
    return ring_ + size_t(i) * opt_.rx_frame_size;
  }
  uint8_t* tx_slot(uint32_t i) const noexcept {
    return ring_ + rx_ring_bytes_ + size_t(i) * opt_.tx_frame_size;
  }
  void kick_tx() noexcept;

  std::string ifname_;
  MmapRingOptions opt_;
  int fd_ = -1;
  uint32_t max_frame_ = 1514;  // MTU + Ethernet header
  uint8_t* ring_ = nullptr;    // receive ring, then transmit ring
  size_t rx_ring_bytes_ = 0;
  size_t ring_bytes_ = 0;

  // Receive: the next slot the kernel hands over (the kernel's own cursor follows the same
  // order), and which slots are handed out and not yet released.
  uint32_t rx_head_ = 0;
  std::vector<uint8_t> held_;
  uint64_t outstanding_ = 0;

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
