#include "stack/stack_method.h"

#include "stack/af_xdp_device.h"

namespace ulsnet {
namespace stack_methods {

StackConfig stack_config(const ProxyConfig& cfg, FrameAllocator* in_alloc, FrameAllocator* out_alloc) {
  StackConfig s;
  s.mode = cfg.mode;
  s.ifaces.resize(2);
  const ProxyPort* ports[2] = {&cfg.in, &cfg.out};
  FrameAllocator* allocs[2] = {in_alloc, out_alloc};
  for (int i = 0; i < 2; ++i) {
    s.ifaces[size_t(i)].name = ports[i]->ifname;
    s.ifaces[size_t(i)].mac = ports[i]->mac;
    s.ifaces[size_t(i)].ip = ports[i]->ip;
    s.ifaces[size_t(i)].prefix_len = ports[i]->prefix_len;
    s.ifaces[size_t(i)].mtu = ports[i]->mtu != 0 ? ports[i]->mtu : interface_mtu(ports[i]->ifname);
    s.ifaces[size_t(i)].allocator = allocs[i];
  }
  if (cfg.mode == ForwardMode::kRelay) {
    RelayRule r;
    r.listen_port = cfg.relay_port;
    r.to_ip = cfg.out.peer_ip;
    r.to_port = cfg.relay_to_port;
    s.relays.push_back(r);
  }
  if (cfg.static_neighbors)
    for (const ProxyPort* p : ports) s.neighbors.push_back({p->peer_ip, p->peer_mac});
  s.verify_udp_checksum = cfg.verify_udp_checksum;
  return s;
}

nlohmann::json device_json(const Device& d, const DeviceStats& s) {
  return {{"kind", d.kind()},
          {"ifname", d.ifname()},
          {"copy_mode", d.copy_mode()},
          {"rx_frames", s.rx_frames},
          {"rx_bytes", s.rx_bytes},
          {"tx_frames", s.tx_frames},
          {"tx_bytes", s.tx_bytes},
          {"tx_dropped", s.tx_dropped},
          {"tx_refused", s.tx_refused},
          {"rx_kernel_drops", s.rx_kernel_drops},
          {"rx_no_buffer", s.rx_no_buffer},
          {"rx_truncated", s.rx_truncated},
          {"syscalls", s.syscalls},
          {"copies", s.copies}};
}

namespace {

nlohmann::json stack_drops_json(const DropCounters& d) {
  nlohmann::json j = nlohmann::json::object();
  for (size_t r = 0; r < kDropReasonCount; ++r)
    if (d.by_reason[r] != 0) j[std::string(drop_reason_name(DropReason(r)))] = d.by_reason[r];
  return j;
}

}  // namespace

void add_stack_drops(DropLedger& l, const DropCounters& d) {
  for (size_t r = 0; r < kDropReasonCount; ++r)
    if (d.by_reason[r] != 0) l.add(DropStage::kProxyStack, drop_reason_name(DropReason(r)), d.by_reason[r]);
}

nlohmann::json stack_json(const StackCounters& c) {
  return {{"rx_frames", c.rx_frames},
          {"forwarded", c.forwarded},
          {"consumed", c.consumed},
          {"generated", c.generated},
          {"generate_failed", c.generate_failed},
          {"arp_requests_sent", c.arp_requests_sent},
          {"arp_replies_sent", c.arp_replies_sent},
          {"icmp_echo_replies", c.icmp_echo_replies},
          {"icmp_time_exceeded_sent", c.icmp_time_exceeded_sent},
          {"icmp_frag_needed_sent", c.icmp_frag_needed_sent},
          {"icmp_errors_suppressed", c.icmp_errors_suppressed},
          {"icmp_errors_rate_limited", c.icmp_errors_rate_limited},
          {"drops", stack_drops_json(c.drops)}};
}

nlohmann::json stack_report(const StackCounters& c, DropLedger method_drops, uint64_t device_rx,
                            uint64_t queue_drops, uint64_t other_ended) {
  nlohmann::json j;
  j["forwarded"] = c.forwarded;
  j["stack"] = stack_json(c);
  add_stack_drops(method_drops, c.drops);
  j["drops"] = method_drops.to_json();
  const uint64_t ended = c.forwarded + c.consumed + c.drops.total() + queue_drops + other_ended;
  j["accounting"] = {{"device_rx", device_rx},
                     {"stack_rx", c.rx_frames},
                     {"forwarded", c.forwarded},
                     {"consumed", c.consumed},
                     {"stack_drops", c.drops.total()},
                     {"queue_drops", queue_drops},
                     {"unaccounted", int64_t(device_rx) - int64_t(ended)}};
  return j;
}

DeviceOptions StackMethod::device_options(const ProxyConfig& cfg) {
  DeviceOptions o;
  o.pool_frames = cfg.pool_frames;
  o.batch = std::min<uint32_t>(cfg.batch, 1024);
  o.busy_poll = cfg.busy_poll;
  o.need_wakeup = cfg.need_wakeup;
  return o;
}

void StackMethod::open_devices(const ProxyConfig& cfg, std::span<uint8_t> umem_memory) {
  kind_ = check_method_config(info_, cfg);
  for (const ProxyPort* p : {&cfg.in, &cfg.out})
    if (p->mac.is_zero() || p->ip.v == 0)
      throw MethodError(name_ + ": interface " + p->ifname +
                        " needs the Stack's MAC and IP address in the config");
  batch_ = std::min<uint32_t>(cfg.batch, 1024);
  const DeviceOptions o = device_options(cfg);
  try {
    DevicePair p = make_device_pair(kind_, cfg.in.ifname, cfg.out.ifname, o, umem_memory);
    umem_ = std::move(p.umem);
    dev_[0] = std::move(p.dev[0]);
    dev_[1] = std::move(p.dev[1]);
  } catch (const std::exception& e) {
    throw MethodError(name_ + ": " + e.what());
  }
}

void StackMethod::make_stack(const ProxyConfig& cfg, FrameAllocator* in_alloc, FrameAllocator* out_alloc) {
  try {
    stack_ = std::make_unique<Stack>(stack_config(cfg, in_alloc, out_alloc));
    stack_raw_ = stack_.get();
  } catch (const std::exception& e) {
    throw MethodError(name_ + ": stack config: " + e.what());
  }
}

uint64_t StackMethod::xdp_passed_to_kernel() const {
  uint64_t passed = 0;
  if (umem_)
    for (int i = 0; i < 2; ++i) passed += static_cast<AfXdpDevice*>(dev_[i].get())->counters().passed_to_kernel;
  return passed;
}

DropLedger StackMethod::device_drops(const DeviceStats (&s)[2], uint64_t xdp_passed) const {
  DropLedger drops;
  // Dropped before the method saw them: the packet socket's queue or ring was full, or the
  // frame was longer than the buffer the device gave the kernel.
  drops.add(DropStage::kProxyKernel, "packet_socket_drops", s[0].rx_kernel_drops + s[1].rx_kernel_drops);
  drops.add(DropStage::kProxyKernel, "rx_truncated", s[0].rx_truncated + s[1].rx_truncated);
  // Transmit drops include the stack's own generated frames (ARP, ICMP), which are rare.
  drops.add(DropStage::kProxyTx, "tx_dropped", s[0].tx_dropped + s[1].tx_dropped);
  // Frames the steering program did not take (runts, not IPv4 or ARP, for another MAC) go to
  // the kernel, which owns no address here and drops them: a proxy-kernel drop, so that every
  // frame that entered an interface is in the ledger (none is ever an experiment's datagram
  // unless it was broken on the way).
  if (umem_) drops.add(DropStage::kProxyKernel, "xdp_passed_to_kernel", xdp_passed);
  return drops;
}

void StackMethod::answer_live() {
  live_.answer([this](LiveCopy& c) {
    c.stack.reset();
    if (stack_on_loop_thread()) c.stack = stack_raw_->counters();
    for (int i = 0; i < 2; ++i) c.dev[i] = dev_[i]->stats();
    c.xdp_passed_to_kernel = xdp_passed_to_kernel();
    c.method = live_method_drops();
  });
}

nlohmann::json StackMethod::live() {
  std::optional<LiveCopy> c = live_.ask(kLiveWaitMs);
  if (!c) return nullptr;
  if (!c->stack) c->stack = live_stack_counters();
  if (!c->stack) return nullptr;
  DropLedger drops = c->method;
  drops.merge(device_drops(c->dev, c->xdp_passed_to_kernel));
  add_stack_drops(drops, c->stack->drops);
  nlohmann::json j = {{"forwarded", c->stack->forwarded}, {"drops", drops.to_json()}};
  const char* side[2] = {"in", "out"};
  for (int i = 0; i < 2; ++i)
    j["device"][side[i]] = {{"rx_frames", c->dev[i].rx_frames}, {"tx_frames", c->dev[i].tx_frames}};
  return j;
}

nlohmann::json StackMethod::base_report(const DropLedger& method_drops) {
  left_at_stop_ += discard_queued(*dev_[0]) + discard_queued(*dev_[1]);
  DropLedger drops = method_drops;
  drops.add(DropStage::kProxyQueue, "left_in_device_at_stop", left_at_stop_);
  const uint64_t queue_drops = drops.total();
  uint64_t device_rx = 0, tx_refused = 0;
  const char* side[2] = {"in", "out"};
  nlohmann::json devices;
  DeviceStats s[2];
  for (int i = 0; i < 2; ++i) {
    s[i] = dev_[i]->stats();
    devices[side[i]] = device_json(*dev_[i], s[i]);
    tx_refused += s[i].tx_refused;
    device_rx += s[i].rx_frames;
  }
  drops.merge(device_drops(s, xdp_passed_to_kernel()));
  nlohmann::json j = stack_report(stack_raw_->counters(), drops, device_rx, queue_drops);
  j["device"] = devices;
  // The part of those the interface dropped and counts too (the harness subtracts it from
  // the link stage so that no frame is counted twice).
  j["tx_refused_by_link"] = tx_refused;
  if (umem_) {
    auto* x = static_cast<AfXdpDevice*>(dev_[0].get());
    j["af_xdp"] = {{"bind_mode", x->mode_reason()},
                   {"busy_poll", x->busy_poll_status()},
                   {"umem_chunks", umem_->chunks()},
                   {"umem_bad_releases", umem_->bad_releases()}};
    for (int i = 0; i < 2; ++i) {
      AfXdpCounters c = static_cast<AfXdpDevice*>(dev_[i].get())->counters();
      // Steered frames the socket could not take: in proxy_kernel here, and in the
      // interface's rx_dropped too (the harness takes them out of the link stage).
      j[std::string("rx_redirect_failed_") + side[i]] = c.rx_dropped + c.rx_ring_full;
      j["af_xdp"][side[i]] = {{"steered_ipv4", c.steered_ipv4}, {"steered_arp", c.steered_arp},
                              {"passed_to_kernel", c.passed_to_kernel},
                              {"redirect_failed", c.redirect_failed}, {"rx_dropped", c.rx_dropped},
                              {"rx_ring_full", c.rx_ring_full},
                              {"rx_fill_ring_empty", c.rx_fill_ring_empty},
                              {"tx_invalid_descs", c.tx_invalid_descs}, {"wakeups", c.wakeups},
                              {"tx_completions", c.tx_completions}, {"tx_outstanding", c.tx_outstanding}};
    }
  }
  j["device_kind"] = kind_;
  // What the devices that ran say of themselves (AF_XDP: what the kernel bound).
  const std::string in_mode = dev_[0]->copy_mode(), out_mode = dev_[1]->copy_mode();
  j["device_mode"] = in_mode == out_mode ? in_mode : "in: " + in_mode + ", out: " + out_mode;
  j["batch"] = batch_;
  j["loop"] = {{"passes", loop_.passes}, {"bursts", loop_.bursts}, {"frames", loop_.frames}};
  j["idle_waits"] = loop_.idle_waits;
  return j;
}

}  // namespace stack_methods
}  // namespace ulsnet
