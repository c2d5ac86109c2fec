#include "stack/packet_pool.h"

#include <sys/mman.h>

#include <cerrno>
#include <stdexcept>
#include <system_error>

namespace ulsnet {

namespace {
void check_geometry(uint32_t count, uint32_t buffer_size, uint32_t headroom) {
  if (count == 0) throw std::invalid_argument("PacketPool: count must be > 0");
  if (buffer_size < 128 || buffer_size % 64 != 0)
    throw std::invalid_argument("PacketPool: buffer_size must be >= 128 and a multiple of 64");
  if (headroom >= buffer_size - 64)
    throw std::invalid_argument("PacketPool: headroom leaves no room for a frame");
}
}  // namespace

PacketPool::PacketPool(uint32_t count, uint32_t buffer_size, uint32_t headroom)
    : count_(count), buffer_size_(buffer_size), headroom_(headroom) {
  check_geometry(count, buffer_size, headroom);
  void* p = mmap(nullptr, region_bytes(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                 -1, 0);
  if (p == MAP_FAILED) throw std::system_error(errno, std::generic_category(), "PacketPool mmap");
  base_ = static_cast<uint8_t*>(p);
  owns_region_ = true;
  free_.reserve(count);
  for (uint32_t i = count; i > 0; --i) free_.push_back(i - 1);
  in_use_.assign(count, 0);
}

PacketPool::PacketPool(std::span<uint8_t> region, uint32_t buffer_size, uint32_t headroom)
    : base_(region.data()), buffer_size_(buffer_size), headroom_(headroom) {
  if (buffer_size == 0) throw std::invalid_argument("PacketPool: buffer_size must be > 0");
  count_ = uint32_t(region.size() / buffer_size);
  check_geometry(count_, buffer_size, headroom);
  free_.reserve(count_);
  for (uint32_t i = count_; i > 0; --i) free_.push_back(i - 1);
  in_use_.assign(count_, 0);
}

PacketPool::~PacketPool() {
  if (owns_region_) munmap(base_, region_bytes());
}

Frame PacketPool::frame_at(uint32_t index, uint32_t len) const noexcept {
  Frame f;
  f.data = base_ + size_t(index) * buffer_size_ + headroom_;
  f.len = len;
  f.headroom = headroom_;
  f.capacity = buffer_size_ - headroom_;
  f.handle = index;
  f.owner = const_cast<PacketPool*>(this);
  return f;
}

bool PacketPool::alloc_one(Frame& out) noexcept {
  if (free_.empty()) return false;
  uint32_t i = free_.back();
  free_.pop_back();
  in_use_[i] = 1;
  out = frame_at(i, 0);
  return true;
}

size_t PacketPool::alloc(std::span<Frame> out) noexcept {
  size_t n = 0;
  while (n < out.size() && alloc_one(out[n])) ++n;
  return n;
}

void PacketPool::release(const Frame& f) noexcept {
  if (f.owner != this || f.handle >= count_ || !in_use_[f.handle]) {
    ++bad_releases_;
    return;
  }
  in_use_[f.handle] = 0;
  free_.push_back(f.handle);
}

}  // namespace ulsnet
