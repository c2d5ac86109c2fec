// The proxy's CPU, the competitor counts and the common load from what the hosts and the search
// report (bench/ssh/load_plan.h).
#include "bench/ssh/load_plan.h"

#include <gtest/gtest.h>

#include <stdexcept>

namespace ulsnet::ssh {
namespace {

TEST(CpuList, KernelFormat) {
  EXPECT_EQ(parse_cpu_list("0-3,8,10-11\n"), (std::vector<int>{0, 1, 2, 3, 8, 10, 11}));
  EXPECT_EQ(parse_cpu_list("1"), (std::vector<int>{1}));
  EXPECT_EQ(parse_cpu_list(""), std::vector<int>{});
  EXPECT_EQ(parse_cpu_list("3,1-2,2"), (std::vector<int>{1, 2, 3}));
  for (const char* bad : {"a", "1-", "3-1", "1,,2", "-1", "1 2"}) EXPECT_FALSE(parse_cpu_list(bad)) << bad;
}

TEST(ProxyCpu, AutoIsTheLastOnlineCpuWithTwoOrMore) {
  EXPECT_EQ(resolve_proxy_cpu("auto", {0, 1}, {0, 1}).cpu, 1);
  EXPECT_EQ(resolve_proxy_cpu("auto", {0, 1, 2, 3}, {}).cpu, 3);  // affinity unknown: every online CPU
  // One CPU: nothing to keep apart, not pinned.
  ProxyCpu one = resolve_proxy_cpu("auto", {0}, {0});
  EXPECT_EQ(one.cpu, -1);
  EXPECT_NE(one.basis.find("1 online CPU"), std::string::npos) << one.basis;
  // The agent confined (a cpuset) to CPUs 0-1 of 4: the last it may use.
  ProxyCpu confined = resolve_proxy_cpu("auto", {0, 1, 2, 3}, {0, 1});
  EXPECT_EQ(confined.cpu, 1);
  EXPECT_NE(confined.basis.find("may run on"), std::string::npos) << confined.basis;
  EXPECT_EQ(resolve_proxy_cpu("auto", {0, 1}, {5}).cpu, -1);
}

TEST(ProxyCpu, NoneAndANumber) {
  EXPECT_EQ(resolve_proxy_cpu("none", {0, 1}, {0, 1}).cpu, -1);
  EXPECT_EQ(resolve_proxy_cpu("0", {0, 1}, {0, 1}).cpu, 0);
  EXPECT_THROW(resolve_proxy_cpu("2", {0, 1}, {0, 1}), std::invalid_argument);  // not online
  EXPECT_THROW(resolve_proxy_cpu("1", {0, 1}, {0}), std::invalid_argument);     // not allowed
  EXPECT_THROW(resolve_proxy_cpu("last", {0, 1}, {0, 1}), std::invalid_argument);
  EXPECT_THROW(resolve_proxy_cpu("-1", {0, 1}, {0, 1}), std::invalid_argument);
}

TEST(Competitors, ZeroFirstNoRepeats) {
  EXPECT_EQ(parse_competitors(""), std::vector<int>{0});
  EXPECT_EQ(parse_competitors("0,1,2,4"), (std::vector<int>{0, 1, 2, 4}));
  EXPECT_EQ(parse_competitors("2,1,2"), (std::vector<int>{0, 2, 1}));
  for (const char* bad : {"17", "-1", "a", "1,,2", "1.5"}) EXPECT_THROW(parse_competitors(bad), std::invalid_argument) << bad;
}

nlohmann::json capacity(const std::string& method, const std::string& variant, const std::string& mode,
                        nlohmann::json lower) {
  return {{"method", method}, {"variant", variant}, {"mode", mode}, {"protection", "n/a"}, {"payload_bytes", 64},
          {"pdr", {{"status", "measured"}, {"lower_pps", lower}, {"upper_pps", 200000}}}};
}

TEST(CommonLoad, HalfTheBatchedKernelSocketRelaysPdrLowerBound) {
  EXPECT_TRUE(is_common_load_basis_job("kernel-socket", "batched", "relay"));
  EXPECT_FALSE(is_common_load_basis_job("kernel-socket", "batched", "router"));
  EXPECT_FALSE(is_common_load_basis_job("kernel-socket", "plain", "relay"));
  auto c = derived_common_load(capacity("kernel-socket", "batched", "relay", 123457));
  ASSERT_TRUE(c);
  EXPECT_EQ(c->pps, 61729);  // round(61728.5)
  EXPECT_EQ(c->basis, "half of kernel-socket:batched relay's PDR lower bound");
}

TEST(CommonLoad, NoneFromOtherJobsOrWithoutALowerBound) {
  EXPECT_FALSE(derived_common_load(capacity("sandbox", "af_xdp", "relay", 100000)));
  EXPECT_FALSE(derived_common_load(capacity("kernel-socket", "batched", "router", 100000)));
  EXPECT_FALSE(derived_common_load(capacity("kernel-socket", "batched", "relay", nullptr)));  // nothing passed
  EXPECT_FALSE(derived_common_load(capacity("kernel-socket", "batched", "relay", 0)));
  nlohmann::json errored = capacity("kernel-socket", "batched", "relay", 100000);
  errored["error"] = "interrupted";
  EXPECT_FALSE(derived_common_load(errored));
  EXPECT_FALSE(derived_common_load(nlohmann::json()));
  EXPECT_FALSE(derived_common_load({{"method", "kernel-socket"}, {"variant", "batched"}, {"mode", "relay"}}));
}

TEST(LoadPlan, RolesSharingTheProxysMachineRunOffItsCpu) {
  EXPECT_EQ(cpus_off_proxy(1, {0, 1}, {0, 1}), (std::vector<int>{0}));
  EXPECT_EQ(cpus_off_proxy(3, {0, 1, 2, 3}, {}), (std::vector<int>{0, 1, 2}));  // mask unknown: the online ones
  EXPECT_EQ(cpus_off_proxy(3, {0, 1, 2, 3}, {1, 3}), (std::vector<int>{1}));   // only where the agent may run
  EXPECT_TRUE(cpus_off_proxy(-1, {0, 1}, {0, 1}).empty());                     // the proxy is not pinned
  EXPECT_TRUE(cpus_off_proxy(0, {0}, {0}).empty());                            // nothing else to run on
  EXPECT_TRUE(cpus_off_proxy(1, {0, 1}, {1}).empty());
}

}  // namespace
}  // namespace ulsnet::ssh
