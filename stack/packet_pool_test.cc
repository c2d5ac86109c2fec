#include "stack/packet_pool.h"

#include <gtest/gtest.h>

#include <set>
#include <stdexcept>
#include <vector>

namespace ulsnet {
namespace {

TEST(PacketPool, HandsOutDistinctBuffersAndTakesThemBack) {
  PacketPool pool(8, 2048, 256);
  std::vector<Frame> f(10);
  ASSERT_EQ(pool.alloc(f), 8u);  // only 8 exist
  std::set<uint8_t*> starts;
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(f[i].headroom, 256u);
    EXPECT_EQ(f[i].capacity, 2048u - 256u);
    EXPECT_EQ(f[i].owner, &pool);
    starts.insert(f[i].data);
    EXPECT_EQ(pool.buffer_offset(f[i]) + 256, uint64_t(f[i].data - pool.base()));
  }
  EXPECT_EQ(starts.size(), 8u);
  EXPECT_EQ(pool.available(), 0u);
  for (int i = 0; i < 8; ++i) f[i].release();
  EXPECT_EQ(pool.available(), 8u);
}

TEST(PacketPool, DoubleAndForeignReleasesAreCountedNotCorrupting) {
  PacketPool a(4), b(4);
  Frame f;
  ASSERT_TRUE(a.alloc_one(f));
  f.release();
  a.release(f);  // double release
  EXPECT_EQ(a.bad_releases(), 1u);
  EXPECT_EQ(a.available(), 4u);
  Frame g;
  ASSERT_TRUE(b.alloc_one(g));
  a.release(g);  // not a's buffer
  EXPECT_EQ(a.bad_releases(), 2u);
  EXPECT_EQ(a.available(), 4u);
}

TEST(PacketPool, CallerRegionAndBadGeometry) {
  std::vector<uint8_t> region(4 * 2048);
  PacketPool p({region.data(), region.size()}, 2048, 128);
  EXPECT_EQ(p.count(), 4u);
  Frame f;
  ASSERT_TRUE(p.alloc_one(f));
  EXPECT_GE(f.data, region.data());
  EXPECT_LT(f.data, region.data() + region.size());
  EXPECT_THROW(PacketPool(0), std::invalid_argument);
  EXPECT_THROW(PacketPool(4, 100, 0), std::invalid_argument);
  EXPECT_THROW(PacketPool(4, 2048, 2040), std::invalid_argument);
}

TEST(Frame, HeadroomMovesWithoutCopy) {
  PacketPool pool(1);
  Frame f;
  ASSERT_TRUE(pool.alloc_one(f));
  f.len = 100;
  uint8_t* d = f.data;
  ASSERT_TRUE(f.push_front(14));
  EXPECT_EQ(f.data, d - 14);
  EXPECT_EQ(f.len, 114u);
  EXPECT_FALSE(f.push_front(10000));
  ASSERT_TRUE(f.pull_front(14));
  EXPECT_EQ(f.data, d);
  EXPECT_FALSE(f.resize(f.capacity + 1));
}

}  // namespace
}  // namespace ulsnet
