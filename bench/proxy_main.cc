// //bench:proxy: any proxy method standing between the three hosts, for your own traffic and
// your own tools.
//
//   bazel run //bench:proxy -- --method sandbox:af_xdp --mode router
//
// brings up the sender, proxy and receiver hosts (network namespaces, bench/topology.h), starts
// the method in the proxy host as a trial would (bench/trial.cc), prints how to reach each host,
// then one status line per interval (bench/proxy_status.h: frames in and out of each of the
// proxy's interfaces, forwarded, drops by stage and reason, the proxy process's CPU) until
// Ctrl-C, SIGTERM, --duration, or the end of the commands it was asked to run (--exec-sender,
// --exec-receiver, --udp-test). Then it stops the method, prints its final report (the same
// report a trial records for its proxy) and removes everything it created. --json: every line on
// stdout is one JSON object ("event": "up" | "status" | "udp_test" | "command" | "final");
// everything for people goes to stderr. --hosts=vm: the same on three VMs (bench/proxy_vm.cc);
// --hosts=ssh: on three real hosts over SSH (bench/proxy_ssh.cc).
//
// The tool takes the machine's measurement lock (bench/run_lock.h): traffic through a standing
// proxy would distort a benchmark's numbers, so a benchmark (or a second proxy) refuses while it
// runs, naming it.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "baselines/proc_counters.h"
#include "baselines/registry.h"
#include "bench/netns_child.h"
#include "bench/proxy_status.h"
#include "bench/proxy_tool.h"
#include "bench/run_lock.h"
#include "bench/ssh/ssh_hosts.h"
#include "bench/topology.h"
#include "bench/traffic.h"
#include "bench/trial.h"

namespace ulsnet {
namespace {

using proxy_tool::Options;
using proxy_tool::Out;
using proxy_tool::stop_requested;

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

uint64_t process_cpu_ns() {
  rusage r{};
  getrusage(RUSAGE_SELF, &r);
  auto ns = [](const timeval& t) { return uint64_t(t.tv_sec) * 1'000'000'000ull + uint64_t(t.tv_usec) * 1000; };
  return ns(r.ru_utime) + ns(r.ru_stime);
}

// ---- the proxy role: the method, and a thread that writes a snapshot (proxy_status.h) to
// `status_fd` every interval while it runs. The last snapshot goes with the report.
RoleFn standing_proxy_role(ProxyConfig pc, int status_fd, int parent_end, double interval) {
  return [=](const std::atomic<bool>& stop, const ReadyFn& ready) {
    close(parent_end);
    const std::map<std::string, uint64_t> netdev0 = read_netdev();
    const uint64_t cpu0 = process_cpu_ns();
    auto m = make_proxy_method(pc.method);
    m->start(pc);
    const double t0 = now_s();
    auto write_line = [status_fd](const nlohmann::json& j) {
      const std::string s = j.dump() + "\n";
      for (size_t off = 0; off < s.size();) {
        const ssize_t n = write(status_fd, s.data() + off, s.size() - off);
        if (n <= 0) return;  // the tool is gone: PR_SET_PDEATHSIG ends this process
        off += size_t(n);
      }
    };
    write_line({{"t", 0.0}, {"method", nullptr}, {"netdev", netdev0}, {"cpu_ns", cpu0}});
    ready();
    std::atomic<bool> done{false};
    std::thread status([&] {
      for (double next = t0 + interval; !done.load();) {
        if (now_s() < next) {
          usleep(20'000);
          continue;
        }
        next += interval;
        nlohmann::json live = m->live();
        write_line({{"t", now_s() - t0}, {"method", live}, {"netdev", read_netdev()}, {"cpu_ns", process_cpu_ns()}});
      }
    });
    m->run(stop);
    done.store(true);
    status.join();
    nlohmann::json r = m->report();
    const std::map<std::string, uint64_t> netdev1 = read_netdev();
    r["netdev"] = counter_delta(netdev0, netdev1);
    r["last_snapshot"] = {{"t", now_s() - t0}, {"netdev", netdev1}, {"cpu_ns", process_cpu_ns()}};
    close(status_fd);
    return r;
  };
}

// ---- commands in a host: `ip netns exec NS sh -c CMD`, in a process group of their own.
pid_t spawn_in(const std::string& ns, const std::string& cmd, bool stdout_to_stderr) {
  const pid_t parent = getpid();
  const pid_t p = fork();
  if (p < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (p == 0) {
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(127);
    for (int s : {SIGINT, SIGTERM, SIGHUP}) signal(s, SIG_DFL);
    if (stdout_to_stderr) dup2(2, 1);
    const std::string path = std::string(getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin") + ":/usr/sbin:/sbin";
    setenv("PATH", path.c_str(), 1);
    execlp("ip", "ip", "netns", "exec", ns.c_str(), "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  setpgid(p, p);
  return p;
}

// Ends a command's process group: SIGTERM, then SIGKILL after 2 s. Returns its wait status.
int end_group(pid_t p) {
  int st = 0;
  if (waitpid(p, &st, WNOHANG) == p) {
    kill(-p, SIGKILL);  // what it left behind
    return st;
  }
  kill(-p, SIGTERM);
  for (int i = 0; i < 200; ++i) {
    if (waitpid(p, &st, WNOHANG) == p) {
      kill(-p, SIGKILL);
      return st;
    }
    usleep(10'000);
  }
  kill(-p, SIGKILL);
  waitpid(p, &st, 0);
  return st;
}

// ---- --udp-test: the project's generator and sink (bench/traffic.h, the trials' own) through
// the proxy. Bounded: COUNT datagrams at RATE, at most COUNT / RATE + 5 s.
nlohmann::json udp_test(const Topology& topo, const Options& o, bool relay) {
  SinkConfig sc;
  sc.port = o.relay_port;
  sc.run_id = 7;
  sc.max_seq = o.udp_count;
  GeneratorConfig gc;
  gc.dst = relay ? topo.proxy_in.ip : topo.receiver.ip;
  gc.dst_port = o.relay_port;
  gc.payload = o.udp_payload;
  gc.count = o.udp_count;
  gc.rate_pps = o.udp_rate;
  gc.duration_s = double(o.udp_count) / o.udp_rate + 5;
  gc.run_id = 7;
  sc.max_duration_s = gc.duration_s + 30;
  NetnsChild sink(topo.receiver.ns, -1,
                  [sc](const std::atomic<bool>& stop, const ReadyFn& ready) { return run_sink(sc, stop, ready); },
                  "sink");
  if (!sink.wait_ready(5000)) return {{"error", "sink: " + sink.result(1000).value("error", "?")}};
  NetnsChild gen(topo.sender.ns, -1,
                 [gc](const std::atomic<bool>& stop, const ReadyFn&) { return run_generator(gc, stop); },
                 "generator");
  nlohmann::json g = gen.result(int(gc.duration_s * 1000) + 10000, {&sink});
  // Until the receiver's interface stood still for 100 ms (at most 2 s): what is in flight lands.
  wait_until_quiet({sink.pid()}, 2.0, 0.1);
  sink.stop();
  nlohmann::json s = sink.result(5000);
  return proxy_tool::udp_test_result(g, s, gc.dst.str() + ":" + std::to_string(gc.dst_port), o, true);
}

}  // namespace

nlohmann::json proxy_tool::udp_test_result(const nlohmann::json& g, const nlohmann::json& s, const std::string& to,
                                           const Options& o, bool one_clock) {
  if (g.contains("error")) return {{"error", "generator: " + g["error"].get<std::string>()}, {"sink", s}};
  if (s.contains("error")) return {{"error", "sink: " + s["error"].get<std::string>()}, {"generator", g}};
  const uint64_t sent = g.value("sent", uint64_t(0)), received = s.value("received", uint64_t(0));
  nlohmann::json r = {{"sent", sent},
                      {"received", received},
                      {"lost", sent >= received ? sent - received : 0},
                      {"duplicates", s.value("duplicates", uint64_t(0))},
                      {"reordered", s.value("reordered", uint64_t(0))},
                      {"corrupted", s.value("corrupted", uint64_t(0))},
                      {"to", to},
                      {"payload", o.udp_payload},
                      {"rate_pps", o.udp_rate}};
  if (one_clock && s.contains("latency_ns")) r["latency_ns"] = s["latency_ns"];
  r["generator"] = g;
  r["sink"] = s;
  return r;
}

std::string proxy_tool::udp_test_line(const nlohmann::json& r) {
  if (r.contains("error")) return "udp test: " + r["error"].get<std::string>();
  std::string s = fmt::format("udp test to {}: sent {}, received {}, lost {}, duplicates {}, corrupted {}",
                              r.value("to", "?"), r.value("sent", uint64_t(0)), r.value("received", uint64_t(0)),
                              r.value("lost", uint64_t(0)), r.value("duplicates", uint64_t(0)),
                              r.value("corrupted", uint64_t(0)));
  const nlohmann::json l = r.value("latency_ns", nlohmann::json());
  if (l.is_object() && l.contains("p50") && l.contains("p99"))
    s += fmt::format("; one-way delay p50 {:.1f} us, p99 {:.1f} us", l["p50"].get<double>() / 1e3,
                     l["p99"].get<double>() / 1e3);
  return s;
}

bool proxy_tool::print_udp_test(Out& out, const nlohmann::json& r) {
  nlohmann::json ev = r;
  ev["event"] = "udp_test";
  out.event(ev, udp_test_line(r));
  return !r.contains("error");  // losses are results, not failures
}

namespace {

constexpr const char* kSshGroup = "Real hosts (--hosts=ssh; the flags of //bench/ssh:ssh_throughput)";

// `ssh_given`: the flags of kSshGroup on the command line.
int run(const Options& o, const ssh::SshThroughputOptions& so, const std::vector<std::string>& ssh_given, int argc,
        char** argv) {
  Out out(o.json);
  if (o.hosts != "ssh" && !ssh_given.empty()) {
    out.error(fmt::format("proxy: {} names a real host's setting: it needs --hosts=ssh", ssh_given.front()));
    return 2;
  }
  if (o.hosts == "ssh") {
    for (auto [flag, v] : {std::pair{"--sender", &so.sender}, {"--proxy", &so.proxy}, {"--receiver", &so.receiver}})
      if (v->empty()) {
        out.error(fmt::format("proxy: --hosts=ssh needs --sender, --proxy and --receiver (HOST or USER@HOST, as "
                              "for ssh): {} is missing",
                              flag));
        return 2;
      }
    if (o.arp) {
      out.error("proxy: --arp is for the namespaces and VMs the tool builds; real hosts keep their own neighbours "
                "(the proxy's agent gets the peers' MACs from the hosts, or --sender-mac/--receiver-mac)");
      return 2;
    }
    for (const std::string& t : {so.sender, so.proxy, so.receiver}) try {
        ssh::validate_target(t);
      } catch (const std::exception& e) {
        out.error(std::string("proxy: ") + e.what());
        return 2;
      }
    try {
      ssh::validate(ssh::ssh_options_of(so));
    } catch (const std::exception& e) {
      out.error(std::string("proxy: ") + e.what());
      return 2;
    }
  }
  // The method and its variant, checked against the registry before anything is built.
  std::vector<MethodVariant> mv;
  try {
    mv = expand_method_specs({o.method}, [](const MethodInfo&, std::string_view, bool) { return true; });
  } catch (const std::exception& e) {
    out.error(std::string("proxy: --method: ") + e.what());
    return 2;
  }
  const MethodInfo& info = *mv.front().first;
  const std::string variant = o.method.find(':') == std::string::npos ? std::string(info.variants.front()) : mv.front().second;
  const bool relay = o.mode == "relay";
  if ((relay && !info.relay) || (!relay && !info.router)) {
    out.error(fmt::format("proxy: {} has no {} mode (it has: {}{}{})", info.name, o.mode, info.relay ? "relay" : "",
                         info.relay && info.router ? ", " : "", info.router ? "router" : ""));
    return 2;
  }
  if (o.hosts == "ssh") return proxy_tool::run_on_ssh(o, so, info, variant, out);  // root there, not here
  if (geteuid() != 0) {
    out.error("proxy: needs root (network namespaces, veth, packet sockets, XDP; VMs: a private network namespace)");
    return 2;
  }
  if (o.hosts == "vm") return proxy_tool::run_on_vms(o, info, variant, out, argc, argv);
  if (needs_uls_kernel(info.name, variant)) {
    out.error(fmt::format("proxy: {}:{} needs the ULS kernel (/dev/uls), which only the VM hosts have: "
                          "add --hosts=vm",
                          info.name, variant));
    return 2;
  }
  const std::optional<RunLock> lock = RunLock::take_or_explain("proxy", argc, argv);
  if (!lock) return 3;

  TopologyOptions to;
  to.proxy_kernel_addresses = info.kernel_owns_addresses;
  to.veth_napi = info.needs_veth_napi;
  to.static_neighbors = !o.arp;
  std::unique_ptr<Topology> topo;
  try {
    topo = std::make_unique<Topology>(to);
  } catch (const std::exception& e) {
    out.error(std::string("proxy: building the hosts: ") + e.what());
    return 1;
  }
  proxy_tool::install_stop_handler();

  ProxyConfig pc;
  pc.method = std::string(info.name);
  pc.variant = variant;
  pc.mode = relay ? ForwardMode::kRelay : ForwardMode::kRouter;
  pc.in = topo->proxy_port_in();
  pc.out = topo->proxy_port_out();
  pc.relay_port = o.relay_port;
  pc.relay_to_port = o.relay_port;
  pc.batch = o.batch;
  pc.protection = o.protection;
  pc.static_neighbors = !o.arp;

  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    out.error(std::string("proxy: pipe: ") + std::strerror(errno));
    return 1;
  }
  const std::string label = pc.method + ":" + pc.variant;
  auto proxy = std::make_unique<NetnsChild>(topo->proxy_in.ns, o.proxy_cpu,
                                            standing_proxy_role(pc, fds[1], fds[0], o.interval), "proxy");
  close(fds[1]);
  const int status_fd = fds[0];
  if (!proxy->wait_ready(10000)) {
    const nlohmann::json r = proxy->result(2000);
    out.error(fmt::format("proxy: {} did not start: {}", label, r.value("error", "?")));
    out.event({{"event", "error"}, {"error", r.value("error", "?")}}, "");
    close(status_fd);
    return 1;
  }

  // How to reach each host.
  const std::vector<std::string> ifaces = {topo->proxy_in.ifname, topo->proxy_out.ifname};
  auto host = [](const HostPort& h) {
    return nlohmann::json{{"ns", h.ns}, {"exec", "ip netns exec " + h.ns}, {"ifname", h.ifname}, {"ip", h.ip.str()},
                          {"mac", h.mac.str()}};
  };
  nlohmann::json up = {{"event", "up"},
                       {"method", pc.method},
                       {"variant", pc.variant},
                       {"mode", o.mode},
                       {"protection", pc.protection},
                       {"proxy_pid", proxy->pid()},
                       {"tool_pid", getpid()},
                       {"interval_s", o.interval},
                       {"hosts",
                        {{"sender", host(topo->sender)},
                         {"proxy", {{"ns", topo->proxy_in.ns}, {"exec", "ip netns exec " + topo->proxy_in.ns},
                                    {"in", host(topo->proxy_in)}, {"out", host(topo->proxy_out)},
                                    {"addresses_owned_by", info.kernel_owns_addresses ? "kernel" : "stack"}}},
                         {"receiver", host(topo->receiver)}}},
                       {"namespaces", topo->namespaces()}};
  if (relay)
    up["relay"] = {{"listen", topo->proxy_in.ip.str() + ":" + std::to_string(o.relay_port)},
                   {"to", topo->receiver.ip.str() + ":" + std::to_string(o.relay_port)}};
  std::string human = fmt::format(
      "proxy: {} in {} mode is up (proxy pid {}).\n"
      "  sender    {:<36} {} {}\n"
      "  proxy     {:<36} {} {} | {} {}  (held by the {})\n"
      "  receiver  {:<36} {} {}\n",
      label, o.mode, proxy->pid(), "ip netns exec " + topo->sender.ns, topo->sender.ifname, topo->sender.ip.str(),
      "ip netns exec " + topo->proxy_in.ns, topo->proxy_in.ifname, topo->proxy_in.ip.str(), topo->proxy_out.ifname,
      topo->proxy_out.ip.str(), info.kernel_owns_addresses ? "proxy's kernel" : "method's Stack; the kernel has none",
      "ip netns exec " + topo->receiver.ns, topo->receiver.ifname, topo->receiver.ip.str());
  if (relay)
    human += fmt::format(
        "  relay: UDP sent to {}:{} from the sender goes on to {}:{}\n"
        "  try:   ip netns exec {} ping -c 3 {}   (answered by the proxy)\n",
        topo->proxy_in.ip.str(), o.relay_port, topo->receiver.ip.str(), o.relay_port, topo->sender.ns,
        topo->proxy_in.ip.str());
  else
    human += fmt::format("  try:   ip netns exec {} ping -c 3 {}\n", topo->sender.ns, topo->receiver.ip.str());
  human += "Ctrl-C stops the method, prints its final report and removes the hosts.";
  out.event(up, human);

  // Status lines: the proxy's snapshots, as they come.
  std::atomic<bool> proxy_ended{false};
  nlohmann::json first;
  std::optional<ProxyStatus> tracker;
  std::mutex tracker_mu;
  std::thread status([&] {
    std::string buf;
    char chunk[4096];
    for (;;) {
      const ssize_t n = read(status_fd, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      buf.append(chunk, size_t(n));
      for (size_t nl; (nl = buf.find('\n')) != std::string::npos;) {
        const nlohmann::json snap = nlohmann::json::parse(buf.substr(0, nl), nullptr, false);
        buf.erase(0, nl + 1);
        if (snap.is_discarded()) continue;
        std::lock_guard<std::mutex> g(tracker_mu);
        if (!tracker) {
          tracker.emplace(ifaces, snap);
          continue;
        }
        nlohmann::json iv = tracker->next(snap);
        nlohmann::json ev = iv;
        ev["event"] = "status";
        out.event(ev, format_status(iv, ifaces));
      }
    }
    proxy_ended.store(true);
  });

  // What runs while the proxy stands: the commands, the UDP test; or nothing (until stopped).
  int exit_code = 0;
  const double t_start = now_s();
  auto should_stop = [&] {
    return stop_requested() || proxy_ended.load() || (o.duration > 0 && now_s() - t_start >= o.duration);
  };
  std::vector<std::pair<std::string, pid_t>> receivers;
  try {
    for (const std::string& c : o.exec_receiver) receivers.push_back({c, spawn_in(topo->receiver.ns, c, o.json)});
  } catch (const std::exception& e) {
    out.error(std::string("proxy: --exec-receiver: ") + e.what());
    exit_code = 1;
  }
  if (o.udp_count > 0 && !should_stop()) {
    if (!proxy_tool::print_udp_test(out, udp_test(*topo, o, relay))) exit_code = std::max(exit_code, 1);
  }
  for (const std::string& c : o.exec_sender) {
    if (should_stop()) break;
    pid_t p = -1;
    try {
      p = spawn_in(topo->sender.ns, c, o.json);
    } catch (const std::exception& e) {
      out.error(std::string("proxy: --exec-sender: ") + e.what());
      exit_code = 1;
      break;
    }
    int st = 0;
    bool ended = false;
    while (!ended && !should_stop()) {
      ended = waitpid(p, &st, WNOHANG) == p;
      if (!ended) usleep(20'000);
    }
    if (!ended) st = end_group(p);
    else kill(-p, SIGKILL);
    out.note(fmt::format("proxy: sender command '{}': {}", c, proxy_tool::describe_wait_status(st)));
    out.event({{"event", "command"}, {"host", "sender"}, {"command", c}, {"status", proxy_tool::describe_wait_status(st)},
               {"exit_status", WIFEXITED(st) ? WEXITSTATUS(st) : -1}},
              "");
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) exit_code = std::max(exit_code, 1);
  }
  const bool jobs = o.udp_count > 0 || !o.exec_sender.empty();
  if (!jobs)  // stand until stopped (or until the receiver's commands end, if only those were given)
    while (!should_stop()) {
      if (!receivers.empty()) {
        bool all_done = true;
        for (auto& [c, p] : receivers) all_done &= kill(p, 0) != 0 || waitpid(p, nullptr, WNOHANG) == p;
        if (all_done) break;
      }
      usleep(50'000);
    }
  for (auto& [c, p] : receivers) {
    const int st = end_group(p);
    out.note(fmt::format("proxy: receiver command '{}': {}", c, proxy_tool::describe_wait_status(st)));
  }

  // Stop the method; its final report closes the sums.
  const bool died = proxy_ended.load() && !stop_requested();
  proxy->stop();
  nlohmann::json report = proxy->result(15000);
  status.join();
  close(status_fd);
  if (report.contains("error")) {
    out.error(fmt::format("proxy: {} {}: {}", label, died ? "ended early" : "failed", report["error"].get<std::string>()));
    out.event({{"event", "final"}, {"error", report["error"]}, {"report", report}}, "");
    return 1;
  }
  const std::string why = stop_requested() ? "stopped by a signal"
                          : (o.duration > 0 && now_s() - t_start >= o.duration) ? "--duration reached"
                          : jobs ? "the commands ended"
                                 : "the receiver's commands ended";
  {
    std::lock_guard<std::mutex> g(tracker_mu);
    proxy_tool::print_final(out, tracker ? &*tracker : nullptr, report, 0, ifaces, label, why, exit_code);
  }
  proxy.reset();
  topo.reset();  // the hosts go
  out.note("proxy: hosts removed");
  return exit_code;
}

}  // namespace
namespace proxy_tool {
namespace {
std::atomic<bool> g_stop{false};
struct sigaction g_hard[3];
constexpr int kSignals[3] = {SIGINT, SIGTERM, SIGHUP};

void on_stop_signal(int sig) {
  if (!g_stop.exchange(true)) return;
  for (int i = 0; i < 3; ++i)
    if (kSignals[i] == sig) sigaction(sig, &g_hard[i], nullptr);
  raise(sig);
}
}  // namespace

void install_stop_handler() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  for (int i = 0; i < 3; ++i) sigaction(kSignals[i], &sa, &g_hard[i]);
}
bool stop_requested() { return g_stop.load(); }

nlohmann::json print_final(Out& out, ProxyStatus* tracker, nlohmann::json report, double t0,
                           const std::vector<std::string>& ifaces, const std::string& label, const std::string& why,
                           int exit_code) {
  nlohmann::json totals;
  if (tracker && report.contains("last_snapshot")) {
    nlohmann::json last = report["last_snapshot"];
    last["t"] = last.value("t", 0.0) - t0;
    report.erase("last_snapshot");
    last["method"] = report;
    nlohmann::json iv = tracker->next(last);
    iv["event"] = "status";
    iv["last"] = true;
    out.event(iv, format_status(iv, ifaces));
    totals = tracker->totals();
  }
  report.erase("last_snapshot");
  std::string summary = fmt::format("proxy: {} stopped ({}); final report of the method:\n{}", label, why,
                                    report.dump(2));
  if (totals.is_object()) {
    summary += fmt::format("\ntotals over {:.1f} s: forwarded {}", totals.value("seconds", 0.0),
                           totals.value("forwarded", uint64_t(0)));
    for (const std::string& i : ifaces)
      summary += fmt::format(", {} in {} out {}", i, totals["interfaces"][i].value("rx", uint64_t(0)),
                             totals["interfaces"][i].value("tx", uint64_t(0)));
  }
  out.event({{"event", "final"}, {"why", why}, {"report", report}, {"totals", totals}, {"exit_status", exit_code}},
            summary);
  return totals;
}

std::string describe_wait_status(int st) {
  if (WIFEXITED(st)) return "exit status " + std::to_string(WEXITSTATUS(st));
  if (WIFSIGNALED(st)) return std::string("killed by ") + strsignal(WTERMSIG(st));
  return "status " + std::to_string(st);
}
}  // namespace proxy_tool

}  // namespace ulsnet

int main(int argc, char** argv) {
  using namespace ulsnet;
  Options o;
  CLI::App app{"ulsnet: any proxy method standing between the sender and receiver hosts, for your own traffic"};
  app.add_option("--method", o.method, "method or method:variant, as //bench:throughput --methods names them")->required();
  app.add_option("--mode", o.mode, "router or relay")->check(CLI::IsMember({"router", "relay"}));
  app.add_option("--hosts", o.hosts,
                 "netns (three network namespaces on this machine), vm (three VMs on the ULS kernel) or ssh (three "
                 "real hosts: --sender H --proxy H --receiver H, below)")
      ->check(CLI::IsMember({"netns", "vm", "ssh"}));
  app.add_option("--protection", o.protection, "sandbox: auto, pkey, mprotect or none")
      ->check(CLI::IsMember({"auto", "pkey", "mprotect", "none"}));
  app.add_option("--batch", o.batch, "frames per burst / datagrams per call")->check(CLI::Range(1, 1024));
  app.add_option("--relay-port", o.relay_port, "relay: the UDP port the proxy listens on and sends to")
      ->check(CLI::Range(1, 65535));
  app.add_option("--interval", o.interval, "seconds between status lines")->check(CLI::Range(0.1, 60.0));
  app.add_option("--duration", o.duration, "stop after this many seconds (default: until Ctrl-C)")
      ->check(CLI::Range(0.0, 86400.0));
  app.add_flag("--json", o.json, "JSON lines on stdout (messages for people on stderr)");
  app.add_flag("--arp", o.arp, "hosts and proxy resolve each other by ARP (default: static neighbours)");
  app.add_option("--proxy-cpu", o.proxy_cpu, "pin the proxy process to this CPU (default: not pinned)")
      ->check(CLI::Range(0, 4095));
  app.add_option("--exec-sender", o.exec_sender,
                 "run this shell command in the sender host once the proxy is up, then stop (repeatable)");
  app.add_option("--exec-receiver", o.exec_receiver,
                 "run this shell command in the receiver host while the proxy stands (ended at stop)");
  app.add_option("--udp-test", o.udp_count, "send this many numbered datagrams (the trials' generator and sink) "
                                            "through the proxy, report, then stop")
      ->check(CLI::Range(uint64_t(1), uint64_t(10'000'000)));
  app.add_option("--udp-rate", o.udp_rate, "--udp-test's rate, datagrams per second")->check(CLI::Range(1.0, 1e7));
  app.add_option("--udp-payload", o.udp_payload, "--udp-test's UDP payload bytes")
      ->check(CLI::Range(kMinPayload, kMaxPayload));
  ssh::SshThroughputOptions so;
  ssh::add_ssh_host_flags(app, so, kSshGroup);
  CLI11_PARSE(app, argc, argv);
  std::vector<std::string> ssh_given;
  for (const CLI::Option* opt : app.get_options())
    if (opt->get_group() == kSshGroup && opt->count() > 0) ssh_given.push_back(opt->get_name());
  try {
    return run(o, so, ssh_given, argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "proxy: %s\n", e.what());
    return 1;
  }
}
