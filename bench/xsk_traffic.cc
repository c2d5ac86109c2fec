#include "bench/xsk_traffic.h"

#include <poll.h>
#include <time.h>
#include <unistd.h>

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
    for (size_t i = 0; i < got; ++i) {
      Frame& f = frames[i];
      std::memcpy(f.data, hdr, sizeof hdr);
      uint8_t* u = f.data + 34;
      // Each frame's own send time, read as it is written (the burst then goes on the TX ring).
      fill_payload(u + 8, g.payload, g.run_id, seq + i, monotonic_ns());
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
  const double dur = double(monotonic_ns() - start) / 1e9;
  // Every frame on the TX ring must come back on the completion ring (the kernel took it: sent,
  // or dropped and counted by the interface) before the socket closes: closing discards what is
  // still on the ring, unsent and uncounted. Bounded; what never completed is a send error.
  const uint64_t wait_end = monotonic_ns() + 500'000'000ull;
  while (dev.counters().tx_outstanding > 0 && monotonic_ns() < wait_end) {
    dev.tx_burst({});
    if (dev.counters().tx_outstanding > 0) usleep(200);
  }
  if (const uint64_t left = dev.counters().tx_outstanding; left > 0) {
    errors["af_xdp_tx_not_completed"] += left;
    sent -= std::min(sent, left);
  }
  nlohmann::json j;
  j["generator"] = "af_xdp";
  j["tx_timestamp"] = "per frame: CLOCK_MONOTONIC read as it is written into its umem frame, then the burst goes on the TX ring";
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
  // Deep rings: the sink shares its CPU with the generator (and the receiver's NAPI thread),
  // and what it fails to take in time is a loss of the measurement, not of the proxy. 16384
  // chunks and an 8192-slot RX ring hold 50 ms at 160 kpps.
  XskUmemOptions uo;
  uo.fill_size = 8192;
  auto umem = std::make_shared<XskUmem>(16384, uo);
  AfXdpOptions o;
  o.steer_arp = false;  // the receiver's kernel answers ARP for its address
  o.batch = 64;
  o.rx_size = 8192;
  o.rx_timestamp = true;
  AfXdpDevice dev(cfg.ifname, umem, o);
  auto netdev0 = read_netdev();
  ready();
  SinkStats st(cfg.sink);
  uint64_t not_ours = 0, bad_udp = 0;
  std::vector<Frame> rx(64);
  // One frame: parsed, its UDP checksum and payload checked, recorded, released.
  auto take = [&](const Frame& f) {
    const uint64_t rx_ns = AfXdpDevice::take_rx_timestamp(f);
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
        st.on_datagram(seg.data() + kUdpHeaderLen, udp.length - kUdpHeaderLen, false, rx_ns);
      }
    }
    f.release();
  };
  pollfd pfd{dev.wait_fd(), POLLIN, 0};
  const uint64_t hard_end = monotonic_ns() + uint64_t(cfg.sink.max_duration_s * 1e9);
  while (!stop.load(std::memory_order_relaxed) && monotonic_ns() < hard_end) {
    const size_t n = dev.rx_burst(rx);
    if (n == 0) {
      poll(&pfd, 1, 10);
      continue;
    }
    for (size_t i = 0; i < n; ++i) take(rx[i]);
  }
  // Stopped: what already reached the socket's RX ring arrived, and is counted (bounded).
  for (int empty = 0, i = 0; empty < 3 && i < 10000; ++i) {
    const size_t n = dev.rx_burst(rx);
    if (n == 0) {
      ++empty;
      usleep(1000);
      continue;
    }
    empty = 0;
    for (size_t k = 0; k < n; ++k) take(rx[k]);
  }
  nlohmann::json j = st.report();
  AfXdpCounters c = dev.counters();
  j["sink"] = "af_xdp";
  j["rx_timestamp"] = "per frame: bpf_ktime_get_ns() in the steering XDP program, passed in the frame's metadata";
  j["rx_no_timestamp"] = c.rx_no_timestamp;
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
