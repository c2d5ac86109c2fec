// The registry: every proxy method, in the order experiments run them, with its description and
// what it can do (one row each, baselines/registry.cc). The bench harness and the guests make
// methods only through it.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "stack/proxy_method.h"

namespace ulsnet {

const std::vector<MethodInfo>& proxy_methods();
const MethodInfo* find_proxy_method(std::string_view name);
// Makes a method; throws MethodError for an unknown name.
std::unique_ptr<ProxyMethod> make_proxy_method(std::string_view name);

// Whether (method, variant) needs the ULS kernel (/dev/uls: the VMs of --hosts=vm).
inline bool needs_uls_kernel(std::string_view method, std::string_view variant) {
  return method == "sandbox" && variant == "uls";
}

// "name" or "name:variant" specs (as in --methods) -> (method, variant) pairs in order; no specs
// means every method. A variant named in a spec always goes in; one the spec leaves implicit (all
// methods, or all variants of a named method) only if it is not one of the method's named_only
// and implicit(method, variant, every_method). Throws MethodError for an unknown method or variant.
using MethodVariant = std::pair<const MethodInfo*, std::string>;
// The variants run only when named, as "method:variant, ..." (for --help).
std::string named_only_variants();
std::vector<MethodVariant> expand_method_specs(
    const std::vector<std::string>& specs,
    const std::function<bool(const MethodInfo&, std::string_view variant, bool every_method)>& implicit);

}  // namespace ulsnet
