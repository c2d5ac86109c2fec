// The proxy methods baselines/ implements, one factory each; the registry
// (baselines/registry.cc) passes each its row. The sandbox method's factory is in
// sandbox/sandbox_method.h.
#pragma once

#include <memory>

#include "stack/proxy_method.h"

namespace ulsnet {

std::unique_ptr<ProxyMethod> make_kernel_socket_relay(const MethodInfo& info);  // kernel_methods.cc
std::unique_ptr<ProxyMethod> make_kernel_forward(const MethodInfo& info);       // kernel_methods.cc
std::unique_ptr<ProxyMethod> make_raw_socket(const MethodInfo& info);           // stack_methods.cc
std::unique_ptr<ProxyMethod> make_user_thread(const MethodInfo& info);          // stack_methods.cc
std::unique_ptr<ProxyMethod> make_xdp_redirect(const MethodInfo& info);         // xdp_methods.cc

}  // namespace ulsnet
