// //bench:vm_micro end to end on the real ULS kernel (root and QEMU; skipped with the reason
// otherwise), kept short: a tiny run in both protection modes gives every operation with its
// instruction counts (under TCG) and the headline ratios; the same --out resumes it (a finished
// protection mode kept, an unfinished one run again, another configuration refused); an
// interrupted run leaves no QEMU behind; bad flags exit 2 before anything is built.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "kernel/vm_harness.h"

namespace ulsnet {
namespace {

TEST(VmMicroFlags, BadFlagsExit2) {
  for (const char* args : {"--protection bogus", "--protection kernel,kernel", "--reps 0", "--iterations x",
                           "--accel xen", "--no-such-flag"}) {
    auto [rc, out] = vm::sh(vm::runfile("bench/vm_micro") + " " + args);
    EXPECT_EQ(rc, 2) << args << "\n" << out;
  }
}

class VmMicro : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (QEMU hosts in a private network namespace)";
    if (vm::sh("command -v qemu-system-x86_64").first != 0) GTEST_SKIP() << "qemu-system-x86_64 not installed";
  }
};

TEST_F(VmMicro, ATinyRunGivesEveryOperationAndTheRatiosInBothModes) {
  const std::string out = vm::test_tmpdir() + "/tiny.json";
  auto [rc, output] = vm::sh("TMPDIR=" + vm::test_tmpdir() + " " + vm::runfile("bench/vm_micro") +
                             " --iterations 50 --reps 2 --protection kernel,none --timeout 90 --out " + out);
  ASSERT_EQ(rc, 0) << output;
  const nlohmann::json doc = nlohmann::json::parse(vm::slurp(out), nullptr, false);
  ASSERT_TRUE(doc.is_object()) << output;
  EXPECT_EQ(doc["experiment"], "vm_micro");
  EXPECT_EQ(doc["schema"], "ulsnet.vm-micro.v1");
  EXPECT_TRUE(doc["run_seconds"].is_number());
  const std::string accel = doc["environment"]["accel"];
  ASSERT_EQ(doc["runs"].size(), 2u);
  for (const auto& r : doc["runs"]) {
    EXPECT_TRUE(r["complete"].get<bool>()) << r.dump(1);
    EXPECT_TRUE(r["problems"].empty()) << r["problems"].dump(1);
    EXPECT_EQ(r["guest_protected"], r["protection"] == "kernel");
    EXPECT_EQ(r["kernel_counters"]["every_raise_ran_in_the_raiser_and_returned"], true) << r.dump(1);
    ASSERT_EQ(r["ops"].size(), 6u);
    for (const auto& e : r["ops"]) {
      EXPECT_EQ(e["ns_per_op"]["reps"].size(), 2u) << e.dump(1);
      EXPECT_GT(e["ns_per_op"]["median"].get<double>(), 0) << e.dump(1);
      if (accel == "tcg") {
        ASSERT_TRUE(e.contains("insns_per_op")) << e.dump(1);
        EXPECT_GT(e["insns_per_op"]["median"].get<double>(), 0) << e.dump(1);
      } else {
        EXPECT_TRUE(e.contains("insns_per_op_unavailable")) << e.dump(1);
      }
    }
    for (const char* k : {"upcall_over_syscall", "upcall_over_pipe_round_trip"})
      EXPECT_GT(r["ratios"][k].get<double>(), 0) << r.dump(1);
  }
  EXPECT_EQ(doc["complete"], true);
  EXPECT_EQ(doc["points_reused"], 0);

  // Resume: as if the run had been cut short in its second launch.
  nlohmann::json cut = doc;
  ASSERT_EQ(cut["runs"][1]["point"], "none");
  cut["runs"][1]["complete"] = false;
  cut["complete"] = false;
  std::ofstream(out) << cut.dump();
  const std::string again = "TMPDIR=" + vm::test_tmpdir() + " " + vm::runfile("bench/vm_micro") +
                            " --iterations 50 --reps 2 --protection kernel,none --timeout 90 --out " + out;
  auto [rc2, output2] = vm::sh(again);
  ASSERT_EQ(rc2, 0) << output2;
  EXPECT_NE(output2.find("protection kernel: kept from"), std::string::npos) << output2;
  EXPECT_EQ(output2.find("protection none: kept from"), std::string::npos) << output2;
  const nlohmann::json resumed = nlohmann::json::parse(vm::slurp(out), nullptr, false);
  ASSERT_TRUE(resumed.is_object()) << output2;
  EXPECT_EQ(resumed["complete"], true);
  EXPECT_EQ(resumed["points_reused"], 1);
  ASSERT_EQ(resumed["runs"].size(), 2u);
  EXPECT_EQ(resumed["runs"][0], doc["runs"][0]);  // kept as it was
  EXPECT_EQ(resumed["runs"][1]["complete"], true);  // measured again
  EXPECT_EQ(resumed["runs"][1]["protection"], "none");

  // Another configuration is refused before anything is built or booted; the file is untouched.
  auto [rc3, output3] = vm::sh(vm::runfile("bench/vm_micro") +
                               " --iterations 50 --reps 3 --protection kernel,none --timeout 90 --out " + out);
  EXPECT_EQ(rc3, 2) << output3;
  EXPECT_NE(output3.find("reps: 2 there, 3 here"), std::string::npos) << output3;
  EXPECT_EQ(nlohmann::json::parse(vm::slurp(out), nullptr, false), resumed);
}

// SIGINT while the guest runs (a run long enough to be caught in the middle): the runner dies of
// it, and the VM's QEMU is gone with it.
TEST_F(VmMicro, AnInterruptedRunLeavesNoQemu) {
  const std::string tmp = vm::test_tmpdir() + "/interrupt";
  std::filesystem::create_directories(tmp);
  const std::string bin = vm::runfile("bench/vm_micro");
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    setenv("TMPDIR", tmp.c_str(), 1);
    execl(bin.c_str(), bin.c_str(), "--iterations", "10000000", "--reps", "3", "--protection", "kernel", "--out",
          (tmp + "/never.json").c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  // Wait (up to 60 s: the kernel build check, then the boot) for the guest's QEMU to be running.
  std::string qemu_pid;
  for (int i = 0; i < 600 && qemu_pid.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    for (const auto& d : std::filesystem::directory_iterator(tmp)) {
      const std::string log = d.path().string() + "/kernel/single.log";
      if (vm::slurp(log).find("ULSNET-MICRO-CONFIG") != std::string::npos)
        qemu_pid = vm::last_line(vm::slurp(d.path().string() + "/kernel/single.pid"));
    }
  }
  ASSERT_FALSE(qemu_pid.empty()) << "the guest never started";
  ASSERT_EQ(kill(std::stoi(qemu_pid), 0), 0);
  kill(pid, SIGINT);
  int st = 0;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGINT) << "status " << st;
  EXPECT_NE(kill(std::stoi(qemu_pid), 0), 0) << "QEMU " << qemu_pid << " outlived the interrupted runner";
  EXPECT_FALSE(std::filesystem::exists(tmp + "/never.json"));
}

}  // namespace
}  // namespace ulsnet
