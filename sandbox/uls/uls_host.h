// The `uls` backend, process side: loads the sandbox image (the project's Stack, image.h) into the
// ULS kernel's region, registers it as an extension, has it build its Stack in an upcall, binds
// two e1000 interfaces to it (their frames then reach it only by the zero-copy rings and
// upcalls), serves as a host for upcalls no current process can take, reads its counters, and
// unloads it. Needs the patched kernel (kernel/patches, /dev/uls) and CAP_SYS_ADMIN; without
// them every step fails with a message that says which.
#pragma once

#include <linux/uls.h>

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "sandbox/uls/image.h"
#include "stack/stack.h"

namespace ulsnet::uls {

struct HostOptions {
  StackConfig stack;                 // exactly two interfaces; their names are the NICs bound
  uint32_t burst = 32;               // frames per Stack::process call
  uint32_t fill_target = ULS_NET_RING_SIZE;
  uint32_t reserve = 32;             // free buffers kept for frames the Stack generates
};

// The control block the loader writes for `o` (kLoaded). Checks the configuration with an
// ordinary build of the same Stack first: throws std::invalid_argument with its message.
ImageControl initial_control(const HostOptions& o);

class UlsStackHost {
 public:
  // Every step, in order; throws std::runtime_error naming the step and the reason (and
  // std::invalid_argument for a Stack configuration that cannot work), undoing what it did.
  static std::unique_ptr<UlsStackHost> start(const HostOptions& o, std::span<const uint8_t> image);
  ~UlsStackHost();  // unloads
  UlsStackHost(const UlsStackHost&) = delete;
  UlsStackHost& operator=(const UlsStackHost&) = delete;

  // Waits up to ms for an upcall no current process could take and takes it (ULS_IOC_HOST).
  // true if one came.
  bool host(uint32_t ms);
  // Raises one upcall of the image (ULS_IOC_RAISE) and waits up to ms for it to finish (this
  // process takes it on its way back, or hosts it). true if one finished.
  bool run_once(uint32_t ms);
  // The image's control block as it is now (pread: the region may be protected).
  ImageControl control() const;
  uls_stats extension_stats() const;
  uls_net_stats interface_stats(int i) const;
  const std::string& ifname(int i) const { return ifnames_[size_t(i)]; }
  bool protected_region() const { return protected_; }
  uint32_t id() const { return id_; }
  // Set-up upcalls the kernel ended for running past its budget before one finished (each was
  // raised again).
  uint64_t setup_overruns() const { return setup_overruns_; }
  // Unregisters (which unbinds both interfaces: their buffers go back, the kernel has them
  // again). Returns whether both are unbound afterwards. Idempotent.
  bool unload();

 private:
  UlsStackHost() = default;
  int fd_ = -1;
  uint32_t id_ = 0;
  bool registered_ = false, protected_ = false;
  uint64_t setup_overruns_ = 0;
  std::array<std::string, 2> ifnames_;
};

}  // namespace ulsnet::uls
