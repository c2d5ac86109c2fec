#include "baselines/registry.h"

#include <algorithm>

#include "baselines/methods.h"
#include "sandbox/sandbox_method.h"

namespace ulsnet {
namespace {

struct Entry {
  MethodInfo info;
  std::unique_ptr<ProxyMethod> (*make)(const MethodInfo&);
};

const std::vector<Entry>& entries() {
  static const std::vector<Entry> table = {
      {.info = {.name = "kernel-socket",
                .variants = {"batched", "per-datagram", "io_uring", "io_uring-sqpoll", "io_uring-send_zc"},
                .named_only = {"io_uring-sqpoll", "io_uring-send_zc"},
                .relay = true,
                .kernel_owns_addresses = true,
                .doc = "UDP relay on kernel sockets: recvmmsg/sendmmsg per batch, one recvfrom/sendto "
                       "per datagram (the paper-era form), or io_uring (multishot receive into a "
                       "provided-buffer ring, the sends of each pass submitted with one io_uring_enter); "
                       "only when named: io_uring-sqpoll (a kernel thread submits, pinned beside the relay), "
                       "io_uring-send_zc (zero-copy sends from registered buffers, for large payloads)"},
       .make = make_kernel_socket_relay},
      {.info = {.name = "raw-socket",
                .variants = {"af_packet", "af_packet_mmap", "af_xdp"},
                .relay = true,
                .router = true,
                .doc = "the ulsnet Stack over packet-socket devices, in the thread that does the I/O"},
       .make = make_raw_socket},
      {.info = {.name = "user-thread",
                .variants = {"af_packet", "af_packet_mmap", "af_xdp"},
                .relay = true,
                .router = true,
                .doc = "packet-socket I/O in one thread, the ulsnet Stack in another; every hand-off is "
                       "an eventfd wake-up each way"},
       .make = make_user_thread},
      {.info = {.name = "sandbox",
                .variants = {"af_xdp", "af_packet_mmap", "uls"},
                .relay = true,
                .router = true,
                .doc = "the ulsnet Stack as a sandbox extension: state in the shared region, one upcall "
                       "per received burst under a protection domain (sandbox/); variant uls: the real "
                       "ULS kernel, the Stack as the region's image run by kernel upcalls on the "
                       "zero-copy e1000 path (sandbox/uls/; --hosts=vm)"},
       .make = make_sandbox_method},
      {.info = {.name = "xdp-redirect",
                .variants = {"native", "skb"},
                .relay = true,
                .router = true,
                .kernel_owns_addresses = true,
                .needs_veth_napi = true,
                .doc = "an in-kernel XDP program doing the Stack's rewrite and redirecting to the other "
                       "interface: the limit of the proxy host's path"},
       .make = make_xdp_redirect},
      {.info = {.name = "kernel-forward",
                .variants = {"ip_forward"},
                .router = true,
                .kernel_owns_addresses = true,
                .doc = "the kernel's own IP forwarding: the reference for router mode"},
       .make = make_kernel_forward},
  };
  return table;
}

bool is_named_only(const MethodInfo& m, std::string_view v) {
  return std::find(m.named_only.begin(), m.named_only.end(), v) != m.named_only.end();
}

std::string names() {
  std::string s;
  for (const Entry& e : entries()) s += (s.empty() ? "" : ", ") + std::string(e.info.name);
  return s;
}

}  // namespace

const std::vector<MethodInfo>& proxy_methods() {
  static const std::vector<MethodInfo> infos = [] {
    std::vector<MethodInfo> v;
    for (const Entry& e : entries()) v.push_back(e.info);
    return v;
  }();
  return infos;
}

const MethodInfo* find_proxy_method(std::string_view name) {
  for (const MethodInfo& m : proxy_methods())
    if (m.name == name) return &m;
  return nullptr;
}

std::unique_ptr<ProxyMethod> make_proxy_method(std::string_view name) {
  for (const Entry& e : entries())
    if (e.info.name == name) return e.make(e.info);
  throw MethodError("unknown method '" + std::string(name) + "' (valid: " + names() + ")");
}

std::string named_only_variants() {
  std::string s;
  for (const MethodInfo& m : proxy_methods())
    for (std::string_view v : m.named_only) s += (s.empty() ? "" : ", ") + std::string(m.name) + ":" + std::string(v);
  return s;
}

std::vector<MethodVariant> expand_method_specs(
    const std::vector<std::string>& specs,
    const std::function<bool(const MethodInfo&, std::string_view variant, bool every_method)>& implicit) {
  std::vector<MethodVariant> mv;
  if (specs.empty()) {
    for (const MethodInfo& m : proxy_methods())
      for (std::string_view v : m.variants)
        if (!is_named_only(m, v) && implicit(m, v, true)) mv.push_back({&m, std::string(v)});
    return mv;
  }
  for (const std::string& spec : specs) {
    const auto c = spec.find(':');
    const std::string name = spec.substr(0, c), variant = c == std::string::npos ? "" : spec.substr(c + 1);
    const MethodInfo* m = find_proxy_method(name);
    if (!m) throw MethodError("unknown method '" + name + "' (valid: " + names() + ")");
    if (variant.empty()) {
      for (std::string_view v : m->variants)
        if (!is_named_only(*m, v) && implicit(*m, v, false)) mv.push_back({m, std::string(v)});
    } else if (std::find(m->variants.begin(), m->variants.end(), variant) == m->variants.end()) {
      throw MethodError("method " + name + " has no variant '" + variant + "'");
    } else {
      mv.push_back({m, variant});
    }
  }
  return mv;
}

}  // namespace ulsnet
