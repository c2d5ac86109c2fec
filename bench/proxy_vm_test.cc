// //bench:proxy --hosts=vm as a user runs it (the binary, from its runfiles, with --json): three
// VMs on the ULS kernel. sandbox:uls in router mode passes the sender's ping, its status lines
// come while it stands and add up to its final report; in relay mode the project's generator and
// sink (bench/guest/ulsnet_traffic.cc) put a numbered stream through it whole; SIGTERM while it
// stands stops the method with its report; the tool ends the VMs (no QEMU left) and removes its
// work directory every time.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "bench/proxy_test_tool.h"

namespace ulsnet {
namespace {

uint64_t sum(const std::vector<nlohmann::json>& events, const std::string& iface, const std::string& key) {
  uint64_t n = 0;
  for (const auto& e : events)
    if (e.value("event", "") == "status") n += e["interfaces"][iface][key].get<uint64_t>();
  return n;
}

TEST(ProxyVm, TheUlsSandboxRoutesASendersPingAndItsLinesAddUp) {
  Tool tool({"--hosts=vm", "--method", "sandbox:uls", "--mode", "router", "--json", "--interval", "1",
             "--exec-sender", "ping -c 4 -i 0.5 -W 5 10.201.2.2"});
  const nlohmann::json up = tool.until("up", 900'000);  // a first run builds the guest kernel
  ASSERT_FALSE(up.is_null()) << tool.err();
  EXPECT_EQ(up["method"], "sandbox");
  EXPECT_EQ(up["variant"], "uls");
  EXPECT_FALSE(up["accel"].get<std::string>().empty());
  const std::string logs = up["logs"];
  const nlohmann::json cmd = tool.until("command", 300'000);
  ASSERT_FALSE(cmd.is_null()) << tool.err();
  EXPECT_EQ(cmd["exit_status"], 0) << tool.err();
  EXPECT_NE(tool.err().find("[sender] 4 packets transmitted, 4 packets received"), std::string::npos) << tool.err();
  EXPECT_EQ(tool.wait(300'000), 0) << tool.err();
  const nlohmann::json& fin = tool.events().back();
  ASSERT_EQ(fin.value("event", ""), "final") << fin.dump();
  EXPECT_EQ(fin["why"], "the commands ended");
  const nlohmann::json& report = fin["report"];
  // Four echo requests one way, four replies the other, through the Stack in the region.
  EXPECT_GE(report["forwarded"].get<uint64_t>(), 8u) << report.dump();
  EXPECT_EQ(fin["totals"]["forwarded"], report["forwarded"]);
  EXPECT_GE(sum(tool.events(), "eth1", "tx"), 4u);
  EXPECT_GE(sum(tool.events(), "eth0", "tx"), 4u);
  int lines = 0;
  for (const auto& e : tool.events()) lines += e.value("event", "") == "status" && !e.value("last", false);
  EXPECT_GE(lines, 1) << "no status line while the method stood";
  EXPECT_FALSE(std::filesystem::exists(logs)) << "the tool left " << logs;
}

TEST(ProxyVm, RelayModeDeliversTheProjectsNumberedStreamWhole) {
  Tool tool({"--hosts=vm", "--method", "kernel-socket:batched", "--mode", "relay", "--json", "--udp-test", "300",
             "--udp-rate", "300"});
  const nlohmann::json up = tool.until("up", 900'000);
  ASSERT_FALSE(up.is_null()) << tool.err();
  EXPECT_EQ(up["relay"]["listen"], "10.201.1.2:9000");
  const nlohmann::json t = tool.until("udp_test", 300'000);
  ASSERT_FALSE(t.is_null()) << tool.err();
  EXPECT_EQ(t["sent"], 300) << t.dump();
  EXPECT_EQ(t["received"], 300) << t.dump();
  EXPECT_EQ(t["duplicates"], 0);
  EXPECT_EQ(t["corrupted"], 0);
  EXPECT_EQ(tool.wait(300'000), 0) << tool.err();
  const nlohmann::json& fin = tool.events().back();
  ASSERT_EQ(fin.value("event", ""), "final") << fin.dump();
  EXPECT_GE(fin["report"]["forwarded"].get<uint64_t>(), 300u);
  EXPECT_FALSE(std::filesystem::exists(up["logs"].get<std::string>()));
}

// Processes whose command line names `path` (the QEMUs of a launch name its work directory).
int processes_naming(const std::string& path) {
  int n = 0;
  for (const auto& d : std::filesystem::directory_iterator("/proc")) {
    const std::string pid = d.path().filename();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream f(d.path() / "cmdline");
    std::string cmd((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    if (cmd.find(path) != std::string::npos && pid != std::to_string(getpid())) ++n;
  }
  return n;
}

TEST(ProxyVm, SigtermStopsTheMethodWithItsReportAndEndsTheVms) {
  Tool tool({"--hosts=vm", "--method", "raw-socket:af_packet", "--json"});
  const nlohmann::json up = tool.until("up", 900'000);
  ASSERT_FALSE(up.is_null()) << tool.err();
  const std::string logs = up["logs"];
  const std::string workdir = logs.substr(0, logs.rfind('/'));
  EXPECT_GE(processes_naming(workdir), 3) << "three QEMUs while it stands";
  tool.signal(SIGTERM);
  EXPECT_EQ(tool.wait(120'000), 0) << tool.err();
  const nlohmann::json& fin = tool.events().back();
  ASSERT_EQ(fin.value("event", ""), "final") << fin.dump();
  EXPECT_EQ(fin["why"], "stopped by a signal");
  EXPECT_TRUE(fin["report"].contains("forwarded")) << fin.dump();
  EXPECT_EQ(processes_naming(workdir), 0) << "a QEMU of the launch is left";
  EXPECT_FALSE(std::filesystem::exists(workdir));
}

}  // namespace
}  // namespace ulsnet
