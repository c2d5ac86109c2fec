// AfPacketDevice: a PF_PACKET raw socket with one recvfrom/sendto per frame, the "raw socket"
// of the paper's era.
//
// Design: the socket is bound to one interface for every protocol (ETH_P_ALL), non-blocking,
// and blind to outgoing frames (PACKET_IGNORE_OUTGOING), so it sees exactly what arrives on
// the wire. Each received frame costs a system call and a kernel-to-user copy into a buffer of
// the device's own PacketPool; each sent frame a system call and a user-to-kernel copy. There
// is no batching below the Device API: a burst is a loop of single-frame calls, which is the
// point of this backend (the per-frame cost the paper measures).
//
// Accounting: a frame longer than a pool buffer is read with MSG_TRUNC, counted in
// rx_truncated and dropped (never handed out cut short). A frame the kernel refuses on send
// (ENOBUFS, EAGAIN, EMSGSIZE, ENETDOWN...) is counted in tx_dropped and released. A frame the
// kernel accepts and then drops (a peer without carrier) is counted by the kernel in the
// interface's tx_dropped, not here. While an interface is going down the kernel may drop a frame
// inside sendto and still return an error: that frame is counted in both places.
// rx_kernel_drops accumulates PACKET_STATISTICS (frames the kernel dropped because the socket
// queue was full).
//
// Thread safety: none; one thread owns the device and releases its frames.
#pragma once

#include <cstdint>
#include <string>

#include "stack/device.h"
#include "stack/packet_pool.h"

namespace ulsnet {

class AfPacketDevice final : public Device {
 public:
  // Opens and binds the socket; throws std::runtime_error saying what is missing (no such
  // interface, needs root / CAP_NET_RAW, errno of the failing call).
  AfPacketDevice(const std::string& ifname, uint32_t pool_frames);
  ~AfPacketDevice() override;
  AfPacketDevice(const AfPacketDevice&) = delete;
  AfPacketDevice& operator=(const AfPacketDevice&) = delete;

  const char* kind() const noexcept override { return "af_packet"; }
  const char* copy_mode() const noexcept override { return "copy"; }
  const std::string& ifname() const noexcept override { return ifname_; }
  // One recvfrom per frame until EAGAIN; copies (kernel -> pool buffer).
  size_t rx_burst(std::span<Frame> out) override;
  // One sendto per frame; copies (buffer -> kernel). Releases every frame.
  size_t tx_burst(std::span<Frame> frames) override;
  // Fresh pool buffers (no copy).
  size_t alloc_tx(std::span<Frame> out) override { return pool_.alloc(out); }
  int wait_fd() const noexcept override { return fd_; }
  // Reads PACKET_STATISTICS (one getsockopt, not counted as a data-path system call).
  DeviceStats stats() override;

  const PacketPool& pool() const noexcept { return pool_; }

 private:
  std::string ifname_;
  int ifindex_ = 0;
  int fd_ = -1;
  PacketPool pool_;
  DeviceStats st_;
};

// ---- Shared by the packet-socket backends.

// An unbound packet socket for one interface.
struct PacketSocket {
  int fd = -1;
  int ifindex = 0;
  uint32_t mtu = 1500;
};

// Opens a PF_PACKET SOCK_RAW socket for `ifname` that receives nothing yet (protocol 0, so no
// frame of another interface can be queued before bind_packet_socket), non-blocking,
// close-on-exec, blind to outgoing frames, with large socket buffers; reads the MTU. Throws
// std::runtime_error naming the interface and the cause.
PacketSocket open_packet_socket(const std::string& ifname);
// Binds to the interface for every protocol (ETH_P_ALL): frames arrive from here on. Closes
// the socket and throws std::runtime_error on failure.
void bind_packet_socket(const PacketSocket& s, const std::string& ifname);

}  // namespace ulsnet
