// ProxyStatus: the status lines' arithmetic, from made-up snapshots.
#include "bench/proxy_status.h"

#include <gtest/gtest.h>

namespace ulsnet {
namespace {

nlohmann::json snap(double t, nlohmann::json method, uint64_t p0rx, uint64_t p1tx, uint64_t cpu_ns) {
  return {{"t", t},
          {"method", method},
          {"netdev", {{"p0.rx_packets", p0rx}, {"p0.tx_packets", 0}, {"p0.rx_drop", 0}, {"p0.tx_drop", 0},
                      {"p1.rx_packets", 0}, {"p1.tx_packets", p1tx}, {"p1.rx_drop", 0}, {"p1.tx_drop", 0},
                      {"lo.rx_packets", 5}}},
          {"cpu_ns", cpu_ns}};
}

nlohmann::json counts(uint64_t fwd, nlohmann::json drops) { return {{"forwarded", fwd}, {"drops", drops}}; }

TEST(ProxyStatus, IntervalsAreDeltasAndTotalsTheirSums) {
  ProxyStatus ps({"p0", "p1"}, snap(0, nullptr, 100, 50, 1'000'000));
  nlohmann::json a = ps.next(snap(1, counts(10, {{"proxy_stack", {{"ttl_expired", 1}}}}), 112, 60, 11'000'000));
  EXPECT_DOUBLE_EQ(a["interval_s"].get<double>(), 1.0);
  EXPECT_EQ(a["interfaces"]["p0"]["rx"], 12);
  EXPECT_EQ(a["interfaces"]["p1"]["tx"], 10);
  EXPECT_FALSE(a["interfaces"].contains("lo"));
  EXPECT_EQ(a["forwarded"], 10);
  EXPECT_DOUBLE_EQ(a["forwarded_per_s"].get<double>(), 10.0);
  EXPECT_EQ(a["drops"]["proxy_stack"]["ttl_expired"], 1);
  EXPECT_NEAR(a["cpu_percent"].get<double>(), 1.0, 1e-9);  // 10 ms in 1 s
  EXPECT_FALSE(a.contains("went_down"));

  // Half a second later: only what moved is listed; a new reason appears.
  nlohmann::json b = ps.next(snap(1.5, counts(30, {{"proxy_stack", {{"ttl_expired", 1}}},
                                                   {"proxy_queue", {{"handoff_queue_full", 4}}}}),
                                  140, 80, 11'000'000));
  EXPECT_EQ(b["forwarded"], 20);
  EXPECT_DOUBLE_EQ(b["forwarded_per_s"].get<double>(), 40.0);
  EXPECT_FALSE(b["drops"].contains("proxy_stack"));
  EXPECT_EQ(b["drops"]["proxy_queue"]["handoff_queue_full"], 4);
  EXPECT_EQ(ps.totals()["forwarded"], 30);
  EXPECT_EQ(ps.totals()["interfaces"]["p0"]["rx"], 40);
  EXPECT_EQ(ps.totals()["drops"]["proxy_stack"]["ttl_expired"], 1);
  EXPECT_EQ(ps.totals()["drops"]["proxy_queue"]["handoff_queue_full"], 4);
  EXPECT_DOUBLE_EQ(ps.totals()["seconds"].get<double>(), 1.5);
}

TEST(ProxyStatus, AMethodThatDidNotAnswerIsCountedInTheNextLine) {
  ProxyStatus ps({"p0", "p1"}, snap(0, nullptr, 0, 0, 0));
  ps.next(snap(1, counts(5, nlohmann::json::object()), 5, 5, 0));
  nlohmann::json late = ps.next(snap(2, nullptr, 9, 9, 0));
  EXPECT_FALSE(late["method_counters"].get<bool>());
  EXPECT_EQ(late["forwarded"], 0);
  EXPECT_EQ(late["interfaces"]["p0"]["rx"], 4);  // the kernel's counters still move
  nlohmann::json next = ps.next(snap(3, counts(15, nlohmann::json::object()), 15, 15, 0));
  EXPECT_TRUE(next["method_counters"].get<bool>());
  EXPECT_EQ(next["forwarded"], 10);  // both seconds' worth
  EXPECT_DOUBLE_EQ(next["forwarded_per_s"].get<double>(), 5.0);  // over those two seconds
  EXPECT_EQ(ps.totals()["forwarded"], 15);
  EXPECT_NE(format_status(late, {"p0", "p1"}).find("did not answer"), std::string::npos);
}

TEST(ProxyStatus, AMethodWithoutLiveCountersIsSaidSoAndItsReportClosesTheSums) {
  ProxyStatus ps({"eth0", "eth1"}, snap(0, nullptr, 0, 0, 0));
  nlohmann::json s1 = snap(1, nullptr, 4, 0, 0);
  s1["method_live"] = false;
  nlohmann::json iv = ps.next(s1);
  EXPECT_FALSE(iv["method_live"].get<bool>());
  EXPECT_NE(format_status(iv, {"eth0", "eth1"}).find("in the final report"), std::string::npos);
  nlohmann::json last = ps.next(snap(2, counts(9, nlohmann::json::object()), 9, 0, 0));  // the report
  EXPECT_EQ(last["forwarded"], 9);
  EXPECT_FALSE(last.contains("method_live"));
  EXPECT_EQ(ps.totals()["forwarded"], 9);
}

TEST(ProxyStatus, ACounterThatWentDownIsShownNotSubtracted) {
  ProxyStatus ps({"p0", "p1"}, snap(0, counts(10, nlohmann::json::object()), 10, 0, 0));
  nlohmann::json iv = ps.next(snap(1, counts(7, nlohmann::json::object()), 8, 0, 0));
  EXPECT_EQ(iv["forwarded"], 0);
  EXPECT_EQ(iv["interfaces"]["p0"]["rx"], 0);
  ASSERT_TRUE(iv.contains("went_down"));
  EXPECT_EQ(iv["went_down"], nlohmann::json({"p0.rx_packets", "forwarded"}));
  EXPECT_NE(format_status(iv, {"p0", "p1"}).find("WENT DOWN"), std::string::npos);
}

TEST(ProxyStatus, TheLineForPeopleNamesEveryMovedCounter) {
  ProxyStatus ps({"p0", "p1"}, snap(0, nullptr, 0, 0, 0));
  nlohmann::json iv =
      ps.next(snap(2, counts(8, {{"proxy_kernel", {{"packet_socket_drops", 3}}}}), 11, 8, 500'000'000));
  const std::string s = format_status(iv, {"p0", "p1"});
  EXPECT_NE(s.find("p0 in 11 out 0"), std::string::npos) << s;
  EXPECT_NE(s.find("p1 in 0 out 8"), std::string::npos) << s;
  EXPECT_NE(s.find("forwarded 8 (4/s)"), std::string::npos) << s;
  EXPECT_NE(s.find("drops 3: proxy_kernel/packet_socket_drops 3"), std::string::npos) << s;
  EXPECT_NE(s.find("cpu 25.0%"), std::string::npos) << s;
}

}  // namespace
}  // namespace ulsnet
