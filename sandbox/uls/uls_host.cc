#include "sandbox/uls/uls_host.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace ulsnet::uls {
namespace {

[[noreturn]] void fail(const std::string& step, int err) {
  throw std::runtime_error("uls backend: " + step + ": " + std::strerror(err));
}

void write_at(int fd, const void* p, size_t n, uint64_t off, const char* what) {
  const ssize_t w = pwrite(fd, p, n, off_t(off));
  if (w != ssize_t(n)) fail(std::string("loading ") + what + " into the region", w < 0 ? errno : EIO);
}

}  // namespace

ImageControl initial_control(const HostOptions& o) {
  // The configuration first, with an ordinary build of the same Stack code: a configuration it
  // refuses is reported here, with its message, rather than as a fault inside an upcall.
  { Stack check(o.stack); }
  ImageControl c;
  std::memset(static_cast<void*>(&c), 0, sizeof c);  // every byte, padding too: it goes to the region
  c.config = to_pod(o.stack);
  c.magic = kControlMagic;
  c.version = kControlVersion;
  c.phase = Phase::kLoaded;
  c.image_address = kImageAddress;
  c.burst = o.burst;
  c.fill_target = o.fill_target;
  c.reserve = o.reserve;
  return c;
}

std::unique_ptr<UlsStackHost> UlsStackHost::start(const HostOptions& o, std::span<const uint8_t> image) {
  const ImageControl c = initial_control(o);
  if (image.size() > kImageMaxBytes)
    throw std::runtime_error("uls backend: the image (" + std::to_string(image.size()) +
                             " bytes) is larger than its place in the region");

  std::unique_ptr<UlsStackHost> h(new UlsStackHost());
  h->ifnames_ = {o.stack.ifaces[0].name, o.stack.ifaces[1].name};
  h->fd_ = open("/dev/uls", O_RDWR | O_CLOEXEC);
  if (h->fd_ < 0) {
    if (errno == ENOENT)
      throw std::runtime_error("uls backend: no /dev/uls: this kernel does not have the ULS patch "
                               "series (kernel/patches; run it in the VMs: --hosts=vm)");
    fail("opening /dev/uls", errno);
  }
  uls_info info{};
  if (ioctl(h->fd_, ULS_IOC_INFO, &info) != 0) fail("ULS_IOC_INFO", errno);
  if (info.version != ULS_API_VERSION)
    throw std::runtime_error("uls backend: the kernel's ULS API is version " +
                             std::to_string(info.version) + ", this build speaks " +
                             std::to_string(ULS_API_VERSION));
  if (info.base != ULS_REGION_BASE)
    throw std::runtime_error("uls backend: the region is not at ULS_REGION_BASE");
  if (info.size < kRegionBytesNeeded)
    throw std::runtime_error("uls backend: the region has " + std::to_string(info.size >> 20) +
                             " MiB; the image needs " + std::to_string(kRegionBytesNeeded >> 20) +
                             " (boot with uls.region_mb=4 or more)");
  h->protected_ = (info.flags & ULS_INFO_PROTECTED) != 0;

  // Control block, cleared rings and image area, then the image.
  const std::vector<uint8_t> zeros(kImageMaxBytes, 0);
  write_at(h->fd_, zeros.data(), kImageMaxBytes, kImageOff, "the image area");
  for (uint64_t r : kRingsOff) write_at(h->fd_, zeros.data(), sizeof(uls_net_rings), r, "the rings");
  write_at(h->fd_, image.data(), image.size(), kImageOff, "the image");
  write_at(h->fd_, &c, sizeof c, kControlOff, "the control block");

  uls_extension e{};
  e.entry = kImageAddress;
  e.stack_base = ULS_REGION_BASE + kStackOff;
  e.stack_size = kStackBytes;
  e.state = ULS_REGION_BASE + kControlOff;
  std::snprintf(e.name, sizeof e.name, "ulsnet-stack");
  if (ioctl(h->fd_, ULS_IOC_REGISTER, &e) != 0) fail("registering the image", errno);
  h->id_ = e.id;
  h->registered_ = true;

  // The first upcall builds the Stack. This process raises it and normally takes it itself on
  // its way back from the ioctl; if it cannot (it is not eligible), a host wait takes it. The
  // kernel ends an upcall that runs past its budget (uls.budget_ms): set-up, which faults in
  // the image's pages, can take that long on a slow (emulated) CPU. It starts over from the
  // loaded state (the heap and the Stack are built anew, nothing is bound yet), so an overrun
  // set-up is raised again, up to three times in all.
  const uint64_t overruns0 = h->extension_stats().overruns;
  ImageControl now = h->control();
  for (int attempt = 0; attempt < 3 && now.phase == Phase::kLoaded; ++attempt) {
    const uint64_t before = h->extension_stats().overruns;
    if (ioctl(h->fd_, ULS_IOC_RAISE, &h->id_) != 0) fail("raising the set-up upcall", errno);
    now = h->control();
    for (int i = 0; i < 20 && now.phase == Phase::kLoaded; ++i) {
      h->host(100);
      now = h->control();
    }
    if (h->extension_stats().overruns == before) break;  // not an overrun: raising again won't help
  }
  h->setup_overruns_ = h->extension_stats().overruns - overruns0;
  if (now.phase != Phase::kRunning) {
    const uls_stats s = h->extension_stats();
    std::string why = now.phase == Phase::kFailed ? std::string(now.error, strnlen(now.error, sizeof now.error))
                                                 : "its set-up upcall did not run within 2 s";
    if (h->setup_overruns_ > 0 && now.phase == Phase::kLoaded)
      why = "its set-up upcall ran past the kernel's budget (uls.budget_ms) " + std::to_string(h->setup_overruns_) +
            " times";
    if (s.faults > 0 && now.phase != Phase::kFailed)
      why = "it faulted (signal " + std::to_string(s.last_fault_sig) + " at ip " +
            std::to_string(s.last_fault_ip) + ", address " + std::to_string(s.last_fault_addr) + ")";
    throw std::runtime_error("uls backend: the sandbox image did not start: " + why);
  }

  for (int i = 0; i < 2; ++i) {
    uls_net_bind b{};
    std::snprintf(b.ifname, sizeof b.ifname, "%s", h->ifnames_[size_t(i)].c_str());
    b.id = h->id_;
    b.rings_off = uint32_t(kRingsOff[i]);
    b.pool_off = uint32_t(kPoolOff);
    b.pool_size = uint32_t(kPoolBuffers) * ULS_NET_BUF_SIZE;
    if (ioctl(h->fd_, ULS_IOC_NET_BIND, &b) != 0)
      fail("binding " + h->ifnames_[size_t(i)] + " to the zero-copy path", errno);
  }
  return h;
}

UlsStackHost::~UlsStackHost() {
  unload();
  if (fd_ >= 0) close(fd_);
}

bool UlsStackHost::host(uint32_t ms) {
  if (ms == 0) ms = 1;
  return ioctl(fd_, ULS_IOC_HOST, &ms) == 0;
}

bool UlsStackHost::run_once(uint32_t ms) {
  const uint64_t before = control().upcalls;
  if (ioctl(fd_, ULS_IOC_RAISE, &id_) != 0) return false;
  for (uint32_t waited = 0; control().upcalls == before && waited < ms; waited += 20) host(20);
  return control().upcalls != before;
}

ImageControl UlsStackHost::control() const {
  ImageControl c;
  if (pread(fd_, &c, sizeof c, off_t(kControlOff)) != ssize_t(sizeof c))
    fail("reading the image's control block", errno);
  return c;
}

uls_stats UlsStackHost::extension_stats() const {
  uls_stats s{};
  s.id = id_;
  if (ioctl(fd_, ULS_IOC_STATS, &s) != 0) fail("ULS_IOC_STATS", errno);
  return s;
}

uls_net_stats UlsStackHost::interface_stats(int i) const {
  uls_net_stats s{};
  std::snprintf(s.ifname, sizeof s.ifname, "%s", ifnames_[size_t(i)].c_str());
  if (ioctl(fd_, ULS_IOC_NET_STATS, &s) != 0) fail("ULS_IOC_NET_STATS " + ifnames_[size_t(i)], errno);
  return s;
}

bool UlsStackHost::unload() {
  if (registered_) {
    ioctl(fd_, ULS_IOC_UNREGISTER, &id_);
    registered_ = false;
  }
  bool unbound = true;
  for (const std::string& n : ifnames_) {
    uls_net_stats s{};
    std::snprintf(s.ifname, sizeof s.ifname, "%s", n.c_str());
    if (!n.empty() && !(ioctl(fd_, ULS_IOC_NET_STATS, &s) == -1 && errno == ENOENT)) unbound = false;
  }
  return unbound;
}

}  // namespace ulsnet::uls
