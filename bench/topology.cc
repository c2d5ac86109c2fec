#include "bench/topology.h"

#include <sched.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <pthread.h>
#include <signal.h>
#include <sys/mount.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <stdexcept>

namespace ulsnet {

namespace {

// Fixed-size tables the signal handler can read without allocating.
constexpr int kMaxNs = 64, kMaxChildren = 64;
char g_ns[kMaxNs][64];
std::atomic<bool> g_ns_used[kMaxNs];
std::atomic<pid_t> g_children[kMaxChildren];
std::mutex g_mu;
std::atomic<int> g_counter{0};

void remove_ns_raw(const char* name) {
  char path[128];
  std::snprintf(path, sizeof path, "/run/netns/%.63s", name);
  umount2(path, MNT_DETACH);
  unlink(path);
}

// Namespaces being created now (see CreatingNamespace).
std::atomic<int> g_creating{0};

void on_signal(int sig) {
  // A namespace being created in another thread is waited for (at most 2 s), so that it is
  // there to remove: `ip netns add` finishing after this handler would leave it behind.
  for (int i = 0; i < 400 && g_creating.load() > 0; ++i) {
    timespec t{0, 5'000'000};
    nanosleep(&t, nullptr);
  }
  for (auto& c : g_children) {
    pid_t p = c.load();
    if (p > 0) kill(p, SIGKILL);
  }
  for (int i = 0; i < kMaxNs; ++i)
    if (g_ns_used[i].load()) remove_ns_raw(g_ns[i]);
  signal(sig, SIG_DFL);
  raise(sig);
}

void track_ns(const std::string& name, bool add) {
  std::lock_guard<std::mutex> g(g_mu);
  for (int i = 0; i < kMaxNs; ++i) {
    if (add && !g_ns_used[i].load()) {
      std::snprintf(g_ns[i], sizeof g_ns[i], "%s", name.c_str());
      g_ns_used[i].store(true);
      return;
    }
    if (!add && g_ns_used[i].load() && name == g_ns[i]) {
      g_ns_used[i].store(false);
      return;
    }
  }
  if (add) throw std::runtime_error("too many live namespaces");
}

// While a namespace is created (tracked, then `ip netns add` and its set-up): the clean-up
// signals are held back in this thread, and a handler running in another waits for the end.
// Without it a signal in the middle removed the namespace before `ip` had made it, and `ip`
// (another process, which the signal does not stop) made it after the run had ended.
class CreatingNamespace {
 public:
  CreatingNamespace() {
    sigset_t s;
    sigemptyset(&s);
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&s, sig);
    pthread_sigmask(SIG_BLOCK, &s, &old_);
    g_creating.fetch_add(1);
  }
  ~CreatingNamespace() {
    g_creating.fetch_sub(1);
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);  // a signal held back is handled here
  }
  CreatingNamespace(const CreatingNamespace&) = delete;
  CreatingNamespace& operator=(const CreatingNamespace&) = delete;

 private:
  sigset_t old_;
};

MacAddr mac_of(uint8_t a, uint8_t b) { return MacAddr{{0x02, 0x00, 0x0a, 0xc9, a, b}}; }
Ipv4Addr ip_of(const char* s) { return *Ipv4Addr::parse(s); }

}  // namespace

std::string run_command(const std::string& cmd) {
  // ip, ethtool and sysctl live in /usr/sbin, which Bazel's strict action environment omits.
  std::string full = "PATH=\"$PATH:/usr/sbin:/sbin\"; " + cmd + " 2>&1";
  FILE* p = popen(full.c_str(), "r");
  if (!p) throw std::runtime_error("cannot run: " + cmd);
  std::string out;
  std::array<char, 512> buf;
  while (size_t n = fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  int rc = pclose(p);
  if (rc != 0) throw std::runtime_error("command failed (" + std::to_string(rc) + "): " + cmd +
                                        (out.empty() ? "" : "\n  " + out));
  return out;
}

void register_child(pid_t pid) {
  for (auto& c : g_children) {
    pid_t expected = 0;
    if (c.compare_exchange_strong(expected, pid)) return;
  }
}

void unregister_child(pid_t pid) {
  for (auto& c : g_children) {
    pid_t expected = pid;
    if (c.compare_exchange_strong(expected, 0)) return;
  }
}

void install_cleanup_handler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (int s : {SIGINT, SIGTERM, SIGHUP}) sigaction(s, &sa, nullptr);
  });
}

namespace {
// `ip netns del`, or, when that fails, what it does (umount + unlink).
void delete_ns(const std::string& n) noexcept {
  try {
    run_command("ip netns del " + n);
  } catch (...) {
    remove_ns_raw(n.c_str());
  }
}
}  // namespace

std::vector<std::string> reap_stale_namespaces() {
  std::vector<std::string> removed;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/run/netns", ec)) {
    const std::string n = e.path().filename();
    // "ulsnet-<pid>-<n>-<host>": ours, made by process <pid>.
    if (n.rfind("ulsnet-", 0) != 0) continue;
    size_t end = n.find('-', 7);
    if (end == std::string::npos || end == 7) continue;
    const std::string digits = n.substr(7, end - 7);
    if (digits.find_first_not_of("0123456789") != std::string::npos || digits.size() > 9) continue;
    pid_t owner = pid_t(std::stol(digits));
    // Alive (or a reused pid we cannot tell apart): leave it. Only a pid no process has is stale.
    if (owner == getpid() || kill(owner, 0) == 0 || errno != ESRCH) continue;
    delete_ns(n);
    removed.push_back(n);
  }
  return removed;
}

std::vector<std::string> live_namespaces() {
  std::lock_guard<std::mutex> g(g_mu);
  std::vector<std::string> v;
  for (int i = 0; i < kMaxNs; ++i)
    if (g_ns_used[i].load()) v.push_back(g_ns[i]);
  return v;
}

namespace {

// Kernel threads polling `ifname`'s NAPI contexts ("napi/<ifname>-<id>"), pinned to `cpu`.
// Returns a description for the results. Other runs' interfaces of the same name would be
// matched too; every run uses the proxy's CPU for them, so that is harmless.
std::string pin_napi_threads(const std::string& ifname, int cpu, int fifo_priority) {
  std::string out;
  const std::string prefix = "napi/" + ifname + "-";
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    const std::string pid = e.path().filename();
    if (pid.empty() || !std::isdigit(static_cast<unsigned char>(pid[0]))) continue;
    std::string comm;
    std::ifstream(e.path() / "comm") >> comm;
    if (comm.rfind(prefix, 0) != 0) continue;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(std::stoi(pid), sizeof set, &set) != 0)
      throw std::runtime_error("cannot pin " + comm + " to CPU " + std::to_string(cpu) + ": " +
                               std::strerror(errno));
    // Real-time priority, as interrupt and softirq work has over processes on a real host:
    // otherwise the scheduler may leave the thread waiting behind the proxy process for longer
    // than veth's 256-frame ring lasts, and frames are dropped at moderate load.
    sched_param sp{};
    sp.sched_priority = fifo_priority;
    if (sched_setscheduler(std::stoi(pid), fifo_priority > 0 ? SCHED_FIFO : SCHED_OTHER, &sp) != 0)
      throw std::runtime_error("cannot set the scheduling of " + comm + ": " + std::strerror(errno));
    out += (out.empty() ? "" : ", ") + comm + " (pid " + pid + ") on CPU " + std::to_string(cpu) +
           (fifo_priority > 0 ? " SCHED_FIFO " + std::to_string(fifo_priority) : std::string(" SCHED_OTHER"));
  }
  if (out.empty()) throw std::runtime_error("no NAPI thread found for " + ifname);
  return out;
}

}  // namespace

Topology::Topology(const TopologyOptions& opt) {
  if (geteuid() != 0) throw std::runtime_error("creating hosts needs root (ip netns add)");
  install_cleanup_handler();
  {
    // A run killed by SIGKILL (or a lost machine) cannot remove its hosts; the next run does.
    static std::once_flag reaped;
    std::call_once(reaped, [] {
      for (const std::string& n : reap_stale_namespaces())
        std::fprintf(stderr, "removed namespace %s, left by a run that no longer exists\n", n.c_str());
    });
  }
  std::string base = "ulsnet-" + std::to_string(getpid()) + "-" + std::to_string(g_counter++);
  std::string snd = base + "-snd", prx = base + "-prx", rcv = base + "-rcv";
  auto add_ns = [&](const std::string& n) {
    CreatingNamespace creating;
    track_ns(n, true);
    ns_.push_back(n);
    run_command("ip netns add " + n);
    run_command("ip -n " + n + " link set lo up");
    // No IPv6: its router solicitations and MLD reports would be frames outside the experiment.
    run_command("ip netns exec " + n +
                " sh -c 'sysctl -qw net.ipv6.conf.all.disable_ipv6=1"
                " net.ipv6.conf.default.disable_ipv6=1 2>/dev/null || true'");
  };
  try {
    add_ns(snd);
    add_ns(rcv);
    sender = {snd, "s0", mac_of(1, 1), ip_of("10.201.1.1")};
    if (opt.three_hosts) {
      add_ns(prx);
      proxy_in = {prx, "p0", mac_of(1, 2), ip_of("10.201.1.2")};
      proxy_out = {prx, "p1", mac_of(2, 1), ip_of("10.201.2.1")};
      receiver = {rcv, "r0", mac_of(2, 2), ip_of("10.201.2.2")};
    } else {
      receiver = {rcv, "r0", mac_of(1, 2), ip_of("10.201.1.2")};
    }
    auto link = [&](const HostPort& a, const HostPort& b) {
      run_command("ip link add " + a.ifname + " netns " + a.ns + " address " + a.mac.str() +
                  " type veth peer name " + b.ifname + " netns " + b.ns + " address " +
                  b.mac.str());
      for (const HostPort* h : {&a, &b}) {
        run_command("ip netns exec " + h->ns + " ethtool -K " + h->ifname + " tx off >/dev/null");
        run_command("ip -n " + h->ns + " link set " + h->ifname + " up");
      }
      // After `up`: the veth enables NAPI when GRO is switched on while the device is up.
      for (const HostPort* h : {&a, &b}) {
        if (opt.veth_napi)
          run_command("ip netns exec " + h->ns + " ethtool -K " + h->ifname + " gro on >/dev/null");
      }
    };
    auto addr = [&](const HostPort& h) {
      run_command("ip -n " + h.ns + " addr add " + h.ip.str() + "/24 dev " + h.ifname);
    };
    auto neigh = [&](const HostPort& h, const HostPort& peer) {
      run_command("ip -n " + h.ns + " neigh replace " + peer.ip.str() + " lladdr " +
                  peer.mac.str() + " dev " + h.ifname + " nud permanent");
    };
    if (opt.three_hosts) {
      link(sender, proxy_in);
      link(proxy_out, receiver);
      addr(sender);
      addr(receiver);
      run_command("ip -n " + snd + " route add 10.201.2.0/24 via 10.201.1.2");
      run_command("ip -n " + rcv + " route add 10.201.1.0/24 via 10.201.2.1");
      if (opt.proxy_kernel_addresses) {
        addr(proxy_in);
        addr(proxy_out);
      }
      auto threaded = [&](const HostPort& h, int cpu) {
        run_command("ip netns exec " + h.ns + " sh -c 'echo 1 > /sys/class/net/" + h.ifname +
                    "/threaded'");
        napi_ += (napi_.empty() ? "" : "; ") + pin_napi_threads(h.ifname, cpu, opt.napi_fifo_priority);
      };
      if (opt.veth_napi && opt.proxy_napi_cpu >= 0) {
        threaded(proxy_in, opt.proxy_napi_cpu);
        threaded(proxy_out, opt.proxy_napi_cpu);
      }
      if (opt.veth_napi && opt.receiver_napi_cpu >= 0) threaded(receiver, opt.receiver_napi_cpu);
      if (opt.static_neighbors) {
        neigh(sender, proxy_in);
        neigh(receiver, proxy_out);
        if (opt.proxy_kernel_addresses) {
          neigh(proxy_in, sender);
          neigh(proxy_out, receiver);
        }
      }
    } else {
      link(sender, receiver);
      addr(sender);
      addr(receiver);
      if (opt.static_neighbors) {
        neigh(sender, receiver);
        neigh(receiver, sender);
      }
    }
  } catch (...) {
    destroy();
    throw;
  }
}

Topology::~Topology() { destroy(); }

void Topology::destroy() noexcept {
  for (const std::string& n : ns_) {
    delete_ns(n);
    try {
      track_ns(n, false);
    } catch (...) {
    }
  }
  ns_.clear();
}

ProxyPort Topology::proxy_port_in() const {
  return {proxy_in.ifname, proxy_in.mac, proxy_in.ip, 24, sender.ip, sender.mac};
}
ProxyPort Topology::proxy_port_out() const {
  return {proxy_out.ifname, proxy_out.mac, proxy_out.ip, 24, receiver.ip, receiver.mac};
}

}  // namespace ulsnet
