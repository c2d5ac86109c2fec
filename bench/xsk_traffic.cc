#include "bench/xsk_traffic.h"

#include <poll.h>
#include <time.h>

#include <cstring>
#include <map>
#include <memory>
#include <stdexcept>
#include <vector>

#include "baselines/proc_counters.h"
#include "stack/af_xdp_device.h"
#include "stack/clock.h"
#include "stack/protocols.h"

namespace ulsnet {
namespace {

void sleep_until(uint64_t t) {
  timespec ts{time_t(t / 1'000'000'000ull), long(t % 1'000'000'000ull)};
  clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr);
}

}  // namespace

nlohmann::json run_xsk_generator(const XskGeneratorConfig& cfg, const std::atomic<bool>& stop) {
  const GeneratorConfig& g = cfg.gen;
  if (g.payload < kMinPayload || g.payload > kMaxPayload)
    throw std::invalid_argument("payload must be within [" + std::to_string(kMinPayload) + ", " +
                                std::to_string(kMaxPayload) + "] bytes");
  auto umem = std::make_shared<XskUmem>(8192);
  AfXdpOptions o;
  o.steer_arp = false;        // the sender's kernel keeps answering ARP
  o.steer_ipv4_dst = 0xffffffff;  // steer nothing in: this socket only transmits
  o.batch = std::max<uint32_t>(g.batch, 1);
  AfXdpDevice dev(cfg.ifname, umem, o);

  const uint32_t udp_len = 8 + g.payload, ip_len = 20 + udp_len, frame_len = 14 + ip_len;
  uint8_t hdr[42];
  write_eth(hdr, cfg.dst_mac, cfg.src_mac, kEtherTypeIpv4);
  write_ipv4(hdr + 14, cfg.src_ip, g.dst, kProtoUdp, uint16_t(ip_len), 64);
  store_be16(hdr + 34, cfg.src_port);
  store_be16(hdr + 36, g.dst_port);
  store_be16(hdr + 38, uint16_t(udp_len));
  store_be16(hdr + 40, 0);

  const uint32_t batch = std::max<uint32_t>(1, g.batch);
  std::vector<Frame> frames(batch);
  std::map<std::string, uint64_t> errors;
  auto netdev0 = read_netdev();
  uint64_t seq = 0, sent = 0, no_buffer_waits = 0;
  const uint64_t start = monotonic_ns();
  const uint64_t end = start + uint64_t(g.duration_s * 1e9);
  while (seq < g.count && !stop.load(std::memory_order_relaxed)) {
    uint64_t now = monotonic_ns();
    if (now >= end) break;
    uint32_t n = uint32_t(std::min<uint64_t>(batch, g.count - seq));
    if (g.rate_pps > 0) {
      const uint64_t due = uint64_t(double(now - start) * g.rate_pps / 1e9) + 1;
      if (due <= seq) {
        sleep_until(std::min(end, start + uint64_t(double(seq) * 1e9 / g.rate_pps)));
        continue;
      }
      n = uint32_t(std::min<uint64_t>(n, due - seq));
    }
    const size_t got = dev.alloc_tx({frames.data(), n});
    if (got == 0) {
      // Every chunk is in flight: let completions come back (not a loss: nothing was numbered).
      ++no_buffer_waits;
      dev.tx_burst({});
      continue;
    }
    now = monotonic_ns();
    for (size_t i = 0; i < got; ++i) {
      Frame& f = frames[i];
      std::memcpy(f.data, hdr, sizeof hdr);
      uint8_t* u = f.data + 34;
      fill_payload(u + 8, g.payload, g.run_id, seq + i, now);
      store_be16(u + 6, udp_checksum(u, uint16_t(udp_len), cfg.src_ip, g.dst));
      f.len = frame_len;
    }
    const uint64_t dropped0 = dev.stats().tx_dropped;
    const size_t queued = dev.tx_burst({frames.data(), got});
    const uint64_t dropped = dev.stats().tx_dropped - dropped0;
    if (dropped) errors["af_xdp_tx_ring_full"] += dropped;
    sent += queued;
    seq += got;
  }
  // Let the last burst's completions arrive so the chunks are accounted (bounded).
  for (int i = 0; i < 100 && umem->available() + 64 < umem->chunks() / 2; ++i) dev.tx_burst({});
  const double dur = double(monotonic_ns() - start) / 1e9;
  nlohmann::json j;
  j["generator"] = "af_xdp";
  j["bind_mode"] = dev.mode_reason();
  j["sent"] = sent;
  j["attempted"] = seq;
  j["send_errors"] = errors;
  j["no_buffer_waits"] = no_buffer_waits;
  j["duration_s"] = dur;
  j["achieved_pps"] = dur > 0 ? double(sent) / dur : 0;
  j["netdev"] = counter_delta(netdev0, read_netdev());
  return j;
}

nlohmann::json run_xsk_sink(const XskSinkConfig& cfg, const std::atomic<bool>& stop,
                            const std::function<void()>& ready) {
  auto umem = std::make_shared<XskUmem>(8192);
  AfXdpOptions o;
  o.steer_arp = false;  // the receiver's kernel answers ARP for its address
  o.batch = 64;
  AfXdpDevice dev(cfg.ifname, umem, o);
  auto netdev0 = read_netdev();
  ready();
  SinkStats st(cfg.sink);
  uint64_t not_ours = 0, bad_udp = 0;
  std::vector<Frame> rx(64);
  pollfd pfd{dev.wait_fd(), POLLIN, 0};
  const uint64_t hard_end = monotonic_ns() + uint64_t(cfg.sink.max_duration_s * 1e9);
  while (!stop.load(std::memory_order_relaxed) && monotonic_ns() < hard_end) {
    const size_t n = dev.rx_burst(rx);
    if (n == 0) {
      poll(&pfd, 1, 10);
      continue;
    }
    const uint64_t now = monotonic_ns();
    for (size_t i = 0; i < n; ++i) {
      const Frame& f = rx[i];
      EthView eth;
      Ipv4View ip;
      UdpView udp;
      std::span<const uint8_t> b = f.bytes();
      if (parse_eth(b, eth) || eth.ethertype != kEtherTypeIpv4 ||
          parse_ipv4(b.subspan(kEthHeaderLen), ip) || ip.protocol != kProtoUdp) {
        ++not_ours;
      } else {
        auto seg = b.subspan(kEthHeaderLen + ip.header_len, ip.total_len - ip.header_len);
        if (parse_udp(seg, ip.src, ip.dst, true, udp)) {
          ++bad_udp;  // malformed or wrong checksum: the kernel would count InCsumErrors
        } else if (udp.dst_port != cfg.sink.port) {
          ++not_ours;
        } else {
          st.on_datagram(seg.data() + kUdpHeaderLen, udp.length - kUdpHeaderLen, false, now);
        }
      }
      f.release();
    }
  }
  nlohmann::json j = st.report();
  AfXdpCounters c = dev.counters();
  j["sink"] = "af_xdp";
  j["bind_mode"] = dev.mode_reason();
  // Steered to the sink but dropped before it could read them, and datagrams it refused.
  nlohmann::json k = nlohmann::json::object();
  if (c.rx_dropped) k["xsk_rx_dropped"] = c.rx_dropped;
  if (c.rx_ring_full) k["xsk_rx_ring_full"] = c.rx_ring_full;
  if (c.redirect_failed) k["xsk_redirect_failed"] = c.redirect_failed;
  if (bad_udp) k["udp_malformed_or_bad_checksum"] = bad_udp;
  j["receiver_kernel"] = k;
  j["not_ours"] = not_ours;
  // The interface counts these too (as rx_dropped): the harness takes them out of the link stage.
  j["rx_redirect_failed"] = c.rx_dropped + c.rx_ring_full;
  j["netdev"] = counter_delta(netdev0, read_netdev());
  return j;
}

}  // namespace ulsnet
