// Generator and sink on AF_XDP sockets: the experiment's endpoints made cheap enough that the
// proxy, not the sender or receiver, limits the rate (on this 2-core machine the sender and
// the receiver share one CPU).
//
// Generator: frames (Ethernet + IPv4 + UDP with a full checksum + the payload of bench/
// traffic.h) are written straight into the socket's umem and transmitted in bursts; paced like
// the socket generator (datagram i due at start + i / rate) or as fast as possible. Every
// sequence number is either transmitted or counted as a send error with its reason.
// Sink: the receiver's interface steers IPv4 to our MAC into the socket (ARP stays with the
// kernel); each frame is parsed, its UDP checksum and payload checked, and recorded by the same
// SinkStats as the socket sink. Frames the kernel could not deliver to the socket (ring full,
// no buffer) are the receiver_kernel stage.
// On veth both run in copy mode: the kernel copies each frame once, into or out of the umem.
#pragma once

#include <atomic>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "bench/traffic.h"
#include "stack/net_types.h"

namespace ulsnet {

struct XskGeneratorConfig {
  GeneratorConfig gen;
  std::string ifname;
  MacAddr src_mac, dst_mac;
  Ipv4Addr src_ip;
  uint16_t src_port = 5555;
};

// Result fields as run_generator's, plus "generator": "af_xdp" and the device's bind mode.
nlohmann::json run_xsk_generator(const XskGeneratorConfig& cfg, const std::atomic<bool>& stop);

struct XskSinkConfig {
  SinkConfig sink;
  std::string ifname;
};

nlohmann::json run_xsk_sink(const XskSinkConfig& cfg, const std::atomic<bool>& stop,
                            const std::function<void()>& ready);

}  // namespace ulsnet
