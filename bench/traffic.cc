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
#include <cstdint>
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
    for (uint32_t i = 0; i < n; ++i) {
      // Each datagram's own send time, read as it is written (sendmmsg then sends the batch in
      // order, about a microsecond apart: that wait is part of the measured delay).
      fill_payload(bufs[i].data(), cfg.payload, cfg.run_id, seq + i, monotonic_ns());
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
  j["tx_timestamp"] = "per datagram: CLOCK_MONOTONIC read as it is written into the sendmmsg batch";
  j["sent"] = sent;
  j["attempted"] = seq;
  j["send_errors"] = errors;
  j["duration_s"] = dur;
  j["achieved_pps"] = dur > 0 ? double(sent) / dur : 0;
  j["netdev"] = nd;
  return j;
}

SinkStats::SinkStats(const SinkConfig& cfg) : cfg_(cfg), delays_(cfg.max_seq) {}

void SinkStats::on_datagram(const uint8_t* p, uint32_t len, bool truncated, uint64_t rx_ns) {
  uint64_t seq, sent_ns;
  if (truncated || !check_payload(p, len, cfg_.run_id, seq, sent_ns) || seq >= cfg_.max_seq) {
    ++corrupted_;
    return;
  }
  if (seq >= seen_.size()) seen_.resize(std::min<uint64_t>(cfg_.max_seq, std::max<uint64_t>(seq + 1, 2 * seen_.size() + 4096)), 0);
  if (seen_[seq]) {
    ++dup_;
    return;
  }
  seen_[seq] = 1;
  ++received_;
  if (any_ && seq < max_seq_) ++reordered_;
  max_seq_ = std::max(max_seq_, seq);
  if (!any_) first_sent_ns_ = sent_ns;
  any_ = true;
  if (cfg_.warmup_s > 0 && double(int64_t(sent_ns - first_sent_ns_)) < cfg_.warmup_s * 1e9) delays_.record_warmup();
  else if (rx_ns == 0) delays_.record_untimed();
  else delays_.record(seq, int64_t(rx_ns) - int64_t(sent_ns));
}

nlohmann::json SinkStats::report() {
  nlohmann::json j = delays_.report();
  j["latency_ns"]["warmup_s"] = cfg_.warmup_s;
  j["received"] = received_;
  j["duplicates"] = dup_;
  j["reordered"] = reordered_;
  j["corrupted"] = corrupted_;
  return j;
}

namespace {

// CLOCK_REALTIME - CLOCK_MONOTONIC now (SO_TIMESTAMPNS gives realtime; the payload's send time
// is monotonic): a realtime read between two monotonic reads, taken from the tightest of a few
// such brackets. One bracket is not enough: a preemption between its reads (two cores, busy)
// moves the midpoint by half the preemption, and a 54 us one once turned a datagram's delay
// negative (-27 us) in CI; the clocks' true offset only moves when realtime is stepped.
int64_t realtime_minus_monotonic() {
  auto ns = [](const timespec& t) { return int64_t(t.tv_sec) * 1'000'000'000 + t.tv_nsec; };
  int64_t best = 0;
  int64_t best_window = INT64_MAX;
  for (int i = 0; i < 16 && best_window > 2'000; ++i) {
    timespec a, r, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    clock_gettime(CLOCK_REALTIME, &r);
    clock_gettime(CLOCK_MONOTONIC, &b);
    const int64_t window = ns(b) - ns(a);
    if (window < best_window) {
      best_window = window;
      best = ns(r) - (ns(a) + ns(b)) / 2;
    }
  }
  return best;
}

}  // namespace

nlohmann::json run_sink(const SinkConfig& cfg, const std::atomic<bool>& stop,
                        const std::function<void()>& ready) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(std::string("sink socket: ") + std::strerror(errno));
  set_socket_buffers(fd, 16 << 20, true, false);
  const int on = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on) != 0) {
    int e = errno;
    close(fd);
    throw std::runtime_error(std::string("sink SO_TIMESTAMPNS: ") + std::strerror(e));
  }
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
  constexpr size_t kCtl = CMSG_SPACE(sizeof(timespec));
  std::vector<uint8_t> ctl(kBatch * kCtl);
  SinkStats st(cfg);
  pollfd pfd{fd, POLLIN, 0};
  const uint64_t hard_end = monotonic_ns() + uint64_t(cfg.max_duration_s * 1e9);
  // Until stopped; then what is already queued on the socket arrived and is read too (bounded).
  int drained_empty = 0;
  uint64_t end = hard_end;
  for (bool stopping = false; monotonic_ns() < end && drained_empty < 3;) {
    if (!stopping && stop.load(std::memory_order_relaxed)) {
      stopping = true;
      end = std::min<uint64_t>(end, monotonic_ns() + 500'000'000ull);
    }
    for (uint32_t i = 0; i < kBatch; ++i) {
      iov[i] = {bufs[i].data(), bufs[i].size()};
      msgs[i] = {};
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_control = ctl.data() + i * kCtl;
      msgs[i].msg_hdr.msg_controllen = kCtl;
    }
    int n = recvmmsg(fd, msgs.data(), kBatch, MSG_DONTWAIT, nullptr);
    if (n <= 0) {
      if (stopping) ++drained_empty;
      poll(&pfd, 1, stopping ? 1 : 10);
      continue;
    }
    // Each datagram's receive time is the kernel's (taken when it reached the receiver's
    // interface queue), converted from realtime with the clocks' offset now.
    const int64_t offset = realtime_minus_monotonic();
    for (int i = 0; i < n; ++i) {
      uint64_t rx = 0;
      for (cmsghdr* c = CMSG_FIRSTHDR(&msgs[i].msg_hdr); c; c = CMSG_NXTHDR(&msgs[i].msg_hdr, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
          timespec t;
          std::memcpy(&t, CMSG_DATA(c), sizeof t);
          const int64_t real = int64_t(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
          if (real > offset) rx = uint64_t(real - offset);
        }
      st.on_datagram(bufs[i].data(), msgs[i].msg_len, (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) != 0, rx);
    }
    if (cfg.received_so_far) cfg.received_so_far->store(st.received(), std::memory_order_relaxed);
  }
  close(fd);
  auto d = counter_delta(snmp0, read_snmp());
  nlohmann::json j = st.report();
  j["sink"] = "socket";
  j["rx_timestamp"] = "per datagram: the kernel's receive time (SO_TIMESTAMPNS), realtime converted to monotonic";
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
