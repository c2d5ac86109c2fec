// AfPacketDevice: a PF_PACKET raw socket with one recvfrom/sendto per frame, the "raw socket"
// of the paper's era. Each received frame costs a system call and a kernel-to-user copy into a
// PacketPool buffer; each sent frame a system call and a user-to-kernel copy.
#pragma once

#include <string>

#include "stack/device.h"
#include "stack/packet_pool.h"

namespace ulsnet {

class AfPacketDevice final : public Device {
 public:
  // Opens and binds the socket; throws std::runtime_error saying what is missing.
  AfPacketDevice(const std::string& ifname, uint32_t pool_frames);
  ~AfPacketDevice() override;
  AfPacketDevice(const AfPacketDevice&) = delete;
  AfPacketDevice& operator=(const AfPacketDevice&) = delete;

  const char* kind() const noexcept override { return "af_packet"; }
  const char* copy_mode() const noexcept override { return "copy"; }
  const std::string& ifname() const noexcept override { return ifname_; }
  size_t rx_burst(std::span<Frame> out) override;   // copies (kernel -> pool buffer)
  size_t tx_burst(std::span<Frame> frames) override;  // copies (buffer -> kernel)
  size_t alloc_tx(std::span<Frame> out) override { return pool_.alloc(out); }
  int wait_fd() const noexcept override { return fd_; }
  DeviceStats stats() override;

 private:
  std::string ifname_;
  int ifindex_ = 0;
  int fd_ = -1;
  PacketPool pool_;
  DeviceStats st_;
};

// Opens a PF_PACKET socket bound to ifname, non-blocking, not seeing its own transmissions.
// Shared by the packet-socket backends. Throws std::runtime_error.
int open_packet_socket(const std::string& ifname, int& ifindex);

}  // namespace ulsnet
