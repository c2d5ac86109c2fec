// Targets evaluated from synthetic results: brackets make ratios intervals, errors are errors.
#include "bench/targets.h"

#include <gtest/gtest.h>

namespace ulsnet {
namespace {

nlohmann::json cap(const std::string& m, const std::string& v, nlohmann::json lo, nlohmann::json hi,
                   const std::string& status = "measured") {
  return {{"method", m}, {"variant", v}, {"mode", "relay"}, {"protection", m == "sandbox" ? "mprotect" : "n/a"},
          {"payload_bytes", 64},
          {"pdr", {{"lower_pps", lo}, {"upper_pps", hi}, {"status", status}, {"censored", hi.is_null()}}}};
}

nlohmann::json common(const std::string& m, const std::string& v, double p99, double cpu) {
  return {{"method", m}, {"variant", v}, {"mode", "relay"}, {"protection", m == "sandbox" ? "mprotect" : "n/a"},
          {"payload_bytes", 64}, {"load", 1000.0}, {"load_basis", "test"},
          {"latency_ns", {{"p99", p99}}}, {"cpu", {{"proxy_host_ns_per_forwarded", cpu}}}};
}

const nlohmann::json& target(const nlohmann::json& t, const std::string& prefix) {
  for (const auto& e : t)
    if (e["target"].get<std::string>().find(prefix) != std::string::npos) return e;
  throw std::runtime_error("no target " + prefix);
}

TargetSubject subject() {
  TargetSubject s;
  s.protection = "mprotect";
  return s;
}

TEST(Targets, BracketsMakeTheRatioAnInterval) {
  nlohmann::json doc;
  doc["capacity"] = {cap("sandbox", "af_xdp", 400'000, 410'000), cap("kernel-socket", "batched", 100'000, 102'000),
                     cap("raw-socket", "af_packet", 150'000, 153'000), cap("user-thread", "af_packet", 130'000, 150'000),
                     cap("xdp-redirect", "native", 500'000, 510'000)};
  nlohmann::json t = evaluate_targets(doc, subject());
  const auto& ks = target(t, "vs kernel-socket:batched");
  EXPECT_EQ(ks["status"], "met");  // [400/102, 410/100] = [3.92, 4.1] >= 2
  EXPECT_DOUBLE_EQ(ks["value"].get<double>(), 4.0);
  EXPECT_NEAR(ks["interval"][0].get<double>(), 400.0 / 102, 1e-12);
  EXPECT_EQ(target(t, "vs raw-socket:af_packet")["status"], "not met");  // [2.61, 2.73] < 3
  EXPECT_EQ(target(t, "vs user-thread:af_packet")["status"], "undecided");  // [2.67, 3.15]
  EXPECT_EQ(target(t, "vs xdp-redirect:native")["status"], "undecided");   // [0.784, 0.82] around 0.8
}

TEST(Targets, CensoredNumeratorCanOnlyBeMetOrUndecided) {
  nlohmann::json doc;
  doc["capacity"] = {cap("sandbox", "af_xdp", 300'000, nullptr, "censored"),
                     cap("kernel-socket", "batched", 100'000, 110'000),
                     cap("raw-socket", "af_packet", 200'000, 210'000)};
  nlohmann::json t = evaluate_targets(doc, subject());
  EXPECT_EQ(target(t, "vs kernel-socket:batched")["status"], "met");
  const auto& rs = target(t, "vs raw-socket:af_packet");
  EXPECT_EQ(rs["status"], "undecided");  // >= 300/210 = 1.43, no upper end
  EXPECT_TRUE(rs["interval"][1].is_null());
  EXPECT_NE(rs["note"].get<std::string>().find("censored"), std::string::npos);
}

TEST(Targets, ACensoredBaselineNeverMakesTheSandboxMeetATarget) {
  nlohmann::json doc;
  doc["capacity"] = {cap("sandbox", "af_xdp", 300'000, 310'000),
                     cap("kernel-socket", "batched", 250'000, nullptr, "censored")};
  nlohmann::json t = evaluate_targets(doc, subject());
  EXPECT_EQ(target(t, "vs kernel-socket:batched")["status"], "not met");  // <= 310/250 = 1.24 < 2
}

TEST(Targets, ASandboxThatErrorsMakesItsTargetsErrorNotNotMet) {
  nlohmann::json doc;
  nlohmann::json bad = cap("sandbox", "af_xdp", nullptr, nullptr, "error");
  bad["error"] = "proxy: sandbox: cannot map the region";
  doc["capacity"] = {bad, cap("kernel-socket", "batched", 100'000, 110'000)};
  nlohmann::json c = common("sandbox", "af_xdp", 0, 0);
  c["error"] = "proxy: sandbox: cannot map the region";
  doc["results"] = {c, common("kernel-socket", "batched", 1000, 500)};
  nlohmann::json t = evaluate_targets(doc, subject());
  for (const char* k : {"vs kernel-socket:batched", "p99 latency", "proxy-host CPU"}) {
    EXPECT_EQ(target(t, k)["status"], "error") << k;
    EXPECT_NE(target(t, k)["note"].get<std::string>().find("cannot map"), std::string::npos) << k;
  }
  EXPECT_EQ(target(t, "vs raw-socket")["status"], "not measured in this run");
}

TEST(Targets, OtherSizesSweepPointsAndCompetitorPointsAreNotTheTargetsData) {
  nlohmann::json doc;
  nlohmann::json big = cap("sandbox", "af_xdp", 900'000, 910'000);
  big["payload_bytes"] = 1472;
  // The 1472 B entry comes first: only the 64 B one may count.
  doc["capacity"] = {big, cap("sandbox", "af_xdp", 150'000, 155'000), cap("kernel-socket", "batched", 100'000, 102'000)};
  nlohmann::json sweep = common("sandbox", "af_xdp", 10, 10);
  sweep["load_fraction"] = 0.5;
  nlohmann::json hogged = common("sandbox", "af_xdp", 20, 20);
  hogged["competitors"] = 2;
  doc["results"] = {sweep, hogged, common("sandbox", "af_xdp", 50, 500), common("kernel-socket", "batched", 100, 1000)};
  nlohmann::json t = evaluate_targets(doc, subject());
  EXPECT_EQ(target(t, "vs kernel-socket:batched")["status"], "not met");  // [1.47, 1.55] < 2, not 9
  EXPECT_DOUBLE_EQ(target(t, "p99 latency")["value"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(target(t, "proxy-host CPU")["value"].get<double>(), 0.5);
  EXPECT_TRUE(is_common_load_point(common("x", "y", 1, 1)));
  EXPECT_FALSE(is_common_load_point(sweep));
  EXPECT_FALSE(is_common_load_point(hogged));
}

TEST(Targets, CommonLoadRatios) {
  nlohmann::json doc;
  doc["results"] = {common("sandbox", "af_xdp", 400, 300), common("kernel-socket", "batched", 1000, 1000),
                    // a max-load point of the same method is not the common load
                    {{"method", "sandbox"}, {"variant", "af_xdp"}, {"mode", "relay"}, {"protection", "mprotect"},
                     {"latency_ns", {{"p99", 1}}}}};
  nlohmann::json t = evaluate_targets(doc, subject());
  EXPECT_EQ(target(t, "p99 latency")["status"], "met");
  EXPECT_DOUBLE_EQ(target(t, "p99 latency")["value"].get<double>(), 0.4);
  EXPECT_EQ(target(t, "proxy-host CPU")["status"], "met");
  EXPECT_DOUBLE_EQ(target(t, "proxy-host CPU")["value"].get<double>(), 0.3);
  doc["results"][0]["latency_ns"]["p99"] = 600;
  EXPECT_EQ(target(evaluate_targets(doc, subject()), "p99 latency")["status"], "not met");
}

TEST(Targets, OnlyTheSandboxJobOfTheProtectionAsked) {
  nlohmann::json doc;
  nlohmann::json none = cap("sandbox", "af_xdp", 900'000, 910'000);
  none["protection"] = "none";
  doc["capacity"] = {none, cap("sandbox", "af_xdp", 150'000, 151'000), cap("kernel-socket", "batched", 100'000, 101'000)};
  EXPECT_EQ(target(evaluate_targets(doc, subject()), "vs kernel-socket")["status"], "not met");
}

}  // namespace
}  // namespace ulsnet
