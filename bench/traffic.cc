#include "bench/traffic.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "baselines/proc_counters.h"
#include "stack/clock.h"
#include "stack/socket_buffers.h"

namespace ulsnet {

void fill_payload(uint8_t* p, uint32_t len, uint32_t run_id, uint64_t seq, uint64_t send_ns) {
  uint32_t magic = kPayloadMagic;
  std::memcpy(p, &magic, 4);
  std::memcpy(p + 4, &run_id, 4);
  store_le64(p + 8, seq);
  store_le64(p + 16, send_ns);
  for (uint32_t i = kPayloadHeader; i < len; ++i) p[i] = uint8_t(seq + i);
}

bool check_payload(const uint8_t* p, uint32_t len, uint32_t run_id, uint64_t& seq,
                   uint64_t& send_ns) {
  if (len < kPayloadHeader) return false;
  uint32_t magic, id;
  std::memcpy(&magic, p, 4);
  std::memcpy(&id, p + 4, 4);
  if (magic != kPayloadMagic || id != run_id) return false;
  seq = load_le64(p + 8);
  send_ns = load_le64(p + 16);
  for (uint32_t i = kPayloadHeader; i < len; ++i)
    if (p[i] != uint8_t(seq + i)) return false;
  return true;
}

namespace {
void sleep_until(uint64_t t_ns) {
  timespec ts{time_t(t_ns / 1000000000ull), long(t_ns % 1000000000ull)};
  clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr);
}
}  // namespace

nlohmann::json run_generator(const GeneratorConfig& cfg, const std::atomic<bool>& stop) {
  if (cfg.payload < kMinPayload || cfg.payload > kMaxPayload)
    throw std::invalid_argument("payload must be within [" + std::to_string(kMinPayload) + ", " +
                                std::to_string(kMaxPayload) + "] bytes");
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(std::string("generator socket: ") + std::strerror(errno));
  set_socket_buffers(fd, 4 << 20, false, true);
  timeval tv{0, 100000};  // a blocked send returns within 100 ms, so the time bound holds
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(cfg.dst_port);
  dst.sin_addr.s_addr = htonl(cfg.dst.v);
  if (connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0) {
    int e = errno;
    close(fd);
    throw std::runtime_error(std::string("generator connect: ") + std::strerror(e));
  }
  const uint32_t batch = std::max<uint32_t>(1, cfg.batch);
  std::vector<std::vector<uint8_t>> bufs(batch, std::vector<uint8_t>(cfg.payload));
  std::vector<iovec> iov(batch);
  std::vector<mmsghdr> msgs(batch);
  std::map<std::string, uint64_t> errors;
  auto netdev0 = read_netdev();
  uint64_t seq = 0, sent = 0;
  const uint64_t start = monotonic_ns();
  const uint64_t end = start + uint64_t(cfg.duration_s * 1e9);
  while (seq < cfg.count && !stop.load(std::memory_order_relaxed)) {
    uint64_t now = monotonic_ns();
    if (now >= end) break;
    uint32_t n = uint32_t(std::min<uint64_t>(batch, cfg.count - seq));
    if (cfg.rate_pps > 0) {
      // Paced: datagram i is due at start + i / rate; send what is due, sleep until the next.
      uint64_t due = uint64_t(double(now - start) * cfg.rate_pps / 1e9) + 1;
      if (due <= seq) {
        sleep_until(std::min(end, start + uint64_t(double(seq) * 1e9 / cfg.rate_pps)));
        continue;
      }
      n = uint32_t(std::min<uint64_t>(n, due - seq));
    }
    now = monotonic_ns();
    for (uint32_t i = 0; i < n; ++i) {
      fill_payload(bufs[i].data(), cfg.payload, cfg.run_id, seq + i, now);
      iov[i] = {bufs[i].data(), cfg.payload};
      msgs[i] = {};
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int r = sendmmsg(fd, msgs.data(), n, 0);
    if (r < 0) {
      // The first datagram of the batch failed: count it and move past it (every sequence
      // number is either sent or counted as a send error).
      errors[strerrorname_np(errno) ? strerrorname_np(errno) : "unknown"] += 1;
      ++seq;
      continue;
    }
    sent += uint64_t(r);
    seq += uint64_t(r);
  }
  const double dur = double(monotonic_ns() - start) / 1e9;
  close(fd);
  auto nd = counter_delta(netdev0, read_netdev());
  nlohmann::json j;
  j["generator"] = "socket";
  j["sent"] = sent;
  j["attempted"] = seq;
  j["send_errors"] = errors;
  j["duration_s"] = dur;
  j["achieved_pps"] = dur > 0 ? double(sent) / dur : 0;
  j["netdev"] = nd;
  return j;
}

SinkStats::SinkStats(const SinkConfig& cfg) : cfg_(cfg), seen_(cfg.max_seq, 0) {
  lat_.reserve(std::min<uint64_t>(cfg.max_seq, 4'000'000));
}

void SinkStats::on_datagram(const uint8_t* p, uint32_t len, bool truncated, uint64_t now) {
  uint64_t seq, sent_ns;
  if (truncated || !check_payload(p, len, cfg_.run_id, seq, sent_ns) || seq >= cfg_.max_seq) {
    ++corrupted_;
    return;
  }
  if (seen_[seq]) {
    ++dup_;
    return;
  }
  seen_[seq] = 1;
  ++received_;
  if (any_ && seq < max_seq_) ++reordered_;
  max_seq_ = std::max(max_seq_, seq);
  const int64_t transit = int64_t(now - sent_ns);
  if (lat_.size() < lat_.capacity()) lat_.push_back(uint64_t(std::max<int64_t>(transit, 0)));
  if (any_) jitter_ += (std::fabs(double(transit - prev_transit_)) - jitter_) / 16.0;  // RFC 3550
  prev_transit_ = transit;
  any_ = true;
}

nlohmann::json SinkStats::report() {
  nlohmann::json j;
  j["received"] = received_;
  j["duplicates"] = dup_;
  j["reordered"] = reordered_;
  j["corrupted"] = corrupted_;
  j["jitter_ns"] = jitter_;
  nlohmann::json l = nlohmann::json::object();
  if (!lat_.empty()) {
    std::sort(lat_.begin(), lat_.end());
    auto pct = [&](double q) { return lat_[std::min(lat_.size() - 1, size_t(q * double(lat_.size())))]; };
    double sum = 0;
    for (uint64_t v : lat_) sum += double(v);
    l = {{"p50", pct(0.5)},   {"p90", pct(0.9)},     {"p99", pct(0.99)},
         {"p999", pct(0.999)}, {"max", lat_.back()}, {"mean", sum / double(lat_.size())},
         {"samples", lat_.size()}};
  }
  j["latency_ns"] = l;
  return j;
}

nlohmann::json run_sink(const SinkConfig& cfg, const std::atomic<bool>& stop,
                        const std::function<void()>& ready) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(std::string("sink socket: ") + std::strerror(errno));
  set_socket_buffers(fd, 16 << 20, true, false);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(cfg.port);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    int e = errno;
    close(fd);
    throw std::runtime_error(std::string("sink bind: ") + std::strerror(e));
  }
  auto snmp0 = read_snmp();
  auto netdev0 = read_netdev();
  ready();
  constexpr uint32_t kBatch = 64;
  std::vector<std::vector<uint8_t>> bufs(kBatch, std::vector<uint8_t>(2048));
  std::vector<iovec> iov(kBatch);
  std::vector<mmsghdr> msgs(kBatch);
  SinkStats st(cfg);
  pollfd pfd{fd, POLLIN, 0};
  const uint64_t hard_end = monotonic_ns() + uint64_t(cfg.max_duration_s * 1e9);
  while (!stop.load(std::memory_order_relaxed) && monotonic_ns() < hard_end) {
    for (uint32_t i = 0; i < kBatch; ++i) {
      iov[i] = {bufs[i].data(), bufs[i].size()};
      msgs[i] = {};
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int n = recvmmsg(fd, msgs.data(), kBatch, MSG_DONTWAIT, nullptr);
    if (n <= 0) {
      poll(&pfd, 1, 10);
      continue;
    }
    const uint64_t now = monotonic_ns();
    for (int i = 0; i < n; ++i)
      st.on_datagram(bufs[i].data(), msgs[i].msg_len, (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) != 0, now);
  }
  close(fd);
  auto d = counter_delta(snmp0, read_snmp());
  nlohmann::json j = st.report();
  j["sink"] = "socket";
  nlohmann::json k = nlohmann::json::object();
  for (const char* n : {"Udp.RcvbufErrors", "Udp.InCsumErrors", "Udp.NoPorts", "Ip.InHdrErrors",
                        "Ip.InAddrErrors", "Ip.InDiscards"})
    if (d[n]) k[n] = d[n];
  uint64_t other = d["Udp.InErrors"] - std::min(d["Udp.InErrors"], d["Udp.RcvbufErrors"] + d["Udp.InCsumErrors"]);
  if (other) k["Udp.InErrors_other"] = other;
  j["receiver_kernel"] = k;
  j["netdev"] = counter_delta(netdev0, read_netdev());
  return j;
}

}  // namespace ulsnet
