// Integration tests on real hosts (network namespaces): topology life cycle, the traffic pair,
// every method forwarding a numbered stream with exact accounting, router transparency.
#include <linux/if_packet.h>
#include <net/if.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>

#include "stack/drop_stage.h"
#include "baselines/registry.h"
#include "bench/netns_child.h"
#include "bench/topology.h"
#include "bench/traffic.h"
#include "bench/trial.h"
#include "bench/xdp_generator.h"
#include "bench/xsk_traffic.h"

namespace ulsnet {
namespace {

bool ns_exists(const std::string& n) { return std::filesystem::exists("/run/netns/" + n); }

#define SKIP_UNLESS_ROOT() \
  if (geteuid() != 0) GTEST_SKIP() << "needs root to create network namespaces"

TEST(Topology, CreatesHostsAndRemovesThem) {
  SKIP_UNLESS_ROOT();
  std::vector<std::string> names;
  {
    Topology t(TopologyOptions{});
    names = t.namespaces();
    ASSERT_EQ(names.size(), 3u);
    for (auto& n : names) EXPECT_TRUE(ns_exists(n)) << n;
    // The proxy's kernel owns its addresses here: the sender reaches it.
    EXPECT_NO_THROW(run_command("ip netns exec " + t.sender.ns + " ping -c 1 -W 2 10.201.1.2"));
  }
  for (auto& n : names) EXPECT_FALSE(ns_exists(n)) << n;
  EXPECT_TRUE(live_namespaces().empty());
}

TEST(Topology, SigtermRemovesNamespaces) {
  SKIP_UNLESS_ROOT();
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(p[0]);
    Topology t(TopologyOptions{});
    std::string all;
    for (auto& n : t.namespaces()) all += n + "\n";
    (void)!write(p[1], all.data(), all.size());
    close(p[1]);
    sleep(30);  // killed long before
    _exit(0);
  }
  close(p[1]);
  std::string got;
  char b[512];
  ssize_t n;
  while ((n = read(p[0], b, sizeof b)) > 0) got.append(b, size_t(n));
  close(p[0]);
  std::vector<std::string> names;
  for (size_t s = 0, e; (e = got.find('\n', s)) != std::string::npos; s = e + 1)
    names.push_back(got.substr(s, e - s));
  ASSERT_EQ(names.size(), 3u);
  for (auto& x : names) EXPECT_TRUE(ns_exists(x));
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFSIGNALED(status));
  for (auto& x : names) EXPECT_FALSE(ns_exists(x)) << x << " outlived SIGTERM";
}

// SIGTERM at any moment while hosts are being made and removed: nothing is left. A child builds
// and removes topologies in a loop (two and three hosts, as a run's calibration and trials do);
// it is ended at a random moment, 80 times. A signal in the middle of `ip netns add` used to
// remove the namespace before `ip` (another process) had made it; `ip` then made it after the
// run had gone (CI of 75c747d: a calibration receiver left). The moments are spread over the
// first 300 ms, a few constructions: each `ip netns add` is a few ms of it (before the mend,
// one round in 30-40 left one).
TEST(Topology, SigtermWhileHostsAreMadeLeavesNone) {
  SKIP_UNLESS_ROOT();
  std::srand(unsigned(getpid()));
  int left = 0;
  std::string which;
  for (int round = 0; round < 80; ++round) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      for (int i = 0; i < 1000; ++i) {
        TopologyOptions o;
        o.three_hosts = i % 2 == 1;
        Topology t(o);
      }
      _exit(0);
    }
    usleep(useconds_t(std::rand() % 300'000));
    kill(pid, SIGTERM);
    int status = 0;
    waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFSIGNALED(status)) << "round " << round;
    // What an `ip` started by the child might still make, it has made within this.
    usleep(100'000);
    const std::string prefix = "ulsnet-" + std::to_string(pid) + "-";
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/run/netns", ec)) {
      const std::string n = e.path().filename();
      if (n.rfind(prefix, 0) != 0) continue;
      ++left;
      which += " " + n + " (round " + std::to_string(round) + ")";
      run_command("ip netns del " + n);
    }
  }
  EXPECT_EQ(left, 0) << "namespaces outlived SIGTERM:" << which;
}

TEST(Topology, NamespacesOfAKilledRunAreRemovedByTheNext) {
  SKIP_UNLESS_ROOT();
  // A pid no process has: a child that has exited and been reaped.
  pid_t dead = fork();
  ASSERT_GE(dead, 0);
  if (dead == 0) _exit(0);
  ASSERT_EQ(waitpid(dead, nullptr, 0), dead);
  const std::string stale = "ulsnet-" + std::to_string(dead) + "-0-snd";
  const std::string alive = "ulsnet-" + std::to_string(getppid()) + "-0-snd";  // a live pid
  run_command("ip netns add " + stale);
  run_command("ip netns add " + alive);
  std::vector<std::string> removed = reap_stale_namespaces();
  EXPECT_FALSE(ns_exists(stale));
  EXPECT_TRUE(ns_exists(alive)) << "a live run's namespace was removed";
  EXPECT_NE(std::find(removed.begin(), removed.end(), stale), removed.end());
  EXPECT_EQ(std::find(removed.begin(), removed.end(), alive), removed.end());
  run_command("ip netns del " + alive);
}

TEST(Topology, NapiThreadsArePinnedToTheirHostsCpus) {
  SKIP_UNLESS_ROOT();
  TopologyOptions o;
  o.veth_napi = true;
  o.proxy_napi_cpu = 0;
  o.receiver_napi_cpu = 0;
  Topology t(o);
  const std::string& r = t.napi_report();
  for (const char* dev : {"napi/p0-", "napi/p1-", "napi/r0-"}) EXPECT_NE(r.find(dev), std::string::npos) << r;
  EXPECT_EQ(r.find("on CPU 1"), std::string::npos) << r;
  EXPECT_EQ(run_command("ip netns exec " + t.proxy_in.ns + " cat /sys/class/net/p0/threaded"), "1\n");
  EXPECT_NE(run_command("ip netns exec " + t.receiver.ns + " ethtool -k r0"), "");
  EXPECT_NE(run_command("ip netns exec " + t.receiver.ns + " ethtool -k r0").find("generic-receive-offload: on"),
            std::string::npos);
}

TEST(Traffic, TwoHostsEveryPacketArrivesIntact) {
  SKIP_UNLESS_ROOT();
  TopologyOptions o;
  o.three_hosts = false;
  Topology t(o);
  SinkConfig sc;
  sc.max_seq = 3000;
  sc.run_id = 77;
  NetnsChild sink(t.receiver.ns, -1, [sc](const std::atomic<bool>& stop, const ReadyFn& ready) {
    return run_sink(sc, stop, ready);
  });
  ASSERT_TRUE(sink.wait_ready(5000));
  GeneratorConfig gc;
  gc.dst = t.receiver.ip;
  gc.payload = 200;
  gc.count = 3000;
  gc.rate_pps = 30000;
  gc.duration_s = 5;
  gc.run_id = 77;
  NetnsChild gen(t.sender.ns, -1, [gc](const std::atomic<bool>& stop, const ReadyFn&) {
    return run_generator(gc, stop);
  });
  auto g = gen.result(10000);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  sink.stop();
  auto s = sink.result(5000);
  ASSERT_FALSE(g.contains("error")) << g.dump();
  ASSERT_FALSE(s.contains("error")) << s.dump();
  EXPECT_EQ(g["sent"], 3000);
  EXPECT_EQ(s["received"], 3000);
  EXPECT_EQ(s["corrupted"], 0);
  EXPECT_EQ(s["duplicates"], 0);
  // Every datagram has its own kernel receive time and its own send time.
  EXPECT_EQ(s["latency_ns"]["samples"], 3000);
  EXPECT_EQ(s["latency_ns"]["untimed"], 0);
  EXPECT_GT(s["latency_ns"]["min"].get<int64_t>(), 0);
  EXPECT_LT(s["latency_ns"]["max"].get<int64_t>(), 1'000'000'000);
  EXPECT_EQ(s["ipdv_ns"]["samples"], 2999);
  EXPECT_NE(s["rx_timestamp"].get<std::string>().find("SO_TIMESTAMPNS"), std::string::npos);
  EXPECT_EQ(s["latency_ns"]["histogram"]["count"], 3000);
}

TEST(Traffic, InKernelGeneratorSendsExactlyItsCountAndEveryFrameIsAccounted) {
  SKIP_UNLESS_ROOT();
  if (std::string why = xdp_generator_unsupported_reason(); !why.empty()) GTEST_SKIP() << why;
  TopologyOptions o;
  o.three_hosts = false;
  o.veth_napi = true;  // XDP_TX into a veth needs the peer in NAPI mode
  Topology t(o);
  TrialConfig tc;
  tc.generator = "xdp-live";
  tc.payload = 300;
  tc.max_packets = 5000;
  tc.duration_s = 5;
  tc.run_id = 91;
  nlohmann::json r = run_direct(t, tc);
  ASSERT_FALSE(r.contains("error")) << r.dump();
  EXPECT_EQ(r["generator"], "xdp-live");
  const auto& g = r["reports"]["generator"];
  EXPECT_EQ(g["udp_checksum"], "none");
  // The count bound is exact: the program drops (and counts) frames past it.
  EXPECT_EQ(g["attempted"], 5000) << g.dump();
  EXPECT_GE(g["over_limit"].get<uint64_t>(), 1u) << g.dump();
  // A burst this fast may overflow the receiver: whatever is lost is counted somewhere.
  EXPECT_GT(r["received"].get<uint64_t>(), 0u);
  EXPECT_EQ(r["unaccounted"], 0) << r.dump();
  EXPECT_EQ(r["reports"]["sink"]["corrupted"], 0);
  EXPECT_EQ(r["duplicates"], 0);
  // Fixed rates are refused with the reason (the harness uses the socket generator for them).
  XdpGeneratorConfig xc;
  xc.gen.rate_pps = 1000;
  std::atomic<bool> stop{false};
  EXPECT_THROW(run_xdp_generator(xc, stop), std::invalid_argument);
}

TEST(Traffic, AfXdpGeneratorAndSinkDeliverEveryDatagramIntact) {
  SKIP_UNLESS_ROOT();
  TopologyOptions o;
  o.three_hosts = false;
  Topology t(o);
  TrialConfig tc;
  tc.generator = "af_xdp";
  tc.sink = "af_xdp";
  tc.payload = 400;
  tc.rate_pps = 30000;
  tc.max_packets = 3000;
  tc.duration_s = 5;
  tc.run_id = 93;
  nlohmann::json r = run_direct(t, tc);
  ASSERT_FALSE(r.contains("error")) << r.dump();
  EXPECT_EQ(r["generator"], "af_xdp");
  EXPECT_EQ(r["sink"], "af_xdp");
  EXPECT_EQ(r["sent"], 3000);
  EXPECT_EQ(r["received"], 3000) << r["drops"].dump();
  EXPECT_EQ(r["unaccounted"], 0);
  EXPECT_EQ(r["reports"]["sink"]["corrupted"], 0);
  EXPECT_EQ(r["duplicates"], 0);
  EXPECT_EQ(r["reports"]["sink"]["not_ours"], 0);
  // Each frame's receive time from the sink's XDP program (metadata), its send time per frame.
  EXPECT_EQ(r["latency_ns"]["samples"], 3000);
  EXPECT_EQ(r["latency_ns"]["untimed"], 0);
  EXPECT_EQ(r["reports"]["sink"]["rx_no_timestamp"], 0);
  EXPECT_GT(r["latency_ns"]["min"].get<int64_t>(), 0);
  EXPECT_LT(r["latency_ns"]["max"].get<int64_t>(), 1'000'000'000);
  // Paced, not bursted: 3000 datagrams at 30 kpps take about 0.1 s.
  EXPECT_GT(r["reports"]["generator"]["duration_s"].get<double>(), 0.08);
}

TEST(Traffic, SinkStatsRecordEachDatagramsOwnDelay) {
  SinkConfig sc;
  sc.max_seq = 10;
  sc.run_id = 3;
  SinkStats st(sc);
  std::vector<uint8_t> p(64);
  const uint64_t sent[] = {1000, 2000, 3000, 4000};
  const uint64_t recv[] = {1500, 2600, 0, 4100};  // the third came without a receive time
  for (int i = 0; i < 4; ++i) {
    fill_payload(p.data(), 64, 3, uint64_t(i), sent[i]);
    st.on_datagram(p.data(), 64, false, recv[i]);
  }
  st.on_datagram(p.data(), 64, false, 9999);  // a duplicate of 3
  fill_payload(p.data(), 64, 4, 5, 1);        // another run's
  st.on_datagram(p.data(), 64, false, 10);
  nlohmann::json j = st.report();
  EXPECT_EQ(j["received"], 4);
  EXPECT_EQ(j["duplicates"], 1);
  EXPECT_EQ(j["corrupted"], 1);
  EXPECT_EQ(j["latency_ns"]["samples"], 3);
  EXPECT_EQ(j["latency_ns"]["untimed"], 1);
  EXPECT_EQ(j["latency_ns"]["min"], 100);
  EXPECT_EQ(j["latency_ns"]["p50"], 500);
  EXPECT_EQ(j["latency_ns"]["max"], 600);
  EXPECT_EQ(j["ipdv_ns"]["samples"], 1);  // only (0, 1): 2 has no time
  EXPECT_EQ(j["ipdv_ns"]["max"], 100);
}

TEST(Traffic, SinkLeavesTheWarmUpOutOfTheDelayStatisticsButCountsIt) {
  SinkConfig sc;
  sc.run_id = 3;
  sc.warmup_s = 1e-6;  // 1000 ns after the first arrival's send time
  SinkStats st(sc);
  std::vector<uint8_t> p(64);
  // Sent at 5000, 5500, 6000, 6999, 7000, 8000 ns; the first to arrive is seq 1 (sent 5500), so
  // the warm-up is what was sent before 6500: seqs 0, 1, 2.
  const uint64_t sent[] = {5000, 5500, 6000, 6999, 7000, 8000};
  const uint64_t recv[] = {9000, 5600, 6100, 7100, 7300, 8050};
  for (int i : {1, 0, 2, 3, 4, 5}) {
    fill_payload(p.data(), 64, 3, uint64_t(i), sent[i]);
    st.on_datagram(p.data(), 64, false, recv[i]);
  }
  nlohmann::json j = st.report();
  EXPECT_EQ(j["received"], 6);
  EXPECT_EQ(j["latency_ns"]["warmup_excluded"], 3);
  EXPECT_EQ(j["latency_ns"]["samples"], 3);
  EXPECT_EQ(j["latency_ns"]["min"], 50);   // seq 5; seq 0's 4000 ns is warm-up
  EXPECT_EQ(j["latency_ns"]["max"], 300);  // seq 4
  EXPECT_EQ(j["ipdv_ns"]["samples"], 2);   // (3, 4) and (4, 5)
  EXPECT_EQ(j["latency_ns"]["warmup_s"], 1e-6);
}

TEST(Traffic, PayloadCheckCatchesCorruption) {
  std::vector<uint8_t> p(100);
  fill_payload(p.data(), 100, 5, 42, 1234);
  uint64_t seq, ts;
  ASSERT_TRUE(check_payload(p.data(), 100, 5, seq, ts));
  EXPECT_EQ(seq, 42u);
  EXPECT_EQ(ts, 1234u);
  EXPECT_FALSE(check_payload(p.data(), 100, 6, seq, ts));  // another run
  p[60] ^= 1;
  EXPECT_FALSE(check_payload(p.data(), 100, 5, seq, ts));
  EXPECT_FALSE(check_payload(p.data(), 10, 5, seq, ts));
  GeneratorConfig bad;
  bad.payload = 10;
  std::atomic<bool> stop{false};
  EXPECT_THROW(run_generator(bad, stop), std::invalid_argument);
}

struct MethodCase {
  std::string method, variant;
  ForwardMode mode;
};

std::vector<MethodCase> all_cases() {
  std::vector<MethodCase> v;
  for (const auto& m : proxy_methods())
    for (auto var : m.variants) {
      if (needs_uls_kernel(m.name, var)) continue;  // the VMs' case: sandbox/uls:uls_vm_test
      if (m.relay) v.push_back({std::string(m.name), std::string(var), ForwardMode::kRelay});
      if (m.router) v.push_back({std::string(m.name), std::string(var), ForwardMode::kRouter});
    }
  return v;
}

class MethodForwarding : public ::testing::TestWithParam<MethodCase> {};

TEST_P(MethodForwarding, NumberedStreamArrivesOrIsCountedAsDropped) {
  SKIP_UNLESS_ROOT();
  const MethodCase& c = GetParam();
  TopologyOptions to;
  to.proxy_kernel_addresses = find_proxy_method(c.method)->kernel_owns_addresses;
  to.veth_napi = find_proxy_method(c.method)->needs_veth_napi;
  Topology t(to);
  TrialConfig tc;
  tc.method = c.method;
  tc.variant = c.variant;
  tc.mode = c.mode;
  tc.payload = 128;
  tc.rate_pps = 20000;
  tc.max_packets = 4000;
  tc.duration_s = 5;  // the count bound ends it first (4000 at 20 kpps = 0.2 s)
  nlohmann::json r = run_trial(t, tc);
  ASSERT_FALSE(r.contains("error")) << r.dump(1);
  EXPECT_EQ(r["sent"], 4000);
  EXPECT_EQ(r["unaccounted"], 0) << r["drops"].dump();
  EXPECT_EQ(r["reports"]["sink"]["corrupted"], 0);
  EXPECT_EQ(r["duplicates"], 0);
  // At 20 kpps nothing on this path should overflow: a loss here is a bug, not load.
  EXPECT_EQ(r["received"], 4000) << r["drops"].dump();
  EXPECT_EQ(r["forwarded"], 4000);
  // Labels from the objects that ran; the method's drop stages are all proxy stages of the
  // typed list (an unknown one would have made the trial an error).
  EXPECT_EQ(r["generator"], "socket");
  EXPECT_EQ(r["sink"], "socket");
  const DropLedger method = DropLedger::from_json(r["reports"]["proxy"]["drops"]);
  for (DropStage st : kDropStages) {
    if (!method.stage(st).empty()) {
      EXPECT_TRUE(is_proxy_stage(st)) << drop_stage_name(st);
    }
  }
  EXPECT_EQ(r["drops"].size(), kDropStages.size());
  EXPECT_EQ(r["latency_ns"]["samples"], 4000);
  EXPECT_EQ(r["latency_ns"]["untimed"], 0);
  ASSERT_TRUE(r["cpu"].contains("proxy_process_ns_per_forwarded")) << r["cpu"].dump();
}

INSTANTIATE_TEST_SUITE_P(AllMethods, MethodForwarding, ::testing::ValuesIn(all_cases()),
                         [](const ::testing::TestParamInfo<MethodCase>& i) {
                           std::string n = i.param.method + "_" + i.param.variant + "_" +
                                           forward_mode_name(i.param.mode);
                           for (char& ch : n)
                             if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return n;
                         });

class RouterTransparency : public ::testing::TestWithParam<MethodCase> {};

TEST_P(RouterTransparency, PingWorksAcrossTheProxyWithDynamicArp) {
  SKIP_UNLESS_ROOT();
  const MethodCase& c = GetParam();
  TopologyOptions to;
  to.proxy_kernel_addresses = find_proxy_method(c.method)->kernel_owns_addresses;
  to.veth_napi = find_proxy_method(c.method)->needs_veth_napi;
  to.static_neighbors = false;  // hosts and the stack resolve each other by ARP
  Topology t(to);
  ProxyConfig pc;
  pc.method = c.method;
  pc.variant = c.variant;
  pc.mode = ForwardMode::kRouter;
  pc.in = t.proxy_port_in();
  pc.out = t.proxy_port_out();
  pc.static_neighbors = false;
  NetnsChild proxy(t.proxy_in.ns, -1, proxy_role(pc));
  ASSERT_TRUE(proxy.wait_ready(5000));
  // -w bounds each ping; it succeeds if any reply came back.
  EXPECT_NO_THROW(run_command("ip netns exec " + t.sender.ns + " ping -c 3 -i 0.2 -w 5 " +
                              t.receiver.ip.str()));
  EXPECT_NO_THROW(run_command("ip netns exec " + t.receiver.ns + " ping -c 2 -i 0.2 -w 5 " +
                              t.sender.ip.str()));
  // The proxy itself answers echo (the stack, or the kernel for kernel-forward).
  EXPECT_NO_THROW(run_command("ip netns exec " + t.sender.ns + " ping -c 2 -i 0.2 -w 5 " +
                              t.proxy_in.ip.str()));
  proxy.stop();
  auto r = proxy.result(5000);
  ASSERT_FALSE(r.contains("error")) << r.dump();
  if (r.contains("stack")) {
    EXPECT_GT(r["stack"]["arp_replies_sent"].get<uint64_t>(), 0u);
    EXPECT_GT(r["stack"]["icmp_echo_replies"].get<uint64_t>(), 0u);
    EXPECT_GT(r["stack"]["forwarded"].get<uint64_t>(), 0u);
  }
}

std::vector<MethodCase> router_cases() {
  std::vector<MethodCase> v;
  for (const auto& m : proxy_methods())
    if (m.router) v.push_back({std::string(m.name), std::string(m.variants[0]), ForwardMode::kRouter});
  return v;
}

INSTANTIATE_TEST_SUITE_P(RouterMethods, RouterTransparency, ::testing::ValuesIn(router_cases()),
                         [](const ::testing::TestParamInfo<MethodCase>& i) {
                           std::string n = i.param.method + "_" + i.param.variant;
                           for (char& ch : n)
                             if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return n;
                         });

// A frame the AF_XDP steering program does not take goes to the proxy's
// kernel, which owns no address and drops it; the method's ledger names it, so every frame
// that entered is accounted. From the sender: IPv4 shorter than its header, a non-IP ethertype
// and an IPv4 frame to another MAC, 4 of each.
class AfXdpSteering : public ::testing::TestWithParam<std::string> {};

TEST_P(AfXdpSteering, FramesPassedToTheKernelAreAProxyKernelDrop) {
  SKIP_UNLESS_ROOT();
  TopologyOptions to;
  to.proxy_kernel_addresses = false;
  Topology topo(to);
  ProxyConfig pc;
  pc.method = GetParam();
  pc.variant = "af_xdp";
  pc.mode = ForwardMode::kRouter;
  pc.in = topo.proxy_port_in();
  pc.out = topo.proxy_port_out();
  NetnsChild proxy(topo.proxy_in.ns, -1, proxy_role(pc));
  ASSERT_TRUE(proxy.wait_ready(5000)) << proxy.result(1000).dump();
  const MacAddr to_mac = topo.proxy_in.mac, from_mac = topo.sender.mac;
  const std::string ifname = topo.sender.ifname;
  NetnsChild inject(topo.sender.ns, -1, [=](const std::atomic<bool>&, const ReadyFn&) {
    const int s = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
    sockaddr_ll a{};
    a.sll_family = AF_PACKET;
    a.sll_ifindex = int(if_nametoindex(ifname.c_str()));
    a.sll_halen = 6;
    int sent = 0;
    auto send = [&](const MacAddr& dst, uint16_t type, size_t len) {
      uint8_t f[128] = {};
      std::memcpy(f, dst.b.data(), 6);
      std::memcpy(f + 6, from_mac.b.data(), 6);
      f[12] = uint8_t(type >> 8);
      f[13] = uint8_t(type);
      f[14] = 0x45;
      std::memcpy(a.sll_addr, dst.b.data(), 6);
      if (sendto(s, f, len, 0, reinterpret_cast<sockaddr*>(&a), sizeof a) == ssize_t(len)) ++sent;
    };
    MacAddr other = to_mac;
    other.b[5] ^= 0x55;
    for (int i = 0; i < 4; ++i) {
      send(to_mac, 0x0800, 14 + 10);  // IPv4, 10 bytes: shorter than its header
      send(to_mac, 0x88b5, 60);       // IEEE local experimental ethertype
      send(other, 0x0800, 60);        // for another MAC
    }
    close(s);
    return nlohmann::json{{"sent", sent}};
  });
  nlohmann::json inj = inject.result(5000);
  ASSERT_EQ(inj.value("sent", 0), 12) << inj.dump();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  proxy.stop();
  nlohmann::json r = proxy.result(5000);
  ASSERT_FALSE(r.contains("error")) << r.dump();
  const DropLedger d = DropLedger::from_json(r["drops"]);
  const auto& k = d.stage(DropStage::kProxyKernel);
  ASSERT_TRUE(k.count("xdp_passed_to_kernel")) << r["drops"].dump();
  EXPECT_EQ(k.at("xdp_passed_to_kernel"), 12u) << r["af_xdp"].dump();
  EXPECT_EQ(r["af_xdp"]["in"]["passed_to_kernel"].get<uint64_t>() +
                r["af_xdp"]["out"]["passed_to_kernel"].get<uint64_t>(),
            12u);
}

INSTANTIATE_TEST_SUITE_P(StackMethods, AfXdpSteering,
                         ::testing::Values("raw-socket", "user-thread", "sandbox"),
                         [](const ::testing::TestParamInfo<std::string>& i) {
                           std::string n = i.param;
                           for (char& ch : n)
                             if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return n;
                         });

TEST(Methods, UnknownNamesAndWrongModesAreClearErrors) {
  EXPECT_EQ(find_proxy_method("nope"), nullptr);
  if (geteuid() == 0) {
    EXPECT_THROW(make_proxy_method("nope"), MethodError);
    auto m = make_proxy_method("kernel-socket");
    ProxyConfig pc;
    pc.mode = ForwardMode::kRouter;
    EXPECT_THROW(m->start(pc), MethodError);
    auto raw = make_proxy_method("raw-socket");
    ProxyConfig bad;
    bad.in.ifname = "no-such-if0";
    bad.out.ifname = "no-such-if1";
    try {
      raw->start(bad);
      ADD_FAILURE() << "expected MethodError";
    } catch (const MethodError& e) {
      EXPECT_NE(std::string(e.what()).find("no-such-if0"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace ulsnet
