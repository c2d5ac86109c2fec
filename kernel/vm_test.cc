// The kernel build and the virtual hosts, as a user runs them: kernel/build.sh, then
// kernel/initramfs.sh, then kernel/vm.sh with one host and with three (sender -- proxy --
// receiver over e1000), checking the guests' serial logs for their results, and that nothing
// is left running afterwards. A patch that does not apply stops the build with the reason.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "kernel/vm_harness.h"

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace ulsnet {
namespace {

using vm::last_line;
using vm::sh;
using vm::slurp;

std::string runfile(const std::string& rel) { return vm::runfile("kernel/" + rel); }

// The number of calls uls_fuzz reports having made ("uls_fuzz: calls=N ..."), or 0.
// (The line itself goes to the test's log: the closing notes quote it.)
uint64_t fuzz_calls(const std::string& log) {
  const auto at = log.find("uls_fuzz: calls=");
  if (at == std::string::npos) return 0;
  std::printf("%s\n", log.substr(at, log.find_first_of("\r\n", at) - at).c_str());
  return std::strtoull(log.c_str() + at + 16, nullptr, 10);
}

// Kernel reports on a guest's console (with loglevel=5 they are printed): warnings, oopses, BUGs
// (KASAN's and sleeping-in-atomic's among them), lockdep's (WARNING:/INFO:), SLUB consistency
// errors (slub_debug: "BUG kmalloc-...", poison, double free).
// (The last two: a PCI device whose interrupt could not be routed, whose driver then waits in
// vain for its interrupts; see DebugKernel below.)
constexpr const char* kKernelReports[] = {"WARNING:", "BUG:", "BUG ", "INFO: ", "Oops", "Call Trace",
                                          "general protection", "Poison overwritten", "Object already free",
                                          "Redzone overwritten", "ACPI Error", "no GSI"};

// A guest log as a failure shows it: first the lines that say what went wrong (a failed check,
// a test's failing verdict, a kernel report), then the whole log. CI keeps only the head and the
// tail of a long failure message, and the guest's log runs to thousands of lines.
std::string shown(const std::string& log) {
  std::string head;
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);) {
    bool bad = line.find(": FAIL") != std::string::npos ||
               (line.find("ULSNET-TEST ") != std::string::npos && line.find(" fail") != std::string::npos) ||
               line.find("status=fail") != std::string::npos;
    for (const char* k : kKernelReports) bad = bad || line.find(k) != std::string::npos;
    if (bad) head += "  " + line + "\n";
  }
  return (head.empty() ? std::string("(no failed check or kernel report in the log)\n")
                       : "failed checks and kernel reports in the log:\n" + head) +
         "---- the whole log:\n" + log;
}

void expect_no_kernel_warnings(const std::string& log) {
  for (const char* bad : kKernelReports)
    EXPECT_EQ(log.find(bad), std::string::npos) << "kernel reported '" << bad << "':\n" << shown(log);
}

class Vm : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    prep_ = vm::prepare({runfile("uls_region_test"), runfile("uls_register_test"), runfile("uls_upcall_test"),
                         runfile("uls_net_test"), runfile("uls_proxy"), runfile("uls_udp"),
                         runfile("uls_hardening_test"), runfile("uls_fuzz")});
    (prep_.usage_error ? skip_ : build_error_) = prep_.error;
    image_ = prep_.image;
    initrd_ = prep_.initrd;
  }
  static void TearDownTestSuite() { vm::cleanup(prep_, false); }
  void SetUp() override {
    if (!skip_.empty()) GTEST_SKIP() << skip_;
    ASSERT_TRUE(build_error_.empty()) << build_error_;
  }
  // Launches the hosts; returns the launcher's output.
  // `what` is "--test NAME" or "--run /bin/PROG".
  std::string launch(int hosts, const std::string& what, const std::string& logdir, int timeout_s) {
    auto [rc, out] = vm::launch(image_, initrd_, logdir, "--hosts " + std::to_string(hosts) + " " + what, timeout_s);
    EXPECT_EQ(rc, 0) << out;
    return out;
  }
  static void expect_nothing_left(const std::string& logdir) {
    for (const char* role : {"single", "sender", "proxy", "receiver"}) {
      std::string pid = slurp(logdir + "/" + role + ".pid");
      if (pid.empty()) continue;
      EXPECT_NE(kill(std::stoi(pid), 0), 0) << role << "'s QEMU (pid " << pid << ") outlived the launcher";
    }
  }
  static inline vm::Prepared prep_;
  static inline std::string skip_, build_error_, image_, initrd_;
};

TEST_F(Vm, OneHostBootsTheBuiltKernelAndRunsItsTest) {
  const std::string logs = vm::test_tmpdir() + "/one";
  std::string out = launch(1, "--test boot", logs, 150);
  EXPECT_NE(out.find("ULSNET-VMS status=done"), std::string::npos) << out;
  EXPECT_NE(out.find("ULSNET-ACCEL name="), std::string::npos) << out;
  const std::string log = slurp(logs + "/single.log");
  EXPECT_NE(log.find("ULSNET-GUEST-UP role=single kernel=6.1."), std::string::npos) << shown(log);
  EXPECT_NE(log.find("ULSNET-CPUS online=1"), std::string::npos) << shown(log);
  EXPECT_NE(log.find("ULSNET-RESULT name=boot status=pass"), std::string::npos) << shown(log);
  expect_no_kernel_warnings(log);
  expect_nothing_left(logs);
}

TEST_F(Vm, ThreeHostsForwardThroughTheProxyOverE1000) {
  const std::string logs = vm::test_tmpdir() + "/three";
  std::string out = launch(3, "--test forward-ping", logs, 240);
  EXPECT_NE(out.find("ULSNET-VMS status=done"), std::string::npos) << out;
  const std::string sender = slurp(logs + "/sender.log");
  EXPECT_NE(sender.find("ULSNET-RESULT name=forward-ping status=pass"), std::string::npos) << shown(sender);
  for (const char* role : {"proxy", "receiver"})
    EXPECT_NE(slurp(logs + "/" + role + ".log").find("ULSNET-GUEST-UP role=" + std::string(role)),
              std::string::npos)
        << role;
  EXPECT_NE(slurp(logs + "/proxy.log").find("ULSNET-NIC eth0=e1000 eth1=e1000"), std::string::npos)
      << "the proxy's NICs are not both e1000";
  EXPECT_NE(sender.find("ULSNET-NIC eth0=e1000"), std::string::npos);
  expect_nothing_left(logs);
}

TEST_F(Vm, TheSandboxRegionIsSharedAtOneAddressAndBadRequestsAreRefused) {
  const std::string logs = vm::test_tmpdir() + "/region";
  std::string out = launch(1, "--run /bin/uls_region_test --append uls.protect=0", logs, 150);
  const std::string log = slurp(logs + "/single.log");
  EXPECT_NE(log.find("ULSNET-TEST uls_region pass"), std::string::npos) << shown(log);
  EXPECT_NE(log.find("ULSNET-RESULT name=uls_region_test status=pass"), std::string::npos) << shown(log);
  EXPECT_EQ(log.find("uls_region: FAIL"), std::string::npos) << shown(log);
  expect_no_kernel_warnings(log);
  expect_nothing_left(logs);
}

TEST_F(Vm, ExtensionRegistrationValidatesEveryArgument) {
  const std::string logs = vm::test_tmpdir() + "/register";
  launch(1, "--run /bin/uls_register_test", logs, 150);
  const std::string log = slurp(logs + "/single.log");
  EXPECT_NE(log.find("ULSNET-TEST uls_register pass"), std::string::npos) << shown(log);
  EXPECT_EQ(log.find("uls_register: FAIL"), std::string::npos) << shown(log);
  expect_no_kernel_warnings(log);
  expect_nothing_left(logs);
}

// Patches 0003 and 0004: an extension runs in whatever process is current (a raising one, an
// unrelated spinning one, a woken host when the CPU is idle), the process gets its exact state
// back, faults and overruns are contained and counted, bad arguments are refused; the region is
// inaccessible to processes outside upcalls and multi-threaded processes never take one.
TEST_F(Vm, UpcallsRunInTheCurrentProcessAndItResumesIntact) {
  const std::string logs = vm::test_tmpdir() + "/upcall";
  launch(1, "--run /bin/uls_upcall_test", logs, 200);
  const std::string log = slurp(logs + "/single.log");
  EXPECT_NE(log.find("ULSNET-TEST uls_upcall pass"), std::string::npos) << shown(log);
  EXPECT_EQ(log.find("uls_upcall: FAIL"), std::string::npos) << shown(log);
  expect_no_kernel_warnings(log);
  expect_nothing_left(logs);
}

// Patch 0005 on one host with two e1000s on one hub: every bad bind refused, a frame from eth0's
// tx ring lands in eth1's rx ring byte for byte, invalid descriptors and indices are refused and
// counted, unbinding hands buffers back.
TEST_F(Vm, ZeroCopyRingsValidateEverythingAndCarryFramesNicToNic) {
  const std::string logs = vm::test_tmpdir() + "/net";
  launch(1, "--run /bin/uls_net_test --nics 2", logs, 200);
  const std::string log = slurp(logs + "/single.log");
  EXPECT_NE(log.find("ULSNET-NIC eth0=e1000 eth1=e1000"), std::string::npos) << shown(log);
  EXPECT_NE(log.find("ULSNET-TEST uls_net pass"), std::string::npos) << shown(log);
  EXPECT_EQ(log.find("uls_net: FAIL"), std::string::npos) << shown(log);
  expect_no_kernel_warnings(log);
  expect_nothing_left(logs);
}

// The value of `key=` in the last line of `log` that contains `marker`, or -1.
long long field(const std::string& log, const std::string& marker, const std::string& key) {
  auto line_at = log.rfind(marker);
  if (line_at == std::string::npos) return -1;
  std::string line = log.substr(line_at, log.find('\n', line_at) - line_at);
  auto k = line.find(" " + key + "=");
  if (k == std::string::npos) return -1;
  return std::stoll(line.substr(k + key.size() + 2));
}

// The two forwarding tests below boot with a budget of 1 s instead of 10 ms. The budget counts
// ticks that find an upcall running, and under TCG on a loaded host a vCPU thread the host
// descheduled comes back to a tick at once: CI saw the proxy's upcalls (mean 80-290 us) ended
// past "10 ms" once or twice in a few thousand. The minimal forwarder (tests/uls_fwd_ext.c) does
// not survive being ended mid-batch: its counters are off by one and the frames of its batch go
// out again (CI: 37 duplicates at the receiver). The budget is tested elsewhere (uls_upcall,
// uls_hardening); the Stack image names such frames (bench/vm_throughput_test).
const std::string kForwardBudget = "uls.budget_ms=1000";

// Patch 0005 end to end: sender VM -> proxy VM (its two e1000s bound to a forwarding extension
// in the sandbox) -> receiver VM. Every datagram of a numbered stream arrives; the proxy's kernel
// processed none of them (its IP and softnet counters did not move); the frames went through the
// zero-copy rings and upcalls; afterwards the interfaces work on the kernel's path again.
TEST_F(Vm, AProxyVmForwardsANumberedStreamThroughTheZeroCopyPath) {
  const std::string logs = vm::test_tmpdir() + "/forward";
  const long long count = 5000;
  launch(3, "--test uls-forward --append 'ulsnet.count=5000 ulsnet.pps=1000 " + kForwardBudget + "'", logs, 300);
  const std::string sender = slurp(logs + "/sender.log"), proxy = slurp(logs + "/proxy.log"),
                    receiver = slurp(logs + "/receiver.log");
  EXPECT_NE(sender.find("ULSNET-RESULT name=uls-forward status=pass"), std::string::npos) << shown(sender);
  const long long sent = field(sender, "ULSNET-UDP-SENT", "sent");
  const long long received = field(receiver, "ULSNET-UDP-RECV", "received");
  EXPECT_EQ(sent, count) << shown(sender);
  EXPECT_EQ(field(sender, "ULSNET-UDP-SENT", "errors"), 0) << shown(sender);
  const std::string final_marker = "ULSNET-PROXY final=1";
  ASSERT_NE(proxy.find(final_marker), std::string::npos) << shown(proxy);
  // Every datagram is accounted for: received, or dropped at a counted place.
  long long drops = field(receiver, "ULSNET-UDP-RECV", "rcvbuf_errors");
  for (const char* k : {"drop_runt", "drop_not_ipv4", "drop_bad_ip", "drop_ttl", "drop_no_route",
                        "drop_tx_full", "free_overflow", "refused", "eth0_rx_ring_full",
                        "eth0_rx_errors", "eth1_tx_invalid", "eth1_comp_full", "eth0_nic_missed"})
    drops += field(proxy, final_marker, k);
  EXPECT_EQ(sent, received + drops) << shown(proxy) << shown(receiver);
  EXPECT_EQ(received, sent) << "loss at 1000 pps: " << shown(proxy) << shown(receiver);
  EXPECT_EQ(field(receiver, "ULSNET-UDP-RECV", "dup"), 0);
  // Through the zero-copy path: every datagram in on eth0's rx ring and out on eth1's tx ring.
  EXPECT_GE(field(proxy, final_marker, "eth0_rx"), sent);
  EXPECT_GE(field(proxy, final_marker, "eth1_tx"), received);
  EXPECT_GE(field(proxy, final_marker, "ext_tx1"), received);
  EXPECT_GT(field(proxy, final_marker, "upcalls"), 0);
  EXPECT_EQ(field(proxy, final_marker, "faults"), 0);
  // No upcall ran past its budget (kForwardBudget: none can, but for a forwarder that loops).
  EXPECT_EQ(field(proxy, final_marker, "overruns"), 0) << shown(proxy);
  // ... and not through the proxy's kernel: no IP input, no packet through softnet (no skb).
  EXPECT_EQ(field(proxy, final_marker, "kernel_ip_in_receives"), 0) << shown(proxy);
  EXPECT_EQ(field(proxy, final_marker, "kernel_softnet_processed"), 0) << shown(proxy);
  // Unbound, the proxy's kernel reaches the sender on the same interface.
  EXPECT_NE(proxy.find("ULSNET-PROXY-UNBOUND yes"), std::string::npos) << shown(proxy);
  EXPECT_NE(proxy.find("ULSNET-PROXY-KERNEL-PATH ping=ok"), std::string::npos) << shown(proxy);
  for (const std::string* log : {&sender, &proxy, &receiver}) expect_no_kernel_warnings(*log);
  expect_nothing_left(logs);
}

// The same path under load (5000 datagrams/s, more than TCG lets it carry loss-free): whatever it
// loses, it loses at counted places on the proxy, and no buffer is lost: every frame the
// extension received was forwarded or counted, every frame it posted was sent and handed back.
TEST_F(Vm, UnderLoadTheZeroCopyPathLosesOnlyAtCountedPlacesAndKeepsEveryBuffer) {
  const std::string logs = vm::test_tmpdir() + "/forward-load";
  launch(3, "--test uls-forward --append 'ulsnet.count=10000 ulsnet.pps=5000 " + kForwardBudget + "'", logs, 300);
  const std::string sender = slurp(logs + "/sender.log"), proxy = slurp(logs + "/proxy.log"),
                    receiver = slurp(logs + "/receiver.log");
  const std::string fin = "ULSNET-PROXY final=1";
  ASSERT_NE(proxy.find(fin), std::string::npos) << shown(proxy);
  const long long sent = field(sender, "ULSNET-UDP-SENT", "sent");
  EXPECT_EQ(sent, 10000) << shown(sender);
  long long ext_drops = 0;
  for (const char* k : {"drop_runt", "drop_not_ipv4", "drop_bad_ip", "drop_ttl", "drop_no_route", "drop_tx_full"})
    ext_drops += field(proxy, fin, k);
  // The extension: everything in on eth0 went out on eth1 or is a counted drop.
  EXPECT_EQ(field(proxy, fin, "ext_rx0"), field(proxy, fin, "ext_tx1") + ext_drops) << shown(proxy);
  // Buffers: every frame posted on eth1 was sent and came back, and the extension took it back.
  EXPECT_EQ(field(proxy, fin, "eth1_tx"), field(proxy, fin, "ext_tx1")) << shown(proxy);
  EXPECT_EQ(field(proxy, fin, "eth1_comp"), field(proxy, fin, "eth1_tx")) << shown(proxy);
  EXPECT_EQ(field(proxy, fin, "sent1"), field(proxy, fin, "eth1_comp")) << shown(proxy);
  EXPECT_EQ(field(proxy, fin, "free_overflow"), 0);
  EXPECT_EQ(field(proxy, fin, "eth1_comp_full"), 0);
  // Every datagram reached the proxy's rings or was dropped there for want of room (counted);
  // the NIC's own misses are counted by e1000 (QEMU counts each retry, so only as a bound).
  EXPECT_GE(field(proxy, fin, "eth0_rx") + field(proxy, fin, "eth0_rx_ring_full") +
                field(proxy, fin, "eth0_nic_missed"),
            sent)
      << shown(proxy);
  // What the receiver got, it got from the proxy.
  const long long received = field(receiver, "ULSNET-UDP-RECV", "received");
  EXPECT_GT(received, 0) << shown(receiver);
  EXPECT_LE(received, field(proxy, fin, "ext_tx1")) << shown(proxy) << shown(receiver);
  EXPECT_EQ(field(receiver, "ULSNET-UDP-RECV", "dup"), 0);
  for (const std::string* log : {&sender, &proxy, &receiver}) expect_no_kernel_warnings(*log);
  expect_nothing_left(logs);
}

// ---- the security findings (issue 13): kernel/tests/uls_hardening_test.c -------------------
// One boot runs every case that needs no special boot, with SLUB's consistency checks on (a use
// of freed memory or a double free is reported on the console). Each test below checks its
// case's verdict line; the cases are named after the findings (kernel/README.md).
class Hardening : public Vm {
 protected:
  // The log of one run of `args` (cached: one boot serves every test that asks the same).
  std::string run_once(const std::string& key, const std::string& launch_args, int timeout_s) {
    auto it = logs_.find(key);
    if (it != logs_.end()) return it->second;
    const std::string dir = vm::test_tmpdir() + "/hardening-" + key;
    launch(1, launch_args, dir, timeout_s);
    std::string log = slurp(dir + "/single.log");
    expect_nothing_left(dir);
    return logs_[key] = log;
  }
  std::string main_run() {
    return run_once("main", "--run /bin/uls_hardening_test --append slub_debug=FZPU", 400);
  }
  static void expect_case(const std::string& log, const std::string& name) {
    EXPECT_NE(log.find("ULSNET-TEST uls_hardening " + name + " pass"), std::string::npos)
        << "case " << name << ":\n" << shown(log);
    EXPECT_EQ(log.find("uls_hardening: " + name + ": FAIL"), std::string::npos) << shown(log);
  }
  static inline std::map<std::string, std::string> logs_;
};

TEST_F(Hardening, Finding1_AFailedForkLeavesTheParentsUpcallStateAlone) {
  const std::string log = main_run();
  expect_case(log, "fork_failure");
  expect_no_kernel_warnings(log);
}
TEST_F(Hardening, Finding2_NoTracerStopsATaskInsideAnUpcall) { expect_case(main_run(), "ptrace_syscall"); }
TEST_F(Hardening, Finding2_NoOtherProcessReadsOrWritesTheRegion) { expect_case(main_run(), "proc_mem"); }
TEST_F(Hardening, Finding2_NoKernelWorkForTheProcessWritesTheRegionInsideAnUpcall) {
  expect_case(main_run(), "io_uring");
}
TEST_F(Hardening, Finding3_UnprotectedTheRegionIsNeverMappedIntoAnUnprivilegedProcess) {
  const std::string log = run_once("protect-off", "--run /bin/uls_hardening_test --append 'uls.protect=0 ulsnet.args=protect_off'", 200);
  expect_case(log, "protect_off");
  expect_no_kernel_warnings(log);
}
TEST_F(Hardening, Finding4_TakingABoundInterfaceDownUnbindsItAndNothingHangs) {
  const std::string log = run_once("link-down", "--run /bin/uls_hardening_test --nics 2 --append ulsnet.args=link_down", 200);
  expect_case(log, "link_down");
  expect_no_kernel_warnings(log);
}
TEST_F(Hardening, Finding5_ExtensionsAndBindingsGoAwayWithTheirOwner) {
  expect_case(main_run(), "release");
  // Interfaces: the link_down case also checks a binding left by an exiting process.
  expect_case(run_once("link-down", "--run /bin/uls_hardening_test --nics 2 --append ulsnet.args=link_down", 200),
              "link_down");
}
TEST_F(Hardening, Finding6_AStarvedTaskCannotHoldAnExtensionForever) { expect_case(main_run(), "hold"); }
TEST_F(Hardening, Finding7_NoSystemCallGetsPastTheAllowlistAndSeccompIsUntouched) {
  const std::string log = main_run();
  for (const char* c : {"int80", "seccomp_strict", "seccomp_filter"}) expect_case(log, c);
}
TEST_F(Hardening, Finding8_TheProcessGetsFsGsFlagsAndArgumentRegistersBack) { expect_case(main_run(), "registers"); }
// PKRU needs a CPU with protection keys: QEMU's `max` model has them under TCG (this machine's
// CPU has none). The registers case again on that CPU, whose FPU state is larger (XSAVE).
TEST_F(Hardening, Finding8_OnACpuWithProtectionKeysTheProcessGetsItsPkruBack) {
  const std::string log =
      run_once("pkru", "--cpu max --run /bin/uls_hardening_test --append ulsnet.args=pkru,registers", 200);
  expect_case(log, "pkru");
  expect_case(log, "registers");
  EXPECT_NE(log.find("uls_hardening: pkru: initial PKRU 0x"), std::string::npos) << shown(log);
  expect_no_kernel_warnings(log);
}
TEST_F(Hardening, Finding10_ErrorsAndTheReturnCallsNumber) {
  const std::string log = main_run();
  for (const char* c : {"ioctl_enotty", "syscall_number"}) expect_case(log, c);
}
// Found after the review (patches 0015, 0016), and the rseq path of finding 2 (0009).
TEST_F(Hardening, AProcessRunsItsOwnCodeBetweenChainsOfUpcalls) { expect_case(main_run(), "chain"); }
TEST_F(Hardening, AnExtensionFaultIsNotLoggedAsAProcessFault) { expect_case(main_run(), "fault_log"); }
TEST_F(Hardening, Finding2_NoRseqFixUpReachesIntoAnUpcall) { expect_case(main_run(), "rseq"); }

// ---- hostile-input fuzzing: every entry point at random, on 2 vCPUs with the network path ------
// (kernel/tests/uls_fuzz.c; bazel run //kernel:fuzz runs it longer.) At least 100 000 calls per
// run; it fails on any kernel report, a crash, a hang, a refused call that got through, the
// region reached from outside an upcall, and anything left behind by the processes that owned it.
TEST_F(Hardening, RandomizedHostileCallsFromEveryDirectionLeaveTheKernelIntact) {
  const std::string log = run_once(
      "fuzz", "--smp 2 --nics 2 --run /bin/uls_fuzz --append 'slub_debug=FZPU ulsnet.args=seconds=30,calls=100000'",
      400);
  EXPECT_NE(log.find("ULSNET-TEST uls_fuzz pass"), std::string::npos) << shown(log);
  EXPECT_GE(fuzz_calls(log), 100000u) << shown(log);
  EXPECT_NE(log.find("uls_fuzz: seed="), std::string::npos) << shown(log);
  expect_no_kernel_warnings(log);
}
// Unprotected, and on a CPU with protection keys (QEMU's `max`): its extensions' wrpkru then
// really writes PKRU (all keys closed). Before 0017 the process got that back and its next
// access to its own memory killed it (measured: the main process died of SIGSEGV within 15 s).
TEST_F(Hardening, RandomizedHostileCallsUnprotectedOnACpuWithProtectionKeys) {
  const std::string log = run_once(
      "fuzz-unprotected",
      "--smp 2 --nics 2 --cpu max --run /bin/uls_fuzz --append 'uls.protect=0 ulsnet.args=seconds=15,calls=30000'",
      300);
  EXPECT_NE(log.find("region=unprotected"), std::string::npos) << shown(log);
  EXPECT_NE(log.find("ULSNET-TEST uls_fuzz pass"), std::string::npos) << shown(log);
  EXPECT_GE(fuzz_calls(log), 30000u) << shown(log);
  expect_no_kernel_warnings(log);
}

// ---- concurrency: the guest tests on 2 vCPUs (TCG runs them in threads) ----------------------
TEST_F(Hardening, OnTwoCpusUpcallsAndRegistrationRaceCleanly) {
  const std::string dir = vm::test_tmpdir() + "/smp2";
  launch(1, "--smp 2 --run /bin/uls_register_test:/bin/uls_upcall_test:/bin/uls_hardening_test --append slub_debug=FZPU",
         dir, 600);
  const std::string log = slurp(dir + "/single.log");
  EXPECT_NE(log.find("uls_hardening: smp_race: 2 CPUs online"), std::string::npos) << shown(log);
  EXPECT_NE(log.find("ULSNET-TEST uls_register pass"), std::string::npos) << shown(log);
  EXPECT_NE(log.find("ULSNET-TEST uls_upcall pass"), std::string::npos) << shown(log);
  EXPECT_NE(log.find("ULSNET-TEST uls_hardening pass"), std::string::npos) << shown(log);
  EXPECT_EQ(log.find(": FAIL"), std::string::npos) << shown(log);
  expect_no_kernel_warnings(log);
  expect_nothing_left(dir);
}

// ---- the debug kernel (KASAN, lockdep, sleeping in atomic context, list debugging) -----------
// Every guest test, on 2 vCPUs; any kernel report fails.
class DebugKernel : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    prep_ = vm::prepare({runfile("uls_region_test"), runfile("uls_register_test"), runfile("uls_upcall_test"),
                         runfile("uls_net_test"), runfile("uls_hardening_test"), runfile("uls_fuzz")},
                        /*debug_kernel=*/true);
    (prep_.usage_error ? skip_ : build_error_) = prep_.error;
  }
  static void TearDownTestSuite() { vm::cleanup(prep_, false); }
  void SetUp() override {
    if (!skip_.empty()) GTEST_SKIP() << skip_;
    ASSERT_TRUE(build_error_.empty()) << build_error_;
  }
  std::string run(const std::string& name, const std::string& args, int timeout_s) {
    const std::string dir = vm::test_tmpdir() + "/debug-" + name;
    // (The debug kernel has pci=noacpi built in: kernel/config/debug.config says why.)
    auto [rc, out] = vm::launch(prep_.image, prep_.initrd, dir, "--hosts 1 --smp 2 " + args, timeout_s);
    EXPECT_EQ(rc, 0) << out;
    std::string log = slurp(dir + "/single.log");
    EXPECT_NE(log.find("ULSNET-CPUS online=2"), std::string::npos) << shown(log);
    return log;
  }
  static inline vm::Prepared prep_;
  static inline std::string skip_, build_error_;
};

TEST_F(DebugKernel, EveryGuestTestPassesWithNoKernelReport) {
  std::string log = run("main", "--run /bin/uls_register_test:/bin/uls_upcall_test:/bin/uls_hardening_test", 1200);
  EXPECT_NE(log.find("ULSNET-GUEST-UP"), std::string::npos) << shown(log);
  for (const char* t : {"uls_register", "uls_upcall", "uls_hardening"})
    EXPECT_NE(log.find(std::string("ULSNET-TEST ") + t + " pass"), std::string::npos) << t << ":\n" << shown(log);
  expect_no_kernel_warnings(log);
  log = run("region", "--run /bin/uls_region_test --append uls.protect=0", 300);
  EXPECT_NE(log.find("ULSNET-TEST uls_region pass"), std::string::npos) << shown(log);
  expect_no_kernel_warnings(log);
  log = run("net", "--run /bin/uls_net_test --nics 2", 600);
  EXPECT_NE(log.find("ULSNET-TEST uls_net pass"), std::string::npos) << shown(log);
  expect_no_kernel_warnings(log);
  log = run("net-hardening", "--run /bin/uls_hardening_test --nics 2 --append ulsnet.args=link_down", 300);
  EXPECT_NE(log.find("ULSNET-TEST uls_hardening link_down pass"), std::string::npos) << shown(log);
  expect_no_kernel_warnings(log);
  // The randomized tester, where KASAN and lockdep watch (fewer calls: the debug kernel is slow).
  log = run("fuzz", "--run /bin/uls_fuzz --nics 2 --append 'slub_debug=FZPU ulsnet.args=seconds=30'", 600);
  EXPECT_NE(log.find("ULSNET-TEST uls_fuzz pass"), std::string::npos) << shown(log);
  EXPECT_GE(fuzz_calls(log), 10000u) << shown(log);
  expect_no_kernel_warnings(log);
}

// The series as upstream expects it: `git format-patch` files whose subjects are "[PATCH n/N] uls:
// ..." in series order (N: the number of patches), each passing the kernel's own style checker
// with --strict (scripts/checkpatch.pl of the extracted tree, which the build above leaves in
// the work directory).
std::vector<std::string> series_patches() {
  std::istringstream series(slurp(runfile("patches/series")));
  std::vector<std::string> patches;
  std::string line;
  while (std::getline(series, line)) {
    line = line.substr(0, line.find('#'));
    line.erase(0, line.find_first_not_of(" \t"));
    line.erase(line.find_last_not_of(" \t") + 1);
    if (!line.empty()) patches.push_back(line);
  }
  return patches;
}

TEST(KernelBuild, EveryPatchIsNumberedInSeriesOrder) {
  const std::vector<std::string> patches = series_patches();
  ASSERT_FALSE(patches.empty());
  for (size_t i = 0; i < patches.size(); ++i) {
    const std::string text = slurp(runfile("patches/" + patches[i]));
    const std::string want =
        "Subject: [PATCH " + std::to_string(i + 1) + "/" + std::to_string(patches.size()) + "] uls: ";
    EXPECT_NE(text.find("\n" + want), std::string::npos) << patches[i] << ": no line starting " << want;
    EXPECT_EQ(text.rfind("From ", 0), 0u) << patches[i] << ": not git format-patch output";
  }
}

TEST(KernelBuild, EveryPatchPassesCheckpatchStrict) {
  const char* dir = std::getenv("ULSNET_KERNEL_DIR");
  const std::string checkpatch = std::string(dir ? dir : "/var/tmp/ulsnet-kernel") + "/src/scripts/checkpatch.pl";
  if (access(checkpatch.c_str(), R_OK) != 0)
    GTEST_SKIP() << "no extracted kernel tree with " << checkpatch << " (bazel run //kernel:build first)";
  int checked = 0;
  for (const std::string& p : series_patches()) {
    auto [rc, out] =
        sh("HOME=${HOME:-/tmp} perl " + checkpatch + " --strict --no-tree --no-signoff " + runfile("patches/" + p));
    EXPECT_EQ(rc, 0) << p << ":\n" << out;
    EXPECT_NE(out.find("0 errors, 0 warnings, 0 checks"), std::string::npos) << p << ":\n" << out;
    ++checked;
  }
  EXPECT_GE(checked, 5);
}

TEST(KernelBuild, APatchThatDoesNotApplyStopsTheBuildWithTheReason) {
  if (geteuid() != 0 && access("/var/tmp", W_OK) != 0) GTEST_SKIP() << "no writable /var/tmp";
  // A copy of kernel/ whose series names a patch against a file that does not exist.
  const std::string dir = vm::test_tmpdir() + "/badkernel";
  ASSERT_EQ(sh("rm -rf " + dir + " && mkdir -p " + dir + "/patches " + dir + "/config && cp " +
               runfile("build.sh") + " " + dir + "/ && cp " + runfile("config/ulsnet.config") + " " +
               dir + "/config/")
                .first,
            0);
  std::ofstream(dir + "/patches/0001-bogus.patch")
      << "Subject: a patch for a file 6.1 does not have\n\n"
         "--- a/no/such/file.c\n+++ b/no/such/file.c\n@@ -1,1 +1,1 @@\n-old\n+new\n";
  std::ofstream(dir + "/patches/series") << "0001-bogus.patch\n";
  auto [rc, out] = sh("bash " + dir + "/build.sh --work " + vm::test_tmpdir() + "/badwork");
  EXPECT_NE(rc, 0) << out;
  EXPECT_NE(out.find("patch 0001-bogus.patch does not apply"), std::string::npos) << out;
  // A series naming a file that is not there is refused before any work.
  std::ofstream(dir + "/patches/series") << "0002-missing.patch\n";
  auto [rc2, out2] = sh("bash " + dir + "/build.sh --work " + vm::test_tmpdir() + "/badwork");
  EXPECT_NE(rc2, 0);
  EXPECT_NE(out2.find("series names 0002-missing.patch"), std::string::npos) << out2;
  sh("rm -rf " + vm::test_tmpdir() + "/badwork " + dir);
}

}  // namespace
}  // namespace ulsnet
