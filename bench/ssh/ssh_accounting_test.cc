// One trial's accounting from three agent reports (synthetic, shaped as the agent's roles print
// them), and a point's summary over repetitions.
#include "bench/ssh/ssh_accounting.h"

#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>
#include <vector>

#include "bench/stats.h"

namespace ulsnet::ssh {
namespace {

const LinkNames kLinks{"eth1", "enp1s0", "enp2s0", "eth2"};

nlohmann::json gen(uint64_t attempted, uint64_t sent) {
  return {{"generator", "socket"},
          {"attempted", attempted},
          {"sent", sent},
          {"duration_s", 1.0},
          {"achieved_pps", double(sent)},
          {"send_errors", attempted > sent ? nlohmann::json{{"ENOBUFS", attempted - sent}} : nlohmann::json::object()},
          {"netdev", {{"eth0.tx_drop", 100}, {"eth1.tx_drop", 0}}}};  // eth0: the management link, not ours
}

nlohmann::json proxy(uint64_t forwarded, nlohmann::json drops) {
  return {{"forwarded", forwarded}, {"drops", drops}, {"netdev", {{"enp1s0.rx_drop", 0}, {"enp2s0.tx_drop", 0}}}};
}

nlohmann::json sink(uint64_t received, std::vector<int64_t> delays = {}) {
  DelayRecorder d(1000);
  for (size_t i = 0; i < delays.size(); ++i) d.record(i, delays[i]);
  nlohmann::json s = d.report();
  s["sink"] = "socket";
  s["received"] = received;
  s["duplicates"] = 0;
  s["reordered"] = 0;
  s["corrupted"] = 0;
  s["receiver_kernel"] = nlohmann::json::object();
  s["netdev"] = {{"eth2.rx_drop", 0}};
  return s;
}

TEST(SshAccounting, EveryDatagramIsReceivedOrDroppedAtAStage) {
  nlohmann::json p = proxy(960, {{"proxy_kernel", {{"udp_rcvbuf_errors", 30}}}});
  p["netdev"]["enp1s0.rx_drop"] = 2;  // the link into the proxy
  nlohmann::json rec = account_ssh_trial(gen(1000, 995), p, sink(950), kLinks, 64);
  EXPECT_EQ(rec["sent"], 1000);  // every numbered datagram the generator tried
  EXPECT_EQ(rec["received"], 950);
  EXPECT_EQ(rec["drops"]["sender"]["ENOBUFS"], 5);
  EXPECT_EQ(rec["drops"]["link_sender_proxy"]["eth1.tx_drop|enp1s0.rx_drop"], 2);
  EXPECT_EQ(rec["drops"]["proxy_kernel"]["udp_rcvbuf_errors"], 30);
  // 1000 - 950 - 5 - 2 - 30 = 13 that no counter saw: links or elsewhere, by difference.
  EXPECT_EQ(rec["drops"]["link_or_other"]["by_difference"], 13);
  EXPECT_EQ(rec["dropped_counted"], 37);
  EXPECT_EQ(rec["dropped_by_difference"], 13);
  EXPECT_EQ(rec["dropped"], 50);
  EXPECT_EQ(rec["unaccounted"], 0);
  EXPECT_EQ(rec["forwarded"], 960);
  EXPECT_DOUBLE_EQ(rec["loss"].get<double>(), 0.05);
  // The management interface's drops are no stage's.
  EXPECT_EQ(rec["drops"]["link_sender_proxy"].size(), 1u);
  EXPECT_TRUE(rec["reports"]["proxy"].is_object());
}

TEST(SshAccounting, NothingLostNothingByDifference) {
  nlohmann::json rec = account_ssh_trial(gen(500, 500), proxy(500, nlohmann::json::object()), sink(500, {1000, 1200}),
                                         kLinks, 64);
  EXPECT_EQ(rec["dropped"], 0);
  EXPECT_EQ(rec["drops"]["link_or_other"]["by_difference"], 0);
  EXPECT_EQ(rec["unaccounted"], 0);
  EXPECT_EQ(rec["latency_ns"]["min"], 1000);
}

TEST(SshAccounting, CountingMoreThanWasSentIsUnaccountedNotADrop) {
  // A host-wide counter that also counted other traffic: 1000 sent, 990 received, 15 "dropped".
  nlohmann::json rec = account_ssh_trial(gen(1000, 1000), proxy(990, {{"proxy_kernel", {{"udp_no_ports", 15}}}}),
                                         sink(990), kLinks, 64);
  EXPECT_EQ(rec["drops"]["link_or_other"]["by_difference"], 0);
  EXPECT_EQ(rec["unaccounted"], -5);
  EXPECT_EQ(rec["dropped"], 15);
}

TEST(SshAccounting, RefusesReportsItCannotAccount) {
  EXPECT_THROW(account_ssh_trial(gen(10, 10), proxy(10, {{"receiver_kernel", {{"x", 1}}}}), sink(10), kLinks, 64),
               std::invalid_argument);  // a method naming a stage that is not a proxy's
  EXPECT_THROW(account_ssh_trial(gen(10, 10), proxy(10, {{"nowhere", {{"x", 1}}}}), sink(10), kLinks, 64),
               std::invalid_argument);
  nlohmann::json s = sink(10);
  s.erase("received");
  EXPECT_THROW(account_ssh_trial(gen(10, 10), proxy(10, nlohmann::json::object()), s, kLinks, 64), std::invalid_argument);
  EXPECT_THROW(account_ssh_trial({{"sent", 10}}, proxy(10, nlohmann::json::object()), sink(10), kLinks, 64),
               std::invalid_argument);
  EXPECT_THROW(account_ssh_trial(gen(10, 10), nullptr, sink(10), kLinks, 64), std::invalid_argument);
}

TEST(SshPoint, SumsMediansAndMergedLatency) {
  nlohmann::json point = {{"method", "kernel-socket"}, {"payload_bytes", 64}, {"samples", nlohmann::json::array()}};
  point["samples"].push_back(account_ssh_trial(gen(1000, 1000), proxy(1000, nlohmann::json::object()),
                                               sink(990, {100, 200, 300}), kLinks, 64));
  point["samples"].push_back(account_ssh_trial(gen(2000, 2000), proxy(2000, {{"proxy_tx", {{"send_failed", 4}}}}),
                                               sink(1996, {400}), kLinks, 64));
  point["samples"].push_back(account_ssh_trial(gen(3000, 3000), proxy(3000, nlohmann::json::object()), sink(3000),
                                               kLinks, 64));
  nlohmann::json r = summarize_ssh_point(point);
  EXPECT_EQ(r["repetitions"], 3);
  EXPECT_EQ(r["sent"], 6000);
  EXPECT_EQ(r["received"], 5986);
  EXPECT_EQ(r["dropped"], 14);
  EXPECT_EQ(r["dropped_counted"], 4);
  EXPECT_EQ(r["dropped_by_difference"], 10);
  EXPECT_EQ(r["drops"]["link_or_other"]["by_difference"], 10);
  EXPECT_EQ(r["drops"]["proxy_tx"]["send_failed"], 4);
  EXPECT_EQ(r["unaccounted"], 0);
  EXPECT_DOUBLE_EQ(r["delivered_pps"].get<double>(), 1996.0);  // median of 990, 1996, 3000
  EXPECT_DOUBLE_EQ(r["delivered_pps_min"].get<double>(), 990.0);
  EXPECT_EQ(r["latency_ns"]["samples"], 4);
  EXPECT_EQ(r["latency_ns"]["min"], 100);
  EXPECT_EQ(r["latency_ns"]["max"], 400);
  EXPECT_FALSE(r.contains("error"));
}

TEST(SshPoint, AnErroredRepetitionIsKeptAndNamed) {
  nlohmann::json point = {{"samples", nlohmann::json::array()}};
  point["samples"].push_back(account_ssh_trial(gen(100, 100), proxy(100, nlohmann::json::object()), sink(100),
                                               kLinks, 64));
  point["samples"].push_back({{"error", "proxy host: the method cannot run here"}});
  nlohmann::json r = summarize_ssh_point(point);
  EXPECT_EQ(r["repetitions"], 1);
  EXPECT_EQ(r["sent"], 100);
  EXPECT_EQ(r["error"], "proxy host: the method cannot run here");
  EXPECT_EQ(r["samples"].size(), 2u);
}

TEST(SshPoint, ConfidenceIntervalsOverTheRepetitions) {
  // Three repetitions: delivered 1000, 1100, 1300 pps; delays whose exact p99 is each trial's
  // largest (300, 900, 1600) and IPDV p99 100, 400, 600.
  nlohmann::json point = {{"samples", nlohmann::json::array()}};
  const std::vector<std::pair<uint64_t, std::vector<int64_t>>> reps = {
      {1000, {100, 200, 300}}, {1100, {400, 500, 900}}, {1300, {1000, 1000, 1600}}};
  for (const auto& [n, delays] : reps)
    point["samples"].push_back(
        account_ssh_trial(gen(n, n), proxy(n, nlohmann::json::object()), sink(n, delays), kLinks, 64));
  point["samples"].push_back({{"error", "a failed repetition is in no interval"}});
  nlohmann::json r = summarize_ssh_point(point);
  auto expect_ci = [](const nlohmann::json& ci, std::vector<double> v) {
    ASSERT_TRUE(ci.is_object()) << ci;
    const double mean = (v[0] + v[1] + v[2]) / 3;
    double ss = 0;
    for (double x : v) ss += (x - mean) * (x - mean);
    const double half = 4.302652729911275 * std::sqrt(ss / 2) / std::sqrt(3.0);  // t(0.975, 2 df)
    EXPECT_NEAR(ci["mean"].get<double>(), mean, 1e-6);
    EXPECT_NEAR(ci["lo"].get<double>(), mean - half, 1e-6);
    EXPECT_NEAR(ci["hi"].get<double>(), mean + half, 1e-6);
    EXPECT_EQ(ci["level"], 0.95);
  };
  expect_ci(r["delivered_pps_ci95"], {1000, 1100, 1300});
  expect_ci(r["latency_p99_ns_ci95"], {300, 900, 1600});
  expect_ci(r["ipdv_p99_ns_ci95"], {100, 400, 600});
  EXPECT_NEAR(r["delivered_pps_ci95"]["hi"].get<double>() - r["delivered_pps_ci95"]["lo"].get<double>(), 758.9, 0.1);

  // One good repetition: no interval at all (not a zero-width one).
  nlohmann::json one = {{"samples", nlohmann::json::array()}};
  one["samples"].push_back(account_ssh_trial(gen(100, 100), proxy(100, nlohmann::json::object()),
                                             sink(100, {10, 20}), kLinks, 64));
  one["samples"].push_back({{"error", "x"}});
  nlohmann::json r1 = summarize_ssh_point(one);
  for (const char* k : {"delivered_pps_ci95", "latency_p99_ns_ci95", "ipdv_p99_ns_ci95"}) EXPECT_FALSE(r1.contains(k)) << k;
}

nlohmann::json offset(int64_t off, int64_t unc) { return {{"offset_ns", off}, {"uncertainty_ns", unc}, {"samples", 16}}; }

TEST(OneWayLatency, ShiftedOntoTheReceiversClockIsValidWithinTheResiduals) {
  nlohmann::json c = {{"offset", offset(123456789, 40000)}, {"shifted", true}, {"shift_ns", 123456789},
                      {"residual_before", offset(-3000, 20000)}, {"residual_after", offset(9000, 25000)}};
  nlohmann::json l = one_way_latency(false, c);
  EXPECT_EQ(l["one_way_valid"], true);
  EXPECT_EQ(l["clock_error_bound_ns"], 34000);  // max(3000 + 20000, 9000 + 25000)
  EXPECT_EQ(l["clock_drift_during_stream_ns"], 12000);
  EXPECT_FALSE(l.contains("why"));
  EXPECT_EQ(one_way_latency(true, c)["clock_error_bound_ns"], 34000);  // shifted: the stamps carry the shift
  c["residual_after"] = {{"error", "no answer from the receiver's clock responder at 10.0.0.3:9101"}};
  l = one_way_latency(false, c);
  EXPECT_EQ(l["one_way_valid"], false);
  EXPECT_NE(l["why"].get<std::string>().find("no answer from the receiver's clock responder"), std::string::npos);
  EXPECT_FALSE(l.contains("clock_error_bound_ns"));
}

TEST(OneWayLatency, OneMachineIsExactAndChecksTheMeasurement) {
  nlohmann::json c = {{"offset", offset(-800, 15000)}, {"shifted", false}, {"shift_ns", 0},
                      {"residual_before", offset(500, 9000)}, {"residual_after", offset(-30000, 9000)}};
  nlohmann::json l = one_way_latency(true, c);
  EXPECT_EQ(l["one_way_valid"], true);
  EXPECT_EQ(l["clock_error_bound_ns"], 0);
  EXPECT_EQ(l["clock_drift_during_stream_ns"], 0);
  EXPECT_EQ(l["shared_clock_check"]["offset"], true);
  EXPECT_EQ(l["shared_clock_check"]["residual_before"], true);
  EXPECT_EQ(l["shared_clock_check"]["residual_after"], false);  // 30 us off with a 9 us bound: a broken measurement
  l = one_way_latency(true, nullptr);  // not compared at all: still one clock
  EXPECT_EQ(l["one_way_valid"], true);
  EXPECT_FALSE(l.contains("shared_clock_check"));
}

TEST(OneWayLatency, TwoMachinesWithoutAShiftAreInvalidAndSayWhy) {
  nlohmann::json l = one_way_latency(false, nullptr);
  EXPECT_EQ(l["one_way_valid"], false);
  EXPECT_NE(l["why"].get<std::string>().find("not compared"), std::string::npos);
  nlohmann::json c = {{"offset", offset(5, 10)}, {"shifted", false}, {"shift_ns", 0},
                      {"shift_error", "unshare(CLONE_NEWTIME): Operation not permitted (needs root: CAP_SYS_ADMIN)"}};
  l = one_way_latency(false, c);
  EXPECT_EQ(l["one_way_valid"], false);
  EXPECT_NE(l["why"].get<std::string>().find("CAP_SYS_ADMIN"), std::string::npos);
  c = {{"offset", {{"error", "no answer"}}}, {"shifted", false}, {"shift_ns", 0}};
  EXPECT_NE(one_way_latency(false, c)["why"].get<std::string>().find("no answer"), std::string::npos);
}

TEST(SshPoint, LatencyValidityOverTheRepetitions) {
  auto rep = [](nlohmann::json latency, std::vector<int64_t> delays) {
    nlohmann::json s = account_ssh_trial(gen(100, 100), proxy(100, nlohmann::json::object()), sink(100, delays), kLinks, 64);
    s["latency"] = latency;
    return s;
  };
  nlohmann::json a = {{"one_way_valid", true}, {"basis", "b"}, {"clock_error_bound_ns", 3000},
                      {"clock_drift_during_stream_ns", -700}};
  nlohmann::json b = {{"one_way_valid", true}, {"basis", "b"}, {"clock_error_bound_ns", 5000},
                      {"clock_drift_during_stream_ns", 200}};
  nlohmann::json point = {{"samples", {rep(a, {10, 20}), rep(b, {30, 40})}}};
  nlohmann::json r = summarize_ssh_point(point);
  EXPECT_EQ(r["latency"]["one_way_valid"], true);
  EXPECT_EQ(r["latency_valid"], true);
  EXPECT_EQ(r["latency"]["clock_error_bound_ns"], 5000);
  EXPECT_EQ(r["latency"]["clock_drift_during_stream_ns"], -700);  // the largest by magnitude
  EXPECT_TRUE(r.contains("latency_p99_ns_ci95"));
  point["samples"].push_back(rep({{"one_way_valid", false}, {"why", "no answer"}}, {50, 60}));
  r = summarize_ssh_point(point);
  EXPECT_EQ(r["latency"]["one_way_valid"], false);
  EXPECT_EQ(r["latency_valid"], false);
  EXPECT_EQ(r["latency"]["why"], "no answer");
  EXPECT_FALSE(r.contains("latency_p99_ns_ci95"));  // no interval of delays that are not delays
  EXPECT_TRUE(r.contains("delivered_pps_ci95"));
}

// ---- CPU per forwarded packet from the proxy agent's report ----------------------------------

// A /proc/stat delta entry as bench/trial.h's cpu_delta gives it (ns per class, busy_ns).
nlohmann::json stat_entry(uint64_t user, uint64_t nice, uint64_t system, uint64_t irq, uint64_t softirq, uint64_t idle) {
  return {{"user_ns", user}, {"nice_ns", nice}, {"system_ns", system}, {"idle_ns", idle}, {"iowait_ns", 0},
          {"irq_ns", irq}, {"softirq_ns", softirq}, {"steal_ns", 0},
          {"busy_ns", user + nice + system + irq + softirq}};
}

nlohmann::json cpu_report(uint64_t forwarded, int cpu, bool pinned, uint64_t proc_user, uint64_t proc_sys,
                          nlohmann::json cpu1) {
  return {{"forwarded", forwarded},
          {"process_cpu", {{"user_ns", proc_user}, {"sys_ns", proc_sys}, {"children_user_ns", 0}, {"children_sys_ns", 0}}},
          {"placement", {{"cpu", cpu}, {"pinned", pinned}}},
          {"host_cpu",
           {{"cpu", stat_entry(30'000'000, 0, 50'000'000, 0, 20'000'000, 100'000'000)},
            {"cpu0", stat_entry(10'000'000, 0, 30'000'000, 0, 10'000'000, 50'000'000)},
            {"cpu1", cpu1}}}};
}

TEST(TrialCpu, ProcessAndProxyCpuTimePerForwardedPacket) {
  // 10000 forwarded, 9000 received; the agent's own time 3 ms user + 2 ms system; its CPU 1's
  // /proc/stat: 20 ms user + 10 ms nice... (60 ms busy).
  nlohmann::json c = trial_cpu(
      cpu_report(10000, 1, true, 3'000'000, 2'000'000, stat_entry(20'000'000, 10'000'000, 20'000'000, 0, 10'000'000, 50'000'000)),
      9000);
  EXPECT_EQ(c["proxy_forwarded"], 10000);
  EXPECT_EQ(c["proxy_process_ns"], 5'000'000);
  EXPECT_DOUBLE_EQ(c["proxy_process_ns_per_forwarded"].get<double>(), 500.0);
  EXPECT_EQ(c["proxy_host_cpu"], 1);
  EXPECT_EQ(c["proxy_host_busy_ns"], 60'000'000);
  EXPECT_DOUBLE_EQ(c["proxy_host_ns_per_forwarded"].get<double>(), 6000.0);
  EXPECT_NEAR(c["proxy_host_ns_per_received"].get<double>(), 60'000'000.0 / 9000, 1e-9);
  EXPECT_EQ(c["all_busy_ns"], 100'000'000);
  EXPECT_NEAR(c["all_busy_ns_per_received"].get<double>(), 100'000'000.0 / 9000, 1e-9);
  // Only the whole-host and the proxy CPU's entries are carried (the report has them all).
  EXPECT_TRUE(c["per_cpu"].contains("cpu") && c["per_cpu"].contains("cpu1"));
  EXPECT_FALSE(c["per_cpu"].contains("cpu0"));
  EXPECT_FALSE(c.contains("window"));
  // The agent's window (from the controller's mark, or from its ready) is carried as it said.
  nlohmann::json p = cpu_report(10000, 1, true, 1, 1, stat_entry(1, 0, 0, 0, 0, 0));
  p["cpu_window"] = {{"from", "mark"}, {"seconds", 1.25}};
  EXPECT_EQ(trial_cpu(p, 10000)["window"], p["cpu_window"]);
}

TEST(TrialCpu, NotPinnedNoProxyCpuFigures) {
  // The agent could not pin (or was not asked): no CPU is the proxy's, so no per-CPU figures.
  nlohmann::json c = trial_cpu(cpu_report(10000, 1, false, 1'000'000, 0, stat_entry(1, 0, 0, 0, 0, 0)), 10000);
  EXPECT_DOUBLE_EQ(c["proxy_process_ns_per_forwarded"].get<double>(), 100.0);
  for (const char* k : {"proxy_host_cpu", "proxy_host_busy_ns", "proxy_host_ns_per_forwarded"}) EXPECT_FALSE(c.contains(k)) << k;
  EXPECT_TRUE(c.contains("all_busy_ns_per_received"));
  // Nothing forwarded: no per-packet figures (not a division by zero).
  nlohmann::json z = trial_cpu(cpu_report(0, 1, true, 1'000'000, 0, stat_entry(5, 0, 0, 0, 0, 0)), 0);
  for (const char* k : {"proxy_process_ns_per_forwarded", "proxy_host_ns_per_forwarded", "all_busy_ns_per_received",
                        "proxy_host_ns_per_received"})
    EXPECT_FALSE(z.contains(k)) << k;
  EXPECT_EQ(z["proxy_host_busy_ns"], 5);
  EXPECT_TRUE(trial_cpu(nlohmann::json(), 1).empty());
}

// /proc/stat is tick-sampled: a CPU no tick found busy has an unmeasured, not a zero, cost.
TEST(TrialCpu, ACpuNoTickFoundBusyIsLeftOutNotZero) {
  nlohmann::json c = trial_cpu(cpu_report(10000, 1, true, 3'000'000, 0, stat_entry(0, 0, 0, 0, 0, 50'000'000)), 10000);
  EXPECT_EQ(c["proxy_host_busy_ns"], 0);
  EXPECT_DOUBLE_EQ(c["proxy_process_ns_per_forwarded"].get<double>(), 300.0);
  EXPECT_FALSE(c.contains("proxy_host_ns_per_forwarded"));
  EXPECT_FALSE(c.contains("proxy_host_ns_per_received"));
  EXPECT_NE(c.value("proxy_host_note", "").find("below its resolution"), std::string::npos) << c.dump();

  // A point of such trials has no proxy-CPU figure or split, and says why; one measured
  // repetition among them gives the figure (its own).
  nlohmann::json point = {{"competitors", 0}, {"samples", nlohmann::json::array()}};
  for (uint64_t busy_ms : {0, 0, 4}) {
    nlohmann::json p = proxy(1000, nlohmann::json::object());
    p.update(cpu_report(1000, 1, true, 100'000, 0, stat_entry(busy_ms * 1'000'000, 0, 0, 0, 0, 1'000'000)));
    nlohmann::json s = account_ssh_trial(gen(1000, 1000), p, sink(1000), kLinks, 64);
    s["cpu"] = trial_cpu(p, s["received"]);
    s["proxy_placement"] = p["placement"];
    point["samples"].push_back(s);
  }
  nlohmann::json r = summarize_ssh_point(point);
  EXPECT_DOUBLE_EQ(r["cpu"]["proxy_host_ns_per_forwarded"].get<double>(), 4000.0);
  EXPECT_DOUBLE_EQ(r["cpu"]["proxy_cpu_split_ns_per_forwarded"]["user"].get<double>(), 4000.0);
  point["samples"].erase(2);
  r = summarize_ssh_point(point);
  EXPECT_FALSE(r["cpu"].contains("proxy_host_ns_per_forwarded"));
  EXPECT_FALSE(r["cpu"].contains("proxy_cpu_split_ns_per_forwarded"));
  EXPECT_NE(r["cpu"].value("proxy_host_note", "").find("below its resolution"), std::string::npos) << r["cpu"].dump();
}

TEST(SshPoint, CpuMediansAndSplitByClass) {
  // Three repetitions whose proxy CPU 1 time per forwarded packet is 2000, 3000 and 10000 ns.
  nlohmann::json point = {{"competitors", 0}, {"samples", nlohmann::json::array()}};
  const std::vector<std::pair<uint64_t, uint64_t>> reps = {{1000, 2}, {1000, 3}, {1000, 10}};  // forwarded, ms busy
  uint64_t i = 0;
  for (const auto& [fwd, ms] : reps) {
    nlohmann::json p = proxy(fwd, nlohmann::json::object());
    nlohmann::json r = cpu_report(fwd, 1, true, (++i) * 100'000, 0,
                                  stat_entry(ms * 500'000, 0, ms * 250'000, 0, ms * 250'000, 1'000'000));
    p.update(r);
    nlohmann::json s = account_ssh_trial(gen(fwd, fwd), p, sink(fwd), kLinks, 64);
    s["cpu"] = trial_cpu(p, s["received"]);
    s["proxy_placement"] = p["placement"];
    point["samples"].push_back(s);
  }
  nlohmann::json r = summarize_ssh_point(point);
  EXPECT_DOUBLE_EQ(r["cpu"]["proxy_host_ns_per_forwarded"].get<double>(), 3000.0);
  EXPECT_DOUBLE_EQ(r["cpu"]["proxy_process_ns_per_forwarded"].get<double>(), 200.0);  // 100, 200, 300
  const nlohmann::json& sp = r["cpu"]["proxy_cpu_split_ns_per_forwarded"];
  EXPECT_DOUBLE_EQ(sp["user"].get<double>(), 1500.0);
  EXPECT_DOUBLE_EQ(sp["system"].get<double>(), 750.0);
  EXPECT_DOUBLE_EQ(sp["softirq"].get<double>(), 750.0);
  EXPECT_DOUBLE_EQ(sp["irq"].get<double>(), 0.0);
  EXPECT_EQ(r["proxy_placement"]["cpu"], 1);
  EXPECT_EQ(r["proxy_placement"]["pinned"], true);

  // The same trials with a competitor on that CPU: its time is in the CPU's, so only the
  // process's own figure stays, and a note says why.
  point["competitors"] = 1;
  nlohmann::json rc = summarize_ssh_point(point);
  EXPECT_DOUBLE_EQ(rc["cpu"]["proxy_process_ns_per_forwarded"].get<double>(), 200.0);
  for (const char* k : {"proxy_host_ns_per_forwarded", "proxy_cpu_split_ns_per_forwarded", "all_cpus_ns_per_received"})
    EXPECT_FALSE(rc["cpu"].contains(k)) << k;
  EXPECT_NE(rc["cpu"].value("note", "").find("competitors"), std::string::npos);

  // One repetition not pinned: the point says so.
  point["samples"][1]["proxy_placement"]["pinned"] = false;
  EXPECT_EQ(summarize_ssh_point(point)["proxy_placement"]["pinned"], false);
}

}  // namespace
}  // namespace ulsnet::ssh
