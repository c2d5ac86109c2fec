// //bench:throughput --hosts=vm end to end, on the real three VMs (root and QEMU; skipped with the
// reason otherwise): a short paced stream through the ULS path whose accounting must close
// exactly, with one-way delays on a shared clock and the proxy's instruction counts; and a
// method that cannot run, which must be an error row and a failing exit status.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include <nlohmann/json.hpp>

#include "kernel/vm_harness.h"

namespace ulsnet {
namespace {

std::string tmpdir() {
  const char* t = std::getenv("TEST_TMPDIR");
  return t ? t : "/tmp";
}

class VmThroughput : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (QEMU hosts in a private network namespace)";
    if (vm::sh("command -v qemu-system-x86_64").first != 0) GTEST_SKIP() << "qemu-system-x86_64 not installed";
  }

  // Runs the throughput binary with `args`; returns {exit status, the result JSON (null if none)}.
  static std::pair<int, nlohmann::json> run(const std::string& name, const std::string& args, std::string& output) {
    const std::string out = tmpdir() + "/" + name + ".json";
    // TMPDIR: the runner's work directory (kept when a run fails) goes where the test's files go.
    auto [rc, o] = vm::sh("TMPDIR=" + tmpdir() + " " + vm::runfile("bench/throughput") + " --hosts=vm " + args +
                          " --out " + out);
    output = o;
    nlohmann::json j = nlohmann::json::parse(vm::slurp(out), nullptr, false);
    return {rc, j.is_discarded() ? nlohmann::json() : j};
  }
};

// 1000 datagrams at 1000/s through sandbox:uls relayed, at two payload sizes, and the cost run
// (10000 at 2000/s, under icount, at the first size): far below what the path carries, so every
// one arrives; the accounting closes exactly; every run says what ran, from QEMU's command lines
// and the sender's own report of its frames.
TEST_F(VmThroughput, AShortStreamThroughTheUlsPathIsAccountedExactlyWithDelaysAndInstructionCounts) {
  std::string output;
  auto [rc, doc] = run("uls", "--methods sandbox:uls --modes relay --rates 1000 --duration 1 --sizes 24,512", output);
  ASSERT_EQ(rc, 0) << output;
  ASSERT_TRUE(doc.is_object()) << output;
  ASSERT_EQ(doc["results"].size(), 3u) << doc.dump(1);
  EXPECT_EQ(doc["config"]["payloads"], nlohmann::json({24, 512}));
  int big_rows = 0;
  int icount_rows = 0;
  for (const auto& r : doc["results"]) {
    ASSERT_FALSE(r.contains("error")) << r.dump(1);
    const nlohmann::json& a = r["accounting"];
    const uint64_t count = r["purpose"] == "cost" ? 10000 : 1000;
    EXPECT_EQ(r["count"], count);
    EXPECT_EQ(a["sent"], count) << a.dump(1);
    EXPECT_EQ(a["unaccounted"], 0) << a.dump(1);
    EXPECT_EQ(a["received"].get<uint64_t>() + a["dropped"].get<uint64_t>(), count) << a.dump(1);
    EXPECT_EQ(a["received"], count) << "loss at " << r["offered"] << "/s: " << a.dump(1);
    for (const char* stage : {"sender", "link_sender_proxy", "proxy_kernel", "proxy_stack", "proxy_queue",
                              "proxy_extension", "proxy_tx", "link_proxy_receiver", "receiver_kernel", "receiver_app"})
      EXPECT_TRUE(a["drops"].contains(stage)) << stage;
    // Every NIC on the way saw the stream (the counts include a few frames that are not its own).
    EXPECT_GE(a["path"]["sender_nic_tx"], count);
    EXPECT_GE(a["path"]["proxy_nic_rx"], count);
    EXPECT_GE(a["path"]["receiver_nic_rx"], count);
    // 24-byte payloads: 66-byte frames, as the sender says it sent; 512: 554. The cost run is at
    // the first size.
    const bool big = r["payload_bytes"] == 512;
    big_rows += big;
    EXPECT_EQ(r["frame_bytes"], big ? 554 : 66);
    if (r["purpose"] == "cost") EXPECT_EQ(r["payload_bytes"], 24);
    EXPECT_EQ(r["labels"]["accelerator"], "tcg");
    const bool icount = r["labels"]["icount"].get<bool>();
    icount_rows += icount;
    EXPECT_EQ(r["purpose"], icount ? "cost" : "rate+latency");
    EXPECT_EQ(r["labels"]["icount_spec"], icount ? "shift=0,sleep=on" : "off");
    // The proxy's cost, in instructions (user space: the Stack's upcalls; kernel: the rest).
    const nlohmann::json& c = r["proxy_vm_insns_per_forwarded"];
    EXPECT_GT(c["user"].get<double>(), 0) << c.dump();
    EXPECT_GT(c["kernel"].get<double>(), 0) << c.dump();
    EXPECT_NEAR(c["total"].get<double>(), c["user"].get<double>() + c["kernel"].get<double>(), 1e-6);
    // One-way delays: on the receiver's clock, with their error bound, when not under icount.
    const nlohmann::json& l = r["latency"];
    EXPECT_EQ(l["one_way_valid"].get<bool>(), !icount) << l.dump(1);
    if (!icount) {
      EXPECT_EQ(l["latency_ns"]["samples"], count) << l.dump(1);
      EXPECT_GT(l["latency_ns"]["p50"].get<double>(), 0);
      EXPECT_GE(l["latency_ns"]["p99"].get<double>(), l["latency_ns"]["p50"].get<double>());
      EXPECT_GT(l["clock_error_bound_ns"].get<double>(), 0);
      EXPECT_LT(l["clock_error_bound_ns"].get<double>(), 20e6) << l["clock"].dump(1);
    }
  }
  EXPECT_EQ(icount_rows, 1);
  EXPECT_EQ(big_rows, 1);
}

// e1000 has no native XDP in Linux 6.1: the method fails in the proxy VM. That is an error row
// and the run exits 1, never a result.
TEST_F(VmThroughput, AMethodThatFailsInTheProxyIsAnErrorRowAndTheRunFails) {
  std::string output;
  auto [rc, doc] = run("native-xdp", "--methods xdp-redirect:native --modes relay --rates 1000 --duration 1", output);
  EXPECT_EQ(rc, 1) << output;
  ASSERT_TRUE(doc.is_object()) << output;
  ASSERT_FALSE(doc["results"].empty());
  for (const auto& r : doc["results"]) {
    ASSERT_TRUE(r.contains("error")) << r.dump(1);
    EXPECT_NE(r["error"].get<std::string>().find("xdp"), std::string::npos) << r["error"];
    EXPECT_FALSE(r.contains("accounting"));
  }
}

}  // namespace
}  // namespace ulsnet
