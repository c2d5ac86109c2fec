// kernel-socket and kernel-forward: the methods where the proxy's kernel does all protocol work.
// Their drops are the kernel's own counters of the proxy's network namespace, read at start()
// and at report() (the harness runs each method in a namespace of its own, so the deltas are
// exactly this method's).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <vector>

#include "stack/drop_stage.h"
#include "stack/live_exchange.h"
#include "baselines/proc_counters.h"
#include "baselines/kernel_socket.h"
#include "baselines/methods.h"
#include "stack/socket_buffers.h"

namespace ulsnet {
namespace kernel_socket {

sockaddr_in socket_address(Ipv4Addr ip, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(ip.v);
  return a;
}

int udp_socket_bound(Ipv4Addr ip, uint16_t port, bool receive_side) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | (receive_side ? SOCK_NONBLOCK : 0), 0);
  if (fd < 0) throw MethodError(std::string("kernel-socket: socket: ") + std::strerror(errno));
  set_socket_buffers(fd, 8 << 20, receive_side, !receive_side);
  if (!receive_side) {
    // A blocking send, as a relay application would do, bounded so that stop is still seen:
    // a send that cannot go out within 50 ms fails and is counted.
    timeval tv{0, 50'000};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }
  sockaddr_in a = socket_address(ip, port);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    int e = errno;
    close(fd);
    throw MethodError("kernel-socket: bind " + ip.str() + ":" + std::to_string(port) + ": " +
                      std::strerror(e) +
                      (e == EADDRNOTAVAIL ? " (the proxy's kernel must own this address)" : ""));
  }
  return fd;
}

int socket_buffer(int fd, int opt) {
  int v = 0;
  socklen_t len = sizeof v;
  getsockopt(fd, SOL_SOCKET, opt, &v, &len);
  return v;
}

// The kernel's drop counter of one UDP socket (the "drops" column of /proc/net/udp, matched by
// inode): the part of the namespace-wide counters that belongs to this socket.
uint64_t udp_socket_drops(int fd) {
  struct stat st {};
  if (fstat(fd, &st) != 0) return 0;
  std::ifstream in("/proc/thread-self/net/udp");
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::vector<std::string> col;
    for (std::string c; f >> c;) col.push_back(c);
    if (col.size() >= 13 && col[9] == std::to_string(st.st_ino)) return std::stoull(col[12]);
  }
  return 0;
}

std::string errno_name(int e) {
  const char* n = strerrorname_np(e);
  return n != nullptr ? n : "errno_" + std::to_string(e);
}

DropLedger drops(const std::map<std::string, uint64_t>& d, uint64_t send_failed) {
  auto c = [&](const char* k) { return counter(d, k); };
  // Kernel drops on the way in, before the relay saw the datagram. Udp.InErrors includes the
  // receive-buffer, memory and checksum errors: only its remainder is reported separately.
  const uint64_t in_errors_known =
      c("Udp.RcvbufErrors") + c("Udp.MemErrors") + c("Udp.InCsumErrors");
  DropLedger drops;
  drops.add(DropStage::kProxyKernel, "udp_rcvbuf_errors", c("Udp.RcvbufErrors"));
  drops.add(DropStage::kProxyKernel, "udp_mem_errors", c("Udp.MemErrors"));
  drops.add(DropStage::kProxyKernel, "udp_in_csum_errors", c("Udp.InCsumErrors"));
  drops.add(DropStage::kProxyKernel, "udp_no_ports", c("Udp.NoPorts"));
  drops.add(DropStage::kProxyKernel, "udp_in_errors_other",
            c("Udp.InErrors") - std::min(c("Udp.InErrors"), in_errors_known));
  drops.add(DropStage::kProxyKernel, "ip_in_hdr_errors", c("Ip.InHdrErrors"));
  drops.add(DropStage::kProxyKernel, "ip_in_addr_errors", c("Ip.InAddrErrors"));
  drops.add(DropStage::kProxyKernel, "ip_in_discards", c("Ip.InDiscards"));
  // Datagrams the relay received and could not send (each also shows in send_errors; the
  // kernel's Udp.SndbufErrors counts some of the same, so it is informational only).
  drops.add(DropStage::kProxyTx, "send_failed", send_failed);
  return drops;
}

nlohmann::json errno_counts(const std::map<int, uint64_t>& by_errno) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [e, n] : by_errno) j[errno_name(e)] = n;
  return j;
}

nlohmann::json relay_report(uint64_t received, uint64_t forwarded, const DropLedger& ledger,
                            const std::map<int, uint64_t>& send_errors, const std::map<std::string, uint64_t>& d,
                            int in, int out) {
  auto c = [&](const char* k) { return counter(d, k); };
  nlohmann::json j;
  j["forwarded"] = forwarded;
  j["received"] = received;
  j["drops"] = ledger.to_json();
  // ENOBUFS: the interface dropped the datagram and counts it too (see bench/trial.cc).
  j["tx_refused_by_link"] = send_errors.count(ENOBUFS) ? send_errors.at(ENOBUFS) : 0;
  j["send_errors"] = errno_counts(send_errors);
  j["kernel"] = {{"udp_in_datagrams", c("Udp.InDatagrams")},
                 {"udp_out_datagrams", c("Udp.OutDatagrams")},
                 {"udp_sndbuf_errors", c("Udp.SndbufErrors")}};
  j["socket"] = {{"rcvbuf_bytes", socket_buffer(in, SO_RCVBUF)},
                 {"sndbuf_bytes", socket_buffer(out, SO_SNDBUF)},
                 {"in_socket_drops", udp_socket_drops(in)}};
  return j;
}

}  // namespace kernel_socket

namespace {

using namespace kernel_socket;

// UDP relay on kernel sockets: a socket bound to in.ip:relay_port receives, a socket bound to
// out.ip sends every datagram to out.peer_ip:relay_to_port. The kernel does all protocol
// processing twice (in and out); each datagram is copied kernel -> user and user -> kernel.
//   per-datagram: recvfrom + sendto per datagram (2 system calls per datagram).
//   batched:      recvmmsg + sendmmsg per batch of up to cfg.batch datagrams.
//   io_uring, io_uring-sqpoll, io_uring-send_zc: baselines/uring_relay.cc (this class forwards to it).
class KernelSocketRelay final : public ProxyMethod {
 public:
  explicit KernelSocketRelay(const MethodInfo& info) : info_(info) {}
  ~KernelSocketRelay() override {
    if (in_ >= 0) close(in_);
    if (out_ >= 0) close(out_);
  }

  void start(const ProxyConfig& cfg) override {
    variant_ = check_method_config(info_, cfg);
    if (variant_.rfind("io_uring", 0) == 0) {  // its own loop (baselines/uring_relay.cc); this one forwards to it
      uring_ = make_uring_relay(info_);
      uring_->start(cfg);
      return;
    }
    batched_ = variant_ == "batched";
    batch_ = batched_ ? std::min<uint32_t>(cfg.batch, 1024) : 1;
    in_ = udp_socket_bound(cfg.in.ip, cfg.relay_port, true);
    out_ = udp_socket_bound(cfg.out.ip, 0, false);
    dst_ = socket_address(cfg.out.peer_ip, cfg.relay_to_port);
    // Uninitialised on purpose: pages are touched only as far as datagrams reach.
    buf_.reset(new uint8_t[batch_ * kMaxDatagram]);
    iov_.resize(batch_);
    rx_.resize(batch_);
    tx_.resize(batch_);
    snmp0_ = read_snmp();
  }

  void run(const std::atomic<bool>& stop) override {
    if (uring_) return uring_->run(stop);
    pollfd pfd{in_, POLLIN, 0};
    while (!stop.load(std::memory_order_relaxed)) {
      if (live_.asked())
        live_.answer([this](LiveCopy& c) { c = {received_, forwarded_, send_failed_}; });
      if (relay_once() > 0) continue;
      ++idle_waits_;
      ++syscalls_;
      poll(&pfd, 1, kIdleWaitMs);
    }
    // Whatever is still queued in the socket was received by the proxy: forward it too, so it
    // is not left uncounted (bounded: the sender may still be sending).
    for (int i = 0; i < 64 && relay_once() > 0; ++i) {
    }
    // What is left (a relay that fell behind, e.g. under CPU competition) goes with the socket:
    // counted as dropped at the proxy's queue, not lost from the accounting.
    for (uint64_t n = 0; n < 100'000'000; ++n) {
      if (recv(in_, buf_.get(), kMaxDatagram, MSG_DONTWAIT) < 0) break;
      ++left_at_stop_;
    }
  }

  // Counters so far: the loop's (answered between two receive calls) and the kernel's.
  nlohmann::json live() override {
    if (uring_) return uring_->live();
    std::optional<LiveCopy> l = live_.ask(kLiveWaitMs);
    if (!l) return nullptr;
    const auto d = counter_delta(snmp0_, read_snmp());
    return {{"forwarded", l->forwarded}, {"drops", drops(d, l->send_failed).to_json()}};
  }

  nlohmann::json report() override {
    if (uring_) return uring_->report();
    const auto d = counter_delta(snmp0_, read_snmp());
    DropLedger ledger = drops(d, send_failed_);
    ledger.add(DropStage::kProxyQueue, "left_in_socket_at_stop", left_at_stop_);
    nlohmann::json j = relay_report(received_, forwarded_, ledger, send_errors_, d, in_, out_);
    j["variant"] = variant_;
    j["syscalls"] = syscalls_;
    j["copies"] = received_ + forwarded_;  // kernel -> user on receive, user -> kernel on send
    j["idle_waits"] = idle_waits_;
    return j;
  }

 private:
  const MethodInfo& info_;
  struct LiveCopy {
    uint64_t received = 0, forwarded = 0, send_failed = 0;
  };

  // One receive call and the sends it needs; returns datagrams received (0: none queued).
  size_t relay_once() { return batched_ ? relay_batch() : relay_datagram(); }

  size_t relay_datagram() {
    ++syscalls_;
    ssize_t r = recvfrom(in_, buf_.get(), kMaxDatagram, MSG_DONTWAIT, nullptr, nullptr);
    if (r < 0) return 0;  // EAGAIN; an error queued by ICMP is reported once and loses nothing
    ++received_;
    ++syscalls_;
    if (sendto(out_, buf_.get(), size_t(r), 0, reinterpret_cast<const sockaddr*>(&dst_),
               sizeof dst_) == r)
      ++forwarded_;
    else
      count_send_failure(errno);
    return 1;
  }

  size_t relay_batch() {
    for (uint32_t i = 0; i < batch_; ++i) {
      iov_[i] = {buf_.get() + i * kMaxDatagram, kMaxDatagram};
      rx_[i] = {};
      rx_[i].msg_hdr.msg_iov = &iov_[i];
      rx_[i].msg_hdr.msg_iovlen = 1;
    }
    ++syscalls_;
    int n = recvmmsg(in_, rx_.data(), batch_, MSG_DONTWAIT, nullptr);
    if (n <= 0) return 0;
    received_ += uint64_t(n);
    for (int i = 0; i < n; ++i) {
      iov_[i].iov_len = rx_[i].msg_len;
      tx_[i] = {};
      tx_[i].msg_hdr.msg_iov = &iov_[i];
      tx_[i].msg_hdr.msg_iovlen = 1;
      tx_[i].msg_hdr.msg_name = &dst_;
      tx_[i].msg_hdr.msg_namelen = sizeof dst_;
    }
    int done = 0;
    while (done < n) {
      ++syscalls_;
      int s = sendmmsg(out_, tx_.data() + done, unsigned(n - done), 0);
      if (s > 0) {
        done += s;
        forwarded_ += uint64_t(s);
      } else {
        // The datagram at `done` failed: count it and go on with the rest of the batch.
        count_send_failure(errno);
        ++done;
      }
    }
    return size_t(n);
  }

  void count_send_failure(int e) {
    ++send_failed_;
    ++send_errors_[e];
  }

  std::string variant_;
  bool batched_ = true;
  uint32_t batch_ = 32;
  int in_ = -1, out_ = -1;
  sockaddr_in dst_{};
  std::unique_ptr<uint8_t[]> buf_;
  std::vector<iovec> iov_;
  std::vector<mmsghdr> rx_, tx_;
  std::map<std::string, uint64_t> snmp0_;
  std::map<int, uint64_t> send_errors_;
  uint64_t received_ = 0, forwarded_ = 0, send_failed_ = 0, syscalls_ = 0, idle_waits_ = 0, left_at_stop_ = 0;
  LiveExchange<LiveCopy> live_;
  std::unique_ptr<ProxyMethod> uring_;  // the io_uring variant, when it is the one
};

// The kernel's own IP forwarding, the reference for router mode: start() switches ip_forward
// on in the proxy's namespace (restored when the method is destroyed), run() only waits, and
// report() reads what the kernel counted. No user-level work at all: every cost is softirq.
class KernelForward final : public ProxyMethod {
 public:
  explicit KernelForward(const MethodInfo& info) : info_(info) {}
  ~KernelForward() override {
    if (!previous_.empty()) std::ofstream(kIpForward) << previous_ << "\n";
  }

  void start(const ProxyConfig& cfg) override {
    check_method_config(info_, cfg);
    in_ = cfg.in.ifname;
    out_ = cfg.out.ifname;
    std::string before;
    std::ifstream(kIpForward) >> before;
    {
      std::ofstream f(kIpForward);
      f << "1\n";
      f.flush();
      if (!f)
        throw MethodError(std::string("kernel-forward: cannot write ") + kIpForward +
                          ": " + std::strerror(errno) + " (needs root in this namespace)");
    }
    std::string now;
    std::ifstream(kIpForward) >> now;
    if (now != "1") throw MethodError(std::string("kernel-forward: ") + kIpForward + " stays 0");
    if (before != "1") previous_ = before;
    snmp0_ = read_snmp();
    netstat0_ = read_netstat();
    netdev0_ = read_netdev();
  }

  void run(const std::atomic<bool>& stop) override {
    while (!stop.load(std::memory_order_relaxed)) usleep(10'000);
  }

  // Everything is the kernel's: the same counters as report(), read now.
  nlohmann::json live() override {
    if (snmp0_.empty()) return nullptr;  // not started
    const auto d = counter_delta(snmp0_, read_snmp());
    return {{"forwarded", counter(d, "Ip.ForwDatagrams")},
            {"drops", drops(d, counter_delta(netstat0_, read_netstat())).to_json()}};
  }

  nlohmann::json report() override {
    auto d = counter_delta(snmp0_, read_snmp());
    auto x = counter_delta(netstat0_, read_netstat());
    auto nd = counter_delta(netdev0_, read_netdev());
    nlohmann::json j;
    j["forwarded"] = counter(d, "Ip.ForwDatagrams");
    j["drops"] = drops(d, x).to_json();
    // Interface drop counters are the link stages, which the harness counts around every
    // method from /proc/net/dev; repeating them under "drops" would count them twice.
    j["interfaces"] = nlohmann::json::object();
    for (const std::string& i : {in_, out_})
      j["interfaces"][i] = {{"rx_drop", counter(nd, i + ".rx_drop")},
                            {"tx_drop", counter(nd, i + ".tx_drop")},
                            {"rx_packets", counter(nd, i + ".rx_packets")},
                            {"tx_packets", counter(nd, i + ".tx_packets")}};
    j["kernel"] = {{"ip_in_receives", counter(d, "Ip.InReceives")},
                   {"icmp_out_time_excds", counter(d, "Icmp.OutTimeExcds")}};
    return j;
  }

 private:
  const MethodInfo& info_;
  // Forwarding-path drops in the IP layer, from the snmp (`d`) and netstat (`x`) counters since
  // start(). InHdrErrors includes TTL expiry; InNoRoutes and InAddrErrors are destinations the
  // kernel would not forward.
  static DropLedger drops(const std::map<std::string, uint64_t>& d, const std::map<std::string, uint64_t>& x) {
    DropLedger drops;
    drops.add(DropStage::kProxyKernel, "ip_in_hdr_errors", counter(d, "Ip.InHdrErrors"));
    drops.add(DropStage::kProxyKernel, "ip_in_addr_errors", counter(d, "Ip.InAddrErrors"));
    drops.add(DropStage::kProxyKernel, "ip_in_no_routes", counter(x, "IpExt.InNoRoutes"));
    drops.add(DropStage::kProxyKernel, "ip_in_discards", counter(d, "Ip.InDiscards"));
    drops.add(DropStage::kProxyKernel, "ip_out_discards", counter(d, "Ip.OutDiscards"));
    drops.add(DropStage::kProxyKernel, "ip_out_no_routes", counter(d, "Ip.OutNoRoutes"));
    drops.add(DropStage::kProxyKernel, "ip_frag_fails", counter(d, "Ip.FragFails"));
    return drops;
  }
  static constexpr const char* kIpForward = "/proc/sys/net/ipv4/ip_forward";
  std::string in_, out_;
  std::string previous_;  // value to restore, if start() changed it
  std::map<std::string, uint64_t> snmp0_, netstat0_, netdev0_;
};

}  // namespace

std::unique_ptr<ProxyMethod> make_kernel_socket_relay(const MethodInfo& info) {
  return std::make_unique<KernelSocketRelay>(info);
}
std::unique_ptr<ProxyMethod> make_kernel_forward(const MethodInfo& info) {
  return std::make_unique<KernelForward>(info);
}

}  // namespace ulsnet
