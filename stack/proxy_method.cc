#include "stack/proxy_method.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ulsnet {
namespace {

// Whether the calling thread's network namespace has `ip` configured on interface `ifname`.
bool kernel_has_address(const std::string& ifname, Ipv4Addr ip) {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return false;
  bool found = false;
  for (ifaddrs* a = list; a != nullptr && !found; a = a->ifa_next)
    if (a->ifa_addr != nullptr && a->ifa_addr->sa_family == AF_INET && ifname == a->ifa_name)
      found = ntohl(reinterpret_cast<sockaddr_in*>(a->ifa_addr)->sin_addr.s_addr) == ip.v;
  freeifaddrs(list);
  return found;
}

}  // namespace

uint32_t interface_mtu(const std::string& ifname) {
  ifreq r{};
  if (ifname.empty() || ifname.size() >= sizeof r.ifr_name)
    throw MethodError("interface name '" + ifname + "' is empty or too long");
  std::memcpy(r.ifr_name, ifname.data(), ifname.size());
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw MethodError(std::string("socket for SIOCGIFMTU: ") + std::strerror(errno));
  const int rc = ioctl(fd, SIOCGIFMTU, &r);
  const int err = errno;
  close(fd);
  if (rc != 0)
    throw MethodError("SIOCGIFMTU " + ifname + ": " + std::strerror(err));
  if (r.ifr_mtu < 68)  // RFC 791: every link carries 68 bytes
    throw MethodError("interface " + ifname + " reports MTU " + std::to_string(r.ifr_mtu));
  return uint32_t(r.ifr_mtu);
}

std::string check_method_config(const MethodInfo& info, const ProxyConfig& cfg) {
  const MethodInfo* m = &info;
  const std::string name(info.name);
  if (cfg.mode == ForwardMode::kRelay && !m->relay)
    throw MethodError(name + " supports router mode only, not relay");
  if (cfg.mode == ForwardMode::kRouter && !m->router)
    throw MethodError(name + " supports relay mode only, not router");
  std::string variant = cfg.variant.empty() ? std::string(m->variants.front()) : cfg.variant;
  bool known = false;
  std::string valid;
  for (std::string_view v : m->variants) {
    known |= v == variant;
    valid += (valid.empty() ? "" : ", ") + std::string(v);
  }
  if (!known)
    throw MethodError(name + ": unknown variant '" + variant + "' (valid: " + valid + ")");
  for (const ProxyPort* p : {&cfg.in, &cfg.out}) {
    if (p->ifname.empty()) throw MethodError(name + ": an interface name is empty");
    if (if_nametoindex(p->ifname.c_str()) == 0)
      throw MethodError(name + ": no such interface '" + p->ifname +
                        "' in this network namespace");
  }
  // Who owns the proxy's addresses decides who answers ARP and ICMP: exactly one of the
  // kernel and the Stack must, or the methods are not comparable (and a kernel without the
  // relay port would answer every datagram with ICMP port unreachable).
  for (const ProxyPort* p : {&cfg.in, &cfg.out}) {
    const bool has = kernel_has_address(p->ifname, p->ip);
    if (m->kernel_owns_addresses && !has)
      throw MethodError(name + ": the proxy's kernel does not own " + p->ip.str() + " on " +
                        p->ifname + " (this method needs the address configured in the kernel)");
    if (!m->kernel_owns_addresses && has)
      throw MethodError(name + ": the proxy's kernel also owns " + p->ip.str() + " on " +
                        p->ifname + "; it would answer ARP and ICMP for the Stack's address "
                        "(remove it from the kernel: the Stack owns it)");
  }
  if (cfg.in.ifname == cfg.out.ifname)
    throw MethodError(name + ": in and out are the same interface '" + cfg.in.ifname + "'");
  if (cfg.batch == 0) throw MethodError(name + ": batch must be > 0");
  return variant;
}

}  // namespace ulsnet
