#include <algorithm>
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>

#include "baselines/method_checks.h"
#include "baselines/proxy_method.h"

namespace ulsnet {

std::unique_ptr<ProxyMethod> make_kernel_socket_relay();
std::unique_ptr<ProxyMethod> make_kernel_forward();
std::unique_ptr<ProxyMethod> make_raw_socket();
std::unique_ptr<ProxyMethod> make_user_thread();
std::unique_ptr<ProxyMethod> make_sandbox_method();
std::unique_ptr<ProxyMethod> make_xdp_redirect();

namespace {

struct Entry {
  MethodInfo info;
  std::unique_ptr<ProxyMethod> (*make)();
};

const std::vector<Entry>& entries() {
  static const std::vector<Entry> table = {
      {{"kernel-socket", {"batched", "per-datagram"}, true, false, true,
        "UDP relay on kernel sockets: recvmmsg/sendmmsg per batch, or one recvfrom/sendto per "
        "datagram (the paper-era form)"},
       make_kernel_socket_relay},
      {{"raw-socket", {"af_packet", "af_packet_mmap", "af_xdp"}, true, true, false,
        "the ulsnet Stack over packet-socket devices, in the thread that does the I/O"},
       make_raw_socket},
      {{"user-thread", {"af_packet", "af_packet_mmap", "af_xdp"}, true, true, false,
        "packet-socket I/O in one thread, the ulsnet Stack in another; every hand-off is an "
        "eventfd wake-up each way"},
       make_user_thread},
      {{"sandbox", {"af_xdp", "af_packet_mmap", "uls"}, true, true, false,
        "the ulsnet Stack as a sandbox extension: state in the shared region, one upcall per "
        "received burst under a protection domain (sandbox/); variant uls: the real ULS kernel, "
        "the Stack as the region's image run by kernel upcalls on the zero-copy e1000 path "
        "(sandbox/uls/; --hosts=vm)"},
       make_sandbox_method},
      {{"xdp-redirect", {"native", "skb"}, true, true, true,
        "an in-kernel XDP program doing the Stack's rewrite and redirecting to the other "
        "interface: the limit of the proxy host's path", true},
       make_xdp_redirect},
      {{"kernel-forward", {"ip_forward"}, false, true, true,
        "the kernel's own IP forwarding: the reference for router mode"},
       make_kernel_forward},
  };
  return table;
}

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
    if (e.info.name == name) return e.make();
  throw MethodError("unknown method '" + std::string(name) + "' (valid: " + names() + ")");
}

std::vector<MethodVariant> expand_method_specs(
    const std::vector<std::string>& specs,
    const std::function<bool(const MethodInfo&, std::string_view variant, bool every_method)>& implicit) {
  std::vector<MethodVariant> mv;
  if (specs.empty()) {
    for (const MethodInfo& m : proxy_methods())
      for (std::string_view v : m.variants)
        if (implicit(m, v, true)) mv.push_back({&m, std::string(v)});
    return mv;
  }
  for (const std::string& spec : specs) {
    const auto c = spec.find(':');
    const std::string name = spec.substr(0, c), variant = c == std::string::npos ? "" : spec.substr(c + 1);
    const MethodInfo* m = find_proxy_method(name);
    if (!m) throw MethodError("unknown method '" + name + "' (valid: " + names() + ")");
    if (variant.empty()) {
      for (std::string_view v : m->variants)
        if (implicit(*m, v, false)) mv.push_back({m, std::string(v)});
    } else if (std::find(m->variants.begin(), m->variants.end(), variant) == m->variants.end()) {
      throw MethodError("method " + name + " has no variant '" + variant + "'");
    } else {
      mv.push_back({m, variant});
    }
  }
  return mv;
}

std::string check_method_config(std::string_view method, const ProxyConfig& cfg) {
  const MethodInfo* m = find_proxy_method(method);
  if (m == nullptr) throw MethodError("unknown method '" + std::string(method) + "'");
  const std::string name(method);
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
