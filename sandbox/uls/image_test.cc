// The sandbox image itself -- the freestanding build of the Stack, its runtime and its entry --
// run in this process at its region address, with the test playing the kernel's side of the
// rings (as patch 0005's driver does). What the three-VM test shows end to end on the real ULS
// kernel, this shows on any machine: the image builds its Stack on its own heap in the region,
// forwards in place, answers and sends ARP, keeps every buffer, and reports a bad configuration
// instead of running with it.
#include <gtest/gtest.h>
#include <sys/mman.h>

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
