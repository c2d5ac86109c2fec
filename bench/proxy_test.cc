// //bench:proxy as a user runs it (the binary, from its runfiles, with --json): every router
// method that runs here passes ping and a TCP stream, and its status lines add up to what the
// sender and receiver saw; in relay mode every method delivers a numbered UDP stream whole; after
// SIGTERM nothing is left (namespaces, processes); a second instance refuses; a proxy process
// that dies ends the tool with an error naming it, the hosts removed.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "baselines/proc_counters.h"
#include "baselines/registry.h"
#include "bench/netns_child.h"
#include "bench/proxy_test_tool.h"

namespace ulsnet {
namespace {

// Sums of the status intervals.
struct Sums {
  uint64_t forwarded = 0, p0_tx = 0, p1_tx = 0, p0_rx = 0, p1_rx = 0;
  int lines = 0;
  bool went_down = false;
};
Sums sum_status(const std::vector<nlohmann::json>& events) {
  Sums s;
  for (const auto& e : events) {
    if (e.value("event", "") != "status") continue;
    ++s.lines;
    s.forwarded += e["forwarded"].get<uint64_t>();
    s.p0_tx += e["interfaces"]["p0"]["tx"].get<uint64_t>();
    s.p1_tx += e["interfaces"]["p1"]["tx"].get<uint64_t>();
    s.p0_rx += e["interfaces"]["p0"]["rx"].get<uint64_t>();
    s.p1_rx += e["interfaces"]["p1"]["rx"].get<uint64_t>();
    s.went_down |= e.contains("went_down");
  }
  return s;
}

nlohmann::json in_ns(const std::string& ns, std::function<nlohmann::json()> fn) {
  NetnsChild c(ns, -1, [fn](const std::atomic<bool>&, const ReadyFn&) { return fn(); });
  return c.result(15000);
}
uint64_t frames_received(const std::string& ns, const std::string& ifname) {
  nlohmann::json j = in_ns(ns, [ifname] { return nlohmann::json{{"rx", counter(read_netdev(), ifname + ".rx_packets")}}; });
  EXPECT_TRUE(j.contains("rx")) << j.dump();
  return j.value("rx", uint64_t(0));
}

int sh(const std::string& cmd) { return std::system(("PATH=\"$PATH:/usr/sbin:/sbin\"; " + cmd).c_str()); }

// Everything the tool said it created is gone.
void expect_nothing_left(const nlohmann::json& up) {
  for (const auto& n : up["namespaces"]) {
    struct stat st {};
    EXPECT_NE(stat(("/run/netns/" + n.get<std::string>()).c_str(), &st), 0) << "namespace " << n << " is left";
  }
  const pid_t proxy = up["proxy_pid"].get<pid_t>();
  EXPECT_TRUE(kill(proxy, 0) != 0 && errno == ESRCH) << "the proxy process " << proxy << " is left";
}

// A TCP stream of `bytes` from the sender to the receiver's port 5001; the bytes that arrived.
uint64_t tcp_stream(const nlohmann::json& hosts, uint64_t bytes) {
  const std::string rcv_ip = hosts["receiver"]["ip"];
  NetnsChild server(hosts["receiver"]["ns"], -1, [rcv_ip](const std::atomic<bool>& stop, const ReadyFn& ready) -> nlohmann::json {
    const int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(5001);
    inet_pton(AF_INET, rcv_ip.c_str(), &a.sin_addr);
    const int one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(l, 1) != 0)
      return {{"error", std::string("bind/listen: ") + strerror(errno)}};
    ready();
    pollfd p{l, POLLIN, 0};
    if (poll(&p, 1, 10000) <= 0) return {{"error", "no connection within 10 s"}};
    const int c = accept(l, nullptr, nullptr);
    uint64_t n = 0;
    char b[65536];
    for (ssize_t r; !stop.load() && (r = read(c, b, sizeof b)) > 0;) n += uint64_t(r);
    close(c);
    close(l);
    return {{"bytes", n}};
  }, "tcp server");
  if (!server.wait_ready(5000)) return 0;
  const nlohmann::json sent = in_ns(hosts["sender"]["ns"], [rcv_ip, bytes] {
    const int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval tv{10, 0};
    setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(5001);
    inet_pton(AF_INET, rcv_ip.c_str(), &a.sin_addr);
    if (connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
      return nlohmann::json{{"error", std::string("connect: ") + strerror(errno)}};
    std::vector<char> b(65536, 'u');
    uint64_t n = 0;
    while (n < bytes) {
      const ssize_t w = write(s, b.data(), std::min<uint64_t>(b.size(), bytes - n));
      if (w <= 0) break;
      n += uint64_t(w);
    }
    close(s);
    return nlohmann::json{{"sent", n}};
  });
  EXPECT_EQ(sent.value("sent", uint64_t(0)), bytes) << sent.dump();
  const nlohmann::json got = server.result(20000);
  EXPECT_FALSE(got.contains("error")) << got.dump();
  return got.value("bytes", uint64_t(0));
}

struct Case {
  std::string method, variant;
};
void PrintTo(const Case& c, std::ostream* os) { *os << c.method << ":" << c.variant; }
std::string name_of(const testing::TestParamInfo<Case>& i) {
  std::string s = i.param.method + "_" + i.param.variant;
  for (char& c : s)
    if (!isalnum(static_cast<unsigned char>(c))) c = '_';
  return s;
}

std::vector<Case> cases(bool relay) {
  std::vector<Case> v;
  for (const MethodInfo& m : proxy_methods())
    if (relay ? m.relay : m.router)
      for (std::string_view var : m.variants)
        if (!needs_uls_kernel(m.name, var)) v.push_back({std::string(m.name), std::string(var)});
  return v;
}

class ProxyRouter : public testing::TestWithParam<Case> {};

TEST_P(ProxyRouter, PingAndTcpPassAndTheStatusLinesAddUp) {
  const Case& c = GetParam();
  Tool tool({"--method", c.method + ":" + c.variant, "--mode", "router", "--json", "--interval", "0.5"});
  const nlohmann::json up = tool.until("up", 30000);
  ASSERT_FALSE(up.is_null()) << tool.err();
  EXPECT_EQ(up["method"], c.method);
  EXPECT_EQ(up["variant"], c.variant);
  const nlohmann::json& hosts = up["hosts"];
  const std::string snd = hosts["sender"]["ns"], rcv = hosts["receiver"]["ns"];
  const uint64_t rcv0 = frames_received(rcv, hosts["receiver"]["ifname"]);
  const uint64_t snd0 = frames_received(snd, hosts["sender"]["ifname"]);

  EXPECT_EQ(sh("ip netns exec " + snd + " ping -c 3 -i 0.2 -W 2 -q " + hosts["receiver"]["ip"].get<std::string>() +
               " > /dev/null"),
            0)
      << "ping through " << c.method << ":" << c.variant;
  EXPECT_EQ(tcp_stream(hosts, 4 << 20), uint64_t(4 << 20));
  usleep(300'000);  // the last ACKs land
  const uint64_t rcv1 = frames_received(rcv, hosts["receiver"]["ifname"]);
  const uint64_t snd1 = frames_received(snd, hosts["sender"]["ifname"]);

  tool.signal(SIGTERM);
  EXPECT_EQ(tool.wait(30000), 0) << tool.err();
  const auto& ev = tool.events();
  ASSERT_FALSE(ev.empty());
  const nlohmann::json& fin = ev.back();
  ASSERT_EQ(fin.value("event", ""), "final") << fin.dump();
  EXPECT_EQ(fin["why"], "stopped by a signal");
  const Sums s = sum_status(ev);
  EXPECT_GE(s.lines, 2);
  EXPECT_FALSE(s.went_down);
  // The proxy's frames out of each side are what that side's host received, frame for frame.
  EXPECT_EQ(s.p1_tx, rcv1 - rcv0);
  EXPECT_EQ(s.p0_tx, snd1 - snd0);
  // The lines' sums are the final report's count, and every frame out was forwarded (or built
  // by the Stack itself: ARP, ICMP).
  const nlohmann::json& report = fin["report"];
  EXPECT_EQ(s.forwarded, report["forwarded"].get<uint64_t>());
  EXPECT_EQ(fin["totals"]["forwarded"], report["forwarded"]);
  const uint64_t generated = report.contains("stack") ? report["stack"]["generated"].get<uint64_t>() : 0;
  EXPECT_EQ(s.forwarded + generated, s.p0_tx + s.p1_tx);
  EXPECT_GT(s.forwarded, uint64_t(2800));  // 4 MiB of TCP segments and their ACKs, 6 pings
  if (report.contains("accounting")) {
    EXPECT_EQ(report["accounting"]["unaccounted"], 0);
  }
  expect_nothing_left(up);
}

INSTANTIATE_TEST_SUITE_P(EveryRouterMethod, ProxyRouter, testing::ValuesIn(cases(false)), name_of);

class ProxyRelay : public testing::TestWithParam<Case> {};

TEST_P(ProxyRelay, ANumberedUdpStreamArrivesWhole) {
  const Case& c = GetParam();
  Tool tool({"--method", c.method + ":" + c.variant, "--mode", "relay", "--json", "--udp-test", "2000",
             "--udp-rate", "20000"});
  const nlohmann::json up = tool.until("up", 30000);
  ASSERT_FALSE(up.is_null()) << tool.err();
  EXPECT_EQ(up["relay"]["listen"], up["hosts"]["proxy"]["in"]["ip"].get<std::string>() + ":9000");
  const nlohmann::json t = tool.until("udp_test", 30000);
  ASSERT_FALSE(t.is_null()) << tool.err();
  EXPECT_EQ(t["sent"], 2000);
  EXPECT_EQ(t["received"], 2000) << t.dump();
  EXPECT_EQ(t["duplicates"], 0);
  EXPECT_EQ(t["corrupted"], 0);
  EXPECT_EQ(tool.wait(30000), 0) << tool.err();
  const nlohmann::json& fin = tool.events().back();
  ASSERT_EQ(fin.value("event", ""), "final");
  EXPECT_EQ(fin["why"], "the commands ended");
  const Sums s = sum_status(tool.events());
  EXPECT_EQ(s.forwarded, 2000u);
  EXPECT_EQ(s.p1_tx, 2000u);  // static neighbours: no ARP, IPv6 off: nothing else
  EXPECT_EQ(s.p0_rx, 2000u);
  expect_nothing_left(up);
}

INSTANTIATE_TEST_SUITE_P(EveryRelayMethod, ProxyRelay, testing::ValuesIn(cases(true)), name_of);

TEST(Proxy, ASecondInstanceRefusesNamingTheFirst) {
  Tool first({"--method", "raw-socket:af_packet", "--json"});
  const nlohmann::json up = first.until("up", 30000);
  ASSERT_FALSE(up.is_null()) << first.err();
  Tool second({"--method", "raw-socket:af_packet", "--json"});
  EXPECT_EQ(second.wait(10000), 3);
  EXPECT_NE(second.err().find(std::to_string(up["tool_pid"].get<int>())), std::string::npos) << second.err();
  first.signal(SIGINT);
  EXPECT_EQ(first.wait(30000), 0) << first.err();
  expect_nothing_left(up);
}

TEST(Proxy, AProxyProcessThatDiesEndsTheToolWithAnError) {
  Tool tool({"--method", "sandbox:af_xdp", "--json", "--interval", "0.2"});
  const nlohmann::json up = tool.until("up", 30000);
  ASSERT_FALSE(up.is_null()) << tool.err();
  ASSERT_FALSE(tool.until("status", 5000).is_null());
  kill(up["proxy_pid"].get<pid_t>(), SIGKILL);
  const nlohmann::json fin = tool.until("final", 15000);
  ASSERT_FALSE(fin.is_null()) << tool.err();
  ASSERT_TRUE(fin.contains("error"));
  EXPECT_NE(fin["error"].get<std::string>().find("killed"), std::string::npos) << fin.dump();
  EXPECT_EQ(tool.wait(15000), 1);
  expect_nothing_left(up);
}

TEST(Proxy, WrongFlagsGetAClearErrorAndBuildNothing) {
  Tool unknown({"--method", "no-such-method"});
  EXPECT_EQ(unknown.wait(10000), 2);
  EXPECT_NE(unknown.err().find("unknown method 'no-such-method'"), std::string::npos) << unknown.err();
  Tool no_relay({"--method", "kernel-forward", "--mode", "relay"});
  EXPECT_EQ(no_relay.wait(10000), 2);
  EXPECT_NE(no_relay.err().find("has no relay mode"), std::string::npos) << no_relay.err();
  Tool ssh({"--hosts=ssh", "--method", "sandbox:af_xdp"});
  EXPECT_EQ(ssh.wait(10000), 2);
  EXPECT_NE(ssh.err().find("--hosts=ssh needs --sender, --proxy and --receiver"), std::string::npos) << ssh.err();
  Tool uls({"--method", "sandbox:uls"});
  EXPECT_EQ(uls.wait(10000), 2);
  EXPECT_NE(uls.err().find("needs the ULS kernel"), std::string::npos) << uls.err();
}

}  // namespace
}  // namespace ulsnet
