// The sandbox proxy method (registered in baselines/registry.cc). Its backend is chosen by
// variant when it starts: the stock-kernel emulation (af_xdp, af_packet_mmap: sandbox_method.cc)
// or the real ULS kernel (uls: sandbox/uls/uls_method.h).
#pragma once

#include <memory>

#include "stack/proxy_method.h"

namespace ulsnet {

std::unique_ptr<ProxyMethod> make_sandbox_method(const MethodInfo& info);

}  // namespace ulsnet
