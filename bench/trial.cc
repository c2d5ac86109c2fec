#include "bench/trial.h"

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

  SinkConfig sc;
  sc.run_id = cfg.run_id;
  sc.max_seq = cfg.max_packets;
  sc.max_duration_s = cfg.duration_s + 30;
  NetnsChild sink(topo.receiver.ns, cfg.sink_cpu,
                  [sc](const std::atomic<bool>& stop, const ReadyFn& ready) {
                    return run_sink(sc, stop, ready);
                  });
  if (!sink.wait_ready(5000)) return {{"error", "sink: " + sink.result(1000).value("error", "?")}};

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
    sink.stop();
    return {{"error", "proxy: " + proxy.result(1000).value("error", "?")}};
  }

  GeneratorConfig gc;
  gc.dst = relay ? topo.proxy_in.ip : topo.receiver.ip;
  gc.payload = cfg.payload;
  gc.count = cfg.max_packets;
  gc.duration_s = cfg.duration_s;
  gc.rate_pps = cfg.rate_pps;
  gc.batch = cfg.batch;
  gc.run_id = cfg.run_id;
  auto cpu0 = read_cpu_times();
  NetnsChild gen(topo.sender.ns, cfg.generator_cpu,
                 [gc](const std::atomic<bool>& stop, const ReadyFn&) { return run_generator(gc, stop); });
  nlohmann::json g = gen.result(int(cfg.duration_s * 1000) + 10000);
  std::this_thread::sleep_for(std::chrono::milliseconds(int(cfg.drain_s * 1000)));
  auto cpu1 = read_cpu_times();
  proxy.stop();
  nlohmann::json p = proxy.result(5000);
  sink.stop();
  nlohmann::json s = sink.result(5000);

  for (auto* part : {&g, &p, &s})
    if (part->contains("error")) rec["error"] = (*part)["error"];
  rec["generator"] = g;
  rec["proxy"] = p;
  rec["sink"] = s;
  if (rec.contains("error")) return rec;

  const uint64_t sent = get_u(g, "sent");
  const uint64_t received = get_u(s, "received");
  nlohmann::json drops = nlohmann::json::object();
  drops["sender"] = g["send_errors"];
  auto nd_g = g["netdev"], nd_p = p["netdev"], nd_s = s["netdev"];
  const std::string si = topo.sender.ifname, pi = topo.proxy_in.ifname, po = topo.proxy_out.ifname,
                    ri = topo.receiver.ifname;
  drops["link_sender_proxy"] = nlohmann::json::object();
  if (get_u(nd_g, si + ".tx_drop")) drops["link_sender_proxy"][si + ".tx_drop"] = get_u(nd_g, si + ".tx_drop");
  if (get_u(nd_p, pi + ".rx_drop")) drops["link_sender_proxy"][pi + ".rx_drop"] = get_u(nd_p, pi + ".rx_drop");
  for (const char* st : {"proxy_kernel", "proxy_stack", "proxy_queue", "proxy_tx"})
    drops[st] = p.contains("drops") && p["drops"].contains(st) ? p["drops"][st] : nlohmann::json::object();
  drops["link_proxy_receiver"] = nlohmann::json::object();
  if (get_u(nd_p, po + ".tx_drop")) drops["link_proxy_receiver"][po + ".tx_drop"] = get_u(nd_p, po + ".tx_drop");
  if (get_u(nd_s, ri + ".rx_drop")) drops["link_proxy_receiver"][ri + ".rx_drop"] = get_u(nd_s, ri + ".rx_drop");
  drops["receiver_kernel"] = s["receiver_kernel"];
  drops["receiver_app"] = nlohmann::json::object();
  if (get_u(s, "corrupted")) drops["receiver_app"]["corrupted"] = get_u(s, "corrupted");
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
  rec["gbps"] = dur > 0 ? double(received) * cfg.payload * 8 / dur / 1e9 : 0;
  rec["latency_ns"] = s["latency_ns"];
  rec["jitter_ns"] = s["jitter_ns"];
  rec["reordered"] = s["reordered"];
  rec["duplicates"] = s["duplicates"];
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
  SinkConfig sc;
  sc.run_id = cfg.run_id;
  sc.max_seq = cfg.max_packets;
  sc.max_duration_s = cfg.duration_s + 30;
  NetnsChild sink(topo.receiver.ns, cfg.sink_cpu,
                  [sc](const std::atomic<bool>& stop, const ReadyFn& ready) {
                    return run_sink(sc, stop, ready);
                  });
  if (!sink.wait_ready(5000)) return {{"error", "sink: " + sink.result(1000).value("error", "?")}};
  GeneratorConfig gc;
  gc.dst = topo.receiver.ip;
  gc.payload = cfg.payload;
  gc.count = cfg.max_packets;
  gc.duration_s = cfg.duration_s;
  gc.rate_pps = cfg.rate_pps;
  gc.batch = cfg.batch;
  gc.run_id = cfg.run_id;
  NetnsChild gen(topo.sender.ns, cfg.generator_cpu,
                 [gc](const std::atomic<bool>& stop, const ReadyFn&) { return run_generator(gc, stop); });
  nlohmann::json g = gen.result(int(cfg.duration_s * 1000) + 10000);
  std::this_thread::sleep_for(std::chrono::milliseconds(int(cfg.drain_s * 1000)));
  sink.stop();
  nlohmann::json s = sink.result(5000);
  nlohmann::json rec{{"generator", g}, {"sink", s}};
  for (auto* part : {&g, &s})
    if (part->contains("error")) rec["error"] = (*part)["error"];
  if (rec.contains("error")) return rec;
  const uint64_t sent = get_u(g, "sent"), received = get_u(s, "received");
  nlohmann::json drops = nlohmann::json::object();
  drops["sender"] = g["send_errors"];
  drops["link"] = nlohmann::json::object();
  const std::string si = topo.sender.ifname, ri = topo.receiver.ifname;
  if (get_u(g["netdev"], si + ".tx_drop")) drops["link"][si + ".tx_drop"] = get_u(g["netdev"], si + ".tx_drop");
  if (get_u(s["netdev"], ri + ".rx_drop")) drops["link"][ri + ".rx_drop"] = get_u(s["netdev"], ri + ".rx_drop");
  drops["receiver_kernel"] = s["receiver_kernel"];
  drops["receiver_app"] = nlohmann::json::object();
  if (get_u(s, "corrupted")) drops["receiver_app"]["corrupted"] = get_u(s, "corrupted");
  uint64_t dropped = 0;
  for (auto& st : drops) dropped += sum_stage(st);
  const double dur = g["duration_s"].get<double>();
  rec["sent"] = sent;
  rec["received"] = received;
  rec["lost"] = sent - std::min(sent, received);
  rec["drops"] = drops;
  rec["unaccounted"] = int64_t(sent) - int64_t(received) - int64_t(dropped);
  rec["offered_pps"] = g["achieved_pps"];
  rec["delivered_pps"] = dur > 0 ? double(received) / dur : 0;
  rec["latency_ns"] = s["latency_ns"];
  return rec;
}

}  // namespace ulsnet
