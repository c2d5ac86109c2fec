#include "stack/af_xdp_device.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <linux/if_xdp.h>
#include <net/if.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <xdp/xsk.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "stack/xsk_steer_bpf.h"

namespace ulsnet {
namespace {

std::string err(const std::string& what, int e) {
  std::string s = what + ": " + std::strerror(e);
  if (e == EPERM || e == EACCES) s += " (needs root, or CAP_NET_RAW, CAP_BPF and CAP_NET_ADMIN)";
  return s;
}

// Mirrors struct steer_config in the BPF program.
struct SteerConfig {
  uint8_t mac[6];
  uint16_t udp_port;
  uint32_t ipv4_dst;
  uint32_t steer_arp;
  uint32_t stamp_rx;
};
static_assert(sizeof(SteerConfig) == 20);

bool interface_mac(const std::string& ifname, uint8_t mac[6]) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return false;
  ifreq r{};
  std::strncpy(r.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
  bool ok = ioctl(s, SIOCGIFHWADDR, &r) == 0;
  close(s);
  if (ok) std::memcpy(mac, r.ifr_hwaddr.sa_data, 6);
  return ok;
}

}  // namespace

// ---- XskUmem ------------------------------------------------------------------------------

XskUmem::XskUmem(std::span<uint8_t> memory, const XskUmemOptions& opt) : opt_(opt) {
  if (reinterpret_cast<uintptr_t>(memory.data()) % 4096 != 0)
    throw std::invalid_argument("AF_XDP umem: memory is not page aligned");
  base_ = memory.data();
  chunks_ = uint32_t(memory.size() / opt.frame_size);
  init(opt);
}

XskUmem::XskUmem(uint32_t chunks, const XskUmemOptions& opt) : opt_(opt) {
  const size_t bytes = size_t(chunks) * opt.frame_size;
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::runtime_error(err("AF_XDP umem: mmap", errno));
  base_ = static_cast<uint8_t*>(p);
  owns_memory_ = true;
  chunks_ = chunks;
  try {
    init(opt);
  } catch (...) {
    munmap(base_, bytes);
    throw;
  }
}

void XskUmem::init(const XskUmemOptions& opt) {
  if (opt.frame_size != 2048 && opt.frame_size != 4096)
    throw std::invalid_argument("AF_XDP umem: frame_size must be 2048 or 4096");
  if (opt.headroom + 64 + 1514 > opt.frame_size)
    throw std::invalid_argument("AF_XDP umem: headroom leaves no room for a frame");
  if (chunks_ < 16) throw std::invalid_argument("AF_XDP umem: fewer than 16 chunks");
  fill0_ = std::make_unique<xsk_ring_prod>();
  comp0_ = std::make_unique<xsk_ring_cons>();
  xsk_umem_config c{};
  c.fill_size = opt.fill_size;
  c.comp_size = opt.comp_size;
  c.frame_size = opt.frame_size;
  c.frame_headroom = 0;
  c.flags = 0;
  if (int rc = xsk_umem__create(&umem_, base_, bytes(), fill0_.get(), comp0_.get(), &c); rc != 0)
    throw std::runtime_error(err("AF_XDP umem: register " + std::to_string(bytes()) + " bytes", -rc));
  free_.reserve(chunks_);
  for (uint32_t i = chunks_; i > 0; --i) free_.push_back(i - 1);
  held_.assign(chunks_, 0);
}

XskUmem::~XskUmem() {
  if (umem_ != nullptr) xsk_umem__delete(umem_);
  if (owns_memory_) munmap(base_, bytes());
}

bool XskUmem::take_first_rings(xsk_ring_prod*& fill, xsk_ring_cons*& comp) noexcept {
  if (first_rings_taken_) return false;
  first_rings_taken_ = true;
  fill = fill0_.get();
  comp = comp0_.get();
  return true;
}

bool XskUmem::pop_chunk(uint64_t& addr) noexcept {
  if (free_.empty()) return false;
  addr = uint64_t(free_.back()) * opt_.frame_size;
  free_.pop_back();
  return true;
}

void XskUmem::push_chunk(uint64_t addr) noexcept {
  const uint64_t i = addr / opt_.frame_size;
  if (i >= chunks_) {
    ++bad_releases_;
    return;
  }
  free_.push_back(uint32_t(i));
}

Frame XskUmem::frame_for(uint64_t addr, uint32_t len) noexcept {
  const uint64_t chunk = addr / opt_.frame_size;
  const uint64_t start = chunk * opt_.frame_size;
  Frame f;
  f.data = base_ + addr;
  f.len = len;
  f.headroom = uint32_t(addr - start);
  f.capacity = uint32_t(start + opt_.frame_size - addr);
  f.handle = uint32_t(chunk);
  f.owner = this;
  held_[chunk] = 1;
  return f;
}

void XskUmem::mark_in_kernel(uint64_t addr) noexcept { held_[addr / opt_.frame_size] = 0; }

size_t XskUmem::alloc_tx(std::span<Frame> out) {
  size_t n = 0;
  for (; n < out.size(); ++n) {
    uint64_t a;
    if (!pop_chunk(a)) break;
    out[n] = frame_for(a + opt_.headroom, 0);
  }
  return n;
}

void XskUmem::release(const Frame& f) noexcept {
  if (f.owner != this || f.handle >= chunks_ || !held_[f.handle]) {
    ++bad_releases_;
    return;
  }
  held_[f.handle] = 0;
  free_.push_back(f.handle);
}

// ---- AfXdpDevice --------------------------------------------------------------------------

AfXdpDevice::AfXdpDevice(const std::string& ifname, std::shared_ptr<XskUmem> umem,
                         const AfXdpOptions& opt)
    : ifname_(ifname), umem_(std::move(umem)), opt_(opt) {
  const int ifindex = int(if_nametoindex(ifname.c_str()));
  if (ifindex == 0) throw std::runtime_error("af_xdp: no such interface '" + ifname + "'");
  // Our steering program first (so the socket can be put in its map), attached last.
  prog_.emplace(kXskSteerBpf, kXskSteerBpfSize, "xsk_steer");
  SteerConfig sc{};
  if (!interface_mac(ifname, sc.mac)) throw std::runtime_error("af_xdp: cannot read the MAC of " + ifname);
  sc.udp_port = htons(opt.steer_udp_port);
  sc.ipv4_dst = htonl(opt.steer_ipv4_dst);
  sc.steer_arp = opt.steer_arp ? 1 : 0;
  sc.stamp_rx = opt.rx_timestamp ? 1 : 0;
  uint32_t zero = 0;
  if (bpf_map_update_elem(prog_->map_fd("steer_config_map"), &zero, &sc, 0) != 0)
    throw std::runtime_error(err("af_xdp: steering config", errno));

  rx_ = std::make_unique<xsk_ring_cons>();
  tx_ = std::make_unique<xsk_ring_prod>();
  if (!umem_->take_first_rings(fill_, comp_)) {
    own_fill_ = std::make_unique<xsk_ring_prod>();
    own_comp_ = std::make_unique<xsk_ring_cons>();
    fill_ = own_fill_.get();
    comp_ = own_comp_.get();
  }
  xsk_socket_config c{};
  c.rx_size = opt.rx_size;
  c.tx_size = opt.tx_size;
  c.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD;
  c.xdp_flags = 0;
  auto bind = [&](uint16_t flags) {
    c.bind_flags = uint16_t(flags | (opt.need_wakeup ? XDP_USE_NEED_WAKEUP : 0));
    int rc = -EBUSY;
    // Rebinding right after another socket on this queue closed can fail with EBUSY for a
    // moment: retry briefly.
    for (int i = 0; i < 20 && rc == -EBUSY; ++i) {
      rc = xsk_socket__create_shared(&xsk_, ifname.c_str(), opt.queue_id, umem_->handle(), rx_.get(),
                                     tx_.get(), fill_, comp_, &c);
      if (rc == -EBUSY) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return rc;
  };
  try {
    bind_and_attach(ifname, opt, bind);
  } catch (...) {
    // A destructor does not run for an object whose constructor threw: the socket (bound to
    // the queue, which a later device may want) goes here.
    attach_.reset();
    if (xsk_ != nullptr) xsk_socket__delete(xsk_);
    xsk_ = nullptr;
    throw;
  }
}

template <typename Bind>
void AfXdpDevice::bind_and_attach(const std::string& ifname, const AfXdpOptions& opt, Bind& bind) {
  int rc = 0;
  if (opt.bind != AfXdpOptions::Bind::kCopy) {
    rc = bind(XDP_ZEROCOPY);
    if (rc == 0) {
      zero_copy_ = true;
      mode_reason_ = "zero-copy: the driver accepted XDP_ZEROCOPY";
    } else if (opt.bind == AfXdpOptions::Bind::kZeroCopy) {
      throw std::runtime_error(err("af_xdp: zero-copy bind on " + ifname + " refused", -rc));
    } else {
      mode_reason_ = "copy: the driver refused XDP_ZEROCOPY (" + std::string(std::strerror(-rc)) + ")";
    }
  } else {
    mode_reason_ = "copy: requested";
  }
  if (!zero_copy_) {
    rc = bind(XDP_COPY);
    if (rc != 0) throw std::runtime_error(err("af_xdp: bind to " + ifname + " queue " + std::to_string(opt.queue_id), -rc));
  }
  fd_ = xsk_socket__fd(xsk_);
  // What the kernel actually did: a socket that shares another socket's umem on another
  // interface is bound in that umem's mode whatever it asked for (xp_assign_dev_shared).
  xdp_options xo{};
  socklen_t xol = sizeof xo;
  if (getsockopt(fd_, SOL_XDP, XDP_OPTIONS, &xo, &xol) == 0) {
    const bool zc = (xo.flags & XDP_OPTIONS_ZEROCOPY) != 0;
    if (zc != zero_copy_)
      mode_reason_ = zc ? "zero-copy: the kernel bound it so (XDP_OPTIONS)"
                        : "copy: it shares the umem of a copy-mode socket, so the kernel bound it in "
                          "copy mode (XDP_OPTIONS)";
    zero_copy_ = zc;
  }
  if (opt.busy_poll) {
    int one = 1, usec = 20, budget = int(opt.batch);
    bool ok = setsockopt(fd_, SOL_SOCKET, SO_PREFER_BUSY_POLL, &one, sizeof one) == 0 &&
              setsockopt(fd_, SOL_SOCKET, SO_BUSY_POLL, &usec, sizeof usec) == 0 &&
              setsockopt(fd_, SOL_SOCKET, SO_BUSY_POLL_BUDGET, &budget, sizeof budget) == 0;
    busy_poll_status_ = ok ? "on" : "refused: " + std::string(std::strerror(errno));
  } else {
    busy_poll_status_ = "off";
  }
  const int map = prog_->map_fd("xsks_map");
  if (bpf_map_update_elem(map, &opt.queue_id, &fd_, 0) != 0)
    throw std::runtime_error(err("af_xdp: socket into the steering map", errno));
  refill();
  try {
    attach_.emplace(prog_->program_fd("xsk_steer"), ifname, opt.attach);
  } catch (const XdpAttachError& e) {
    // A driver without native XDP (e1000, ...): the steering program runs in skb mode, where
    // AF_XDP works in copy mode (said in mode_reason()).
    if (e.err() != EOPNOTSUPP || opt.attach != XdpMode::kNative || !opt.skb_fallback) throw;
    attach_.emplace(prog_->program_fd("xsk_steer"), ifname, XdpMode::kSkb);
    mode_reason_ += "; steering program in skb mode: the driver has no native XDP";
  }
}

AfXdpDevice::~AfXdpDevice() {
  attach_.reset();  // stop steering first: frames go back to the kernel
  if (xsk_ != nullptr) xsk_socket__delete(xsk_);
}

uint32_t AfXdpDevice::fill_pending() const noexcept {
  return fill_->size - xsk_prod_nb_free(fill_, fill_->size);
}

uint32_t af_xdp_pair_chunks(const AfXdpOptions& o) {
  const uint64_t fill = o.fill_target ? o.fill_target : o.rx_size;
  const uint64_t rings = 2 * (fill + o.rx_size + o.tx_size);
  return uint32_t(std::bit_ceil(rings + rings / 4));
}

void AfXdpDevice::refill() {
  uint32_t want = xsk_prod_nb_free(fill_, fill_->size);
  const uint32_t on_ring = fill_->size - want;
  const uint32_t target = opt_.fill_target ? opt_.fill_target : std::min(opt_.rx_size, umem_->chunks() / 2);
  want = on_ring >= target ? 0 : std::min(want, target - on_ring);
  if (want == 0) return;
  // Keep an eighth of the umem free for transmit copies and generated frames (ARP, ICMP).
  const uint32_t reserve = umem_->chunks() / 8;
  const uint32_t spare = umem_->available() > reserve ? umem_->available() - reserve : 0;
  want = std::min(want, spare);
  if (want == 0) {
    ++st_.rx_no_buffer;
    return;
  }
  uint32_t idx;
  const uint32_t n = xsk_ring_prod__reserve(fill_, want, &idx);
  for (uint32_t i = 0; i < n; ++i) {
    uint64_t a = 0;
    umem_->pop_chunk(a);
    *xsk_ring_prod__fill_addr(fill_, idx + i) = a;
  }
  xsk_ring_prod__submit(fill_, n);
}

void AfXdpDevice::reap_completions() {
  uint32_t idx;
  const uint32_t n = xsk_ring_cons__peek(comp_, opt_.comp_size, &idx);
  for (uint32_t i = 0; i < n; ++i) umem_->push_chunk(*xsk_ring_cons__comp_addr(comp_, idx + i));
  if (n > 0) xsk_ring_cons__release(comp_, n);
  completions_ += n;
  tx_outstanding_ -= std::min(tx_outstanding_, n);
}

size_t AfXdpDevice::rx_burst(std::span<Frame> out) {
  reap_completions();
  refill();
  if (opt_.need_wakeup && xsk_ring_prod__needs_wakeup(fill_)) {
    // The kernel stopped filling for lack of fill descriptors: tell it there are some.
    ++st_.syscalls;
    ++wakeups_;
    recvfrom(fd_, nullptr, 0, MSG_DONTWAIT, nullptr, nullptr);
  }
  uint32_t idx;
  const uint32_t n = xsk_ring_cons__peek(rx_.get(), uint32_t(out.size()), &idx);
  for (uint32_t i = 0; i < n; ++i) {
    const xdp_desc* d = xsk_ring_cons__rx_desc(rx_.get(), idx + i);
    out[i] = umem_->frame_for(d->addr, d->len);
    st_.rx_bytes += d->len;
  }
  if (n > 0) xsk_ring_cons__release(rx_.get(), n);
  st_.rx_frames += n;
  return n;
}

void AfXdpDevice::kick_tx() {
  // Copy mode transmits inside sendto, at most 32 frames per call (the kernel's TX batch):
  // kick until the ring is drained or the kernel says it is busy (bounded).
  for (int i = 0; i < 64; ++i) {
    if (opt_.need_wakeup && !xsk_ring_prod__needs_wakeup(tx_.get())) return;
    ++st_.syscalls;
    ++wakeups_;
    ssize_t r = sendto(fd_, nullptr, 0, MSG_DONTWAIT, nullptr, 0);
    if (r < 0 && errno != EAGAIN && errno != EBUSY && errno != ENOBUFS) return;
    // Everything on the ring has been consumed when its consumer caught up with us.
    if (xsk_prod_nb_free(tx_.get(), opt_.tx_size) == opt_.tx_size) return;
    if (r < 0 && errno != EAGAIN) return;
  }
}

size_t AfXdpDevice::tx_burst(std::span<Frame> frames) {
  reap_completions();
  uint32_t idx = 0;
  // reserve() is all or nothing: ask for what is free.
  const uint32_t want = std::min<uint32_t>(uint32_t(frames.size()),
                                           xsk_prod_nb_free(tx_.get(), uint32_t(frames.size())));
  const uint32_t room = want > 0 ? xsk_ring_prod__reserve(tx_.get(), want, &idx) : 0;
  uint32_t queued = 0;
  for (size_t k = 0; k < frames.size(); ++k) {
    Frame& f = frames[k];
    if (queued >= room || f.len < 14 || f.len > 1514 || f.data == nullptr) {
      ++st_.tx_dropped;
      f.release();
      continue;
    }
    uint64_t addr;
    if (umem_->owns(f)) {
      addr = uint64_t(f.data - umem_->base());
      umem_->mark_in_kernel(addr);  // the chunk now belongs to the TX ring
    } else {
      // A buffer from elsewhere: copy it into a chunk (counted; the forwarding path never
      // takes this branch when both devices share the umem).
      uint64_t a;
      if (!umem_->pop_chunk(a)) {
        ++st_.tx_dropped;
        f.release();
        continue;
      }
      addr = a + 256;
      std::memcpy(umem_->base() + addr, f.data, f.len);
      ++st_.copies;
      f.release();
    }
    xdp_desc* d = xsk_ring_prod__tx_desc(tx_.get(), idx + queued);
    d->addr = addr;
    d->len = f.len;
    d->options = 0;
    st_.tx_bytes += f.len;
    ++queued;
  }
  if (room > queued) {
    // Give back the descriptors reserved but not used: the ring's producer only moves by
    // what we submit, so reserving more than we submit is undone by lowering the cache.
    tx_->cached_prod -= room - queued;
  }
  if (queued > 0) {
    xsk_ring_prod__submit(tx_.get(), queued);
    tx_outstanding_ += queued;
    st_.tx_frames += queued;
  }
  // Kick if anything is still on the ring (this burst, or one a busy kernel left behind).
  if (queued > 0 || xsk_prod_nb_free(tx_.get(), opt_.tx_size) < opt_.tx_size) kick_tx();
  return queued;
}

uint64_t AfXdpDevice::take_rx_timestamp(const Frame& f) noexcept {
  uint8_t* meta = f.data - sizeof(uint64_t);
  uint64_t t;
  std::memcpy(&t, meta, sizeof t);
  std::memset(meta, 0, sizeof t);
  return t;
}

AfXdpCounters AfXdpDevice::counters() {
  AfXdpCounters c;
  const int m = prog_->map_fd("steer_counters");
  c.steered_ipv4 = prog_->percpu_sum(m, 0);
  c.steered_arp = prog_->percpu_sum(m, 1);
  c.passed_to_kernel = prog_->percpu_sum(m, 2);
  c.redirect_failed = prog_->percpu_sum(m, 3);
  c.rx_no_timestamp = prog_->percpu_sum(m, 4);
  xdp_statistics s{};
  socklen_t len = sizeof s;
  if (getsockopt(fd_, SOL_XDP, XDP_STATISTICS, &s, &len) == 0) {
    c.rx_dropped = s.rx_dropped;
    c.rx_ring_full = s.rx_ring_full;
    c.rx_fill_ring_empty = s.rx_fill_ring_empty_descs;
    c.rx_invalid_descs = s.rx_invalid_descs;
    c.tx_invalid_descs = s.tx_invalid_descs;
    c.tx_ring_empty = s.tx_ring_empty_descs;
  }
  c.wakeups = wakeups_;
  c.tx_completions = completions_;
  c.tx_outstanding = tx_outstanding_;
  return c;
}

DeviceStats AfXdpDevice::stats() {
  AfXdpCounters c = counters();
  DeviceStats s = st_;
  // Steered to us but dropped by the kernel before our RX ring (ring full, no fill buffer),
  // or steered with no socket to take it.
  s.rx_kernel_drops = c.rx_dropped + c.rx_ring_full + c.redirect_failed;
  return s;
}

}  // namespace ulsnet
