#include "bench/xdp_generator.h"

#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <net/if.h>
#include <sys/utsname.h>

#include <cerrno>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "baselines/proc_counters.h"
#include "bench/topology.h"
#include "bench/xdp_gen_bpf.h"
#include "stack/bpf_loader.h"
#include "stack/clock.h"
#include "stack/protocols.h"

namespace ulsnet {
namespace {

// Mirrors struct gen_config in the BPF program.
struct GenConfig {
  uint64_t next_seq, limit, sent, over_limit, malformed, deadline_ns, late;
};

// Sum of the interface's XDP transmit error counters (veth: "xdp_xmit_err" per queue).
uint64_t xdp_xmit_errors(const std::string& ifname) {
  std::string out;
  try {
    out = run_command("ethtool -S " + ifname + " 2>/dev/null");
  } catch (const std::exception&) {
    return 0;
  }
  std::istringstream in(out);
  std::string line;
  uint64_t n = 0;
  while (std::getline(in, line)) {
    auto c = line.find(':');
    if (c == std::string::npos) continue;
    std::string key = line.substr(0, c);
    if (key.find("xdp_xmit_err") == std::string::npos && key.find("xdp_tx_err") == std::string::npos)
      continue;
    n += std::strtoull(line.c_str() + c + 1, nullptr, 10);
  }
  return n;
}

}  // namespace

std::string xdp_generator_unsupported_reason() {
  utsname u{};
  uname(&u);
  int major = 0, minor = 0;
  std::sscanf(u.release, "%d.%d", &major, &minor);
  if (major < 5 || (major == 5 && minor < 18))
    return std::string("kernel ") + u.release + " has no BPF_F_TEST_XDP_LIVE_FRAMES (needs 5.18+)";
  return "";
}

nlohmann::json run_xdp_generator(const XdpGeneratorConfig& cfg, const std::atomic<bool>& stop) {
  const GeneratorConfig& g = cfg.gen;
  if (g.payload < kMinPayload || g.payload > kMaxPayload)
    throw std::invalid_argument("payload must be within [" + std::to_string(kMinPayload) + ", " +
                                std::to_string(kMaxPayload) + "] bytes");
  if (g.rate_pps > 0)
    throw std::invalid_argument(
        "xdp-live generator: max load only (a BPF_PROG_RUN call costs ~25 ms here, so paced "
        "sending would come in bursts; use the socket generator for fixed rates)");
  if (std::string why = xdp_generator_unsupported_reason(); !why.empty())
    throw std::runtime_error("xdp-live generator: " + why);
  const int ifindex = int(if_nametoindex(cfg.ifname.c_str()));
  if (ifindex == 0) throw std::runtime_error("xdp-live generator: no such interface " + cfg.ifname);

  // The template: every frame starts as this, the program stamps seq, time and pattern.
  const uint32_t udp_len = 8 + g.payload, ip_len = 20 + udp_len, frame_len = 14 + ip_len;
  std::vector<uint8_t> frame(frame_len, 0);
  write_eth(frame.data(), cfg.dst_mac, cfg.src_mac, kEtherTypeIpv4);
  write_ipv4(frame.data() + 14, cfg.src_ip, g.dst, kProtoUdp, uint16_t(ip_len), 64);
  uint8_t* udp = frame.data() + 34;
  store_be16(udp, cfg.src_port);
  store_be16(udp + 2, g.dst_port);
  store_be16(udp + 4, uint16_t(udp_len));
  store_be16(udp + 6, 0);  // no checksum
  fill_payload(udp + 8, g.payload, g.run_id, 0, 0);

  BpfObject obj(kXdpGenBpf, kXdpGenBpfSize, "xdp_gen");
  const int prog = obj.program_fd("xdp_gen");
  const int map = obj.map_fd("gen_config_map");
  auto netdev0 = read_netdev();
  const uint64_t xmit_err0 = xdp_xmit_errors(cfg.ifname);
  std::map<std::string, uint64_t> errors;
  uint64_t runs = 0;
  const uint64_t start = monotonic_ns();
  const uint64_t end = start + uint64_t(g.duration_s * 1e9);
  GenConfig gc{};
  gc.limit = g.count;
  gc.deadline_ns = end;
  uint32_t zero = 0;
  if (bpf_map_update_elem(map, &zero, &gc, 0) != 0)
    throw std::runtime_error(std::string("xdp-live generator: config map: ") + std::strerror(errno));
  while (!stop.load(std::memory_order_relaxed) && monotonic_ns() < end) {
    if (bpf_map_lookup_elem(map, &zero, &gc) == 0 && gc.next_seq >= g.count) break;
    const uint64_t n = cfg.frames_per_run;
    xdp_md ctx{};
    ctx.data_end = frame_len;
    ctx.ingress_ifindex = uint32_t(ifindex);
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(), .data_size_in = frame_len,
                .ctx_in = &ctx, .ctx_size_in = sizeof ctx, .repeat = int(n),
                .flags = BPF_F_TEST_XDP_LIVE_FRAMES, .batch_size = 64);
    ++runs;
    if (int rc = bpf_prog_test_run_opts(prog, &opts); rc != 0) {
      if (runs == 1)
        throw std::runtime_error(std::string("xdp-live generator: BPF_PROG_RUN (live frames): ") +
                                 std::strerror(-rc));
      ++errors[strerrorname_np(-rc) ? strerrorname_np(-rc) : "unknown"];
      break;
    }
  }
  const double dur = double(monotonic_ns() - start) / 1e9;
  if (bpf_map_lookup_elem(map, &zero, &gc) != 0) gc = {};
  const uint64_t xmit_err = xdp_xmit_errors(cfg.ifname) - xmit_err0;
  // Frames the program passed to XDP_TX but the kernel could not transmit: send errors.
  if (xmit_err) errors["xdp_xmit_err"] += xmit_err;
  const uint64_t sent = gc.sent - std::min(gc.sent, xmit_err);
  nlohmann::json j;
  j["generator"] = "xdp-live";
  j["udp_checksum"] = "none";
  j["sent"] = sent;
  j["attempted"] = gc.sent;
  j["send_errors"] = errors;
  j["xmit_errors"] = xmit_err;
  j["over_limit"] = gc.over_limit;
  j["late"] = gc.late;
  j["prog_runs"] = runs;
  j["duration_s"] = dur;
  j["achieved_pps"] = dur > 0 ? double(sent) / dur : 0;
  j["netdev"] = counter_delta(netdev0, read_netdev());
  return j;
}

}  // namespace ulsnet
