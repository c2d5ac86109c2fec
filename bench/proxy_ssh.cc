// //bench:proxy --hosts=ssh: the method standing in the proxy host of three real machines over
// SSH, the hosts as //bench/ssh:ssh_throughput prepares them (bench/ssh/ssh_hosts.h: one
// connection per machine, ulsnet_agent copied into a fresh directory on each, each host's
// environment, the test interfaces found by their addresses). The proxy's agent runs the method
// with --status-interval: its status lines (bench/ssh/agent_protocol.h) are the snapshots the
// tool turns into status lines (bench/proxy_status.h), as on the namespaces; its report closes
// the sums. --udp-test runs the agent's generator and sink (the trials' own); --exec-sender and
// --exec-receiver run shell commands on those hosts, each in a session of its own there, ended
// with its process group at stop (or when its SSH session goes away).
//
// Stopping: the first SIGINT/SIGTERM/SIGHUP (or --duration, or the end of the commands) stops
// the method ("stop" on its agent's stdin), prints its report, ends every remote command and
// removes what the run made on the hosts (the agents still running, the directories), then
// closes the connections. A second signal kills the local ssh clients at once (the agents then
// stop at the end of their stdin; the directories stay). No local measurement lock: the traffic
// runs on the hosts named (as for ssh_throughput).
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "bench/proxy_status.h"
#include "bench/proxy_tool.h"
#include "bench/ssh/agent_protocol.h"
#include "bench/ssh/child.h"
#include "bench/ssh/ssh_hosts.h"
#include "kernel/vm_harness.h"

namespace ulsnet::proxy_tool {
namespace {

using ssh::after;
using ssh::Child;
using ssh::g_interrupted;
using ssh::Host;

constexpr int kExitInterrupted = 130;

std::atomic<int> g_signals{0};

void on_signal(int) {
  g_interrupted = true;
  if (g_signals.fetch_add(1) >= 1) {
    ssh::kill_all_children_now();
    _exit(kExitInterrupted);
  }
}

void install_ssh_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  for (int s : {SIGINT, SIGTERM, SIGHUP}) sigaction(s, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// An agent role on a host; its stdin is the role's (stop on "stop" or its end).
std::unique_ptr<Child> start_role(const Host& h, const std::vector<std::string>& words) {
  std::vector<std::string> w = {h.agent()};
  w.insert(w.end(), words.begin(), words.end());
  return std::make_unique<Child>(ssh::ssh_argv(h.ssh, h.target, "exec " + ssh::shell_join(w)), true);
}

// A shell command on a host: the agent's exec role (a session of its own there, ended with its
// process group on "stop" or when the SSH session goes away). The session's exit status is the
// command's (128 + a signal that ended it).
std::unique_ptr<Child> start_command(const Host& h, const std::string& cmd, const std::string& name, double bound) {
  return start_role(h, {"exec", "--max-seconds", fmt::format("{:.0f}", bound), "--pidfile",
                        h.dir + "/" + name + ".pid", "--", cmd});
}

// What a user pastes to reach a host: ssh with the run's settings (no connection master).
std::string ssh_line(const ssh::SshThroughputOptions& so, const Host& h) {
  std::vector<std::string> a = {"ssh"};
  if (so.ssh_port > 0) a.insert(a.end(), {"-p", std::to_string(so.ssh_port)});
  if (!so.ssh_identity.empty()) a.insert(a.end(), {"-i", so.ssh_identity});
  for (const std::string& x : so.ssh_options) a.insert(a.end(), {"-o", x});
  a.push_back(ssh::destination(h.target, ssh::ssh_options_of(so)));
  return ssh::printable(a);
}

// A remote command and how much of its output was passed on.
struct Command {
  std::string host, cmd;
  std::unique_ptr<Child> child;
  size_t out_done = 0, err_done = 0;
};

class SshRun {
 public:
  SshRun(const Options& o, const ssh::SshThroughputOptions& so, const MethodInfo& info, std::string variant, Out& out)
      : o_(o), so_(so), info_(info), variant_(std::move(variant)), out_(out), run_(so) {}

  int run() {
    install_ssh_signal_handlers();
    if (const int rc = prepare(); rc != 0) return rc;
    if (const int rc = start_proxy(); rc != 0) return rc;
    print_up();
    int exit_code = jobs();
    return stop_and_report(exit_code);
  }

 private:
  // The hosts connected, the agent copied, the interfaces found.
  int prepare() {
    char tmpl[] = "/tmp/ulsnet-proxy-ssh.XXXXXX";
    if (mkdtemp(tmpl) == nullptr) {
      out_.error(std::string("proxy: mkdtemp: ") + std::strerror(errno));
      return 1;
    }
    run_.local_dir = tmpl;
    run_.tool = "proxy";
    for (auto [role, target] : {std::pair{"sender", so_.sender}, {"proxy", so_.proxy}, {"receiver", so_.receiver}})
      run_.hosts.push_back({role, target, ssh::ssh_options_of(so_), "", nlohmann::json()});
    std::string agent = so_.agent;
    try {
      if (agent.empty()) agent = vm::runfile("bench/ssh/ulsnet_agent");
      ssh::prepare_hosts(run_, agent, ad_);
    } catch (const ssh::SetupError& e) {
      return setup_failed(e.message);
    } catch (const std::exception& e) {
      return setup_failed(e.what());
    }
    return 0;
  }

  int setup_failed(const std::string& why) {
    out_.error("proxy: preparing the hosts: " + why);
    out_.event({{"event", "error"}, {"error", why}}, "");
    run_.cleanup();
    return g_interrupted ? kExitInterrupted : 1;
  }

  // The remote roles' own time bound (the agent's --max-seconds; at most its limit, a day).
  double role_bound() const {
    return o_.duration > 0 ? std::min(86400.0, o_.duration + double(o_.udp_count) / o_.udp_rate + 2 * so_.setup_timeout + 120)
                           : 86400;
  }

  // The method started by the proxy's agent, ready (its first status line read).
  int start_proxy() {
    const double bound = role_bound();
    Host& prx = run_.hosts[1];
    std::vector<std::string> w = {
        "proxy", "--method", label(), "--mode", o_.mode, "--in-if", ad_.proxy_in.ifname, "--in-ip", ad_.proxy_in.ip,
        "--in-peer-ip", ad_.sender.ip, "--out-if", ad_.proxy_out.ifname, "--out-ip", ad_.proxy_out.ip, "--out-peer-ip",
        ad_.receiver.ip, "--prefix", std::to_string(so_.prefix), "--port", std::to_string(o_.relay_port), "--batch",
        std::to_string(o_.batch), "--protection", o_.protection, "--addresses", so_.proxy_addresses, "--max-seconds",
        fmt::format("{:.0f}", bound), "--pidfile", prx.dir + "/proxy.pid", "--cpu", std::to_string(o_.proxy_cpu),
        "--status-interval", fmt::format("{}", o_.interval)};
    if (!ad_.sender.mac.empty()) w.insert(w.end(), {"--in-peer-mac", ad_.sender.mac});
    if (!ad_.receiver.mac.empty()) w.insert(w.end(), {"--out-peer-mac", ad_.receiver.mac});
    proxy_ = start_role(prx, w);
    const auto deadline = after(so_.setup_timeout);
    while (!ready_ && !proxy_final_ && ssh::Clock::now() < deadline && !g_interrupted)
      proxy_->wait_line([this](const std::string& l) { return on_proxy_line(l); }, deadline);
    if (ready_) return 0;
    proxy_->finish(after(5));
    const ssh::AgentOutput a = ssh::parse_agent_output(proxy_->out(), "proxy");
    std::string why = g_interrupted ? "interrupted"
                      : !a.error.empty() ? a.error
                                         : fmt::format("no ready line within {:.0f} s", so_.setup_timeout);
    if (!proxy_->err_tail().empty()) why += "; stderr: " + proxy_->err_tail(400);
    out_.error(fmt::format("proxy: {} did not start on the proxy host {}: {}", label(), prx.target, why));
    out_.event({{"event", "error"}, {"error", why}}, "");
    run_.cleanup();
    return g_interrupted ? kExitInterrupted : 1;
  }

  // One line of the proxy's agent: a status line becomes a status line here; ready and the
  // final line end a wait (true).
  bool on_proxy_line(const std::string& line) {
    std::optional<ssh::AgentLine> a;
    try {
      a = ssh::parse_agent_line(line);
    } catch (const ssh::AgentProtocolError&) {
      proxy_final_ = true;  // parse_agent_output says what it was
      return true;
    }
    if (!a) return false;
    if (a->event == "ready") {
      ready_ = true;
      return true;
    }
    if (a->event != "status") {
      proxy_final_ = true;
      return true;
    }
    const nlohmann::json& snap = a->body["status"];
    if (!tracker_) {
      tracker_.emplace(ifaces(), snap);
      return false;
    }
    nlohmann::json iv = tracker_->next(snap);
    nlohmann::json ev = iv;
    ev["event"] = "status";
    out_.event(ev, format_status(iv, ifaces()));
    return false;
  }

  std::string label() const { return std::string(info_.name) + ":" + variant_; }
  std::vector<std::string> ifaces() const { return {ad_.proxy_in.ifname, ad_.proxy_out.ifname}; }
  bool relay() const { return o_.mode == "relay"; }

  void print_up() {
    const Host &snd = run_.hosts[0], &prx = run_.hosts[1], &rcv = run_.hosts[2];
    auto port = [](const ssh::Port& p) { return nlohmann::json{{"ifname", p.ifname}, {"ip", p.ip}, {"mac", p.mac}}; };
    auto host = [&](const Host& h, nlohmann::json j) {
      j["target"] = h.target;
      j["ssh"] = ssh_line(so_, h);
      j["kernel"] = h.env.value("kernel", "");
      return j;
    };
    nlohmann::json up = {
        {"event", "up"},
        {"hosts_kind", "ssh"},
        {"method", info_.name},
        {"variant", variant_},
        {"mode", o_.mode},
        {"protection", o_.protection},
        {"interval_s", o_.interval},
        {"tool_pid", getpid()},
        {"hosts",
         {{"sender", host(snd, port(ad_.sender))},
          {"proxy", host(prx, {{"in", port(ad_.proxy_in)}, {"out", port(ad_.proxy_out)},
                               {"addresses", so_.proxy_addresses}})},
          {"receiver", host(rcv, port(ad_.receiver))}}}};
    if (relay())
      up["relay"] = {{"listen", ad_.proxy_in.ip + ":" + std::to_string(o_.relay_port)},
                     {"to", ad_.receiver.ip + ":" + std::to_string(o_.relay_port)}};
    std::string human = fmt::format(
        "proxy: {} in {} mode is up on the proxy host {} (agent in {}).\n"
        "  sender    {:<40} {} {}\n"
        "  proxy     {:<40} {} {} | {} {}  (--proxy-addresses {})\n"
        "  receiver  {:<40} {} {}\n",
        label(), o_.mode, prx.target, prx.dir, ssh_line(so_, snd), ad_.sender.ifname, ad_.sender.ip, ssh_line(so_, prx),
        ad_.proxy_in.ifname, ad_.proxy_in.ip, ad_.proxy_out.ifname, ad_.proxy_out.ip, so_.proxy_addresses,
        ssh_line(so_, rcv), ad_.receiver.ifname, ad_.receiver.ip);
    if (relay())
      human += fmt::format("  relay: UDP sent to {}:{} from the sender goes on to {}:{}\n", ad_.proxy_in.ip,
                           o_.relay_port, ad_.receiver.ip, o_.relay_port);
    else
      human += fmt::format("  try:   {} ping -c 3 {}\n", ssh_line(so_, snd), ad_.receiver.ip);
    human += "Ctrl-C stops the method, prints its final report and removes what the run made on the hosts.";
    out_.event(up, human);
  }

  bool should_stop() const {
    return g_interrupted || proxy_final_ || (o_.duration > 0 && now_s() - t_start_ >= o_.duration);
  }

  // Reads the proxy's lines for up to `s` seconds, and passes on the commands' output.
  void tick(double s) {
    if (!proxy_final_) proxy_->wait_line([this](const std::string& l) { return on_proxy_line(l); }, after(s));
    // Its session gone without a final line (the agent killed, the host or the connection
    // lost): the method has ended, and the wait above no longer waits.
    if (!proxy_final_ && proxy_->ended()) proxy_final_ = true;
    if (proxy_final_) usleep(useconds_t(s * 1e6));
    for (Command& c : commands_) pass_on(c);
  }

  void pass_on(Command& c) {
    c.child->wait_line([](const std::string&) { return false; }, after(0.001), false);
    std::FILE* f = o_.json ? stderr : stdout;
    if (c.child->out().size() > c.out_done) {
      std::fwrite(c.child->out().data() + c.out_done, 1, c.child->out().size() - c.out_done, f);
      c.out_done = c.child->out().size();
      std::fflush(f);
    }
    if (c.child->err().size() > c.err_done) {
      std::fwrite(c.child->err().data() + c.err_done, 1, c.child->err().size() - c.err_done, stderr);
      c.err_done = c.child->err().size();
    }
  }

  // A command ends ("stop", then its session closed): its exit status, said.
  int end_command(Command& c, bool asked) {
    if (asked) c.child->write_stdin("stop\n");
    const int st = c.child->finish(after(asked ? 5 : 0.5));
    pass_on(c);
    const std::string status =
        st >= 128 ? fmt::format("ended by {}", strsignal(st - 128)) : fmt::format("exit status {}", st);
    out_.note(fmt::format("proxy: {} command '{}': {}{}", c.host, c.cmd, status, asked ? " (ended at stop)" : ""));
    out_.event({{"event", "command"}, {"host", c.host}, {"command", c.cmd}, {"status", status}, {"exit_status", st}},
               "");
    return st;
  }

  // --udp-test with the agents' generator and sink.
  nlohmann::json udp_test() {
    Host &snd = run_.hosts[0], &rcv = run_.hosts[2];
    const double seconds = double(o_.udp_count) / o_.udp_rate;
    const std::string bound = fmt::format("{:.0f}", seconds + so_.setup_timeout + 30);
    std::unique_ptr<Child> sink =
        start_role(rcv, {"recv", "--port", std::to_string(o_.relay_port), "--run-id", "7", "--max-packets",
                         std::to_string(o_.udp_count), "--if", ad_.receiver.ifname, "--max-seconds", bound,
                         "--pidfile", rcv.dir + "/recv.pid", "--clock-port", "0"});
    if (!wait_role(*sink, "ready", so_.setup_timeout)) return {{"error", "sink: " + role_end(*sink, "recv")}};
    const std::string dst = relay() ? ad_.proxy_in.ip : ad_.receiver.ip;
    std::unique_ptr<Child> gen = start_role(
        snd, {"send", "--dst", dst, "--port", std::to_string(o_.relay_port), "--payload", std::to_string(o_.udp_payload),
              "--rate", fmt::format("{}", o_.udp_rate), "--duration", fmt::format("{}", seconds + 5), "--count",
              std::to_string(o_.udp_count), "--batch", std::to_string(o_.batch), "--run-id", "7", "--if",
              ad_.sender.ifname, "--max-seconds", bound, "--pidfile", snd.dir + "/send.pid"});
    const bool ended = wait_role(*gen, "final", seconds + so_.setup_timeout + 20);
    if (ended) {  // what is in flight lands (the trials' drain)
      const double drain_end = now_s() + so_.drain;
      while (now_s() < drain_end && !g_interrupted) tick(0.02);
    }
    sink->write_stdin("stop\n");
    const std::string gerr = role_end(*gen, "send"), serr = role_end(*sink, "recv");
    const ssh::AgentOutput g = ssh::parse_agent_output(gen->out(), "send"),
                           s = ssh::parse_agent_output(sink->out(), "recv");
    const bool one_clock = snd.env.value("boot_id", "a") == rcv.env.value("boot_id", "b");
    nlohmann::json r = udp_test_result(g.report ? *g.report : nlohmann::json{{"error", gerr}},
                                       s.report ? *s.report : nlohmann::json{{"error", serr}},
                                       dst + ":" + std::to_string(o_.relay_port), o_, one_clock);
    if (!one_clock) r["latency_note"] = "the sender and the receiver are different machines: no one-way delays";
    return r;
  }

  // Waits for a role's "ready" or its final line ("final"), reading the proxy meanwhile.
  bool wait_role(Child& c, const std::string& what, double timeout_s) {
    const double end = now_s() + timeout_s;
    auto want = [&what](const std::string& l) {
      try {
        auto a = ssh::parse_agent_line(l);
        if (!a) return false;
        return what == "ready" ? a->event != "status" : (a->event == "report" || a->event == "error");
      } catch (const ssh::AgentProtocolError&) {
        return true;
      }
    };
    while (now_s() < end && !g_interrupted && !proxy_final_) {
      if (c.wait_line(want, after(0.05))) return true;
      if (c.ended()) return false;
      tick(0.01);
    }
    return false;
  }

  // A role's end (its session closed, bounded): "" with a report, else why not.
  std::string role_end(Child& c, const std::string& role) {
    const int st = c.finish(after(10));
    const ssh::AgentOutput a = ssh::parse_agent_output(c.out(), role);
    if (a.report) return "";
    std::string why = a.error;
    if (c.timed_out()) why += " (no end within 10 s; ended)";
    else if (st != 0) why += " (exit " + std::to_string(st) + ")";
    if (!c.err_tail().empty()) why += "; stderr: " + c.err_tail(400);
    return why;
  }

  // The commands and the UDP test while the proxy stands; or standing until stopped.
  int jobs() {
    int exit_code = 0;
    t_start_ = now_s();
    for (const std::string& c : o_.exec_receiver)
      commands_.push_back({"receiver", c, start_command(run_.hosts[2], c, fmt::format("exec-r{}", commands_.size()),
                                                        role_bound())});
    const size_t n_receivers = commands_.size();
    if (o_.udp_count > 0 && !should_stop()) {
      if (!print_udp_test(out_, udp_test())) exit_code = 1;
    }
    for (const std::string& c : o_.exec_sender) {
      if (should_stop()) break;
      commands_.push_back({"sender", c, start_command(run_.hosts[0], c, fmt::format("exec-s{}", ++senders_),
                                                      role_bound())});
      Command& cmd = commands_.back();
      while (!should_stop() && !cmd.child->ended()) tick(0.05);
      const int st = end_command(cmd, !cmd.child->ended());
      if (st != 0) exit_code = 1;
      commands_.pop_back();
    }
    if (o_.udp_count == 0 && o_.exec_sender.empty())
      while (!should_stop()) {
        tick(0.05);
        if (n_receivers == 0) continue;
        bool all_done = true;
        for (Command& c : commands_) all_done &= c.child->ended();
        if (all_done) break;
      }
    for (Command& c : commands_) end_command(c, !c.child->ended());
    commands_.clear();
    return exit_code;
  }

  int stop_and_report(int exit_code) {
    const bool died = proxy_final_;
    const bool duration_reached = o_.duration > 0 && now_s() - t_start_ >= o_.duration;
    proxy_->write_stdin("stop\n");
    const auto deadline = after(20);
    while (!proxy_final_ && ssh::Clock::now() < deadline && !proxy_->ended())
      proxy_->wait_line([this](const std::string& l) { return on_proxy_line(l); }, deadline, false);
    proxy_->finish(after(5));
    const ssh::AgentOutput a = ssh::parse_agent_output(proxy_->out(), "proxy");
    int code = exit_code;
    if (!a.report) {
      std::string why = a.error;
      if (!proxy_->err_tail().empty()) why += "; stderr: " + proxy_->err_tail(400);
      out_.error(fmt::format("proxy: {} {}: {}", label(), died ? "ended early" : "failed", why));
      out_.event({{"event", "final"}, {"error", why}}, "");
      code = 1;
    } else {
      const std::string why = died             ? "the method ended: " + a.report->value("stop_reason", std::string("?"))
                              : g_interrupted  ? "stopped by a signal"
                              : duration_reached ? "--duration reached"
                              : (o_.udp_count > 0 || !o_.exec_sender.empty()) ? "the commands ended"
                                                                               : "the receiver's commands ended";
      if (died) code = 1;
      print_final(out_, tracker_ ? &*tracker_ : nullptr, *a.report, 0, ifaces(), label(), why, code);
    }
    run_.cleanup();
    nlohmann::json removed = nlohmann::json::array();
    for (const nlohmann::json& e : run_.cleanup_log) removed.push_back(e.value("removed", ""));
    out_.note("proxy: the agents' directories removed on the hosts: " + removed.dump());
    return code;
  }

  const Options& o_;
  const ssh::SshThroughputOptions& so_;
  const MethodInfo& info_;
  const std::string variant_;
  Out& out_;
  ssh::RunHosts run_;
  ssh::Addressing ad_;
  std::unique_ptr<Child> proxy_;
  bool ready_ = false, proxy_final_ = false;
  std::optional<ProxyStatus> tracker_;
  std::vector<Command> commands_;
  double t_start_ = 0;
  int senders_ = 0;
};

}  // namespace

int run_on_ssh(const Options& o, const ssh::SshThroughputOptions& so, const MethodInfo& info,
               const std::string& variant, Out& out) {
  SshRun r(o, so, info, variant, out);
  return r.run();
}

}  // namespace ulsnet::proxy_tool
