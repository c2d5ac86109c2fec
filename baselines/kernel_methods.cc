// kernel-socket and kernel-forward: the methods where the proxy's kernel does the protocol work.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <vector>

#include "baselines/proc_counters.h"
#include "baselines/proxy_method.h"
#include "stack/socket_buffers.h"

namespace ulsnet {
namespace {

int udp_socket_bound(Ipv4Addr ip, uint16_t port) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw MethodError(std::string("kernel-socket: socket: ") + std::strerror(errno));
  set_socket_buffers(fd, 8 << 20, true, true);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(ip.v);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    int e = errno;
    close(fd);
    throw MethodError("kernel-socket: bind " + ip.str() + ":" + std::to_string(port) + ": " +
                      std::strerror(e) + " (does the proxy's kernel own this address?)");
  }
  return fd;
}

nlohmann::json udp_kernel_drops(const std::map<std::string, uint64_t>& d) {
  nlohmann::json j = nlohmann::json::object();
  for (const char* k : {"Udp.RcvbufErrors", "Udp.InCsumErrors", "Udp.NoPorts", "Udp.SndbufErrors"})
    if (auto it = d.find(k); it != d.end() && it->second) j[k] = it->second;
  // InErrors includes RcvbufErrors and InCsumErrors: report only the remainder, no double count.
  auto get = [&](const char* k) { auto it = d.find(k); return it == d.end() ? 0 : it->second; };
  uint64_t rest = get("Udp.InErrors") - std::min(get("Udp.InErrors"),
                                                 get("Udp.RcvbufErrors") + get("Udp.InCsumErrors"));
  if (rest) j["Udp.InErrors_other"] = rest;
  return j;
}

// UDP relay on kernel sockets. The kernel does all protocol work; each datagram is copied into
// user memory and back out.
class KernelSocketRelay final : public ProxyMethod {
 public:
  void start(const ProxyConfig& cfg) override {
    if (cfg.mode != ForwardMode::kRelay) throw MethodError("kernel-socket supports relay mode only");
    batched_ = cfg.variant.empty() || cfg.variant == "batched";
    if (!batched_ && cfg.variant != "per-datagram")
      throw MethodError("kernel-socket: unknown variant '" + cfg.variant +
                        "' (batched, per-datagram)");
    batch_ = std::max<uint32_t>(1, cfg.batch);
    in_ = udp_socket_bound(cfg.in.ip, cfg.relay_port);
    out_ = udp_socket_bound(cfg.out.ip, 0);
    dst_.sin_family = AF_INET;
    dst_.sin_port = htons(cfg.relay_to_port);
    dst_.sin_addr.s_addr = htonl(cfg.out.peer_ip.v);
    snmp0_ = read_snmp();
  }
  ~KernelSocketRelay() override {
    if (in_ >= 0) close(in_);
    if (out_ >= 0) close(out_);
  }
  void run(const std::atomic<bool>& stop) override {
    std::vector<std::vector<uint8_t>> bufs(batch_, std::vector<uint8_t>(2048));
    std::vector<mmsghdr> rx(batch_), tx(batch_);
    std::vector<iovec> iov(batch_);
    pollfd pfd{in_, POLLIN, 0};
    while (!stop.load(std::memory_order_relaxed)) {
      int n;
      if (batched_) {
        for (uint32_t i = 0; i < batch_; ++i) {
          iov[i] = {bufs[i].data(), bufs[i].size()};
          rx[i] = {};
          rx[i].msg_hdr.msg_iov = &iov[i];
          rx[i].msg_hdr.msg_iovlen = 1;
        }
        ++syscalls_;
        n = recvmmsg(in_, rx.data(), batch_, MSG_DONTWAIT, nullptr);
      } else {
        ++syscalls_;
        ssize_t r = recv(in_, bufs[0].data(), bufs[0].size(), MSG_DONTWAIT);
        n = r < 0 ? -1 : 1;
        if (r >= 0) rx[0].msg_len = unsigned(r);
      }
      if (n <= 0) {
        ++idle_waits_;
        poll(&pfd, 1, 10);
        continue;
      }
      received_ += uint64_t(n);
      if (batched_) {
        for (int i = 0; i < n; ++i) {
          iov[i].iov_len = rx[i].msg_len;
          tx[i] = {};
          tx[i].msg_hdr.msg_iov = &iov[i];
          tx[i].msg_hdr.msg_iovlen = 1;
          tx[i].msg_hdr.msg_name = &dst_;
          tx[i].msg_hdr.msg_namelen = sizeof dst_;
        }
        int done = 0;
        while (done < n) {
          ++syscalls_;
          int s = sendmmsg(out_, tx.data() + done, unsigned(n - done), 0);
          if (s <= 0) {  // the remainder cannot be sent now: counted, not retried forever
            send_failed_ += uint64_t(n - done);
            break;
          }
          done += s;
        }
        forwarded_ += uint64_t(done);
      } else {
        ++syscalls_;
        if (sendto(out_, bufs[0].data(), rx[0].msg_len, 0, reinterpret_cast<sockaddr*>(&dst_),
                   sizeof dst_) == ssize_t(rx[0].msg_len))
          ++forwarded_;
        else
          ++send_failed_;
      }
    }
  }
  nlohmann::json report() override {
    auto d = counter_delta(snmp0_, read_snmp());
    nlohmann::json j;
    j["forwarded"] = forwarded_;
    j["received"] = received_;
    j["drops"]["proxy_kernel"] = udp_kernel_drops(d);
    j["drops"]["proxy_tx"] = nlohmann::json::object();
    if (send_failed_) j["drops"]["proxy_tx"]["send_failed"] = send_failed_;
    j["syscalls"] = syscalls_;
    j["copies"] = 2 * forwarded_;  // kernel -> user on receive, user -> kernel on send
    j["idle_waits"] = idle_waits_;
    j["device_mode"] = "kernel-socket";
    return j;
  }

 private:
  bool batched_ = true;
  uint32_t batch_ = 32;
  int in_ = -1, out_ = -1;
  sockaddr_in dst_{};
  std::map<std::string, uint64_t> snmp0_;
  uint64_t received_ = 0, forwarded_ = 0, send_failed_ = 0, syscalls_ = 0, idle_waits_ = 0;
};

// The kernel's own IP forwarding: the reference for router mode.
class KernelForward final : public ProxyMethod {
 public:
  void start(const ProxyConfig& cfg) override {
    if (cfg.mode != ForwardMode::kRouter)
      throw MethodError("kernel-forward supports router mode only");
    std::ofstream f("/proc/sys/net/ipv4/ip_forward");
    f << "1\n";
    f.flush();
    if (!f) throw MethodError("kernel-forward: cannot write /proc/sys/net/ipv4/ip_forward (root?)");
    snmp0_ = read_snmp();
  }
  void run(const std::atomic<bool>& stop) override {
    while (!stop.load(std::memory_order_relaxed)) usleep(10000);
  }
  nlohmann::json report() override {
    auto d = counter_delta(snmp0_, read_snmp());
    nlohmann::json j;
    j["forwarded"] = d["Ip.ForwDatagrams"];
    nlohmann::json k = nlohmann::json::object();
    for (const char* n : {"Ip.InDiscards", "Ip.InHdrErrors", "Ip.InAddrErrors", "Ip.OutDiscards",
                          "Ip.OutNoRoutes", "Ip.InUnknownProtos"})
      if (d[n]) k[n] = d[n];
    // Interface drop counters are link stages, counted by the harness around every method.
    j["drops"]["proxy_kernel"] = k;
    j["device_mode"] = "kernel";
    return j;
  }

 private:
  std::map<std::string, uint64_t> snmp0_;
};

}  // namespace

std::unique_ptr<ProxyMethod> make_kernel_socket_relay() {
  return std::make_unique<KernelSocketRelay>();
}
std::unique_ptr<ProxyMethod> make_kernel_forward() { return std::make_unique<KernelForward>(); }

}  // namespace ulsnet
