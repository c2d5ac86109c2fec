// //bench/ssh:ssh_throughput: the throughput experiment across real hosts over SSH.
//
//   bazel run //bench/ssh:ssh_throughput -- --sender HOST --proxy HOST --receiver HOST
//       --method kernel-socket:batched --mode relay --payload 64 --rates 10000,max
//       --duration 1 --reps 3 --out FILE
//
// One OpenSSH connection per host (a connection master this process owns; every session of the
// run goes through it). The agent (//bench/ssh:ulsnet_agent, built with this binary, found in its
// runfiles) is copied by scp into a fresh temporary directory on each host; `ulsnet_agent env`
// there gives each host's environment (echoed in the result) and finds the test interfaces by
// their addresses. Each trial: the sink (recv) ready on the receiver, the proxy method ready on
// the proxy, the generator (send) runs for --duration, a drain, the proxy and the sink told to
// stop; the three JSON reports are accounted (bench/ssh/ssh_accounting.h). Every wait is bounded;
// remote agents stop when their session ends (end of stdin) and at their own time bound.
// On every way out (the end, an error, SIGINT/SIGTERM/SIGHUP) the remote roles are ended, the
// copied files removed (ssh: kill the agents still named in their pid files, rm -rf the
// directory), the connections closed. A second signal kills the local ssh clients at once.
// Also: 95% CIs per point, --loads (a sweep at fractions of each job's PDR), resuming an --out of
// the same configuration (bench/ssh/resume.h), and one-way delays across machines (the generator
// on the receiver's clock, bench/ssh/clock_exchange.h); `//bench:throughput --hosts=ssh` execs
// this binary.
// CPU (E5) and competition (E3 on the forwarding path), as //bench:throughput has them: the
// proxy's agent pins the method to --proxy-cpu (default: the proxy host's last online CPU when it
// has >= 2) and reports where its threads ended up; each trial's `cpu` holds the method's own CPU
// time (the agent's getrusage) and its CPU's /proc/stat time per forwarded packet, each point the
// medians (bench/ssh/ssh_accounting.h trial_cpu, summarize_cpu). Every job gets a point at the
// common load (--common-load, or half the batched kernel-socket relay's PDR lower bound when its
// search runs: that job first; bench/ssh/load_plan.h), with `load_basis`, and, with --competitors,
// the same again with N busy loops on the proxy's CPU (started and killed by the proxy's agent
// around each trial); bench/targets.h judges the latency and CPU targets from them.
//
// Exit: 0 every point measured; 1 a point errored (kept in the file with its error); 2 bad
// arguments; 3 the hosts could not be prepared (connection, copy, environment, interfaces);
// 130 interrupted (the file keeps the finished points, complete: false).
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "baselines/registry.h"
#include "bench/environment.h"
#include "bench/search.h"
#include "bench/targets.h"
#include "bench/ssh/agent_protocol.h"
#include "bench/ssh/child.h"
#include "bench/ssh/load_plan.h"
#include "bench/ssh/resume.h"
#include "bench/ssh/ssh_accounting.h"
#include "bench/ssh/ssh_command.h"
#include "bench/traffic.h"
#include "stack/net_types.h"

namespace {

using namespace ulsnet;
using namespace ulsnet::ssh;

constexpr int kExitPointError = 1;
constexpr int kExitUsage = 2;
constexpr int kExitSetup = 3;
constexpr int kExitInterrupted = 130;

std::atomic<int> g_signals{0};

void on_signal(int) {
  g_interrupted = true;
  if (g_signals.fetch_add(1) >= 1) {
    kill_all_children_now();
    _exit(kExitInterrupted);
  }
}

struct Options {
  std::string sender, proxy, receiver;
  std::string methods = "kernel-socket:batched", modes = "relay", payloads = "64", rates = "max";
  double duration = 1;
  int reps = 3;
  std::string out;
  // The test links (defaults: bench/topology.h's plan).
  std::string sender_if, sender_ip = "10.201.1.1", sender_mac;
  std::string proxy_in_if, proxy_in_ip = "10.201.1.2", proxy_in_mac;
  std::string proxy_out_if, proxy_out_ip = "10.201.2.1", proxy_out_mac;
  std::string receiver_if, receiver_ip = "10.201.2.2", receiver_mac;
  int prefix = 24;
  uint16_t port = 9000;
  std::string proxy_addresses = "as-is";
  // SSH.
  std::string ssh_user, ssh_identity;
  int ssh_port = 0, ssh_connect_timeout = 10;
  std::vector<std::string> ssh_options;
  bool no_multiplex = false;
  std::string remote_tmp = "/tmp";
  std::string agent;
  // Trials.
  uint32_t batch = 32;
  uint64_t max_packets = 5'000'000;
  std::string protection = "auto";
  double drain = 0.3, warmup = 0, setup_timeout = 20;
  // The NDR/PDR search (bench/search.h), at the first payload size.
  bool search = false;
  double pdr_loss = 0.005, search_duration = 0.25, search_precision = 0.02, search_max = 0;
  int search_trials = 40, final_trials = 1;
  // The offered-load sweep: fractions of each job's own PDR lower bound (implies the search).
  std::string loads;
  bool fresh = false;
  // One-way delays across machines (bench/ssh/clock_exchange.h).
  std::string clock_sync = "auto", clock_sync_addr;
  uint16_t clock_sync_port = 9101;
  // CPU placement, the common load and competitors (bench/ssh/load_plan.h).
  std::string proxy_cpu = "auto";
  double common_load = 0;
  std::string competitors;
};

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> v;
  size_t i = 0;
  while (i <= s.size()) {
    size_t c = s.find(',', i);
    if (c == std::string::npos) c = s.size();
    if (c > i) v.push_back(s.substr(i, c - i));
    i = c + 1;
  }
  return v;
}

// A file of this binary's runfiles, by its workspace path.
std::string runfile(const std::string& path) {
  std::vector<std::string> roots;
  for (const char* var : {"RUNFILES_DIR", "TEST_SRCDIR"})
    if (const char* r = std::getenv(var)) roots.emplace_back(r);
  char self[4096] = {};
  if (readlink("/proc/self/exe", self, sizeof self - 1) > 0) roots.push_back(std::string(self) + ".runfiles");
  for (const auto& root : roots)
    for (const char* ws : {"ulsnet", "__main__"})
      if (std::string p = root + "/" + ws + "/" + path; std::filesystem::exists(p)) return p;
  // Beside this binary (bazel-bin/bench/ssh/).
  if (self[0]) {
    std::string p = std::filesystem::path(self).parent_path() / std::filesystem::path(path).filename();
    if (std::filesystem::exists(p)) return p;
  }
  return "";
}

// One host of the run (a role; two roles may name one machine, each gets its own directory).
struct Host {
  std::string role;  // sender, proxy, receiver
  std::string target;
  SshOptions ssh;
  std::string dir;  // the remote temporary directory, "" until made
  nlohmann::json env;
  std::string agent() const { return dir + "/ulsnet_agent"; }
};

struct Master {
  std::unique_ptr<Child> child;
  std::string control_path;
};

// Everything this run made locally and remotely, undone in its destructor (every way out).
class Run {
 public:
  Run(const Options& o) : o_(o) {}
  ~Run() { cleanup(); }

  const Options& o_;
  std::vector<Host> hosts;  // sender, proxy, receiver
  std::map<std::string, Master> masters;  // by target
  std::string local_dir;
  nlohmann::json cleanup_log = nlohmann::json::array();

  void cleanup() {
    if (cleaned_) return;
    cleaned_ = true;
    for (Host& h : hosts) {
      if (h.dir.empty()) continue;
      // The agents still named in their pid files (checked to be this directory's agent), then
      // the directory. Not interruptible: this is the way out.
      const std::string cmd =
          "d=" + shell_quote(h.dir) +
          "; for f in \"$d\"/*.pid; do [ -f \"$f\" ] || continue; p=$(cat \"$f\"); "
          "case \"$(readlink /proc/$p/exe 2>/dev/null)\" in \"$d\"/ulsnet_agent*) kill -9 \"$p\" && echo killed $p;; esac; "
          "done; rm -rf -- \"$d\"";
      RunResult r = run_bounded(ssh_argv(h.ssh, h.target, cmd), o_.ssh_connect_timeout + 10);
      nlohmann::json e = {{"host", h.role}, {"removed", h.dir}, {"status", r.status}};
      if (!r.out.empty()) e["output"] = r.out;
      if (r.status != 0) {
        e["error"] = r.err;
        std::fprintf(stderr, "ssh_throughput: clean-up on %s (%s) failed (%d): %s\n", h.role.c_str(),
                     h.target.c_str(), r.status, r.err.c_str());
      }
      cleanup_log.push_back(e);
      h.dir.clear();
    }
    for (auto& [target, m] : masters) {
      if (!m.child) continue;
      std::vector<std::string> exit_argv = {"ssh", "-S", m.control_path, "-O", "exit", "--", target};
      run_bounded(exit_argv, 5);
      m.child->finish(after(2));
      m.child.reset();
    }
    if (!local_dir.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(local_dir, ec);
    }
  }

 private:
  bool cleaned_ = false;
};

// ---- preparing the hosts --------------------------------------------------------------------

struct SetupError {
  std::string message;
};

void connect(Run& run, Host& h) {
  if (run.o_.no_multiplex) return;
  auto it = run.masters.find(h.target);
  if (it == run.masters.end()) {
    Master m;
    m.control_path = run.local_dir + "/m" + std::to_string(run.masters.size());
    SshOptions so = h.ssh;
    so.control_path = m.control_path;
    m.child = std::make_unique<Child>(ssh_master_argv(so, h.target), false);
    const auto deadline = after(run.o_.ssh_connect_timeout + 5);
    bool up = false;
    while (!up && Clock::now() < deadline && !g_interrupted && !m.child->ended()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      up = run_bounded(ssh_check_master_argv(so, h.target), 5).status == 0;
    }
    if (!up) {
      m.child->finish(after(1));
      throw SetupError{"cannot connect to the " + h.role + " host " + destination(h.target, so) + ": " +
                       (m.child->err_tail().empty() ? std::string(g_interrupted ? "interrupted" : "no answer")
                                                    : m.child->err_tail())};
    }
    it = run.masters.emplace(h.target, std::move(m)).first;
  }
  h.ssh.control_path = it->second.control_path;
}

// Runs a remote command to completion; its stdout, or a SetupError naming `what`.
std::string remote(Run& run, const Host& h, const std::string& cmd, const std::string& what, double timeout_s) {
  RunResult r = run_bounded(ssh_argv(h.ssh, h.target, cmd), timeout_s);
  if (r.status != 0)
    throw SetupError{what + " on the " + h.role + " host " + h.target + " failed (" +
                     (r.timed_out ? "timed out" : "exit " + std::to_string(r.status)) + "): " + r.err};
  return r.out;
}

void prepare(Run& run, Host& h, const std::string& agent_path, const std::vector<std::string>& env_args) {
  connect(run, h);
  if (g_interrupted) throw SetupError{"interrupted"};
  std::string dir = remote(run, h,
                           "mktemp -d " + shell_quote(run.o_.remote_tmp) + "/ulsnet-agent.XXXXXXXX",
                           "making a temporary directory", run.o_.setup_timeout);
  while (!dir.empty() && (dir.back() == '\n' || dir.back() == '\r')) dir.pop_back();
  if (dir.empty() || dir[0] != '/' || dir.find_first_of(" \t\n'\"\\$`") != std::string::npos)
    throw SetupError{"mktemp on the " + h.role + " host gave an unusable directory '" + dir + "'"};
  h.dir = dir;
  if (g_interrupted) throw SetupError{"interrupted"};
  RunResult r = run_bounded(scp_argv(h.ssh, agent_path, h.target, h.agent()), run.o_.setup_timeout + 60);
  if (r.status != 0)
    throw SetupError{"copying the agent to the " + h.role + " host " + h.target + " failed (" +
                     (r.timed_out ? "timed out" : "exit " + std::to_string(r.status)) + "): " + r.err};
  if (g_interrupted) throw SetupError{"interrupted"};
  std::vector<std::string> words = {h.agent(), "env"};
  words.insert(words.end(), env_args.begin(), env_args.end());
  const std::string out = remote(run, h, "chmod 755 " + shell_quote(h.agent()) + " && exec " + shell_join(words),
                                 "the agent's env role", run.o_.setup_timeout + 30);
  AgentOutput a = parse_agent_output(out, "env");
  if (!a.report) throw SetupError{"the " + h.role + " host's environment: " + a.error};
  h.env = *a.report;
}

// The interface named by a flag, or the one holding `ip` on the host; its MAC from the host's
// own report unless given.
struct Port {
  std::string ifname, ip, mac;
};

Port resolve(const Host& h, const std::string& flag_if, const std::string& ip, const std::string& flag_mac,
             const std::string& if_flag_name) {
  Port p{flag_if, ip, flag_mac};
  if (p.ifname.empty()) {
    if (h.env.contains("interface_holding") && h.env["interface_holding"].contains(ip) &&
        h.env["interface_holding"][ip].is_string())
      p.ifname = h.env["interface_holding"][ip];
    if (p.ifname.empty())
      throw SetupError{"the " + h.role + " host (" + h.target + ") has no interface with " + ip +
                       ": configure the test address there, or name the interface with " + if_flag_name};
  }
  const nlohmann::json* iface = nullptr;
  if (h.env.contains("interfaces") && h.env["interfaces"].is_array())
    for (const auto& i : h.env["interfaces"])
      if (i.is_object() && i.value("name", "") == p.ifname) iface = &i;
  if (iface == nullptr)
    throw SetupError{"the " + h.role + " host (" + h.target + ") has no interface '" + p.ifname + "'"};
  if (!iface->value("up", false))
    throw SetupError{"the " + h.role + " host's interface " + p.ifname + " is down"};
  if (p.mac.empty()) p.mac = iface->value("mac", "");
  return p;
}

// ---- one trial ------------------------------------------------------------------------------

struct Addressing {
  Port sender, proxy_in, proxy_out, receiver;
  // The clocks: one machine's (one boot_id), or compared per trial over UDP between the agents
  // at clock_addr:clock_port ("": not compared), the generator shifted onto the receiver's.
  bool clock_shared = false, clock_shift = false;
  std::string clock_addr;
  uint16_t clock_port = 9101;
  int proxy_cpu = -1;  // the proxy method's CPU (-1: not pinned)
  // The sender's and receiver's CPUs when they share the proxy's machine (empty: not pinned).
  std::vector<int> sender_cpus, receiver_cpus;
};

std::string cpu_list(const std::vector<int>& v) {
  std::string s;
  for (int c : v) s += (s.empty() ? "" : ",") + std::to_string(c);
  return s;
}

struct Job {
  const MethodInfo* info;
  std::string variant;
  ForwardMode mode;
  std::string name() const { return fmt::format("{}:{} {}", info->name, variant, forward_mode_name(mode)); }
  // The sandbox's protection domain as asked (the agent resolves "auto" on the proxy host).
  std::string protection(const std::string& asked) const { return info->name == "sandbox" ? asked : "n/a"; }
  std::string key(const std::string& asked, uint32_t payload) const {
    return job_key(std::string(info->name), variant, forward_mode_name(mode), protection(asked), payload);
  }
};

// A role started on a host, its agent's stdout read line by line.
std::unique_ptr<Child> start_role(const Host& h, const std::vector<std::string>& words) {
  std::vector<std::string> w = {h.agent()};
  w.insert(w.end(), words.begin(), words.end());
  return std::make_unique<Child>(ssh_argv(h.ssh, h.target, "exec " + shell_join(w)), true);
}

// An agent line's event (ready, report or error), "malformed", or "" for a foreign line.
std::string agent_event(const std::string& line) {
  try {
    auto a = parse_agent_line(line);
    return a ? a->event : "";
  } catch (const AgentProtocolError&) {
    return "malformed";  // it ends a wait too; the parse after it says what it was
  }
}

bool is_final(const std::string& line) {
  const std::string e = agent_event(line);
  return !e.empty() && e != "ready";
}

bool is_final_or_ready(const std::string& line) { return !agent_event(line).empty(); }

// The role's report, or its error with the ssh client's stderr when the agent said nothing.
struct Collected {
  std::optional<nlohmann::json> report;
  std::string error;
};

Collected collect(Child& c, const std::string& role, const std::string& host_role, double timeout_s) {
  const int status = c.finish(after(timeout_s));
  AgentOutput a = parse_agent_output(c.out(), role);
  Collected r;
  if (a.report) {
    r.report = *a.report;
    return r;
  }
  r.error = host_role + " host: " + a.error;
  if (c.timed_out()) r.error += " (no end within " + fmt::format("{:.0f}", timeout_s) + " s; ended)";
  else if (status != 0) r.error += " (exit " + std::to_string(status) + ")";
  if (!c.err_tail().empty()) r.error += "; stderr: " + c.err_tail(400);
  return r;
}

struct TrialParams {
  Job job;
  uint32_t payload;
  double rate_pps;  // 0: max
  double duration_s;
  uint32_t run_id;
  int competitors = 0;  // CPU-bound processes on the proxy's CPU during the trial
};

nlohmann::json run_trial(const Options& o, std::vector<Host>& hosts, const Addressing& ad, const TrialParams& t) {
  Host &snd = hosts[0], &prx = hosts[1], &rcv = hosts[2];
  const auto t0 = Clock::now();
  const double bound = t.duration_s + o.setup_timeout + 30;  // the remote roles' own time bound
  const std::string run_id = std::to_string(t.run_id);
  auto fail = [&](const std::string& why, const nlohmann::json& reports = nlohmann::json::object()) {
    return nlohmann::json{{"error", why}, {"run_id", t.run_id}, {"reports", reports}};
  };

  std::vector<std::string> rw = {
      "recv", "--port", std::to_string(o.port), "--run-id", run_id, "--max-packets", std::to_string(o.max_packets),
      "--warmup", fmt::format("{}", o.warmup), "--if", ad.receiver.ifname, "--max-seconds",
      fmt::format("{:.0f}", bound), "--pidfile", rcv.dir + "/recv-" + run_id + ".pid", "--clock-port",
      ad.clock_addr.empty() ? "0" : std::to_string(ad.clock_port)};
  if (!ad.receiver_cpus.empty()) rw.insert(rw.end(), {"--cpus", cpu_list(ad.receiver_cpus)});
  std::unique_ptr<Child> recv = start_role(rcv, rw);
  if (!recv->wait_line(is_final_or_ready, after(o.setup_timeout)) || !parse_agent_output(recv->out(), "recv").ready) {
    if (g_interrupted) return fail("interrupted");
    return fail("the sink did not get ready: " + collect(*recv, "recv", "receiver", 3).error);
  }

  std::vector<std::string> pw = {
      "proxy", "--method", std::string(t.job.info->name) + ":" + t.job.variant, "--mode", forward_mode_name(t.job.mode),
      "--in-if", ad.proxy_in.ifname, "--in-ip", ad.proxy_in.ip, "--in-peer-ip", ad.sender.ip,
      "--out-if", ad.proxy_out.ifname, "--out-ip", ad.proxy_out.ip, "--out-peer-ip", ad.receiver.ip,
      "--prefix", std::to_string(o.prefix), "--port", std::to_string(o.port), "--batch", std::to_string(o.batch),
      "--protection", o.protection, "--addresses", o.proxy_addresses, "--max-seconds", fmt::format("{:.0f}", bound),
      "--pidfile", prx.dir + "/proxy-" + run_id + ".pid", "--cpu", std::to_string(ad.proxy_cpu),
      "--competitors", std::to_string(t.competitors)};
  if (!ad.sender.mac.empty()) pw.insert(pw.end(), {"--in-peer-mac", ad.sender.mac});
  if (!ad.receiver.mac.empty()) pw.insert(pw.end(), {"--out-peer-mac", ad.receiver.mac});
  std::unique_ptr<Child> proxy = start_role(prx, pw);
  if (!proxy->wait_line(is_final_or_ready, after(o.setup_timeout)) || !parse_agent_output(proxy->out(), "proxy").ready) {
    if (g_interrupted) return fail("interrupted");
    return fail("the proxy did not get ready: " + collect(*proxy, "proxy", "proxy", 3).error);
  }

  const std::string dst = t.job.mode == ForwardMode::kRelay ? ad.proxy_in.ip : ad.receiver.ip;
  std::vector<std::string> sw = {
      "send", "--dst", dst, "--port", std::to_string(o.port), "--payload", std::to_string(t.payload), "--rate",
      t.rate_pps > 0 ? fmt::format("{}", t.rate_pps) : "max", "--duration", fmt::format("{}", t.duration_s),
      "--count", std::to_string(o.max_packets), "--batch", std::to_string(o.batch), "--run-id", run_id, "--if",
      ad.sender.ifname, "--max-seconds", fmt::format("{:.0f}", t.duration_s + 15), "--pidfile",
      snd.dir + "/send-" + run_id + ".pid"};
  if (!ad.clock_addr.empty()) sw.insert(sw.end(), {"--clock-peer", ad.clock_addr, "--clock-port", std::to_string(ad.clock_port)});
  if (!ad.clock_addr.empty() && ad.clock_shift) sw.push_back("--clock-shift");
  if (!ad.sender_cpus.empty()) sw.insert(sw.end(), {"--cpus", cpu_list(ad.sender_cpus)});
  std::unique_ptr<Child> send = start_role(snd, sw);
  // The sender says "ready" as its stream starts: the proxy's CPU window starts there ("mark"),
  // not at its own ready, which comes before the sender's session, its clock comparison and the
  // time namespace. Then the generator's end (its report or error), bounded; its session stays
  // open until then.
  const auto send_end = after(t.duration_s + o.setup_timeout + 15);
  send->wait_line(is_final_or_ready, send_end);
  if (parse_agent_output(send->out(), "send").ready) {
    proxy->write_stdin("mark\n");
    send->wait_line(is_final, send_end);
  }
  if (g_interrupted) return fail("interrupted");
  Collected g = collect(*send, "send", "sender", 5);
  // Frames in flight land (or are dropped) before the proxy and the sink stop counting.
  const auto drain_end = after(o.drain);
  while (Clock::now() < drain_end && !g_interrupted) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  proxy->write_stdin("stop\n");
  Collected p = collect(*proxy, "proxy", "proxy", 10);
  recv->write_stdin("stop\n");
  Collected s = collect(*recv, "recv", "receiver", 10);
  nlohmann::json reports = {{"generator", g.report ? *g.report : nlohmann::json(nullptr)},
                            {"proxy", p.report ? *p.report : nlohmann::json(nullptr)},
                            {"sink", s.report ? *s.report : nlohmann::json(nullptr)}};
  for (const Collected* c : {&g, &p, &s})
    if (!c->report) return fail(c->error, reports);
  nlohmann::json rec;
  try {
    rec = account_ssh_trial(*g.report, *p.report, *s.report,
                            {ad.sender.ifname, ad.proxy_in.ifname, ad.proxy_out.ifname, ad.receiver.ifname}, t.payload);
  } catch (const std::exception& e) {
    return fail(std::string("accounting: ") + e.what(), reports);
  }
  rec["latency"] = one_way_latency(ad.clock_shared, g.report->value("clock", nlohmann::json()));
  // CPU per forwarded packet from the proxy agent's own measurements (its window: from the
  // sender's start of stream, or from its ready, to stop: cpu.window).
  rec["cpu"] = trial_cpu(*p.report, rec.value("received", uint64_t(0)));
  rec["proxy_placement"] = p.report->value("placement", nlohmann::json());
  rec["run_id"] = t.run_id;
  rec["rate_pps"] = t.rate_pps;
  rec["duration_asked_s"] = t.duration_s;
  rec["drain_s"] = o.drain;
  rec["trial_wall_s"] = std::chrono::duration<double>(Clock::now() - t0).count();
  return rec;
}

// NDR and PDR of `job` at `payload` (bench/search.h), every trial a run_trial.
nlohmann::json search(const Options& o, std::vector<Host>& hosts, const Addressing& ad, const Job& job,
                      uint32_t payload, uint32_t& run_id) {
  SearchOptions so;
  so.criteria = {{"ndr", 0.0}, {"pdr", o.pdr_loss}};
  so.durations = {o.search_duration, o.duration};
  so.precision = o.search_precision;
  so.max_trials = o.search_trials;
  so.max_rate_pps = o.search_max;
  so.final_trials = o.final_trials;
  SearchResult r = throughput_search(so, [&](double rate, double d) {
    TrialOutcome out;
    out.sample = run_trial(o, hosts, ad, {job, payload, rate, d, run_id++});
    if (g_interrupted) out.error = "interrupted";
    else if (out.sample.contains("error")) out.error = out.sample["error"];
    else {
      out.offered_pps = out.sample["offered_pps"];
      out.loss = out.sample["loss"];
    }
    return out;
  });
  nlohmann::json cap = search_result_json(r, so);
  cap.update({{"method", job.info->name},
              {"variant", job.variant},
              {"protection", job.protection(o.protection)},
              {"mode", forward_mode_name(job.mode)},
              {"payload_bytes", payload}});
  for (const CriterionResult& c : r.criteria) {
    const nlohmann::json& k = cap[c.criterion.name];
    auto rate = [](const nlohmann::json& v) { return v.is_number() ? fmt::format("{:.0f}", v.get<double>()) : "-"; };
    std::fprintf(stderr, "%-32s %4u B %s: %s, passed %s, failed %s pps\n", job.name().c_str(), payload,
                 c.criterion.name.c_str(), k.value("status", "").c_str(), rate(k["lower_pps"]).c_str(),
                 rate(k["upper_pps"]).c_str());
  }
  return cap;
}

// ---- the run --------------------------------------------------------------------------------

std::optional<double> parse_rate(const std::string& r) {
  if (r == "max") return 0.0;
  char* end = nullptr;
  const double v = std::strtod(r.c_str(), &end);
  if (end == r.c_str() || *end != '\0' || !std::isfinite(v) || v <= 0 || v > 1e9) return std::nullopt;
  return v;
}

int run(int argc, char** argv) {
  Options o;
  CLI::App app{"ssh_throughput: the throughput experiment across real hosts over SSH (bench/README.md)"};
  app.option_defaults()->always_capture_default();
  app.add_option("--sender", o.sender, "the sender's host (HOST or USER@HOST, as for ssh)")->required();
  app.add_option("--proxy", o.proxy, "the proxy's host")->required();
  app.add_option("--receiver", o.receiver, "the receiver's host")->required();
  app.add_option("--method,--methods", o.methods, "NAME or NAME:VARIANT, comma-separated");
  app.add_option("--mode,--modes", o.modes, "relay and/or router, comma-separated");
  app.add_option("--payload,--sizes", o.payloads, "UDP payload bytes (24..1472), comma-separated");
  app.add_option("--rates", o.rates, "max (the generator unpaced) and/or packets/s, comma-separated");
  app.add_option("--duration", o.duration, "seconds per trial")->check(CLI::Range(0.05, 600.0));
  app.add_option("--reps", o.reps, "repetitions per point")->check(CLI::Range(1, 1000));
  app.add_option("--out", o.out,
                 "result file (default results/throughput-ssh-<UTC time>.json); an existing one of the same "
                 "configuration is resumed: its finished points and searches are kept");
  app.add_flag("--fresh", o.fresh, "--out names an existing file: start over instead of resuming it");
  app.add_option("--clock-sync", o.clock_sync,
                 "one-way delays across machines: auto (compare the sender's and the receiver's clocks over UDP before "
                 "and after every stream; run the generator on the receiver's clock when they are different machines), "
                 "always (shift even on one machine), off (no comparison: delays valid on one machine only)")
      ->check(CLI::IsMember({"auto", "always", "off"}));
  app.add_option("--clock-sync-addr", o.clock_sync_addr,
                 "the receiver's address as the sender reaches it for the comparison (default: the address the "
                 "receiver's sshd was reached on)");
  app.add_option("--clock-sync-port", o.clock_sync_port, "UDP port of the receiver's clock responder")
      ->check(CLI::Range(1, 65535));
  app.add_option("--sender-if", o.sender_if, "the sender's test interface (default: the one holding --sender-ip)");
  app.add_option("--sender-ip", o.sender_ip, "");
  app.add_option("--sender-mac", o.sender_mac, "(default: read on the host)");
  app.add_option("--proxy-in-if", o.proxy_in_if, "the proxy's interface toward the sender (default: the one holding --proxy-in-ip)");
  app.add_option("--proxy-in-ip", o.proxy_in_ip, "");
  app.add_option("--proxy-in-mac", o.proxy_in_mac);
  app.add_option("--proxy-out-if", o.proxy_out_if, "the proxy's interface toward the receiver (default: the one holding --proxy-out-ip)");
  app.add_option("--proxy-out-ip", o.proxy_out_ip, "");
  app.add_option("--proxy-out-mac", o.proxy_out_mac);
  app.add_option("--receiver-if", o.receiver_if, "the receiver's test interface (default: the one holding --receiver-ip)");
  app.add_option("--receiver-ip", o.receiver_ip, "");
  app.add_option("--receiver-mac", o.receiver_mac);
  app.add_option("--prefix", o.prefix, "prefix length of the test subnets")->check(CLI::Range(1, 32));
  app.add_option("--port", o.port, "UDP port of the stream");
  app.add_option("--proxy-addresses", o.proxy_addresses,
                 "as-is: the proxy's kernel addresses stay as configured; adjust: the agent adds or removes the "
                 "proxy's test addresses as each method needs (kernel methods own them, the Stack's do not) and "
                 "restores them")
      ->check(CLI::IsMember({"as-is", "adjust"}));
  app.add_option("--ssh-user", o.ssh_user, "user on every host (default: ssh's)");
  app.add_option("--ssh-port", o.ssh_port, "port of every host's sshd")->check(CLI::Range(1, 65535));
  app.add_option("--ssh-identity", o.ssh_identity, "private key file (ssh -i)");
  app.add_option("--ssh-option", o.ssh_options, "ssh -o KEY=VALUE (repeatable), e.g. StrictHostKeyChecking=accept-new");
  app.add_option("--ssh-connect-timeout", o.ssh_connect_timeout, "seconds")->check(CLI::Range(1, 300));
  app.add_flag("--no-ssh-multiplex", o.no_multiplex, "a new SSH connection per session instead of one master per host");
  app.add_option("--remote-tmp", o.remote_tmp, "where the agent's temporary directory is made on each host");
  app.add_option("--agent", o.agent, "the agent binary to copy (default: //bench/ssh:ulsnet_agent from the runfiles)");
  app.add_option("--batch", o.batch, "datagrams per mmsg call, frames per burst")->check(CLI::Range(1, 1024));
  app.add_option("--max-packets", o.max_packets, "bound on datagrams per trial")
      ->check(CLI::Range(uint64_t(1000), uint64_t(100'000'000)));
  app.add_option("--protection", o.protection, "the sandbox method's protection domain");
  app.add_option("--drain", o.drain, "seconds between the generator's end and stopping the proxy")
      ->check(CLI::Range(0.0, 10.0));
  app.add_option("--warmup", o.warmup, "seconds of each trial left out of the delay statistics")
      ->check(CLI::Range(0.0, 60.0));
  app.add_option("--setup-timeout", o.setup_timeout, "seconds for a remote step (a role getting ready, mktemp)")
      ->check(CLI::Range(1.0, 300.0));
  app.add_flag("--search", o.search, "also NDR and PDR per job at the first payload size (bench/search.h)");
  app.add_option("--pdr-loss", o.pdr_loss, "the PDR's loss criterion")->check(CLI::Range(0.0, 0.5));
  app.add_option("--search-duration", o.search_duration, "seconds per narrowing trial")->check(CLI::Range(0.05, 60.0));
  app.add_option("--search-precision", o.search_precision, "relative width of the final brackets")
      ->check(CLI::Range(0.001, 1.0));
  app.add_option("--search-trials", o.search_trials, "bound on one search's trials")->check(CLI::Range(2, 1000));
  app.add_option("--final-trials", o.final_trials, "trials per load at the final duration (odd)")
      ->check(CLI::Range(1, 99));
  app.add_option("--search-max", o.search_max, "cap on the search ceiling, pps (0: none)")->check(CLI::Range(0.0, 1e9));
  app.add_option("--loads", o.loads,
                 "the offered-load sweep at the first payload size, as fractions of each job's own PDR lower bound "
                 "there, comma-separated (e.g. 0.1,0.5,0.9: latency at 10/50/90% of capacity; above 1 reaches into "
                 "overload; in (0.01, 10]); implies --search");
  app.add_option("--proxy-cpu", o.proxy_cpu,
                 "the CPU the proxy's agent pins the method to (sched_setaffinity, every thread; the CPU whose "
                 "/proc/stat time is the proxy's in the CPU figures): auto (the proxy host's last online CPU when it "
                 "has >= 2, else none), none, or a CPU number");
  app.add_option("--common-load", o.common_load,
                 "pps of the common-load point every job gets (latency and CPU per packet at equal work: the "
                 "targets); 0: half the batched kernel-socket relay's PDR lower bound when that job's search runs "
                 "(it runs first), else no common-load point")
      ->check(CLI::Range(0.0, 1e9));
  app.add_option("--competitors", o.competitors,
                 "the common-load point again with N CPU-bound competitor processes on the proxy's CPU, a list "
                 "(e.g. 0,1,2,4; each in [0, 16]; default none), started and killed by the proxy's agent around "
                 "each trial");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : kExitUsage;
  }
  auto usage = [](const std::string& m) {
    std::fprintf(stderr, "ssh_throughput: %s\n", m.c_str());
    return kExitUsage;
  };

  // Everything that can be checked before touching a host.
  SshOptions so{o.ssh_user, o.ssh_port, o.ssh_identity, o.ssh_options, o.ssh_connect_timeout, ""};
  try {
    validate(so);
    for (const std::string* t : {&o.sender, &o.proxy, &o.receiver}) validate_target(*t);
  } catch (const std::invalid_argument& e) {
    return usage(e.what());
  }
  for (auto [v, name] : {std::pair{&o.sender_ip, "--sender-ip"}, {&o.proxy_in_ip, "--proxy-in-ip"},
                         {&o.proxy_out_ip, "--proxy-out-ip"}, {&o.receiver_ip, "--receiver-ip"}})
    if (!Ipv4Addr::parse(*v)) return usage(std::string(name) + ": '" + *v + "' is not an IPv4 address");
  for (auto [v, name] : {std::pair{&o.sender_mac, "--sender-mac"}, {&o.proxy_in_mac, "--proxy-in-mac"},
                         {&o.proxy_out_mac, "--proxy-out-mac"}, {&o.receiver_mac, "--receiver-mac"}})
    if (!v->empty() && !MacAddr::parse(*v)) return usage(std::string(name) + ": '" + *v + "' is not a MAC address");
  for (const std::string* n : {&o.sender_if, &o.proxy_in_if, &o.proxy_out_if, &o.receiver_if})
    if (n->find_first_of(" \t\n'\"/") != std::string::npos) return usage("bad interface name '" + *n + "'");
  if (o.remote_tmp.empty() || o.remote_tmp[0] != '/') return usage("--remote-tmp must be an absolute path");
  if (!o.clock_sync_addr.empty() && !Ipv4Addr::parse(o.clock_sync_addr))
    return usage("--clock-sync-addr: '" + o.clock_sync_addr + "' is not an IPv4 address");
  if (o.clock_sync_port == o.port) return usage("--clock-sync-port must differ from --port");
  if (o.final_trials % 2 == 0) return usage("--final-trials must be odd");
  std::vector<uint32_t> payloads;
  for (const std::string& p : split(o.payloads)) {
    char* end = nullptr;
    const unsigned long v = std::strtoul(p.c_str(), &end, 10);
    if (end == p.c_str() || *end != '\0' || v < kMinPayload || v > kMaxPayload)
      return usage(fmt::format("--payload '{}' outside [{}, {}]", p, kMinPayload, kMaxPayload));
    payloads.push_back(uint32_t(v));
  }
  std::vector<double> rates;
  for (const std::string& r : split(o.rates)) {
    auto v = parse_rate(r);
    if (!v) return usage("--rates: '" + r + "' is neither max nor a number of packets/s in (0, 1e9]");
    rates.push_back(*v);
  }
  std::vector<ForwardMode> modes;
  for (const std::string& m : split(o.modes)) {
    if (m != "relay" && m != "router") return usage("--mode: '" + m + "' is neither relay nor router");
    modes.push_back(m == "relay" ? ForwardMode::kRelay : ForwardMode::kRouter);
  }
  if (payloads.empty() || rates.empty() || modes.empty()) return usage("--payload, --rates and --mode need a value");
  std::vector<double> loads;
  for (const std::string& f : split(o.loads)) {
    char* end = nullptr;
    const double v = std::strtod(f.c_str(), &end);
    if (end == f.c_str() || *end != '\0' || !std::isfinite(v) || v < 0.01 || v > 10)
      return usage("--loads: '" + f + "' is not a fraction of the PDR in [0.01, 10]");
    loads.push_back(v);
  }
  if (!o.loads.empty() && loads.empty()) return usage("--loads needs at least one fraction");
  if (!loads.empty() && !o.search) {
    // The sweep is relative to each job's PDR, which only the search measures.
    o.search = true;
    std::fprintf(stderr, "ssh_throughput: --loads: the NDR/PDR search runs too (the sweep is relative to its PDR)\n");
  }
  std::vector<int> competitor_counts;
  try {
    competitor_counts = parse_competitors(o.competitors);
  } catch (const std::invalid_argument& e) {
    return usage(e.what());
  }
  if (o.proxy_cpu != "auto" && o.proxy_cpu != "none" &&
      (o.proxy_cpu.empty() || o.proxy_cpu.find_first_not_of("0123456789") != std::string::npos || o.proxy_cpu.size() > 6))
    return usage("--proxy-cpu: '" + o.proxy_cpu + "' is neither auto, none nor a CPU number");
  std::vector<Job> jobs;
  nlohmann::json skipped = nlohmann::json::array();
  try {
    for (auto& [info, variant] : expand_method_specs(split(o.methods), [](auto&&...) { return true; }))
      for (ForwardMode m : modes) {
        if ((m == ForwardMode::kRelay && !info->relay) || (m == ForwardMode::kRouter && !info->router)) {
          skipped.push_back(fmt::format("{}:{} has no {} mode", info->name, variant, forward_mode_name(m)));
          continue;
        }
        jobs.push_back({info, variant, m});
      }
  } catch (const std::exception& e) {
    return usage(e.what());
  }
  // The common load comes from the batched kernel-socket relay's PDR: that job goes first (as
  // //bench:throughput orders it).
  std::stable_partition(jobs.begin(), jobs.end(), [](const Job& j) {
    return is_common_load_basis_job(std::string(j.info->name), j.variant, forward_mode_name(j.mode));
  });
  if (jobs.empty()) {
    std::string why;
    for (const auto& x : skipped) why += (why.empty() ? "" : "; ") + x.get<std::string>();
    return usage("nothing to run: " + why);
  }
  const std::string agent_path = o.agent.empty() ? runfile("bench/ssh/ulsnet_agent") : o.agent;
  if (agent_path.empty() || access(agent_path.c_str(), R_OK) != 0)
    return usage("the agent binary " + (agent_path.empty() ? std::string("(//bench/ssh:ulsnet_agent)") : agent_path) +
                 " is not there: run through `bazel run`, or give --agent");
  const std::string out_path = result_path(o.out, "throughput-ssh");

  struct sigaction sa{};
  sa.sa_handler = on_signal;
  for (int s : {SIGINT, SIGTERM, SIGHUP}) sigaction(s, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);

  nlohmann::json args = nlohmann::json::array();
  for (int i = 0; i < argc; ++i) args.push_back(argv[i]);
  nlohmann::json doc;
  doc["schema"] = "ulsnet.throughput-ssh.v1";
  doc["config"] = {
      {"argv", args},
      {"hosts", {{"sender", o.sender}, {"proxy", o.proxy}, {"receiver", o.receiver}}},
      {"methods", o.methods},
      {"jobs", nlohmann::json::array()},
      {"skipped", skipped},
      {"payload_bytes", payloads},
      {"rates", split(o.rates)},
      {"duration_s", o.duration},
      {"reps", o.reps},
      {"generator", "socket"},
      {"sink", "socket"},
      {"batch", o.batch},
      {"max_packets", o.max_packets},
      {"protection", o.protection},
      {"drain_s", o.drain},
      {"warmup_s", o.warmup},
      {"port", o.port},
      {"prefix", o.prefix},
      {"proxy_addresses", o.proxy_addresses},
      {"search", o.search},
      {"pdr_loss", o.pdr_loss},
      {"search_duration_s", o.search_duration},
      {"search_precision", o.search_precision},
      {"search_trials", o.search_trials},
      {"final_trials", o.final_trials},
      {"search_max_pps", o.search_max},
      {"load_sweep", loads},
      {"load_sweep_basis", "fractions of each job's own PDR lower bound at the first payload size"},
      {"clock_sync", {{"mode", o.clock_sync}, {"addr", o.clock_sync_addr}, {"port", o.clock_sync_port}}},
      {"proxy_cpu", o.proxy_cpu},
      {"common_load_pps", o.common_load},
      {"common_load_rule", "--common-load, or 0: half of kernel-socket:batched relay's PDR lower bound when its "
                           "search runs in this run (that job first)"},
      {"competitors", competitor_counts},
      {"ssh",
       {{"user", o.ssh_user},
        {"port", o.ssh_port},
        {"identity", o.ssh_identity},
        {"options", o.ssh_options},
        {"connect_timeout_s", o.ssh_connect_timeout},
        {"multiplexed", !o.no_multiplex}}},
      {"remote_tmp", o.remote_tmp},
      {"agent", {{"path", agent_path}, {"bytes", std::filesystem::file_size(agent_path)}}}};
  for (const Job& j : jobs) doc["config"]["jobs"].push_back(j.name());
  // Resuming: the same --out and the same configuration keep what the earlier run finished.
  Finished finished;
  nlohmann::json old_addressing, old_placement;
  if (!o.out.empty() && std::filesystem::exists(out_path) && !o.fresh) {
    try {
      nlohmann::json old;
      try {
        std::ifstream in(out_path);
        old = nlohmann::json::parse(in);
      } catch (const std::exception& e) {
        throw ResumeRefused(std::string("it is not a result file (") + e.what() + ")");
      }
      finished = finished_points(old, doc["config"]);
      old_addressing = old["config"].value("addressing", nlohmann::json());
      old_placement = old["config"].value("placement", nlohmann::json());
    } catch (const ResumeRefused& e) {
      return usage(out_path + " exists but cannot be resumed: " + e.what() +
                   ": give another --out, or --fresh to start over");
    }
    std::fprintf(stderr, "ssh_throughput: resuming %s: %zu points, %zu searches finished there\n", out_path.c_str(),
                 finished.points.size(), finished.capacity.size());
  }
  doc["controller"] = {{"environment", host_environment("ssh")}};
  doc["results"] = nlohmann::json::array();
  if (o.search) doc["capacity"] = nlohmann::json::array();
  if (!loads.empty()) doc["load_sweep_skipped"] = nlohmann::json::array();
  doc["complete"] = false;

  Run run(o);
  char tmpl[] = "/tmp/ulsnet-ssh.XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    std::perror("ssh_throughput: mkdtemp");
    return kExitSetup;
  }
  run.local_dir = tmpl;
  for (auto [role, target] : {std::pair{"sender", o.sender}, {"proxy", o.proxy}, {"receiver", o.receiver}})
    run.hosts.push_back({role, target, so, "", nlohmann::json()});

  auto write = [&](bool complete) {
    if (finished.reused) doc["resumed_from_earlier_run"] = finished.reused;
    doc["complete"] = complete;
    doc["interrupted"] = bool(g_interrupted);
    doc["run_seconds"] = seconds_since_start();
    write_result(doc, out_path, "throughput-ssh");
  };
  auto hosts_json = [&] {
    nlohmann::json h = nlohmann::json::object();
    for (const Host& x : run.hosts)
      h[x.role] = {{"target", x.target}, {"destination", destination(x.target, so)}, {"environment", x.env}};
    return h;
  };

  Addressing ad;
  try {
    auto env_args = [&](std::initializer_list<std::pair<const std::string*, const std::string*>> ports) {
      std::vector<std::string> a;
      for (auto [ifname, ip] : ports) {
        a.insert(a.end(), {"--find-ip", *ip});
        if (!ifname->empty()) a.insert(a.end(), {"--if", *ifname});
      }
      return a;
    };
    std::fprintf(stderr, "ssh_throughput: preparing the hosts (connect, copy the agent, environment)\n");
    prepare(run, run.hosts[0], agent_path, env_args({{&o.sender_if, &o.sender_ip}}));
    prepare(run, run.hosts[1], agent_path, env_args({{&o.proxy_in_if, &o.proxy_in_ip}, {&o.proxy_out_if, &o.proxy_out_ip}}));
    prepare(run, run.hosts[2], agent_path, env_args({{&o.receiver_if, &o.receiver_ip}}));
    ad.sender = resolve(run.hosts[0], o.sender_if, o.sender_ip, o.sender_mac, "--sender-if");
    ad.proxy_in = resolve(run.hosts[1], o.proxy_in_if, o.proxy_in_ip, o.proxy_in_mac, "--proxy-in-if");
    ad.proxy_out = resolve(run.hosts[1], o.proxy_out_if, o.proxy_out_ip, o.proxy_out_mac, "--proxy-out-if");
    ad.receiver = resolve(run.hosts[2], o.receiver_if, o.receiver_ip, o.receiver_mac, "--receiver-if");
  } catch (const SetupError& e) {
    std::fprintf(stderr, "ssh_throughput: %s\n", e.message.c_str());
    run.cleanup();
    return g_interrupted ? kExitInterrupted : kExitSetup;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ssh_throughput: preparing the hosts: %s\n", e.what());
    run.cleanup();
    return kExitSetup;
  }
  doc["hosts"] = hosts_json();
  auto port_json = [](const Port& p) { return nlohmann::json{{"if", p.ifname}, {"ip", p.ip}, {"mac", p.mac}}; };
  doc["config"]["addressing"] = {{"sender", port_json(ad.sender)},
                                 {"proxy_in", port_json(ad.proxy_in)},
                                 {"proxy_out", port_json(ad.proxy_out)},
                                 {"receiver", port_json(ad.receiver)}};
  // One-way delay = the sink's receive time - the send time in the payload, two clocks unless
  // the sender and the receiver are one machine (namespaces: one boot_id, one CLOCK_MONOTONIC).
  const std::string b1 = run.hosts[0].env.value("boot_id", ""), b2 = run.hosts[2].env.value("boot_id", "");
  const bool clock_shared = !b1.empty() && b1 == b2;
  ad.clock_shared = clock_shared;
  ad.clock_port = o.clock_sync_port;
  std::string clock_note;
  if (o.clock_sync != "off") {
    // The receiver's management address: given, or the one its sshd was reached on.
    ad.clock_addr = o.clock_sync_addr;
    if (ad.clock_addr.empty() && run.hosts[2].env.contains("ssh_connection"))
      ad.clock_addr = run.hosts[2].env["ssh_connection"].value("server_ip", "");
    if (!ad.clock_addr.empty() && !Ipv4Addr::parse(ad.clock_addr)) {
      clock_note = "the receiver's sshd was reached on " + ad.clock_addr + ", not an IPv4 address: give --clock-sync-addr";
      ad.clock_addr.clear();
    } else if (ad.clock_addr.empty()) {
      clock_note = "no address for the receiver's clock responder (no SSH_CONNECTION there): give --clock-sync-addr";
    }
    ad.clock_shift = o.clock_sync == "always" || !clock_shared;
    if (!clock_note.empty()) std::fprintf(stderr, "ssh_throughput: clocks not compared: %s\n", clock_note.c_str());
  }
  doc["clock"] = {
      {"shared", clock_shared},
      {"sync", o.clock_sync},
      {"compared_with", ad.clock_addr.empty() ? nlohmann::json() : nlohmann::json(ad.clock_addr + ":" + std::to_string(ad.clock_port))},
      {"sender_shifted_onto_receiver", !ad.clock_addr.empty() && ad.clock_shift},
      {"basis",
       !ad.clock_addr.empty() && ad.clock_shift
           ? "the sender's agent compares the receiver's CLOCK_MONOTONIC with its own over UDP (the smallest round "
             "trip of 32 exchanges, error <= half of it) and runs the generator in a time namespace shifted by the "
             "offset, so send and receive times are on the receiver's clock; each trial's latency says to within "
             "what (clock_error_bound_ns: the residual difference measured right before and after the stream)"
       : clock_shared
           ? "the sender and the receiver have one boot_id: one CLOCK_MONOTONIC, one-way delays exact (the clocks are "
             "still compared, as a check: latency.shared_clock_check)"
           : "the sender and the receiver are different machines and their clocks are not compared: latency_ns is "
             "receive time minus send time on two unrelated clocks, not a delay (ipdv_ns and pdv_ns hold)"}};
  if (!clock_note.empty()) doc["clock"]["note"] = clock_note;
  for (const auto& [role, p] : {std::pair{"sender", &ad.sender}, {"proxy in", &ad.proxy_in},
                                 {"proxy out", &ad.proxy_out}, {"receiver", &ad.receiver}})
    std::fprintf(stderr, "ssh_throughput: %-9s %s %s %s\n", role, p->ifname.c_str(), p->ip.c_str(), p->mac.c_str());
  // The proxy method's CPU, from the proxy host's own CPUs (its agent's env report).
  ProxyCpu pcpu;
  try {
    const nlohmann::json cpus = run.hosts[1].env.value("cpus", nlohmann::json::object());
    std::vector<int> online, allowed;
    if (cpus.contains("online") && cpus["online"].is_array()) online = cpus["online"].get<std::vector<int>>();
    if (cpus.contains("allowed") && cpus["allowed"].is_array()) allowed = cpus["allowed"].get<std::vector<int>>();
    pcpu = resolve_proxy_cpu(o.proxy_cpu, online, allowed);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ssh_throughput: %s\n", e.what());
    run.cleanup();
    return kExitUsage;
  }
  ad.proxy_cpu = pcpu.cpu;
  doc["config"]["placement"] = {{"proxy_cpu", pcpu.cpu >= 0 ? nlohmann::json(pcpu.cpu) : nlohmann::json(nullptr)}};
  doc["proxy_placement"] = {{"asked", o.proxy_cpu},
                            {"cpu", pcpu.cpu >= 0 ? nlohmann::json(pcpu.cpu) : nlohmann::json(nullptr)},
                            {"basis", pcpu.basis},
                            {"applied", "per trial by the proxy's agent: each point's proxy_placement {cpu, pinned}"}};
  {
    // One machine playing the proxy and another role: that role runs off the proxy's CPU (its
    // agent pinned to the machine's other usable CPUs), so that CPU's /proc/stat time is the
    // proxy's; with no other CPU (or the proxy not pinned) the time is shared, and said so.
    const std::string bp = run.hosts[1].env.value("boot_id", "");
    std::string shared, moved;
    for (int i : {0, 2}) {
      if (bp.empty() || run.hosts[i].env.value("boot_id", "") != bp) continue;
      const nlohmann::json cpus = run.hosts[i].env.value("cpus", nlohmann::json::object());
      std::vector<int> online, allowed;
      if (cpus.contains("online") && cpus["online"].is_array()) online = cpus["online"].get<std::vector<int>>();
      if (cpus.contains("allowed") && cpus["allowed"].is_array()) allowed = cpus["allowed"].get<std::vector<int>>();
      std::vector<int>& mine = i == 0 ? ad.sender_cpus : ad.receiver_cpus;
      mine = cpus_off_proxy(ad.proxy_cpu, online, allowed);
      doc["config"]["placement"][i == 0 ? "sender_cpus" : "receiver_cpus"] = mine;
      if (mine.empty()) shared += (shared.empty() ? "" : " and ") + run.hosts[i].role;
      else moved += (moved.empty() ? "" : "; ") + run.hosts[i].role + " on CPU(s) " + cpu_list(mine);
    }
    std::string note;
    if (!moved.empty())
      note = "the proxy host is also the other roles' host (one boot_id); they run off the proxy's CPU: " + moved;
    if (!shared.empty())
      note += std::string(note.empty() ? "" : ". ") + "the proxy host is also the " + shared +
              " host (one boot_id) and that role could not be kept off the proxy's CPU: its /proc/stat time "
              "includes that role's work";
    if (!note.empty()) doc["proxy_placement"]["note"] = note;
  }
  std::fprintf(stderr, "ssh_throughput: proxy CPU: %s (%s)\n", pcpu.cpu >= 0 ? std::to_string(pcpu.cpu).c_str() : "none",
               pcpu.basis.c_str());
  if (!old_placement.is_null() && old_placement != doc["config"]["placement"]) {
    std::fprintf(stderr, "ssh_throughput: %s exists but cannot be resumed: its proxy CPU was %s, here %s: give another "
                 "--out, or --fresh to start over\n", out_path.c_str(), old_placement.dump().c_str(),
                 doc["config"]["placement"].dump().c_str());
    run.cleanup();
    return kExitUsage;
  }
  if (!old_addressing.is_null() && old_addressing != doc["config"]["addressing"]) {
    std::fprintf(stderr, "ssh_throughput: %s exists but cannot be resumed: it holds a run on other test interfaces (%s "
                 "there, %s here): give another --out, or --fresh to start over\n", out_path.c_str(),
                 old_addressing.dump().c_str(), doc["config"]["addressing"].dump().c_str());
    run.cleanup();
    return kExitUsage;
  }
  write(false);

  bool any_error = false;
  uint32_t run_id = finished.max_run_id + 1;
  // One point: `reps` trials of `job` at `rate` (0: max), summarised; `extra` fields say what its
  // load is based on; `competitors` CPU-bound processes on the proxy's CPU during each trial. False
  // when interrupted before any trial.
  auto measure_point = [&](const Job& job, uint32_t payload, double rate, const std::string& what,
                           const std::string& key, const nlohmann::json& extra = nlohmann::json::object(),
                           int competitors = 0) {
    const std::string full_key = job.key(o.protection, payload) + "|" + key;
    if (const nlohmann::json* done = finished.find(finished.points, full_key)) {
      std::fprintf(stderr, "%-32s %4u B %12s: finished in the earlier run, kept\n", job.name().c_str(), payload,
                   what.c_str());
      doc["results"].push_back(*done);
      write(false);
      return true;
    }
    nlohmann::json point = {{"method", job.info->name},
                            {"variant", job.variant},
                            {"protection", job.protection(o.protection)},
                            {"mode", forward_mode_name(job.mode)},
                            {"payload_bytes", payload},
                            {"load", rate > 0 ? nlohmann::json(rate) : nlohmann::json("max")},
                            {"rate_pps", rate},
                            {"duration_s", o.duration},
                            {"point", full_key},
                            {"competitors", competitors},
                            {"samples", nlohmann::json::array()}};
    for (const auto& [k, v] : extra.items()) point[k] = v;
    if (competitors > 0)
      point["competitors_placement"] =
          fmt::format("{} busy-loop process(es), SCHED_OTHER, {}, started and killed by the proxy's agent around each "
                      "trial", competitors, ad.proxy_cpu >= 0 ? fmt::format("on the proxy's CPU {}", ad.proxy_cpu)
                                                              : std::string("unpinned"));
    for (int rep = 0; rep < o.reps && !g_interrupted; ++rep) {
      nlohmann::json s = run_trial(o, run.hosts, ad, {job, payload, rate, o.duration, run_id++, competitors});
      if (g_interrupted && s.contains("error")) break;
      s["rep"] = rep;
      point["samples"].push_back(s);
    }
    if (point["samples"].empty()) return false;
    if (int(point["samples"].size()) < o.reps) point["interrupted"] = true;  // a rerun measures it again
    point = summarize_ssh_point(point);
    if (!point.contains("latency_valid")) point["latency_valid"] = false;
    if (point.contains("error")) any_error = true;
    const nlohmann::json& cpu = point["cpu"];
    const std::string cpu_text =
        cpu.contains("proxy_process_ns_per_forwarded")
            ? fmt::format(", proxy {:.0f} ns/pkt{}", cpu["proxy_process_ns_per_forwarded"].get<double>(),
                          cpu.contains("proxy_host_ns_per_forwarded")
                              ? fmt::format(" (its CPU {:.0f})", cpu["proxy_host_ns_per_forwarded"].get<double>())
                              : std::string())
            : std::string();
    std::fprintf(stderr, "%-32s %4u B %12s: offered %10.0f pps, delivered %10.0f pps, loss %.4f, unaccounted %lld%s%s\n",
                 job.name().c_str(), payload, what.c_str(), point["offered_pps"].get<double>(),
                 point["delivered_pps"].get<double>(), point["loss"].get<double>(),
                 (long long)point["unaccounted"].get<int64_t>(), cpu_text.c_str(),
                 point.contains("error") ? (" ERROR: " + point["error"].get<std::string>()).c_str() : "");
    doc["results"].push_back(point);
    write(false);
    return true;
  };
  double common_rate = o.common_load;
  std::string common_basis = o.common_load > 0 ? "--common-load" : "";
  for (const Job& job : jobs) {
    for (uint32_t payload : payloads)
      for (double rate : rates) {
        if (g_interrupted) break;
        if (!measure_point(job, payload, rate, rate > 0 ? fmt::format("{:.0f}", rate) : "max",
                           rate > 0 ? fmt::format("rate:{:.0f}", rate) : "max"))
          break;
      }
    nlohmann::json cap;
    if (o.search && !g_interrupted) {
      if (const nlohmann::json* done = finished.find(finished.capacity, job.key(o.protection, payloads.front()))) {
        std::fprintf(stderr, "%-32s %4u B search: finished in the earlier run, kept\n", job.name().c_str(),
                     payloads.front());
        cap = *done;
      } else {
        cap = search(o, run.hosts, ad, job, payloads.front(), run_id);
      }
      if (cap.contains("error")) any_error = true;
      doc["capacity"].push_back(cap);
      write(false);
      if (common_rate == 0)
        if (auto c = derived_common_load(cap)) {
          common_rate = c->pps;
          common_basis = c->basis;
          std::fprintf(stderr, "ssh_throughput: common load %.0f pps (%s)\n", common_rate, common_basis.c_str());
        }
    }
    if (!loads.empty() && !g_interrupted) {
      // Offered load as fractions of this job's own PDR: latency at 10/50/90% of what it can
      // carry, and past 1 the overload curve (as //bench:throughput --loads).
      const nlohmann::json* pdr = cap.is_object() && cap.contains("pdr") ? &cap["pdr"] : nullptr;
      if (!pdr || !(*pdr)["lower_pps"].is_number() || (*pdr)["lower_pps"].get<double>() <= 0) {
        const std::string why = fmt::format("{}: no offered-load sweep: no PDR lower bound at {} B ({})", job.name(),
                                            payloads.front(),
                                            cap.contains("error") ? "the search failed: " + cap["error"].get<std::string>()
                                            : pdr ? "PDR status: " + (*pdr).value("status", std::string("?"))
                                                  : std::string("no search"));
        std::fprintf(stderr, "%s\n", why.c_str());
        doc["load_sweep_skipped"].push_back(why);
        write(false);
      } else {
        const double pdr_lo = (*pdr)["lower_pps"].get<double>();
        for (double f : loads) {
          if (g_interrupted) break;
          const double rate = std::max(1.0, std::round(f * pdr_lo));
          if (!measure_point(job, payloads.front(), rate, fmt::format("{:.0f}% PDR", 100 * f),
                             fmt::format("fraction:{}", f),
                             {{"load_fraction", f},
                              {"load_basis", fmt::format("{} x this job's PDR lower bound at {} B ({:.0f} pps{})", f,
                                                         payloads.front(), pdr_lo,
                                                         (*pdr).value("censored", false) ? ", censored at the generator" : "")}}))
            break;
        }
      }
    }
    if (common_rate > 0 && !g_interrupted) {
      // Every job at one common load: latency, delay variation and CPU per packet at equal work;
      // with --competitors, again with CPU-bound processes on the proxy's CPU.
      for (int c : competitor_counts) {
        if (g_interrupted) break;
        if (!measure_point(job, payloads.front(), common_rate,
                           c > 0 ? fmt::format("common +{}c", c) : std::string("common"), fmt::format("common:{}", c),
                           {{"load_basis", common_basis}}, c))
          break;
      }
    }
  }
  doc["common_load_pps"] = common_rate;
  doc["common_load_basis"] = common_rate > 0 ? common_basis : "none: no --common-load and no kernel-socket:batched PDR";
  if (common_rate == 0 && competitor_counts.size() > 1)
    std::fprintf(stderr, "ssh_throughput: --competitors: no common load in this run (no --common-load, no "
                         "kernel-socket:batched relay PDR lower bound), so no competitor points\n");
  run.cleanup();
  doc["cleanup"] = run.cleanup_log;
  {
    // The project's targets from this run's own brackets (bench/targets.h): the sandbox on AF_XDP
    // against each baseline at the first payload size; those it did not measure say so.
    TargetSubject subject;
    subject.payload = payloads.front();
    doc["targets"] = evaluate_targets(doc, subject);
    doc["targets_subject"] = {{"method", subject.method}, {"variant", subject.variant},
                              {"payload_bytes", subject.payload}, {"protection", subject.protection},
                              {"criterion", subject.criterion}};
  }
  write(!g_interrupted);
  std::fprintf(stderr, "ssh_throughput: wrote %s\n", out_path.c_str());
  if (g_interrupted) return kExitInterrupted;
  return any_error ? kExitPointError : 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ssh_throughput: %s\n", e.what());
    return kExitSetup;
  }
}
