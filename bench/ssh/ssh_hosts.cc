// The hosts of an ssh_throughput run: see bench/ssh/ssh_hosts.h.
#include "bench/ssh/ssh_hosts.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <initializer_list>
#include <thread>
#include <utility>

#include "bench/ssh/agent_protocol.h"

namespace ulsnet::ssh {
namespace {

// The connection master for `h`'s machine (one per target, made on first use), its control path
// in h.ssh; none with --no-ssh-multiplex.
void connect(RunHosts& run, Host& h) {
  if (run.o.no_multiplex) return;
  auto it = run.masters.find(h.target);
  if (it == run.masters.end()) {
    Master m;
    m.control_path = run.local_dir + "/m" + std::to_string(run.masters.size());
    SshOptions so = h.ssh;
    so.control_path = m.control_path;
    m.child = std::make_unique<Child>(ssh_master_argv(so, h.target), false);
    const auto deadline = after(run.o.ssh_connect_timeout + 5);
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
std::string remote(const Host& h, const std::string& cmd, const std::string& what, double timeout_s) {
  RunResult r = run_bounded(ssh_argv(h.ssh, h.target, cmd), timeout_s);
  if (r.status != 0)
    throw SetupError{what + " on the " + h.role + " host " + h.target + " failed (" +
                     (r.timed_out ? "timed out" : "exit " + std::to_string(r.status)) + "): " + r.err};
  return r.out;
}

// A fresh temporary directory on `h` (mktemp -d under --remote-tmp), checked to be usable.
void make_remote_dir(const RunHosts& run, Host& h) {
  std::string dir = remote(h, "mktemp -d " + shell_quote(run.o.remote_tmp) + "/ulsnet-agent.XXXXXXXX",
                           "making a temporary directory", run.o.setup_timeout);
  while (!dir.empty() && (dir.back() == '\n' || dir.back() == '\r')) dir.pop_back();
  if (dir.empty() || dir[0] != '/' || dir.find_first_of(" \t\n'\"\\$`") != std::string::npos)
    throw SetupError{"mktemp on the " + h.role + " host gave an unusable directory '" + dir + "'"};
  h.dir = dir;
}

// `h` connected, the agent copied into its directory, its environment (the agent's env role
// with `env_args`) in h.env.
void prepare(RunHosts& run, Host& h, const std::string& agent_path, const std::vector<std::string>& env_args) {
  connect(run, h);
  if (g_interrupted) throw SetupError{"interrupted"};
  make_remote_dir(run, h);
  if (g_interrupted) throw SetupError{"interrupted"};
  RunResult r = run_bounded(scp_argv(h.ssh, agent_path, h.target, h.agent()), run.o.setup_timeout + 60);
  if (r.status != 0)
    throw SetupError{"copying the agent to the " + h.role + " host " + h.target + " failed (" +
                     (r.timed_out ? "timed out" : "exit " + std::to_string(r.status)) + "): " + r.err};
  if (g_interrupted) throw SetupError{"interrupted"};
  std::vector<std::string> words = {h.agent(), "env"};
  words.insert(words.end(), env_args.begin(), env_args.end());
  const std::string out = remote(h, "chmod 755 " + shell_quote(h.agent()) + " && exec " + shell_join(words),
                                 "the agent's env role", run.o.setup_timeout + 30);
  AgentOutput a = parse_agent_output(out, "env");
  if (!a.report) throw SetupError{"the " + h.role + " host's environment: " + a.error};
  h.env = *a.report;
}

// The env role's arguments: the addresses to find (and the interfaces named) on one host.
std::vector<std::string> env_args(std::initializer_list<std::pair<const std::string*, const std::string*>> ports) {
  std::vector<std::string> a;
  for (auto [ifname, ip] : ports) {
    a.insert(a.end(), {"--find-ip", *ip});
    if (!ifname->empty()) a.insert(a.end(), {"--if", *ifname});
  }
  return a;
}

// The interface named by a flag, or the one holding `ip` on the host; its MAC from the host's
// own report unless given.
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

}  // namespace

void RunHosts::cleanup_host(Host& h) {
  // The agents still named in their pid files (checked to be this directory's agent), then
  // the directory. Not interruptible: this is the way out.
  const std::string cmd =
      "d=" + shell_quote(h.dir) +
      "; for f in \"$d\"/*.pid; do [ -f \"$f\" ] || continue; p=$(cat \"$f\"); "
      "case \"$(readlink /proc/$p/exe 2>/dev/null)\" in \"$d\"/ulsnet_agent*) kill -9 \"$p\" && echo killed $p;; esac; "
      "done; rm -rf -- \"$d\"";
  RunResult r = run_bounded(ssh_argv(h.ssh, h.target, cmd), o.ssh_connect_timeout + 10);
  nlohmann::json e = {{"host", h.role}, {"removed", h.dir}, {"status", r.status}};
  if (!r.out.empty()) e["output"] = r.out;
  if (r.status != 0) {
    e["error"] = r.err;
    std::fprintf(stderr, "%s: clean-up on %s (%s) failed (%d): %s\n", tool.c_str(), h.role.c_str(), h.target.c_str(),
                 r.status, r.err.c_str());
  }
  cleanup_log.push_back(e);
  h.dir.clear();
}

void RunHosts::cleanup() {
  if (cleaned_) return;
  cleaned_ = true;
  for (Host& h : hosts)
    if (!h.dir.empty()) cleanup_host(h);
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

void prepare_hosts(RunHosts& run, const std::string& agent_path, Addressing& ad) {
  const SshThroughputOptions& o = run.o;
  std::fprintf(stderr, "%s: preparing the hosts (connect, copy the agent, environment)\n", run.tool.c_str());
  prepare(run, run.hosts[0], agent_path, env_args({{&o.sender_if, &o.sender_ip}}));
  prepare(run, run.hosts[1], agent_path, env_args({{&o.proxy_in_if, &o.proxy_in_ip}, {&o.proxy_out_if, &o.proxy_out_ip}}));
  prepare(run, run.hosts[2], agent_path, env_args({{&o.receiver_if, &o.receiver_ip}}));
  ad.sender = resolve(run.hosts[0], o.sender_if, o.sender_ip, o.sender_mac, "--sender-if");
  ad.proxy_in = resolve(run.hosts[1], o.proxy_in_if, o.proxy_in_ip, o.proxy_in_mac, "--proxy-in-if");
  ad.proxy_out = resolve(run.hosts[1], o.proxy_out_if, o.proxy_out_ip, o.proxy_out_mac, "--proxy-out-if");
  ad.receiver = resolve(run.hosts[2], o.receiver_if, o.receiver_ip, o.receiver_mac, "--receiver-if");
}

nlohmann::json hosts_json(const RunHosts& run) {
  const SshOptions so = ssh_options_of(run.o);
  nlohmann::json h = nlohmann::json::object();
  for (const Host& x : run.hosts)
    h[x.role] = {{"target", x.target}, {"destination", destination(x.target, so)}, {"environment", x.env}};
  return h;
}

}  // namespace ulsnet::ssh
