// What //bench:throughput --hosts=vm reads back from one run of three VMs, and the accounting of
// that run. Pure (text in, JSON out), so that tests drive it with synthetic guest reports.
//
//   sent = received + sum over every drop stage + unaccounted
//
//   sender               the generator's send errors; Ip.OutDiscards (the sender's qdisc or
//                        driver dropped a datagram send() had accepted); eth0's tx_dropped
//   link_sender_proxy    the host kernel's drop counter of the UDP socket that carries the link
//                        into the proxy's QEMU (kernel/vm.sh --link udp): the proxy's QEMU stops
//                        reading it while the e1000 has no free receive descriptor
//   proxy_kernel         the method's own, and the proxy eth0's e1000 missed-packet register
//   proxy_stack, proxy_queue, proxy_extension, proxy_tx   the method's own stages (proxy_tx also
//                        holds Ip.OutDiscards for methods that send through the kernel's UDP)
//   link_proxy_receiver  as link_sender_proxy, for the socket into the receiver's QEMU
//   receiver_kernel      the receiver eth0's e1000 missed-packet register and rx_dropped, and
//                        the sink's kernel counters (Udp/Ip drops)
//   receiver_app         payloads the sink found corrupted
// Drops the host's network namespace counted but no single link owns (its loopback's backlog,
// a QEMU's failed send) go to link_sender_proxy as "host_either_link:*" (none were seen).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace ulsnet::vmrun {

// A guest's report that cannot be used (missing, not JSON, missing a count).
class ReportError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The JSON after the last line of `log` that starts with `marker` (e.g. "ULSNET-METHOD-REPORT ").
// Throws ReportError when there is no such line or it does not parse as a JSON object.
nlohmann::json report_json(const std::string& log, const std::string& marker);

// One direction of a link as kernel/vm.sh's links.txt names it.
struct LinkDirection {
  std::string name, from, to, transport;
  uint16_t rx_port = 0;
};
std::vector<LinkDirection> parse_links(const std::string& links_txt);

// /proc/net/udp: per local port, the socket's drop counter and the bytes waiting in its
// receive queue. Throws ReportError for text that is not /proc/net/udp.
struct UdpSocket {
  uint64_t drops = 0, rx_queue_bytes = 0;
};
std::map<uint16_t, UdpSocket> parse_proc_net_udp(const std::string& text);

// One field of /proc/net/snmp ("Udp", "SndbufErrors"), or nullopt.
std::optional<uint64_t> proc_net_snmp_field(const std::string& text, const std::string& section,
                                            const std::string& field);
// One interface's field of /proc/net/dev ("lo", "rx_drop" | "tx_drop" | "rx_packets" |
// "tx_packets"), or nullopt.
std::optional<uint64_t> proc_net_dev_field(const std::string& text, const std::string& ifname,
                                           const std::string& field);

// The link counters of a run, from kernel/vm.sh's files: {"transport", "<link name>": {"rx_port",
// "socket_drops", "rx_queue_bytes"} for every direction, "host": {"lo_rx_drop", "lo_tx_drop",
// "udp_sndbuf_errors", "udp_rcvbuf_errors"}}. `udp`, `snmp` and `dev` are empty when vm.sh could
// not save them: then every link is {"error": ...}.
nlohmann::json link_counters(const std::string& links_txt, const std::string& udp, const std::string& snmp,
                             const std::string& dev);

// What QEMU ran with, from its command line (kernel/vm.sh's ROLE.cmdline, NULs as spaces):
// accelerator and instruction counting. Throws ReportError if it is not a QEMU command line.
struct QemuRun {
  std::string accel;  // "tcg", "kvm", ...
  bool icount = false;
  int icount_shift = -1;  // -1: not given or "auto"
  std::string icount_spec;  // the -icount argument as given
};
QemuRun parse_qemu_cmdline(const std::string& cmdline);

// The accounting of one run from the sender's, the proxy's and the receiver's reports
// (bench/guest/ulsnet_traffic.cc, bench/guest/ulsnet_proxy.cc) and link_counters(): sent,
// received, drops {stage: {reason: n}} with every stage of kDropStages (DropLedger::to_json),
// dropped_by_stage, dropped, unaccounted (signed),
// and "path": what each NIC on the way counted (for reading where frames went). Throws ReportError
// for a report that lacks a count, names an unknown stage, or counts drops in a stage that is not
// a proxy stage; and for links whose drops could not be read (then no accounting can close).
nlohmann::json account_vm_run(const nlohmann::json& sender, const nlohmann::json& proxy,
                              const nlohmann::json& receiver, const nlohmann::json& links);

// The instruction counts at each marker tag, from the QEMU plugin's log (kernel/qemu/insn_count.c:
// "ULSNET-INSN tag=T user=U kernel=K"; the last line of each tag).
struct InsnCount {
  uint64_t user = 0, kernel = 0;
};
std::map<int, InsnCount> parse_insn_log(const std::string& text);

// Instructions the proxy VM executed per forwarded packet between the proxy's two marks
// ("insn_marks" in its report): {"total", "user", "kernel", "window": {...}}. Throws ReportError
// when a mark is missing from the log or the counts went backwards.
nlohmann::json insns_per_packet(const nlohmann::json& proxy, const std::string& insn_log);

// Proxy-VM CPU per forwarded packet from the proxy's report: {"total", "user", "kernel"} ns
// (kernel = system + irq + softirq), or an empty object when nothing was forwarded.
nlohmann::json proxy_cpu_per_packet(const nlohmann::json& proxy);

// The point key of one launch, for resuming a run and grouping repetitions: method|variant|mode|
// payload|purpose|load, load being "max", "rate:R" (datagrams/s) or "fraction:F" (of the job's PDR).
std::string vm_point_key(const nlohmann::json& row);

// One summary per point (rows with the same vm_point_key; search steps are not points), in the
// order the points first appear: the identifying fields, "repetitions" (rows without error),
// "errors", medians of offered/forwarded/delivered pps, and 95% confidence intervals of the mean
// over repetitions (Student t, bench/stats.h; present only with two or more values):
// delivered_pps_ci95, forwarded_pps_ci95, latency_p99_ns_ci95 and ipdv_p99_ns_ci95 (only from
// rows whose one-way delays are valid), insns_per_forwarded_ci95 (from rows with instruction
// counts). `n_latency`: how many rows the latency intervals rest on.
nlohmann::json summarize_vm_points(const nlohmann::json& results);

}  // namespace ulsnet::vmrun
