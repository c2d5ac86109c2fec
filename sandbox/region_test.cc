#include "sandbox/region.h"

#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <stdexcept>

#include "stack/packet_pool.h"

namespace ulsnet {
namespace {

constexpr uintptr_t kTestAddress = 0x7e1000000000ull;

RegionLayout small() {
  RegionLayout l;
  l.ring_bytes = 64 << 10;
  l.pool_bytes = 1 << 20;
  l.extension_slots = 2;
  l.extension_slot_bytes = 64 << 10;
  return l;
}

struct Node {
  Node* next;  // a pointer stored in the region, valid in every attached process
  char text[32];
};

TEST(SandboxRegion, TwoProcessesSeeTheSameDataAtTheSameAddress) {
  SandboxRegion r = SandboxRegion::create(small(), kTestAddress);
  ASSERT_EQ(reinterpret_cast<uintptr_t>(r.base()), kTestAddress);
  auto* a = reinterpret_cast<Node*>(r.extension_slot(0));
  auto* b = reinterpret_cast<Node*>(r.extension_slot(1));
  a->next = b;
  std::strcpy(b->text, "from the creator");
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // Behave like an unrelated process: drop the inherited mapping, then attach by fd.
    munmap(r.base(), r.header().total_bytes);
    int rc = 1;
    try {
      SandboxRegion mine = SandboxRegion::attach(r.fd());
      auto* first = reinterpret_cast<Node*>(mine.extension_slot(0));
      if (mine.base() == reinterpret_cast<uint8_t*>(kTestAddress) &&
          std::strcmp(first->next->text, "from the creator") == 0) {
        std::strcpy(first->next->text, "from the child");
        rc = 0;
      }
    } catch (...) {
      rc = 2;
    }
    _exit(rc);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_STREQ(b->text, "from the child");  // the child's write is visible here
  EXPECT_EQ(r.header().attach_count, 2u);
}

TEST(SandboxRegion, TakenAddressIsRefusedClearly) {
  SandboxRegion r = SandboxRegion::create(small(), kTestAddress);
  try {
    SandboxRegion again = SandboxRegion::create(small(), kTestAddress);
    ADD_FAILURE() << "a second region at a taken address was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("already mapped"), std::string::npos) << e.what();
  }
  // Attaching in the process that already has it mapped is refused the same way.
  EXPECT_THROW(SandboxRegion::attach(r.fd()), std::runtime_error);
  EXPECT_THROW(SandboxRegion::create(small(), kTestAddress + 1), std::invalid_argument);
}

TEST(SandboxRegion, NotARegionIsRefused) {
  int fd = memfd_create("not-a-region", MFD_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, 8192), 0);
  EXPECT_THROW(SandboxRegion::attach(fd), std::runtime_error);
  close(fd);
}

TEST(SandboxRegion, PacketPoolLivesInsideTheRegion) {
  SandboxRegion r = SandboxRegion::create(small(), kTestAddress);
  PacketPool pool({r.pool(), r.header().pool_bytes}, 2048, 256);
  EXPECT_EQ(pool.count(), (1u << 20) / 2048);
  Frame f;
  ASSERT_TRUE(pool.alloc_one(f));
  EXPECT_TRUE(r.contains(f.data, f.capacity));
  EXPECT_FALSE(r.contains(r.base() - 1));
  EXPECT_FALSE(r.contains(r.base() + r.header().total_bytes));
}

}  // namespace
}  // namespace ulsnet
