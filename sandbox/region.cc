#include "sandbox/region.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace ulsnet {

namespace {

constexpr uint64_t kPage = 4096;
uint64_t round_up(uint64_t v) { return (v + kPage - 1) / kPage * kPage; }

std::string hex(uintptr_t a) {
  char b[32];
  std::snprintf(b, sizeof b, "0x%lx", static_cast<unsigned long>(a));
  return b;
}

uint8_t* map_fixed(int fd, uintptr_t address, size_t bytes) {
  // MAP_FIXED_NOREPLACE fails with EEXIST instead of replacing an existing mapping. Kernels
  // before 4.17 ignore the flag and may place the mapping elsewhere: checked below.
  void* p = mmap(reinterpret_cast<void*>(address), bytes, PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_FIXED_NOREPLACE, fd, 0);
  if (p == MAP_FAILED) {
    int e = errno;
    if (e == EEXIST)
      throw std::runtime_error("sandbox region: address range " + hex(address) + "+" +
                               std::to_string(bytes) + " is already mapped in this process");
    throw std::runtime_error("sandbox region: mmap at " + hex(address) + ": " + std::strerror(e));
  }
  if (reinterpret_cast<uintptr_t>(p) != address) {
    munmap(p, bytes);
    throw std::runtime_error("sandbox region: kernel placed the region away from " + hex(address) +
                             " (no MAP_FIXED_NOREPLACE support?)");
  }
  return static_cast<uint8_t*>(p);
}

}  // namespace

SandboxRegion SandboxRegion::create(const RegionLayout& l, uintptr_t address) {
  if (address % kPage != 0) throw std::invalid_argument("sandbox region: address not page aligned");
  RegionHeader h{};
  h.magic = kRegionMagic;
  h.version = 1;
  h.header_bytes = sizeof(RegionHeader);
  h.base_address = address;
  h.rings_offset = kPage;
  h.rings_bytes = round_up(l.ring_bytes);
  h.pool_offset = h.rings_offset + h.rings_bytes;
  h.pool_bytes = round_up(l.pool_bytes);
  h.extensions_offset = h.pool_offset + h.pool_bytes;
  h.extension_slots = l.extension_slots;
  h.extension_slot_bytes = round_up(l.extension_slot_bytes);
  h.total_bytes = h.extensions_offset + uint64_t(h.extension_slots) * h.extension_slot_bytes;
  h.creator_pid = uint64_t(getpid());
  int fd = memfd_create("ulsnet-sandbox", MFD_CLOEXEC);
  if (fd < 0) throw std::runtime_error(std::string("sandbox region: memfd_create: ") + std::strerror(errno));
  if (ftruncate(fd, off_t(h.total_bytes)) != 0) {
    int e = errno;
    close(fd);
    throw std::runtime_error(std::string("sandbox region: ftruncate: ") + std::strerror(e));
  }
  uint8_t* base;
  try {
    base = map_fixed(fd, address, h.total_bytes);
  } catch (...) {
    close(fd);
    throw;
  }
  std::memcpy(base, &h, sizeof h);
  __atomic_add_fetch(&reinterpret_cast<RegionHeader*>(base)->attach_count, 1, __ATOMIC_SEQ_CST);
  return SandboxRegion(fd, base, h.total_bytes);
}

SandboxRegion SandboxRegion::attach(int fd) {
  RegionHeader h{};
  if (pread(fd, &h, sizeof h, 0) != ssize_t(sizeof h) || h.magic != kRegionMagic || h.version != 1)
    throw std::runtime_error("sandbox region: fd " + std::to_string(fd) + " is not a ulsnet region");
  int own = dup(fd);
  if (own < 0) throw std::runtime_error(std::string("sandbox region: dup: ") + std::strerror(errno));
  uint8_t* base;
  try {
    base = map_fixed(own, h.base_address, h.total_bytes);
  } catch (...) {
    close(own);
    throw;
  }
  __atomic_add_fetch(&reinterpret_cast<RegionHeader*>(base)->attach_count, 1, __ATOMIC_SEQ_CST);
  return SandboxRegion(own, base, h.total_bytes);
}

SandboxRegion::SandboxRegion(SandboxRegion&& o) noexcept
    : fd_(o.fd_), base_(o.base_), bytes_(o.bytes_) {
  o.fd_ = -1;
  o.base_ = nullptr;
}

SandboxRegion::~SandboxRegion() {
  if (base_) munmap(base_, bytes_);
  if (fd_ >= 0) close(fd_);
}

}  // namespace ulsnet
