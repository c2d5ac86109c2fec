#include "bench/trial.h"

#include "bench/xdp_generator.h"
#include "bench/xsk_traffic.h"

#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "baselines/proxy_method.h"
#include "baselines/proc_counters.h"
#include "bench/netns_child.h"
#include "bench/traffic.h"

namespace ulsnet {

nlohmann::json read_cpu_times() {
  nlohmann::json j = nlohmann::json::object();
  std::ifstream in("/proc/stat");
  std::string line;
  const double ns_per_tick = 1e9 / double(sysconf(_SC_CLK_TCK));
  static const char* names[] = {"user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"};
  while (std::getline(in, line)) {
    if (line.rfind("cpu", 0) != 0) break;
    std::istringstream s(line);
    std::string cpu;
    s >> cpu;
    nlohmann::json c;
    for (const char* n : names) {
      uint64_t t = 0;
      s >> t;
      c[std::string(n) + "_ns"] = uint64_t(double(t) * ns_per_tick);
    }
    j[cpu] = c;
  }
  return j;
}

nlohmann::json cpu_delta(const nlohmann::json& a, const nlohmann::json& b) {
  nlohmann::json d = nlohmann::json::object();
  for (auto it = b.begin(); it != b.end(); ++it) {
    if (!a.contains(it.key())) continue;
    nlohmann::json c;
    uint64_t busy = 0;
    for (auto f = it->begin(); f != it->end(); ++f) {
      uint64_t v = f->get<uint64_t>() - std::min(f->get<uint64_t>(), a[it.key()][f.key()].get<uint64_t>());
      c[f.key()] = v;
      if (f.key() != "idle_ns" && f.key() != "iowait_ns") busy += v;
    }
    c["busy_ns"] = busy;
    d[it.key()] = c;
  }
  return d;
}

namespace {

uint64_t sum_stage(const nlohmann::json& stage) {
  uint64_t t = 0;
  for (auto& v : stage) t += v.get<uint64_t>();
  return t;
}

uint64_t get_u(const nlohmann::json& j, const std::string& k) {
  return j.contains(k) && j[k].is_number() ? j[k].get<uint64_t>() : 0;
}

// The sink in the receiver host, bound and ready; nullptr (and `error`) if it failed.
std::unique_ptr<NetnsChild> start_sink(const Topology& topo, const TrialConfig& cfg,
                                       std::string& error) {
  SinkConfig sc;
  sc.run_id = cfg.run_id;
  sc.max_seq = cfg.max_packets;
  sc.max_duration_s = cfg.duration_s + 30;
  std::unique_ptr<NetnsChild> sink;
  if (cfg.sink == "af_xdp") {
    XskSinkConfig xc{sc, topo.receiver.ifname};
    sink = std::make_unique<NetnsChild>(
        topo.receiver.ns, cfg.sink_cpu,
        [xc](const std::atomic<bool>& stop, const ReadyFn& ready) { return run_xsk_sink(xc, stop, ready); });
  } else {
    sink = std::make_unique<NetnsChild>(
        topo.receiver.ns, cfg.sink_cpu,
        [sc](const std::atomic<bool>& stop, const ReadyFn& ready) { return run_sink(sc, stop, ready); });
  }
  if (sink->wait_ready(5000)) return sink;
  error = "sink: " + sink->result(1000).value("error", "?");
  return nullptr;
}

// Runs the generator in the sender host to completion (bounded by count and time).
nlohmann::json run_generator_in(const Topology& topo, const TrialConfig& cfg, Ipv4Addr dst) {
  GeneratorConfig gc;
  gc.dst = dst;
  gc.payload = cfg.payload;
  gc.count = cfg.max_packets;
  gc.duration_s = cfg.duration_s;
  gc.rate_pps = cfg.rate_pps;
  gc.batch = cfg.batch;
  gc.run_id = cfg.run_id;
  // xdp-live sends at the maximum only; fixed rates use the socket generator (recorded). Where
  // the kernel cannot run it, the AF_XDP generator stands in, with the reason in the report.
  std::string fallback;
  if (cfg.generator == "xdp-live") fallback = xdp_generator_unsupported_reason();
  if (cfg.generator == "xdp-live" && cfg.rate_pps <= 0 && fallback.empty()) {
    XdpGeneratorConfig xc;
    xc.gen = gc;
    xc.ifname = topo.sender.ifname;
    xc.src_mac = topo.sender.mac;
    xc.src_ip = topo.sender.ip;
    // The next hop: the proxy, or the receiver itself in the two-host form.
    xc.dst_mac = topo.proxy_in.ifname.empty() ? topo.receiver.mac : topo.proxy_in.mac;
    NetnsChild gen(topo.sender.ns, cfg.generator_cpu,
                   [xc](const std::atomic<bool>& stop, const ReadyFn&) { return run_xdp_generator(xc, stop); });
    return gen.result(int(cfg.duration_s * 1000) + 10000);
  }
  if (cfg.generator == "af_xdp" || !fallback.empty()) {
    XskGeneratorConfig xc;
    xc.gen = gc;
    xc.ifname = topo.sender.ifname;
    xc.src_mac = topo.sender.mac;
    xc.src_ip = topo.sender.ip;
    xc.dst_mac = topo.proxy_in.ifname.empty() ? topo.receiver.mac : topo.proxy_in.mac;
    NetnsChild gen(topo.sender.ns, cfg.generator_cpu,
                   [xc](const std::atomic<bool>& stop, const ReadyFn&) { return run_xsk_generator(xc, stop); });
    nlohmann::json r = gen.result(int(cfg.duration_s * 1000) + 10000);
    if (!fallback.empty()) r["generator_fallback"] = "xdp-live unavailable: " + fallback;
    return r;
  }
  if (cfg.generator != "socket" && cfg.generator != "xdp-live") return {{"error", "unknown generator '" + cfg.generator + "'"}};
  NetnsChild gen(topo.sender.ns, cfg.generator_cpu,
                 [gc](const std::atomic<bool>& stop, const ReadyFn&) { return run_generator(gc, stop); });
  return gen.result(int(cfg.duration_s * 1000) + 10000);
}

// A veth link's drops, from the /proc/net/dev deltas of both ends. veth counts a frame it
// drops in the sending end's tx_dropped and again in the peer's rx_dropped, so the link's drops
// are the larger of the two, not their sum. Two kinds of drops are also counted elsewhere and
// are taken out here, so that no frame is counted twice:
//  - `tx_refused`: sends the proxy counted as refused (the link dropped the frame: ENOBUFS);
//    they are in both ends' counters;
//  - `rx_redirect_failed`: frames an XDP program redirected into an AF_XDP socket that could not
//    take them (ring full, no buffer); veth counts them as the receiving end's rx_dropped, and
//    the socket's owner counts them in its own stage.
void add_link_drops(nlohmann::json& stage, const nlohmann::json& tx_netdev, const std::string& tx_if,
                    const nlohmann::json& rx_netdev, const std::string& rx_if,
                    uint64_t tx_refused = 0, uint64_t rx_redirect_failed = 0) {
  const uint64_t tx = get_u(tx_netdev, tx_if + ".tx_drop"), rx = get_u(rx_netdev, rx_if + ".rx_drop");
  const uint64_t tx_only = tx - std::min(tx, tx_refused);
  const uint64_t rx_only = rx - std::min(rx, tx_refused + rx_redirect_failed);
  const uint64_t n = std::max(tx_only, rx_only);
  if (n > 0) stage[tx_if + ".tx_drop|" + rx_if + ".rx_drop"] = n;
}

// Fills the accounting fields of a record from the generator and sink reports and the drops
// seen before the receiver; adds the receiver's own stages.
void account(nlohmann::json& rec, const nlohmann::json& g, const nlohmann::json& s,
             nlohmann::json drops, uint32_t payload) {
  drops["receiver_kernel"] = s["receiver_kernel"];
  drops["receiver_app"] = nlohmann::json::object();
  if (get_u(s, "corrupted")) drops["receiver_app"]["corrupted"] = get_u(s, "corrupted");
  // Every numbered datagram the generator tried: either on the wire or a counted send error.
  const uint64_t sent = g.contains("attempted") ? get_u(g, "attempted") : get_u(g, "sent");
  const uint64_t received = get_u(s, "received");
  uint64_t dropped = 0;
  for (auto& st : drops) dropped += sum_stage(st);
  const double dur = g["duration_s"].get<double>();
  rec["sent"] = sent;
  rec["received"] = received;
  rec["lost"] = sent - std::min(sent, received);
  rec["drops"] = drops;
  rec["dropped"] = dropped;
  rec["unaccounted"] = int64_t(sent) - int64_t(received) - int64_t(dropped);
  rec["duration_s"] = dur;
  rec["offered_pps"] = g["achieved_pps"];
  rec["delivered_pps"] = dur > 0 ? double(received) / dur : 0;
  rec["gbps"] = dur > 0 ? double(received) * payload * 8 / dur / 1e9 : 0;
  rec["latency_ns"] = s["latency_ns"];
  rec["jitter_ns"] = s["jitter_ns"];
  rec["reordered"] = s["reordered"];
  rec["duplicates"] = s["duplicates"];
}

}  // namespace

nlohmann::json run_trial(const Topology& topo, const TrialConfig& cfg) {
  nlohmann::json rec;
  const bool relay = cfg.mode == ForwardMode::kRelay;
  ProxyConfig pc;
  pc.method = cfg.method;
  pc.variant = cfg.variant;
  pc.mode = cfg.mode;
  pc.in = topo.proxy_port_in();
  pc.out = topo.proxy_port_out();
  pc.batch = cfg.batch;
  pc.protection = cfg.protection;
  pc.busy_poll = cfg.busy_poll;
  pc.need_wakeup = cfg.need_wakeup;

  std::string err;
  auto sink = start_sink(topo, cfg, err);
  if (!sink) return {{"error", err}};

  NetnsChild proxy(topo.proxy_in.ns, cfg.proxy_cpu,
                   [pc](const std::atomic<bool>& stop, const ReadyFn& ready) {
                     auto netdev0 = read_netdev();
                     auto m = make_proxy_method(pc.method);
                     m->start(pc);
                     ready();
                     m->run(stop);
                     nlohmann::json r = m->report();
                     r["netdev"] = counter_delta(netdev0, read_netdev());
                     return r;
                   });
  if (!proxy.wait_ready(5000)) {
    sink->stop();
    return {{"error", "proxy: " + proxy.result(1000).value("error", "?")}};
  }

  auto cpu0 = read_cpu_times();
  nlohmann::json g = run_generator_in(topo, cfg, relay ? topo.proxy_in.ip : topo.receiver.ip);
  std::this_thread::sleep_for(std::chrono::milliseconds(int(cfg.drain_s * 1000)));
  auto cpu1 = read_cpu_times();
  proxy.stop();
  nlohmann::json p = proxy.result(5000);
  sink->stop();
  nlohmann::json s = sink->result(5000);

  for (auto* part : {&g, &p, &s})
    if (part->contains("error")) rec["error"] = (*part)["error"];
  rec["generator"] = g;
  rec["proxy"] = p;
  rec["sink"] = s;
  if (rec.contains("error")) return rec;

  nlohmann::json drops = nlohmann::json::object();
  drops["sender"] = g["send_errors"];
  drops["link_sender_proxy"] = nlohmann::json::object();
  add_link_drops(drops["link_sender_proxy"], g["netdev"], topo.sender.ifname, p["netdev"],
                 topo.proxy_in.ifname, 0, get_u(p, "rx_redirect_failed_in"));
  for (const char* st : {"proxy_kernel", "proxy_stack", "proxy_queue", "proxy_tx"})
    drops[st] = p.contains("drops") && p["drops"].contains(st) ? p["drops"][st] : nlohmann::json::object();
  drops["link_proxy_receiver"] = nlohmann::json::object();
  add_link_drops(drops["link_proxy_receiver"], p["netdev"], topo.proxy_out.ifname, s["netdev"],
                 topo.receiver.ifname, get_u(p, "tx_refused_by_link"), get_u(s, "rx_redirect_failed"));
  account(rec, g, s, drops, cfg.payload);
  const uint64_t received = rec["received"];
  auto cd = cpu_delta(cpu0, cpu1);
  uint64_t proxy_cpu = get_u(p["rusage"], "user_ns") + get_u(p["rusage"], "sys_ns");
  uint64_t fwd = get_u(p, "forwarded");
  rec["cpu"] = {{"per_cpu", cd},
                {"all_busy_ns", cd.contains("cpu") ? cd["cpu"]["busy_ns"] : nlohmann::json(0)},
                {"proxy_process_ns", proxy_cpu},
                {"proxy_process_ns_per_forwarded", fwd ? double(proxy_cpu) / double(fwd) : 0.0},
                {"all_busy_ns_per_received",
                 received ? double(get_u(cd["cpu"], "busy_ns")) / double(received) : 0.0}};
  return rec;
}

}  // namespace ulsnet

namespace ulsnet {

nlohmann::json run_direct(const Topology& topo, const TrialConfig& cfg) {
  std::string err;
  auto sink = start_sink(topo, cfg, err);
  if (!sink) return {{"error", err}};
  nlohmann::json g = run_generator_in(topo, cfg, topo.receiver.ip);
  std::this_thread::sleep_for(std::chrono::milliseconds(int(cfg.drain_s * 1000)));
  sink->stop();
  nlohmann::json s = sink->result(5000);
  nlohmann::json rec{{"generator", g}, {"sink", s}};
  for (auto* part : {&g, &s})
    if (part->contains("error")) rec["error"] = (*part)["error"];
  if (rec.contains("error")) return rec;
  nlohmann::json drops = nlohmann::json::object();
  drops["sender"] = g["send_errors"];
  drops["link"] = nlohmann::json::object();
  add_link_drops(drops["link"], g["netdev"], topo.sender.ifname, s["netdev"], topo.receiver.ifname,
                 0, get_u(s, "rx_redirect_failed"));
  account(rec, g, s, drops, cfg.payload);
  return rec;
}

}  // namespace ulsnet
