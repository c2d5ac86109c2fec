// Makes a Device by its backend name, as used in flags and results.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "stack/device.h"

namespace ulsnet {

struct DeviceOptions {
  uint32_t pool_frames = 4096;
};

// Throws std::runtime_error: unknown kind (listing the valid ones), no such interface, not root.
std::unique_ptr<Device> make_device(std::string_view kind, const std::string& ifname,
                                    const DeviceOptions& opt);
const std::vector<std::string_view>& device_kinds();

}  // namespace ulsnet
