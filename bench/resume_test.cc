#include "bench/resume.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

namespace ulsnet::resume {
namespace {

using nlohmann::json;

json config() { return {{"rates_pps", {1000, 5000}}, {"seconds", 5}, {"argv", {"vm_forward", "--rates", "1000,5000"}}}; }

json doc_with(json runs) { return {{"experiment", "vm_forward"}, {"config", config()}, {"runs", std::move(runs)}}; }

TEST(ConfigDifference, NamesTheFirstDifferingKey) {
  EXPECT_EQ(config_difference({{"a", 1}}, {{"a", 1}}), "");
  EXPECT_EQ(config_difference({{"a", 1}}, {{"a", 2}}), "a: 1 there, 2 here");
  EXPECT_EQ(config_difference({{"a", 1}}, {{"a", 1}, {"b", 2}}), "b: absent there, 2 here");
  EXPECT_EQ(config_difference({{"a", 1}, {"b", 2}}, {{"a", 1}}), "b: 2 there, absent here");
  EXPECT_EQ(config_difference(json(1), json("x")), "1 there, \"x\" here");
}

TEST(FinishedPoints, KeepsPointsWhoseRowsAllFinished) {
  json runs = json::array({
      {{"point", "uls|1000"}, {"complete", true}, {"delivered", 5000}},
      {{"point", "kernel|1000"}, {"complete", false}},                // a failed launch runs again
      {{"point", "hogs|kernel"}, {"service", "uls-upcall"}},          // no "complete" field: fine
      {{"point", "hogs|kernel"}, {"service", "user-thread"}},
      {{"point", "hogs|none"}, {"service", "uls-upcall"}},
      {{"point", "hogs|none"}, {"service", "user-thread"}, {"error", "the guest run did not complete"}},
      {{"delivered", 1}},                                             // no point: never kept
  });
  Earlier e = finished_points(doc_with(runs), "vm_forward", config());
  ASSERT_EQ(e.points.size(), 2u);
  ASSERT_NE(e.points.find("uls|1000"), e.points.end());
  EXPECT_EQ(e.points["hogs|kernel"].size(), 2u);
  EXPECT_EQ(e.points.count("kernel|1000"), 0u);
  EXPECT_EQ(e.points.count("hogs|none"), 0u);  // one errored row spoils the whole launch
  EXPECT_EQ(e.reused, 0u);
  const auto* rows = e.take("uls|1000");
  ASSERT_NE(rows, nullptr);
  EXPECT_EQ((*rows)[0]["delivered"], 5000);
  EXPECT_EQ(e.take("kernel|1000"), nullptr);
  EXPECT_EQ(e.reused, 1u);
}

TEST(FinishedPoints, IgnoresArgvButRefusesAnotherConfiguration) {
  json here = config();
  here["argv"] = {"vm_forward", "--rates=1000,5000", "--out", "x.json"};
  EXPECT_NO_THROW(finished_points(doc_with(json::array()), "vm_forward", here));
  here["seconds"] = 2;
  try {
    finished_points(doc_with(json::array()), "vm_forward", here);
    FAIL() << "another configuration was accepted";
  } catch (const Refused& e) {
    EXPECT_NE(std::string(e.what()).find("seconds: 5 there, 2 here"), std::string::npos) << e.what();
  }
  EXPECT_THROW(finished_points(doc_with(json::array()), "vm_jitter", config()), Refused);
  EXPECT_THROW(finished_points(json::array(), "vm_forward", config()), Refused);
  EXPECT_THROW(finished_points(json{{"config", config()}}, "vm_forward", config()), Refused);
}

TEST(FinishedPoints, ReadsAnotherRowsArray) {
  json d = doc_with(json::array());
  d["measurements"] = json::array({{{"point", "rep1|thread|0"}}});
  EXPECT_EQ(finished_points(d, "vm_forward", config(), "measurements").points.size(), 1u);
  EXPECT_EQ(finished_points(d, "vm_forward", config()).points.size(), 0u);
}

TEST(Load, FreshOrMissingFileIsEmptyAndGarbageIsRefused) {
  const std::string path = testing::TempDir() + "/resume_test_" + std::to_string(getpid()) + ".json";
  std::remove(path.c_str());
  EXPECT_TRUE(load(path, false, "vm_forward", config()).points.empty());
  EXPECT_TRUE(load("", false, "vm_forward", config()).points.empty());
  std::ofstream(path) << doc_with(json::array({{{"point", "uls|1000"}}})).dump();
  EXPECT_EQ(load(path, false, "vm_forward", config()).points.size(), 1u);
  EXPECT_TRUE(load(path, true, "vm_forward", config()).points.empty());
  std::ofstream(path) << "{ not json";
  try {
    load(path, false, "vm_forward", config());
    FAIL() << "a file that is not JSON was accepted";
  } catch (const Refused& e) {
    EXPECT_NE(std::string(e.what()).find("--fresh"), std::string::npos) << e.what();
  }
  std::remove(path.c_str());
}

TEST(Eta, GuessFirstThenTheMeasuredAverage) {
  Eta eta(100);
  EXPECT_EQ(eta.left(0), "");
  EXPECT_EQ(eta.left(2), ", about 200 s left (2 points at a guessed 100 s)");
  eta.measured(10);
  eta.measured(20);
  EXPECT_DOUBLE_EQ(eta.per_point(), 15);
  EXPECT_EQ(eta.left(1), ", about 15 s left (1 point at 15 s)");
}

}  // namespace
}  // namespace ulsnet::resume
