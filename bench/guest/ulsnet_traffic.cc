// The end hosts of //bench:throughput --hosts=vm: the project's own socket generator and sink
// (bench/traffic.h, the same code, payload and statistics as on the namespace hosts) inside the
// sender and receiver VMs, plus what only VMs need: each guest's counters around the stream, and
// a common clock for one-way delays.
//
//   ulsnet_traffic send DST PORT COUNT PPS PAYLOAD SECONDS MGMT_PEER
//       COUNT datagrams of PAYLOAD bytes to DST:PORT, paced at PPS (0: as fast as the socket
//       takes them), bounded by SECONDS. MGMT_PEER is the receiver on the management link.
//   ulsnet_traffic recv PORT COUNT IDLE_MS MAX_MS
//       the sink on PORT, until the sender said the stream is through (management link) and
//       nothing arrived for IDLE_MS, or MAX_MS in all.
// Output: one line "ULSNET-TRAFFIC-SENDER {json}" or "ULSNET-TRAFFIC-RECEIVER {json}", or
// "ULSNET-TRAFFIC-ERROR message" (exit 1).
//
// Clocks: each guest's CLOCK_MONOTONIC starts at its own boot, so the sender first measures the
// receiver's clock against its own over the management link (a direct sender--receiver link,
// not through the proxy; bench/guest/clock_sync.h: the exchange with the smallest round trip,
// error <= half of it), then runs the generator in a child process inside a new time namespace
// whose CLOCK_MONOTONIC is moved by that offset: every send time stamped in a payload is then on
// the receiver's clock, and the sink's receive - send is the one-way delay. The child measures
// the remaining difference right before and right after the stream (the guests' clocks drift
// apart a little: each calibrates its own TSC); both are reported with their uncertainty, and the
// delays are good to within max(|residual|) + uncertainty.
//
// Counters, as deltas over the stream: sender: eth0's frames sent and dropped, the kernel's
// Ip.OutDiscards (datagrams the qdisc or driver dropped after send() reported success) and Udp
// counters; receiver: eth0's frames received, the e1000's own missed-packet registers
// (kernel/guest/guest_util.h: exact, unlike the driver's rx_missed_errors), and the sink's kernel
// counters.
#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "baselines/proc_counters.h"
#include "bench/guest/clock_sync.h"
#include "bench/traffic.h"
#include "kernel/guest/guest_util.h"

namespace {

using namespace ulsnet;

constexpr uint16_t kMgmtPort = 9100;
constexpr uint32_t kMgmtMagic = 0x434c5355;  // "ULSC"
constexpr uint32_t kRunId = 7;

// The management link's messages (both guests are x86-64: host byte order).
enum MgmtType : uint32_t { kSyncRequest = 1, kSyncReply = 2, kStreamEnd = 3, kStreamEndAck = 4 };
struct MgmtMsg {
  uint32_t magic = kMgmtMagic;
  uint32_t type = 0;
  uint64_t seq = 0;
  int64_t t1 = 0, t2 = 0, t3 = 0;
  uint64_t sent = 0;
};

int64_t now_ns() { return int64_t(guest_now_ns()); }

int error(const std::string& msg) {
  std::printf("ULSNET-TRAFFIC-ERROR %s\n", msg.c_str());
  return 1;
}

// A UDP socket connected to peer:port on the management link.
int mgmt_socket(const char* peer) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(kMgmtPort);
  if (fd < 0 || inet_pton(AF_INET, peer, &a.sin_addr) != 1 ||
      connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    if (fd >= 0) close(fd);
    return -1;
  }
  return fd;
}

// Waits up to timeout_ms for a message of `type` (and `seq`, for sync replies); true if it came.
bool await(int fd, uint32_t type, uint64_t seq, int timeout_ms, MgmtMsg& out, int64_t& at) {
  const int64_t end = now_ns() + int64_t(timeout_ms) * 1000000;
  for (;;) {
    const int64_t left = (end - now_ns()) / 1000000;
    if (left < 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, int(left)) <= 0) continue;
    MgmtMsg m;
    const ssize_t n = recv(fd, &m, sizeof m, 0);
    at = now_ns();
    if (n == ssize_t(sizeof m) && m.magic == kMgmtMagic && m.type == type && (type != kSyncReply || m.seq == seq)) {
      out = m;
      return true;
    }
  }
}

// `n` request/answer exchanges, `gap_ms` apart; the answers that came.
std::vector<SyncSample> exchange(int fd, int n, int gap_ms) {
  std::vector<SyncSample> s;
  static uint64_t seq = 0;
  for (int i = 0; i < n; ++i) {
    MgmtMsg q;
    q.type = kSyncRequest;
    q.seq = ++seq;
    q.t1 = now_ns();
    if (send(fd, &q, sizeof q, 0) == ssize_t(sizeof q)) {
      MgmtMsg a;
      int64_t t4 = 0;
      if (await(fd, kSyncReply, q.seq, 200, a, t4)) s.push_back({a.t1, a.t2, a.t3, t4});
    }
    usleep(useconds_t(gap_ms) * 1000);
  }
  return s;
}

// Until the peer answers (it answers once its sink is ready), at most timeout_ms.
bool wait_for_peer(int fd, int timeout_ms) {
  const int64_t end = now_ns() + int64_t(timeout_ms) * 1000000;
  while (now_ns() < end)
    if (!exchange(fd, 1, 100).empty()) return true;
  return false;
}

nlohmann::json offset_json(const std::optional<ClockOffset>& o) {
  return o ? to_json(*o) : nlohmann::json{{"error", "no answer on the management link"}};
}

// The time namespace the next child will be in: its CLOCK_MONOTONIC = ours + shift. "" or why not.
std::string enter_time_namespace_for_children(int64_t shift_ns) {
  if (unshare(CLONE_NEWTIME) != 0) return std::string("unshare(CLONE_NEWTIME): ") + std::strerror(errno);
  int64_t sec = shift_ns / 1000000000, nsec = shift_ns % 1000000000;
  if (nsec < 0) {
    nsec += 1000000000;
    sec -= 1;
  }
  const std::string line = "monotonic " + std::to_string(sec) + " " + std::to_string(nsec) + "\n";
  int fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
  if (fd < 0) return std::string("/proc/self/timens_offsets: ") + std::strerror(errno);
  const bool ok = write(fd, line.data(), line.size()) == ssize_t(line.size());
  const int e = errno;
  close(fd);
  return ok ? "" : std::string("timens_offsets: ") + std::strerror(e);
}

// The generator's child: residual clock difference, the stream, residual again; its JSON
// report on `out`.
[[noreturn]] void generator_child(int out, const GeneratorConfig& cfg, const char* mgmt_peer) {
  nlohmann::json j;
  try {
    int m = mgmt_socket(mgmt_peer);
    j["clock_before"] = offset_json(estimate_clock_offset(exchange(m, 32, 2)));
    std::atomic<bool> stop{false};
    j["generator"] = run_generator(cfg, stop);
    j["clock_after"] = offset_json(estimate_clock_offset(exchange(m, 32, 2)));
    close(m);
  } catch (const std::exception& e) {
    j["error"] = e.what();
  }
  const std::string s = j.dump();
  size_t off = 0;
  while (off < s.size()) {
    const ssize_t n = write(out, s.data() + off, s.size() - off);
    if (n <= 0) break;
    off += size_t(n);
  }
  _exit(0);
}

// eth0's counters and the kernel's, for deltas.
struct HostCounters {
  std::map<std::string, uint64_t> snmp;
  uint64_t rx_packets = 0, tx_packets = 0, rx_dropped = 0, tx_dropped = 0;
  int64_t mpc = -1, rnbc = -1;
  static HostCounters read() {
    HostCounters c;
    c.snmp = read_snmp();
    c.rx_packets = guest_if_stat("eth0", "rx_packets");
    c.tx_packets = guest_if_stat("eth0", "tx_packets");
    c.rx_dropped = guest_if_stat("eth0", "rx_dropped");
    c.tx_dropped = guest_if_stat("eth0", "tx_dropped");
    c.mpc = guest_e1000_reg("eth0", GUEST_E1000_MPC);
    c.rnbc = guest_e1000_reg("eth0", GUEST_E1000_RNBC);
    return c;
  }
};

// {"rx_packets", "tx_packets", "rx_dropped", "tx_dropped", "e1000_mpc", "e1000_rnbc"} deltas (the
// registers null when they could not be read).
nlohmann::json nic_delta(const HostCounters& a, const HostCounters& b) {
  auto reg = [](int64_t x, int64_t y) { return x < 0 || y < 0 || y < x ? nlohmann::json() : nlohmann::json(y - x); };
  return {{"rx_packets", b.rx_packets - a.rx_packets}, {"tx_packets", b.tx_packets - a.tx_packets},
          {"rx_dropped", b.rx_dropped - a.rx_dropped}, {"tx_dropped", b.tx_dropped - a.tx_dropped},
          {"e1000_mpc", reg(a.mpc, b.mpc)},            {"e1000_rnbc", reg(a.rnbc, b.rnbc)}};
}

int do_send(const char* dst, int port, uint64_t count, double pps, uint32_t payload, double seconds,
            const char* mgmt_peer) {
  GeneratorConfig cfg;
  auto ip = Ipv4Addr::parse(dst);
  if (!ip) return error(std::string("bad address ") + dst);
  cfg.dst = *ip;
  cfg.dst_port = uint16_t(port);
  cfg.payload = payload;
  cfg.count = count;
  cfg.duration_s = seconds;
  cfg.rate_pps = pps;
  cfg.run_id = kRunId;

  int m = mgmt_socket(mgmt_peer);
  if (m < 0) return error(std::string("management socket to ") + mgmt_peer + ": " + std::strerror(errno));
  if (!wait_for_peer(m, 90000)) return error("the receiver did not answer on the management link");
  const std::optional<ClockOffset> offset = estimate_clock_offset(exchange(m, 64, 5));
  if (!offset) return error("no clock comparison with the receiver");

  nlohmann::json clock = {{"offset", to_json(*offset)}};
  const std::string why = enter_time_namespace_for_children(offset->offset_ns);
  clock["shift_ns"] = why.empty() ? offset->offset_ns : 0;
  clock["shifted"] = why.empty();
  if (!why.empty()) clock["shift_error"] = why;

  int fds[2];
  if (pipe(fds) != 0) return error("pipe");
  const HostCounters c0 = HostCounters::read();
  const pid_t child = fork();
  if (child < 0) return error("fork");
  if (child == 0) {
    close(fds[0]);
    generator_child(fds[1], cfg, mgmt_peer);
  }
  close(fds[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) out.append(buf, size_t(n));
  close(fds[0]);
  int st = 0;
  waitpid(child, &st, 0);
  // What the NIC sent is complete once its ring is through (a few ms; generous).
  usleep(300000);
  const HostCounters c1 = HostCounters::read();

  nlohmann::json child_report = nlohmann::json::parse(out, nullptr, false);
  if (child_report.is_discarded() || !child_report.contains("generator"))
    return error("generator: " + (child_report.is_object() ? child_report.value("error", out) : out));

  // The stream is through: the receiver may stop once nothing more arrives.
  MgmtMsg end;
  end.type = kStreamEnd;
  end.sent = child_report["generator"].value("sent", uint64_t(0));
  bool acked = false;
  for (int i = 0; i < 50 && !acked; ++i) {
    send(m, &end, sizeof end, 0);
    MgmtMsg a;
    int64_t at;
    acked = await(m, kStreamEndAck, 0, 100, a, at);
  }
  close(m);

  clock["residual_before"] = child_report["clock_before"];
  clock["residual_after"] = child_report["clock_after"];
  auto d = counter_delta(c0.snmp, c1.snmp);
  nlohmann::json j;
  j["generator"] = child_report["generator"];
  j["payload_bytes"] = payload;
  j["frame_bytes"] = 14 + 20 + 8 + payload;  // Ethernet + IPv4 + UDP headers, no FCS
  j["nic"] = {{"eth0", nic_delta(c0, c1)}};
  j["kernel"] = {{"ip_out_discards", counter(d, "Ip.OutDiscards")},
                 {"ip_out_requests", counter(d, "Ip.OutRequests")},
                 {"udp_out_datagrams", counter(d, "Udp.OutDatagrams")},
                 {"udp_sndbuf_errors", counter(d, "Udp.SndbufErrors")}};
  j["clock"] = clock;
  j["end_acked"] = acked;
  std::printf("ULSNET-TRAFFIC-SENDER %s\n", j.dump().c_str());
  return 0;
}

int do_recv(int port, uint64_t count, int idle_ms, int max_ms, int warmup_ms) {
  SinkConfig cfg;
  // The first WARMUP_MS of the stream (by the sender's stamps) are left out of the delay
  // statistics, still accounted (as on the namespace hosts).
  cfg.warmup_s = warmup_ms / 1000.0;
  cfg.port = uint16_t(port);
  cfg.run_id = kRunId;
  cfg.max_seq = count;
  cfg.max_duration_s = max_ms / 1000.0 + 5;
  std::atomic<bool> stop{false}, ready{false};
  std::atomic<uint64_t> received{0};
  cfg.received_so_far = &received;
  // The management socket is bound before the sink takes its kernel counters and closed only
  // after it took them again: the sender's clock requests and end-of-stream messages (on the
  // management NIC, but in the same host-wide UDP counters) then never reach a closed port, which
  // the sink would count as a stream datagram lost to Udp.NoPorts. It answers only once the sink
  // is ready (the sender starts the stream after its answers).
  int m = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(kMgmtPort);
  if (m < 0 || bind(m, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    const int e = errno;
    if (m >= 0) close(m);
    return error(std::string("management socket: ") + std::strerror(e));
  }
  nlohmann::json sink;
  std::string sink_error;
  std::thread t([&] {
    try {
      sink = run_sink(cfg, stop, [&] { ready = true; });
    } catch (const std::exception& e) {
      sink_error = e.what();
      ready = true;
    }
  });
  const int64_t start = now_ns();
  while (!ready && now_ns() - start < 10000000000) usleep(1000);
  if (!sink_error.empty() || !ready) {
    stop = true;
    t.join();
    close(m);
    return error("sink: " + (sink_error.empty() ? std::string("not ready") : sink_error));
  }
  const HostCounters c0 = HostCounters::read();

  // The management link: answer clock comparisons and take the sender's end of stream.
  int64_t end_at = 0, last_rx_change = 0;
  uint64_t last_rx = c0.rx_packets, sent_by_sender = 0;
  const int64_t idle = int64_t(idle_ms) * 1000000;
  for (;;) {
    pollfd p{m, POLLIN, 0};
    if (poll(&p, 1, 20) > 0) {
      MgmtMsg q;
      sockaddr_in from{};
      socklen_t fl = sizeof from;
      const ssize_t n = recvfrom(m, &q, sizeof q, 0, reinterpret_cast<sockaddr*>(&from), &fl);
      const int64_t t2 = now_ns();
      if (n == ssize_t(sizeof q) && q.magic == kMgmtMagic) {
        MgmtMsg r = q;
        if (q.type == kSyncRequest) {
          r.type = kSyncReply;
          r.t2 = t2;
        } else if (q.type == kStreamEnd) {
          r.type = kStreamEndAck;
          if (!end_at) end_at = t2;
          sent_by_sender = q.sent;
        } else {
          continue;
        }
        r.t3 = now_ns();
        sendto(m, &r, sizeof r, 0, reinterpret_cast<sockaddr*>(&from), fl);
      }
    }
    const int64_t now = now_ns();
    const uint64_t rx = guest_if_stat("eth0", "rx_packets");
    if (rx != last_rx) {
      last_rx = rx;
      last_rx_change = now;
    }
    // Through: the sender said so and every datagram it sent has arrived (nothing more of the
    // stream can come), or the sender said so and nothing arrived since for IDLE_MS; or no word
    // from the sender but nothing for 10 x IDLE_MS after something came; or MAX_MS in all.
    const int64_t quiet_since = std::max(end_at, last_rx_change);
    if (end_at && sent_by_sender > 0 && received.load(std::memory_order_relaxed) >= sent_by_sender) break;
    if (end_at && now - quiet_since >= idle) break;
    if (!end_at && last_rx_change && now - last_rx_change >= 10 * idle) break;
    if (now - start >= int64_t(max_ms) * 1000000) break;
  }
  stop = true;
  t.join();
  const HostCounters c1 = HostCounters::read();
  close(m);
  if (!sink_error.empty()) return error("sink: " + sink_error);
  auto d = counter_delta(c0.snmp, c1.snmp);
  nlohmann::json j;
  j["sink"] = sink;
  j["nic"] = {{"eth0", nic_delta(c0, c1)}};
  j["kernel"] = {{"ip_in_receives", counter(d, "Ip.InReceives")},
                 {"udp_in_datagrams", counter(d, "Udp.InDatagrams")}};
  j["end_from_sender"] = end_at != 0;
  j["sender_said_sent"] = sent_by_sender;
  std::printf("ULSNET-TRAFFIC-RECEIVER %s\n", j.dump().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  setvbuf(stdout, nullptr, _IOLBF, 0);
  signal(SIGPIPE, SIG_IGN);
  try {
    if (argc == 9 && std::strcmp(argv[1], "send") == 0)
      return do_send(argv[2], std::atoi(argv[3]), std::strtoull(argv[4], nullptr, 10), std::atof(argv[5]),
                     uint32_t(std::atoi(argv[6])), std::atof(argv[7]), argv[8]);
    if ((argc == 6 || argc == 7) && std::strcmp(argv[1], "recv") == 0)
      return do_recv(std::atoi(argv[2]), std::strtoull(argv[3], nullptr, 10), std::atoi(argv[4]), std::atoi(argv[5]),
                     argc == 7 ? std::max(0, std::atoi(argv[6])) : 0);
  } catch (const std::exception& e) {
    return error(e.what());
  }
  std::fprintf(stderr,
               "usage: ulsnet_traffic send DST PORT COUNT PPS PAYLOAD SECONDS MGMT_PEER | "
               "recv PORT COUNT IDLE_MS MAX_MS [WARMUP_MS]\n");
  return 2;
}
