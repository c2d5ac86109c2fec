// PacketPool: fixed-size frame buffers carved from one contiguous memory region.
//
// Design: the region is either allocated by the pool (anonymous mmap) or supplied by the caller
// (e.g. the sandbox region's pool area, so every attached process sees the same buffers at the
// same address; an AF_XDP UMEM is the same memory). Buffer i starts at
// base + i * buffer_size; a frame handed out starts `headroom` bytes into its buffer. Free
// buffers are kept on a LIFO stack of indices (hot buffers are reused while still in cache).
//
// Thread safety: none. A pool belongs to one thread; methods that move frames between threads
// (baselines/user_thread) send them back to the owning thread to be released.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "stack/frame.h"

namespace ulsnet {

class PacketPool final : public FrameOwner {
 public:
  static constexpr uint32_t kDefaultBufferSize = 2048;
  static constexpr uint32_t kDefaultHeadroom = 256;

  // Allocates its own region of count * buffer_size bytes. Throws std::system_error on failure.
  PacketPool(uint32_t count, uint32_t buffer_size = kDefaultBufferSize,
             uint32_t headroom = kDefaultHeadroom);
  // Uses a caller-owned region (not freed by the pool). Throws std::invalid_argument if the
  // region is too small or buffer_size is not a multiple of 64.
  PacketPool(std::span<uint8_t> region, uint32_t buffer_size, uint32_t headroom);
  ~PacketPool() override;
  PacketPool(const PacketPool&) = delete;
  PacketPool& operator=(const PacketPool&) = delete;

  // Fills up to out.size() frames with fresh buffers (len 0); returns how many (no copy).
  size_t alloc(std::span<Frame> out) noexcept;
  // One buffer; false if the pool is empty.
  bool alloc_one(Frame& out) noexcept;
  void release(const Frame& f) noexcept override;

  uint32_t count() const noexcept { return count_; }
  uint32_t available() const noexcept { return uint32_t(free_.size()); }
  uint32_t buffer_size() const noexcept { return buffer_size_; }
  uint32_t headroom() const noexcept { return headroom_; }
  uint8_t* base() const noexcept { return base_; }
  size_t region_bytes() const noexcept { return size_t(count_) * buffer_size_; }
  // Offset of a frame's buffer start from base(); used by devices that address by offset.
  uint64_t buffer_offset(const Frame& f) const noexcept {
    return uint64_t(f.handle) * buffer_size_;
  }
  // A frame view of buffer `index` with `len` bytes at the standard headroom (no copy).
  Frame frame_at(uint32_t index, uint32_t len) const noexcept;
  // Times release() was handed a frame this pool does not own or a double release (ignored).
  uint64_t bad_releases() const noexcept { return bad_releases_; }

 private:
  uint8_t* base_ = nullptr;
  bool owns_region_ = false;
  uint32_t count_ = 0;
  uint32_t buffer_size_ = 0;
  uint32_t headroom_ = 0;
  std::vector<uint32_t> free_;
  std::vector<uint8_t> in_use_;
  uint64_t bad_releases_ = 0;
};

}  // namespace ulsnet
