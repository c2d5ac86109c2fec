// Device: how frames reach the stack and leave it. Every user-level method runs the same Stack;
// methods differ only in which Device they use and how the stack is invoked.
//
// Ownership: rx_burst hands out frames the caller now holds (release them, or pass them to
// some device's tx_burst). tx_burst takes over every frame it is given, sent or not: a frame
// it could not send is released and counted in DeviceStats::tx_dropped. alloc_tx gives fresh
// buffers for frames the stack generates (ARP replies, ICMP errors).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "stack/frame.h"

namespace ulsnet {

struct DeviceStats {
  uint64_t rx_frames = 0;
  uint64_t rx_bytes = 0;
  uint64_t tx_frames = 0;
  uint64_t tx_bytes = 0;
  uint64_t tx_dropped = 0;     // tx_burst could not send (ENOBUFS, ring full...)
  uint64_t tx_refused = 0;     // of tx_dropped: the kernel refused the frame (ENOBUFS: the
                               // interface dropped it and counts it in its own tx_dropped too)
  uint64_t rx_kernel_drops = 0;  // dropped by the kernel before we saw them (PACKET_STATISTICS)
  // Times receiving stopped for want of a free buffer (an rx_burst cut short; with AF_XDP a
  // fill-ring refill skipped): events, not frames. The frames wait in the kernel meanwhile; one
  // the kernel then drops is counted there (rx_kernel_drops, AF_XDP's rx_fill_ring_empty).
  uint64_t rx_no_buffer = 0;
  uint64_t rx_truncated = 0;   // frames longer than a buffer (dropped, counted)
  uint64_t syscalls = 0;       // system calls made on the data path
  uint64_t copies = 0;         // frames copied between kernel and user memory
};

class Device : public FrameAllocator {
 public:
  virtual ~Device() = default;
  // Short backend name as used in flags and results: "af_packet", "af_packet_mmap", ...
  virtual const char* kind() const noexcept = 0;
  // Whether a forwarded frame's bytes are copied on this device's path ("copy") or not ("zero-copy").
  virtual const char* copy_mode() const noexcept = 0;
  virtual const std::string& ifname() const noexcept = 0;
  // Receives up to out.size() frames without blocking; returns how many.
  virtual size_t rx_burst(std::span<Frame> out) = 0;
  // Transmits frames (taking them over, see above); returns how many were sent.
  virtual size_t tx_burst(std::span<Frame> frames) = 0;
  // alloc_tx (from FrameAllocator): fresh buffers for generated frames; returns how many.
  // An fd that polls readable when rx_burst may return frames (for blocking waits).
  virtual int wait_fd() const noexcept = 0;
  // Refreshes and returns counters (may make a system call for kernel statistics).
  virtual DeviceStats stats() = 0;
};

// Receives and releases, unprocessed, every frame the device holds for rx_burst now, at most
// `max_frames`; returns how many. For a method that has stopped: what is still queued in its
// devices (a socket's queue, a ring) would otherwise vanish uncounted when they close. The
// frames count in rx_frames like any others; the caller counts them as dropped.
inline uint64_t discard_queued(Device& d, uint64_t max_frames = uint64_t(1) << 20) {
  Frame burst[64];
  uint64_t n = 0;
  while (n < max_frames) {
    const uint64_t room = max_frames - n < 64 ? max_frames - n : 64;
    const size_t k = d.rx_burst({burst, size_t(room)});
    if (k == 0) break;
    for (size_t i = 0; i < k; ++i) burst[i].release();
    n += k;
  }
  return n;
}

}  // namespace ulsnet
