// The `uls` backend on the real ULS kernel: three virtual hosts (kernel/vm.sh), the proxy's two
// e1000s bound to the sandbox image -- the project's Stack, run only by kernel upcalls -- and a
// numbered UDP stream from the sender to the receiver through it. Checks, from the guests' own
// counters: every datagram arrives (or is dropped at a counted place); the Stack forwarded them
// in place (no copy) and the proxy's kernel processed none of them (its IP and softnet counters
// do not move: no skb, no protocol processing); every buffer is kept; after unloading, the
// interfaces are the kernel's again. Needs root and QEMU (skips with the reason otherwise).
#include <signal.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "kernel/vm_harness.h"

namespace ulsnet::uls {
namespace {

using vm::slurp;

// The value of `key=` in the last line of `log` containing `marker`, or -1.
long long field(const std::string& log, const std::string& marker, const std::string& key) {
  auto at = log.rfind(marker);
  if (at == std::string::npos) return -1;
  const std::string line = log.substr(at, log.find('\n', at) - at);
  auto k = line.find(" " + key + "=");
  if (k == std::string::npos) return -1;
  return std::stoll(line.substr(k + key.size() + 2));
}

class StackOnUls : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    prep_ = vm::prepare({vm::runfile("sandbox/uls/uls_stack_proxy"), vm::runfile("kernel/uls_udp")});
    (prep_.usage_error ? skip_ : error_) = prep_.error;
  }
  static void TearDownTestSuite() { vm::cleanup(prep_, false); }
  void SetUp() override {
    if (!skip_.empty()) GTEST_SKIP() << skip_;
    ASSERT_TRUE(error_.empty()) << error_;
  }

  struct Logs {
    std::string dir, sender, proxy, receiver;
  };
  Logs run(const std::string& name, const std::string& append) {
    Logs l;
    l.dir = vm::test_tmpdir() + "/" + name;
    auto [rc, out] = vm::launch(prep_.image, prep_.initrd, l.dir,
                                "--hosts 3 --test uls-forward --append '" + append + "'", 300);
    EXPECT_EQ(rc, 0) << out;
    l.sender = slurp(l.dir + "/sender.log");
    l.proxy = slurp(l.dir + "/proxy.log");
    l.receiver = slurp(l.dir + "/receiver.log");
    for (const char* role : {"sender", "proxy", "receiver"}) {
      const std::string pid = slurp(l.dir + "/" + role + ".pid");
      if (!pid.empty()) {
        EXPECT_NE(kill(std::stoi(pid), 0), 0) << role << "'s QEMU outlived the launcher";
      }
    }
    for (const std::string* log : {&l.sender, &l.proxy, &l.receiver})
      for (const char* bad : {"WARNING:", "BUG:", "Oops", "Call Trace", "general protection"})
        EXPECT_EQ(log->find(bad), std::string::npos) << "kernel reported '" << bad << "':\n" << *log;
    return l;
  }

  // Checks one run that should deliver all `count` datagrams.
  static void expect_complete(const Logs& l, long long count) {
    const std::string fin = "ULSNET-STACK-PROXY final=1";
    ASSERT_NE(l.proxy.find("ULSNET-STACK-PROXY-READY"), std::string::npos) << l.proxy;
    ASSERT_NE(l.proxy.find(fin), std::string::npos) << l.proxy;
    EXPECT_NE(l.sender.find("ULSNET-RESULT name=uls-forward status=pass"), std::string::npos) << l.sender;
    const long long sent = field(l.sender, "ULSNET-UDP-SENT", "sent");
    const long long received = field(l.receiver, "ULSNET-UDP-RECV", "received");
    EXPECT_EQ(sent, count) << l.sender;
    EXPECT_NE(l.proxy.rfind("phase=running"), std::string::npos) << l.proxy;
    // Every datagram is accounted for: received, or dropped at a counted place on the proxy
    // (whose counts also hold other frames: the sender's readiness pings, ARP; and the datagrams
    // an upcall the kernel ended had taken, below) or the receiver (its socket's buffer, or no
    // socket yet: a relayed stream can overtake the receiver's boot).
    const long long no_ports = field(l.receiver, "ULSNET-UDP-RECV", "no_ports");
    const long long ended_udp = field(l.proxy, fin, "ended_udp");
    long long drops = field(l.receiver, "ULSNET-UDP-RECV", "rcvbuf_errors") + no_ports + ended_udp;
    for (const char* k : {"stack_drops", "dev0_tx_dropped", "dev1_tx_dropped", "eth0_rx_ring_full",
                          "eth0_rx_errors", "eth0_nic_missed", "eth1_tx_invalid", "eth1_comp_full"})
      drops += field(l.proxy, fin, k);
    EXPECT_LE(sent, received + drops) << l.proxy << l.receiver;
    // Every datagram reached the receiver host (its socket, or its kernel before the socket
    // existed: counted there), or was taken by an upcall the kernel ended (uls.budget_ms, or
    // uls.hold_ms: under TCG a vCPU the host deschedules inside an upcall can look like one that
    // ran too long) and named by the next (image.h, ended_burst). Nothing else is lost.
    ASSERT_NE(l.proxy.find("ULSNET-STACK-PROXY-FINAL-UPCALL ran"), std::string::npos) << l.proxy;
    const long long overruns = field(l.proxy, fin, "overruns");
    EXPECT_EQ(received + no_ports + ended_udp, sent) << "loss at this rate: " << l.proxy << l.receiver;
    if (overruns > 0)
      std::printf("note: %lld upcall(s) ended by the kernel; %lld datagram(s) they had taken counted lost\n",
                  overruns, ended_udp);
    else
      EXPECT_EQ(field(l.proxy, fin, "ended_bursts"), 0) << l.proxy;
    EXPECT_GT(received, 0);
    EXPECT_EQ(field(l.receiver, "ULSNET-UDP-RECV", "dup"), 0);
    // The Stack did it, on the zero-copy rings, in upcalls, copying nothing.
    EXPECT_GE(field(l.proxy, fin, "stack_forwarded"), received) << l.proxy;
    EXPECT_GE(field(l.proxy, fin, "eth0_rx"), sent) << l.proxy;
    EXPECT_GE(field(l.proxy, fin, "eth1_tx"), received) << l.proxy;
    EXPECT_EQ(field(l.proxy, fin, "dev0_copies") + field(l.proxy, fin, "dev1_copies"), 0);
    EXPECT_GT(field(l.proxy, fin, "image_upcalls"), 0);
    EXPECT_EQ(field(l.proxy, fin, "faults"), 0) << l.proxy;
    // Every frame the devices took is named: forwarded, consumed (ARP, a ping to it), dropped
    // by the Stack for a counted reason, or left by an ended upcall (image_test's identity).
    EXPECT_EQ(field(l.proxy, fin, "dev0_rx") + field(l.proxy, fin, "dev1_rx"),
              field(l.proxy, fin, "stack_forwarded") + field(l.proxy, fin, "stack_consumed") +
                  field(l.proxy, fin, "stack_drops") + ended_udp + field(l.proxy, fin, "ended_other"))
        << l.proxy;
    // No buffer lost or invented.
    EXPECT_EQ(field(l.proxy, fin, "pool_overflow"), 0);
    EXPECT_EQ(field(l.proxy, fin, "pool_bad_release"), 0);
    EXPECT_EQ(field(l.proxy, fin, "eth0_comp_full") + field(l.proxy, fin, "eth1_comp_full"), 0);
    // Not through the proxy's kernel: no IP input, no packet through softnet.
    EXPECT_EQ(field(l.proxy, fin, "kernel_ip_in_receives"), 0) << l.proxy;
    EXPECT_EQ(field(l.proxy, fin, "kernel_softnet_processed"), 0) << l.proxy;
    // Unloaded, the interfaces are the kernel's again.
    EXPECT_NE(l.proxy.find("ULSNET-PROXY-UNBOUND yes"), std::string::npos) << l.proxy;
    EXPECT_NE(l.proxy.find("ULSNET-PROXY-KERNEL-PATH ping=ok"), std::string::npos) << l.proxy;
  }

  static inline vm::Prepared prep_;
  static inline std::string skip_, error_;
};

// Router mode: the end hosts know nothing statically; the Stack answers their ARP, resolves the
// receiver itself, and routes the stream (TTL, checksum, MACs rewritten in place).
TEST_F(StackOnUls, TheStackRoutesANumberedStreamBetweenVmsOnlyByUpcalls) {
  Logs l = run("router", "ulsnet.path=stack ulsnet.mode=router ulsnet.count=5000 ulsnet.pps=1000");
  expect_complete(l, 5000);
  // It answered the end hosts' ARP requests and asked for the receiver's address itself.
  const std::string fin = "ULSNET-STACK-PROXY final=1";
  EXPECT_GT(field(l.proxy, fin, "stack_generated"), 0) << l.proxy;
}

// Relay mode: the sender sends to the proxy's own address; the Stack re-addresses each datagram
// to the receiver, in place.
TEST_F(StackOnUls, TheStackRelaysANumberedStreamBetweenVmsOnlyByUpcalls) {
  Logs l = run("relay", "ulsnet.path=stack ulsnet.mode=relay ulsnet.count=2000 ulsnet.pps=1000");
  expect_complete(l, 2000);
}

}  // namespace
}  // namespace ulsnet::uls
