// The sandbox image itself -- the freestanding build of the Stack, its runtime and its entry --
// run in this process at its region address, with the test playing the kernel's side of the
// rings (as patch 0005's driver does). What the three-VM test shows end to end on the real ULS
// kernel, this shows on any machine: the image builds its Stack on its own heap in the region,
// forwards in place, answers and sends ARP, keeps every buffer, and reports a bad configuration
// instead of running with it.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <random>

#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "sandbox/uls/image.h"
#include "sandbox/uls/stack_image_blob.h"
#include "sandbox/uls/uls_host.h"
#include "stack/protocols.h"
#include "stack/test_frames.h"

namespace ulsnet::uls {
namespace {

using ulsnet::testing::ip;
using ulsnet::testing::mac;
constexpr uint32_t kMask = ULS_NET_RING_SIZE - 1;
constexpr size_t kRegionBytes = 4 << 20;

using Entry = void (*)(ImageControl*, uint64_t, uint64_t);

class Image : public ::testing::Test {
 protected:
  void SetUp() override {
    // Shared, so that what a death test's child writes is seen here.
    void* p = mmap(reinterpret_cast<void*>(ULS_REGION_BASE), kRegionBytes,
                   PROT_READ | PROT_WRITE | PROT_EXEC,
                   MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    ASSERT_EQ(p, reinterpret_cast<void*>(ULS_REGION_BASE)) << std::strerror(errno);
    base_ = static_cast<uint8_t*>(p);
    ASSERT_LE(sizeof kStackImage, kImageMaxBytes);
    std::memcpy(base_ + kImageOff, kStackImage, sizeof kStackImage);
    ctl_ = reinterpret_cast<ImageControl*>(base_ + kControlOff);
  }
  void TearDown() override {
    if (base_) munmap(base_, kRegionBytes);
  }

  static HostOptions router() {
    HostOptions o;
    o.stack.mode = ForwardMode::kRouter;
    o.stack.ifaces = {{"eth0", mac(1), ip("10.201.1.2"), 24, nullptr},
                      {"eth1", mac(2), ip("10.201.2.1"), 24, nullptr}};
    o.fill_target = 64;
    o.reserve = 8;
    return o;
  }
  void load(const ImageControl& c) { std::memcpy(ctl_, &c, sizeof c); }
  void upcall(uint64_t now_ns = 1000) {
    reinterpret_cast<Entry>(kStackImageMain)(ctl_, now_ns, 1);
  }
  uls_net_rings* rings(int i) { return reinterpret_cast<uls_net_rings*>(base_ + kRingsOff[i]); }
  // The driver: a frame into the next fill buffer of interface i, posted on its rx ring.
  bool receive(int i, const Frame& f) {
    uls_net_rings* r = rings(i);
    if (r->fill.consumer == r->fill.producer) return false;
    const uint32_t off = r->fill.desc[r->fill.consumer++ & kMask].off;
    std::memcpy(base_ + off, f.data, f.len);
    r->rx.desc[r->rx.producer & kMask] = {off, uint16_t(f.len), 0};
    ++r->rx.producer;
    return true;
  }
  // The driver sends everything on interface i's tx ring and returns the buffers.
  std::vector<uls_desc> transmit(int i) {
    uls_net_rings* r = rings(i);
    std::vector<uls_desc> out;
    while (r->tx.consumer != r->tx.producer) {
      uls_desc d = r->tx.desc[r->tx.consumer++ & kMask];
      out.push_back(d);
      r->comp.desc[r->comp.producer++ & kMask] = {d.off, d.len, 0};
    }
    return out;
  }
  uint32_t on_fill(int i) { return rings(i)->fill.producer - rings(i)->fill.consumer; }

  uint8_t* base_ = nullptr;
  ImageControl* ctl_ = nullptr;
  ulsnet::testing::PoolAllocator scratch_;
};

TEST_F(Image, TheFirstUpcallBuildsTheStackOnTheRegionHeapAndStocksTheFillRings) {
  load(initial_control(router()));
  upcall();
  ASSERT_EQ(ctl_->phase, Phase::kRunning) << ctl_->error;
  EXPECT_EQ(on_fill(0), 64u);
  EXPECT_EQ(on_fill(1), 64u);
  EXPECT_EQ(ctl_->pool_free, kPoolBuffers - 128u);
  EXPECT_GT(ctl_->heap_used, 0u);
  EXPECT_GT(ctl_->heap_allocs, 0u);
  // The Stack and its tables are in the region's heap, not in this process's.
  const uint64_t rt = ctl_->runtime;
  EXPECT_GE(rt, ULS_REGION_BASE + kHeapOff);
  EXPECT_LT(rt, ULS_REGION_BASE + kHeapOff + kHeapBytes);
}

TEST_F(Image, ForwardsInPlaceAnswersArpAndKeepsEveryBuffer) {
  HostOptions o = router();
  load(initial_control(o));
  upcall();
  ASSERT_EQ(ctl_->phase, Phase::kRunning) << ctl_->error;

  // The sender asks for the proxy's MAC; then sends 100 datagrams to the receiver, whose MAC the
  // Stack has to find out itself (ARP request on eth1; the first datagram waits in no queue: it
  // is a counted drop, as in every other method).
  Frame a = ulsnet::testing::arp_frame(scratch_.pool, kArpRequest, MacAddr::broadcast(), mac(10),
                                       ip("10.201.1.1"), MacAddr{}, ip("10.201.1.2"));
  ASSERT_TRUE(receive(0, a));
  a.release();
  Frame first = ulsnet::testing::udp_frame(scratch_.pool, mac(1), mac(10), ip("10.201.1.1"),
                                           ip("10.201.2.2"), 5000, 9000, 18);
  ASSERT_TRUE(receive(0, first));
  first.release();
  upcall();
  auto arp_reply = transmit(0);
  ASSERT_EQ(arp_reply.size(), 1u);
  EXPECT_EQ(load_be16(base_ + arp_reply[0].off + 20), kArpReply);
  auto arp_req = transmit(1);
  ASSERT_EQ(arp_req.size(), 1u);
  EXPECT_EQ(load_be16(base_ + arp_req[0].off + 20), kArpRequest);
  EXPECT_EQ(ctl_->stack.drops[DropReason::kNoArpEntry], 1u);

  // The receiver answers.
  Frame rep = ulsnet::testing::arp_frame(scratch_.pool, kArpReply, mac(2), mac(20), ip("10.201.2.2"),
                                         mac(2), ip("10.201.2.1"));
  ASSERT_TRUE(receive(1, rep));
  rep.release();
  upcall();

  std::vector<uint32_t> offs;
  for (uint32_t i = 0; i < 60; ++i) {
    Frame f = ulsnet::testing::udp_frame(scratch_.pool, mac(1), mac(10), ip("10.201.1.1"),
                                         ip("10.201.2.2"), 5000, 9000, 18 + i);
    offs.push_back(rings(0)->fill.desc[rings(0)->fill.consumer & kMask].off);
    ASSERT_TRUE(receive(0, f));
    f.release();
  }
  upcall(2000);
  auto out = transmit(1);
  ASSERT_EQ(out.size(), 60u);
  for (uint32_t i = 0; i < 60; ++i) {
    EXPECT_EQ(out[i].off, offs[i]) << "forwarded in the buffer it was received into";
    const uint8_t* p = base_ + out[i].off;
    EXPECT_EQ(std::memcmp(p, mac(20).b.data(), 6), 0);
    EXPECT_EQ(std::memcmp(p + 6, mac(2).b.data(), 6), 0);
    EXPECT_EQ(p[kEthHeaderLen + 8], 63);
  }
  EXPECT_EQ(ctl_->stack.forwarded, 60u);
  EXPECT_EQ(ctl_->dev[1].tx_frames, 60u + 1u);
  EXPECT_EQ(ctl_->dev[0].copies + ctl_->dev[1].copies, 0u);

  // Completions come back; every buffer is free or on a fill ring again.
  upcall(3000);
  EXPECT_EQ(ctl_->pool_free + on_fill(0) + on_fill(1), kPoolBuffers);
  EXPECT_EQ(ctl_->pool.overflow, 0u);
  EXPECT_EQ(ctl_->pool.bad_release, 0u);
  EXPECT_EQ(ctl_->ring[1].comp_sent, 61u);
  // Every frame the Stack received is accounted for.
  const StackCounters& s = ctl_->stack;
  EXPECT_EQ(s.rx_frames, s.forwarded + s.consumed + s.drops.total());
}

// The kernel ends an upcall that runs past its budget wherever it is. Here a child process runs
// the upcall and a timer kills it at a random instant (the region is shared, so the child's
// writes stay, as a real ended upcall's do); the next upcall, in this process, must name what
// the cut burst left by kind, give its buffers back, and go on. Frame k of every 64 is ICMP when
// k % 4 == 3 and UDP otherwise, so the kinds of the last L frames of a burst are known.
TEST_F(Image, WhatAnUpcallEndedInsideABurstLeftIsNamedByKindAndItsBuffersComeBack) {
  HostOptions o = router();
  o.stack.neighbors = {{ip("10.201.2.2"), mac(20)}};
  o.burst = 64;
  o.fill_target = ULS_NET_RING_SIZE;
  load(initial_control(o));
  upcall();
  ASSERT_EQ(ctl_->phase, Phase::kRunning) << ctl_->error;
  auto queue_ring = [&] {
    uint32_t k = 0;
    for (; k < ULS_NET_RING_SIZE; ++k) {
      Frame f = k % 4 == 3 ? ulsnet::testing::icmp_echo_frame(scratch_.pool, mac(1), mac(10), ip("10.201.1.1"),
                                                               ip("10.201.2.2"))
                           : ulsnet::testing::udp_frame(scratch_.pool, mac(1), mac(10), ip("10.201.1.1"),
                                                        ip("10.201.2.2"), 5000, 9000, 18);
      const bool ok = receive(0, f);
      f.release();
      if (!ok) break;
    }
    return k;
  };
  auto drain = [&](uint64_t now) {
    upcall(now);
    transmit(0);
    transmit(1);
    upcall(now + 1);  // takes the completions back
  };
  // How long an upcall of a full ring takes here: the timer's range.
  ASSERT_EQ(queue_ring(), ULS_NET_RING_SIZE);
  const auto t0 = std::chrono::steady_clock::now();
  upcall(2000);
  const auto span_us = std::max<int64_t>(
      2, std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count());
  transmit(1);
  upcall(2001);

  uint64_t cut = 0, expect_udp = 0, expect_other = 0, exited = 0, killed_outside = 0, cuts = 0;
  std::mt19937 rng(7);
  for (int attempt = 0; attempt < 2000 && cut < 5; ++attempt) {
    ASSERT_EQ(queue_ring(), ULS_NET_RING_SIZE);
    const uint64_t udp0 = ctl_->ended_udp, other0 = ctl_->ended_other, bursts0 = ctl_->ended_bursts;
    const int delay = std::uniform_int_distribution<int>(1, int(span_us) * 3 / 2 + 1)(rng);
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      // A child maps a shared region's pages anew on first touch, and copies its stack's: fault
      // them in first, so the timer measures the upcall and not the faults.
      for (size_t off = 0; off < kRegionBytes; off += 4096) (void)*reinterpret_cast<volatile uint8_t*>(base_ + off);
      volatile uint8_t stack_pages[64 * 1024];
      for (size_t off = 0; off < sizeof stack_pages; off += 4096) stack_pages[off] = 1;
      itimerval it{};
      it.it_value.tv_usec = delay;
      setitimer(ITIMER_REAL, &it, nullptr);  // SIGALRM's default action ends the process
      upcall(3000);
      _exit(0);
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    const bool inside = ctl_->inflight != 0;
    // The cut burst's interface and ring positions (its frames are cons0..cut_at-1).
    const uint32_t cut_iface = ctl_->inflight_iface, cons0 = ctl_->inflight_rx_cons0;
    const uint32_t cut_at = rings(0)->rx.consumer;
    if (WIFEXITED(status)) ++exited;
    else if (!inside) ++killed_outside;
    // What the Stack finished of the cut burst, and what the device took: before recovery.
    drain(4000 + attempt);
    EXPECT_EQ(ctl_->inflight, 0u);
    if (inside) {
      EXPECT_EQ(ctl_->ended_bursts, bursts0 + 1);
      const uint64_t lost_udp = ctl_->ended_udp - udp0, lost_other = ctl_->ended_other - other0;
      const uint64_t lost = lost_udp + lost_other;
      if (cut_iface == 1) { ASSERT_EQ(lost, 0u); }  // eth1 receives nothing here
      ASSERT_LE(lost, uint32_t(cut_at - cons0));
      // The lost are the last `lost` of the frames the cut burst had taken off the ring (ring
      // position p holds frame p % 256 of its attempt: ICMP when p % 4 == 3).
      uint64_t icmp = 0;
      for (uint32_t p = cut_at - uint32_t(lost); p != cut_at; ++p) icmp += p % 4 == 3;
      EXPECT_EQ(lost_other, icmp) << "lost " << lost << " of ring positions " << cons0 << ".." << cut_at;
      expect_udp += lost_udp;
      expect_other += lost_other;
      if (lost > 0) ++cut;
    } else {
      EXPECT_EQ(ctl_->ended_bursts, bursts0);
    }
    // Every frame the devices took is named: forwarded, consumed, dropped or left by a cut.
    const StackCounters& st = ctl_->stack;
    ASSERT_EQ(ctl_->dev[0].rx_frames + ctl_->dev[1].rx_frames,
              st.forwarded + st.consumed + st.drops.total() + ctl_->ended_udp + ctl_->ended_other)
        << "attempt " << attempt;
    // Every buffer is free or on a fill ring again, none twice; a cut may cost the one buffer
    // the ring code held between the pool and a ring entry (the device's loops give up a ring
    // entry before they free its buffer, and take a buffer before they post it).
    if (WIFSIGNALED(status)) ++cuts;
    const uint64_t held = ctl_->pool_free + on_fill(0) + on_fill(1);
    ASSERT_LE(held, kPoolBuffers) << "attempt " << attempt;
    ASSERT_GE(held + cuts, kPoolBuffers) << "attempt " << attempt;
    ASSERT_EQ(ctl_->pool.overflow, 0u);
    ASSERT_EQ(ctl_->pool.bad_release, 0u);
  }
  EXPECT_GE(cut, 1u) << "no timer landed inside a burst (upcall of a ring: " << span_us << " us; " << exited
                      << " upcalls finished, " << killed_outside << " were cut outside a burst)";
  std::printf("cuts: %llu in bursts with frames lost, %llu outside bursts; TX posts cut: %llu committed, %llu redone\n",
              (unsigned long long)cut, (unsigned long long)killed_outside,
              (unsigned long long)ctl_->ended_posts_committed, (unsigned long long)ctl_->ended_posts_redone);
  EXPECT_EQ(ctl_->ended_udp, expect_udp);
  EXPECT_EQ(ctl_->ended_other, expect_other);
  // And it still forwards.
  const uint64_t fwd = ctl_->stack.forwarded;
  ASSERT_EQ(queue_ring(), ULS_NET_RING_SIZE);
  drain(9000);
  EXPECT_EQ(ctl_->stack.forwarded, fwd + ULS_NET_RING_SIZE);
}

TEST(ImageEndedBurst, CountsTheFramesFromTheFirstUnfinishedOnByKind) {
  ulsnet::testing::PoolAllocator a;
  std::vector<Frame> b;
  for (int k = 0; k < 6; ++k)
    b.push_back(k % 2 ? ulsnet::testing::arp_frame(a.pool, kArpRequest, MacAddr::broadcast(), mac(10),
                                                   ip("10.201.1.1"), MacAddr{}, ip("10.201.1.2"))
                      : ulsnet::testing::udp_frame(a.pool, mac(1), mac(10), ip("10.201.1.1"), ip("10.201.2.2"),
                                                   5000, 9000, 18));
  EndedBurst e = ended_burst(b, 2, false);  // cut in frame 2, its outcome not counted: 2..5 lost
  EXPECT_EQ(e.first_lost, 2u);
  EXPECT_EQ(e.lost, 4u);
  EXPECT_EQ(e.lost_udp, 2u);  // UDP, ARP, UDP, ARP
  EXPECT_EQ(e.lost_other, 2u);
  EXPECT_TRUE(e.partial);
  e = ended_burst(b, 2, true);  // ... its outcome counted: 3..5 lost
  EXPECT_EQ(e.first_lost, 3u);
  EXPECT_EQ(e.lost_udp, 1u);
  EXPECT_EQ(e.lost_other, 2u);
  EXPECT_FALSE(e.partial);
  e = ended_burst(b, 6, false);  // cut after the last frame: nothing lost
  EXPECT_EQ(e.lost, 0u);
  EXPECT_FALSE(e.partial);
  e = ended_burst(b, 0, false);  // cut in the first
  EXPECT_EQ(e.lost_udp, 3u);
  EXPECT_EQ(e.lost_other, 3u);
  e = ended_burst(b, 99, false);  // an impossible count names nothing
  EXPECT_EQ(e.lost, 0u);
  // A runt, or an IPv4 frame of another protocol, is "other".
  b[0].len = 20;
  b[2].data[23] = 1;
  e = ended_burst(b, 0, false);
  EXPECT_EQ(e.lost_udp, 1u);
  for (Frame& f : b) f.release();
}

TEST_F(Image, ACorruptRingIsCountedAndTheImageGoesOn) {
  load(initial_control(router()));
  upcall();
  rings(0)->rx.producer = rings(0)->rx.consumer + 5 * ULS_NET_RING_SIZE;
  upcall();
  EXPECT_EQ(ctl_->phase, Phase::kRunning);
  EXPECT_EQ(ctl_->ring[0].ring_corrupt, 1u);
  EXPECT_EQ(ctl_->stack.rx_frames, 0u);
}

TEST_F(Image, TheLoaderRefusesAConfigurationTheStackCannotWorkWith) {
  HostOptions o = router();
  o.stack.mode = ForwardMode::kRelay;
  o.stack.relays = {{9000, ip("192.0.2.1"), 9000}};
  try {
    initial_control(o);
    FAIL() << "accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("relay target 192.0.2.1"), std::string::npos) << e.what();
  }
  o = router();
  o.stack.ifaces.pop_back();
  EXPECT_THROW(initial_control(o), std::invalid_argument);
}

// If a bad configuration reaches the image anyway, it does not run with it: it records the
// Stack's own message and ends the upcall with a fault (here: the process dies of SIGILL, as a
// fault inside an upcall would be contained by the kernel).
TEST_F(Image, ABadConfigurationInsideTheImageIsRecordedAndEndsTheUpcallWithAFault) {
  ImageControl c = initial_control(router());
  c.config.mode = uint32_t(ForwardMode::kRelay);
  c.config.n_relays = 1;
  c.config.relays[0] = {9000, 9000, ip("192.0.2.1").v};
  load(c);
  EXPECT_EXIT(upcall(), ::testing::KilledBySignal(SIGILL), "");
  EXPECT_EQ(ctl_->phase, Phase::kFailed);
  EXPECT_NE(std::string(ctl_->error).find("relay target 192.0.2.1 is on no interface"), std::string::npos)
      << ctl_->error;
  upcall();  // a failed image returns at once
  EXPECT_EQ(ctl_->phase, Phase::kFailed);
}

TEST_F(Image, AControlBlockOfAnotherVersionOrWithBadParametersIsRefused) {
  ImageControl c = initial_control(router());
  c.version = kControlVersion + 1;
  load(c);
  EXPECT_EXIT(upcall(), ::testing::KilledBySignal(SIGILL), "");
  EXPECT_NE(std::string(ctl_->error).find("version"), std::string::npos) << ctl_->error;
  c = initial_control(router());
  c.burst = 1000;
  load(c);
  EXPECT_EXIT(upcall(), ::testing::KilledBySignal(SIGILL), "");
  EXPECT_NE(std::string(ctl_->error).find("bad parameters"), std::string::npos) << ctl_->error;
}

TEST(UlsHost, WithoutThePatchedKernelStartSaysSo) {
  if (access("/dev/uls", F_OK) == 0) GTEST_SKIP() << "this kernel has /dev/uls";
  HostOptions o;
  o.stack.ifaces = {{"eth0", mac(1), ip("10.201.1.2"), 24, nullptr},
                    {"eth1", mac(2), ip("10.201.2.1"), 24, nullptr}};
  try {
    UlsStackHost::start(o, {kStackImage, sizeof kStackImage});
    FAIL() << "started";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("no /dev/uls"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace ulsnet::uls
