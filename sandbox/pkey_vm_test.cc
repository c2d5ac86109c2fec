// The protection modes on a CPU that has memory protection keys, which this machine's lacks: the
// sandbox's own tests (extension_test.cc, built static as //sandbox:extension_test_static) run
// inside one guest whose CPU model is QEMU's `max` (TCG emulates PKU). On the host the three
// `pkey` cases skip ("missing CPU feature"); here they must run, and pass, with every other case.
// What this shows is behaviour, not cost: TCG's timing says nothing of what WRPKRU costs.
// Needs root and QEMU (skips with the reason otherwise).
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "kernel/vm_harness.h"

namespace ulsnet {
namespace {

TEST(PkeyInAGuest, TheProtectionTestsRunAndPassOnACpuWithProtectionKeys) {
  vm::Prepared prep = vm::prepare({vm::runfile("sandbox/extension_test_static")});
  if (prep.usage_error) GTEST_SKIP() << prep.error;
  ASSERT_TRUE(prep.error.empty()) << prep.error;
  const std::string dir = vm::test_tmpdir() + "/pkey";
  auto [rc, out] = vm::launch(prep.image, prep.initrd, dir,
                              "--hosts 1 --cpu max --run /bin/extension_test_static --append ulsnet.args=--gtest_color=no",
                              300);
  vm::cleanup(prep, false);
  EXPECT_EQ(rc, 0) << out;
  const std::string log = vm::slurp(dir + "/single.log");
  // The guest's CPU has the feature, and the kernel enabled it.
  EXPECT_NE(log.find("ULSNET-GUEST-UP"), std::string::npos) << log;
  for (const char* c : {"ProcessCannotWriteExtensionMemory", "ExtensionWriteOutsideItsGrantIsContained",
                        "ExtensionRunsOnItsOwnStackInsideTheRegion"})
    EXPECT_NE(log.find(std::string("[       OK ] Modes/Protection.") + c + "/pkey"), std::string::npos)
        << c << "/pkey did not pass:\n"
        << log;
  EXPECT_EQ(log.find("[  SKIPPED ]"), std::string::npos) << "a case skipped in the guest:\n" << log;
  EXPECT_EQ(log.find("[  FAILED  ]"), std::string::npos) << log;
  EXPECT_NE(log.find("[  PASSED  ]"), std::string::npos) << log;
  EXPECT_NE(log.find("ULSNET-RESULT name=extension_test_static status=pass"), std::string::npos) << log;
}

}  // namespace
}  // namespace ulsnet
