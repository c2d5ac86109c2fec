#include "stack/device_factory.h"

#include <stdexcept>

#include "stack/af_packet_device.h"
#include "stack/af_packet_mmap_device.h"

namespace ulsnet {

const std::vector<std::string_view>& device_kinds() {
  static const std::vector<std::string_view> kinds = {"af_packet", "af_packet_mmap"};
  return kinds;
}

std::unique_ptr<Device> make_device(std::string_view kind, const std::string& ifname,
                                    const DeviceOptions& opt) {
  if (kind == "af_packet") return std::make_unique<AfPacketDevice>(ifname, opt.pool_frames);
  if (kind == "af_packet_mmap")
    return std::make_unique<AfPacketMmapDevice>(ifname, opt.pool_frames);
  std::string valid;
  for (auto k : device_kinds()) valid += (valid.empty() ? "" : ", ") + std::string(k);
  throw std::runtime_error("unknown device '" + std::string(kind) + "' (valid: " + valid + ")");
}

}  // namespace ulsnet
