// BpfObject: a BPF ELF object embedded in the binary (tools/bpf.bzl), opened and loaded with
// libbpf; XdpAttachment: one XDP program attached to one interface, detached on destruction.
//
// Errors are std::runtime_error naming what failed and why: not root / no CAP_BPF and
// CAP_NET_ADMIN, the kernel's verifier refused the program (its log is in the message), no such
// interface, or a program already attached (we never replace someone else's program).
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

struct bpf_object;

namespace ulsnet {

class BpfObject {
 public:
  BpfObject(const unsigned char* elf, size_t size, const std::string& name);
  ~BpfObject();
  BpfObject(const BpfObject&) = delete;
  BpfObject& operator=(const BpfObject&) = delete;

  int program_fd(const std::string& prog) const;  // throws if there is no such program
  int map_fd(const std::string& map) const;       // throws if there is no such map
  // Sums a per-CPU array map's u64 values at `key` over all possible CPUs.
  uint64_t percpu_sum(int map_fd, uint32_t key) const;
  const std::string& name() const noexcept { return name_; }

 private:
  std::string name_;
  bpf_object* obj_ = nullptr;
};

enum class XdpMode { kNative, kSkb };
const char* xdp_mode_name(XdpMode m);  // "native" / "skb"

// Why an XDP attach failed: the message, and the errno (EOPNOTSUPP: no native XDP in the driver).
class XdpAttachError : public std::runtime_error {
 public:
  XdpAttachError(const std::string& what, int err) : std::runtime_error(what), err_(err) {}
  int err() const noexcept { return err_; }

 private:
  int err_;
};

class XdpAttachment {
 public:
  // Attaches program `prog_fd` to `ifname` in the calling thread's network namespace. Throws
  // XdpAttachError.
  XdpAttachment(int prog_fd, const std::string& ifname, XdpMode mode);
  ~XdpAttachment();
  XdpAttachment(XdpAttachment&& o) noexcept;
  XdpAttachment(const XdpAttachment&) = delete;
  XdpAttachment& operator=(const XdpAttachment&) = delete;
  int ifindex() const noexcept { return ifindex_; }

 private:
  int ifindex_ = 0;
  uint32_t flags_ = 0;
};

// Runs fn with libbpf's log printing captured; returns what libbpf printed.
std::string libbpf_log_tail();

}  // namespace ulsnet
