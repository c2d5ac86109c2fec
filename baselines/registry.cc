#include <unistd.h>

#include "baselines/proxy_method.h"

namespace ulsnet {

std::unique_ptr<ProxyMethod> make_kernel_socket_relay();
std::unique_ptr<ProxyMethod> make_kernel_forward();
std::unique_ptr<ProxyMethod> make_raw_socket();
std::unique_ptr<ProxyMethod> make_user_thread();

const std::vector<MethodInfo>& proxy_methods() {
  static const std::vector<MethodInfo> methods = {
      {"kernel-socket", {"batched", "per-datagram"}, true, false, true,
       "UDP relay on kernel sockets (recvmmsg/sendmmsg, or one recvfrom/sendto per datagram)"},
      {"raw-socket", {"af_packet", "af_packet_mmap"}, true, true, false,
       "the ulsnet stack over a packet socket, in the thread that does the I/O"},
      {"user-thread", {"af_packet", "af_packet_mmap"}, true, true, false,
       "packet-socket I/O in one thread, the ulsnet stack in another, blocking hand-offs"},
      {"kernel-forward", {"ip_forward"}, false, true, true, "the kernel's own IP forwarding"},
  };
  return methods;
}

const MethodInfo* find_proxy_method(std::string_view name) {
  for (const MethodInfo& m : proxy_methods())
    if (m.name == name) return &m;
  return nullptr;
}

std::unique_ptr<ProxyMethod> make_proxy_method(std::string_view name) {
  if (geteuid() != 0)
    throw MethodError("proxy methods need root (packet sockets, sysctls in the namespace)");
  if (name == "kernel-socket") return make_kernel_socket_relay();
  if (name == "kernel-forward") return make_kernel_forward();
  if (name == "raw-socket") return make_raw_socket();
  if (name == "user-thread") return make_user_thread();
  std::string valid;
  for (const MethodInfo& m : proxy_methods()) valid += (valid.empty() ? "" : ", ") + std::string(m.name);
  throw MethodError("unknown method '" + std::string(name) + "' (valid: " + valid + ")");
}

}  // namespace ulsnet
