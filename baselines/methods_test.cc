// The method registry, config checks, and every method forwarding a numbered UDP stream.
//
// Forwarding tests run in a network namespace of this test process (unshare(CLONE_NEWNET):
// it vanishes with the process) holding two veth pairs:
//
//   s0 (test sender) -- p0 (proxy in, 10.0.1.1/24)
//                         p1 (proxy out, 10.0.2.1/24) -- r0 (test receiver)
//
// The test itself plays sender and receiver with packet sockets on s0 and r0, building frames
// by hand and checking every forwarded frame's headers, checksums and payload. The receiver's
// MAC as configured in the proxy is a phantom address (not r0's), so r0's kernel discards the
// frames as "other host" before its IP layer: the namespace's IP and UDP counters, which the
// kernel methods report, then count only the proxy's own work. The full three-namespace runs
// are bench/integration_test.cc.
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <thread>

#include "baselines/registry.h"
#include "sandbox/protection.h"
#include "stack/af_packet_device.h"
#include "stack/checksum.h"
#include "stack/clock.h"
#include "stack/protocols.h"

namespace ulsnet {
namespace {

const MacAddr kSenderMac = *MacAddr::parse("02:00:00:00:01:02");
const MacAddr kProxyInMac = *MacAddr::parse("02:00:00:00:01:01");
const MacAddr kProxyOutMac = *MacAddr::parse("02:00:00:00:02:01");
const MacAddr kReceiverWireMac = *MacAddr::parse("02:00:00:00:02:02");  // r0 itself
const MacAddr kReceiverMac = *MacAddr::parse("02:00:00:00:02:99");      // what the proxy uses
const Ipv4Addr kSenderIp = *Ipv4Addr::parse("10.0.1.2");
const Ipv4Addr kProxyInIp = *Ipv4Addr::parse("10.0.1.1");
const Ipv4Addr kProxyOutIp = *Ipv4Addr::parse("10.0.2.1");
const Ipv4Addr kReceiverIp = *Ipv4Addr::parse("10.0.2.2");
constexpr uint16_t kRelayPort = 9000, kRelayToPort = 9001, kSenderPort = 5555;

bool sh(const std::string& cmd) {
  std::string full = "PATH=$PATH:/usr/sbin:/sbin; " + cmd + " >/dev/null 2>&1";
  return std::system(full.c_str()) == 0;
}

ProxyConfig proxy_config(const std::string& method, const std::string& variant,
                         ForwardMode mode) {
  ProxyConfig c;
  c.method = method;
  c.variant = variant;
  c.mode = mode;
  c.in = {"p0", kProxyInMac, kProxyInIp, 24, kSenderIp, kSenderMac};
  c.out = {"p1", kProxyOutMac, kProxyOutIp, 24, kReceiverIp, kReceiverMac};
  c.relay_port = kRelayPort;
  c.relay_to_port = kRelayToPort;
  c.pool_frames = 1024;
  return c;
}

// ---- Registry and config checks: no privilege needed.

TEST(Registry, NamesVariantsAndModesAreExactlyTheDocumentedOnes) {
  const auto& m = proxy_methods();
  ASSERT_EQ(m.size(), 6u);
  EXPECT_EQ(m[0].name, "kernel-socket");
  EXPECT_EQ(m[1].name, "raw-socket");
  EXPECT_EQ(m[2].name, "user-thread");
  EXPECT_EQ(m[3].name, "sandbox");
  EXPECT_EQ(m[4].name, "xdp-redirect");
  EXPECT_EQ(m[5].name, "kernel-forward");
  using V = std::vector<std::string_view>;
  EXPECT_EQ(m[0].variants, (V{"batched", "per-datagram", "io_uring", "io_uring-sqpoll", "io_uring-send_zc"}));
  EXPECT_EQ(m[0].named_only, (V{"io_uring-sqpoll", "io_uring-send_zc"}));
  EXPECT_EQ(named_only_variants(), "kernel-socket:io_uring-sqpoll, kernel-socket:io_uring-send_zc");
  EXPECT_EQ(m[1].variants, (V{"af_packet", "af_packet_mmap", "af_xdp"}));
  EXPECT_EQ(m[2].variants, (V{"af_packet", "af_packet_mmap", "af_xdp"}));
  EXPECT_EQ(m[3].variants, (V{"af_xdp", "af_packet_mmap", "uls"}));
  EXPECT_EQ(m[4].variants, (V{"native", "skb"}));
  EXPECT_EQ(m[5].variants, (V{"ip_forward"}));
  EXPECT_TRUE(m[0].relay && !m[0].router && m[0].kernel_owns_addresses);
  EXPECT_TRUE(m[1].relay && m[1].router && !m[1].kernel_owns_addresses);
  EXPECT_TRUE(m[2].relay && m[2].router && !m[2].kernel_owns_addresses);
  EXPECT_TRUE(m[3].relay && m[3].router && !m[3].kernel_owns_addresses);
  EXPECT_TRUE(m[4].relay && m[4].router && m[4].kernel_owns_addresses && m[4].needs_veth_napi);
  EXPECT_TRUE(!m[5].relay && m[5].router && m[5].kernel_owns_addresses);
  for (const MethodInfo& i : m) {
    EXPECT_FALSE(i.doc.empty()) << i.name;
    EXPECT_EQ(find_proxy_method(i.name), &i);
    EXPECT_NE(make_proxy_method(i.name), nullptr);
  }
  EXPECT_EQ(find_proxy_method("nope"), nullptr);
}

TEST(Registry, UnknownMethodListsTheValidOnes) {
  try {
    make_proxy_method("dpdk");
    ADD_FAILURE() << "expected MethodError";
  } catch (const MethodError& e) {
    for (const MethodInfo& i : proxy_methods())
      EXPECT_NE(std::string(e.what()).find(i.name), std::string::npos) << e.what();
  }
}

TEST(Registry, MethodSpecsExpandInRegistryOrderAndRefuseWhatDoesNotExist) {
  auto none_uls = [](const MethodInfo& m, std::string_view v, bool) { return !needs_uls_kernel(m.name, v); };
  size_t all = 0;
  for (const MethodInfo& m : proxy_methods()) all += m.variants.size() - m.named_only.size();
  auto every = expand_method_specs({}, none_uls);
  EXPECT_EQ(every.size(), all - 1) << "every variant but sandbox:uls and the named-only ones";
  for (const auto& [m, v] : every) EXPECT_EQ(v.find("io_uring-"), std::string::npos) << v << " is named-only";
  // The named-only variants: not in their method's implicit expansion, in when named.
  auto ks = expand_method_specs({"kernel-socket"}, none_uls);
  ASSERT_EQ(ks.size(), 3u);
  EXPECT_EQ(ks[2].second, "io_uring");
  auto sq = expand_method_specs({"kernel-socket:io_uring-sqpoll", "kernel-socket:io_uring-send_zc"}, none_uls);
  ASSERT_EQ(sq.size(), 2u);
  EXPECT_EQ(sq[0].second, "io_uring-sqpoll");
  EXPECT_EQ(sq[1].second, "io_uring-send_zc");
  auto sandbox = expand_method_specs({"sandbox"}, none_uls);
  ASSERT_EQ(sandbox.size(), 2u);
  EXPECT_EQ(sandbox[0].second, "af_xdp");
  EXPECT_EQ(sandbox[1].second, "af_packet_mmap");
  auto named = expand_method_specs({"sandbox:uls", "kernel-socket:batched"}, none_uls);
  ASSERT_EQ(named.size(), 2u) << "a named variant goes in whatever the filter says";
  EXPECT_EQ(named[0].first->name, "sandbox");
  EXPECT_EQ(named[0].second, "uls");
  EXPECT_EQ(named[1].second, "batched");
  try {
    expand_method_specs({"dpdk"}, none_uls);
    ADD_FAILURE() << "expected MethodError";
  } catch (const MethodError& e) {
    EXPECT_NE(std::string(e.what()).find("kernel-socket"), std::string::npos) << e.what();
  }
  EXPECT_THROW(expand_method_specs({"sandbox:warp"}, none_uls), MethodError);
}

std::string start_error(const ProxyConfig& c) {
  try {
    make_proxy_method(c.method)->start(c);
  } catch (const MethodError& e) {
    return e.what();
  }
  return "";
}

TEST(Registry, WrongModeUnknownVariantAndMissingInterfaceAreClearErrors) {
  for (const MethodInfo& i : proxy_methods()) {
    for (ForwardMode mode : {ForwardMode::kRelay, ForwardMode::kRouter}) {
      bool supported = mode == ForwardMode::kRelay ? i.relay : i.router;
      if (supported) continue;
      std::string e = start_error(proxy_config(std::string(i.name), "", mode));
      EXPECT_NE(e.find(std::string(forward_mode_name(mode))), std::string::npos) << i.name << e;
    }
    ForwardMode ok = i.relay ? ForwardMode::kRelay : ForwardMode::kRouter;
    std::string e = start_error(proxy_config(std::string(i.name), "warp-drive", ok));
    EXPECT_NE(e.find("warp-drive"), std::string::npos) << e;
    EXPECT_NE(e.find(i.variants[0]), std::string::npos) << e;
    ProxyConfig c = proxy_config(std::string(i.name), "", ok);
    c.in.ifname = "no-such-if0";
    e = start_error(c);
    EXPECT_NE(e.find("no-such-if0"), std::string::npos) << i.name << ": " << e;
  }
}

// ---- Forwarding: root and a private namespace.

std::string make_links(bool kernel_addresses, bool veth_napi = false) {
  if (geteuid() != 0) return "needs root for namespaces and packet sockets";
  if (unshare(CLONE_NEWNET) != 0)
    return std::string("unshare(CLONE_NEWNET) failed: ") + std::strerror(errno);
  std::ofstream("/proc/sys/net/ipv6/conf/default/disable_ipv6") << "1\n";
  std::ofstream("/proc/sys/net/ipv6/conf/all/disable_ipv6") << "1\n";
  const std::string links =
      "ip link add s0 address " + kSenderMac.str() + " type veth peer name p0 address " +
      kProxyInMac.str() + " && ip link add p1 address " + kProxyOutMac.str() +
      " type veth peer name r0 address " + kReceiverWireMac.str() +
      " && for d in lo s0 p0 p1 r0; do ip link set $d up; done";
  if (!sh(links)) return "cannot create veth pairs with iproute2";
  // XDP redirects into p1 reach r0 only if r0 is in NAPI mode (GRO on).
  if (veth_napi && !sh("ethtool -K r0 gro on && ethtool -K s0 gro on"))
    return "ethtool cannot turn GRO on for the veth (needed for XDP redirect into it)";
  if (kernel_addresses &&
      !sh("ip addr add " + kProxyInIp.str() + "/24 dev p0 && ip addr add " + kProxyOutIp.str() +
          "/24 dev p1 && ip neigh replace " + kSenderIp.str() + " lladdr " + kSenderMac.str() +
          " dev p0 nud permanent && ip neigh replace " + kReceiverIp.str() + " lladdr " +
          kReceiverMac.str() + " dev p1 nud permanent"))
    return "cannot configure the proxy's kernel addresses";
  for (int i = 0; i < 200; ++i) {
    if (sh("for d in s0 p0 p1 r0; do ip -o link show $d | grep -q 'state UP' || exit 1; done"))
      return "";
    usleep(10000);
  }
  return "veth pairs did not come up";
}

// Without the ULS kernel, the sandbox method's uls variant says what it needs (and where it runs).
TEST(Registry, SandboxOnTheUlsKernelSaysWhatItNeedsWhereThereIsNone) {
  if (access("/dev/uls", F_OK) == 0) GTEST_SKIP() << "this kernel has /dev/uls";
  std::string why = make_links(false);
  if (!why.empty()) GTEST_SKIP() << why;
  const std::string e = start_error(proxy_config("sandbox", "uls", ForwardMode::kRelay));
  EXPECT_NE(e.find("no /dev/uls"), std::string::npos) << e;
  EXPECT_NE(e.find("--hosts=vm"), std::string::npos) << e;
  // The interface checks come first, as for every method.
  ProxyConfig c = proxy_config("sandbox", "uls", ForwardMode::kRelay);
  c.in.ifname = "no-such-if0";
  EXPECT_NE(start_error(c).find("no-such-if0"), std::string::npos);
}

// Sender and receiver on s0 / r0, with the frames of one stream.
struct Endpoints {
  AfPacketDevice sender{"s0", 512};
  AfPacketDevice receiver{"r0", 512};

  // UDP from the sender to dst:dport carrying `seq` and a pattern; full checksums.
  void send_udp(Ipv4Addr dst, uint16_t dport, uint64_t seq, uint32_t payload,
                bool break_ip_checksum = false) {
    Frame f;
    ASSERT_EQ(sender.alloc_tx({&f, 1}), 1u);
    write_eth(f.data, kProxyInMac, kSenderMac, kEtherTypeIpv4);
    uint8_t* ip = f.data + kEthHeaderLen;
    const uint16_t udp_len = uint16_t(kUdpHeaderLen + payload);
    write_ipv4(ip, kSenderIp, dst, kProtoUdp, uint16_t(kIpv4MinHeaderLen + udp_len), 64);
    if (break_ip_checksum) ip[kIpOffChecksum] ^= 0x5a;
    uint8_t* u = ip + kIpv4MinHeaderLen;
    store_be16(u, kSenderPort);
    store_be16(u + 2, dport);
    store_be16(u + 4, udp_len);
    store_be16(u + 6, 0);
    store_le64(u + 8, seq);
    for (uint32_t i = 8; i < payload; ++i) u[8 + i] = uint8_t(seq + i);
    store_be16(u + 6, udp_checksum(u, udp_len, kSenderIp, dst));
    f.len = kEthHeaderLen + kIpv4MinHeaderLen + udp_len;
    ASSERT_EQ(sender.tx_burst({&f, 1}), 1u);
  }
};

struct Received {
  std::map<uint64_t, int> seqs;
  uint64_t bad = 0;
  std::string first_bad;
};

// Checks one frame leaving the proxy: addresses, TTL, both checksums, ports, payload.
void check_forwarded(const Frame& f, ForwardMode mode, bool kernel_relay, Received& r) {
  auto fail = [&](const std::string& why) {
    if (r.bad++ == 0) r.first_bad = why;
  };
  EthView eth;
  if (parse_eth(f.bytes(), eth) || eth.ethertype != kEtherTypeIpv4) return fail("not IPv4");
  if (eth.dst != kReceiverMac || eth.src != kProxyOutMac) return fail("Ethernet addresses");
  std::span<const uint8_t> pkt(f.data + kEthHeaderLen, f.len - kEthHeaderLen);
  Ipv4View ip;
  if (auto e = parse_ipv4(pkt, ip)) return fail("IPv4: " + std::string(drop_reason_name(*e)));
  const bool relay = mode == ForwardMode::kRelay;
  if (ip.src != (relay ? kProxyOutIp : kSenderIp) || ip.dst != kReceiverIp)
    return fail("IP addresses " + ip.src.str() + " -> " + ip.dst.str());
  if (ip.protocol != kProtoUdp) return fail("not UDP");
  if (ip.ttl != (relay ? 64 : 63)) return fail("TTL " + std::to_string(ip.ttl));
  UdpView udp;
  auto seg = pkt.subspan(ip.header_len, ip.total_len - ip.header_len);
  if (auto e = parse_udp(seg, ip.src, ip.dst, true, udp))
    return fail("UDP: " + std::string(drop_reason_name(*e)));
  if (udp.checksum == 0) return fail("UDP checksum missing");
  if (udp.dst_port != kRelayToPort) return fail("UDP port");  // the relay's target or unchanged
  if (!kernel_relay && udp.src_port != (relay ? kRelayPort : kSenderPort))
    return fail("UDP source port");
  const uint8_t* payload = seg.data() + kUdpHeaderLen;
  const uint32_t n = udp.length - kUdpHeaderLen;
  if (n < 8) return fail("payload too short");
  uint64_t seq = load_le64(payload);
  for (uint32_t i = 8; i < n; ++i)
    if (payload[i] != uint8_t(seq + i)) return fail("payload byte " + std::to_string(i));
  ++r.seqs[seq];
}

struct MethodCase {
  std::string method, variant;
  ForwardMode mode;
};

std::string case_name(const ::testing::TestParamInfo<MethodCase>& i) {
  std::string n = i.param.method + "_" + i.param.variant + "_" + forward_mode_name(i.param.mode);
  for (char& c : n)
    if (!isalnum(static_cast<unsigned char>(c))) c = '_';
  return n;
}

class MethodForwarding : public ::testing::TestWithParam<MethodCase> {};

TEST_P(MethodForwarding, NumberedStreamArrivesIntactAndEveryFrameIsAccounted) {
  const MethodCase& c = GetParam();
  const MethodInfo* info = find_proxy_method(c.method);
  ASSERT_NE(info, nullptr);
  std::string why = make_links(info->kernel_owns_addresses, info->needs_veth_napi);
  if (!why.empty()) GTEST_SKIP() << why;
  const bool kernel_relay = c.method == "kernel-socket";
  if (kernel_relay && !sh("ethtool -K p1 tx off"))
    GTEST_SKIP() << "ethtool cannot turn off checksum offload on p1: the kernel relay's UDP "
                    "checksums would be partial on the wire";
  const bool relay = c.mode == ForwardMode::kRelay;
  const bool stack_method = !info->kernel_owns_addresses;

  Endpoints ends;
  auto m = make_proxy_method(c.method);
  ASSERT_NO_THROW(m->start(proxy_config(c.method, c.variant, c.mode)));
  std::atomic<bool> stop{false};
  std::thread runner([&] { m->run(stop); });
  struct Joiner {
    std::atomic<bool>& stop;
    std::thread& t;
    ~Joiner() {
      stop = true;
      if (t.joinable()) t.join();
    }
  } joiner{stop, runner};

  constexpr uint64_t kCount = 200;
  const Ipv4Addr dst = relay ? kProxyInIp : kReceiverIp;
  Received got;
  std::vector<Frame> rx(64);
  auto drain = [&](uint64_t want, uint64_t ms) {
    const uint64_t deadline = monotonic_ns() + ms * 1'000'000ull;
    while (got.seqs.size() < want && monotonic_ns() < deadline) {
      size_t n = ends.receiver.rx_burst(rx);
      for (size_t i = 0; i < n; ++i) {
        check_forwarded(rx[i], c.mode, kernel_relay, got);
        rx[i].release();
      }
      if (n == 0) usleep(500);
    }
  };
  // Paced bursts, each received before the next: nothing on this path may overflow.
  for (uint64_t s = 0; s < kCount; s += 20) {
    for (uint64_t k = s; k < s + 20; ++k)
      ends.send_udp(dst, relay ? kRelayPort : kRelayToPort, k, 18 + uint32_t(k % 400));
    drain(s + 20, 2000);
  }
  // For the stack: a frame with a broken IPv4 checksum, and (relay) a port nobody relays.
  if (stack_method) {
    ends.send_udp(dst, relay ? kRelayPort : kRelayToPort, 90'001, 32, true);
    if (relay) ends.send_udp(kProxyInIp, 7777, 90'002, 32);
    usleep(50'000);
  }
  drain(kCount, 100);
  // While it runs (//bench:proxy's status lines): the live counters already hold every frame.
  const nlohmann::json live = m->live();
  stop = true;
  runner.join();
  nlohmann::json r = m->report();

  ASSERT_TRUE(live.is_object()) << "live() gave " << live.dump();
  EXPECT_EQ(live["forwarded"], kCount) << live.dump();
  for (auto& [stage, reasons] : r["drops"].items())
    for (auto& [reason, n] : reasons.items()) {
      const bool at_stop_only = reason == "left_in_device_at_stop" || reason == "left_in_socket_at_stop" ||
                                reason == "send_in_flight_at_stop";
      if (at_stop_only) continue;  // decided by stopping: not in live()
      ASSERT_TRUE(live["drops"].contains(stage) && live["drops"][stage].contains(reason))
          << stage << "/" << reason << " missing from live(): " << live.dump();
      EXPECT_EQ(live["drops"][stage][reason], n) << stage << "/" << reason;
    }
  if (stack_method) {
    EXPECT_EQ(live["device"]["in"]["rx_frames"], r["device"]["in"]["rx_frames"]) << live.dump();
    EXPECT_EQ(live["device"]["out"]["tx_frames"], r["device"]["out"]["tx_frames"]) << live.dump();
  }

  EXPECT_EQ(got.seqs.size(), kCount) << r.dump();
  for (auto& [seq, n] : got.seqs) EXPECT_EQ(n, 1) << "sequence " << seq << " arrived " << n;
  EXPECT_EQ(got.bad, 0u) << got.first_bad;
  EXPECT_EQ(r["forwarded"], kCount) << r.dump();
  ASSERT_TRUE(r.contains("drops"));
  if (stack_method) {
    nlohmann::json want = {{"ipv4_bad_checksum", 1}};
    if (relay) want["udp_no_listener"] = 1;
    EXPECT_EQ(r["drops"]["proxy_stack"], want) << r.dump();
    EXPECT_EQ(r["accounting"]["device_rx"], kCount + (relay ? 2 : 1)) << r.dump();
    EXPECT_EQ(r["accounting"]["unaccounted"], 0) << r.dump();
    EXPECT_EQ(r["drops"]["proxy_kernel"]["packet_socket_drops"], 0);
    EXPECT_EQ(r["drops"]["proxy_tx"]["tx_dropped"], 0);
    EXPECT_EQ(r["device"]["in"]["kind"], c.variant);
    if (c.method == "user-thread") {
      const auto& h = r["handoff"];
      EXPECT_GE(h["bursts"].get<uint64_t>(), 1u);
      EXPECT_EQ(h["frames"], r["accounting"]["device_rx"]);
      EXPECT_EQ(h["stack_signals"], h["bursts"]);  // one wake-up per hand-off, each way
      EXPECT_EQ(h["io_signals"], h["bursts"]);
      EXPECT_GE(h["stack_sleeps"].get<uint64_t>(), 1u);
      EXPECT_EQ(h["slots_in_flight_at_end"], 0);
      EXPECT_EQ(r["drops"]["proxy_queue"]["handoff_queue_full"], 0);
    }
    if (c.variant == "af_xdp") {
      // One umem for both sockets: forwarded frames moved as descriptors, never copied.
      EXPECT_EQ(r["device"]["in"]["copies"], 0) << r.dump();
      EXPECT_EQ(r["device"]["out"]["copies"], 0) << r.dump();
      EXPECT_EQ(r["device_mode"], "copy") << "veth has no zero-copy AF_XDP: the kernel copies once";
      EXPECT_EQ(r["af_xdp"]["umem_bad_releases"], 0);
    }
    if (c.method == "sandbox") {
      EXPECT_EQ(r["frames_in_region"], c.variant == "af_xdp");
      // The Stack ran as an extension, one upcall per received burst, in the mode recorded.
      EXPECT_EQ(r["protection"], protection_mode_name(best_protection_mode())) << r.dump();
      EXPECT_EQ(r["extension"]["state"], "active");
      EXPECT_EQ(r["extension"]["faults"], 0);
      EXPECT_GE(r["extension"]["upcalls"].get<uint64_t>(), kCount / 20);
      EXPECT_LE(r["extension"]["upcalls"].get<uint64_t>(), kCount + 2);
      EXPECT_EQ(r["drops"]["proxy_extension"]["extension_not_active"], 0);
    }
  } else {
    for (auto& [reason, n] : r["drops"]["proxy_kernel"].items()) EXPECT_EQ(n, 0) << reason;
  }
  if (kernel_relay) {
    EXPECT_EQ(r["received"], kCount);
    EXPECT_EQ(r["drops"]["proxy_tx"]["send_failed"], 0);
    EXPECT_EQ(r["variant"], c.variant);
    if (c.variant != "io_uring-send_zc") {
      EXPECT_EQ(r["copies"], 2 * kCount) << r.dump();  // into user memory and back, per datagram
    }
    if (c.variant.rfind("io_uring", 0) == 0) {
      const auto& u = r["io_uring"];
      EXPECT_EQ(r["drops"]["proxy_tx"]["send_in_flight_at_stop"], 0) << r.dump();
      EXPECT_EQ(u["short_sends"], 0) << r.dump();
      EXPECT_EQ(u["receive_errors"], nlohmann::json::object()) << r.dump();
      EXPECT_EQ(u["io_uring_enter_errors"], nlohmann::json::object()) << r.dump();
      EXPECT_EQ(u["receive_arms"], 1) << "the multishot receive stayed armed: " << r.dump();
      EXPECT_EQ(u["sqpoll"], c.variant == "io_uring-sqpoll");
      EXPECT_EQ(u["send_zc"], c.variant == "io_uring-send_zc");
      // At most one io_uring_enter per pass, far fewer than datagrams; without SQPOLL at least
      // one per paced burst (its sends must be submitted).
      EXPECT_LT(u["io_uring_enter"].get<uint64_t>(), kCount) << r.dump();
      if (c.variant != "io_uring-sqpoll") {
        EXPECT_GE(u["io_uring_enter"].get<uint64_t>(), kCount / 20) << r.dump();
      }
      EXPECT_EQ(r["syscalls"], u["io_uring_enter"]);
      if (c.variant == "io_uring-sqpoll") {
        // The SQ thread ran in this process, pinned beside the relay, and its time was read.
        const auto& t = u["sq_thread"];
        EXPECT_TRUE(t["cpu_ns"].is_number()) << r.dump();
        EXPECT_GT(t["cpu_ns"].get<int64_t>(), 0) << r.dump();
        EXPECT_GE(t["cpu"].get<int>(), 0);
        EXPECT_EQ(t["shares_relay_cpu"], t["cpu"] == t["relay_cpu"]);
      }
      if (c.variant == "io_uring-send_zc") {
        // Every send notified; where the kernel says, each notification says copied or not, and
        // copies = one per receive + the sends the kernel copied. veth copies every one: the
        // receiving socket takes its data out of the sender's pages.
        EXPECT_EQ(u["send_zc_notifications"], kCount) << r.dump();
        if (u["usage_reported"].get<bool>()) {
          EXPECT_EQ(u["sends_copied_by_kernel"], kCount) << r.dump();
          EXPECT_EQ(u["sends_zero_copy"], 0) << r.dump();
          EXPECT_EQ(r["copies"], 2 * kCount) << r.dump();
        } else {
          EXPECT_FALSE(r.contains("copies")) << "not measured, so not reported: " << r.dump();
        }
      }
    }
  }
}

std::vector<MethodCase> forwarding_cases() {
  std::vector<MethodCase> v;
  for (const MethodInfo& m : proxy_methods())
    for (std::string_view var : m.variants) {
      if (needs_uls_kernel(m.name, var)) continue;  // the VMs' case: sandbox/uls:uls_vm_test
      if (m.relay) v.push_back({std::string(m.name), std::string(var), ForwardMode::kRelay});
      if (m.router) v.push_back({std::string(m.name), std::string(var), ForwardMode::kRouter});
    }
  return v;
}

INSTANTIATE_TEST_SUITE_P(AllMethods, MethodForwarding, ::testing::ValuesIn(forwarding_cases()),
                         case_name);

// A relay that fell behind (e.g. under CPU competition) leaves datagrams in its socket when it is
// stopped: it forwards a bounded number more, and counts the rest as dropped at its queue.
// The kernel relay as `c` names it, started, `count` datagrams queued in its socket before it
// runs, then run with stop already set: the bounded final forwarding, then the count of what is
// left. Its report, or (`skip`) why this host cannot run it.
struct QueuedRun {
  std::string skip;
  nlohmann::json report;
};
QueuedRun run_after_queue(const ProxyConfig& c, uint64_t count) {
  const MethodInfo* info = find_proxy_method("kernel-socket");
  std::string why = make_links(info->kernel_owns_addresses, info->needs_veth_napi);
  if (!why.empty()) return {why, nullptr};
  Endpoints ends;
  auto m = make_proxy_method("kernel-socket");
  m->start(c);  // a MethodError fails the test, with its message
  for (uint64_t k = 0; k < count; ++k) ends.send_udp(kProxyInIp, kRelayPort, k, 32);
  usleep(200'000);  // all queued in the relay's socket: it has not run yet
  std::atomic<bool> stop{true};
  m->run(stop);
  return {"", m->report()};
}

TEST(KernelSocket, DatagramsLeftInTheSocketAtStopAreCountedAsDrops) {
  constexpr uint64_t kCount = 300;
  const QueuedRun q = run_after_queue(proxy_config("kernel-socket", "per-datagram", ForwardMode::kRelay), kCount);
  if (!q.skip.empty()) GTEST_SKIP() << q.skip;
  const nlohmann::json& r = q.report;
  const uint64_t fwd = r["forwarded"], left = r["drops"]["proxy_queue"]["left_in_socket_at_stop"];
  EXPECT_EQ(fwd, 64u) << r.dump();  // per-datagram: one datagram per final relay call
  EXPECT_EQ(fwd + left, kCount) << r.dump();
  EXPECT_EQ(r["kernel"]["udp_in_datagrams"], kCount) << r.dump();
}

// io_uring: 300 datagrams queued before the relay runs, more than its 256 provided buffers. The
// multishot receive takes 256, runs out of buffers (ENOBUFS: the datagram stays in the socket),
// is armed again once sends have given buffers back, and the rest follows: nothing is lost to
// the empty ring, and every datagram is forwarded or counted.
TEST(KernelSocket, IoUringRingRunningDryLosesNothing) {
  constexpr uint64_t kCount = 300;
  ProxyConfig c = proxy_config("kernel-socket", "io_uring", ForwardMode::kRelay);
  c.batch = 1;  // the fewest buffers: 256
  const QueuedRun q = run_after_queue(c, kCount);
  if (!q.skip.empty()) GTEST_SKIP() << q.skip;
  const nlohmann::json& r = q.report;
  const uint64_t fwd = r["forwarded"], left = r["drops"]["proxy_queue"]["left_in_socket_at_stop"];
  EXPECT_EQ(r["io_uring"]["provided_buffers"], 256) << r.dump();
  EXPECT_GE(r["io_uring"]["rx_buffer_ring_empty"].get<uint64_t>(), 1u) << r.dump();
  EXPECT_GE(r["io_uring"]["receive_arms"].get<uint64_t>(), 2u) << r.dump();
  EXPECT_EQ(fwd, kCount) << r.dump();
  EXPECT_EQ(left, 0u) << r.dump();
  EXPECT_EQ(r["drops"]["proxy_tx"]["send_in_flight_at_stop"], 0) << r.dump();
  EXPECT_EQ(r["kernel"]["udp_in_datagrams"], kCount) << r.dump();
  EXPECT_EQ(r["kernel"]["udp_out_datagrams"], kCount) << r.dump();
}

// io_uring-sqpoll: the SQ thread pinned where the report says, on the relay's CPU when the relay
// has only one, on another when it may use two; its time is in the process's CPU time (what the
// harness charges the proxy), not only in the report. Run from a thread with the affinity asked.
TEST(KernelSocket, IoUringSqpollThreadIsPinnedAndCountedInTheProcess) {
  const MethodInfo* info = find_proxy_method("kernel-socket");
  ASSERT_NE(info, nullptr);
  std::string why = make_links(info->kernel_owns_addresses, info->needs_veth_napi);
  if (!why.empty()) GTEST_SKIP() << why;
  const int ncpu = int(sysconf(_SC_NPROCESSORS_ONLN));
  std::vector<std::vector<int>> sets = {{0}};
  if (ncpu >= 2) sets.push_back({0, 1});
  for (const std::vector<int>& cpus : sets) {
    SCOPED_TRACE("relay allowed " + std::to_string(cpus.size()) + " CPU(s)");
    nlohmann::json r;
    int64_t process_ns = 0, relay_thread_ns = 0;
    std::string err;
    std::thread t([&] {
      cpu_set_t set;
      CPU_ZERO(&set);
      for (int c : cpus) CPU_SET(c, &set);
      if (sched_setaffinity(0, sizeof set, &set) != 0) {
        err = "sched_setaffinity failed";
        return;
      }
      auto ns = [](int who) {
        rusage u{};
        getrusage(who, &u);
        return int64_t(u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1'000'000'000 +
               int64_t(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1000;
      };
      const int64_t p0 = ns(RUSAGE_SELF), t0 = ns(RUSAGE_THREAD);
      const QueuedRun q = run_after_queue(proxy_config("kernel-socket", "io_uring-sqpoll", ForwardMode::kRelay), 200);
      process_ns = ns(RUSAGE_SELF) - p0;
      relay_thread_ns = ns(RUSAGE_THREAD) - t0;
      err = q.skip;
      r = q.report;
      cpu_set_t after;
      if (sched_getaffinity(0, sizeof after, &after) == 0 && !CPU_EQUAL(&after, &set)) err = "run() left its pin";
    });
    t.join();
    ASSERT_EQ(err, "");
    // Stopped before it ran: a bounded final forwarding, the rest counted as left in the socket.
    EXPECT_GT(r["forwarded"].get<uint64_t>(), 0u) << r.dump();
    EXPECT_EQ(r["forwarded"].get<uint64_t>() + r["drops"]["proxy_queue"]["left_in_socket_at_stop"].get<uint64_t>(), 200u)
        << r.dump();
    const auto& sq = r["io_uring"]["sq_thread"];
    EXPECT_EQ(sq["cpu"], cpus.back()) << r.dump();
    EXPECT_EQ(sq["relay_cpu"], cpus.front()) << r.dump();
    EXPECT_EQ(sq["shares_relay_cpu"], cpus.size() == 1) << r.dump();
    EXPECT_EQ(sq["cpus_allowed"], std::to_string(cpus.back())) << "the thread's own affinity: " << r.dump();
    const int64_t sq_ns = sq["cpu_ns"].get<int64_t>();
    EXPECT_GT(sq_ns, 0) << r.dump();
    // The process's CPU time holds the SQ thread's besides the relay thread's (1 ms of slack for
    // the two clocks' granularity; the test's other threads are idle meanwhile).
    EXPECT_GE(process_ns - relay_thread_ns + 1'000'000, sq_ns) << "process " << process_ns << " ns, relay thread "
                                                                << relay_thread_ns << " ns";
  }
}

// io_uring refused (here by a seccomp filter in a child process: io_uring_setup fails with
// EPERM, as kernel.io_uring_disabled or a container policy would make it): start() says so.
TEST(KernelSocket, IoUringUnavailableIsAClearError) {
  const MethodInfo* info = find_proxy_method("kernel-socket");
  ASSERT_NE(info, nullptr);
  std::string why = make_links(info->kernel_owns_addresses, info->needs_veth_napi);
  if (!why.empty()) GTEST_SKIP() << why;
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    sock_fprog prog{sizeof filter / sizeof filter[0], filter};
    std::string msg = "no filter";
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 && prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0)
      msg = start_error(proxy_config("kernel-socket", "io_uring", ForwardMode::kRelay));
    (void)!write(fds[1], msg.data(), msg.size());
    _exit(0);
  }
  close(fds[1]);
  std::string msg;
  char buf[512];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) msg.append(buf, size_t(n));
  close(fds[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  EXPECT_NE(msg.find("kernel-socket:io_uring: io_uring is not available here"), std::string::npos) << msg;
  EXPECT_NE(msg.find("EPERM"), std::string::npos) << msg;
}

// The same for the methods that run the Stack: frames still queued in a device (a packet
// socket's queue, a ring) when the method stopped are taken off and counted as dropped at the
// proxy's queue, so the method's accounting closes even when it fell far behind.
TEST(StackMethods, FramesLeftInADeviceAtStopAreCountedAsDrops) {
  const std::pair<const char*, const char*> cases[] = {
      {"raw-socket", "af_packet"},   {"raw-socket", "af_packet_mmap"}, {"user-thread", "af_packet"},
      {"user-thread", "af_packet_mmap"}, {"sandbox", "af_packet_mmap"}};
  for (const auto& [method, variant] : cases) {
    SCOPED_TRACE(std::string(method) + ":" + variant);
    const MethodInfo* info = find_proxy_method(method);
    ASSERT_NE(info, nullptr);
    std::string why = make_links(info->kernel_owns_addresses, info->needs_veth_napi);
    if (!why.empty()) GTEST_SKIP() << why;
    Endpoints ends;
    auto m = make_proxy_method(method);
    ASSERT_NO_THROW(m->start(proxy_config(method, variant, ForwardMode::kRelay)));
    // More than the final bounded passes take (64 passes of a 32-frame burst per device).
    constexpr uint64_t kCount = 4000;
    for (uint64_t k = 0; k < kCount; ++k) ends.send_udp(kProxyInIp, kRelayPort, k, 32);
    usleep(200'000);  // all queued in the proxy's device (or dropped there, counted)
    std::atomic<bool> stop{true};
    m->run(stop);  // stopped at once: the final bounded passes only
    nlohmann::json r = m->report();
    const nlohmann::json& a = r["accounting"];
    const uint64_t left = r["drops"]["proxy_queue"]["left_in_device_at_stop"];
    const uint64_t kernel = r["drops"]["proxy_kernel"]["packet_socket_drops"];
    EXPECT_GT(left, 0u) << r.dump();
    EXPECT_GT(r["forwarded"].get<uint64_t>(), 0u) << r.dump();
    EXPECT_EQ(a["unaccounted"], 0) << r.dump();
    // Every frame sent reached the device (forwarded, or dropped by a counted reason) or was
    // dropped by the kernel's socket, counted.
    EXPECT_EQ(a["device_rx"].get<uint64_t>() + kernel, kCount) << r.dump();
    EXPECT_EQ(a["forwarded"].get<uint64_t>() + a["queue_drops"].get<uint64_t>() + a["stack_drops"].get<uint64_t>() +
                  a["consumed"].get<uint64_t>(),
              a["device_rx"].get<uint64_t>())
        << r.dump();
    // A second report finds nothing more to take off.
    EXPECT_EQ(m->report()["drops"]["proxy_queue"]["left_in_device_at_stop"], left);
  }
}

// Exactly one of the kernel and the Stack owns the proxy's addresses.
TEST(AddressOwnership, KernelMethodsNeedTheKernelToOwnTheAddresses) {
  std::string why = make_links(false);
  if (!why.empty()) GTEST_SKIP() << why;
  for (const char* method : {"kernel-socket", "kernel-forward"}) {
    ForwardMode mode = find_proxy_method(method)->relay ? ForwardMode::kRelay
                                                        : ForwardMode::kRouter;
    std::string e = start_error(proxy_config(method, "", mode));
    EXPECT_NE(e.find(kProxyInIp.str()), std::string::npos) << e;
    EXPECT_NE(e.find("does not own"), std::string::npos) << e;
  }
}

TEST(AddressOwnership, StackMethodsRefuseAKernelThatAlsoOwnsThem) {
  std::string why = make_links(true);
  if (!why.empty()) GTEST_SKIP() << why;
  for (const char* method : {"raw-socket", "user-thread"}) {
    std::string e = start_error(proxy_config(method, "", ForwardMode::kRelay));
    EXPECT_NE(e.find(kProxyInIp.str()), std::string::npos) << e;
    EXPECT_NE(e.find("also owns"), std::string::npos) << e;
  }
}

TEST(KernelForward, RestoresIpForwardWhenDestroyed) {
  std::string why = make_links(true);
  if (!why.empty()) GTEST_SKIP() << why;
  auto read_forward = [] {
    std::string v;
    std::ifstream("/proc/sys/net/ipv4/ip_forward") >> v;
    return v;
  };
  ASSERT_EQ(read_forward(), "0");
  {
    auto m = make_proxy_method("kernel-forward");
    m->start(proxy_config("kernel-forward", "", ForwardMode::kRouter));
    EXPECT_EQ(read_forward(), "1");
  }
  EXPECT_EQ(read_forward(), "0");
}

TEST(XdpRedirect, DetachesItsProgramsAndNeverReplacesAnother) {
  std::string why = make_links(true, true);
  if (!why.empty()) GTEST_SKIP() << why;
  auto has_xdp = [](const char* dev) { return sh(std::string("ip link show ") + dev + " | grep -q xdp"); };
  {
    auto m = make_proxy_method("xdp-redirect");
    m->start(proxy_config("xdp-redirect", "native", ForwardMode::kRelay));
    EXPECT_TRUE(has_xdp("p0"));
    EXPECT_TRUE(has_xdp("p1"));
  }
  EXPECT_FALSE(has_xdp("p0"));
  EXPECT_FALSE(has_xdp("p1"));
  // Someone else's program on p1: refused with a clear error, theirs left in place, ours
  // (already attached to p0) removed again.
  {
    auto other = make_proxy_method("xdp-redirect");
    other->start(proxy_config("xdp-redirect", "native", ForwardMode::kRelay));
    auto m = make_proxy_method("xdp-redirect");
    try {
      m->start(proxy_config("xdp-redirect", "native", ForwardMode::kRelay));
      ADD_FAILURE() << "attached over another XDP program";
    } catch (const MethodError& e) {
      EXPECT_NE(std::string(e.what()).find("already attached"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(has_xdp("p0"));
  }
  EXPECT_FALSE(has_xdp("p0"));
}

}  // namespace
}  // namespace ulsnet
