// The in-kernel generator: frames built and transmitted from inside the kernel by running an
// XDP program (bench/bpf/xdp_gen.bpf.c) with BPF_PROG_RUN in live-frames mode
// (BPF_F_TEST_XDP_LIVE_FRAMES, Linux 5.18+) on the sender's interface. No socket, no skb and
// no system call per frame: about twice what a sendmmsg sender reaches on this machine, so the
// proxy rather than the sender is the bottleneck.
//
// Frames carry the same payload as the socket generator (bench/traffic.h), checked by the same
// sink; their UDP checksum is 0 ("none", valid in IPv4), which the report says.
// On veth the frames are redirected into the peer (the proxy's interface), which must be in
// NAPI mode (TopologyOptions::veth_napi), or the kernel drops them (counted as xmit errors).
#pragma once

#include <atomic>
#include <string>

#include <nlohmann/json.hpp>

#include "bench/traffic.h"
#include "stack/net_types.h"

namespace ulsnet {

struct XdpGeneratorConfig {
  GeneratorConfig gen;  // dst, dst_port, payload, count, duration_s, rate_pps, run_id
  std::string ifname;   // the sender's interface (in the calling thread's namespace)
  MacAddr src_mac, dst_mac;
  Ipv4Addr src_ip;
  uint16_t src_port = 5555;
  // Frames per BPF_PROG_RUN call. A call costs ~25 ms of set-up and tear-down here whatever
  // its size, so calls are large; the program drops frames run after the deadline.
  uint32_t frames_per_run = 262144;
};

// Whether this kernel can run the generator; empty if yes, else the reason.
std::string xdp_generator_unsupported_reason();

// Max load only (rate_pps must be 0: throws std::invalid_argument otherwise).
// Same result fields as run_generator, plus "generator": "xdp-live", "udp_checksum": "none",
// "xmit_errors" (frames the kernel failed to transmit after XDP_TX, from the interface's
// ethtool statistics; they are in send_errors too). Throws std::runtime_error if the kernel
// refuses (with the reason).
nlohmann::json run_xdp_generator(const XdpGeneratorConfig& cfg, const std::atomic<bool>& stop);

}  // namespace ulsnet
