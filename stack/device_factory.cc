#include "stack/device_factory.h"

#include <algorithm>
#include <stdexcept>

#include "stack/af_packet_device.h"
#include "stack/af_packet_mmap_device.h"
#include "stack/af_xdp_device.h"

namespace ulsnet {

namespace {

std::unique_ptr<Device> make_af_packet(const std::string& ifname, const DeviceOptions& o) {
  return std::make_unique<AfPacketDevice>(ifname, o.pool_frames);
}

std::unique_ptr<Device> make_af_packet_mmap(const std::string& ifname, const DeviceOptions& o) {
  MmapRingOptions r;
  r.rx_frame_count = o.rx_frame_count;
  r.tx_frame_count = std::max(o.tx_frame_count, 4 * o.batch);
  r.qdisc_bypass = o.qdisc_bypass;
  // Only generated frames (ARP, ICMP) come from this pool: received frames live in the ring.
  return std::make_unique<AfPacketMmapDevice>(ifname, std::min<uint32_t>(o.pool_frames, 512), r);
}

// A standalone AF_XDP socket with its own umem. Forwarding between two such devices copies
// (each has its own memory); the sandbox method shares one umem between its devices instead.
std::unique_ptr<Device> make_af_xdp(const std::string& ifname, const DeviceOptions& o) {
  auto umem = std::make_shared<XskUmem>(std::max<uint32_t>(o.pool_frames, 4096));
  AfXdpOptions a;
  a.batch = o.batch;
  return std::make_unique<AfXdpDevice>(ifname, std::move(umem), a);
}

struct Backend {
  std::string_view kind;
  std::unique_ptr<Device> (*make)(const std::string&, const DeviceOptions&);
};

constexpr Backend kBackends[] = {
    {"af_packet", make_af_packet},
    {"af_packet_mmap", make_af_packet_mmap},
    {"af_xdp", make_af_xdp},
};

}  // namespace

std::vector<std::string_view> device_kinds() {
  std::vector<std::string_view> v;
  for (const Backend& b : kBackends) v.push_back(b.kind);
  return v;
}

std::unique_ptr<Device> make_device(std::string_view kind, const std::string& ifname,
                                    const DeviceOptions& opt) {
  for (const Backend& b : kBackends)
    if (b.kind == kind) return b.make(ifname, opt);
  std::string valid;
  for (const Backend& b : kBackends) valid += (valid.empty() ? "" : ", ") + std::string(b.kind);
  throw std::runtime_error("unknown device kind '" + std::string(kind) + "' (valid: " + valid +
                           ")");
}

namespace {

AfXdpOptions pair_options(const DeviceOptions& opt) {
  AfXdpOptions a;
  a.batch = opt.batch;
  a.busy_poll = opt.busy_poll;
  a.need_wakeup = opt.need_wakeup;
  return a;
}

}  // namespace

uint64_t af_xdp_pair_umem_bytes(const DeviceOptions& opt) {
  return uint64_t(std::max(2 * opt.pool_frames, af_xdp_pair_chunks(pair_options(opt)))) * kAfXdpChunkBytes;
}

DevicePair make_device_pair(std::string_view kind, const std::string& in_ifname,
                            const std::string& out_ifname, const DeviceOptions& opt,
                            std::span<uint8_t> umem_memory) {
  DevicePair p;
  if (kind != "af_xdp") {
    p.dev[0] = make_device(kind, in_ifname, opt);
    p.dev[1] = make_device(kind, out_ifname, opt);
    return p;
  }
  const AfXdpOptions a = pair_options(opt);
  const uint64_t chunks = af_xdp_pair_umem_bytes(opt) / kAfXdpChunkBytes;
  if (umem_memory.empty()) {
    p.umem = std::make_shared<XskUmem>(uint32_t(chunks));
  } else {
    if (umem_memory.size() / kAfXdpChunkBytes < chunks)
      throw std::runtime_error("af_xdp: the shared umem has " +
                               std::to_string(umem_memory.size() / kAfXdpChunkBytes) +
                               " chunks; two sockets with these rings need " + std::to_string(chunks) +
                               " (af_xdp_pair_umem_bytes)");
    p.umem = std::make_shared<XskUmem>(umem_memory);
  }
  p.dev[0] = std::make_unique<AfXdpDevice>(in_ifname, p.umem, a);
  p.dev[1] = std::make_unique<AfXdpDevice>(out_ifname, p.umem, a);
  return p;
}

}  // namespace ulsnet
