// //bench:proxy --hosts=vm: the method standing in the proxy of three VMs on the ULS kernel
// (kernel/vm.sh --hosts 3, TCG here), the same guests and address plan as //bench:throughput
// --hosts=vm. The guests run kernel/guest-init.sh's "stand": the proxy runs
// bench/guest/ulsnet_proxy.cc with "stand" (a status line per interval: the e1000s' frames and
// drops, the proxy process's CPU; the method's own counters only in its final report, since it
// runs in the proxy process's only thread), and the sender and receiver take commands on their
// consoles (kernel/vm.sh --console-in: "exec ID BASE64"), which is how --exec-sender,
// --exec-receiver and --udp-test (the project's generator and sink, bench/guest/ulsnet_traffic.cc)
// reach them. Stopping: "stop" on the proxy's console ends the method, which prints its report;
// then every guest is done and the launch ends.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <thread>

#include <fmt/core.h>

#include "bench/proxy_status.h"
#include "bench/proxy_tool.h"
#include "bench/run_lock.h"
#include "kernel/vm_harness.h"

namespace ulsnet::proxy_tool {
namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string base64(const std::string& s) {
  static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string o;
  size_t i = 0;
  for (; i + 2 < s.size(); i += 3) {
    const uint32_t v = uint32_t(uint8_t(s[i])) << 16 | uint32_t(uint8_t(s[i + 1])) << 8 | uint8_t(s[i + 2]);
    o += {k[v >> 18], k[(v >> 12) & 63], k[(v >> 6) & 63], k[v & 63]};
  }
  if (i + 1 == s.size()) {
    const uint32_t v = uint32_t(uint8_t(s[i])) << 16;
    o += {k[v >> 18], k[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == s.size()) {
    const uint32_t v = uint32_t(uint8_t(s[i])) << 16 | uint32_t(uint8_t(s[i + 1])) << 8;
    o += {k[v >> 18], k[(v >> 12) & 63], k[(v >> 6) & 63], '='};
  }
  return o;
}

// One guest: its console log, read as it grows (complete lines only), and its console input.
class Guest {
 public:
  Guest(std::string role, const std::string& dir)
      : role_(std::move(role)), log_(dir + "/" + role_ + ".log"), in_(dir + "/" + role_ + ".in") {}
  ~Guest() {
    if (fd_ >= 0) close(fd_);
  }
  const std::string& role() const { return role_; }
  const std::string& log_path() const { return log_; }
  const std::string& in_path() const { return in_; }

  std::vector<std::string> new_lines() {
    std::vector<std::string> out;
    if (fd_ < 0) fd_ = open(log_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) return out;
    char b[8192];
    for (ssize_t n; (n = read(fd_, b, sizeof b)) > 0;) buf_.append(b, size_t(n));
    for (size_t nl; (nl = buf_.find('\n')) != std::string::npos;) {
      std::string l = buf_.substr(0, nl);
      buf_.erase(0, nl + 1);
      while (!l.empty() && (l.back() == '\r' || l.back() == '\n')) l.pop_back();
      // The console's first line may start with the firmware's escape sequences.
      if (const auto at = l.find("ULSNET-"); at != std::string::npos && at > 0 && l[0] == '\x1b') l.erase(0, at);
      out.push_back(std::move(l));
    }
    return out;
  }

  // A line into the guest's console (kernel/vm.sh --console-in). False if the FIFO is not there
  // (the launch has not made it, or has ended).
  bool say(const std::string& line) {
    const int fd = open(in_.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return false;
    const std::string s = line + "\n";
    const bool ok = write(fd, s.data(), s.size()) == ssize_t(s.size());
    close(fd);
    return ok;
  }

 private:
  std::string role_, log_, in_;
  int fd_ = -1;
  std::string buf_;
};

// The value after "key=" in a marker line ("ULSNET-EXEC-END id=3 status=0").
std::string field(const std::string& line, const std::string& key) {
  const auto at = line.find(" " + key + "=");
  if (at == std::string::npos) return "";
  const size_t b = at + key.size() + 2, e = line.find(' ', b);
  return line.substr(b, e == std::string::npos ? std::string::npos : e - b);
}

std::string after(const std::string& line, const std::string& marker) {
  return line.rfind(marker, 0) == 0 ? line.substr(marker.size()) : std::string();
}

class VmRun {
 public:
  VmRun(const Options& o, const MethodInfo& info, std::string variant, Out& out)
      : o_(o), info_(info), variant_(std::move(variant)), out_(out) {}

  int run(int argc, char** argv) {
    const std::string label = std::string(info_.name) + ":" + variant_;
    std::vector<std::string> netns_only;
    if (o_.arp) netns_only.push_back("--arp");
    if (o_.proxy_cpu >= 0) netns_only.push_back("--proxy-cpu");
    if (o_.batch != 32) netns_only.push_back("--batch");
    if (o_.relay_port != 9000) netns_only.push_back("--relay-port");
    if (!netns_only.empty()) {
      std::string s;
      for (const auto& f : netns_only) s += (s.empty() ? "" : ", ") + f;
      out_.error("proxy: " + s + ": only for --hosts=netns (the VM guests' proxy has its own fixed plan)");
      return 2;
    }
    if (o_.protection != "auto" && o_.protection != "none") {
      out_.error("proxy: --hosts=vm: --protection is auto (the ULS kernel's protection on) or none (uls.protect=0)");
      return 2;
    }
    const std::optional<RunLock> lock = RunLock::take_or_explain("proxy", argc, argv);
    if (!lock) return 3;
    out_.note("proxy: preparing the guest kernel and the guests (a first kernel build takes minutes)...");
    prep_ = vm::prepare({vm::runfile("bench/ulsnet_proxy"), vm::runfile("bench/ulsnet_traffic")});
    if (!prep_.error.empty()) {
      out_.error("proxy: --hosts=vm: " + prep_.error);
      vm::cleanup(prep_, false);
      return prep_.usage_error ? 2 : 1;
    }
    install_stop_handler();  // after prepare()'s: a second signal is its hard clean-up
    const int rc = stand(label);
    vm::cleanup(prep_, rc != 0);
    return rc;
  }

 private:
  int stand(const std::string& label) {
    const std::string dir = prep_.workdir + "/stand";
    const bool relay = o_.mode == "relay";
    // The guest proxy's own bound: --duration (with room for the commands), else an hour.
    const int seconds = o_.duration > 0 ? int(o_.duration) + 120 : 3600;
    std::string append = fmt::format("ulsnet.method={} ulsnet.variant={} ulsnet.mode={} ulsnet.seconds={} ulsnet.interval_ms={}",
                                     info_.name, variant_, o_.mode, seconds, int(o_.interval * 1000));
    if (o_.protection == "none") append += " uls.protect=0";
    std::atomic<bool> launched{false};
    std::pair<int, std::string> launch;
    std::thread launcher([&] {
      launch = vm::launch(prep_.image, prep_.initrd, dir,
                          "--hosts 3 --accel auto --test stand --link udp --mgmt --end all --console-in --append '" +
                              append + "'",
                          seconds + 300);
      launched.store(true);
    });
    struct Join {
      std::thread& t;
      ~Join() {
        if (t.joinable()) t.join();
      }
    } join{launcher};

    proxy_.emplace("proxy", dir);
    sender_.emplace("sender", dir);
    receiver_.emplace("receiver", dir);

    // Up: the method ready (its first snapshot), both end hosts taking commands.
    const double t_boot = now_s();
    while (!(first_ && sender_ready_ && receiver_ready_)) {
      pump();
      if (!error_.empty() || launched.load() || stop_requested() || now_s() - t_boot > 600) {
        if (error_.empty())
          error_ = launched.load()      ? "the launch ended before the hosts were up: " + tail(launch.second)
                   : stop_requested() ? "stopped before the hosts were up"
                                      : "the hosts were not up within 600 s";
        return fail(label, launched, launcher);
      }
      usleep(100'000);
    }
    const std::string accel = vm::slurp(dir + "/accel");
    nlohmann::json up = {
        {"event", "up"},
        {"hosts_kind", "vm"},
        {"method", std::string(info_.name)},
        {"variant", variant_},
        {"mode", o_.mode},
        {"protection", o_.protection == "none" ? "none (uls.protect=0)" : "the ULS kernel's (uls.protect=1)"},
        {"accel", accel.substr(0, accel.find('\n'))},
        {"guest_kernel", guest_kernel_},
        {"interval_s", o_.interval},
        {"tool_pid", getpid()},
        {"logs", dir},
        {"hosts",
         {{"sender", {{"ip", "10.201.1.1"}, {"console_in", sender_->in_path()}, {"log", sender_->log_path()}}},
          {"proxy", {{"in", {{"ifname", "eth0"}, {"ip", "10.201.1.2"}}}, {"out", {{"ifname", "eth1"}, {"ip", "10.201.2.1"}}},
                     {"log", proxy_->log_path()}}},
          {"receiver", {{"ip", "10.201.2.2"}, {"console_in", receiver_->in_path()}, {"log", receiver_->log_path()}}}}}};
    if (relay) up["relay"] = {{"listen", "10.201.1.2:9000"}, {"to", "10.201.2.2:9000"}};
    std::string human = fmt::format(
        "proxy: {} in {} mode is up on three VMs ({}, guest kernel {}).\n"
        "  sender    10.201.1.1   console log {}\n"
        "  proxy     eth0 10.201.1.2 | eth1 10.201.2.1   console log {}\n"
        "  receiver  10.201.2.2   console log {}\n"
        "  a command in a guest: printf 'exec 100 %s\\n' \"$(printf %s 'ping -c 3 10.201.2.2' | base64 -w0)\" > {}\n",
        label, o_.mode, up["accel"].get<std::string>(), guest_kernel_, sender_->log_path(), proxy_->log_path(),
        receiver_->log_path(), sender_->in_path());
    human += "Ctrl-C stops the method, prints its final report and ends the VMs.";
    out_.event(up, human);
    flush_early();

    // The commands.
    int exit_code = 0;
    const double t_start = now_s();
    auto should_stop = [&] {
      return stop_requested() || launched.load() || !error_.empty() ||
             (o_.duration > 0 && now_s() - t_start >= o_.duration);
    };
    for (const std::string& c : o_.exec_receiver) start_command(*receiver_, c);
    if (o_.udp_count > 0 && !should_stop()) {
      if (!print_udp_test(out_, udp_test(relay, should_stop))) exit_code = 1;
    }
    for (const std::string& c : o_.exec_sender) {
      if (should_stop()) break;
      const int id = start_command(*sender_, c);
      const int st = wait_command(id, should_stop);
      const std::string how = st < 0 ? "stopped before it ended" : "exit status " + std::to_string(st);
      out_.note(fmt::format("proxy: sender command '{}': {}", c, how));
      out_.event({{"event", "command"}, {"host", "sender"}, {"command", c}, {"status", how}, {"exit_status", st}}, "");
      if (st != 0) exit_code = 1;
    }
    const bool jobs = o_.udp_count > 0 || !o_.exec_sender.empty();
    while (!jobs && !should_stop()) {
      pump();
      usleep(100'000);
    }
    if (!error_.empty() || launched.load()) {
      if (error_.empty()) error_ = "the launch ended while the method stood: " + tail(launch.second);
      return fail(label, launched, launcher);
    }

    // Stop: the method's report, then every guest is done.
    proxy_->say("stop");
    const double t_stop = now_s();
    while (report_.is_null() && error_.empty() && !launched.load() && now_s() - t_stop < 120) {
      pump();
      usleep(100'000);
    }
    sender_->say("stop");
    receiver_->say("stop");
    launcher.join();
    pump();
    if (report_.is_null()) {
      if (error_.empty()) error_ = "the method printed no report after it was stopped: " + tail(launch.second);
      out_.error(fmt::format("proxy: {} on the VMs: {} (logs kept in {})", label, error_, dir));
      out_.event({{"event", "final"}, {"error", error_}}, "");
      return 1;
    }
    const std::string why = stop_requested() ? "stopped by a signal"
                            : (o_.duration > 0 && now_s() - t_start >= o_.duration) ? "--duration reached"
                                                                                      : "the commands ended";
    print_final(out_, tracker_ ? &*tracker_ : nullptr, report_, t0_, ifaces_, label, why, exit_code);
    out_.note("proxy: VMs ended");
    return exit_code;
  }

  int fail(const std::string& label, std::atomic<bool>& launched, std::thread& launcher) {
    if (!launched.load()) {
      proxy_->say("stop");
      sender_->say("stop");
      receiver_->say("stop");
      // The guests end within their linger; the launch's own timeout bounds it too.
      for (int i = 0; i < 600 && !launched.load(); ++i) usleep(100'000);
    }
    if (!launched.load()) {  // still up: the hard clean-up (vm_harness's handler, after ours)
      kill(getpid(), SIGTERM);
      kill(getpid(), SIGTERM);
    }
    launcher.join();
    out_.error(fmt::format("proxy: {} on the VMs: {} (logs kept in {})", label, error_, prep_.workdir));
    out_.event({{"event", "final"}, {"error", error_}}, "");
    return 1;
  }

  static std::string tail(const std::string& s) {
    return s.size() > 600 ? "..." + s.substr(s.size() - 600) : s;
  }

  // Reads what the guests printed since the last call.
  void pump() {
    for (const std::string& l : proxy_->new_lines()) {
      if (const std::string k = after(l, "ULSNET-GUEST-UP "); !k.empty()) guest_kernel_ = field(" " + k, "kernel");
      if (const std::string e = after(l, "ULSNET-METHOD-ERROR "); !e.empty()) error_ = "the proxy: " + e;
      if (const std::string r = after(l, "ULSNET-METHOD-REPORT "); !r.empty())
        report_ = nlohmann::json::parse(r, nullptr, false);
      if (const std::string s = after(l, "ULSNET-METHOD-STATUS "); !s.empty()) status(s);
    }
    for (Guest* g : {&*sender_, &*receiver_}) {
      bool& ready = g == &*sender_ ? sender_ready_ : receiver_ready_;
      for (const std::string& l : g->new_lines()) {
        if (l.rfind("ULSNET-STAND-READY", 0) == 0) {
          ready = true;
        } else if (l.rfind("ULSNET-EXEC-END ", 0) == 0) {
          ended_[std::atoi(field(l, "id").c_str())] = std::atoi(field(l, "status").c_str());
        } else if (const std::string t = after(l, "ULSNET-TRAFFIC-SENDER "); !t.empty()) {
          traffic_sender_ = nlohmann::json::parse(t, nullptr, false);
        } else if (const std::string t = after(l, "ULSNET-TRAFFIC-RECEIVER "); !t.empty()) {
          traffic_receiver_ = nlohmann::json::parse(t, nullptr, false);
        } else if (const std::string t = after(l, "ULSNET-TRAFFIC-ERROR "); !t.empty()) {
          traffic_error_ = g->role() + ": " + t;
        } else if (ready && l.rfind("ULSNET-", 0) != 0 && l.rfind("qemu-system-", 0) != 0) {
          out_.note("[" + g->role() + "] " + l);  // a command's output (not its QEMU's own messages)
        }
      }
    }
  }

  void status(const std::string& s) {
    nlohmann::json snap = nlohmann::json::parse(s, nullptr, false);
    if (snap.is_discarded()) return;
    if (!tracker_) {
      if (!snap.value("first", false)) return;  // the watcher's lines from before the method started
      t0_ = snap.value("t", 0.0);
      snap["t"] = 0.0;
      tracker_.emplace(ifaces_, snap);
      first_ = true;
      return;
    }
    snap["t"] = snap.value("t", 0.0) - t0_;
    snap["method_live"] = false;  // the method runs in the proxy process's only thread
    nlohmann::json iv = tracker_->next(snap);
    iv["event"] = "status";
    if (!up_) {  // the other hosts are still coming up: these lines follow the "up" event
      early_.push_back(iv);
      return;
    }
    out_.event(iv, format_status(iv, ifaces_));
  }
  void flush_early() {
    up_ = true;
    for (const nlohmann::json& iv : early_) out_.event(iv, format_status(iv, ifaces_));
    early_.clear();
  }

  int start_command(Guest& g, const std::string& cmd) {
    const int id = ++next_id_;
    if (!g.say(fmt::format("exec {} {}", id, base64(cmd)))) error_ = "cannot write to the " + g.role() + "'s console";
    return id;
  }
  // The command's exit status, or -1 if it did not end before should_stop().
  template <class Stop>
  int wait_command(int id, Stop should_stop) {
    for (;;) {
      pump();
      if (auto it = ended_.find(id); it != ended_.end()) return it->second;
      if (should_stop()) return -1;
      usleep(100'000);
    }
  }

  template <class Stop>
  nlohmann::json udp_test(bool relay, Stop should_stop) {
    const std::string target = relay ? "10.201.1.2" : "10.201.2.2";
    const double seconds = double(o_.udp_count) / o_.udp_rate + 10;
    traffic_sender_ = traffic_receiver_ = nullptr;
    traffic_error_.clear();
    // In relay mode the receiver pings the relay first, as the throughput runs do.
    const int rid = start_command(*receiver_, fmt::format("{}ulsnet_traffic recv 9000 {} 3000 {}",
                                                          relay ? "ping -c 1 -W 2 10.201.2.1 >/dev/null; " : "",
                                                          o_.udp_count, int(seconds * 1000) + 60000));
    const int sid = start_command(*sender_, fmt::format("ulsnet_traffic send {} 9000 {} {} {} {} 10.201.9.2", target,
                                                        o_.udp_count,
                                                        uint64_t(o_.udp_rate), o_.udp_payload, int(seconds)));
    wait_command(sid, should_stop);
    wait_command(rid, should_stop);
    if (!traffic_error_.empty()) return {{"error", traffic_error_}};
    if (!traffic_sender_.is_object() || !traffic_receiver_.is_object())
      return {{"error", "the generator or the sink gave no report"}};
    // The sink's delays as ulsnet_traffic reports them (its own clock comparison: the last argument).
    return udp_test_result(traffic_sender_["generator"], traffic_receiver_["sink"], target + ":9000", o_, true);
  }

  const Options& o_;
  const MethodInfo& info_;
  const std::string variant_;
  Out& out_;
  vm::Prepared prep_;
  std::optional<Guest> proxy_, sender_, receiver_;
  const std::vector<std::string> ifaces_ = {"eth0", "eth1"};
  std::optional<ProxyStatus> tracker_;
  double t0_ = 0;
  bool first_ = false, sender_ready_ = false, receiver_ready_ = false, up_ = false;
  std::vector<nlohmann::json> early_;  // status lines before "up"
  std::string error_, guest_kernel_, traffic_error_;
  nlohmann::json report_, traffic_sender_, traffic_receiver_;
  std::map<int, int> ended_;
  int next_id_ = 0;
};

}  // namespace

int run_on_vms(const Options& o, const MethodInfo& info, const std::string& variant, Out& out, int argc, char** argv) {
  VmRun r(o, info, variant, out);
  return r.run(argc, argv);
}

}  // namespace ulsnet::proxy_tool
