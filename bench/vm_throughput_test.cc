// //bench:throughput --hosts=vm end to end, on the real three VMs (root and QEMU; skipped with the
// reason otherwise): a short paced stream through the ULS path whose accounting must close
// exactly, with one-way delays on a shared clock and the proxy's instruction counts; and a
// method that cannot run, which must be an error row and a failing exit status.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <set>
#include <string>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "kernel/vm_harness.h"

namespace ulsnet {
namespace {

class VmThroughput : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (QEMU hosts in a private network namespace)";
    if (vm::sh("command -v qemu-system-x86_64").first != 0) GTEST_SKIP() << "qemu-system-x86_64 not installed";
  }

  // Runs the throughput binary with `args`; returns {exit status, the result JSON (null if none)}.
  static std::pair<int, nlohmann::json> run(const std::string& name, const std::string& args, std::string& output) {
    const std::string out = vm::test_tmpdir() + "/" + name + ".json";
    // TMPDIR: the runner's work directory (kept when a run fails) goes where the test's files go.
    auto [rc, o] = vm::sh("TMPDIR=" + vm::test_tmpdir() + " " + vm::runfile("bench/throughput") + " --hosts=vm " + args +
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
    // Every one arrives -- except frames of an upcall the kernel ended past its budget where the
    // guest's clock ran while its vCPU did not (TCG on a loaded host: see kernel/vm_test.cc's
    // proxy test; seen in CI: 1 of 1000, "taken_by_an_upcall_the_kernel_ended"). Those are
    // accepted only if they are all the loss, at most one upcall in 500 was ended so, and the
    // mean upcall is at most a tenth of the 10 ms budget (a twentieth until CI saw 3 of 1000
    // lost to 1 ended upcall in 432 with a 673 us mean: TCG time, this test running alone; the
    // same test passed when run again).
    const nlohmann::json& x = r["proxy"]["extension"];
    const uint64_t ended = a["drops"]["proxy_extension"].value("taken_by_an_upcall_the_kernel_ended", uint64_t{0});
    const uint64_t upcalls = x.value("upcalls", uint64_t{0}), overruns = x.value("overruns", uint64_t{0});
    const bool steal = ended > 0 && a["dropped"].get<uint64_t>() == ended && overruns * 500 <= upcalls &&
                       x.value("run_ns", uint64_t{0}) / std::max<uint64_t>(upcalls, 1) <= 1000000;
    if (!steal) {
      EXPECT_EQ(a["received"], count) << "loss at " << r["offered"] << "/s: " << a.dump(1) << x.dump(1);
    }
    for (const char* stage : {"sender", "link_sender_proxy", "proxy_kernel", "proxy_stack", "proxy_queue",
                              "proxy_extension", "proxy_tx", "link_proxy_receiver", "receiver_kernel", "receiver_app"})
      EXPECT_TRUE(a["drops"].contains(stage)) << stage;
    // Every NIC on the way saw the stream (the counts include a few frames that are not its own).
    EXPECT_GE(a["path"]["sender_nic_tx"], count);
    EXPECT_GE(a["path"]["proxy_nic_rx"], count);
    EXPECT_GE(a["path"]["receiver_nic_rx"].get<uint64_t>() + ended, count);
    // 24-byte payloads: 66-byte frames, as the sender says it sent; 512: 554. The cost run is at
    // the first size.
    const bool big = r["payload_bytes"] == 512;
    big_rows += big;
    EXPECT_EQ(r["frame_bytes"], big ? 554 : 66);
    if (r["purpose"] == "cost") {
      EXPECT_EQ(r["payload_bytes"], 24);
    }
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
      // Every datagram that arrived is timed; the first 50 ms of the stream (the warm-up) are
      // left out of the statistics and counted apart.
      EXPECT_EQ(l["latency_ns"]["samples"].get<uint64_t>() + l["latency_ns"]["warmup_excluded"].get<uint64_t>(),
                a["received"].get<uint64_t>())
          << l.dump(1);
      EXPECT_GT(l["latency_ns"]["warmup_excluded"].get<uint64_t>(), 0u) << l.dump(1);
      EXPECT_LT(l["latency_ns"]["warmup_excluded"].get<uint64_t>(), count / 5) << l.dump(1);
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

// The NDR/PDR search on the VMs (one launch per trial; the job's unpaced point is its first
// step), the offered-load sweep at a fraction of the PDR found, per-point summaries; then the
// same command again resumes the finished file (every launch kept, none re-run) and another
// configuration with the same --out is refused. The plan is the accelerator's: 2 repetitions and
// 6 search launches asked for, 1 and 4 under TCG (--vm-tcg-reps, --vm-tcg-search-trials).
TEST_F(VmThroughput, TheSearchBracketsTheUlsPathTheSweepFollowsItAndTheSameOutResumes) {
  const std::string args =
      "--methods sandbox:uls --modes relay --vm-search --loads 0.3 --search-trials 6 --vm-tcg-search-trials 4 "
      "--reps 2 --vm-tcg-reps 1 --duration 0.5 --vm-icount off --vm-cost-count 500";
  std::string output;
  auto [rc, doc] = run("search", args, output);
  ASSERT_EQ(rc, 0) << output;
  ASSERT_TRUE(doc.is_object()) << output;
  EXPECT_TRUE(doc["complete"].get<bool>());
  ASSERT_TRUE(doc.contains("accelerator_plan")) << output;
  const nlohmann::json& plan = doc["accelerator_plan"];
  const bool tcg = plan["accelerator"] == "tcg";
  EXPECT_FALSE(plan["reason"].get<std::string>().empty()) << plan.dump();
  EXPECT_EQ(plan["reps_requested"], 2);
  EXPECT_EQ(plan["search_trials_requested"], 6);
  const int reps = tcg ? 1 : 2;
  EXPECT_EQ(plan["reps"], reps);
  EXPECT_EQ(plan["search_trials"], tcg ? 4 : 6);
  EXPECT_EQ(doc["config"]["reps"], reps);
  EXPECT_EQ(doc["config"]["under_tcg"], nlohmann::json({{"reps", 1}, {"search_trials", 4}}));
  // Every launch ran under the accelerator the plan was made for.
  for (const auto& r : doc["results"])
    if (r.contains("labels")) {
      EXPECT_EQ(r["labels"]["accelerator"], plan["accelerator"]) << r["point"];
    }
  ASSERT_EQ(doc["capacity"].size(), 1u) << output;
  const nlohmann::json& cap = doc["capacity"][0];
  const nlohmann::json& steps = cap["steps"];
  ASSERT_GE(steps.size(), 1u);
  EXPECT_LE(steps.size(), size_t(plan["search_trials"].get<int>()));
  EXPECT_EQ(steps[0]["rate_pps"], 0);
  EXPECT_TRUE(steps[0].contains("reused")) << steps[0].dump();
  std::set<std::string> points;
  for (const auto& r : doc["results"]) {
    ASSERT_FALSE(r.contains("error")) << r.dump(1);
    // Exact, except where an upcall the kernel ended while a device was taking frames left
    // frames of unknown kind (counted as drops; a readiness ping among them): then the
    // accounting says so.
    if (!r["accounting"].contains("unaccounted_note"))
      EXPECT_EQ(r["accounting"]["unaccounted"], 0) << r["point"] << " " << r["accounting"].dump();
    else
      EXPECT_LT(r["accounting"]["unaccounted"].get<int64_t>(), 0) << r["accounting"].dump();
    points.insert(r["point"].get<std::string>());
  }
  // Every step is a launch in the results (the first the unpaced point's).
  for (const auto& st : steps) EXPECT_TRUE(points.count(st["point"].get<std::string>())) << st.dump();
  // The unpaced point (the search's first step), the other steps, the sweep's point and the cost
  // run, the three in every repetition.
  EXPECT_EQ(doc["results"].size(),
            reps + (steps.size() - 1) + reps * (cap["pdr"]["lower_pps"].is_number() ? 1 : 0) + reps);
  for (const char* c : {"ndr", "pdr"}) {
    const nlohmann::json& k = cap[c];
    if (k["lower_pps"].is_number() && k["upper_pps"].is_number()) {
      EXPECT_LT(k["lower_pps"].get<double>(), k["upper_pps"].get<double>()) << k.dump();
    }
  }
  if (cap["pdr"]["lower_pps"].is_number()) {
    const double pdr = cap["pdr"]["lower_pps"];
    bool swept = false;
    for (const auto& r : doc["results"])
      if (r["purpose"] == "load") {
        swept = true;
        EXPECT_DOUBLE_EQ(r["load_fraction"].get<double>(), 0.3);
        EXPECT_DOUBLE_EQ(r["offered"].get<double>(), std::max(1.0, std::round(0.3 * pdr)));
      }
    EXPECT_TRUE(swept) << output;
  }
  bool summarized = false;
  for (const auto& s : doc["summary"])
    if (s["purpose"] == "rate+latency") summarized = s["repetitions"] == reps;
  EXPECT_TRUE(summarized) << doc["summary"].dump(1);

  // Again, the same file: nothing is launched.
  std::string again;
  auto [rc2, doc2] = run("search", args, again);
  ASSERT_EQ(rc2, 0) << again;
  EXPECT_NE(again.find(fmt::format("{} of {} launches kept", doc["results"].size(), doc["results"].size())),
            std::string::npos)
      << again;
  EXPECT_EQ(again.find("datagrams)..."), std::string::npos) << again;
  ASSERT_EQ(doc2["results"].size(), doc["results"].size());
  for (size_t i = 0; i < doc["results"].size(); ++i) EXPECT_EQ(doc2["results"][i]["point"], doc["results"][i]["point"]);
  EXPECT_EQ(doc2["capacity"][0]["pdr"], cap["pdr"]);

  // Another configuration, the same file: refused, the file untouched.
  std::string other;
  // (Only the plan under TCG differs: the configuration records it whatever ran.)
  std::string changed = args;
  const std::string tcg_trials = "--vm-tcg-search-trials 4";
  changed.replace(changed.find(tcg_trials), tcg_trials.size(), "--vm-tcg-search-trials 5");
  auto [rc3, doc3] = run("search", changed, other);
  EXPECT_EQ(rc3, 2) << other;
  EXPECT_NE(other.find("another configuration"), std::string::npos) << other;
  EXPECT_EQ(doc3["results"].size(), doc["results"].size());
}

}  // namespace
}  // namespace ulsnet
