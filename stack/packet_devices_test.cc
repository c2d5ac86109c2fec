// Both packet-socket backends on a veth pair inside a private network namespace.
#include <sched.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <stdexcept>

#include "stack/clock.h"
#include "stack/device_factory.h"
#include "stack/net_types.h"

namespace ulsnet {
namespace {

constexpr uint16_t kTestEtherType = 0x88b5;  // IEEE local experimental

class PacketDevices : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root for packet sockets and namespaces";
    static bool made = false;  // one namespace for the whole test process
    if (!made) {
      if (unshare(CLONE_NEWNET) != 0) GTEST_SKIP() << "unshare(CLONE_NEWNET) failed";
      if (std::system("PATH=$PATH:/usr/sbin:/sbin; ip link add ua type veth peer name ub && "
                      "ip link set ua up && ip link set ub up && "
                      "sysctl -qw net.ipv6.conf.all.disable_ipv6=1 2>/dev/null; true") != 0)
        GTEST_SKIP() << "cannot create a veth pair";
      made = true;
    }
  }
};

Frame build(Device& d, uint64_t seq, uint32_t len) {
  Frame f;
  if (d.alloc_tx({&f, 1}) != 1) throw std::runtime_error("no tx buffer");
  for (int i = 0; i < 6; ++i) f.data[i] = 0xff;
  for (int i = 6; i < 12; ++i) f.data[i] = 0x02;
  store_be16(f.data + 12, kTestEtherType);
  store_le64(f.data + 14, seq);
  for (uint32_t i = 22; i < len; ++i) f.data[i] = uint8_t(seq * 3 + i);
  f.len = len;
  return f;
}

TEST_P(PacketDevices, FramesArriveOnceAndIntact) {
  DeviceOptions o;
  o.pool_frames = 512;
  auto a = make_device(GetParam(), "ua", o);
  auto b = make_device(GetParam(), "ub", o);
  EXPECT_EQ(std::string(a->kind()), GetParam());
  constexpr uint64_t kCount = 300;
  std::map<uint64_t, int> seen;
  std::vector<Frame> rx(64);
  uint64_t bad = 0;
  auto drain = [&](uint64_t want) {
    const uint64_t deadline = monotonic_ns() + 2'000'000'000ull;
    while (seen.size() < want && monotonic_ns() < deadline) {
      size_t n = b->rx_burst(rx);
      for (size_t i = 0; i < n; ++i) {
        const Frame& f = rx[i];
        if (f.len >= 22 && load_be16(f.data + 12) == kTestEtherType) {
          uint64_t seq = load_le64(f.data + 14);
          bool ok = f.len == 60 + seq % 200;
          for (uint32_t j = 22; ok && j < f.len; ++j) ok = f.data[j] == uint8_t(seq * 3 + j);
          if (!ok) ++bad;
          ++seen[seq];
        }
        f.release();
      }
      if (n == 0) usleep(1000);
    }
  };
  // Bursts of 30, each drained before the next, so no socket buffer can overflow.
  for (uint64_t s = 0; s < kCount; s += 30) {
    std::vector<Frame> burst;
    for (uint64_t k = s; k < s + 30; ++k) burst.push_back(build(*a, k, 60 + uint32_t(k % 200)));
    EXPECT_EQ(a->tx_burst(burst), 30u);
    drain(s + 30);
  }
  EXPECT_EQ(seen.size(), kCount);
  for (auto& [seq, c] : seen) EXPECT_EQ(c, 1) << seq;
  EXPECT_EQ(bad, 0u);
  DeviceStats sa = a->stats(), sb = b->stats();
  EXPECT_EQ(sa.tx_frames, kCount);
  EXPECT_GE(sb.rx_frames, kCount);
  EXPECT_EQ(sb.rx_kernel_drops, 0u);
  // Buffers all went back: another full round still works (ring blocks / pool not leaked).
  std::vector<Frame> again;
  for (uint64_t k = 0; k < 30; ++k) again.push_back(build(*a, 1000 + k, 100));
  EXPECT_EQ(a->tx_burst(again), 30u);
}

TEST_P(PacketDevices, OversizeFrameIsCountedNotSent) {
  DeviceOptions o;
  auto a = make_device(GetParam(), "ua", o);
  Frame f = build(*a, 1, 60);
  f.len = f.capacity;  // far beyond the 1500-byte MTU
  uint64_t before = a->stats().tx_dropped;
  EXPECT_EQ(a->tx_burst({&f, 1}), 0u);
  EXPECT_EQ(a->stats().tx_dropped, before + 1);
}

TEST_P(PacketDevices, MissingInterfaceIsAClearError) {
  try {
    make_device(GetParam(), "nosuchif9", DeviceOptions{});
    ADD_FAILURE() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("nosuchif9"), std::string::npos) << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(Kinds, PacketDevices, ::testing::Values("af_packet", "af_packet_mmap"));

TEST(DeviceFactory, UnknownKindListsTheValidOnes) {
  try {
    make_device("dpdk", "lo", DeviceOptions{});
    ADD_FAILURE() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("af_packet_mmap"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace ulsnet
