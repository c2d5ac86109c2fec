// Makes a Device by its backend name, as used in flags and results ("af_packet",
// "af_packet_mmap", "af_xdp"), so methods and benchmarks choose a backend by string.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "stack/device.h"

namespace ulsnet {

struct DeviceOptions {
  uint32_t pool_frames = 4096;  // PacketPool buffers (af_packet: receive; both: alloc_tx)
  uint32_t batch = 32;          // frames per burst the caller will use (sizes the TX ring)
  // af_packet_mmap only (see MmapRingOptions for the meaning and defaults).
  uint32_t rx_frame_count = 4096;
  uint32_t tx_frame_count = 512;  // raised to at least 4 bursts
  bool qdisc_bypass = false;
  // af_xdp only (see AfXdpOptions).
  bool need_wakeup = true;
  bool busy_poll = false;
};

// Opens `kind` on interface `ifname` in the calling thread's network namespace. Throws
// std::runtime_error with a message that says why: unknown kind (listing the valid ones), no
// such interface, needs root / CAP_NET_RAW, or the failing call and errno.
std::unique_ptr<Device> make_device(std::string_view kind, const std::string& ifname,
                                    const DeviceOptions& opt);
class XskUmem;

// The two devices of a proxy (interface 0 toward the sender, 1 toward the receiver). With af_xdp
// both sockets share one UMEM (`umem_memory` if given, e.g. the sandbox region's pool, else
// memory of its own), so a forwarded frame moves between them as a descriptor; the other kinds
// are two independent devices.
struct DevicePair {
  std::shared_ptr<XskUmem> umem;  // af_xdp only (declared first: outlives the devices)
  std::unique_ptr<Device> dev[2];
};
// Throws std::runtime_error as make_device does, and if `umem_memory` is smaller than
// af_xdp_pair_umem_bytes(opt).
DevicePair make_device_pair(std::string_view kind, const std::string& in_ifname,
                            const std::string& out_ifname, const DeviceOptions& opt,
                            std::span<uint8_t> umem_memory = {});

// The bytes of the UMEM make_device_pair gives two af_xdp sockets: 2 x pool_frames chunks, or
// more where the sockets' rings need it so that neither starves the other (af_xdp_pair_chunks).
inline constexpr uint32_t kAfXdpChunkBytes = 2048;
uint64_t af_xdp_pair_umem_bytes(const DeviceOptions& opt);

// Every kind make_device accepts, in a stable order.
std::vector<std::string_view> device_kinds();

}  // namespace ulsnet
