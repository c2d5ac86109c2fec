#include "bench/trial.h"

#include "bench/xdp_generator.h"
#include "bench/xsk_traffic.h"

#include <sched.h>
#include <unistd.h>

#include <cstring>

#include <fstream>
#include <memory>
#include <sstream>
#include <thread>

#include "baselines/registry.h"
#include "baselines/proc_counters.h"
#include "bench/accounting.h"
#include "bench/netns_child.h"
#include "bench/stall_probe.h"
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

uint64_t get_u(const nlohmann::json& j, const std::string& k) {
  return j.contains(k) && j[k].is_number() ? j[k].get<uint64_t>() : 0;
}

// The trial's error from its roles' reports, null if none: a role that died comes first (the
// others' errors follow from it), with its "peer_died".
nlohmann::json first_error(std::initializer_list<const nlohmann::json*> parts) {
  for (const nlohmann::json* p : parts)
    if (p->contains("peer_died")) return {{"error", (*p)["error"]}, {"peer_died", (*p)["peer_died"]}};
  for (const nlohmann::json* p : parts)
    if (p->contains("error")) return {{"error", (*p)["error"]}};
  return nullptr;
}

// The sink in the receiver host, bound and ready; nullptr (and `error`) if it failed.
std::unique_ptr<NetnsChild> start_sink(const Topology& topo, const TrialConfig& cfg,
                                       std::string& error) {
  SinkConfig sc;
  sc.run_id = cfg.run_id;
  sc.max_seq = cfg.max_packets;
  sc.max_duration_s = cfg.duration_s + 30;
  sc.warmup_s = cfg.warmup_s;
  std::unique_ptr<NetnsChild> sink;
  if (cfg.sink == "af_xdp") {
    XskSinkConfig xc{sc, topo.receiver.ifname};
    sink = std::make_unique<NetnsChild>(
        topo.receiver.ns, cfg.sink_cpu,
        [xc](const std::atomic<bool>& stop, const ReadyFn& ready) { return run_xsk_sink(xc, stop, ready); }, "sink");
  } else {
    sink = std::make_unique<NetnsChild>(
        topo.receiver.ns, cfg.sink_cpu,
        [sc](const std::atomic<bool>& stop, const ReadyFn& ready) { return run_sink(sc, stop, ready); }, "sink");
  }
  if (sink->wait_ready(5000)) return sink;
  error = "sink: " + sink->result(1000).value("error", "?");
  return nullptr;
}

// Runs the generator in the sender host to completion (bounded by count and time), or until a
// peer of `watch` ends early (dies): then the generator is stopped at once.
nlohmann::json run_generator_in(const Topology& topo, const TrialConfig& cfg, Ipv4Addr dst,
                                std::initializer_list<const NetnsChild*> watch) {
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
                   [xc](const std::atomic<bool>& stop, const ReadyFn&) { return run_xdp_generator(xc, stop); },
                   "generator");
    return gen.result(int(cfg.duration_s * 1000) + 10000, watch);
  }
  if (cfg.generator == "af_xdp" || !fallback.empty()) {
    XskGeneratorConfig xc;
    xc.gen = gc;
    xc.ifname = topo.sender.ifname;
    xc.src_mac = topo.sender.mac;
    xc.src_ip = topo.sender.ip;
    xc.dst_mac = topo.proxy_in.ifname.empty() ? topo.receiver.mac : topo.proxy_in.mac;
    NetnsChild gen(topo.sender.ns, cfg.generator_cpu,
                   [xc](const std::atomic<bool>& stop, const ReadyFn&) { return run_xsk_generator(xc, stop); },
                   "generator");
    nlohmann::json r = gen.result(int(cfg.duration_s * 1000) + 10000, watch);
    if (!fallback.empty()) r["generator_fallback"] = "xdp-live unavailable: " + fallback;
    return r;
  }
  if (cfg.generator != "socket" && cfg.generator != "xdp-live") return {{"error", "unknown generator '" + cfg.generator + "'"}};
  NetnsChild gen(topo.sender.ns, cfg.generator_cpu,
                 [gc](const std::atomic<bool>& stop, const ReadyFn&) { return run_generator(gc, stop); },
                 "generator");
  return gen.result(int(cfg.duration_s * 1000) + 10000, watch);
}

}  // namespace

double wait_until_quiet(std::initializer_list<pid_t> pids, double max_s, double quiet_s) {
  auto snapshot = [&] {
    std::map<std::string, uint64_t> all;
    for (pid_t p : pids)
      for (const auto& [k, v] : read_netdev_of(p)) all[std::to_string(p) + "/" + k] = v;
    return all;
  };
  const auto t0 = std::chrono::steady_clock::now();
  auto since = [&](auto t) { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count(); };
  auto last = snapshot();
  auto last_change = std::chrono::steady_clock::now();
  while (since(t0) < max_s) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    auto now = snapshot();
    if (now != last) {
      last = std::move(now);
      last_change = std::chrono::steady_clock::now();
    } else if (since(last_change) >= quiet_s) {
      break;
    }
  }
  return since(t0);
}

RoleFn proxy_role(ProxyConfig pc) {
  return [pc = std::move(pc)](const std::atomic<bool>& stop, const ReadyFn& ready) {
    auto m = make_proxy_method(pc.method);
    m->start(pc);
    ready();
    m->run(stop);
    return m->report();
  };
}

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
                   [pc, prio = cfg.proxy_fifo_priority](const std::atomic<bool>& stop, const ReadyFn& ready) {
                     if (prio > 0) {
                       sched_param sp{};
                       sp.sched_priority = prio;
                       if (sched_setscheduler(0, SCHED_FIFO, &sp) != 0)
                         throw std::runtime_error(std::string("proxy: SCHED_FIFO ") + std::to_string(prio) + ": " +
                                                  std::strerror(errno));
                     }
                     auto netdev0 = read_netdev();
                     auto m = make_proxy_method(pc.method);
                     m->start(pc);
                     ready();
                     m->run(stop);
                     nlohmann::json r = m->report();
                     r["netdev"] = counter_delta(netdev0, read_netdev());
                     return r;
                   },
                   "proxy");
  if (!proxy.wait_ready(5000)) {
    sink->stop();
    const nlohmann::json p = proxy.result(1000);
    nlohmann::json e = {{"error", "proxy: " + p.value("error", "?")}};
    if (p.contains("peer_died")) e["peer_died"] = p["peer_died"];
    return e;
  }

  std::vector<std::unique_ptr<StallProbe>> probes;
  nlohmann::json stalls = nlohmann::json::object();
  for (int c : cfg.stall_probe_cpus) {
    auto pr = std::make_unique<StallProbe>();
    if (pr->start(c, cfg.stall_probe_period_us, cfg.stall_threshold_us))
      probes.push_back(std::move(pr));
    else
      stalls["cpu" + std::to_string(c)] = {{"error", pr->error()}};
  }
  auto cpu0 = read_cpu_times();
  nlohmann::json g = run_generator_in(topo, cfg, relay ? topo.proxy_in.ip : topo.receiver.ip, {&proxy, sink.get()});
  // A peer that ended during the stream died (or failed): nothing to drain into.
  const bool peer_ended = proxy.ended() || sink->ended();
  const double drained = peer_ended ? 0 : wait_until_quiet({proxy.pid(), sink->pid()}, cfg.drain_s, cfg.drain_quiet_s);
  auto cpu1 = read_cpu_times();
  for (auto& pr : probes) {
    nlohmann::json j = pr->stop();
    stalls["cpu" + std::to_string(j.value("cpu", -1))] = j;
  }
  proxy.stop();
  nlohmann::json p = proxy.result(5000);
  sink->stop();
  nlohmann::json s = sink->result(5000);

  if (nlohmann::json e = first_error({&g, &p, &s}); !e.is_null()) {
    e["reports"] = {{"generator", g}, {"proxy", p}, {"sink", s}};
    return e;
  }

  TrialLinks links;
  links.into_proxy = {topo.sender.ifname, topo.proxy_in.ifname};
  links.out_of_proxy = {topo.proxy_out.ifname, topo.receiver.ifname};
  try {
    rec = account_trial(g, p, s, links, cfg.payload);
  } catch (const std::invalid_argument& e) {
    return {{"error", std::string("accounting: ") + e.what()}, {"reports", {{"generator", g}, {"proxy", p}, {"sink", s}}}};
  }
  const uint64_t received = rec["received"];
  auto cd = cpu_delta(cpu0, cpu1);
  uint64_t proxy_cpu = get_u(p["rusage"], "user_ns") + get_u(p["rusage"], "sys_ns");
  uint64_t fwd = get_u(p, "forwarded");
  nlohmann::json cpu = {{"per_cpu", cd},
                        {"all_busy_ns", cd.contains("cpu") ? cd["cpu"]["busy_ns"] : nlohmann::json(0)},
                        {"proxy_process_ns", proxy_cpu},
                        {"proxy_forwarded", fwd}};
  // Per packet the proxy forwarded (its work), and per packet delivered (the useful part).
  if (fwd) cpu["proxy_process_ns_per_forwarded"] = double(proxy_cpu) / double(fwd);
  if (received) cpu["all_busy_ns_per_received"] = double(get_u(cd["cpu"], "busy_ns")) / double(received);
  if (cfg.proxy_cpu >= 0) {
    const std::string c = "cpu" + std::to_string(cfg.proxy_cpu);
    if (cd.contains(c)) {
      const uint64_t busy = get_u(cd[c], "busy_ns");
      cpu["proxy_host_cpu"] = cfg.proxy_cpu;
      add_proxy_host_cpu(cpu, busy, fwd, received);  // bench/accounting.h: 0 ticks is not 0 CPU
    }
  }
  rec["cpu"] = cpu;
  rec["drain_s"] = drained;
  if (!cfg.stall_probe_cpus.empty()) rec["host_stalls"] = stalls;
  return rec;
}

std::string host_stall_reason(const nlohmann::json& record) {
  if (!record.is_object() || !record.contains("host_stalls")) return "";
  std::string worst_cpu;
  double worst = 0;
  uint64_t n = 0;
  for (auto it = record["host_stalls"].begin(); it != record["host_stalls"].end(); ++it) {
    const uint64_t over = it->value("over_threshold", uint64_t(0));
    if (over == 0) continue;
    n += over;
    if (it->value("max_late_us", 0.0) > worst) worst = it->value("max_late_us", 0.0), worst_cpu = it.key();
  }
  if (n == 0) return "";
  char b[160];
  std::snprintf(b, sizeof b, "host stall: %s not running for %.1f ms (%llu wake-ups of its probe over the threshold)",
                worst_cpu.c_str(), worst / 1000.0, static_cast<unsigned long long>(n));
  return b;
}

}  // namespace ulsnet

namespace ulsnet {

nlohmann::json run_direct(const Topology& topo, const TrialConfig& cfg) {
  std::string err;
  auto sink = start_sink(topo, cfg, err);
  if (!sink) return {{"error", err}};
  nlohmann::json g = run_generator_in(topo, cfg, topo.receiver.ip, {sink.get()});
  if (!sink->ended()) wait_until_quiet({sink->pid()}, cfg.drain_s, cfg.drain_quiet_s);
  sink->stop();
  nlohmann::json s = sink->result(5000);
  if (nlohmann::json e = first_error({&g, &s}); !e.is_null()) {
    e["reports"] = {{"generator", g}, {"proxy", nullptr}, {"sink", s}};
    return e;
  }
  TrialLinks links;
  links.direct = {topo.sender.ifname, topo.receiver.ifname};
  nlohmann::json rec;
  try {
    rec = account_trial(g, nullptr, s, links, cfg.payload);
  } catch (const std::invalid_argument& e) {
    return {{"error", std::string("accounting: ") + e.what()}, {"reports", {{"generator", g}, {"proxy", nullptr}, {"sink", s}}}};
  }
  return rec;
}

}  // namespace ulsnet
