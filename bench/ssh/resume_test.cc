// Which points and searches of an earlier result file a rerun keeps, and which configurations it
// refuses (synthetic files shaped as ssh_throughput writes them).
#include "bench/ssh/resume.h"

#include <gtest/gtest.h>

namespace ulsnet::ssh {
namespace {

nlohmann::json config() {
  return {{"argv", {"ssh_throughput", "--out", "a.json"}},
          {"jobs", {"kernel-socket:batched relay"}},
          {"reps", 2},
          {"duration_s", 1.0},
          {"rates", {"max", "5000"}},
          {"load_sweep", {0.5}},
          {"agent", {{"path", "/x/ulsnet_agent"}, {"bytes", 100}}},
          {"ssh", {{"user", "root"}}},
          {"addressing", {{"sender", {{"if", "s0"}}}}},
          {"proxy_cpu", "auto"},
          {"common_load_pps", 0},
          {"competitors", {0, 1}},
          {"placement", {{"proxy_cpu", 1}}}};
}

nlohmann::json point(const std::string& key, int reps, uint32_t first_run_id) {
  nlohmann::json p = {{"point", job_key("kernel-socket", "batched", "relay", "n/a", 64) + "|" + key},
                      {"repetitions", reps},
                      {"samples", nlohmann::json::array()}};
  for (int i = 0; i < reps; ++i) p["samples"].push_back({{"run_id", first_run_id + uint32_t(i)}, {"sent", 10}});
  return p;
}

nlohmann::json earlier() {
  nlohmann::json d = {{"schema", kSshSchema}, {"config", config()}, {"complete", false}};
  d["results"].push_back(point("max", 2, 1));
  nlohmann::json errored = point("rate:5000", 2, 3);
  errored["error"] = "proxy host: the method failed";
  d["results"].push_back(errored);
  d["results"].push_back(point("fraction:0.5", 1, 5));  // cut short: one of two repetitions
  nlohmann::json interrupted = point("rate:7000", 2, 6);
  interrupted["interrupted"] = true;
  d["results"].push_back(interrupted);
  d["results"].push_back(point("common:0", 2, 8));
  d["results"].push_back(point("common:1", 1, 10));  // cut short
  d["capacity"].push_back({{"method", "kernel-socket"}, {"variant", "batched"}, {"mode", "relay"},
                           {"protection", "n/a"}, {"payload_bytes", 64}, {"pdr", {{"lower_pps", 1000}}},
                           {"steps", nlohmann::json::array({{{"run_id", 40}}})}});
  d["capacity"].push_back({{"method", "sandbox"}, {"variant", "af_xdp"}, {"mode", "relay"}, {"protection", "mprotect"},
                           {"payload_bytes", 64}, {"pdr", nlohmann::json::object()}, {"error", "interrupted"}});
  return d;
}

TEST(Resume, KeepsFinishedPointsAndSearchesOnly) {
  Finished f = finished_points(earlier(), config());
  const std::string job = "kernel-socket|batched|relay|n/a|64";
  ASSERT_EQ(f.points.size(), 2u);  // the errored, the short and the interrupted point run again
  EXPECT_TRUE(f.points.count(job + "|max"));
  // The common-load points are kept apart by their competitor count: with none finished, the one
  // with a competitor cut short.
  EXPECT_TRUE(f.points.count(job + "|common:0"));
  EXPECT_FALSE(f.points.count(job + "|common:1"));
  EXPECT_EQ(f.capacity.size(), 1u);  // the interrupted search runs again
  EXPECT_TRUE(f.capacity.count(job));
  EXPECT_EQ(f.max_run_id, 40u);  // new trials get run ids past every earlier one
  EXPECT_EQ(f.find(f.points, job + "|rate:5000"), nullptr);
  EXPECT_EQ(f.reused, 0u);
  const nlohmann::json* kept = f.find(f.points, job + "|max");
  ASSERT_NE(kept, nullptr);
  EXPECT_EQ((*kept)["samples"].size(), 2u);
  EXPECT_EQ(f.reused, 1u);
}

TEST(Resume, HowItWasTypedAndHowToLogInDoNotMatter) {
  nlohmann::json c = config();
  c["argv"] = {"throughput", "--hosts=ssh", "--out", "a.json"};
  c["agent"]["path"] = "/elsewhere/ulsnet_agent";
  c["ssh"]["user"] = "other";
  c.erase("addressing");  // not known yet when the file is read
  c.erase("placement");   // nor the proxy's CPU
  EXPECT_EQ(finished_points(earlier(), c).points.size(), 2u);
}

TEST(Resume, RefusesAnotherConfigurationSayingWhich) {
  nlohmann::json c = config();
  c["duration_s"] = 0.5;
  try {
    finished_points(earlier(), c);
    FAIL() << "resumed a run with another duration";
  } catch (const ResumeRefused& e) {
    EXPECT_NE(std::string(e.what()).find("duration_s: 1.0 there, 0.5 here"), std::string::npos) << e.what();
  }
  c = config();
  c["load_sweep"] = {0.5, 0.9};
  EXPECT_THROW(finished_points(earlier(), c), ResumeRefused);
  c = config();
  c.erase("load_sweep");
  EXPECT_THROW(finished_points(earlier(), c), ResumeRefused);
  c = config();
  c["competitors"] = {0, 1, 2};
  EXPECT_THROW(finished_points(earlier(), c), ResumeRefused);
  c = config();
  c["common_load_pps"] = 5000;
  EXPECT_THROW(finished_points(earlier(), c), ResumeRefused);
  c = config();
  c["proxy_cpu"] = "none";
  EXPECT_THROW(finished_points(earlier(), c), ResumeRefused);
  nlohmann::json other = earlier();
  other["schema"] = "ulsnet.throughput.v2";
  EXPECT_THROW(finished_points(other, config()), ResumeRefused);
  EXPECT_THROW(finished_points(nlohmann::json::array(), config()), ResumeRefused);
}

TEST(Resume, AddressingIsComparedOnceKnown) {
  nlohmann::json a = config(), b = config();
  b["addressing"]["sender"]["if"] = "eth1";
  EXPECT_EQ(config_difference(comparable_config(a, false), comparable_config(b, false)), "");
  EXPECT_NE(config_difference(comparable_config(a, true), comparable_config(b, true)).find("addressing"),
            std::string::npos);
  b = config();
  b["placement"]["proxy_cpu"] = 3;
  EXPECT_EQ(config_difference(comparable_config(a, false), comparable_config(b, false)), "");
  EXPECT_NE(config_difference(comparable_config(a, true), comparable_config(b, true)).find("placement"),
            std::string::npos);
}

}  // namespace
}  // namespace ulsnet::ssh
