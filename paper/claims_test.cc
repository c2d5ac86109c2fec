// Verdict logic, intervals, the bootstrap, and claims judged from small synthetic result sets.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include "paper/claims.h"
#include "paper/report.h"
#include "paper/verdict.h"

namespace ulsnet::paper {
namespace {

using nlohmann::json;
constexpr double kInf = std::numeric_limits<double>::infinity();

Comparison higher(double lo, double hi, double goal = 2) {
  Comparison c;
  c.better = Better::kHigher;
  c.goal = goal;
  c.value = lo;
  c.interval = Interval{lo, hi, "test"};
  return c;
}
Comparison lower(double lo, double hi, double goal = 0.2) {
  Comparison c = higher(lo, hi, goal);
  c.better = Better::kLower;
  return c;
}

TEST(Judge, HigherIsBetterAtEveryBoundary) {
  EXPECT_EQ(judge(higher(2.0, 2.5)).verdict, Verdict::kHolds);     // lo at the goal
  EXPECT_EQ(judge(higher(1.99, 5)).verdict, Verdict::kPartly);     // the goal inside the interval
  EXPECT_EQ(judge(higher(1.01, 1.5)).verdict, Verdict::kPartly);   // better, below the goal
  EXPECT_EQ(judge(higher(1.0, 1.5)).verdict, Verdict::kUndecided); // lo at parity
  EXPECT_EQ(judge(higher(0.8, 1.2)).verdict, Verdict::kUndecided);
  EXPECT_EQ(judge(higher(0.5, 1.0)).verdict, Verdict::kDoesNot);   // hi at parity: not higher
  EXPECT_EQ(judge(higher(0.2, 0.3)).verdict, Verdict::kDoesNot);
  EXPECT_EQ(judge(higher(3, kInf)).verdict, Verdict::kHolds);      // censored above
  EXPECT_EQ(judge(higher(0, 0.9)).verdict, Verdict::kDoesNot);     // censored baseline, still below 1
  EXPECT_EQ(judge(higher(0, kInf)).verdict, Verdict::kUndecided);  // nothing known
}

TEST(Judge, LowerIsBetterMirrors) {
  EXPECT_EQ(judge(lower(0.1, 0.2)).verdict, Verdict::kHolds);
  EXPECT_EQ(judge(lower(0.1, 0.21)).verdict, Verdict::kPartly);
  EXPECT_EQ(judge(lower(0.4, 0.99)).verdict, Verdict::kPartly);
  EXPECT_EQ(judge(lower(0.9, 1.0)).verdict, Verdict::kUndecided);
  EXPECT_EQ(judge(lower(1.0, 1.3)).verdict, Verdict::kDoesNot);
  // "About a system call" (goal above 1): within the goal holds, wholly above parity and the goal fails.
  EXPECT_EQ(judge(lower(1.2, 1.8, 2)).verdict, Verdict::kHolds);
  EXPECT_EQ(judge(lower(2.5, 3, 2)).verdict, Verdict::kDoesNot);
}

TEST(Judge, NothingMeasuredOrInvalidIsUndecided) {
  Comparison c;
  EXPECT_EQ(judge(c).verdict, Verdict::kUndecided);
  EXPECT_EQ(judge(c).reason, "not measured");
  EXPECT_EQ(judge(higher(2, 1)).verdict, Verdict::kUndecided);  // lo > hi
  EXPECT_EQ(judge(higher(std::nan(""), 3)).verdict, Verdict::kUndecided);
  Comparison v;  // a value alone is a degenerate interval
  v.value = 2.5;
  v.goal = 2;
  EXPECT_EQ(judge(v).verdict, Verdict::kHolds);
}

TEST(Combine, Rules) {
  using V = Verdict;
  EXPECT_EQ(combine({}), V::kUndecided);
  EXPECT_EQ(combine({V::kUndecided, V::kUndecided}), V::kUndecided);
  EXPECT_EQ(combine({V::kHolds, V::kHolds}), V::kHolds);
  EXPECT_EQ(combine({V::kHolds, V::kPartly}), V::kPartly);
  EXPECT_EQ(combine({V::kHolds, V::kDoesNot}), V::kPartly);
  EXPECT_EQ(combine({V::kHolds, V::kUndecided}), V::kPartly);
  EXPECT_EQ(combine({V::kDoesNot, V::kDoesNot}), V::kDoesNot);
  EXPECT_EQ(combine({V::kDoesNot, V::kUndecided}), V::kDoesNot);  // half decided, all negative
  EXPECT_EQ(combine({V::kDoesNot, V::kUndecided, V::kUndecided}), V::kUndecided);
}

TEST(Intervals, BracketRatioAndRange) {
  Interval r = bracket_ratio(200, 210, 100, 105);
  EXPECT_DOUBLE_EQ(r.lo, 200.0 / 105);
  EXPECT_DOUBLE_EQ(r.hi, 210.0 / 100);
  EXPECT_EQ(bracket_ratio(200, kInf, 100, 105).hi, kInf);  // subject censored
  EXPECT_EQ(bracket_ratio(200, 210, 100, kInf).lo, 0);     // baseline censored
  Interval u = range_over({{0.8, 0.9, ""}, {1.6, 1.8, ""}, {0.7, 0.75, ""}});
  EXPECT_DOUBLE_EQ(u.lo, 0.7);
  EXPECT_DOUBLE_EQ(u.hi, 1.8);
  EXPECT_EQ(u.kind, "range over 3 runs");
}

TEST(Bootstrap, StddevRatioCoversTheTruthAndIsReproducible) {
  // a: values with sd 1 (alternating), b: sd 4: the ratio is 0.25.
  std::vector<double> a, b;
  for (int i = 0; i < 400; ++i) a.push_back(i % 2 ? 1 : -1), b.push_back(i % 2 ? 4 : -4);
  auto iv = bootstrap_stddev_ratio(a, b);
  ASSERT_TRUE(iv);
  EXPECT_LE(iv->lo, 0.25);
  EXPECT_GE(iv->hi, 0.25);
  EXPECT_LT(iv->hi - iv->lo, 0.05);
  auto again = bootstrap_stddev_ratio(a, b);
  EXPECT_EQ(again->lo, iv->lo);
  EXPECT_EQ(again->hi, iv->hi);
  EXPECT_FALSE(bootstrap_stddev_ratio({1}, b));
  EXPECT_DOUBLE_EQ(stddev({1, 2, 3, 4}), std::sqrt(5.0 / 3));
}

TEST(Bootstrap, MeanRatioCoversTheTruthAndRefusesAZeroBaseline) {
  // a: mean 4 (3 and 5), b: mean 50 (40 and 60): the ratio is 0.08.
  std::vector<double> a, b, zeros(100, 0.0);
  for (int i = 0; i < 400; ++i) a.push_back(i % 2 ? 3 : 5), b.push_back(i % 2 ? 40 : 60);
  auto iv = bootstrap_mean_ratio(a, b);
  ASSERT_TRUE(iv);
  EXPECT_LE(iv->lo, 0.08);
  EXPECT_GE(iv->hi, 0.08);
  EXPECT_GT(iv->lo, 0.07);
  EXPECT_LT(iv->hi, 0.09);
  EXPECT_FALSE(bootstrap_mean_ratio(a, zeros));  // no resample has a positive baseline
  EXPECT_FALSE(bootstrap_mean_ratio(a, {50}));
}

// Small documents of each kind.
json netns_doc(double ratio_lo, double ratio_hi, const std::string& date) {
  json t = json::array();
  for (const char* b : {"kernel-socket:batched", "raw-socket:af_packet", "user-thread:af_packet"})
    t.push_back({{"target", std::string("pdr of sandbox:af_xdp vs ") + b + " (relay)"},
                 {"value", ratio_lo},
                 {"interval", {ratio_lo, ratio_hi}},
                 {"status", "x"}});
  return {{"schema", "ulsnet.throughput.v2"},
          {"environment", {{"date", date}, {"describe", "abc"}, {"cpu_model", "cpu"}}},
          {"capacity", json::array({json::object()})},
          {"targets", t}};
}

json vm_doc(bool copies) {
  json proxy = {{"forwarded", 1000},
                {"device",
                 {{"in", {{"copies", copies ? 5 : 0}, {"copy_mode", "zero-copy"}}},
                  {"out", {{"copies", 0}, {"copy_mode", "zero-copy"}}}}},
                {"proxy_vm", {{"kernel_ip_in_receives", 0}, {"kernel_softnet_processed", 0}}},
                {"nic", {{"eth0", {{"e1000_mpc", 0}}}}}};
  return {{"schema", "ulsnet.throughput-vm.v2"},
          {"environment", {{"date", "2026-01-01"}}},
          {"results", json::array({{{"method", "sandbox"}, {"variant", "uls"}, {"proxy", proxy}}})},
          {"targets", json::array({{{"target", "capacity vs kernel-socket batched relay"}, {"value", 3.0}}})}};
}

// One vm_jitter row: 200 delays of base_ns +- spread_ns (alternating), after `warmup` samples of
// 1 ms delay that the row says are its warm-up.
json jitter_row(const char* service, int64_t base_ns, int64_t spread_ns, int launch = 1, int warmup = 0) {
  json due = json::array(), ran = json::array();
  for (int i = 0; i < warmup + 200; ++i) {
    due.push_back(int64_t(i) * 1000000);
    const int64_t d = i < warmup ? 1000000 : base_ns + (i % 2 ? spread_ns : -spread_ns);
    ran.push_back(int64_t(i) * 1000000 + d);
  }
  json r = {{"protection", "kernel"}, {"service", service}, {"hogs", 2},          {"launch", launch},
            {"warmup_samples", warmup}, {"raw", {{"due_ns", due}, {"ran_ns", ran}}}};
  if (std::string(service) == "uls-upcall") r["kernel_counters"] = {{"in_current", 199}, {"in_host", 1}};
  return r;
}

json jitter_doc() {
  return {{"experiment", "vm_jitter"},
          {"environment", {{"date", "2026-01-01"}}},
          {"runs", json::array({jitter_row("user-thread", 100000, 50000), jitter_row("uls-upcall", 20000, 5000)})}};
}

TEST(Claims, JudgedFromSyntheticResults) {
  Inputs in;
  in.netns = netns_doc(0.7, 0.8, "2026-01-01");
  in.files["netns"] = "netns.json";
  in.vm = vm_doc(false);
  in.files["vm"] = "vm.json";
  in.vm_jitter = jitter_doc();
  in.files["vm-jitter"] = "jitter.json";
  auto claims = evaluate_claims(in);
  ASSERT_EQ(claims.size(), 4u);
  for (const auto& c : claims) EXPECT_EQ(c.judged.size(), c.comparisons.size()) << c.id;
  // C1: netns does not (0.7-0.8), the VM's one value holds (3 >= 2), the rest unmeasured: partly.
  EXPECT_EQ(claims[0].judged[0].verdict, Verdict::kDoesNot);
  EXPECT_EQ(claims[0].judged[3].verdict, Verdict::kHolds);
  EXPECT_EQ(claims[0].judged[4].verdict, Verdict::kUndecided);
  EXPECT_EQ(claims[0].verdict, Verdict::kPartly);
  // C2: sd 5 us against 50 us, ratio 0.1 <= 0.2; mean delay 20 us against 100, 0.2 <= 0.5; and
  // the upcalls ran in the current process.
  ASSERT_EQ(claims[1].comparisons.size(), 2u);
  ASSERT_TRUE(claims[1].comparisons[0].value);
  EXPECT_NEAR(*claims[1].comparisons[0].value, 0.1, 1e-9);
  ASSERT_TRUE(claims[1].comparisons[1].value);
  EXPECT_NEAR(*claims[1].comparisons[1].value, 0.2, 1e-9);
  EXPECT_EQ(claims[1].verdict, Verdict::kHolds);
  ASSERT_EQ(claims[1].checks.size(), 1u);
  EXPECT_TRUE(claims[1].checks[0].passed);
  // C3: every check holds, on the one sandbox:uls row.
  EXPECT_EQ(claims[2].verdict, Verdict::kHolds);
  EXPECT_EQ(claims[2].checks[0].detail, "1 of 1 sandbox:uls rows");
  // C4: no micro result: undecided, and said so.
  EXPECT_EQ(claims[3].verdict, Verdict::kUndecided);
  EXPECT_EQ(claims[3].judged[0].reason, "not measured");

  in.vm = vm_doc(true);  // a copy counted on the ULS path: C3 does not hold
  EXPECT_EQ(evaluate_claims(in)[2].checks[0].passed, false);
  EXPECT_NE(evaluate_claims(in)[2].verdict, Verdict::kHolds);
}

TEST(Claims, VmJitterOverLaunchesPastTheWarmupAndBelowTheFloor) {
  Inputs in;
  in.files["vm-jitter"] = "jitter.json";
  // Two launches; the second's upcall varies twice as much. Each row starts with 10 warm-up
  // samples of 1 ms, which would dominate both statistics if they were counted.
  in.vm_jitter = json{{"experiment", "vm_jitter"},
                      {"runs", json::array({jitter_row("user-thread", 100000, 50000, 1, 10),
                                            jitter_row("uls-upcall", 20000, 5000, 1, 10),
                                            jitter_row("user-thread", 100000, 50000, 2, 10),
                                            jitter_row("uls-upcall", 20000, 10000, 2, 10)})}};
  auto c2 = evaluate_claims(in)[1];
  ASSERT_EQ(c2.comparisons.size(), 2u);
  const Comparison& jit = c2.comparisons[0];
  ASSERT_TRUE(jit.value && jit.interval);
  EXPECT_NEAR(*jit.value, 0.15, 1e-9);  // the median of 0.1 and 0.2
  EXPECT_EQ(jit.interval->kind, "range over 2 launches' bootstrap 95% CIs");
  EXPECT_LE(jit.interval->lo, 0.1);
  EXPECT_GE(jit.interval->hi, 0.2);
  EXPECT_NE(jit.note.find("median of 2 launches"), std::string::npos) << jit.note;
  EXPECT_NEAR(*c2.comparisons[1].value, 0.2, 1e-9);  // the warm-up's 1 ms left out of the means
  EXPECT_EQ(c2.judged[0].verdict, Verdict::kPartly);  // 0.2 is above the goal 0.2 at the range's top
  EXPECT_EQ(c2.checks.size(), 1u);
  EXPECT_NE(c2.checks[0].detail.find("398 in the current process, 2 in a woken host (2 launches)"),
            std::string::npos)
      << c2.checks[0].detail;

  // Under icount neither may vary: sd 0.2 us and 0.006 us are a ratio of 33 but no jitter the
  // claim is about, so the comparison is left undecided, while the mean delay still decides.
  in.vm_jitter = json{{"experiment", "vm_jitter"},
                      {"runs", json::array({jitter_row("user-thread", 52100, 6), jitter_row("uls-upcall", 3900, 200)})}};
  (*in.vm_jitter)["runs"][0]["clock"] = "icount";
  c2 = evaluate_claims(in)[1];
  EXPECT_FALSE(c2.comparisons[0].value);
  EXPECT_EQ(c2.judged[0].verdict, Verdict::kUndecided);
  EXPECT_NE(c2.comparisons[0].note.find("neither service's delay varied by 1 us"), std::string::npos)
      << c2.comparisons[0].note;
  EXPECT_EQ(c2.judged[1].verdict, Verdict::kHolds);  // 3.9 / 52.1 = 0.075 <= 0.5
  EXPECT_NE(c2.caveats[0].find("-icount"), std::string::npos);
  EXPECT_EQ(c2.verdict, Verdict::kPartly);
  // One upcall deferred by 500 us lifts its sd over the floor: then the ratio decides (not lower).
  (*in.vm_jitter)["runs"][1]["raw"]["ran_ns"][100] = (*in.vm_jitter)["runs"][1]["raw"]["due_ns"][100].get<int64_t>() + 500000;
  c2 = evaluate_claims(in)[1];
  ASSERT_TRUE(c2.comparisons[0].value);
  EXPECT_GT(*c2.comparisons[0].value, 1);
}

TEST(Claims, AVmRunWithTheSearchAddsItsPdrBrackets) {
  Inputs in;
  in.vm = vm_doc(false);
  in.files["vm"] = "vm.json";
  const size_t without = evaluate_claims(in)[0].comparisons.size();
  // sandbox:uls PDR in [9000, 10000), kernel-socket:batched in [4000, 4400): 2.05..2.5 >= 2.
  (*in.vm)["targets"].push_back({{"target", "pdr of sandbox:uls vs kernel-socket:batched (relay)"},
                                 {"value", 2.25},
                                 {"interval", {9000.0 / 4400, 10000.0 / 4000}},
                                 {"status", "met"}});
  const auto claims = evaluate_claims(in);
  ASSERT_EQ(claims[0].comparisons.size(), without + 1);
  const Comparison& c = claims[0].comparisons.back();
  EXPECT_EQ(c.name, "VMs, PDR, sandbox:uls / kernel-socket:batched (real ULS kernel)");
  ASSERT_TRUE(c.interval);
  EXPECT_NEAR(c.interval->lo, 9000.0 / 4400, 1e-9);
  EXPECT_EQ(claims[0].judged.back().verdict, Verdict::kHolds);
}

TEST(Claims, ARealHostsRunAddsItsPdrBracketsWhereItMeasuredThem) {
  json ssh = {{"schema", "ulsnet.throughput-ssh.v1"},
              {"controller", {{"environment", {{"date", "2026-02-03"}}}}},
              {"targets", json::array({{{"target", "pdr of sandbox:af_xdp vs kernel-socket:batched (relay)"},
                                        {"value", 1.5},
                                        {"interval", {1.4, 1.6}},
                                        {"status", "not met"}},
                                       {{"target", "pdr of sandbox:af_xdp vs raw-socket:af_packet (relay)"},
                                        {"status", "not measured in this run"}}})}};
  EXPECT_EQ(kind_of(ssh), "ssh");
  Inputs in;
  const size_t without = evaluate_claims(in)[0].comparisons.size();
  in.ssh = ssh;
  in.files["ssh"] = "ssh.json";
  const auto claims = evaluate_claims(in);
  ASSERT_EQ(claims[0].comparisons.size(), without + 1);  // the unmeasured one is left out
  EXPECT_EQ(claims[0].comparisons.back().name, "real hosts over SSH, PDR, sandbox:af_xdp / kernel-socket:batched");
  EXPECT_EQ(claims[0].comparisons.back().evidence, "ssh.json");
  // 1.4..1.6: above parity, below the goal of 2.
  EXPECT_EQ(claims[0].judged.back().verdict, Verdict::kPartly);
}

TEST(Claims, ForwardingUnderCompetitionOnRealHostsIsC2Context) {
  json ssh = {{"schema", "ulsnet.throughput-ssh.v1"},
              {"controller", {{"environment", {{"date", "2026-02-03"}}}}},
              {"results", json::array({{{"method", "sandbox"}, {"variant", "af_xdp"}, {"competitors", 0},
                                        {"latency_ns", {{"p99", 100000}}}},
                                       {{"method", "sandbox"}, {"variant", "af_xdp"}, {"competitors", 2},
                                        {"latency_ns", {{"p99", 2500000}}}},
                                       {{"method", "kernel-socket"}, {"variant", "batched"}, {"competitors", 2},
                                        {"latency_ns", {{"p99", 9000000}}}},
                                       {{"method", "raw-socket"}, {"variant", "af_packet"}, {"competitors", 2},
                                        {"error", "the proxy died"}}})}};
  Inputs in;
  in.ssh = ssh;
  in.files["ssh"] = "ssh.json";
  const auto claims = evaluate_claims(in);
  std::string found;
  for (const auto& cv : claims[1].caveats)
    if (cv.find("real hosts over SSH") != std::string::npos) found = cv;
  EXPECT_EQ(found,
            "Stock kernel, real hosts over SSH (ssh.json): forwarding latency p99 at the common load with 2 CPU "
            "competitors on the proxy's CPU: sandbox:af_xdp 2.50 ms, kernel-socket:batched 9.00 ms (figure "
            "competition-jitter).");
  // Without competitor points nothing is said.
  ssh["results"] = json::array({ssh["results"][0]});
  in.ssh = ssh;
  const auto without = evaluate_claims(in);
  for (const auto& cv : without[1].caveats) EXPECT_EQ(cv.find("real hosts over SSH"), std::string::npos);
}

TEST(Claims, StabilityRunsWidenTheIntervalToTheirRange) {
  Inputs in;
  in.netns = netns_doc(2.1, 2.2, "2026-01-01");
  in.files["netns"] = "n.json";
  json st = {{"kind", "netns"}, {"headline", "h"}, {"runs", json::array()}};
  for (double r : {2.1, 0.9, 2.5}) st["runs"].push_back(netns_doc(r, r + 0.1, "2026-01-01"));
  in.netns_stability = st;
  auto c1 = evaluate_claims(in)[0];
  ASSERT_TRUE(c1.comparisons[0].interval);
  EXPECT_DOUBLE_EQ(c1.comparisons[0].interval->lo, 0.9);
  EXPECT_NEAR(c1.comparisons[0].interval->hi, 2.6, 1e-12);
  EXPECT_EQ(c1.judged[0].verdict, Verdict::kUndecided);  // one run below parity, two above the goal
}

TEST(Claims, AFileOutsideTheStabilityRunsJoinsTheirRange) {
  Inputs in;
  in.netns = netns_doc(0.5, 0.55, "2026-02-02");  // a later run, not one of the record's
  in.files["netns"] = "n.json";
  json st = {{"kind", "netns"}, {"headline", "h"}, {"runs", json::array()}};
  for (double r : {2.1, 0.9, 2.5}) st["runs"].push_back(netns_doc(r, r + 0.1, "2026-01-01"));
  in.netns_stability = st;
  auto c1 = evaluate_claims(in)[0];
  ASSERT_TRUE(c1.comparisons[0].interval);
  EXPECT_DOUBLE_EQ(c1.comparisons[0].interval->lo, 0.5);  // this file's value is inside its interval
  EXPECT_NEAR(c1.comparisons[0].interval->hi, 2.6, 1e-12);
  EXPECT_NE(c1.comparisons[0].note.find("(this file)"), std::string::npos) << c1.comparisons[0].note;
  EXPECT_NE(c1.comparisons[0].interval->kind.find("4"), std::string::npos) << c1.comparisons[0].interval->kind;
}

TEST(Claims, MicroBenchmarksGiveC4) {
  Inputs in;
  auto it = [](const char* name, double t) {
    return json{{"name", name}, {"run_name", name}, {"run_type", "iteration"}, {"real_time", t}, {"time_unit", "ns"}};
  };
  json b = json::array();
  for (double t : {180.0, 190.0}) b.push_back(it("BM_NullSyscall", t));
  for (double t : {5000.0, 5500.0}) b.push_back(it("BM_ProcessPipeRoundTrip/real_time", t));
  for (double t : {300.0, 320.0}) b.push_back(it("BM_ExtensionInvoke/mprotect", t));
  b.push_back({{"name", "BM_ExtensionInvoke/pkey"}, {"run_name", "BM_ExtensionInvoke/pkey"}, {"error_occurred", true},
               {"error_message", "no PKU"}});
  in.micro = json{{"context", {{"date", "d"}}}, {"benchmarks", b}};
  in.files["micro"] = "micro.json";
  auto c4 = evaluate_claims(in)[3];
  ASSERT_EQ(c4.comparisons.size(), 4u);  // mprotect x 2, none x 2 (unmeasured); pkey left out
  EXPECT_EQ(c4.judged[0].verdict, Verdict::kHolds);   // [300/190, 320/180] within 2x of a syscall
  EXPECT_EQ(c4.judged[1].verdict, Verdict::kPartly);  // [300/2750, 320/2500] = [0.11, 0.13]: not 0.1
  ASSERT_TRUE(c4.comparisons[1].interval);
  EXPECT_DOUBLE_EQ(c4.comparisons[1].interval->lo, 300.0 / 2750);
  EXPECT_DOUBLE_EQ(c4.comparisons[1].interval->hi, 320.0 / 2500);
  EXPECT_EQ(c4.verdict, Verdict::kPartly);  // the unprotected mode is shown, not judged
}

// //bench:vm_micro's runs: instruction ratios per protection mode; a run whose own checks failed
// (the kernel's counters showed raises that ran no upcall) is shown but not judged.
TEST(Claims, VmMicroJudgesOnlyRunsWhoseOwnChecksPassed) {
  auto run = [](const char* prot, double up, json problems) {
    auto op = [](const char* name, double v) {
      return json{{"op", name}, {"insns_per_op", {{"min", v}, {"median", v}, {"max", v}}}};
    };
    return json{{"protection", prot},
                {"accel", "tcg"},
                {"ops", json::array({op("upcall", up), op("syscall", 200), op("pipe", 8000)})},
                {"problems", problems}};
  };
  Inputs in;
  in.vm_micro = json{{"runs", json::array({run("kernel", 300, json::array()),
                                           run("none", 100, json::array({"the kernel's counters do not show one "
                                                                         "returned upcall in the raiser per raise"}))})}};
  in.files["vm-micro"] = "vm-micro.json";
  const auto c4 = evaluate_claims(in)[3];
  auto find = [&](const std::string& part) -> const Comparison* {
    for (const auto& c : c4.comparisons)
      if (c.name.find(part) != std::string::npos) return &c;
    return nullptr;
  };
  const Comparison* ok = find("a null system call, guest instructions (uls.protect=1)");
  ASSERT_NE(ok, nullptr);
  ASSERT_TRUE(ok->value);
  EXPECT_DOUBLE_EQ(*ok->value, 300.0 / 200);
  const Comparison* bad = find("a null system call, guest instructions (uls.protect=0)");
  ASSERT_NE(bad, nullptr);
  EXPECT_FALSE(bad->value);
  EXPECT_FALSE(bad->interval);
  EXPECT_NE(bad->note.find("not judged: the run's own checks failed: the kernel's counters"), std::string::npos)
      << bad->note;
}

TEST(Inputs, RecognisedByContentNewestWins) {
  const auto dir = std::filesystem::path(testing::TempDir()) / "claims_inputs";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  auto write = [&](const char* name, const json& j) { std::ofstream(dir / name) << j.dump(); };
  write("a.json", netns_doc(1, 1, "2026-01-01"));
  write("b.json", netns_doc(1, 1, "2026-02-01"));  // newer, same number of entries: wins
  write("c.json", jitter_doc());
  write("d.json", json{{"hello", 1}});
  std::ofstream(dir / "e.json") << "{not json";
  Inputs in = load_inputs(dir.string());
  EXPECT_EQ(in.files["netns"], (dir / "b.json").string());
  EXPECT_EQ(in.files["vm-jitter"], (dir / "c.json").string());
  EXPECT_EQ(in.ignored.size(), 3u);  // a (older), d (unknown), e (not JSON)
  EXPECT_THROW(load_inputs((dir / "missing").string()), std::runtime_error);
}

TEST(Report, FiguresGoBackIntoTheGroffText) {
  const std::string ms = ".PP\nText\n[IMAGE: netns-capacity]\n[IMAGE: missing]\n[IMAGE: a b]\n[IMAGE: netns-cpu]x\n";
  const std::string got = ms_with_figures(ms, "figures", [](const std::string& n) { return n != "missing"; });
  EXPECT_EQ(got,
            ".PP\nText\n.PDFPIC -C figures/netns-capacity.pdf 6i\n[IMAGE: missing]\n[IMAGE: a b]\n"
            "[IMAGE: netns-cpu]x\n");
}

TEST(Report, TheInputsTableSaysHowTheVmJitterRan) {
  Inputs in;
  in.vm_jitter = jitter_doc();
  (*in.vm_jitter)["config"] = {{"launches", 2}};
  (*in.vm_jitter)["clock_plan"] = {{"clock", "icount"}, {"why", "the accelerator is TCG"}};
  in.files["vm-jitter"] = "jitter.json";
  const std::string r = render_report(evaluate_claims(in), in, json::array(), "cmd");
  EXPECT_NE(r.find("; 2 launches per protection mode, icount clock (the accelerator is TCG)"), std::string::npos) << r;
}

TEST(Report, EveryClaimHasAVerdictAndTheReadmeBlockIsReplaced) {
  Inputs in;
  in.netns = netns_doc(0.7, 0.8, "2026-01-01");
  in.files["netns"] = "netns.json";
  auto claims = evaluate_claims(in);
  const std::string r = render_report(claims, in, json::array(), "cmd");
  for (const char* id : {"## C1", "## C2", "## C3", "## C4"}) EXPECT_NE(r.find(id), std::string::npos) << id;
  EXPECT_NE(r.find("**Verdict: "), std::string::npos);
  EXPECT_NE(r.find("(#c1-throughput)"), std::string::npos);
  const std::string doc = "a\n<!-- verdicts:begin -->\nold\n<!-- verdicts:end -->\nb\n";
  const std::string out = replace_generated_block(doc, "NEW\n");
  EXPECT_EQ(out, "a\n<!-- verdicts:begin -->\nNEW\n<!-- verdicts:end -->\nb\n");
  EXPECT_THROW(replace_generated_block("no markers", "x"), std::runtime_error);
}

}  // namespace
}  // namespace ulsnet::paper
