// Checks every method's start() makes before touching the system, so a method that cannot run
// here says why in a MethodError. Internal to baselines/.
#pragma once

#include <string>
#include <string_view>

#include "baselines/proxy_method.h"

namespace ulsnet {

// Validates cfg against the registry entry of `method`: the mode is supported, the variant is
// known (empty means the default), both interfaces are named, distinct and exist in the calling
// thread's network namespace. Returns the variant to use. Throws MethodError.
std::string check_method_config(std::string_view method, const ProxyConfig& cfg);

}  // namespace ulsnet
