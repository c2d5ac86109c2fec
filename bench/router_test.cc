// The proxy as an RFC 1812 router, through the three hosts: path-MTU discovery (ping -M do across
// a proxy whose out link has the smaller MTU), traceroute, no ICMP error about an ICMP error, the
// ICMP rate limit, directed broadcasts not forwarded, and a bulk TCP stream that starves no
// device of buffers. Every router method that runs the Stack, and the kernel's own forwarding
// as the reference the test itself is checked against.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <regex>
#include <thread>

#include "baselines/registry.h"
#include "bench/netns_child.h"
#include "bench/topology.h"
#include "bench/trial.h"
#include "stack/checksum.h"
#include "stack/protocols.h"

namespace ulsnet {
namespace {

struct RouterCase {
  std::string method, variant;
};
void PrintTo(const RouterCase& c, std::ostream* os) { *os << c.method << ":" << c.variant; }

std::vector<RouterCase> router_cases() {
  std::vector<RouterCase> v;
  for (const auto& m : proxy_methods()) {
    if (!m.router || m.needs_veth_napi) continue;  // xdp-redirect: an in-kernel fast path, not a router
    for (auto var : m.variants)
      if (!needs_uls_kernel(m.name, var)) v.push_back({std::string(m.name), std::string(var)});
  }
  return v;
}

// Runs `fn` in a child process inside network namespace `ns` and returns its JSON.
nlohmann::json in_ns(const std::string& ns, std::function<nlohmann::json()> fn) {
  NetnsChild c(ns, -1, [fn](const std::atomic<bool>&, const ReadyFn&) { return fn(); });
  return c.result(15000);
}

// A UDP datagram (8-byte payload) or an ICMP destination-unreachable message (an ICMP error
// quoting a made-up header), as IP payload.
std::vector<uint8_t> udp_payload(uint16_t dport) {
  std::vector<uint8_t> u(16, 0x5a);
  store_be16(u.data(), 40000);
  store_be16(u.data() + 2, dport);
  store_be16(u.data() + 4, uint16_t(u.size()));
  store_be16(u.data() + 6, 0);  // no checksum (RFC 768)
  return u;
}
std::vector<uint8_t> icmp_error_payload(Ipv4Addr quoted_src, Ipv4Addr quoted_dst) {
  std::vector<uint8_t> m(kIcmpHeaderLen + kIpv4MinHeaderLen + 8, 0);
  m[0] = kIcmpDestUnreachable;
  m[1] = 3;  // port unreachable
  write_ipv4(m.data() + kIcmpHeaderLen, quoted_src, quoted_dst, kProtoUdp, 28, 64);
  store_be16(m.data() + 2, internet_checksum(m.data(), m.size()));
  return m;
}

// In the sender's namespace: sends `count` IPv4 packets built by hand (IP_HDRINCL; IDs from
// `id0`), then for wait_ms counts the ICMP time-exceeded messages that come back quoting one of
// them. {"sent": N, "time_exceeded": N}.
nlohmann::json probe(Ipv4Addr src, Ipv4Addr dst, uint8_t proto, const std::vector<uint8_t>& l4,
                     uint8_t ttl, int count, uint16_t id0, int wait_ms) {
  const int rx = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
  const int tx = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);  // implies IP_HDRINCL
  if (rx < 0 || tx < 0) return {{"error", std::string("raw socket: ") + strerror(errno)}};
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = htonl(dst.v);
  int sent = 0;
  for (int i = 0; i < count; ++i) {
    std::vector<uint8_t> p(kIpv4MinHeaderLen + l4.size());
    write_ipv4(p.data(), src, dst, proto, uint16_t(p.size()), ttl);
    store_be16(p.data() + 4, uint16_t(id0 + i));
    store_be16(p.data() + kIpOffChecksum, 0);
    store_be16(p.data() + kIpOffChecksum, internet_checksum(p.data(), kIpv4MinHeaderLen));
    std::copy(l4.begin(), l4.end(), p.begin() + kIpv4MinHeaderLen);
    if (sendto(tx, p.data(), p.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to) ==
        ssize_t(p.size()))
      ++sent;
  }
  int time_exceeded = 0;
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        end - std::chrono::steady_clock::now()).count();
    if (left <= 0) break;
    pollfd pf{rx, POLLIN, 0};
    if (poll(&pf, 1, int(left)) <= 0) continue;
    uint8_t b[2048];
    const ssize_t n = recv(rx, b, sizeof b, 0);
    if (n < ssize_t(kIpv4MinHeaderLen + kIcmpHeaderLen + kIpv4MinHeaderLen)) continue;
    const uint32_t hl = uint32_t(b[0] & 0xf) * 4;
    const uint8_t* m = b + hl;
    if (m[0] != kIcmpTimeExceeded || n < ssize_t(hl + kIcmpHeaderLen + kIpv4MinHeaderLen)) continue;
    const uint8_t* q = m + kIcmpHeaderLen;  // the quoted header
    const uint16_t id = load_be16(q + 4);
    if (Ipv4Addr{load_be32(q + kIpOffSrc)} == src && uint16_t(id - id0) < uint16_t(count))
      ++time_exceeded;
  }
  close(rx);
  close(tx);
  return {{"sent", sent}, {"time_exceeded", time_exceeded}};
}

std::string shell(const std::string& cmd) { return run_command(cmd + " 2>&1; true"); }

class RouterRfc1812 : public ::testing::TestWithParam<RouterCase> {};

TEST_P(RouterRfc1812, PathMtuTracerouteIcmpRulesAndBroadcastThroughTheHosts) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to create network namespaces";
  const RouterCase& c = GetParam();
  const MethodInfo* info = find_proxy_method(c.method);
  TopologyOptions to;
  to.proxy_kernel_addresses = info->kernel_owns_addresses;
  Topology t(to);
  // The proxy -> receiver link carries 1280 bytes; the sender's link 1500. The method reads
  // the MTU off its interfaces when it starts.
  run_command("ip -n " + t.proxy_out.ns + " link set " + t.proxy_out.ifname + " mtu 1280");
  run_command("ip -n " + t.receiver.ns + " link set " + t.receiver.ifname + " mtu 1280");
  // A second sender address, so that the rate-limit probe starts with a fresh bucket.
  const Ipv4Addr second = *Ipv4Addr::parse("10.201.1.50");
  run_command("ip -n " + t.sender.ns + " addr add " + second.str() + "/24 dev " + t.sender.ifname);

  ProxyConfig pc;
  pc.method = c.method;
  pc.variant = c.variant;
  pc.mode = ForwardMode::kRouter;
  pc.in = t.proxy_port_in();
  pc.out = t.proxy_port_out();
  // The kernel's forwarding resolves 10.201.1.50 by ARP (the hosts are static neighbours).
  NetnsChild proxy(t.proxy_in.ns, -1, proxy_role(pc));
  ASSERT_TRUE(proxy.wait_ready(5000)) << proxy.result(1000).dump();
  const std::string at_sender = "ip netns exec " + t.sender.ns + " ";
  const Ipv4Addr recv_ip = t.receiver.ip, send_ip = t.sender.ip;

  // 1. ICMP rate limit (per destination: a burst of 6, then one a second). 20 expiring packets
  //    at once from a fresh source get 6 time-exceeded back (7 if a second passed meanwhile).
  nlohmann::json burst = in_ns(t.sender.ns, [=] {
    return probe(second, recv_ip, kProtoUdp, udp_payload(33000), 1, 20, 0x1100, 700);
  });
  ASSERT_EQ(burst.value("sent", 0), 20) << burst.dump();
  EXPECT_GE(burst["time_exceeded"].get<int>(), 6) << burst.dump();
  EXPECT_LE(burst["time_exceeded"].get<int>(), 7) << burst.dump();

  // 2. No ICMP error about an ICMP error: an expiring destination-unreachable gets nothing back,
  //    while an expiring UDP datagram right after it (the control) gets its time-exceeded.
  nlohmann::json err = in_ns(t.sender.ns, [=] {
    return probe(send_ip, recv_ip, kProtoIcmp, icmp_error_payload(recv_ip, send_ip), 1, 1, 0x2200, 500);
  });
  nlohmann::json ctl = in_ns(t.sender.ns, [=] {
    return probe(send_ip, recv_ip, kProtoUdp, udp_payload(33001), 1, 1, 0x3300, 1000);
  });
  EXPECT_EQ(err.value("sent", 0), 1) << err.dump();
  EXPECT_EQ(err.value("time_exceeded", -1), 0) << "an ICMP error about an ICMP error";
  EXPECT_EQ(ctl.value("time_exceeded", -1), 1) << ctl.dump();

  // 3. traceroute: the proxy is hop 1, the receiver hop 2.
  const std::string tr = shell(at_sender + "traceroute -n -q 1 -w 2 -m 4 " + recv_ip.str());
  EXPECT_TRUE(std::regex_search(tr, std::regex("\\n\\s*1\\s+" + t.proxy_in.ip.str() + "\\s"))) << tr;
  EXPECT_TRUE(std::regex_search(tr, std::regex("\\n\\s*2\\s+" + recv_ip.str() + "\\s"))) << tr;

  // 4. Path MTU: 1428 bytes with DF set cannot cross the 1280-byte link: the sender learns the
  //    next-hop MTU from the proxy (ping prints it, from the ICMP 3/4 or from the route the
  //    kernel then caches), and 1280 bytes pass.
  const std::string big = shell(at_sender + "ping -n -M do -s 1400 -c 2 -i 0.3 -w 3 " + recv_ip.str());
  EXPECT_TRUE(std::regex_search(big, std::regex("mtu ?= ?1280"))) << big;
  EXPECT_NO_THROW(run_command(at_sender + "ping -n -M do -s 1252 -c 2 -i 0.2 -w 5 " + recv_ip.str()));

  // 5. A directed broadcast to the receiver's subnet is not forwarded; a unicast datagram to the
  //    same port (the control) is.
  NetnsChild sink(t.receiver.ns, -1, [](const std::atomic<bool>& stop, const ReadyFn& ready) {
    const int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_BROADCAST, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(9999);
    if (bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
      return nlohmann::json{{"error", "bind"}};
    ready();
    nlohmann::json got = nlohmann::json::array();
    while (!stop.load()) {
      pollfd pf{s, POLLIN, 0};
      if (poll(&pf, 1, 50) <= 0) continue;
      char b[64];
      const ssize_t n = recv(s, b, sizeof b, 0);
      if (n > 0) got.push_back(std::string(b, size_t(n)));
    }
    close(s);
    return nlohmann::json{{"got", got}};
  });
  ASSERT_TRUE(sink.wait_ready(5000));
  const std::string bcast = "10.201.2.255";
  in_ns(t.sender.ns, [=] {
    const int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    auto send_to = [&](const std::string& dst, const char* what) {
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(9999);
      inet_pton(AF_INET, dst.c_str(), &a.sin_addr);
      sendto(s, what, strlen(what), 0, reinterpret_cast<sockaddr*>(&a), sizeof a);
    };
    for (int i = 0; i < 3; ++i) send_to(bcast, "broadcast");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    send_to(recv_ip.str(), "unicast");
    close(s);
    return nlohmann::json::object();
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  sink.stop();
  nlohmann::json got = sink.result(5000);
  EXPECT_EQ(got["got"], nlohmann::json::array({"unicast"})) << got.dump();

  proxy.stop();
  nlohmann::json r = proxy.result(5000);
  ASSERT_FALSE(r.contains("error")) << r.dump();
  if (r.contains("stack")) {  // what the Stack counted of the above
    const nlohmann::json& s = r["stack"];
    const nlohmann::json& d = s["drops"];
    EXPECT_GE(s["icmp_frag_needed_sent"].get<uint64_t>(), 1u) << s.dump();
    EXPECT_GE(d.value("ipv4_too_big", 0), 1) << s.dump();
    EXPECT_GE(s["icmp_errors_rate_limited"].get<uint64_t>(), 13u) << s.dump();
    EXPECT_GE(s["icmp_errors_suppressed"].get<uint64_t>(), 1u) << s.dump();
    EXPECT_EQ(d.value("ipv4_broadcast_destination", 0), 3) << s.dump();
    // Both hosts are static neighbours and ICMP errors go back to the frame's source MAC: the
    // Stack has nothing to ARP for (it once ARPed for the broadcast address).
    EXPECT_EQ(s["arp_requests_sent"].get<uint64_t>(), 0u) << s.dump();
    EXPECT_EQ(r["accounting"]["unaccounted"], 0) << r["accounting"].dump();
  }
}

// A bulk TCP stream from the sender to the receiver through the router: `bytes` written as fast
// as the sender's TCP allows, every byte read back, bounded at 20 s.
nlohmann::json tcp_receive(uint16_t port, const std::atomic<bool>& stop, const ReadyFn& ready) {
  const int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  if (bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(l, 1) != 0)
    return {{"error", std::string("tcp listen: ") + strerror(errno)}};
  ready();
  uint64_t got = 0;
  int c = -1;
  std::vector<char> buf(1 << 16);
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!stop.load() && std::chrono::steady_clock::now() < end) {
    pollfd pf{c >= 0 ? c : l, POLLIN, 0};
    if (poll(&pf, 1, 50) <= 0) continue;
    if (c < 0) {
      c = accept4(l, nullptr, nullptr, SOCK_CLOEXEC);
      continue;
    }
    const ssize_t n = read(c, buf.data(), buf.size());
    if (n <= 0) break;
    got += uint64_t(n);
  }
  if (c >= 0) close(c);
  close(l);
  return {{"received", got}};
}

nlohmann::json tcp_send(Ipv4Addr dst, uint16_t port, uint64_t bytes) {
  const int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv{20, 0};
  setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(dst.v);
  if (connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
    return {{"error", std::string("tcp connect: ") + strerror(errno)}};
  std::vector<char> buf(1 << 16, 'x');
  uint64_t sent = 0;
  const auto t0 = std::chrono::steady_clock::now();
  while (sent < bytes) {
    const ssize_t n = write(s, buf.data(), std::min<uint64_t>(buf.size(), bytes - sent));
    if (n <= 0) break;
    sent += uint64_t(n);
  }
  shutdown(s, SHUT_WR);
  char b;
  while (read(s, &b, 1) > 0) {}  // until the receiver closes: every byte was read
  close(s);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return {{"sent", sent}, {"seconds", secs}};
}

// 256 MiB of TCP through the router. With AF_XDP the two sockets share one umem: it once held
// 8192 chunks, the outbound socket parked 3072 of them on its fill ring (its target was half
// the umem) and the inbound one's refills found the umem at its reserve hundreds of times per
// stream (rx_no_buffer 335 raw-socket, 4007 user-thread, 60 sandbox), a step from an empty fill
// ring and dropped frames (issue 14, item 7).
TEST_P(RouterRfc1812, TcpStreamCrossesWithoutStarvingTheDevices) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to create network namespaces";
  const RouterCase& c = GetParam();
  const MethodInfo* info = find_proxy_method(c.method);
  TopologyOptions to;
  to.proxy_kernel_addresses = info->kernel_owns_addresses;
  Topology t(to);
  ProxyConfig pc;
  pc.method = c.method;
  pc.variant = c.variant;
  pc.mode = ForwardMode::kRouter;
  pc.in = t.proxy_port_in();
  pc.out = t.proxy_port_out();
  NetnsChild proxy(t.proxy_in.ns, -1, proxy_role(pc));
  ASSERT_TRUE(proxy.wait_ready(5000)) << proxy.result(1000).dump();
  NetnsChild server(t.receiver.ns, -1, [](const std::atomic<bool>& stop, const ReadyFn& ready) {
    return tcp_receive(5201, stop, ready);
  });
  ASSERT_TRUE(server.wait_ready(5000));
  constexpr uint64_t kBytes = 256ull << 20;
  const Ipv4Addr dst = t.receiver.ip;
  nlohmann::json cl = in_ns(t.sender.ns, [=] { return tcp_send(dst, 5201, kBytes); });
  nlohmann::json sv = server.result(25000);
  proxy.stop();
  nlohmann::json r = proxy.result(5000);
  ASSERT_FALSE(r.contains("error")) << r.dump();
  EXPECT_EQ(cl.value("sent", uint64_t(0)), kBytes) << cl.dump();
  EXPECT_EQ(sv.value("received", uint64_t(0)), kBytes) << sv.dump();
  if (!r.contains("stack")) return;  // kernel-forward: the reference the stream is checked on
  EXPECT_EQ(r["accounting"]["unaccounted"], 0) << r["accounting"].dump();
  // No device ever wanted buffers it could not get (af_xdp: a refill that found the shared
  // umem at its reserve; the others: an empty pool), and no AF_XDP fill ring ran empty.
  for (const char* side : {"in", "out"}) {
    EXPECT_EQ(r["device"][side]["rx_no_buffer"], 0) << side << ": " << r["device"].dump();
    if (r.contains("af_xdp")) {
      EXPECT_EQ(r["af_xdp"][side]["rx_fill_ring_empty"], 0) << side << ": " << r["af_xdp"].dump();
    }
  }
}

INSTANTIATE_TEST_SUITE_P(RouterMethods, RouterRfc1812, ::testing::ValuesIn(router_cases()),
                         [](const ::testing::TestParamInfo<RouterCase>& i) {
                           std::string n = i.param.method + "_" + i.param.variant;
                           for (char& ch : n)
                             if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return n;
                         });

}  // namespace
}  // namespace ulsnet
