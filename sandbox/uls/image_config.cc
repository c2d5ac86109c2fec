// Conversions between StackConfig and its plain-data form: compiled into the loader (ordinary
// build) and into the sandbox image (freestanding build).
#include <cstring>

#include "sandbox/uls/image.h"
#include "stack/fail.h"

namespace ulsnet::uls {

StackConfig from_pod(const PodStackConfig& p, FrameAllocator* const allocators[2]) {
  StackConfig c;
  c.mode = p.mode == uint32_t(ForwardMode::kRelay) ? ForwardMode::kRelay : ForwardMode::kRouter;
  for (uint32_t i = 0; i < p.n_ifaces && i < 2; ++i) {
    const PodIface& f = p.ifaces[i];
    InterfaceConfig ic;
    ic.name.assign(f.name, strnlen(f.name, sizeof f.name));
    std::memcpy(ic.mac.b.data(), f.mac, 6);
    ic.ip = Ipv4Addr{f.ip};
    ic.prefix_len = f.prefix_len;
    ic.mtu = f.mtu;
    ic.allocator = allocators[i];
    c.ifaces.push_back(std::move(ic));
  }
  for (uint32_t i = 0; i < p.n_relays && i < 16; ++i)
    c.relays.push_back({p.relays[i].listen_port, Ipv4Addr{p.relays[i].to_ip}, p.relays[i].to_port});
  for (uint32_t i = 0; i < p.n_neighbors && i < 16; ++i) {
    StaticNeighbor n;
    n.ip = Ipv4Addr{p.neighbors[i].ip};
    std::memcpy(n.mac.b.data(), p.neighbors[i].mac, 6);
    c.neighbors.push_back(n);
  }
  c.arp_ttl_ns = p.arp_ttl_ns;
  c.verify_udp_checksum = p.verify_udp_checksum != 0;
  c.icmp_time_exceeded = p.icmp_time_exceeded != 0;
  c.icmp_rate_burst = p.icmp_rate_burst;
  c.icmp_rate_interval_ns = p.icmp_rate_interval_ns;
  return c;
}

#if __cpp_exceptions
PodStackConfig to_pod(const StackConfig& c) {
  PodStackConfig p;
  std::memset(&p, 0, sizeof p);
  if (c.ifaces.size() != 2)
    throw_invalid_argument("sandbox image: the Stack needs exactly two interfaces, not " +
                           std::to_string(c.ifaces.size()));
  if (c.relays.size() > 16 || c.neighbors.size() > 16)
    throw_invalid_argument("sandbox image: at most 16 relay rules and 16 static neighbours");
  p.mode = uint32_t(c.mode);
  p.n_ifaces = 2;
  for (size_t i = 0; i < 2; ++i) {
    const InterfaceConfig& ic = c.ifaces[i];
    if (ic.name.size() >= sizeof p.ifaces[i].name)
      throw_invalid_argument("sandbox image: interface name too long: " + ic.name);
    std::memcpy(p.ifaces[i].name, ic.name.data(), ic.name.size());
    std::memcpy(p.ifaces[i].mac, ic.mac.b.data(), 6);
    p.ifaces[i].prefix_len = uint8_t(ic.prefix_len);
    p.ifaces[i].ip = ic.ip.v;
    p.ifaces[i].mtu = ic.mtu;
  }
  p.n_relays = uint32_t(c.relays.size());
  for (size_t i = 0; i < c.relays.size(); ++i)
    p.relays[i] = {c.relays[i].listen_port, c.relays[i].to_port, c.relays[i].to_ip.v};
  p.n_neighbors = uint32_t(c.neighbors.size());
  for (size_t i = 0; i < c.neighbors.size(); ++i) {
    p.neighbors[i].ip = c.neighbors[i].ip.v;
    std::memcpy(p.neighbors[i].mac, c.neighbors[i].mac.b.data(), 6);
  }
  p.arp_ttl_ns = c.arp_ttl_ns;
  p.verify_udp_checksum = c.verify_udp_checksum;
  p.icmp_time_exceeded = c.icmp_time_exceeded;
  p.icmp_rate_burst = c.icmp_rate_burst;
  p.icmp_rate_interval_ns = c.icmp_rate_interval_ns;
  return p;
}
#endif

}  // namespace ulsnet::uls
