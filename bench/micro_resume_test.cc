#include "bench/micro_resume.h"

#include <regex>

#include <gtest/gtest.h>

#include "bench/resume.h"

namespace ulsnet::micro {
namespace {

TEST(MicroResume, AnEscapedNameMatchesItselfOnly) {
  for (const std::string n : {"BM_ThreadHandoff/futex/real_time", "BM_CopyFrame/64", "BM_X(1)[a]+b.c*d?e|f^g$h\\i{2}"}) {
    const std::regex re("^" + regex_escape(n) + "$");
    EXPECT_TRUE(std::regex_search(n, re)) << n;
    EXPECT_FALSE(std::regex_search(n + "x", re)) << n;
  }
  EXPECT_FALSE(std::regex_search("BM_CopyFrame/640", std::regex("^" + regex_escape("BM_CopyFrame/64") + "$")));
  EXPECT_FALSE(std::regex_search("BM_CopyFrameX64", std::regex("^" + regex_escape("BM_CopyFrame.64") + "$")));
}

TEST(MicroResume, TheListingIsOneInstancePerLine) {
  EXPECT_EQ(parse_listing("BM_A\nBM_B/x\r\n\n  \nBM_C \n"), (std::vector<std::string>{"BM_A", "BM_B/x", "BM_C"}));
  EXPECT_TRUE(parse_listing("").empty());
}

TEST(MicroResume, TheConfigurationLeavesOutWhatChangesNoNumber) {
  const auto a = configuration({"--benchmark_repetitions=3", "--benchmark_out=/x.json", "--fresh",
                                "--benchmark_format=console"},
                               {"BM_A"});
  const auto b = configuration({"--benchmark_repetitions=3", "--benchmark_out=/y.json", "--benchmark_format=json"},
                               {"BM_A"});
  EXPECT_EQ(a, b);
  EXPECT_NE(a, configuration({"--benchmark_repetitions=5"}, {"BM_A"}));
  EXPECT_NE(a, configuration({"--benchmark_repetitions=3"}, {"BM_A", "BM_B"}));
}

nlohmann::json part(const std::string& name, double t) {
  return {{"context", {{"num_cpus", 2}}},
          {"benchmarks",
           {{{"name", name}, {"run_name", name}, {"run_type", "iteration"}, {"real_time", t}},
            {{"name", name + "_mean"}, {"run_name", name}, {"run_type", "aggregate"}, {"real_time", t}}}}};
}

// A cut-short file: the finished instances are kept (every row), a failed one and the ones
// never reached run again; another configuration is refused.
TEST(MicroResume, AFileCutShortKeepsWhatFinishedOnly) {
  const auto config = configuration({"--benchmark_repetitions=2"}, {"BM_A", "BM_B", "BM_C", "BM_D"});
  nlohmann::json doc = new_document(config);
  add_part(doc, part("BM_A", 10), "BM_A");
  doc["benchmarks"].push_back(error_row("BM_B", "exit 139"));
  add_part(doc, nlohmann::json::object(), "BM_C");  // a child that wrote nothing
  EXPECT_EQ(doc["context"]["num_cpus"], 2);
  ASSERT_EQ(doc["benchmarks"].size(), 4u);
  EXPECT_EQ(doc["benchmarks"][1]["point"], "BM_A");
  EXPECT_TRUE(doc["benchmarks"][3]["error_occurred"].get<bool>());

  resume::Earlier e = resume::finished_points(doc, "micro", config, "benchmarks");
  ASSERT_EQ(e.points.size(), 1u);
  ASSERT_TRUE(e.points.count("BM_A"));
  EXPECT_EQ(e.points["BM_A"].size(), 2u);
  EXPECT_THROW(resume::finished_points(doc, "micro", configuration({"--benchmark_repetitions=3"}, {"BM_A", "BM_B", "BM_C", "BM_D"}),
                                       "benchmarks"),
               resume::Refused);
}

// A benchmark that skipped itself (a protection mode this CPU lacks) is a result, kept.
TEST(MicroResume, ASkippedBenchmarkIsAResult) {
  const auto config = configuration({}, {"BM_P"});
  nlohmann::json doc = new_document(config);
  nlohmann::json p = {{"benchmarks", {{{"name", "BM_P"}, {"run_name", "BM_P"}, {"error_occurred", true},
                                       {"error_message", "no PKU"}}}}};
  add_part(doc, p, "BM_P");
  EXPECT_EQ(resume::finished_points(doc, "micro", config, "benchmarks").points.count("BM_P"), 1u);
}

TEST(MicroResume, NonFiniteBenchmarkCountersBecomeNull) {
  EXPECT_EQ(null_non_finite(R"({"a": -nan, "b": [nan, inf], "c": "nan -inf", "d": 1.5, "infx": 2})"),
            R"({"a": null, "b": [null, null], "c": "nan -inf", "d": 1.5, "infx": 2})");
  EXPECT_EQ(null_non_finite(R"({"a": NaN, "b": -Infinity, "c": Infinity})"), R"({"a": null, "b": null, "c": null})");
  EXPECT_FALSE(nlohmann::json::parse(null_non_finite(R"({"x": -nan})"), nullptr, false).is_discarded());
  // What Google Benchmark writes for the cv of a counter that is always 0.
  const auto d = parse_benchmark_json(R"({"benchmarks": [{"name": "BM_A_cv", "c": NaN}]})");
  ASSERT_FALSE(d.is_discarded());
  EXPECT_TRUE(d["benchmarks"][0]["c"].is_null());
  EXPECT_TRUE(parse_benchmark_json("{broken").is_discarded());
}

}  // namespace
}  // namespace ulsnet::micro
