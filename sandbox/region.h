// SandboxRegion: one memory region mapped at the same fixed virtual address in every process
// that attaches, so pointers stored in it are valid in all of them (the paper's ULS region).
//
// On a stock kernel it is a memfd mapped MAP_SHARED | MAP_FIXED_NOREPLACE at a fixed address:
// the creator makes it, other processes attach through the fd (inherited across fork/exec or
// opened as /proc/PID/fd/N). An address already in use is refused with a clear error rather
// than silently replaced. The kernel patch (kernel/patches) reserves the range in every address space.
//
// Layout (offsets from the base, all page aligned, recorded in the header so that attachers
// need no out-of-band agreement):
//   [0, 4 KiB)       RegionHeader: the control area
//   rings            descriptor rings between devices and extensions (sized by the creator)
//   packet pool      the stack's PacketPool buffers (an AF_XDP UMEM can be this memory)
//   extension heaps  per-extension heap + stack slots
// Ownership tags: every field of memory the region's users share says who writes it, with one
// legend for the region, the extension table (extension.h) and the sandbox image's control block
// (uls/image.h):
//   (c) the region's creator, once, before any process attaches
//   (a) any attached process, under the protocol the field's header describes
//   (x) the process serving an extension, around an invocation (while it holds the claim)
//   (l) the sandbox image's loader (uls_host), before it registers the image
//   (i) the sandbox image itself, inside upcalls
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace ulsnet {

inline constexpr uintptr_t kDefaultRegionAddress = 0x7e0000000000ull;
inline constexpr uint64_t kRegionMagic = 0x314e4f4947455255ull;  // "UREGION1"

struct RegionLayout {
  uint64_t ring_bytes = 1 << 20;
  uint64_t pool_bytes = 16 << 20;
  uint32_t extension_slots = 8;
  uint64_t extension_slot_bytes = 1 << 20;
};

struct RegionHeader {
  uint64_t magic;             // (c)
  uint32_t version;           // (c)
  uint32_t header_bytes;      // (c)
  uint64_t base_address;      // (c) where every process maps it
  uint64_t total_bytes;       // (c)
  uint64_t rings_offset, rings_bytes;    // (c)
  uint64_t pool_offset, pool_bytes;      // (c)
  uint64_t extensions_offset;            // (c)
  uint32_t extension_slots;              // (c)
  uint32_t pad;
  uint64_t extension_slot_bytes;         // (c)
  uint64_t creator_pid;                  // (c)
  uint64_t attach_count;                 // (a) atomically incremented by each attach
};

class SandboxRegion {
 public:
  // Creates a region at `address`. Throws std::runtime_error if the address range is taken
  // (naming it) or memfd/mmap fail.
  static SandboxRegion create(const RegionLayout& layout, uintptr_t address = kDefaultRegionAddress);
  // Maps an existing region (its fd) at the address its header names. Throws if the header is
  // not a region's, or the address is taken in this process.
  static SandboxRegion attach(int fd);

  SandboxRegion(SandboxRegion&& o) noexcept;
  SandboxRegion& operator=(SandboxRegion&&) = delete;
  SandboxRegion(const SandboxRegion&) = delete;
  ~SandboxRegion();

  uint8_t* base() const noexcept { return base_; }
  int fd() const noexcept { return fd_; }
  const RegionHeader& header() const noexcept { return *reinterpret_cast<RegionHeader*>(base_); }
  uint8_t* rings() const noexcept { return base_ + header().rings_offset; }
  uint8_t* pool() const noexcept { return base_ + header().pool_offset; }
  uint8_t* extension_slot(uint32_t i) const noexcept {
    return i < header().extension_slots
               ? base_ + header().extensions_offset + uint64_t(i) * header().extension_slot_bytes
               : nullptr;
  }
  bool contains(const void* p, size_t n = 1) const noexcept {
    auto a = reinterpret_cast<uintptr_t>(p), b = reinterpret_cast<uintptr_t>(base_);
    return a >= b && n <= header().total_bytes && a - b <= header().total_bytes - n;
  }

 private:
  SandboxRegion(int fd, uint8_t* base, size_t bytes) : fd_(fd), base_(base), bytes_(bytes) {}
  int fd_ = -1;
  uint8_t* base_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace ulsnet
