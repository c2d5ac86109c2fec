// The sandbox method's uls variant: the Stack as the sandbox image on the real ULS kernel
// (uls_method.cc). Only where /dev/uls exists (the VMs of --hosts=vm); elsewhere start() says so.
#pragma once

#include <memory>

#include "stack/proxy_method.h"

namespace ulsnet {

std::unique_ptr<ProxyMethod> make_uls_sandbox_method(const MethodInfo& info);

}  // namespace ulsnet
