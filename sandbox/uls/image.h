// The sandbox image: the project's Stack, built freestanding (no C library, no exceptions), to
// run inside the ULS kernel's sandbox region as an extension (kernel/patches/0003-0005).
//
// The kernel runs the image by upcalls, in whatever process is current when an event comes:
// frames on a bound e1000 interface (patch 0005) or a raise by its loader. So everything it
// touches is in the region, at the same address in every process: its code (linked at
// kImageAddress, image.ld), its stack, its heap (the Stack's vectors and strings; image_runtime.cc),
// the descriptor rings of two interfaces and their 2 KiB buffers, and the control block below,
// through which the loader (uls_host.h) configures it and reads its counters.
//
// Region layout (offsets from ULS_REGION_BASE; the kernel's default 4 MiB region holds it):
//   0x000000  ImageControl            the loader writes it, then only the image does
//   0x010000  the extension's stack   64 KiB
//   0x020000  rings of interface 0    struct uls_net_rings
//   0x024000  rings of interface 1
//   0x040000  the image               at most 256 KiB of code and data
//   0x080000  the image's heap        512 KiB
//   0x100000  the buffer pool         1024 x 2 KiB
#pragma once

#include <linux/uls.h>

#include <cstdint>

#include "stack/device.h"
#include "stack/stack.h"
#include "stack/uls_ring_device.h"

namespace ulsnet::uls {

inline constexpr uint64_t kControlOff = 0x000000;
inline constexpr uint64_t kStackOff = 0x010000, kStackBytes = 0x10000;
inline constexpr uint64_t kRingsOff[2] = {0x020000, 0x024000};
inline constexpr uint64_t kImageOff = 0x040000, kImageMaxBytes = 0x40000;
inline constexpr uint64_t kHeapOff = 0x080000, kHeapBytes = 0x80000;
inline constexpr uint64_t kPoolOff = 0x100000;
inline constexpr uint32_t kPoolBuffers = 1024;
inline constexpr uint64_t kRegionBytesNeeded = kPoolOff + uint64_t(kPoolBuffers) * ULS_NET_BUF_SIZE;
// Where image.ld links the image: its code holds absolute addresses (vtables), so it runs only
// there -- which is the point of a region at the same address in every process.
inline constexpr uint64_t kImageAddress = ULS_REGION_BASE + kImageOff;
static_assert(sizeof(uls_net_rings) <= kRingsOff[1] - kRingsOff[0]);
static_assert(kRingsOff[1] + sizeof(uls_net_rings) <= kImageOff);

inline constexpr uint64_t kControlMagic = 0x31474d4953534c55ull;  // "ULSSIMG1"
inline constexpr uint32_t kControlVersion = 1;

// The Stack's configuration as plain data (StackConfig holds vectors and strings, which live on
// a process's heap): the loader writes it, the image builds its StackConfig from it.
struct PodIface {
  char name[16];
  uint8_t mac[6];
  uint8_t prefix_len;
  uint8_t pad;
  uint32_t ip;
};
struct PodRelay {
  uint16_t listen_port, to_port;
  uint32_t to_ip;
};
struct PodNeighbor {
  uint32_t ip;
  uint8_t mac[6];
  uint16_t pad;
};
struct PodStackConfig {
  uint32_t mode;  // ForwardMode
  uint32_t n_ifaces, n_relays, n_neighbors;
  PodIface ifaces[2];
  PodRelay relays[16];
  PodNeighbor neighbors[16];
  uint64_t arp_ttl_ns;
  uint8_t verify_udp_checksum, icmp_time_exceeded, pad[6];
};

// Plain data -> StackConfig; interface i generates frames from allocators[i].
StackConfig from_pod(const PodStackConfig& p, FrameAllocator* const allocators[2]);
#if __cpp_exceptions
// StackConfig -> plain data. Throws std::invalid_argument if it does not fit (not exactly two
// interfaces, too many relays or neighbours, a name too long).
PodStackConfig to_pod(const StackConfig& c);
#endif

enum class Phase : uint32_t {
  kLoaded = 0,   // written by the loader; the first upcall builds the Stack
  kRunning = 1,  // the Stack is built; upcalls forward
  kFailed = 2,   // the image stopped (error[] says why); upcalls return at once
};

// At kControlOff. (l): written by the loader before registering; (i): by the image, in upcalls.
struct ImageControl {
  uint64_t magic;          // (l) kControlMagic
  uint32_t version;        // (l) kControlVersion
  Phase phase;             // (l) kLoaded, then (i)
  uint64_t image_address;  // (l) where it loaded the image
  uint32_t burst;          // (l) frames per Stack::process call (1..64)
  uint32_t fill_target;    // (l) fill ring depth per interface (1..ULS_NET_RING_SIZE)
  uint32_t reserve;        // (l) free buffers kept for frames the Stack generates
  uint32_t pad;
  PodStackConfig config;   // (l)
  char error[160];         // (i) why kFailed
  // (i) Copied at the end of every upcall.
  uint64_t upcalls;        // upcalls that ran the Stack
  uint64_t passes;         // rx bursts handed to Stack::process
  uint64_t last_now_ns;    // the latest upcall's event time
  uint64_t heap_used, heap_allocs;
  uint64_t pool_free;      // buffers on the image's free list now
  StackCounters stack;
  DeviceStats dev[2];
  UlsRingDevice::Counters ring[2];
  UlsBufferPool::Counters pool;
  uint64_t runtime;        // (i) image-private
};
static_assert(sizeof(ImageControl) <= kStackOff - kControlOff);

}  // namespace ulsnet::uls
