// A trial's accounting from synthetic reports: every stage summed, nothing counted twice,
// reports that cannot be accounted refused.
#include "bench/accounting.h"

#include <gtest/gtest.h>

namespace ulsnet {
namespace {

TrialLinks links() {
  TrialLinks l;
  l.into_proxy = {"s0", "p0"};
  l.out_of_proxy = {"p1", "r0"};
  l.direct = {"s0", "r0"};
  return l;
}

nlohmann::json gen(uint64_t attempted) {
  return {{"generator", "af_xdp"}, {"attempted", attempted}, {"sent", attempted}, {"duration_s", 2.0},
          {"achieved_pps", attempted / 2.0}, {"send_errors", nlohmann::json::object()},
          {"netdev", nlohmann::json::object()}};
}

nlohmann::json sink(uint64_t received) {
  return {{"sink", "socket"}, {"received", received}, {"corrupted", 0},
          {"receiver_kernel", nlohmann::json::object()}, {"netdev", nlohmann::json::object()},
          {"latency_ns", {{"p99", 1000}}}};
}

nlohmann::json proxy(nlohmann::json drops) {
  return {{"forwarded", 0}, {"drops", drops}, {"netdev", nlohmann::json::object()}};
}

TEST(Accounting, EveryStageAnyMethodCanReportIsSummed) {
  for (DropStage st : kDropStages) {
    if (!is_proxy_stage(st)) continue;
    DropLedger d;
    d.add(st, "reason_a", 7);
    d.add(st, "reason_b", 0);
    nlohmann::json rec = account_trial(gen(100), proxy(d.to_json()), sink(90), links(), 64);
    SCOPED_TRACE(std::string(drop_stage_name(st)));
    EXPECT_EQ(rec["dropped"], 7);
    EXPECT_EQ(rec["drops"][std::string(drop_stage_name(st))]["reason_a"], 7);
    EXPECT_EQ(rec["unaccounted"], 3);
  }
}

TEST(Accounting, TheHarnessStagesAddUpWithTheMethods) {
  nlohmann::json g = gen(1000);
  g["send_errors"] = {{"ENOBUFS", 5}};
  g["netdev"] = {{"s0.tx_drop", 11}};
  nlohmann::json p = proxy({{"proxy_stack", {{"no_arp_entry", 3}}}, {"proxy_tx", {{"tx_dropped", 2}}}});
  // veth counts a link drop at both ends: 11 and 11 are one loss of 11. The proxy's 2 sends the
  // link refused are in its proxy_tx and in both link counters: taken out of the link once.
  p["netdev"] = {{"p0.rx_drop", 11}, {"p1.tx_drop", 6}};
  p["tx_refused_by_link"] = 2;
  nlohmann::json s = sink(950);
  s["netdev"] = {{"r0.rx_drop", 4}};
  s["receiver_kernel"] = {{"Udp.RcvbufErrors", 9}};
  s["corrupted"] = 1;
  nlohmann::json rec = account_trial(g, p, s, links(), 64);
  EXPECT_EQ(rec["drops"]["sender"]["ENOBUFS"], 5);
  EXPECT_EQ(rec["drops"]["link_sender_proxy"]["s0.tx_drop|p0.rx_drop"], 11);
  // out of the proxy: tx 6 - 2 refused = 4, rx 4 - 2 = 2: the larger, 4.
  EXPECT_EQ(rec["drops"]["link_proxy_receiver"]["p1.tx_drop|r0.rx_drop"], 4);
  EXPECT_EQ(rec["drops"]["receiver_kernel"]["Udp.RcvbufErrors"], 9);
  EXPECT_EQ(rec["drops"]["receiver_app"]["corrupted"], 1);
  const uint64_t dropped = 5 + 11 + 3 + 2 + 4 + 9 + 1;
  EXPECT_EQ(rec["dropped"], dropped);
  EXPECT_EQ(rec["unaccounted"], int64_t(1000) - 950 - int64_t(dropped));
  EXPECT_EQ(rec["sent"], 1000);
  EXPECT_EQ(rec["lost"], 50);
  EXPECT_DOUBLE_EQ(rec["loss"].get<double>(), 0.05);
  EXPECT_DOUBLE_EQ(rec["offered_pps"].get<double>(), 500);
  EXPECT_DOUBLE_EQ(rec["delivered_pps"].get<double>(), 475);
  EXPECT_EQ(rec["generator"], "af_xdp");
  EXPECT_EQ(rec["sink"], "socket");
  EXPECT_EQ(rec["latency_ns"]["p99"], 1000);
  EXPECT_EQ(rec["reports"]["proxy"], p);
  // Every stage is in the record, even those with nothing.
  EXPECT_EQ(rec["drops"].size(), kDropStages.size());
}

TEST(Accounting, LinkDropsAreTheLargerEndAfterWhatIsCountedElsewhere) {
  nlohmann::json tx = {{"a.tx_drop", 10}}, rx = {{"b.rx_drop", 10}};
  EXPECT_EQ(link_drops(tx, "a", rx, "b", 0, 0), 10u);
  EXPECT_EQ(link_drops(tx, "a", rx, "b", 4, 0), 6u);
  EXPECT_EQ(link_drops({}, "a", {{"b.rx_drop", 10}}, "b", 0, 3), 7u);
  EXPECT_EQ(link_drops({}, "a", {{"b.rx_drop", 2}}, "b", 0, 3), 0u);
  EXPECT_EQ(link_drops({}, "a", {}, "b", 0, 0), 0u);
}

TEST(Accounting, CalibrationHasOneLinkAndNoProxy) {
  nlohmann::json g = gen(100);
  g["netdev"] = {{"s0.tx_drop", 3}};
  nlohmann::json rec = account_trial(g, nullptr, sink(97), links(), 64);
  EXPECT_EQ(rec["drops"]["link_sender_receiver"]["s0.tx_drop|r0.rx_drop"], 3);
  EXPECT_EQ(rec["unaccounted"], 0);
  EXPECT_FALSE(rec.contains("forwarded"));
}

TEST(Accounting, RefusesWhatItCannotAccount) {
  EXPECT_THROW(account_trial(gen(10), proxy({{"proxy_nowhere", {{"x", 1}}}}), sink(10), links(), 64),
               std::invalid_argument);
  // A method may not report the harness's stages (they would be counted twice).
  EXPECT_THROW(account_trial(gen(10), proxy({{"sender", {{"x", 1}}}}), sink(10), links(), 64),
               std::invalid_argument);
  nlohmann::json s = sink(10);
  s.erase("received");
  EXPECT_THROW(account_trial(gen(10), proxy({}), s, links(), 64), std::invalid_argument);
  nlohmann::json g = gen(10);
  g.erase("generator");
  EXPECT_THROW(account_trial(g, proxy({}), sink(10), links(), 64), std::invalid_argument);
  nlohmann::json g2 = gen(10);
  g2["send_errors"] = {{"EAGAIN", "many"}};
  EXPECT_THROW(account_trial(g2, proxy({}), sink(10), links(), 64), std::invalid_argument);
}

TEST(Accounting, MoreReceivedThanSentIsNegativeUnaccounted) {
  nlohmann::json rec = account_trial(gen(10), proxy({}), sink(12), links(), 64);
  EXPECT_EQ(rec["unaccounted"], -2);
  EXPECT_EQ(rec["lost"], 0);
}

}  // namespace
TEST(Accounting, TheTestersOwnLossIsItsSenderTheLinkIntoItsReceiverAndItsReceiver) {
  const nlohmann::json drops = {{"sender", {{"enobufs", 1}}},
                                {"link_sender_proxy", {{"p0.rx_drop", 100}}},
                                {"proxy_kernel", {{"ring_full", 200}}},
                                {"proxy_tx", {{"tx_dropped", 5}}},
                                {"link_proxy_receiver", {{"r0.rx_drop", 10}}},
                                {"receiver_kernel", {{"xsk_rx_ring_full", 30}}},
                                {"receiver_app", {{"corrupted", 9}}}};
  EXPECT_DOUBLE_EQ(tester_loss(drops, 1000), (1 + 10 + 30 + 9) / 1000.0);
  EXPECT_DOUBLE_EQ(tester_loss(drops, 0), 0.0);
  EXPECT_DOUBLE_EQ(tester_loss(nlohmann::json(), 1000), 0.0);
  EXPECT_DOUBLE_EQ(tester_loss({{"proxy_kernel", {{"ring_full", 7}}}}, 1000), 0.0);
}

TEST(Accounting, AProxyCpuNoTickFoundBusyIsNotMeasuredRatherThanZero) {
  nlohmann::json c = nlohmann::json::object();
  add_proxy_host_cpu(c, 60'000'000, 10000, 9000);
  EXPECT_DOUBLE_EQ(c["proxy_host_ns_per_forwarded"].get<double>(), 6000.0);
  EXPECT_NEAR(c["proxy_host_ns_per_received"].get<double>(), 60'000'000.0 / 9000, 1e-9);
  EXPECT_FALSE(c.contains("proxy_host_note"));
  nlohmann::json z = nlohmann::json::object();
  add_proxy_host_cpu(z, 0, 10000, 9000);
  EXPECT_EQ(z["proxy_host_busy_ns"], 0);
  EXPECT_FALSE(z.contains("proxy_host_ns_per_forwarded"));
  EXPECT_FALSE(z.contains("proxy_host_ns_per_received"));
  EXPECT_TRUE(z.contains("proxy_host_note"));
  nlohmann::json n = nlohmann::json::object();
  add_proxy_host_cpu(n, 0, 0, 0);  // nothing forwarded: nothing to say per packet
  EXPECT_FALSE(n.contains("proxy_host_note"));
  EXPECT_FALSE(n.contains("proxy_host_ns_per_forwarded"));
}

}  // namespace ulsnet
