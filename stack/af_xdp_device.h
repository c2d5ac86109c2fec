// AF_XDP device backend: frames move between the NIC and user memory (the UMEM) through four
// descriptor rings, with the kernel's protocol processing bypassed.
//
// XskUmem is the packet memory, registered once with the kernel and shared by every AF_XDP
// socket made on it, even on different interfaces. For the sandbox method it is the sandbox
// region's packet-pool area, so a frame received on one interface is forwarded on the other by
// moving its descriptor from one socket's RX ring to the other's TX ring: it is never copied
// in user space. Chunks are fixed size (frame_size); frames the stack generates get a chunk
// with `headroom` free bytes before the data.
//
// Chunk ownership, at any moment exactly one of:
//   free list (XskUmem) -> a socket's fill ring (kernel) -> that socket's RX ring -> a Frame
//   (the holder) -> a socket's TX ring (kernel) -> its completion ring -> free list,
// or Frame -> release() -> free list. A chunk is never in two places; bad or double releases are
// counted (bad_releases) and ignored.
//
// AfXdpDevice is one AF_XDP socket on (interface, queue) plus our steering XDP program on the
// interface (stack/bpf/xsk_steer.bpf.c: only the experiment's frames go to the socket; the rest
// to the kernel). Bind mode: zero-copy where the driver supports it (probed by binding with
// XDP_ZEROCOPY, as the kernel selftests do), copy otherwise (veth, e1000...): the mode in force
// is reported by copy_mode() and mode_reason().
//
// Thread safety: none. One thread owns the umem and all its devices.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "stack/bpf_loader.h"
#include "stack/device.h"

struct xsk_umem;
struct xsk_socket;
struct xsk_ring_prod;
struct xsk_ring_cons;

namespace ulsnet {

struct XskUmemOptions {
  uint32_t frame_size = 2048;  // chunk size (a power of two, 2048 or 4096)
  uint32_t headroom = 256;     // free bytes before data in frames from alloc_tx
  uint32_t fill_size = 4096;   // ring sizes of the first socket's fill/completion rings
  uint32_t comp_size = 4096;
};

class XskUmem final : public FrameOwner, public FrameAllocator {
 public:
  // Registers caller-owned memory (page aligned; stays owned by the caller, must outlive this).
  XskUmem(std::span<uint8_t> memory, const XskUmemOptions& opt = {});
  // Allocates `chunks` chunks itself.
  XskUmem(uint32_t chunks, const XskUmemOptions& opt = {});
  ~XskUmem() override;
  XskUmem(const XskUmem&) = delete;
  XskUmem& operator=(const XskUmem&) = delete;

  size_t alloc_tx(std::span<Frame> out) override;
  void release(const Frame& f) noexcept override;

  uint8_t* base() const noexcept { return base_; }
  uint64_t bytes() const noexcept { return uint64_t(chunks_) * opt_.frame_size; }
  uint32_t chunks() const noexcept { return chunks_; }
  uint32_t available() const noexcept { return uint32_t(free_.size()); }
  uint32_t frame_size() const noexcept { return opt_.frame_size; }
  uint64_t bad_releases() const noexcept { return bad_releases_; }
  bool owns(const Frame& f) const noexcept { return f.owner == this; }

  // Internal to AfXdpDevice.
  bool pop_chunk(uint64_t& addr) noexcept;      // a free chunk's address (offset from base)
  void push_chunk(uint64_t addr) noexcept;      // a chunk back (any address inside it)
  Frame frame_for(uint64_t addr, uint32_t len) noexcept;  // a received frame's view, now held
  void mark_in_kernel(uint64_t addr) noexcept;  // handed to a ring: no longer held
  xsk_umem* handle() const noexcept { return umem_; }
  // The fill/completion rings registered with the umem: the first socket uses them.
  bool take_first_rings(xsk_ring_prod*& fill, xsk_ring_cons*& comp) noexcept;

 private:
  void init(const XskUmemOptions& opt);
  XskUmemOptions opt_;
  uint8_t* base_ = nullptr;
  bool owns_memory_ = false;
  uint32_t chunks_ = 0;
  xsk_umem* umem_ = nullptr;
  std::unique_ptr<xsk_ring_prod> fill0_;
  std::unique_ptr<xsk_ring_cons> comp0_;
  bool first_rings_taken_ = false;
  std::vector<uint32_t> free_;
  std::vector<uint8_t> held_;  // 1 while a Frame holds the chunk
  uint64_t bad_releases_ = 0;
};

struct AfXdpOptions {
  uint32_t queue_id = 0;
  uint32_t rx_size = 2048, tx_size = 2048;       // socket ring sizes (powers of two)
  uint32_t fill_size = 4096, comp_size = 4096;   // for sockets after the first on a umem
  // Buffers this socket keeps on its fill ring at most; 0: rx_size, or half the umem if that is
  // less (two sockets on a umem too small for their rings share it). rx_size is enough: the
  // kernel takes one fill buffer per frame it puts on the RX ring, so a fill ring topped up to
  // rx_size cannot run empty before the RX ring is full. More only parks buffers another socket
  // on the same umem needs (the proxy's outbound side, which receives little, once parked half
  // of it: af_xdp_pair_chunks).
  uint32_t fill_target = 0;
  bool need_wakeup = true;  // XDP_USE_NEED_WAKEUP: kick the kernel only when it asks
  bool busy_poll = false;   // SO_PREFER_BUSY_POLL + SO_BUSY_POLL (+ budget = batch)
  uint32_t batch = 64;
  enum class Bind { kAuto, kZeroCopy, kCopy } bind = Bind::kAuto;
  XdpMode attach = XdpMode::kNative;
  bool skb_fallback = true;  // native refused by the driver (EOPNOTSUPP): attach in skb mode
  // Steering: which frames go to the socket (see stack/bpf/xsk_steer.bpf.c).
  uint16_t steer_udp_port = 0;   // 0: all IPv4 to our MAC
  uint32_t steer_ipv4_dst = 0;   // host order; 0: any
  bool steer_arp = true;
  // The steering program writes each steered IPv4 frame's receive time (bpf_ktime_get_ns(),
  // CLOCK_MONOTONIC) into 8 bytes of XDP metadata in front of it: take_rx_timestamp() reads it.
  bool rx_timestamp = false;
};

// The chunks a umem shared by two sockets with options `o` needs so that neither can starve
// the other: each socket's fill target, its RX ring and the other's TX ring may all be full of
// its frames at once (a burst received while the previous one waits for transmit), 2 x (fill +
// RX + TX); a quarter more stays free for the frames in the stack's hands and the ones it
// generates (AfXdpDevice::refill keeps an eighth of the umem back); rounded up to a power of
// two. Defaults: 2 x 3 x 2048 -> 16384 chunks, 32 MiB.
uint32_t af_xdp_pair_chunks(const AfXdpOptions& o);

struct AfXdpCounters {
  uint64_t steered_ipv4 = 0, steered_arp = 0, passed_to_kernel = 0, redirect_failed = 0;
  uint64_t rx_dropped = 0, rx_ring_full = 0, rx_fill_ring_empty = 0, rx_invalid_descs = 0;
  uint64_t tx_invalid_descs = 0, tx_ring_empty = 0;
  uint64_t wakeups = 0;
  uint64_t tx_completions = 0;  // buffers back on the completion ring
  uint64_t tx_outstanding = 0;  // posted for transmit, not yet completed
  uint64_t rx_no_timestamp = 0;  // rx_timestamp: steered without room for the time
};

class AfXdpDevice final : public Device {
 public:
  // Throws std::runtime_error naming what failed: interface, privilege, XDP attach, bind.
  AfXdpDevice(const std::string& ifname, std::shared_ptr<XskUmem> umem, const AfXdpOptions& opt = {});
  ~AfXdpDevice() override;
  AfXdpDevice(const AfXdpDevice&) = delete;
  AfXdpDevice& operator=(const AfXdpDevice&) = delete;

  const char* kind() const noexcept override { return "af_xdp"; }
  const char* copy_mode() const noexcept override { return zero_copy_ ? "zero-copy" : "copy"; }
  const std::string& ifname() const noexcept override { return ifname_; }
  size_t rx_burst(std::span<Frame> out) override;
  size_t tx_burst(std::span<Frame> frames) override;
  size_t alloc_tx(std::span<Frame> out) override { return umem_->alloc_tx(out); }
  int wait_fd() const noexcept override { return fd_; }
  DeviceStats stats() override;

  AfXdpCounters counters();
  // A received frame's receive time (rx_timestamp), CLOCK_MONOTONIC ns; 0 if it has none. The
  // metadata is cleared as it is read, so that a chunk's next frame cannot show a stale time
  // (the umem's memory starts zeroed). Only for frames of a umem no other program writes into.
  static uint64_t take_rx_timestamp(const Frame& f) noexcept;
  const std::string& mode_reason() const noexcept { return mode_reason_; }
  // Buffers on this socket's fill ring now (given to the kernel for receiving).
  uint32_t fill_pending() const noexcept;
  const std::string& busy_poll_status() const noexcept { return busy_poll_status_; }
  XskUmem& umem() const noexcept { return *umem_; }

 private:
  void refill();
  void reap_completions();
  void kick_tx();

  std::string ifname_;
  std::shared_ptr<XskUmem> umem_;
  AfXdpOptions opt_;
  std::optional<BpfObject> prog_;
  std::optional<XdpAttachment> attach_;
  xsk_socket* xsk_ = nullptr;
  int fd_ = -1;
  std::unique_ptr<xsk_ring_cons> rx_;
  std::unique_ptr<xsk_ring_prod> tx_;
  std::unique_ptr<xsk_ring_prod> own_fill_;
  std::unique_ptr<xsk_ring_cons> own_comp_;
  xsk_ring_prod* fill_ = nullptr;
  xsk_ring_cons* comp_ = nullptr;
  bool zero_copy_ = false;
  std::string mode_reason_, busy_poll_status_;
  // The constructor's second half (bind, steering map, attach), so that it can clean up.
  template <typename Bind>
  void bind_and_attach(const std::string& ifname, const AfXdpOptions& opt, Bind& bind);
  uint32_t tx_outstanding_ = 0;  // descriptors on the TX ring not yet completed
  DeviceStats st_;
  uint64_t wakeups_ = 0;
  uint64_t completions_ = 0;
};

}  // namespace ulsnet
