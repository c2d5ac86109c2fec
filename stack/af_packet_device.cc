#include "stack/af_packet_device.h"

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "stack/socket_buffers.h"

namespace ulsnet {

namespace {
constexpr uint32_t kEthernetHeaderBytes = 14;
}  // namespace

PacketSocket open_packet_socket(const std::string& ifname) {
  PacketSocket s;
  if (ifname.empty() || ifname.size() >= IFNAMSIZ)
    throw std::runtime_error("packet socket: bad interface name '" + ifname + "'");
  s.ifindex = int(if_nametoindex(ifname.c_str()));
  if (s.ifindex == 0)
    throw std::runtime_error("packet socket: no such interface '" + ifname +
                             "' in this network namespace");
  // Protocol 0: the socket is hooked into nothing until bind names the interface, so frames of
  // other interfaces never reach it.
  s.fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s.fd < 0) {
    int e = errno;
    throw std::runtime_error("packet socket on " + ifname + ": " + std::strerror(e) +
                             (e == EPERM || e == EACCES ? " (needs root or CAP_NET_RAW)" : ""));
  }
  auto fail = [&](const char* what) {
    int e = errno;
    close(s.fd);
    throw std::runtime_error("packet socket on " + ifname + ": " + what + ": " +
                             std::strerror(e));
  };
  int one = 1;
  // Without this the socket would also read back every frame sent on the interface.
  if (setsockopt(s.fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one) != 0)
    fail("PACKET_IGNORE_OUTGOING (needs Linux >= 4.20)");
  set_socket_buffers(s.fd, 8 << 20, true, true);
  ifreq ifr{};
  std::snprintf(ifr.ifr_name, IFNAMSIZ, "%s", ifname.c_str());
  if (ioctl(s.fd, SIOCGIFMTU, &ifr) != 0) fail("SIOCGIFMTU");
  s.mtu = uint32_t(ifr.ifr_mtu);
  return s;
}

void bind_packet_socket(const PacketSocket& s, const std::string& ifname) {
  sockaddr_ll sll{};
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_ALL);
  sll.sll_ifindex = s.ifindex;
  if (bind(s.fd, reinterpret_cast<sockaddr*>(&sll), sizeof sll) != 0) {
    int e = errno;
    close(s.fd);
    throw std::runtime_error("packet socket on " + ifname + ": bind: " + std::strerror(e));
  }
}

AfPacketDevice::AfPacketDevice(const std::string& ifname, uint32_t pool_frames)
    : ifname_(ifname), pool_(pool_frames) {
  PacketSocket s = open_packet_socket(ifname);
  bind_packet_socket(s, ifname);
  fd_ = s.fd;
  ifindex_ = s.ifindex;
}

AfPacketDevice::~AfPacketDevice() {
  if (fd_ >= 0) close(fd_);
}

size_t AfPacketDevice::rx_burst(std::span<Frame> out) {
  size_t n = 0;
  while (n < out.size()) {
    Frame f;
    if (!pool_.alloc_one(f)) {
      ++st_.rx_no_buffer;  // frames stay queued in the kernel until buffers come back
      break;
    }
    ++st_.syscalls;
    // MSG_TRUNC makes a packet socket return the frame's real length, so an oversize frame is
    // recognised (and dropped) instead of being handed on cut short.
    ssize_t r = recvfrom(fd_, f.data, f.capacity, MSG_TRUNC, nullptr, nullptr);
    if (r < 0) {
      // EAGAIN: nothing more queued. ENETDOWN (interface went down) is reported once by the
      // kernel and loses no frame; the next call sees EAGAIN.
      pool_.release(f);
      break;
    }
    if (size_t(r) > f.capacity) {
      ++st_.rx_truncated;
      pool_.release(f);
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
    bool ok = false;
    if (f.len >= kEthernetHeaderBytes) {  // shorter: the kernel would refuse it (EINVAL)
      ++st_.syscalls;
      ssize_t r = sendto(fd_, f.data, f.len, MSG_DONTWAIT, nullptr, 0);
      if (r < 0 && errno == ENETDOWN) {
        // Possibly stale: the kernel reports an interface that went down (and may be up again)
        // to the next call on the socket, once. Retry once to tell the two apart.
        ++st_.syscalls;
        r = sendto(fd_, f.data, f.len, MSG_DONTWAIT, nullptr, 0);
      }
      ok = r == ssize_t(f.len);
    }
    if (ok) {
      ++sent;
      ++st_.copies;
      ++st_.tx_frames;
      st_.tx_bytes += f.len;
    } else {
      ++st_.tx_dropped;
      if (errno == ENOBUFS) ++st_.tx_refused;
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
