#include "stack/bpf_loader.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstring>
#include <mutex>
#include <stdexcept>

namespace ulsnet {
namespace {

// libbpf prints warnings and verifier logs through a callback: keep the last few KiB so that
// an error message can quote them, instead of printing to stderr.
std::mutex g_log_mu;
std::string g_log;

int capture(enum libbpf_print_level level, const char* fmt, va_list ap) {
  if (level == LIBBPF_DEBUG) return 0;
  char buf[1024];
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  std::lock_guard<std::mutex> g(g_log_mu);
  g_log += buf;
  if (g_log.size() > 8192) g_log.erase(0, g_log.size() - 8192);
  return n;
}

void install_log() {
  static std::once_flag once;
  std::call_once(once, [] { libbpf_set_print(capture); });
}

std::string why(int err) {
  std::string s = std::strerror(err);
  if (err == EPERM || err == EACCES)
    s += " (needs root in the initial user namespace, or CAP_BPF and CAP_NET_ADMIN; a "
         "sandbox's own user namespace is not enough)";
  return s;
}

}  // namespace

std::string libbpf_log_tail() {
  std::lock_guard<std::mutex> g(g_log_mu);
  return g_log.size() > 2000 ? g_log.substr(g_log.size() - 2000) : g_log;
}

BpfObject::BpfObject(const unsigned char* elf, size_t size, const std::string& name) : name_(name) {
  install_log();
  LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = name_.c_str());
  obj_ = bpf_object__open_mem(elf, size, &opts);
  if (obj_ == nullptr)
    throw std::runtime_error("BPF object " + name_ + ": open: " + why(errno));
  if (int rc = bpf_object__load(obj_); rc != 0) {
    bpf_object__close(obj_);
    obj_ = nullptr;
    throw std::runtime_error("BPF object " + name_ + ": load: " + why(-rc) + "\n" + libbpf_log_tail());
  }
}

BpfObject::~BpfObject() {
  if (obj_ != nullptr) bpf_object__close(obj_);
}

int BpfObject::program_fd(const std::string& prog) const {
  bpf_program* p = bpf_object__find_program_by_name(obj_, prog.c_str());
  if (p == nullptr) throw std::runtime_error("BPF object " + name_ + " has no program " + prog);
  return bpf_program__fd(p);
}

int BpfObject::map_fd(const std::string& map) const {
  int fd = bpf_object__find_map_fd_by_name(obj_, map.c_str());
  if (fd < 0) throw std::runtime_error("BPF object " + name_ + " has no map " + map);
  return fd;
}

uint64_t BpfObject::percpu_sum(int map_fd, uint32_t key) const {
  const int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return 0;
  std::vector<uint64_t> v(size_t(ncpu), 0);
  if (bpf_map_lookup_elem(map_fd, &key, v.data()) != 0) return 0;
  uint64_t s = 0;
  for (uint64_t x : v) s += x;
  return s;
}

const char* xdp_mode_name(XdpMode m) { return m == XdpMode::kNative ? "native" : "skb"; }

XdpAttachment::XdpAttachment(int prog_fd, const std::string& ifname, XdpMode mode) {
  install_log();
  ifindex_ = int(if_nametoindex(ifname.c_str()));
  if (ifindex_ == 0) throw std::runtime_error("XDP: no such interface '" + ifname + "'");
  flags_ = XDP_FLAGS_UPDATE_IF_NOEXIST | (mode == XdpMode::kNative ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE);
  if (int rc = bpf_xdp_attach(ifindex_, prog_fd, flags_, nullptr); rc != 0) {
    const int e = -rc;
    std::string msg = "XDP: attach to " + ifname + " (" + xdp_mode_name(mode) + " mode): " + why(e);
    if (e == EEXIST || e == EBUSY) msg += " (another XDP program is already attached; not replacing it)";
    if (e == EOPNOTSUPP) msg += " (the driver has no native XDP; try skb mode)";
    ifindex_ = 0;
    throw XdpAttachError(msg, e);
  }
}

XdpAttachment::XdpAttachment(XdpAttachment&& o) noexcept : ifindex_(o.ifindex_), flags_(o.flags_) {
  o.ifindex_ = 0;
}

XdpAttachment::~XdpAttachment() {
  if (ifindex_ != 0) bpf_xdp_detach(ifindex_, flags_ & ~XDP_FLAGS_UPDATE_IF_NOEXIST, nullptr);
}

}  // namespace ulsnet
