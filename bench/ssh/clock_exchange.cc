#include "bench/ssh/clock_exchange.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>

#include "stack/clock.h"

namespace ulsnet::ssh {
namespace {

int64_t now() { return int64_t(monotonic_ns()); }

}  // namespace

ClockResponder::ClockResponder(uint16_t port, uint32_t run_id) : port_(port), run_id_(run_id) {
  fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    error_ = "UDP port " + std::to_string(port) + ": " + std::strerror(errno);
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
    return;
  }
  socklen_t al = sizeof a;
  if (getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &al) == 0) port_ = ntohs(a.sin_port);
  thread_ = std::thread([this] {
    while (!done_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 20) <= 0) continue;
      ClockMessage m;
      sockaddr_in from{};
      socklen_t fl = sizeof from;
      const ssize_t n = recvfrom(fd_, &m, sizeof m, 0, reinterpret_cast<sockaddr*>(&from), &fl);
      const int64_t t2 = now();
      if (n != ssize_t(sizeof m) || m.magic != kClockMagic || m.type != 1 || m.run_id != run_id_) continue;
      m.type = 2;
      m.t2 = t2;
      m.t3 = now();
      if (sendto(fd_, &m, sizeof m, 0, reinterpret_cast<sockaddr*>(&from), fl) == ssize_t(sizeof m)) ++answered_;
    }
  });
}

ClockResponder::~ClockResponder() {
  done_ = true;
  if (thread_.joinable()) thread_.join();
  if (fd_ >= 0) close(fd_);
}

nlohmann::json ClockResponder::report() const {
  if (!error_.empty()) return {{"port", port_}, {"error", error_}};
  return {{"port", port_}, {"answered", answered_.load()}};
}

std::vector<SyncSample> exchange_clocks(const std::string& peer, uint16_t port, uint32_t run_id, int n, int gap_ms,
                                        int timeout_ms) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  if (inet_pton(AF_INET, peer.c_str(), &a.sin_addr) != 1)
    throw std::runtime_error("clock peer '" + peer + "' is not an IPv4 address");
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    const std::string why = std::strerror(errno);
    if (fd >= 0) close(fd);
    throw std::runtime_error("clock socket to " + peer + ": " + why);
  }
  std::vector<SyncSample> out;
  int unanswered = 0;
  for (int i = 0; i < n && !(out.empty() && unanswered >= 3); ++i) {  // nobody there: give up after 3
    ClockMessage q;
    q.type = 1;
    q.run_id = run_id;
    q.seq = uint64_t(i) + 1;
    q.t1 = now();
    if (send(fd, &q, sizeof q, 0) == ssize_t(sizeof q)) {
      const int64_t end = q.t1 + int64_t(timeout_ms) * 1000000;
      for (int64_t left; (left = end - now()) > 0;) {
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, int(left / 1000000) + 1) <= 0) continue;
        ClockMessage r;
        const ssize_t k = recv(fd, &r, sizeof r, 0);  // ECONNREFUSED: nobody listens there (yet)
        const int64_t t4 = now();
        if (k == ssize_t(sizeof r) && r.magic == kClockMagic && r.type == 2 && r.run_id == run_id && r.seq == q.seq) {
          out.push_back({r.t1, r.t2, r.t3, t4});
          break;
        }
        if (k < 0) break;
      }
    }
    if (out.empty()) ++unanswered;
    if (gap_ms > 0 && i + 1 < n) usleep(useconds_t(gap_ms) * 1000);
  }
  close(fd);
  return out;
}

nlohmann::json offset_or_error(const std::vector<SyncSample>& samples, const std::string& peer, uint16_t port) {
  if (auto o = estimate_clock_offset(samples)) return to_json(*o);
  return {{"error", "no answer from the receiver's clock responder at " + peer + ":" + std::to_string(port)}};
}

}  // namespace ulsnet::ssh
