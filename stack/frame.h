// Frames: views onto buffers that someone else owns.
//
// A Frame is a small value (32 bytes) naming a region of a buffer: `data` points at the first
// byte of the Ethernet header, `headroom` bytes before it and `capacity - len` bytes after the
// frame's end are free to use. Copying a Frame copies the view, never the bytes. Every buffer
// has exactly one owner (a PacketPool, a kernel ring, an AF_XDP UMEM, the sandbox region); whoever holds
// a Frame must eventually hand it back with `release()` or pass it to a Device's tx_burst,
// which takes it over. Nothing here copies packet bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace ulsnet {

struct Frame;

// Whoever owns buffers: takes back frames it handed out. Not thread-safe unless the owner says so.
class FrameOwner {
 public:
  virtual ~FrameOwner() = default;
  virtual void release(const Frame& f) noexcept = 0;
};

struct Frame {
  uint8_t* data = nullptr;   // first byte of the Ethernet header
  uint32_t len = 0;          // bytes of frame starting at data
  uint32_t headroom = 0;     // free bytes before data
  uint32_t capacity = 0;     // bytes from data to the end of the buffer (>= len)
  uint32_t handle = 0;       // owner-private: which buffer / ring slot this is
  FrameOwner* owner = nullptr;

  // Returns the buffer to its owner (no copy). The Frame must not be used afterwards.
  void release() const noexcept {
    if (owner != nullptr) owner->release(*this);
  }
  // Moves the start of the frame `n` bytes earlier into the headroom (no copy); false if the
  // headroom is too small.
  bool push_front(uint32_t n) noexcept {
    if (n > headroom) return false;
    data -= n;
    headroom -= n;
    len += n;
    capacity += n;
    return true;
  }
  // Drops `n` bytes from the front (no copy).
  bool pull_front(uint32_t n) noexcept {
    if (n > len) return false;
    data += n;
    headroom += n;
    len -= n;
    capacity -= n;
    return true;
  }
  // Changes the frame length within the buffer (no copy).
  bool resize(uint32_t n) noexcept {
    if (n > capacity) return false;
    len = n;
    return true;
  }
  std::span<uint8_t> bytes() const noexcept { return {data, len}; }
};

// Something that hands out fresh buffers for frames the stack generates (ARP replies, ICMP
// errors). Devices implement it; the protocol code sees only this, never a device.
class FrameAllocator {
 public:
  virtual ~FrameAllocator() = default;
  // Fills up to out.size() empty frames (len 0); returns how many (no copy).
  virtual size_t alloc_tx(std::span<Frame> out) = 0;
};

inline void release_all(std::span<const Frame> frames) noexcept {
  for (const Frame& f : frames) f.release();
}

}  // namespace ulsnet
