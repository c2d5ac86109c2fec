// The stability record from synthetic result documents.
#include "bench/stability.h"

#include <gtest/gtest.h>

namespace ulsnet {
namespace {

nlohmann::json netns_doc(nlohmann::json value, const std::string& status = "met") {
  nlohmann::json t{{"target", "pdr of sandbox:af_xdp vs kernel-socket:batched (relay)"}, {"status", status}};
  if (!value.is_null()) t["value"] = value;
  return {{"targets", {t}},
          {"environment", {{"commit", "abc"}}},
          {"config", {{"argv", {"throughput"}}}},
          {"capacity", {{{"method", "sandbox"}, {"variant", "af_xdp"}, {"mode", "relay"},
                         {"pdr", {{"lower_pps", 200}, {"upper_pps", 204}, {"status", "measured"}}}}}}};
}

TEST(Stability, SpreadIsMaxOverMinMinusOne) {
  nlohmann::json r = stability_record({netns_doc(2.0), netns_doc(2.1), netns_doc(2.05)}, {"a", "b", "c"},
                                      StabilityKind::kNetns);
  EXPECT_NEAR(r["spread"].get<double>(), 0.05, 1e-12);
  EXPECT_EQ(r["status"], "met");
  EXPECT_EQ(r["runs"].size(), 3u);
  EXPECT_EQ(r["runs"][1]["headline_ratio"], 2.1);
  EXPECT_EQ(r["runs"][1]["file"], "b");
  EXPECT_EQ(r["runs"][0]["summary"][0]["pdr"]["lower_pps"], 200);
  nlohmann::json bad = stability_record({netns_doc(1.0), netns_doc(1.2)}, {"a", "b"}, StabilityKind::kNetns);
  EXPECT_EQ(bad["status"], "not met");
  EXPECT_NEAR(bad["spread"].get<double>(), 0.2, 1e-12);
}

TEST(Stability, ARunWithoutAHeadlineIsAnError) {
  nlohmann::json r = stability_record({netns_doc(2.0), netns_doc(nullptr, "error")}, {"a", "b"},
                                      StabilityKind::kNetns);
  EXPECT_EQ(r["status"], "error");
  EXPECT_NE(r["note"].get<std::string>().find("run 2"), std::string::npos);
  EXPECT_TRUE(r["runs"][1]["headline_ratio"].is_null());
  EXPECT_EQ(stability_record({netns_doc(2.0)}, {"a"}, StabilityKind::kNetns)["status"], "error");
}

// A run whose headline has a side that is not a measured bracket (censored at the tester's
// ceiling): its ratio is of lower bounds, so the spread decides nothing.
TEST(Stability, ACensoredSideMakesTheSpreadUndecided) {
  nlohmann::json d = netns_doc(0.8, "undecided");
  d["targets"][0]["note"] = "kernel-socket:batched: censored";
  nlohmann::json r = stability_record({netns_doc(2.0), d, netns_doc(2.05)}, {"a", "b", "c"}, StabilityKind::kNetns);
  EXPECT_EQ(r["status"], "undecided");
  EXPECT_NE(r["note"].get<std::string>().find("run 2: kernel-socket:batched: censored"), std::string::npos) << r["note"];
  EXPECT_TRUE(r.contains("spread"));  // still computed, for the record
  EXPECT_EQ(r["runs"][1]["headline"]["not_comparable"], "kernel-socket:batched: censored");
}

TEST(Stability, VmHeadlineIsTheCostTarget) {
  nlohmann::json d{{"targets", {{{"target", "proxy-VM cost per forwarded packet vs kernel-socket batched, relay"},
                                  {"value", 0.3}, {"status", "met"}}}},
                   {"results", {{{"method", "sandbox"}, {"variant", "uls"}, {"purpose", "cost"},
                                 {"proxy_vm_insns_per_forwarded", {{"total", 1000}}}}}}};
  nlohmann::json d2 = d;
  d2["targets"][0]["value"] = 0.31;
  nlohmann::json r = stability_record({d, d2}, {"x", "y"}, StabilityKind::kVm);
  EXPECT_NEAR(r["spread"].get<double>(), 0.31 / 0.3 - 1, 1e-12);
  EXPECT_EQ(r["status"], "met");  // 3.3% <= 5%
  EXPECT_EQ(r["runs"][0]["summary"][0]["proxy_vm_insns_per_forwarded"]["total"], 1000);
  // A netns document has no VM headline.
  EXPECT_TRUE(headline_of(netns_doc(2.0), StabilityKind::kVm).contains("error"));
}

}  // namespace
}  // namespace ulsnet
