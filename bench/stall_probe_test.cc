#include "bench/stall_probe.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "bench/trial.h"

namespace ulsnet {
namespace {

TEST(StallProbe, SummaryCountsWhatIsOverTheThresholdAndKeepsTheLatest) {
  std::vector<std::pair<double, double>> s;
  for (int i = 0; i < 12; ++i) s.emplace_back(0.1 * i, i % 2 ? 3000.0 + i : 150.0);  // 6 over 2 ms
  s.emplace_back(2.0, 9500.0);
  const StallSummary x = summarize_stalls(s, 2000);
  EXPECT_EQ(x.wakeups, 13u);
  EXPECT_DOUBLE_EQ(x.max_late_us, 9500.0);
  EXPECT_EQ(x.over_threshold, 7u);
  EXPECT_NEAR(x.late_over_threshold_ms, (3001 + 3003 + 3005 + 3007 + 3009 + 3011 + 9500) / 1000.0, 1e-9);
  ASSERT_EQ(x.stalls.size(), 7u);
  EXPECT_DOUBLE_EQ(x.stalls.back().second, 9500.0);
  std::vector<std::pair<double, double>> many;
  for (int i = 0; i < 20; ++i) many.emplace_back(i, 5000.0);
  const StallSummary y = summarize_stalls(many, 2000);
  EXPECT_EQ(y.over_threshold, 20u);
  ASSERT_EQ(y.stalls.size(), 8u);  // the latest eight
  EXPECT_DOUBLE_EQ(y.stalls.front().first, 12.0);
  EXPECT_EQ(summarize_stalls({}, 2000).over_threshold, 0u);
}

TEST(StallProbe, ATrialRecordSaysWhichCpuStalledAndForHowLong) {
  nlohmann::json rec = {{"host_stalls",
                         {{"cpu0", {{"over_threshold", 0}, {"max_late_us", 400.0}}},
                          {"cpu1", {{"over_threshold", 2}, {"max_late_us", 8700.0}}}}}};
  const std::string r = host_stall_reason(rec);
  EXPECT_NE(r.find("cpu1"), std::string::npos) << r;
  EXPECT_NE(r.find("8.7 ms"), std::string::npos) << r;
  EXPECT_NE(r.find("2 wake-ups"), std::string::npos) << r;
  rec["host_stalls"]["cpu1"]["over_threshold"] = 0;
  EXPECT_EQ(host_stall_reason(rec), "");
  EXPECT_EQ(host_stall_reason(nlohmann::json::object()), "");  // no probe ran
}

TEST(StallProbe, ALiveProbeWakesEveryPeriodAndReportsIt) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (SCHED_FIFO)";
  StallProbe p;
  ASSERT_TRUE(p.start(0, 1000, 2000)) << p.error();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const nlohmann::json j = p.stop();
  EXPECT_EQ(j["cpu"], 0);
  EXPECT_EQ(j["period_us"], 1000);
  // About 200 wake-ups (fewer if the host stalled the CPU: the probe starts again from then).
  EXPECT_GE(j["wakeups"].get<uint64_t>(), 100u) << j.dump();
  EXPECT_LE(j["wakeups"].get<uint64_t>(), 210u) << j.dump();
  EXPECT_GE(j["max_late_us"].get<double>(), 0.0);
  EXPECT_TRUE(j["stalls"].is_array());
}

TEST(StallProbe, ACpuThatDoesNotExistIsRefusedWithTheReason) {
  StallProbe p;
  EXPECT_FALSE(p.start(1000, 1000, 2000));
  EXPECT_NE(p.error().find("CPU 1000"), std::string::npos) << p.error();
  EXPECT_EQ(p.stop()["error"], p.error());
}

}  // namespace
}  // namespace ulsnet
