// ulsnet_agent: one role of a trial on a real host, run there over SSH by
// //bench/ssh:ssh_throughput (which copies this binary to each host; static, so the host needs
// no libraries). The same code as the namespace hosts run: a proxy method from the registry
// (baselines/), the socket generator and sink of bench/traffic.h, host_environment().
//
//   ulsnet_agent proxy --method NAME[:VARIANT] --mode relay|router
//                      --in-if IF --in-ip A [--in-peer-ip A] [--in-peer-mac M]
//                      --out-if IF --out-ip A [--out-peer-ip A] [--out-peer-mac M]
//                      [--cpu N] [--competitors K] ...
//   ulsnet_agent send  --dst A [--port 9000] [--payload 64] [--rate PPS|max] [--duration 1] ...
//                      [--clock-peer A --clock-port P [--clock-shift]]
//   ulsnet_agent recv  [--port 9000] [--run-id N] [--max-packets N] [--clock-port P] ...
//   ulsnet_agent env   [--if IF]... [--find-ip A]...
//   ulsnet_agent exec  [--max-seconds S] -- 'SHELL COMMAND'
//
// Output: JSON lines (bench/ssh/agent_protocol.h): "ready" once proxy or recv is set up, then
// exactly one "report" or "error". Exit 0 with a report; 2 for bad arguments; 3 when the role
// cannot run here (missing interface, privilege, method error) or failed.
//
// Stopping and bounds. proxy and recv run until a line "stop" or end of file on stdin (so when
// the SSH session that started them goes away, they stop), SIGINT/SIGTERM/SIGHUP, or
// --max-seconds; send runs for its --duration (and stops early the same ways). Every role also
// has a hard bound: alarm(--max-seconds + 20) ends a role that failed to stop. --pidfile names a
// file holding the agent's pid while it runs (the controller's clean-up kills what is left).
//
// CPU (proxy): --cpu N pins every thread of the agent (the method runs in it) to CPU N before the
// method starts and again once it has started its threads; the report's `placement` says what
// the kernel then holds (each thread's mask read back: `pinned` only if all are on N alone).
// --competitors K forks K busy-loop processes on that CPU once the method is set up, killed and
// reaped when it stops (and on every way out; PR_SET_PDEATHSIG if the agent dies, each bounded by
// --max-seconds); the report's `competitors` has their CPU time. `process_cpu` (getrusage of the
// agent and its reaped children) and `host_cpu` (/proc/stat per CPU) are deltas over one window,
// from a line "mark" on stdin (the controller sends it when the sender says its stream starts) to
// stop, or from ready when no mark came (`cpu_window` says which, and how long). send and recv
// --cpus A,B run on those CPUs only (the controller keeps them off the proxy's CPU when they share
// its machine); their report's `placement` says what the kernel then holds. send prints
// "ready" right before its stream's first datagram. `env` reports the host's online CPUs and the
// agent's affinity (`cpus`).
//
// exec (//bench:proxy --hosts=ssh's --exec-sender and --exec-receiver): the command under
// /bin/sh -c in a session of its own (its own process group), stdin /dev/null, its output this
// agent's, every signal unblocked and at its default; on "stop", the end of stdin or the time
// bound: SIGTERM to its process group, SIGKILL 2 s later; once it has ended, SIGKILL to whatever
// it left in its group. Exit: the command's status, or 128 + the signal that ended it; no JSON.
// (A shell's `setsid CMD &` would do the same but leave SIGINT and SIGQUIT ignored in the command,
// as a non-interactive shell's background jobs have them: SigIgn 6, read through sshd here.)
//
// Status (proxy --status-interval S, for //bench:proxy --hosts=ssh): a "status" line before
// "ready" (t 0, the counters before the method started) and one every S seconds while it runs,
// each a snapshot in bench/proxy_status.h's form (the method's live() counters, the host's
// interface counters, the agent's CPU time); the report then has "last_snapshot", taken after
// the method stopped, which closes the sums.
//
// Clocks (one-way delays across machines; bench/ssh/clock_exchange.h): recv --clock-port answers
// clock requests of its run id on that UDP port while the sink runs; send --clock-peer measures the
// receiver's CLOCK_MONOTONIC against its own before the stream (`offset`) and, with --clock-shift,
// runs the generator in a child process in a new time namespace whose CLOCK_MONOTONIC is moved by
// that offset (root: CAP_SYS_ADMIN; Linux >= 5.6), so the send times it stamps are on the
// receiver's clock; the residual difference is measured right before and right after the stream
// (`residual_before`, `residual_after`, on the clock the stamps were taken with). The report's
// `clock` holds them all, or why a step could not be done.
#include <arpa/inet.h>
#include <dirent.h>
#include <ifaddrs.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <mutex>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "baselines/proc_counters.h"
#include "baselines/registry.h"
#include "bench/environment.h"
#include "bench/ssh/agent_protocol.h"
#include "bench/ssh/clock_exchange.h"
#include "bench/ssh/load_plan.h"
#include "bench/topology.h"
#include "bench/traffic.h"
#include "bench/trial.h"

namespace {

using namespace ulsnet;
using namespace ulsnet::ssh;

constexpr int kExitUsage = 2;
constexpr int kExitCannot = 3;
// A day: a standing proxy (//bench:proxy --hosts=ssh) runs as long as its user wants, still bounded.
constexpr double kMaxSecondsLimit = 86400;

std::atomic<bool> g_stop{false};

void on_stop_signal(int) { g_stop = true; }

// A role's failure: its error line, then the exit code.
struct RoleError {
  int code;
  std::string message;
};

void emit(const std::string& line) {
  std::fputs((line + "\n").c_str(), stdout);
  std::fflush(stdout);
}

// The stop conditions other than signals: "stop" or EOF on stdin, the time bound.
class StopWatcher {
 public:
  // `on_mark`: called (on the watcher's thread) for each line "mark" on stdin.
  StopWatcher(bool watch_stdin, double max_seconds, std::function<void()> on_mark = {})
      : watch_stdin_(watch_stdin),
        on_mark_(std::move(on_mark)),
        deadline_(std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                                          std::chrono::duration<double>(max_seconds))) {
    thread_ = std::thread([this] { loop(); });
  }
  ~StopWatcher() {
    done_ = true;
    thread_.join();
  }
  StopWatcher(const StopWatcher&) = delete;
  StopWatcher& operator=(const StopWatcher&) = delete;
  // Why the role was stopped ("" while it was not).
  std::string reason() const {
    if (!g_stop) return "";
    return reason_set_ ? reason_ : "signal";
  }

 private:
  void set(const char* why) {
    if (!g_stop.exchange(true)) {
      reason_ = why;
      reason_set_ = true;
    }
  }
  void loop() {
    std::string line;
    while (!done_) {
      if (std::chrono::steady_clock::now() >= deadline_) set("time bound (--max-seconds)");
      if (!watch_stdin_) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        continue;
      }
      pollfd p{STDIN_FILENO, POLLIN, 0};
      if (poll(&p, 1, 20) <= 0) continue;
      char buf[256];
      const ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
      if (n <= 0) {
        set("end of stdin (the controller's session ended)");
        watch_stdin_ = false;
        continue;
      }
      line.append(buf, size_t(n));
      for (size_t nl; (nl = line.find('\n')) != std::string::npos; line.erase(0, nl + 1))
        if (line.compare(0, nl, "stop") == 0) set("told to stop");
        else if (line.compare(0, nl, "mark") == 0 && on_mark_) on_mark_();
    }
  }
  bool watch_stdin_;
  std::function<void()> on_mark_;
  std::chrono::steady_clock::time_point deadline_;
  std::atomic<bool> done_{false};
  std::string reason_;
  std::atomic<bool> reason_set_{false};
  std::thread thread_;
};

// The agent's pid in a file while it runs.
class PidFile {
 public:
  explicit PidFile(std::string path) : path_(std::move(path)) {
    if (path_.empty()) return;
    std::ofstream f(path_);
    f << getpid() << "\n";
    if (!f) throw RoleError{kExitCannot, "cannot write the pid file " + path_};
  }
  ~PidFile() {
    if (!path_.empty()) unlink(path_.c_str());
  }
  PidFile(const PidFile&) = delete;
  PidFile& operator=(const PidFile&) = delete;

 private:
  std::string path_;
};

// ---- the host's interfaces ------------------------------------------------------------------

std::optional<MacAddr> interface_mac(const std::string& ifname) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::nullopt;
  ifreq r{};
  std::strncpy(r.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
  const bool ok = ioctl(fd, SIOCGIFHWADDR, &r) == 0;
  close(fd);
  if (!ok) return std::nullopt;
  MacAddr m;
  std::memcpy(m.b.data(), r.ifr_hwaddr.sa_data, 6);
  return m;
}

int prefix_of(const sockaddr* mask) {
  if (mask == nullptr) return 0;
  return __builtin_popcount(reinterpret_cast<const sockaddr_in*>(mask)->sin_addr.s_addr);
}

// Every interface of this network namespace: name, index, MAC, MTU, up, running, IPv4 addresses.
nlohmann::json interfaces_json() {
  std::map<std::string, nlohmann::json> by_name;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return nlohmann::json::array();
  for (ifaddrs* a = list; a != nullptr; a = a->ifa_next) {
    nlohmann::json& j = by_name[a->ifa_name];
    if (j.is_null()) {
      j = {{"name", a->ifa_name}, {"index", if_nametoindex(a->ifa_name)}, {"up", (a->ifa_flags & IFF_UP) != 0},
           {"running", (a->ifa_flags & IFF_RUNNING) != 0}, {"ipv4", nlohmann::json::array()}};
      if (auto m = interface_mac(a->ifa_name)) j["mac"] = m->str();
      std::ifstream mtu(std::string("/sys/class/net/") + a->ifa_name + "/mtu");
      int v = 0;
      if (mtu >> v) j["mtu"] = v;
    }
    if (a->ifa_addr != nullptr && a->ifa_addr->sa_family == AF_INET) {
      Ipv4Addr ip{ntohl(reinterpret_cast<sockaddr_in*>(a->ifa_addr)->sin_addr.s_addr)};
      j["ipv4"].push_back(ip.str() + "/" + std::to_string(prefix_of(a->ifa_netmask)));
    }
  }
  freeifaddrs(list);
  nlohmann::json all = nlohmann::json::array();
  for (auto& [name, j] : by_name) all.push_back(j);
  return all;
}

// The interface whose kernel holds `ip` in this namespace, or "".
std::string interface_holding(Ipv4Addr ip) {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return "";
  std::string found;
  for (ifaddrs* a = list; a != nullptr && found.empty(); a = a->ifa_next)
    if (a->ifa_addr != nullptr && a->ifa_addr->sa_family == AF_INET &&
        ntohl(reinterpret_cast<sockaddr_in*>(a->ifa_addr)->sin_addr.s_addr) == ip.v)
      found = a->ifa_name;
  freeifaddrs(list);
  return found;
}

std::string interface_names() {
  std::string s;
  for (const auto& j : interfaces_json()) s += (s.empty() ? "" : ", ") + j["name"].get<std::string>();
  return s;
}

void need_interface(const std::string& ifname) {
  if (ifname.empty()) throw RoleError{kExitUsage, "an interface name is empty"};
  if (if_nametoindex(ifname.c_str()) == 0)
    throw RoleError{kExitCannot, "no interface '" + ifname + "' on this host (it has: " + interface_names() + ")"};
}

Ipv4Addr need_ip(const std::string& s, const char* what) {
  auto ip = Ipv4Addr::parse(s);
  if (!ip) throw RoleError{kExitUsage, std::string(what) + ": '" + s + "' is not an IPv4 address"};
  return *ip;
}

nlohmann::json rusage_json() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return {{"user_ns", uint64_t(ru.ru_utime.tv_sec) * 1000000000ull + uint64_t(ru.ru_utime.tv_usec) * 1000},
          {"sys_ns", uint64_t(ru.ru_stime.tv_sec) * 1000000000ull + uint64_t(ru.ru_stime.tv_usec) * 1000},
          {"voluntary_ctx_switches", ru.ru_nvcsw},
          {"involuntary_ctx_switches", ru.ru_nivcsw}};
}

// ---- roles ----------------------------------------------------------------------------------

struct Common {
  double max_seconds = 60;
  std::string pidfile;
  bool ignore_stdin = false;
  std::vector<int> cpus;  // send, recv: run on these CPUs only (empty: wherever)
};

struct ProxyArgs {
  std::string method, mode = "relay", in_if, in_ip, in_peer_ip, in_peer_mac, out_if, out_ip, out_peer_ip,
                      out_peer_mac, protection = "auto", addresses = "as-is";
  int prefix = 24;
  uint16_t port = 9000;
  uint32_t batch = 32;
  int cpu = -1;         // pin the method here (-1: not pinned)
  int competitors = 0;  // CPU-bound processes beside it on that CPU while it runs
  double status_interval = 0;  // seconds between status lines (0: none)
};

// ---- CPU placement and competitors ----------------------------------------------------------

// The thread ids of this process.
std::vector<pid_t> tasks() {
  std::vector<pid_t> t;
  if (DIR* d = opendir("/proc/self/task")) {
    while (dirent* e = readdir(d))
      if (e->d_name[0] >= '0' && e->d_name[0] <= '9') t.push_back(pid_t(std::atoi(e->d_name)));
    closedir(d);
  }
  return t;
}

std::vector<int> cpus_of(const cpu_set_t& set) {
  std::vector<int> v;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) v.push_back(c);
  return v;
}

// The CPUs this process may run on (sched_getaffinity), empty if unknown.
std::vector<int> allowed_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return {};
  return cpus_of(set);
}

// Every thread of this process onto `cpu` (threads made later inherit the caller's mask); the
// first failure, or "".
std::string pin_tasks(const std::vector<int>& cpus) {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::string named;
  for (int c : cpus) {
    if (c < 0 || c >= CPU_SETSIZE) return "CPU " + std::to_string(c) + " out of range";
    CPU_SET(c, &set);
    named += (named.empty() ? "CPU " : ",") + std::to_string(c);
  }
  std::string err;
  for (pid_t t : tasks())
    if (sched_setaffinity(t, sizeof set, &set) != 0 && err.empty())
      err = "sched_setaffinity(" + std::to_string(t) + ", " + named + "): " + std::strerror(errno);
  return err;
}

std::string pin_tasks(int cpu) { return pin_tasks(std::vector<int>{cpu}); }

// send, recv --cpus: every task of this process (and what it starts later) on those CPUs, read
// back: {"cpus", "affinity" (this thread's mask after), "pinned", "error"?}.
nlohmann::json pin_role(const std::vector<int>& cpus) {
  nlohmann::json j = {{"cpus", cpus}};
  if (cpus.empty()) {
    j["pinned"] = false;
    return j;
  }
  const std::string err = pin_tasks(cpus);
  std::vector<int> want = cpus;
  std::sort(want.begin(), want.end());
  want.erase(std::unique(want.begin(), want.end()), want.end());
  const std::vector<int> now = allowed_cpus();
  j["affinity"] = now;
  j["pinned"] = err.empty() && now == want;
  if (!err.empty()) j["error"] = err;
  return j;
}

// Where the method's threads are, read back from the kernel: pinned when asked for a CPU, no
// pinning error, and every thread's mask is that CPU alone.
nlohmann::json placement_json(int cpu, const std::string& pin_error) {
  nlohmann::json j = {{"cpu", cpu >= 0 ? nlohmann::json(cpu) : nlohmann::json(nullptr)}};
  size_t n = 0, on = 0;
  nlohmann::json masks = nlohmann::json::array();
  for (pid_t t : tasks()) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(t, sizeof set, &set) != 0) continue;
    ++n;
    const std::vector<int> c = cpus_of(set);
    if (cpu >= 0 && c == std::vector<int>{cpu}) ++on;
    if (std::find(masks.begin(), masks.end(), nlohmann::json(c)) == masks.end()) masks.push_back(c);
  }
  j["threads"] = n;
  j["threads_on_cpu"] = on;
  j["affinity"] = masks;  // the distinct masks of the threads
  j["pinned"] = cpu >= 0 && pin_error.empty() && n > 0 && on == n;
  if (!pin_error.empty()) j["error"] = pin_error;
  return j;
}

// A process's CPU time (utime + stime of /proc/PID/stat) in ns, or -1.
int64_t process_cpu_ns(pid_t p) {
  std::ifstream f("/proc/" + std::to_string(p) + "/stat");
  std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const size_t rp = all.rfind(')');
  if (rp == std::string::npos) return -1;
  std::vector<std::string> fields;
  std::string w;
  for (size_t i = rp + 2; i <= all.size(); ++i) {
    if (i == all.size() || all[i] == ' ') {
      fields.push_back(w);
      w.clear();
    } else {
      w += all[i];
    }
  }
  // After the ')': state is field 3, so utime (14) and stime (15) are at 11 and 12.
  if (fields.size() < 13) return -1;
  const double ns_per_tick = 1e9 / double(sysconf(_SC_CLK_TCK));
  return int64_t(double(std::strtoull(fields[11].c_str(), nullptr, 10) + std::strtoull(fields[12].c_str(), nullptr, 10)) *
                 ns_per_tick);
}

// CPU-bound competitors: `n` processes spinning on `cpu` (-1: anywhere) at SCHED_OTHER, each for
// at most max_s, killed (SIGKILL) and reaped when this object goes (every way out of the role),
// and with the agent (PR_SET_PDEATHSIG) if it dies first, so none outlives it.
class Competitors {
 public:
  Competitors(int n, int cpu, double max_s) : cpu_(cpu) {
    const pid_t parent = getpid();
    for (int i = 0; i < n; ++i) {
      const pid_t p = fork();
      if (p < 0) {
        const int e = errno;
        stop();
        throw RoleError{kExitCannot, std::string("competitors: fork: ") + std::strerror(e)};
      }
      if (p == 0) {
        for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGALRM}) signal(sig, SIG_DFL);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(0);
        if (cpu >= 0) {
          cpu_set_t set;
          CPU_ZERO(&set);
          CPU_SET(cpu, &set);
          sched_setaffinity(0, sizeof set, &set);
        }
        const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(max_s);
        volatile uint64_t x = 0;
        while (std::chrono::steady_clock::now() < end && getppid() == parent)
          for (int k = 0; k < 100000; ++k) x = x + uint64_t(k);
        _exit(0);
      }
      pids_.push_back(p);
    }
  }
  ~Competitors() { stop(); }
  Competitors(const Competitors&) = delete;
  Competitors& operator=(const Competitors&) = delete;

  // What they did, read before they are killed: each one's CPU time, how many still ran.
  nlohmann::json report() const {
    nlohmann::json cpu_ns = nlohmann::json::array();
    int running = 0;
    for (pid_t p : pids_) {
      cpu_ns.push_back(process_cpu_ns(p));
      if (waitpid(p, nullptr, WNOHANG) == 0) ++running;
    }
    return {{"count", pids_.size()},
            {"cpu", cpu_ >= 0 ? nlohmann::json(cpu_) : nlohmann::json(nullptr)},
            {"kind", "busy loop, SCHED_OTHER"},
            {"cpu_time_ns", cpu_ns},
            {"running_at_stop", running}};
  }

 private:
  void stop() {
    for (pid_t p : pids_) kill(p, SIGKILL);
    for (pid_t p : pids_)
      while (waitpid(p, nullptr, 0) < 0 && errno == EINTR) {
      }
    pids_.clear();
  }
  int cpu_;
  std::vector<pid_t> pids_;
};

struct ProcessCpu {
  rusage self{}, children{};
  static ProcessCpu now() {
    ProcessCpu c;
    getrusage(RUSAGE_SELF, &c.self);
    getrusage(RUSAGE_CHILDREN, &c.children);
    return c;
  }
};

uint64_t tv_ns(const timeval& t) { return uint64_t(t.tv_sec) * 1000000000ull + uint64_t(t.tv_usec) * 1000; }

nlohmann::json process_cpu_delta(const ProcessCpu& a, const ProcessCpu& b, bool from_mark) {
  auto d = [](const timeval& x, const timeval& y) { return tv_ns(y) - std::min(tv_ns(y), tv_ns(x)); };
  return {{"user_ns", d(a.self.ru_utime, b.self.ru_utime)},
          {"sys_ns", d(a.self.ru_stime, b.self.ru_stime)},
          {"children_user_ns", d(a.children.ru_utime, b.children.ru_utime)},
          {"children_sys_ns", d(a.children.ru_stime, b.children.ru_stime)},
          {"window", std::string(from_mark ? "from the sender's start of stream (mark)" : "from ready") +
                         " to stop: getrusage of the agent (the method runs in it: its threads) and of its reaped "
                         "children (the competitors are reaped after it)"}};
}

// Adds or removes the proxy's test addresses in its kernel as the method needs (--addresses
// adjust), and undoes exactly that at the end.
class AddressAdjustment {
 public:
  void ensure(const std::string& ifname, Ipv4Addr ip, int prefix, bool kernel_should_own) {
    const bool has = interface_holding(ip) == ifname;
    const std::string a = ip.str() + "/" + std::to_string(prefix);
    if (kernel_should_own && !has) {
      run_command("ip addr add " + a + " dev " + ifname);
      undo_.push_back("ip addr del " + a + " dev " + ifname);
    } else if (!kernel_should_own && has) {
      run_command("ip addr del " + a + " dev " + ifname);
      undo_.push_back("ip addr add " + a + " dev " + ifname);
    }
  }
  nlohmann::json done() const {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& u : undo_) j.push_back("undo at the end: " + u);
    return j;
  }
  ~AddressAdjustment() {
    for (auto it = undo_.rbegin(); it != undo_.rend(); ++it) {
      try {
        run_command(*it);
      } catch (...) {
      }
    }
  }

 private:
  std::vector<std::string> undo_;
};

// The method --method names (NAME or NAME:VARIANT), checked against its registry row and this
// host (the ULS kernel, root): its row, and `pc`'s method, variant and mode.
const MethodInfo& checked_proxy_method(const ProxyArgs& a, ProxyConfig& pc) {
  const auto colon = a.method.find(':');
  const std::string name = a.method.substr(0, colon);
  const MethodInfo* info = find_proxy_method(name);
  if (info == nullptr) throw RoleError{kExitUsage, "unknown method '" + name + "'"};
  pc.method = name;
  pc.variant = colon == std::string::npos ? std::string(info->variants.front()) : a.method.substr(colon + 1);
  if (std::find(info->variants.begin(), info->variants.end(), pc.variant) == info->variants.end())
    throw RoleError{kExitUsage, "method " + name + " has no variant '" + pc.variant + "'"};
  pc.mode = a.mode == "router" ? ForwardMode::kRouter : ForwardMode::kRelay;
  if ((pc.mode == ForwardMode::kRelay && !info->relay) || (pc.mode == ForwardMode::kRouter && !info->router))
    throw RoleError{kExitUsage, name + " has no " + a.mode + " mode"};
  if (needs_uls_kernel(name, pc.variant) && access("/dev/uls", F_OK) != 0)
    throw RoleError{kExitCannot, name + ":" + pc.variant + " needs the ULS kernel (/dev/uls), which this host lacks"};
  if (geteuid() != 0 && (name != "kernel-socket" || a.addresses == "adjust"))
    throw RoleError{kExitCannot, "the proxy method " + name + (a.addresses == "adjust" ? " with --addresses adjust" : "") +
                                     " needs root (packet sockets, XDP, BPF, sysctls, addresses); euid is " +
                                     std::to_string(geteuid())};
  return *info;
}

// One side of the proxy (`side`: "in" or "out"): the interface, its address and MAC, the peer's.
ProxyPort proxy_port(const ProxyArgs& a, const std::string& ifname, const std::string& ip, const std::string& peer_ip,
                     const std::string& peer_mac, const char* side) {
  ProxyPort p;
  p.ifname = ifname;
  p.ip = need_ip(ip, (std::string("--") + side + "-ip").c_str());
  p.prefix_len = a.prefix;
  if (!peer_ip.empty()) p.peer_ip = need_ip(peer_ip, (std::string("--") + side + "-peer-ip").c_str());
  if (!peer_mac.empty()) {
    auto m = MacAddr::parse(peer_mac);
    if (!m) throw RoleError{kExitUsage, std::string("--") + side + "-peer-mac: '" + peer_mac + "' is not a MAC address"};
    p.peer_mac = *m;
  }
  auto own = interface_mac(ifname);
  if (!own) throw RoleError{kExitCannot, "cannot read the MAC address of " + ifname};
  p.mac = *own;
  return p;
}

// The method's whole configuration from the role's flags.
ProxyConfig proxy_config(const ProxyArgs& a, const MethodInfo*& info) {
  ProxyConfig pc;
  info = &checked_proxy_method(a, pc);
  need_interface(a.in_if);
  need_interface(a.out_if);
  pc.in = proxy_port(a, a.in_if, a.in_ip, a.in_peer_ip, a.in_peer_mac, "in");
  pc.out = proxy_port(a, a.out_if, a.out_ip, a.out_peer_ip, a.out_peer_mac, "out");
  if (pc.in.peer_ip.v == 0 || pc.out.peer_ip.v == 0)
    throw RoleError{kExitUsage, "--in-peer-ip and --out-peer-ip are needed (the sender's and the receiver's addresses)"};
  // Without both peers' MACs the Stack resolves them by ARP.
  pc.static_neighbors = !pc.in.peer_mac.is_zero() && !pc.out.peer_mac.is_zero();
  pc.relay_port = pc.relay_to_port = a.port;
  pc.batch = a.batch;
  pc.protection = a.protection;
  return pc;
}

// The agent's CPU time (user + system, every thread): the status lines' "cpu_ns".
uint64_t self_cpu_ns() {
  const ProcessCpu c = ProcessCpu::now();
  return tv_ns(c.self.ru_utime) + tv_ns(c.self.ru_stime);
}

// --status-interval: a thread that emits snapshot() as a status line every `interval` seconds
// until destroyed (0: no thread). snapshot() runs on this thread: ProxyMethod::live() is made
// for a reader beside run().
class StatusLines {
 public:
  StatusLines(double interval, std::function<nlohmann::json()> snapshot) {
    if (interval <= 0) return;
    thread_ = std::thread([this, interval, snapshot = std::move(snapshot)] {
      auto next = std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                                         std::chrono::duration<double>(interval));
      std::unique_lock<std::mutex> l(mu_);
      while (!cv_.wait_until(l, next, [this] { return done_; })) {
        next += std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(interval));
        l.unlock();
        emit(agent_status_line("proxy", snapshot()));
        l.lock();
      }
    });
  }
  ~StatusLines() {
    if (!thread_.joinable()) return;
    {
      std::lock_guard<std::mutex> l(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  StatusLines(const StatusLines&) = delete;
  StatusLines& operator=(const StatusLines&) = delete;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

// The proxy's CPU-time window: it starts at ready, or at the controller's "mark" (the sender's
// start of stream) when one comes, on the stop watcher's thread; it ends at stop.
class CpuWindow {
 public:
  void start(bool mark) {
    std::lock_guard<std::mutex> l(mu_);
    if (marked_) return;
    process_ = ProcessCpu::now();
    host_ = read_cpu_times();
    at_ = std::chrono::steady_clock::now();
    marked_ = mark;
  }
  // The window's host and process CPU time into the report; a late mark changes nothing after.
  void end(nlohmann::json& r) {
    std::lock_guard<std::mutex> l(mu_);
    r["host_cpu"] = cpu_delta(host_, read_cpu_times());
    r["process_cpu"] = process_cpu_delta(process_, ProcessCpu::now(), marked_);
    r["host_cpu_window"] = marked_ ? "from the sender's start of stream (the controller's mark) to stop "
                                     "(/proc/stat, every CPU of the host)"
                                   : "from ready to stop (/proc/stat, every CPU of the host; no mark came)";
    r["cpu_window"] = {{"from", marked_ ? "mark" : "ready"},
                       {"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - at_).count()}};
    marked_ = true;
  }

 private:
  std::mutex mu_;
  bool marked_ = false;
  ProcessCpu process_;
  nlohmann::json host_;
  std::chrono::steady_clock::time_point at_;
};

// --addresses adjust: the proxy's test addresses in its kernel as the method needs them.
void adjust_addresses(std::optional<AddressAdjustment>& adjust, const ProxyArgs& a, const ProxyConfig& pc,
                      const MethodInfo& info) {
  if (a.addresses != "adjust") return;
  adjust.emplace();
  try {
    adjust->ensure(pc.in.ifname, pc.in.ip, a.prefix, info.kernel_owns_addresses);
    adjust->ensure(pc.out.ifname, pc.out.ip, a.prefix, info.kernel_owns_addresses);
  } catch (const std::exception& e) {
    throw RoleError{kExitCannot, std::string("adjusting the proxy's addresses: ") + e.what()};
  }
}

// What the proxy's report says about the method beside its own counters.
void describe_proxy(nlohmann::json& r, const ProxyArgs& a, const ProxyConfig& pc,
                    const std::optional<AddressAdjustment>& adjust) {
  r["method"] = pc.method;
  r["variant"] = pc.variant;
  r["mode"] = a.mode;
  r["interfaces"] = {{"in", {{"if", pc.in.ifname}, {"ip", pc.in.ip.str()}, {"mac", pc.in.mac.str()}}},
                     {"out", {{"if", pc.out.ifname}, {"ip", pc.out.ip.str()}, {"mac", pc.out.mac.str()}}}};
  r["static_neighbors"] = pc.static_neighbors;
  if (adjust) r["addresses_adjusted"] = adjust->done();
}

int role_proxy(const ProxyArgs& a, const Common& c) {
  const MethodInfo* info = nullptr;
  ProxyConfig pc = proxy_config(a, info);
  CpuWindow window;
  StopWatcher watch(!c.ignore_stdin, c.max_seconds, [&window] { window.start(true); });
  std::optional<AddressAdjustment> adjust;
  adjust_addresses(adjust, a, pc, *info);
  // The method's threads on --cpu: this one now (the threads it starts inherit its mask), every
  // thread again once it has started them.
  std::string pin_error;
  if (a.cpu >= 0) pin_error = pin_tasks(a.cpu);
  const auto netdev0 = read_netdev();
  std::unique_ptr<ProxyMethod> m = make_proxy_method(pc.method);
  try {
    m->start(pc);
  } catch (const std::exception& e) {
    throw RoleError{kExitCannot, std::string("the method cannot run here: ") + e.what()};
  }
  if (a.cpu >= 0 && pin_error.empty()) pin_error = pin_tasks(a.cpu);
  const nlohmann::json placement = placement_json(a.cpu, pin_error);
  std::optional<Competitors> hogs;
  if (a.competitors > 0) hogs.emplace(a.competitors, a.cpu, c.max_seconds);
  // The CPU-time window: from ready (the method set up), or from "mark", to stop.
  window.start(false);
  const auto t0 = std::chrono::steady_clock::now();
  auto since_t0 = [&t0] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  if (a.status_interval > 0)
    emit(agent_status_line("proxy", {{"t", 0.0}, {"method", nullptr}, {"netdev", netdev0}, {"cpu_ns", self_cpu_ns()}}));
  emit(agent_ready_line("proxy", {{"in_mac", pc.in.mac.str()}, {"out_mac", pc.out.mac.str()}}));
  nlohmann::json r;
  {
    StatusLines status(a.status_interval, [&] {
      return nlohmann::json{{"t", since_t0()}, {"method", m->live()}, {"netdev", read_netdev()}, {"cpu_ns", self_cpu_ns()}};
    });
    try {
      m->run(g_stop);
      r = m->report();
    } catch (const std::exception& e) {
      throw RoleError{kExitCannot, std::string("the method failed while running: ") + e.what()};
    }
  }
  if (a.status_interval > 0)
    r["last_snapshot"] = {{"t", since_t0()}, {"netdev", read_netdev()}, {"cpu_ns", self_cpu_ns()}};
  window.end(r);
  r["placement"] = placement;
  if (hogs) {
    r["competitors"] = hogs->report();
    hogs.reset();  // killed and reaped
  } else {
    r["competitors"] = {{"count", 0}};
  }
  r["netdev"] = counter_delta(netdev0, read_netdev());
  r["rusage"] = rusage_json();
  r["wall_s"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r["stop_reason"] = watch.reason();
  describe_proxy(r, a, pc, adjust);
  emit(agent_report_line("proxy", r));
  return 0;
}

struct ExecArgs {
  std::string command;
};

int role_exec(const ExecArgs& a, const Common& c) {
  StopWatcher watch(!c.ignore_stdin, c.max_seconds);
  const pid_t pid = fork();
  if (pid < 0) throw RoleError{kExitCannot, std::string("fork: ") + std::strerror(errno)};
  if (pid == 0) {
    setsid();
    for (int sig = 1; sig < NSIG; ++sig)
      if (sig != SIGKILL && sig != SIGSTOP) signal(sig, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    const int null = open("/dev/null", O_RDONLY);
    if (null >= 0) dup2(null, STDIN_FILENO);
    execl("/bin/sh", "sh", "-c", a.command.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  auto reaped = [pid](int& st) { return waitpid(pid, &st, WNOHANG) == pid; };
  int st = 0;
  bool ended = false;
  while (!ended && !g_stop) {
    ended = reaped(st);
    if (!ended) usleep(20'000);
  }
  if (!ended) {
    kill(-pid, SIGTERM);
    for (int i = 0; i < 100 && !ended; ++i) {
      ended = reaped(st);
      if (!ended) usleep(20'000);
    }
    if (!ended) {
      kill(-pid, SIGKILL);
      while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
      }
    }
  }
  kill(-pid, SIGKILL);  // what it left in its group
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

struct SendArgs {
  std::string dst, ifname, rate = "max", clock_peer;
  uint16_t port = 9000, clock_port = 9101;
  bool clock_shift = false;
  uint32_t payload = 64, batch = 32, run_id = 1;
  double duration = 1;
  uint64_t count = 5'000'000;
};

// The generator's report, with the residual clock difference right before and right after the
// stream ("clock_before", "clock_after") when there is a clock peer.
nlohmann::json stream_with_residuals(const GeneratorConfig& g, const SendArgs& a) {
  nlohmann::json before, after;
  if (!a.clock_peer.empty())
    before = offset_or_error(exchange_clocks(a.clock_peer, a.clock_port, a.run_id, 16, 1, 200), a.clock_peer, a.clock_port);
  // The stream starts now: the controller marks the proxy's CPU window on this line.
  emit(agent_ready_line("send"));
  nlohmann::json r = run_generator(g, g_stop);
  if (!a.clock_peer.empty()) {
    after = offset_or_error(exchange_clocks(a.clock_peer, a.clock_port, a.run_id, 16, 1, 200), a.clock_peer, a.clock_port);
    r["clock_before"] = before;
    r["clock_after"] = after;
  }
  return r;
}

// The time namespace the next child will be in: its CLOCK_MONOTONIC = ours + shift_ns. "" or
// why not (privilege, a kernel without time namespaces, an offset out of range).
std::string enter_time_namespace_for_children(int64_t shift_ns) {
  if (unshare(CLONE_NEWTIME) != 0)
    return std::string("unshare(CLONE_NEWTIME): ") + std::strerror(errno) +
           (errno == EPERM ? " (needs root: CAP_SYS_ADMIN)" : errno == EINVAL ? " (no time namespaces: Linux >= 5.6, CONFIG_TIME_NS)" : "");
  int64_t sec = shift_ns / 1000000000, nsec = shift_ns % 1000000000;
  if (nsec < 0) nsec += 1000000000, sec -= 1;
  const std::string line = "monotonic " + std::to_string(sec) + " " + std::to_string(nsec) + "\n";
  const int fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
  if (fd < 0) return std::string("/proc/self/timens_offsets: ") + std::strerror(errno);
  const bool ok = write(fd, line.data(), line.size()) == ssize_t(line.size());
  const int e = errno;
  close(fd);
  return ok ? "" : std::string("writing timens_offsets (") + line.substr(0, line.size() - 1) + "): " + std::strerror(e);
}

// The generator's configuration from the role's flags, checked.
GeneratorConfig generator_config(const SendArgs& a) {
  GeneratorConfig g;
  g.dst = need_ip(a.dst, "--dst");
  g.dst_port = a.port;
  if (a.payload < kMinPayload || a.payload > kMaxPayload)
    throw RoleError{kExitUsage, "--payload " + std::to_string(a.payload) + " outside [" + std::to_string(kMinPayload) +
                                    ", " + std::to_string(kMaxPayload) + "]"};
  g.payload = a.payload;
  if (a.rate != "max") {
    char* end = nullptr;
    const double r = std::strtod(a.rate.c_str(), &end);
    if (end == a.rate.c_str() || *end != '\0' || !std::isfinite(r) || r <= 0 || r > 1e9)
      throw RoleError{kExitUsage, "--rate '" + a.rate + "' is neither max nor a number of packets/s in (0, 1e9]"};
    g.rate_pps = r;
  }
  g.duration_s = a.duration;
  g.count = a.count;
  g.batch = a.batch;
  g.run_id = a.run_id;
  return g;
}

// Before the stream, with a clock peer: the receiver's clock measured against ours (`offset`)
// and, with --clock-shift, the time namespace the generator's child will be in (`shift` set);
// the report's `clock` so far, or null without a peer.
nlohmann::json clock_before_stream(const SendArgs& a, std::optional<int64_t>& shift) {
  if (a.clock_peer.empty()) return nlohmann::json();
  nlohmann::json clock = {{"peer", a.clock_peer + ":" + std::to_string(a.clock_port)}};
  clock["offset"] = offset_or_error(exchange_clocks(a.clock_peer, a.clock_port, a.run_id, 32, 1, 200), a.clock_peer,
                                    a.clock_port);
  if (a.clock_shift) {
    const std::string why = clock["offset"].contains("error")
                                ? "no offset measured"
                                : enter_time_namespace_for_children(clock["offset"]["offset_ns"].get<int64_t>());
    if (why.empty()) shift = clock["offset"]["offset_ns"].get<int64_t>();
    else clock["shift_error"] = why;
  }
  clock["shifted"] = shift.has_value();
  clock["shift_ns"] = shift.value_or(0);
  return clock;
}

// The forked generator: its report (or its error) written to `fd`, then _exit.
[[noreturn]] void stream_in_child(int fd, pid_t parent, const GeneratorConfig& g, const SendArgs& b, double bound) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(1);
  alarm(unsigned(std::ceil(bound)) + 20);
  nlohmann::json j;
  try {
    j = stream_with_residuals(g, b);
  } catch (const std::exception& e) {
    j = {{"error", e.what()}};
  }
  const std::string out = j.dump();
  for (size_t off = 0; off < out.size();) {
    const ssize_t n = write(fd, out.data() + off, out.size() - off);
    if (n <= 0) break;
    off += size_t(n);
  }
  _exit(0);
}

// Everything the child writes to `fd` until it closes it; stopping reaches the child as SIGTERM.
std::string read_child_output(int fd, pid_t child) {
  std::string out;
  bool told = false;
  for (;;) {
    if (g_stop && !told) {
      kill(child, SIGTERM);
      told = true;
    }
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 20) <= 0) continue;
    char buf[65536];
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) out.append(buf, size_t(n));
    else if (n == 0 || errno != EINTR) break;
  }
  return out;
}

// The generator in a child in the shifted time namespace; its report.
nlohmann::json stream_in_shifted_namespace(const GeneratorConfig& g, const SendArgs& b, double bound, const Common& c,
                                           std::string& stop_reason) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
  const pid_t parent = getpid();
  const pid_t child = fork();
  if (child < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (child == 0) {
    close(fds[0]);
    stream_in_child(fds[1], parent, g, b, bound);
  }
  close(fds[1]);
  StopWatcher watch(!c.ignore_stdin, bound);
  const std::string out = read_child_output(fds[0], child);
  close(fds[0]);
  int st = 0;
  while (waitpid(child, &st, 0) < 0 && errno == EINTR) {
  }
  stop_reason = watch.reason();
  nlohmann::json r = nlohmann::json::parse(out, nullptr, false);
  if (r.is_discarded() || !r.is_object())
    throw std::runtime_error("the generator's child (time namespace) ended without a report (status " +
                             std::to_string(st) + ")");
  if (r.contains("error")) throw std::runtime_error(r["error"].get<std::string>());
  return r;
}

// The stream, in the shifted time namespace or here; the generator's errors as role errors.
nlohmann::json run_stream(const GeneratorConfig& g, const SendArgs& b, bool shifted, double bound, const Common& c,
                          std::string& stop_reason) {
  try {
    if (shifted) return stream_in_shifted_namespace(g, b, bound, c, stop_reason);
    StopWatcher watch(!c.ignore_stdin, bound);
    nlohmann::json r = stream_with_residuals(g, b);
    stop_reason = watch.reason();
    return r;
  } catch (const std::invalid_argument& e) {
    throw RoleError{kExitUsage, e.what()};
  } catch (const std::exception& e) {
    throw RoleError{kExitCannot, std::string("generator: ") + e.what()};
  }
}

int role_send(const SendArgs& a, const Common& c) {
  const nlohmann::json placement = pin_role(c.cpus);
  const GeneratorConfig g = generator_config(a);
  if (!a.ifname.empty()) need_interface(a.ifname);
  if (!a.clock_peer.empty()) need_ip(a.clock_peer, "--clock-peer");
  const double bound = std::min(c.max_seconds, a.duration + 10);
  std::optional<int64_t> shift;
  nlohmann::json clock = clock_before_stream(a, shift);
  // No answer before the stream: none expected after it either.
  SendArgs b = a;
  if (clock.is_object() && clock["offset"].contains("error")) b.clock_peer.clear();
  std::string stop_reason;
  nlohmann::json r = run_stream(g, b, shift.has_value(), bound, c, stop_reason);
  if (!clock.is_null()) {
    const nlohmann::json none = {{"error", "not measured: no answer before the stream"}};
    clock["residual_before"] = r.value("clock_before", none);
    clock["residual_after"] = r.value("clock_after", none);
    r.erase("clock_before");
    r.erase("clock_after");
    r["clock"] = clock;
  }
  r["stop_reason"] = stop_reason;
  r["dst"] = g.dst.str() + ":" + std::to_string(g.dst_port);
  r["rate"] = a.rate;
  r["payload_bytes"] = a.payload;
  r["placement"] = placement;
  emit(agent_report_line("send", r));
  return 0;
}

struct RecvArgs {
  std::string ifname;
  uint16_t port = 9000, clock_port = 0;
  uint32_t run_id = 1;
  uint64_t max_packets = 5'000'000;
  double warmup = 0;
};

int role_recv(const RecvArgs& a, const Common& c) {
  const nlohmann::json placement = pin_role(c.cpus);
  if (!a.ifname.empty()) need_interface(a.ifname);
  SinkConfig s;
  s.port = a.port;
  s.run_id = a.run_id;
  s.max_seq = a.max_packets;
  s.max_duration_s = c.max_seconds + 1;
  s.warmup_s = a.warmup;
  StopWatcher watch(!c.ignore_stdin, c.max_seconds);
  // The sender's clock comparisons, answered while the sink runs (up before it says ready).
  std::optional<ClockResponder> responder;
  if (a.clock_port) responder.emplace(a.clock_port, a.run_id);
  nlohmann::json r;
  try {
    r = run_sink(s, g_stop, [] { emit(agent_ready_line("recv")); });
  } catch (const std::exception& e) {
    throw RoleError{kExitCannot, std::string("sink: ") + e.what()};
  }
  if (responder) r["clock_responder"] = responder->report();
  r["stop_reason"] = watch.reason();
  r["port"] = a.port;
  r["placement"] = placement;
  emit(agent_report_line("recv", r));
  return 0;
}

struct EnvArgs {
  std::vector<std::string> ifs, find_ips;
};

int role_env(const EnvArgs& a) {
  nlohmann::json r = host_environment("ssh");
  std::ifstream boot("/proc/sys/kernel/random/boot_id");
  std::string boot_id;
  boot >> boot_id;
  // Hosts with one boot_id share one CLOCK_MONOTONIC (namespaces of one machine): one-way delays
  // between them need no clock comparison.
  r["boot_id"] = boot_id;
  r["euid"] = geteuid();
  r["interfaces"] = interfaces_json();
  // The CPUs (the controller's default proxy CPU is the last online one the agent may use).
  {
    std::ifstream f("/sys/devices/system/cpu/online");
    std::string line;
    std::getline(f, line);
    auto online = parse_cpu_list(line);
    r["cpus"] = {{"online", online ? nlohmann::json(*online) : nlohmann::json(nullptr)},
                 {"online_raw", line},
                 {"allowed", allowed_cpus()}};
  }
  // The session's addresses (sshd's SSH_CONNECTION: client ip, port, server ip, port): the server's
  // is this host's management address as the controller reached it.
  if (const char* sc = std::getenv("SSH_CONNECTION")) {
    char cip[64] = {}, sip[64] = {};
    unsigned cport = 0, sport = 0;
    if (std::sscanf(sc, "%63s %u %63s %u", cip, &cport, sip, &sport) == 4)
      r["ssh_connection"] = {{"client_ip", cip}, {"client_port", cport}, {"server_ip", sip}, {"server_port", sport}};
  }
  nlohmann::json asked = nlohmann::json::object();
  for (const std::string& i : a.ifs) {
    nlohmann::json j = {{"exists", if_nametoindex(i.c_str()) != 0}};
    if (auto m = interface_mac(i)) j["mac"] = m->str();
    asked[i] = j;
  }
  r["asked_interfaces"] = asked;
  nlohmann::json found = nlohmann::json::object();
  for (const std::string& s : a.find_ips) found[s] = interface_holding(need_ip(s, "--find-ip"));
  r["interface_holding"] = found;
  char self[4096] = {};
  if (readlink("/proc/self/exe", self, sizeof self - 1) > 0) r["agent_path"] = self;
  r["agent_protocol"] = kAgentProtocol;
  emit(agent_report_line("env", r));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa{};
  sa.sa_handler = on_stop_signal;
  for (int s : {SIGINT, SIGTERM, SIGHUP}) sigaction(s, &sa, nullptr);

  CLI::App app{"ulsnet_agent: one role of a //bench/ssh:ssh_throughput trial on this host"};
  app.require_subcommand(1);
  Common proxy_common, send_common, recv_common;
  ProxyArgs pa;
  SendArgs sa_;
  RecvArgs ra;
  EnvArgs ea;
  auto add_common = [&](CLI::App* s, Common& c, double default_max) {
    c.max_seconds = default_max;
    s->add_option("--max-seconds", c.max_seconds, "bound on the role's time")
        ->check(CLI::Range(0.1, kMaxSecondsLimit));
    s->add_option("--pidfile", c.pidfile, "a file holding this agent's pid while it runs");
    s->add_flag("--ignore-stdin", c.ignore_stdin, "do not stop on 'stop' or end of file on stdin");
  };
  auto add_cpus = [](CLI::App* s, Common& c) {
    s->add_option("--cpus", c.cpus, "run on these CPUs only (comma-separated; the report's placement says where)")
        ->delimiter(',')
        ->check(CLI::Range(0, CPU_SETSIZE - 1));
  };
  CLI::App* proxy = app.add_subcommand("proxy", "run one proxy method between two interfaces");
  proxy->add_option("--method", pa.method, "NAME or NAME:VARIANT from the registry")->required();
  proxy->add_option("--mode", pa.mode)->check(CLI::IsMember({"relay", "router"}));
  proxy->add_option("--in-if", pa.in_if, "interface toward the sender")->required();
  proxy->add_option("--in-ip", pa.in_ip, "the proxy's address on it")->required();
  proxy->add_option("--in-peer-ip", pa.in_peer_ip, "the sender's address")->required();
  proxy->add_option("--in-peer-mac", pa.in_peer_mac, "the sender's MAC (else resolved by ARP)");
  proxy->add_option("--out-if", pa.out_if, "interface toward the receiver")->required();
  proxy->add_option("--out-ip", pa.out_ip, "the proxy's address on it")->required();
  proxy->add_option("--out-peer-ip", pa.out_peer_ip, "the receiver's address")->required();
  proxy->add_option("--out-peer-mac", pa.out_peer_mac, "the receiver's MAC (else resolved by ARP)");
  proxy->add_option("--prefix", pa.prefix, "prefix length of both test subnets")->check(CLI::Range(1, 32));
  proxy->add_option("--port", pa.port, "relay: UDP port received on and sent to");
  proxy->add_option("--batch", pa.batch)->check(CLI::Range(1, 1024));
  proxy->add_option("--protection", pa.protection, "sandbox: auto, pkey, mprotect, none");
  proxy->add_option("--addresses", pa.addresses,
                    "as-is: leave the kernel's addresses; adjust: add/remove the proxy's test addresses "
                    "as the method needs, restored at the end")
      ->check(CLI::IsMember({"as-is", "adjust"}));
  proxy->add_option("--cpu", pa.cpu, "pin the method (every thread of this agent) to this CPU; -1: not pinned")
      ->check(CLI::Range(-1, CPU_SETSIZE - 1));
  proxy->add_option("--status-interval", pa.status_interval,
                    "a status line (a snapshot of the counters) every this many seconds while the method runs; 0: none")
      ->check(CLI::Range(0.0, 3600.0));
  proxy->add_option("--competitors", pa.competitors,
                    "CPU-bound busy-loop processes on that CPU (anywhere if not pinned) while the method runs, "
                    "killed at its stop")
      ->check(CLI::Range(0, 16));
  add_common(proxy, proxy_common, 60);
  CLI::App* send = app.add_subcommand("send", "the socket generator");
  send->add_option("--dst", sa_.dst, "destination address")->required();
  send->add_option("--port", sa_.port);
  send->add_option("--payload", sa_.payload, "UDP payload bytes");
  send->add_option("--rate", sa_.rate, "packets/s, or max");
  send->add_option("--duration", sa_.duration, "seconds")->check(CLI::Range(0.01, 600.0));
  send->add_option("--count", sa_.count, "bound on datagrams")->check(CLI::Range(uint64_t(1), uint64_t(100'000'000)));
  send->add_option("--batch", sa_.batch)->check(CLI::Range(1, 1024));
  send->add_option("--run-id", sa_.run_id);
  send->add_option("--if", sa_.ifname, "the test interface (checked to exist)");
  send->add_option("--clock-peer", sa_.clock_peer, "the receiver's agent's address for the clock comparison");
  send->add_option("--clock-port", sa_.clock_port, "its UDP port")->check(CLI::Range(1, 65535));
  send->add_flag("--clock-shift", sa_.clock_shift,
                 "run the generator on the receiver's clock (a time namespace shifted by the measured offset)");
  add_common(send, send_common, 610);
  add_cpus(send, send_common);
  CLI::App* recv = app.add_subcommand("recv", "the socket sink");
  recv->add_option("--port", ra.port);
  recv->add_option("--run-id", ra.run_id);
  recv->add_option("--max-packets", ra.max_packets, "sequence numbers at or past this count as corrupted")
      ->check(CLI::Range(uint64_t(1), uint64_t(100'000'000)));
  recv->add_option("--warmup", ra.warmup, "seconds left out of the delay statistics")->check(CLI::Range(0.0, 60.0));
  recv->add_option("--if", ra.ifname, "the test interface (checked to exist)");
  recv->add_option("--clock-port", ra.clock_port, "answer clock comparisons on this UDP port (0: none)")
      ->check(CLI::Range(0, 65535));
  add_common(recv, recv_common, 60);
  add_cpus(recv, recv_common);
  ExecArgs xa;
  Common exec_common;
  CLI::App* exec = app.add_subcommand("exec", "a shell command in a process group of its own, ended on 'stop'");
  exec->add_option("command", xa.command, "the command (/bin/sh -c)")->required();
  add_common(exec, exec_common, 60);
  CLI::App* env = app.add_subcommand("env", "this host's environment");
  env->add_option("--if", ea.ifs, "interfaces to report on (repeatable)");
  env->add_option("--find-ip", ea.find_ips, "addresses whose interface to name (repeatable)");

  std::string role = argc > 1 && is_agent_role(argv[1]) ? argv[1] : "agent";
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    emit(agent_error_line(role, std::string("bad arguments: ") + e.what()));
    return kExitUsage;
  }
  try {
    if (env->parsed()) {
      alarm(30);
      return role_env(ea);
    }
    const Common& common = proxy->parsed() ? proxy_common
                           : send->parsed()  ? send_common
                           : exec->parsed()  ? exec_common
                                             : recv_common;
    alarm(unsigned(std::ceil(common.max_seconds)) + 20);
    PidFile pid(common.pidfile);
    if (exec->parsed()) return role_exec(xa, common);
    if (proxy->parsed()) return role_proxy(pa, common);
    if (send->parsed()) return role_send(sa_, common);
    return role_recv(ra, common);
  } catch (const RoleError& e) {
    emit(agent_error_line(role, e.message));
    return e.code;
  } catch (const std::exception& e) {
    emit(agent_error_line(role, e.what()));
    return kExitCannot;
  }
}
