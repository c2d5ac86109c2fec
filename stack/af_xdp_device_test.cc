// The AF_XDP device on veth pairs in a private network namespace: steering, forwarding between
// two interfaces through one shared umem without a copy, memfd-backed (shared) umem memory,
// counted drops, clean teardown, each frame handed over as it arrives.
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "stack/af_packet_device.h"
#include "stack/af_xdp_device.h"
#include "stack/clock.h"
#include "stack/device_factory.h"
#include "stack/net_types.h"
#include "stack/protocols.h"

namespace ulsnet {
namespace {

bool sh(const std::string& cmd) {
  std::string full = "PATH=$PATH:/usr/sbin:/sbin; ( " + cmd + " ) >/dev/null 2>&1";
  return std::system(full.c_str()) == 0;
}

const MacAddr kA = *MacAddr::parse("02:00:00:00:0a:01");  // xa (AF_XDP) <-> pa (test peer)
const MacAddr kB = *MacAddr::parse("02:00:00:00:0b:01");  // xb (AF_XDP) <-> pb (test peer)
const MacAddr kPeer = *MacAddr::parse("02:00:00:00:0f:0f");

// Two veth pairs, xa-pa and xb-pb, in a namespace only this process holds.
std::string make_links() {
  if (geteuid() != 0) return "needs root for AF_XDP, BPF and network namespaces";
  if (unshare(CLONE_NEWNET) != 0) return std::string("unshare(CLONE_NEWNET): ") + std::strerror(errno);
  std::ofstream("/proc/sys/net/ipv6/conf/default/disable_ipv6") << "1\n";
  std::ofstream("/proc/sys/net/ipv6/conf/all/disable_ipv6") << "1\n";
  if (!sh("ip link add xa address " + kA.str() + " type veth peer name pa && ip link add xb address " +
          kB.str() + " type veth peer name pb && for d in xa pa xb pb; do ip link set $d up; done && "
          "ethtool -K pa tx off && ethtool -K pb tx off"))
    return "cannot create veth pairs (iproute2, ethtool)";
  for (int i = 0; i < 200; ++i) {
    if (sh("for d in xa pa xb pb; do ip -o link show $d | grep -q 'state UP' || exit 1; done")) return "";
    usleep(10000);
  }
  return "veth pairs did not come up";
}

#define NEEDS_LINKS()                              \
  do {                                             \
    std::string why = make_links();                \
    if (!why.empty()) GTEST_SKIP() << why;         \
  } while (0)

// An IPv4/UDP frame to `dst` numbered `seq`, from the test peer.
std::vector<uint8_t> udp_frame(const MacAddr& dst, uint64_t seq, uint32_t payload = 64) {
  std::vector<uint8_t> f(14 + 20 + 8 + payload);
  write_eth(f.data(), dst, kPeer, kEtherTypeIpv4);
  write_ipv4(f.data() + 14, *Ipv4Addr::parse("10.9.0.2"), *Ipv4Addr::parse("10.9.0.1"), kProtoUdp,
             uint16_t(20 + 8 + payload), 64);
  uint8_t* u = f.data() + 34;
  store_be16(u, 1000);
  store_be16(u + 2, 2000);
  store_be16(u + 4, uint16_t(8 + payload));
  store_be16(u + 6, 0);
  store_le64(u + 8, seq);
  for (uint32_t i = 8; i < payload; ++i) u[8 + i] = uint8_t(seq + i);
  return f;
}

void send_raw(AfPacketDevice& d, const std::vector<uint8_t>& bytes) {
  Frame f;
  ASSERT_EQ(d.alloc_tx({&f, 1}), 1u);
  std::memcpy(f.data, bytes.data(), bytes.size());
  f.len = uint32_t(bytes.size());
  ASSERT_EQ(d.tx_burst({&f, 1}), 1u);
}

// Receives up to `want` frames within `ms` on an AF_XDP device; the caller releases them.
std::vector<Frame> receive(Device& d, size_t want, int ms = 2000) {
  std::vector<Frame> got, rx(64);
  const uint64_t deadline = monotonic_ns() + uint64_t(ms) * 1'000'000;
  while (got.size() < want && monotonic_ns() < deadline) {
    size_t n = d.rx_burst({rx.data(), std::min(rx.size(), want - got.size())});
    got.insert(got.end(), rx.begin(), rx.begin() + long(n));
    if (n == 0) usleep(200);
  }
  return got;
}

bool has_xdp(const char* dev) { return sh(std::string("ip link show ") + dev + " | grep -q xdp"); }

TEST(AfXdp, ExperimentFramesAreSteeredOthersGoToTheKernel) {
  NEEDS_LINKS();
  auto umem = std::make_shared<XskUmem>(4096);
  AfXdpDevice x("xa", umem);
  EXPECT_STREQ(x.kind(), "af_xdp");
  EXPECT_STREQ(x.copy_mode(), "copy") << x.mode_reason();  // veth has no zero-copy AF_XDP
  EXPECT_NE(x.mode_reason().find("XDP_ZEROCOPY"), std::string::npos) << x.mode_reason();
  EXPECT_TRUE(has_xdp("xa"));
  AfPacketDevice peer("pa", 64);
  for (uint64_t s = 0; s < 50; ++s) send_raw(peer, udp_frame(kA, s, 64 + uint32_t(s)));
  send_raw(peer, udp_frame(kPeer, 999));  // another host's MAC: not ours
  std::vector<uint8_t> v6 = udp_frame(kA, 998);
  store_be16(v6.data() + 12, 0x86dd);     // IPv6 (ethertype only): not the experiment's
  send_raw(peer, v6);
  std::vector<Frame> got = receive(x, 60, 1000);
  ASSERT_EQ(got.size(), 50u);
  for (size_t i = 0; i < got.size(); ++i) {
    const Frame& f = got[i];
    EXPECT_EQ(f.len, 14 + 20 + 8 + 64 + i);
    EXPECT_EQ(load_le64(f.data + 42), i);
    EXPECT_TRUE(f.data >= umem->base() && f.data + f.len <= umem->base() + umem->bytes());
    EXPECT_GE(f.headroom, 256u);  // the kernel's XDP headroom is ours to use
    f.release();
  }
  AfXdpCounters c = x.counters();
  EXPECT_EQ(c.steered_ipv4, 50u);
  EXPECT_EQ(c.passed_to_kernel, 2u);
  EXPECT_EQ(c.redirect_failed, 0u);
  DeviceStats s = x.stats();
  EXPECT_EQ(s.rx_frames, 50u);
  EXPECT_EQ(s.rx_kernel_drops, 0u);
  EXPECT_EQ(umem->bad_releases(), 0u);
}

// At a low rate each frame is handed over as it arrives (the af_packet devices' test of the same
// name in packet_devices_test.cc says why this is worth a test): the delay from send to
// rx_burst, waking from poll(), is printed; the median must be under 1 ms.
TEST(AfXdp, AnIdleDeviceHandsOverEachFrameAsItArrives) {
  NEEDS_LINKS();
  auto umem = std::make_shared<XskUmem>(4096);
  AfXdpDevice x("xa", umem);
  AfPacketDevice peer("pa", 64);
  std::vector<uint64_t> delays;
  std::vector<Frame> rx(8);
  for (uint64_t seq = 0; seq < 21; ++seq) {
    usleep(10000);
    const std::vector<uint8_t> f = udp_frame(kA, seq);
    const uint64_t t0 = monotonic_ns();
    send_raw(peer, f);
    size_t n = 0;
    while (n == 0 && monotonic_ns() - t0 < 1'000'000'000ull) {
      pollfd p{x.wait_fd(), POLLIN, 0};
      poll(&p, 1, 100);
      n = x.rx_burst(rx);
    }
    const uint64_t t1 = monotonic_ns();
    ASSERT_EQ(n, 1u) << "frame " << seq << " not received within 1 s";
    EXPECT_EQ(load_le64(rx[0].data + 42), seq);
    rx[0].release();
    delays.push_back(t1 - t0);
  }
  std::sort(delays.begin(), delays.end());
  std::printf("af_xdp: send -> rx_burst at 100 frames/s: min %.1f us, median %.1f us, max %.1f us\n",
              delays.front() / 1e3, delays[delays.size() / 2] / 1e3, delays.back() / 1e3);
  EXPECT_LT(delays[delays.size() / 2], 1'000'000u);
}

TEST(AfXdp, ForwardsBetweenInterfacesThroughOneSharedMemfdUmemWithoutCopying) {
  NEEDS_LINKS();
  // Shared memory, as the sandbox region's pool is: a memfd mapped MAP_SHARED.
  const size_t bytes = 8192 * 2048;
  int fd = memfd_create("umem-test", MFD_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, off_t(bytes)), 0);
  void* mem = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ASSERT_NE(mem, MAP_FAILED);
  {
    auto umem = std::make_shared<XskUmem>(std::span<uint8_t>(static_cast<uint8_t*>(mem), bytes));
    AfXdpDevice a("xa", umem), b("xb", umem);
    // Both really are in copy mode (veth), the second too although its zero-copy bind "worked":
    // a shared-umem socket takes the umem's mode (the kernel's XDP_OPTIONS says which).
    EXPECT_STREQ(a.copy_mode(), "copy") << a.mode_reason();
    EXPECT_STREQ(b.copy_mode(), "copy") << b.mode_reason();
    AfPacketDevice in("pa", 64), out("pb", 512);
    constexpr uint64_t kCount = 400;
    std::map<uint64_t, int> seen;
    uint64_t bad = 0, sent = 0;
    std::vector<Frame> rx(64);
    for (uint64_t s = 0; s < kCount; s += 40) {
      for (uint64_t k = s; k < s + 40; ++k) send_raw(in, udp_frame(kA, k, 100));
      const uint64_t deadline = monotonic_ns() + 2'000'000'000ull;
      uint64_t moved = 0;
      while (moved < 40 && monotonic_ns() < deadline) {
        size_t n = a.rx_burst(rx);
        for (size_t i = 0; i < n; ++i) {
          // Rewrite in place (as the Stack does) and move the descriptor to b's TX ring.
          write_eth(rx[i].data, kPeer, kB, kEtherTypeIpv4);
        }
        sent += b.tx_burst({rx.data(), n});
        moved += n;
        if (n == 0) usleep(200);
      }
      // The far side of b.
      std::vector<Frame> o(64);
      const uint64_t d2 = monotonic_ns() + 2'000'000'000ull;
      size_t got = 0;
      while (got < 40 && monotonic_ns() < d2) {
        size_t n = out.rx_burst(o);
        for (size_t i = 0; i < n; ++i) {
          const Frame& f = o[i];
          uint64_t seq = load_le64(f.data + 42);
          bool ok = f.len == 14 + 20 + 8 + 100 && std::memcmp(f.data, kPeer.b.data(), 6) == 0;
          for (uint32_t j = 8; ok && j < 100; ++j) ok = f.data[42 + j] == uint8_t(seq + j);
          if (ok) ++seen[seq]; else ++bad;
          f.release();
        }
        got += n;
        if (n == 0) usleep(200);
      }
    }
    EXPECT_EQ(sent, kCount);
    EXPECT_EQ(seen.size(), kCount);
    EXPECT_EQ(bad, 0u);
    for (auto& [seq, n] : seen) EXPECT_EQ(n, 1) << seq;
    EXPECT_EQ(a.stats().copies + b.stats().copies, 0u) << "a forwarded frame was copied in user space";
    EXPECT_EQ(b.stats().tx_frames, kCount);
    EXPECT_EQ(b.stats().tx_dropped, 0u);
    EXPECT_EQ(umem->bad_releases(), 0u);
    // Every chunk comes back: nothing leaked in the rings (after completions are reaped).
    std::vector<Frame> none(1);
    a.rx_burst(none);
    b.rx_burst(none);
  }
  munmap(mem, bytes);
  close(fd);
  EXPECT_FALSE(has_xdp("xa")) << "the steering program outlived its device";
  EXPECT_FALSE(has_xdp("xb"));
}

TEST(AfXdp, ForeignFramesAreCopiedAndCountedBadFramesAreDropped) {
  NEEDS_LINKS();
  auto umem = std::make_shared<XskUmem>(4096);
  AfXdpDevice x("xa", umem);
  AfPacketDevice peer("pa", 64);
  PacketPool other(8);
  std::vector<Frame> f(3);
  ASSERT_EQ(other.alloc(f), 3u);
  std::vector<uint8_t> bytes = udp_frame(kPeer, 7);
  for (int i = 0; i < 2; ++i) {
    std::memcpy(f[size_t(i)].data, bytes.data(), bytes.size());
    f[size_t(i)].len = uint32_t(bytes.size());
  }
  f[2].len = 10;  // shorter than an Ethernet header
  EXPECT_EQ(x.tx_burst(f), 2u);
  DeviceStats s = x.stats();
  EXPECT_EQ(s.copies, 2u);
  EXPECT_EQ(s.tx_dropped, 1u);
  EXPECT_EQ(other.available(), 8u);  // every foreign frame was released
  std::vector<Frame> got(8);
  uint64_t deadline = monotonic_ns() + 1'000'000'000ull;
  size_t n = 0;
  while (n < 2 && monotonic_ns() < deadline) {
    size_t k = peer.rx_burst(got);
    for (size_t i = 0; i < k; ++i) got[i].release();
    n += k;
    if (k == 0) usleep(200);
  }
  EXPECT_EQ(n, 2u);
  // A double release is counted, not acted on.
  Frame g;
  ASSERT_EQ(umem->alloc_tx({&g, 1}), 1u);
  const uint32_t avail = umem->available();
  g.release();
  g.release();
  EXPECT_EQ(umem->available(), avail + 1);
  EXPECT_EQ(umem->bad_releases(), 1u);
}

TEST(AfXdp, ClearErrorsForABadInterfaceAndAnOccupiedOne) {
  NEEDS_LINKS();
  auto umem = std::make_shared<XskUmem>(1024);
  try {
    AfXdpDevice x("nope0", umem);
    FAIL() << "opened a missing interface";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("no such interface"), std::string::npos) << e.what();
  }
  AfXdpDevice first("xa", umem);
  auto umem2 = std::make_shared<XskUmem>(1024);
  try {
    AfXdpDevice second("xa", umem2);
    FAIL() << "a second steering program replaced the first";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("xa"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(has_xdp("xa"));
}

// Two sockets sharing a umem share its buffers: neither parks more than its fill target on its
// fill ring (by default its RX ring's size, and never more than half the umem: here, a umem
// smaller than the two sockets' rings, half of it). Before, the outbound side of a proxy, which
// receives next to nothing, swallowed every buffer its completions returned, and the inbound
// side starved (on e1000, whose completions arrive late, after 3584 frames).
TEST(AfXdp, SocketsSharingAUmemKeepOnlyTheirShareOnTheirFillRings) {
  NEEDS_LINKS();
  auto umem = std::make_shared<XskUmem>(1024);
  AfXdpDevice a("xa", umem), b("xb", umem);
  std::vector<Frame> rx(64);
  for (int i = 0; i < 10; ++i) {
    a.rx_burst(rx);
    b.rx_burst(rx);
  }
  EXPECT_LE(a.fill_pending(), 512u);
  EXPECT_LE(b.fill_pending(), 512u);
  EXPECT_GT(b.fill_pending(), 0u) << "the second socket is not starved";
}

// A proxy's two sockets (make_device_pair) get a umem that holds both sockets' fill targets, RX
// rings and TX rings at once and still has the refill reserve free: neither can starve the
// other. The umem once held 8192 chunks: the first socket parked 4096 on its fill ring, the
// second 3072, and every frame in flight then came out of the reserve (a TCP stream through the
// sandbox found it empty hundreds of times: bench/router_test). Memory too small for that is
// refused with the size it needs.
TEST(AfXdp, AProxysSocketPairHasBuffersForBothSocketsRingsAtOnce) {
  NEEDS_LINKS();
  DeviceOptions o;
  DevicePair p = make_device_pair("af_xdp", "xa", "xb", o);
  ASSERT_TRUE(p.umem);
  auto* a = static_cast<AfXdpDevice*>(p.dev[0].get());
  auto* b = static_cast<AfXdpDevice*>(p.dev[1].get());
  std::vector<Frame> rx(64);
  for (int i = 0; i < 4; ++i) {
    a->rx_burst(rx);
    b->rx_burst(rx);
  }
  const AfXdpOptions d;  // the rings make_device_pair gives them
  EXPECT_EQ(a->fill_pending(), d.rx_size);
  EXPECT_EQ(b->fill_pending(), d.rx_size);
  // Both RX rings and both TX rings full of frames in flight, and the reserve (an eighth) free.
  EXPECT_GE(p.umem->available(), 2 * (d.rx_size + d.tx_size) + p.umem->chunks() / 8)
      << p.umem->chunks() << " chunks";
  EXPECT_EQ(af_xdp_pair_umem_bytes(o), uint64_t(p.umem->chunks()) * kAfXdpChunkBytes);
  p = {};

  std::vector<uint8_t> small(size_t(8192) * kAfXdpChunkBytes + 4096);
  auto* page = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(small.data()) + 4095) & ~uintptr_t(4095));
  try {
    make_device_pair("af_xdp", "xa", "xb", o, {page, size_t(8192) * kAfXdpChunkBytes});
    FAIL() << "a umem of 8192 chunks was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("8192 chunks"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(std::to_string(af_xdp_pair_umem_bytes(o) / kAfXdpChunkBytes)),
              std::string::npos) << e.what();
  }
}

// A driver without native XDP (a bridge or dummy here, e1000 in the VMs): the steering program
// goes to skb mode, AF_XDP runs in copy mode, and mode_reason() says so; asked not to fall back,
// it refuses.
TEST(AfXdp, WithoutNativeXdpTheSteeringProgramFallsBackToSkbMode) {
  NEEDS_LINKS();
  if (!sh("ip link add dm0 type bridge || ip link add dm0 type dummy") || !sh("ip link set dm0 up"))
    GTEST_SKIP() << "neither bridge nor dummy interfaces here (CONFIG_BRIDGE, CONFIG_DUMMY)";
  {
    // (Its own umem, gone with this scope: the first socket of a umem shares the umem's fd,
    // which keeps the queue bound until the umem is deleted.)
    auto umem = std::make_shared<XskUmem>(1024);
    AfXdpOptions strict;
    strict.skb_fallback = false;
    try {
      AfXdpDevice x("dm0", umem, strict);
      GTEST_SKIP() << "this kernel's dm0 driver has native XDP";
    } catch (const XdpAttachError& e) {
      EXPECT_EQ(e.err(), EOPNOTSUPP) << e.what();
    }
  }
  auto umem2 = std::make_shared<XskUmem>(1024);
  AfXdpDevice d("dm0", umem2);
  EXPECT_STREQ(d.copy_mode(), "copy");
  EXPECT_NE(d.mode_reason().find("skb mode"), std::string::npos) << d.mode_reason();
  EXPECT_TRUE(has_xdp("dm0"));
}

}  // namespace
}  // namespace ulsnet
