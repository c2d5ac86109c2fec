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
#include "stack/protocols.h"
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
inline constexpr uint32_t kControlVersion = 5;

// The Stack's configuration as plain data (StackConfig holds vectors and strings, which live on
// a process's heap): the loader writes it, the image builds its StackConfig from it.
struct PodIface {
  char name[16];
  uint8_t mac[6];
  uint8_t prefix_len;
  uint8_t pad;
  uint32_t ip;
  uint32_t mtu;
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
  uint8_t verify_udp_checksum, icmp_time_exceeded, pad[2];
  uint32_t icmp_rate_burst;
  uint64_t icmp_rate_interval_ns;
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

// At kControlOff. Ownership tags as in sandbox/region.h ((l) the loader, (i) the image).
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
  uint64_t passes;         // rx bursts taken and handed to Stack::process
  uint64_t last_now_ns;    // the latest upcall's event time
  uint64_t heap_used, heap_allocs;
  uint64_t pool_free;      // buffers on the image's free list now
  StackCounters stack;
  DeviceStats dev[2];
  UlsRingDevice::Counters ring[2];
  UlsBufferPool::Counters pool;
  uint64_t runtime;        // (i) image-private
  // (i) Written as they change, not at the end: the kernel ends an upcall that runs past its
  // budget (uls.budget_ms) wherever it is, and the next upcall must be able to tell what it left.
  // The burst being taken and processed (inflight = 1 from before its frames are taken until
  // the last is processed): its interface, that device's rx ring consumer index, invalid
  // entries and rx count and the Stack's rx_frames before it, and how many of its frames the Stack has
  // finished (each is handed to Stack::process alone, so each finished one is complete in memory).
  uint32_t inflight, inflight_iface;
  uint32_t inflight_rx_cons0, pad2;  // the rx ring's consumer index before the burst
  uint64_t inflight_rx_invalid0, inflight_dev_rx0, inflight_stack_rx0, inflight_done;
  // What ended upcalls left: bursts cut short, and the frames of them the Stack never finished
  // (their buffers are returned to the pool), by kind (is_ipv4_udp_frame); of those, `partial`
  // were cut in the middle of the Stack's work on them.
  uint64_t ended_bursts, ended_udp, ended_other, ended_partial;
  // The Stack's rx_frames minus its finished frames (forwarded + consumed + dropped): 0 until
  // an ended upcall cuts one in the middle, then fixed until the next cut (so a burst's record
  // needs only rx_frames, not the sum of every drop reason).
  uint64_t stack_gap;
  // TX posts an ended upcall cut short (collect: a list handed to its device's tx_burst, then
  // cleared), finished by the next upcall: those that had committed (the list dropped: its
  // frames were the kernel's) and those that had not (the list posted again).
  uint64_t ended_posts_committed, ended_posts_redone;
};

// The kind ended_burst() counts: an Ethernet frame carrying an IPv4 UDP datagram (the stream's
// kind; ARP, ICMP and anything else are "other"). The Stack's in-place rewrites (forwarding,
// answering ARP or echo) keep a frame's kind.
inline bool is_ipv4_udp_frame(const uint8_t* d, uint32_t len) {
  return len >= kEthHeaderLen + kIpv4MinHeaderLen && load_be16(d + 12) == kEtherTypeIpv4 &&
         (d[kEthHeaderLen] >> 4) == 4 && d[kEthHeaderLen + kIpOffProtocol] == kProtoUdp;
}

// What an upcall the kernel ended inside a burst left. The Stack finished frames 0..done-1 of
// `taken`; it was working on frame `done` (whose outcome it had counted, or not: counted) and
// had not begun the rest. Every frame from the first unfinished one on is lost, by kind.
struct EndedBurst {
  uint64_t first_lost = 0;
  uint32_t lost = 0, lost_udp = 0, lost_other = 0;
  bool partial = false;  // the frame cut in the middle is among the lost
};
inline EndedBurst ended_burst(std::span<const Frame> taken, uint64_t done, bool counted) {
  const uint64_t n = taken.size();
  EndedBurst e;
  if (done >= n) {  // cut after the last frame (or an impossible count): nothing lost
    e.first_lost = n;
    return e;
  }
  e.partial = !counted;
  e.first_lost = counted ? done + 1 : done;
  for (uint64_t k = e.first_lost; k < n; ++k) {
    ++e.lost;
    if (is_ipv4_udp_frame(taken[k].data, taken[k].len))
      ++e.lost_udp;
    else
      ++e.lost_other;
  }
  return e;
}

static_assert(sizeof(ImageControl) <= kStackOff - kControlOff);

}  // namespace ulsnet::uls
