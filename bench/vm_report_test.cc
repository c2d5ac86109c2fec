// The pure parts of --hosts=vm: reading the guests' reports and the host's link counters, the
// accounting of a run, and the clock comparison, driven by synthetic input.
#include "bench/vm_report.h"

#include <cmath>

#include <gtest/gtest.h>

#include "stack/drop_stage.h"
#include "bench/guest/clock_sync.h"

namespace ulsnet::vmrun {
namespace {

// A sender, proxy and receiver report in the guests' format, and link counters, whose counts
// close: 1000 sent, 900 received, 100 dropped at every kind of place.
struct GuestReports {
  nlohmann::json sender = {
      {"generator", {{"generator", "socket"}, {"sent", 995}, {"attempted", 1000}, {"send_errors", {{"EAGAIN", 5}}},
                     {"duration_s", 0.5}}},
      {"kernel", {{"ip_out_discards", 10}, {"udp_sndbuf_errors", 15}}},
      {"nic", {{"eth0", {{"tx_packets", 986}, {"tx_dropped", 0}, {"rx_packets", 3}}}}},
      {"payload_bytes", 24},
      {"frame_bytes", 66}};
  nlohmann::json proxy = {
      {"forwarded", 930},
      {"drops",
       {{"proxy_kernel", {{"uls_rx_ring_full", 7}}}, {"proxy_stack", {{"bad_checksum", 1}}}, {"proxy_tx", {{"tx_dropped", 2}}}}},
      {"nic",
       {{"eth0", {{"rx_packets", 940}, {"e1000_mpc", 0}, {"rx_dropped", 0}}},
        {"eth1", {{"tx_packets", 930}, {"e1000_mpc", 0}}}}},
      {"proxy_vm", {{"cpu_busy_s", 0.93}, {"cpu_user_s", 0.093}, {"cpu_system_s", 0.5}, {"cpu_irq_s", 0.0},
                    {"cpu_softirq_s", 0.337}}}};
  nlohmann::json receiver = {
      {"sink", {{"received", 900}, {"corrupted", 2}, {"receiver_kernel", {{"Udp.RcvbufErrors", 8}}}}},
      {"nic", {{"eth0", {{"rx_packets", 912}, {"e1000_mpc", 3}, {"rx_dropped", 0}}}}}};
  nlohmann::json links = {
      {"transport", "udp"},
      {"sender_proxy", {{"rx_port", 40101}, {"socket_drops", 46}, {"rx_queue_bytes", 0}}},
      {"proxy_receiver", {{"rx_port", 40112}, {"socket_drops", 16}, {"rx_queue_bytes", 0}}},
      {"host", {{"lo_rx_drop", 0}, {"lo_tx_drop", 0}, {"udp_sndbuf_errors", 0}}}};
};

TEST(VmAccounting, EveryCountedStageIsSummedAndTheRestIsUnaccounted) {
  GuestReports r;
  const nlohmann::json a = account_vm_run(r.sender, r.proxy, r.receiver, r.links);
  EXPECT_EQ(a["sent"], 1000);
  EXPECT_EQ(a["received"], 900);
  const nlohmann::json& d = a["drops"];
  EXPECT_EQ(d["sender"]["EAGAIN"], 5);
  EXPECT_EQ(d["sender"]["ip_out_discards"], 10);
  EXPECT_EQ(d["link_sender_proxy"]["host_socket_full"], 46);
  EXPECT_EQ(d["proxy_kernel"]["uls_rx_ring_full"], 7);
  EXPECT_EQ(d["proxy_kernel"]["e1000_missed:eth0"], 0);
  EXPECT_EQ(d["proxy_stack"]["bad_checksum"], 1);
  EXPECT_EQ(d["proxy_tx"]["tx_dropped"], 2);
  EXPECT_EQ(d["link_proxy_receiver"]["host_socket_full"], 16);
  EXPECT_EQ(d["receiver_kernel"]["Udp.RcvbufErrors"], 8);
  EXPECT_EQ(d["receiver_kernel"]["e1000_missed"], 3);
  EXPECT_EQ(d["receiver_app"]["corrupted"], 2);
  for (DropStage s : kDropStages) EXPECT_TRUE(d.contains(std::string(drop_stage_name(s)))) << drop_stage_name(s);
  // 5 + 10 + 46 + 7 + 1 + 2 + 16 + 8 + 3 + 2 = 100: it closes.
  EXPECT_EQ(a["dropped"], 100);
  EXPECT_EQ(a["unaccounted"], 0);
  EXPECT_EQ(a["dropped_by_stage"]["link_sender_proxy"], 46);
  EXPECT_EQ(a["path"]["proxy_forwarded"], 930);
}

TEST(VmAccounting, UnaccountedIsSignedBothWays) {
  GuestReports r;
  r.links["sender_proxy"]["socket_drops"] = 40;  // 6 lost where nothing counts
  EXPECT_EQ(account_vm_run(r.sender, r.proxy, r.receiver, r.links)["unaccounted"], 6);
  r.links["sender_proxy"]["socket_drops"] = 50;  // 4 counted twice (or not the stream's)
  const nlohmann::json a = account_vm_run(r.sender, r.proxy, r.receiver, r.links);
  EXPECT_EQ(a["unaccounted"], -4);
  EXPECT_DOUBLE_EQ(a["unaccounted_ratio"].get<double>(), -0.004);
  EXPECT_FALSE(a.contains("unaccounted_note"));  // nothing of unknown kind to explain it
}

// The frames an upcall the kernel ended had taken are named by kind (UDP: stream drops), except
// the few a device was still taking (unclassified; a readiness ping among them counts as a
// stream drop): a negative unaccounted within their count is said so, no more.
TEST(VmAccounting, AnEndedUpcallsFramesCanExplainANegativeUnaccounted) {
  GuestReports r;
  r.links["sender_proxy"]["socket_drops"] = 45;  // one fewer: the ended upcall's 3 hold a ping
  r.proxy["drops"]["proxy_extension"] = {{"taken_by_an_upcall_the_kernel_ended_unclassified", 3}};
  nlohmann::json a = account_vm_run(r.sender, r.proxy, r.receiver, r.links);
  EXPECT_EQ(a["unaccounted"], -2);
  ASSERT_TRUE(a.contains("unaccounted_note"));
  EXPECT_NE(a["unaccounted_note"].get<std::string>().find("by 2"), std::string::npos) << a["unaccounted_note"];
  r.proxy["drops"]["proxy_extension"] = {{"taken_by_an_upcall_the_kernel_ended_unclassified", 1}};  // cannot explain 4
  a = account_vm_run(r.sender, r.proxy, r.receiver, r.links);
  EXPECT_EQ(a["unaccounted"], 0);  // 45 + 1 = 46: closes again
  r.links["sender_proxy"]["socket_drops"] = 49;
  a = account_vm_run(r.sender, r.proxy, r.receiver, r.links);
  EXPECT_EQ(a["unaccounted"], -4);
  EXPECT_FALSE(a.contains("unaccounted_note"));
  r.links["sender_proxy"]["socket_drops"] = 40;  // positive: lost, never explained away
  a = account_vm_run(r.sender, r.proxy, r.receiver, r.links);
  EXPECT_EQ(a["unaccounted"], 5);
  EXPECT_FALSE(a.contains("unaccounted_note"));
  // Frames the image named as UDP datagrams are the stream's: they explain nothing away.
  r.links["sender_proxy"]["socket_drops"] = 45;
  r.proxy["drops"]["proxy_extension"] = {{"taken_by_an_upcall_the_kernel_ended", 3}};
  a = account_vm_run(r.sender, r.proxy, r.receiver, r.links);
  EXPECT_EQ(a["unaccounted"], -2);
  EXPECT_FALSE(a.contains("unaccounted_note"));
}

TEST(VmAccounting, SentIsWhatTheGeneratorAttempted) {
  GuestReports r;
  r.sender["generator"].erase("attempted");  // older reports: sent only
  r.sender["generator"]["send_errors"] = nlohmann::json::object();
  r.sender["generator"]["sent"] = 995;
  EXPECT_EQ(account_vm_run(r.sender, r.proxy, r.receiver, r.links)["sent"], 995);
}

TEST(VmAccounting, HostDropsNoLinkOwnsAreCountedNotLost) {
  GuestReports r;
  r.links["host"]["lo_rx_drop"] = 4;
  r.links["sender_proxy"]["socket_drops"] = 42;
  const nlohmann::json a = account_vm_run(r.sender, r.proxy, r.receiver, r.links);
  EXPECT_EQ(a["drops"]["link_sender_proxy"]["host_either_link:lo_rx_drop"], 4);
  EXPECT_EQ(a["unaccounted"], 0);
}

TEST(VmAccounting, ReportsThatCannotBeAccountedAreErrors) {
  {
    GuestReports r;
    r.proxy["drops"]["proxy_magic"] = {{"x", 1}};
    EXPECT_THROW(account_vm_run(r.sender, r.proxy, r.receiver, r.links), ReportError);
  }
  {
    GuestReports r;  // a method must not count drops in the harness's stages
    r.proxy["drops"]["receiver_kernel"] = {{"x", 1}};
    EXPECT_THROW(account_vm_run(r.sender, r.proxy, r.receiver, r.links), ReportError);
  }
  {
    GuestReports r;  // ... but may list them empty (DropLedger::to_json lists every stage)
    r.proxy["drops"]["receiver_kernel"] = nlohmann::json::object();
    r.proxy["drops"]["sender"] = {{"x", 0}};
    EXPECT_EQ(account_vm_run(r.sender, r.proxy, r.receiver, r.links)["unaccounted"], 0);
  }
  {
    GuestReports r;
    r.proxy["drops"]["proxy_tx"]["tx_dropped"] = -2;
    EXPECT_THROW(account_vm_run(r.sender, r.proxy, r.receiver, r.links), ReportError);
  }
  {
    GuestReports r;
    r.proxy.erase("forwarded");
    EXPECT_THROW(account_vm_run(r.sender, r.proxy, r.receiver, r.links), ReportError);
  }
  {
    GuestReports r;  // the NIC's missed-packet register could not be read: no accounting can close
    r.receiver["nic"]["eth0"]["e1000_mpc"] = nullptr;
    EXPECT_THROW(account_vm_run(r.sender, r.proxy, r.receiver, r.links), ReportError);
  }
  {
    GuestReports r;
    r.links["proxy_receiver"] = {{"error", "no UDP socket on port 40112"}};
    EXPECT_THROW(account_vm_run(r.sender, r.proxy, r.receiver, r.links), ReportError);
  }
  {
    GuestReports r;
    r.receiver["sink"].erase("received");
    EXPECT_THROW(account_vm_run(r.sender, r.proxy, r.receiver, r.links), ReportError);
  }
  {
    GuestReports r;
    EXPECT_THROW(account_vm_run(r.sender, nlohmann::json("garbage"), r.receiver, r.links), ReportError);
  }
}

TEST(VmReports, AReportLineIsTheLastOneAndMustBeAJsonObject) {
  const std::string log = "boot\nULSNET-METHOD-REPORT {\"forwarded\": 1}\nmore\r\nULSNET-METHOD-REPORT {\"forwarded\": 2}\r\n";
  EXPECT_EQ(report_json(log, "ULSNET-METHOD-REPORT ")["forwarded"], 2);
  EXPECT_THROW(report_json("nothing here\n", "ULSNET-METHOD-REPORT "), ReportError);
  // A report cut off in the middle of a key, as a console line that ended early.
  const std::string whole = "ULSNET-METHOD-REPORT {\"forwarded\": 1, \"drops\": 0}";
  EXPECT_THROW(report_json(whole.substr(0, whole.find("\"dr") + 3) + "\n", "ULSNET-METHOD-REPORT "), ReportError);
  EXPECT_THROW(report_json("ULSNET-METHOD-REPORT [1, 2]\n", "ULSNET-METHOD-REPORT "), ReportError);
  EXPECT_THROW(report_json("ULSNET-METHOD-REPORT \n", "ULSNET-METHOD-REPORT "), ReportError);
}

// /proc/net/udp as Linux 6.x prints it (ports in hex: 0x9ca5 = 40101, 0x9cb0 = 40112).
constexpr const char* kProcNetUdp =
    "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n"
    "  103: 0100007F:9CA5 00000000:0000 07 00000000:00000300 00:00000000 00000000     0        0 41001 2 00000000a1b2c3d4 1234\n"
    "  110: 0100007F:9CB0 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 41002 2 00000000a1b2c3d5 0\n";

TEST(VmLinks, ProcNetUdpGivesEachSocketsDropsAndQueue) {
  const auto s = parse_proc_net_udp(kProcNetUdp);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s.at(40101).drops, 1234u);
  EXPECT_EQ(s.at(40101).rx_queue_bytes, 0x300u);
  EXPECT_EQ(s.at(40112).drops, 0u);
  EXPECT_THROW(parse_proc_net_udp("hello\n1 2 3\n"), ReportError);
  EXPECT_THROW(parse_proc_net_udp(std::string(kProcNetUdp) + "  111: 0100007F:9CB1 short\n"), ReportError);
}

TEST(VmLinks, LinkCountersNameEachDirectionsSocket) {
  const std::string links =
      "link=sender_proxy from=sender to=proxy rx_port=40101 transport=udp\n"
      "link=proxy_receiver from=proxy to=receiver rx_port=40112 transport=udp\n"
      "link=receiver_proxy from=receiver to=proxy rx_port=40102 transport=udp\n";
  const std::string snmp = "Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors\n"
                           "Udp: 100 0 1234 100 1234 7\n";
  const std::string dev = "Inter-|   Receive |  Transmit\n face |bytes packets errs drop fifo frame compressed multicast|"
                          "bytes packets errs drop fifo colls carrier compressed\n"
                          "    lo: 6800 100 0 3 0 0 0 0 6800 100 0 0 0 0 0 0\n";
  const nlohmann::json j = link_counters(links, kProcNetUdp, snmp, dev);
  EXPECT_EQ(j["transport"], "udp");
  EXPECT_EQ(j["sender_proxy"]["socket_drops"], 1234);
  EXPECT_EQ(j["proxy_receiver"]["socket_drops"], 0);
  EXPECT_TRUE(j["receiver_proxy"].contains("error"));  // its QEMU's socket is not in the snapshot
  EXPECT_EQ(j["host"]["lo_rx_drop"], 3);
  EXPECT_EQ(j["host"]["udp_sndbuf_errors"], 7);
  EXPECT_EQ(j["host"]["udp_rcvbuf_errors"], 1234);
  // Not saved at all, or a TCP link: every link says why it cannot be counted.
  EXPECT_TRUE(link_counters(links, "", "", "")["sender_proxy"].contains("error"));
  EXPECT_TRUE(link_counters("link=sender_proxy from=sender to=proxy rx_port=40101 transport=tcp\n", kProcNetUdp, snmp,
                            dev)["sender_proxy"]
                  .contains("error"));
  EXPECT_THROW(parse_links("link=x\n"), ReportError);
}

TEST(VmQemu, TheCommandLineSaysAcceleratorAndIcount) {
  QemuRun a = parse_qemu_cmdline("qemu-system-x86_64 -accel tcg -icount shift=0,sleep=on -m 256 -smp 1");
  EXPECT_EQ(a.accel, "tcg");
  EXPECT_TRUE(a.icount);
  EXPECT_EQ(a.icount_shift, 0);
  EXPECT_EQ(a.icount_spec, "shift=0,sleep=on");
  QemuRun b = parse_qemu_cmdline("/usr/bin/qemu-system-x86_64 -accel kvm -m 256 ");
  EXPECT_EQ(b.accel, "kvm");
  EXPECT_FALSE(b.icount);
  EXPECT_EQ(parse_qemu_cmdline("qemu-system-x86_64 -icount 3 -machine pc,accel=tcg").icount_shift, 3);
  EXPECT_EQ(parse_qemu_cmdline("qemu-system-x86_64 -machine pc,accel=tcg").accel, "tcg");
  EXPECT_THROW(parse_qemu_cmdline("bash launch.sh"), ReportError);
  EXPECT_THROW(parse_qemu_cmdline(""), ReportError);
}

TEST(VmCost, CpuPerForwardedPacketSplitsUserAndKernel) {
  GuestReports r;
  const nlohmann::json c = proxy_cpu_per_packet(r.proxy);
  EXPECT_NEAR(c["total"].get<double>(), 1e6, 1e-6);
  EXPECT_NEAR(c["user"].get<double>(), 1e5, 1e-6);
  EXPECT_NEAR(c["kernel"].get<double>(), 9e5, 1e-6);
  r.proxy["forwarded"] = 0;
  EXPECT_TRUE(proxy_cpu_per_packet(r.proxy).empty());
}

TEST(VmCost, InstructionsPerPacketComeFromTheProxysTwoMarks) {
  GuestReports r;
  r.proxy["insn_marks"] = {{"start", 48}, {"end", 49}};
  // The plugin's lines, among QEMU's other log lines; a tag written twice counts by its last.
  const std::string log = "some qemu line\nULSNET-INSN tag=48 user=5 kernel=7\nULSNET-INSN tag=48 user=1000 kernel=2000\n"
                          "ULSNET-INSN tag=7 user=1 kernel=1\nULSNET-INSN tag=49 user=94000 kernel=467000\n";
  const nlohmann::json c = insns_per_packet(r.proxy, log);
  EXPECT_EQ(c["window"]["user"], 93000);
  EXPECT_EQ(c["window"]["kernel"], 465000);
  EXPECT_DOUBLE_EQ(c["user"].get<double>(), 100.0);  // 930 forwarded
  EXPECT_DOUBLE_EQ(c["kernel"].get<double>(), 500.0);
  EXPECT_DOUBLE_EQ(c["total"].get<double>(), 600.0);
  EXPECT_THROW(insns_per_packet(r.proxy, "ULSNET-INSN tag=48 user=1 kernel=2\n"), ReportError);  // no end
  EXPECT_THROW(insns_per_packet(r.proxy, ""), ReportError);                                     // no plugin
  EXPECT_THROW(insns_per_packet(r.proxy, "ULSNET-INSN tag=48 user=9 kernel=9\nULSNET-INSN tag=49 user=1 kernel=9\n"),
               ReportError);  // backwards
  EXPECT_THROW(parse_insn_log("ULSNET-INSN tag=48 user=x kernel=1\n"), ReportError);
  EXPECT_THROW(parse_insn_log("ULSNET-INSN tag=48 user=1\n"), ReportError);
  r.proxy.erase("insn_marks");
  EXPECT_THROW(insns_per_packet(r.proxy, log), ReportError);
}

TEST(ClockSync, TheSmallestRoundTripGivesTheOffsetAndHalfItBoundsTheError) {
  // The peer's clock is 5000 ns ahead. Exchange 1: 1000 ns each way, 100 ns at the peer.
  // Exchange 2: 200 out, 4000 back (queued): the same true offset, but an asymmetric path.
  std::vector<SyncSample> s = {{0, 1000 + 5000, 1100 + 5000, 2100}, {10000, 10200 + 5000, 10300 + 5000, 14300}};
  const auto o = estimate_clock_offset(s);
  ASSERT_TRUE(o);
  EXPECT_EQ(o->offset_ns, 5000);
  EXPECT_EQ(o->rtt_ns, 2000);
  EXPECT_EQ(o->uncertainty_ns, 1000);
  EXPECT_EQ(o->samples, 2u);
  // The asymmetric exchange alone is off by (4000 - 200) / 2 = 1900, within its bound (2100).
  const auto q = estimate_clock_offset({s[1]});
  ASSERT_TRUE(q);
  EXPECT_EQ(q->offset_ns, 5000 - 1900);
  EXPECT_GE(q->uncertainty_ns, 1900);
  // A peer clock far behind (negative offsets) and an inconsistent sample, skipped.
  const auto n = estimate_clock_offset({{5'000'000'000, 1'000'000'500, 1'000'000'600, 5'000'001'100}, {10, 5, 4, 20}});
  ASSERT_TRUE(n);
  EXPECT_EQ(n->offset_ns, -4'000'000'000);
  EXPECT_EQ(n->samples, 1u);
  EXPECT_FALSE(estimate_clock_offset({}));
  EXPECT_FALSE(estimate_clock_offset({{10, 5, 4, 20}}));
}

// A launch row as run_vm_throughput writes it (only what the summary reads).
nlohmann::json launch_row(const std::string& variant, const nlohmann::json& offered, double delivered, double p99,
                          bool valid, double insns = -1) {
  nlohmann::json r{{"method", "sandbox"}, {"variant", variant}, {"mode", "relay"}, {"purpose", "rate+latency"},
                   {"offered", offered}, {"payload", 24}, {"payload_bytes", 24}, {"offered_pps", delivered + 10},
                   {"forwarded_pps", delivered + 5}, {"delivered_pps", delivered}};
  r["latency"] = {{"one_way_valid", valid}, {"latency_ns", {{"p99", p99}}}, {"ipdv_ns", {{"p99", p99 / 10}}}};
  if (insns >= 0) r["proxy_vm_insns_per_forwarded"] = {{"total", insns}};
  return r;
}

TEST(SummarizeVmPoints, RepetitionsOfOnePointGiveMediansAndStudentIntervals) {
  nlohmann::json rows = nlohmann::json::array();
  rows.push_back(launch_row("uls", "max", 1000, 100, true));
  rows.push_back(launch_row("uls", "max", 2000, 200, true));
  rows.push_back(launch_row("af_xdp", "max", 500, 50, true));  // another point
  rows.push_back(launch_row("uls", "max", 3000, 300, true));
  nlohmann::json search = launch_row("uls", 1500.0, 1400, 10, true);
  search["purpose"] = "search";  // a search step is not a point
  rows.push_back(search);
  const nlohmann::json s = summarize_vm_points(rows);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0]["point"], "sandbox|uls|relay|24|rate+latency|max");
  EXPECT_EQ(s[0]["repetitions"], 3);
  EXPECT_DOUBLE_EQ(s[0]["delivered_pps"].get<double>(), 2000);
  EXPECT_DOUBLE_EQ(s[0]["forwarded_pps"].get<double>(), 2005);
  // mean 2000, s = 1000, t(2) = 4.303: 2000 +- 2484.
  EXPECT_DOUBLE_EQ(s[0]["delivered_pps_ci95"]["mean"].get<double>(), 2000);
  EXPECT_NEAR(s[0]["delivered_pps_ci95"]["hi"].get<double>(), 2000 + 4.302653 * 1000 / std::sqrt(3.0), 0.01);
  EXPECT_NEAR(s[0]["latency_p99_ns_ci95"]["lo"].get<double>(), 200 - 4.302653 * 100 / std::sqrt(3.0), 0.001);
  EXPECT_TRUE(s[0].contains("ipdv_p99_ns_ci95"));
  EXPECT_EQ(s[0]["n_latency"], 3);
  // One repetition: medians, no interval.
  EXPECT_EQ(s[1]["repetitions"], 1);
  EXPECT_FALSE(s[1].contains("delivered_pps_ci95"));
}

TEST(SummarizeVmPoints, InvalidDelaysAndErrorsStayOutOfTheIntervalsAndAreCounted) {
  nlohmann::json rows = nlohmann::json::array();
  rows.push_back(launch_row("uls", 2000.0, 1990, 100, true, 700));
  rows.push_back(launch_row("uls", 2000.0, 1980, 900000, false, 710));  // clocks not comparable
  nlohmann::json err{{"method", "sandbox"}, {"variant", "uls"}, {"mode", "relay"}, {"purpose", "rate+latency"},
                     {"offered", 2000.0}, {"payload", 24}, {"error", "the proxy VM did not report"}};
  rows.push_back(err);
  nlohmann::json frac = launch_row("uls", 900.0, 900, 80, true);
  frac["purpose"] = "load";
  frac["load_fraction"] = 0.5;
  rows.push_back(frac);
  const nlohmann::json s = summarize_vm_points(rows);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0]["point"], "sandbox|uls|relay|24|rate+latency|rate:2000");
  EXPECT_EQ(s[0]["repetitions"], 2);
  EXPECT_EQ(s[0]["errors"], 1);
  EXPECT_EQ(s[0]["n_latency"], 1);
  EXPECT_DOUBLE_EQ(s[0]["latency_p99_ns"].get<double>(), 100);
  EXPECT_FALSE(s[0].contains("latency_p99_ns_ci95"));
  EXPECT_DOUBLE_EQ(s[0]["insns_per_forwarded_ci95"]["mean"].get<double>(), 705);
  EXPECT_EQ(s[1]["point"], "sandbox|uls|relay|24|load|fraction:0.5");
  EXPECT_DOUBLE_EQ(s[1]["load_fraction"].get<double>(), 0.5);
}

}  // namespace
}  // namespace ulsnet::vmrun
