#include "stack/af_packet_device.h"

#include "stack/socket_buffers.h"

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace ulsnet {

int open_packet_socket(const std::string& ifname, int& ifindex) {
  ifindex = int(if_nametoindex(ifname.c_str()));
  if (ifindex == 0)
    throw std::runtime_error("packet socket: no interface '" + ifname +
                             "' in this network namespace");
  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ALL));
  if (fd < 0) {
    int e = errno;
    throw std::runtime_error(std::string("packet socket: ") + std::strerror(e) +
                             (e == EPERM ? " (needs root or CAP_NET_RAW)" : ""));
  }
  auto fail = [&](const char* what) {
    int e = errno;
    close(fd);
    throw std::runtime_error(std::string("packet socket on ") + ifname + ": " + what + ": " +
                             std::strerror(e));
  };
  int one = 1;
  // Without this the socket would also read back every frame it sends.
  if (setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one) != 0)
    fail("PACKET_IGNORE_OUTGOING (kernel >= 4.20)");
  set_socket_buffers(fd, 8 << 20, true, true);
  sockaddr_ll sll{};
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_ALL);
  sll.sll_ifindex = ifindex;
  if (bind(fd, reinterpret_cast<sockaddr*>(&sll), sizeof sll) != 0) fail("bind");
  return fd;
}

AfPacketDevice::AfPacketDevice(const std::string& ifname, uint32_t pool_frames)
    : ifname_(ifname), pool_(pool_frames) {
  fd_ = open_packet_socket(ifname, ifindex_);
}

AfPacketDevice::~AfPacketDevice() {
  if (fd_ >= 0) close(fd_);
}

size_t AfPacketDevice::rx_burst(std::span<Frame> out) {
  size_t n = 0;
  while (n < out.size()) {
    Frame f;
    if (!pool_.alloc_one(f)) {
      ++st_.rx_no_buffer;
      break;
    }
    ++st_.syscalls;
    ssize_t r = recv(fd_, f.data, f.capacity, MSG_TRUNC);
    if (r < 0) {
      f.release();
      break;  // EAGAIN: nothing more now (other errors surface as no progress)
    }
    if (size_t(r) > f.capacity) {
      ++st_.rx_truncated;
      f.release();
      continue;
    }
    f.len = uint32_t(r);
    ++st_.copies;
    ++st_.rx_frames;
    st_.rx_bytes += f.len;
    out[n++] = f;
  }
  return n;
}

size_t AfPacketDevice::tx_burst(std::span<Frame> frames) {
  size_t sent = 0;
  for (const Frame& f : frames) {
    ++st_.syscalls;
    ssize_t r = send(fd_, f.data, f.len, MSG_DONTWAIT);
    if (r == ssize_t(f.len)) {
      ++sent;
      ++st_.copies;
      ++st_.tx_frames;
      st_.tx_bytes += f.len;
    } else {
      ++st_.tx_dropped;
    }
    f.release();
  }
  return sent;
}

DeviceStats AfPacketDevice::stats() {
  tpacket_stats s{};
  socklen_t len = sizeof s;
  // Reading resets the kernel's counters, so accumulate.
  if (getsockopt(fd_, SOL_PACKET, PACKET_STATISTICS, &s, &len) == 0)
    st_.rx_kernel_drops += s.tp_drops;
  return st_;
}

}  // namespace ulsnet
