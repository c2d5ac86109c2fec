// AfPacketMmapDevice: packet sockets with memory-mapped rings (TPACKET_V3 receive, TPACKET_V2
// transmit). The kernel still copies every frame into the receive ring and out of the transmit
// ring, but the system call per frame is gone: receive needs none while frames are waiting,
// transmit needs one kick per burst.
//
// Receive frames are views straight into the ring (no user-space copy; headroom 0, capacity =
// the captured length, so the stack rewrites them in place but cannot grow them). A ring block
// goes back to the kernel only when every frame handed out from it has been released, in ring
// order, so a slow consumer holds blocks and the kernel drops (counted in PACKET_STATISTICS)
// rather than overwriting frames still in use. Transmit copies each frame into a ring slot.
//
// Thread safety: none; one thread owns the device and releases its frames.
#pragma once

#include <string>
#include <vector>

#include "stack/device.h"
#include "stack/packet_pool.h"

namespace ulsnet {

struct MmapRingOptions {
  uint32_t rx_block_size = 1u << 17;  // 128 KiB
  uint32_t rx_block_count = 32;
  uint32_t rx_block_timeout_ms = 1;   // a partly filled block is handed over after this
  uint32_t tx_frame_size = 2048;
  uint32_t tx_frame_count = 512;
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
  size_t rx_burst(std::span<Frame> out) override;      // views into the ring (no copy)
  size_t tx_burst(std::span<Frame> frames) override;   // copies into the TX ring
  size_t alloc_tx(std::span<Frame> out) override { return pool_.alloc(out); }
  int wait_fd() const noexcept override { return rx_fd_; }
  DeviceStats stats() override;
  void release(const Frame& f) noexcept override;      // a receive-ring frame

 private:
  void return_blocks() noexcept;
  uint8_t* block(uint32_t i) const noexcept { return rx_ring_ + size_t(i) * opt_.rx_block_size; }

  std::string ifname_;
  MmapRingOptions opt_;
  int ifindex_ = 0;
  int rx_fd_ = -1, tx_fd_ = -1;
  uint8_t* rx_ring_ = nullptr;
  size_t rx_ring_bytes_ = 0;
  uint8_t* tx_ring_ = nullptr;
  size_t tx_ring_bytes_ = 0;
  // Receive cursor: the block being read, how many packets are left in it, the next packet.
  uint32_t cur_block_ = 0;
  bool in_block_ = false;
  uint32_t pkts_left_ = 0;
  uint8_t* next_pkt_ = nullptr;
  uint32_t return_block_ = 0;           // oldest block not yet given back to the kernel
  std::vector<uint32_t> outstanding_;   // frames handed out and not released, per block
  std::vector<uint8_t> consumed_;       // block fully read
  uint32_t tx_slot_ = 0;
  uint32_t max_frame_ = 1514;  // MTU + Ethernet header
  PacketPool pool_;
  DeviceStats st_;
  uint64_t bad_releases_ = 0;
};

}  // namespace ulsnet
