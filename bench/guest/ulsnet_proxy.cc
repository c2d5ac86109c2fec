// The proxy host of //bench:throughput --hosts=vm: runs one proxy method (baselines/, the same
// code as on the namespace hosts) inside the proxy VM, between eth0 (toward the sender,
// 10.201.1.0/24) and eth1 (toward the receiver, 10.201.2.0/24), on kernel/guest-init.sh's
// address plan, until the stream is through; then prints its report as one JSON line.
//
//   ulsnet_proxy METHOD VARIANT relay|router MAX_SECONDS EXPECT
// Stops at MAX_SECONDS, or once eth0 received min(EXPECT/2, 1000) frames and then none for 3 s
// (eth0's rx_packets, which e1000 takes from the NIC's own counters, on every path).
//   ulsnet_proxy METHOD VARIANT relay|router MAX_SECONDS stand INTERVAL_MS
// //bench:proxy --hosts=vm: stands until SIGUSR1 (kernel/guest-init.sh's "stand" sends it) or
// MAX_SECONDS, and prints "ULSNET-METHOD-STATUS {snapshot}" (bench/proxy_status.h's form: "t",
// "netdev" with eth0/eth1's frames and drops, "cpu_ns" of this process, "method" null: the
// method runs in this process's only thread, so nothing reads its counters while it runs) at
// READY ("first": true) and every INTERVAL_MS; the report then carries "last_snapshot".
// Who owns the proxy's addresses follows the method (MethodInfo::kernel_owns_addresses): for
// the Stack's methods they are removed from the kernel, which would otherwise answer ARP and
// ICMP for them. Peers' MACs are static on both sides (kernel/vm.sh's plan), as on the
// namespace hosts.
//
// Output: "ULSNET-METHOD-READY ...", then "ULSNET-METHOD-REPORT {json}" with the method's
// report plus, as deltas from the method's start (after it bound its devices: binding may reset
// a NIC) to its end, "proxy_vm": the VM's CPU time by kind (/proc/stat: user, system, irq,
// softirq), this process's CPU time, the kernel's IP and softnet counters, and per interface its
// frames and the e1000's own missed-packet registers (exact: kernel/guest/guest_util.h). The same
// window is marked for QEMU's instruction-count plugin ("insn_marks": the tags; kernel/vm.sh
// --count-insns writes the counts at each mark to the proxy's insn log); or
// "ULSNET-METHOD-ERROR message" (exit 3), also when the method fails while running or reporting.
// Datagrams the kernel dropped after the method's send() reported success (Ip.OutDiscards: the
// qdisc was full) are added to the method's proxy_tx stage, unless it counts them itself.
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <nlohmann/json.hpp>

#include "baselines/registry.h"
#include "kernel/guest/guest_util.h"
#include "stack/drop_stage.h"

namespace {

using namespace ulsnet;

// /proc/stat's first line, in jiffies.
struct CpuTimes {
  uint64_t user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  uint64_t busy() const { return user + nice + system + irq + softirq + steal; }
  uint64_t total() const { return busy() + idle + iowait; }
  static CpuTimes read() {
    CpuTimes c;
    FILE* f = std::fopen("/proc/stat", "r");
    if (!f) return c;
    unsigned long long v[8] = {};
    const int n = std::fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                              &v[4], &v[5], &v[6], &v[7]);
    std::fclose(f);
    if (n < 7) return c;
    c = {v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]};
    return c;
  }
};

// One interface's counters, for deltas over the run.
struct NicCounters {
  uint64_t rx_packets = 0, tx_packets = 0, rx_dropped = 0, tx_dropped = 0;
  int64_t mpc = -1, rnbc = -1;
  static NicCounters read(const char* ifname) {
    return {guest_if_stat(ifname, "rx_packets"), guest_if_stat(ifname, "tx_packets"),
            guest_if_stat(ifname, "rx_dropped"), guest_if_stat(ifname, "tx_dropped"),
            guest_e1000_reg(ifname, GUEST_E1000_MPC), guest_e1000_reg(ifname, GUEST_E1000_RNBC)};
  }
};

nlohmann::json nic_delta(const NicCounters& a, const NicCounters& b) {
  auto reg = [](int64_t x, int64_t y) { return x < 0 || y < 0 || y < x ? nlohmann::json() : nlohmann::json(y - x); };
  return {{"rx_packets", b.rx_packets - a.rx_packets}, {"tx_packets", b.tx_packets - a.tx_packets},
          {"rx_dropped", b.rx_dropped - a.rx_dropped}, {"tx_dropped", b.tx_dropped - a.tx_dropped},
          {"e1000_mpc", reg(a.mpc, b.mpc)},            {"e1000_rnbc", reg(a.rnbc, b.rnbc)}};
}

uint64_t self_cpu_ns() {
  rusage r{};
  getrusage(RUSAGE_SELF, &r);
  return (uint64_t(r.ru_utime.tv_sec) + uint64_t(r.ru_stime.tv_sec)) * 1000000000ull +
         (uint64_t(r.ru_utime.tv_usec) + uint64_t(r.ru_stime.tv_usec)) * 1000ull;
}

// A process's CPU time (user + system) from /proc/PID/stat, in clock ticks as ns: the same
// source for the watcher's status lines and the last snapshot, so that it never goes down.
uint64_t proc_cpu_ns(pid_t pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", int(pid));
  FILE* f = std::fopen(path, "r");
  if (!f) return 0;
  char buf[1024] = {};
  const size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  const char* p = std::strrchr(buf, ')');  // the command name may hold spaces
  if (n == 0 || p == nullptr) return 0;
  unsigned long long ut = 0, st = 0;
  // After ")": state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime
  if (std::sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) return 0;
  return (ut + st) * (1000000000ull / uint64_t(sysconf(_SC_CLK_TCK)));
}

// bench/proxy_status.h's snapshot of this proxy host: eth0/eth1's counters, `pid`'s CPU.
nlohmann::json stand_snapshot(pid_t pid) {
  nlohmann::json nd = nlohmann::json::object();
  for (const char* i : {"eth0", "eth1"}) {
    const std::string n(i);
    nd[n + ".rx_packets"] = guest_if_stat(i, "rx_packets");
    nd[n + ".tx_packets"] = guest_if_stat(i, "tx_packets");
    nd[n + ".rx_drop"] = guest_if_stat(i, "rx_dropped");
    nd[n + ".tx_drop"] = guest_if_stat(i, "tx_dropped");
  }
  return {{"t", double(guest_now_ns()) / 1e9}, {"method", nullptr}, {"netdev", nd}, {"cpu_ns", proc_cpu_ns(pid)}};
}

std::atomic<bool> g_stop{false};
void on_stop(int) { g_stop = true; }

bool sh(const std::string& cmd) { return std::system(cmd.c_str()) == 0; }

int fail(const std::string& msg) {
  std::printf("ULSNET-METHOD-ERROR %s\n", msg.c_str());
  return 3;
}

}  // namespace

int main(int argc, char** argv) {
  setvbuf(stdout, nullptr, _IOLBF, 0);
  const bool stand = argc == 7 && std::strcmp(argv[5], "stand") == 0;
  if ((argc != 6 && !stand) || (std::strcmp(argv[3], "relay") != 0 && std::strcmp(argv[3], "router") != 0)) {
    std::fprintf(stderr,
                 "usage: ulsnet_proxy METHOD VARIANT relay|router MAX_SECONDS EXPECT\n"
                 "       ulsnet_proxy METHOD VARIANT relay|router MAX_SECONDS stand INTERVAL_MS\n");
    return 2;
  }
  const uint64_t interval_ns = stand ? std::max(100ull, std::strtoull(argv[6], nullptr, 10)) * 1000000ull : 0;
  ProxyConfig cfg;
  cfg.method = argv[1];
  cfg.variant = argv[2];
  cfg.mode = std::strcmp(argv[3], "relay") == 0 ? ForwardMode::kRelay : ForwardMode::kRouter;
  const int seconds = std::atoi(argv[4]);
  const uint64_t expect = stand ? 0 : std::strtoull(argv[5], nullptr, 10);
  const MethodInfo* info = find_proxy_method(cfg.method);
  if (info == nullptr) return fail("unknown method " + cfg.method);

  cfg.in = {"eth0", {}, *Ipv4Addr::parse("10.201.1.2"), 24, *Ipv4Addr::parse("10.201.1.1"),
            *MacAddr::parse("52:54:00:c9:01:01")};
  cfg.out = {"eth1", {}, *Ipv4Addr::parse("10.201.2.1"), 24, *Ipv4Addr::parse("10.201.2.2"),
             *MacAddr::parse("52:54:00:c9:02:02")};
  if (guest_if_mac("eth0", cfg.in.mac.b.data()) != 0 || guest_if_mac("eth1", cfg.out.mac.b.data()) != 0)
    return fail("no eth0/eth1");
  cfg.pool_frames = 1024;
  if (info->kernel_owns_addresses) {
    if (!sh("arp -i eth0 -s 10.201.1.1 52:54:00:c9:01:01 && arp -i eth1 -s 10.201.2.2 52:54:00:c9:02:02"))
      return fail("cannot set the peers' addresses in the kernel");
  } else if (!sh("ip addr flush dev eth0 && ip addr flush dev eth1")) {
    return fail("cannot remove the Stack's addresses from the kernel");
  }

  // The method runs in this process's only thread: with the ULS region protected, the kernel
  // runs upcalls only in single-threaded processes, and this one hosts them. A separate watcher
  // process decides when the stream is through and says so with SIGUSR1.
  struct sigaction sa{};
  sa.sa_handler = on_stop;
  sigaction(SIGUSR1, &sa, nullptr);
  const pid_t self = getpid();
  const pid_t watcher = fork();
  if (watcher < 0) return fail("fork: " + std::string(std::strerror(errno)));
  if (watcher == 0) {
    const uint64_t end = guest_now_ns() + uint64_t(seconds) * 1000000000ull;
    uint64_t base = guest_if_stat("eth0", "rx_packets"), last = base, last_change = guest_now_ns();
    const uint64_t out_base = guest_if_stat("eth1", "tx_packets");
    if (stand) {
      // Status lines until stopped (SIGKILL from the proxy once it stops) or MAX_SECONDS.
      for (uint64_t next = guest_now_ns() + interval_ns; guest_now_ns() < end && getppid() == self;) {
        usleep(20000);
        if (guest_now_ns() < next) continue;
        next += interval_ns;
        std::printf("ULSNET-METHOD-STATUS %s\n", stand_snapshot(self).dump().c_str());
      }
      kill(self, SIGUSR1);
      _exit(0);
    }
    while (guest_now_ns() < end && getppid() == self) {
      usleep(200000);
      const uint64_t rx = guest_if_stat("eth0", "rx_packets");
      if (rx != last) {
        last = rx;
        last_change = guest_now_ns();
      }
      // Past the readiness pings (a few dozen frames) and then quiet for 3 s: the stream is
      // through. Quiet for 1 s once the proxy has sent at least the whole stream's count out
      // toward the receiver (its own few ARP/ICMP replies there included): nothing is left.
      const uint64_t quiet = guest_now_ns() - last_change;
      if (last - base >= std::min<uint64_t>(expect / 2, 1000) && quiet > 3000000000ull) break;
      if (expect > 0 && guest_if_stat("eth1", "tx_packets") - out_base >= expect && quiet > 1000000000ull) break;
    }
    kill(self, SIGUSR1);
    _exit(0);
  }

  auto m = make_proxy_method(cfg.method);
  try {
    m->start(cfg);
  } catch (const std::exception& e) {
    kill(watcher, SIGKILL);
    waitpid(watcher, nullptr, 0);
    return fail(e.what());
  }
  // Baselines once the method holds its devices (binding one to the ULS path resets the NIC).
  const CpuTimes cpu0 = CpuTimes::read();
  const uint64_t ip0 = guest_snmp("Ip", 2), out_discards0 = guest_snmp("Ip", 10), sn0 = guest_softnet_processed(),
                 self0 = self_cpu_ns();
  const NicCounters in0 = NicCounters::read("eth0"), out0 = NicCounters::read("eth1");
  const uint64_t t0 = guest_now_ns();
  GUEST_INSN_MARK(0x30);  // the instruction counts' window opens (kernel/vm.sh --count-insns)
  std::printf("ULSNET-METHOD-READY method=%s variant=%s mode=%s\n", argv[1], argv[2], argv[3]);
  if (stand) {
    nlohmann::json first = stand_snapshot(getpid());
    first["first"] = true;
    std::printf("ULSNET-METHOD-STATUS %s\n", first.dump().c_str());
  }
  nlohmann::json j;
  try {
    m->run(g_stop);
    kill(watcher, SIGKILL);
    waitpid(watcher, nullptr, 0);
    j = m->report();
  } catch (const std::exception& e) {
    kill(watcher, SIGKILL);
    waitpid(watcher, nullptr, 0);
    return fail(std::string("while running: ") + e.what());
  }
  GUEST_INSN_MARK(0x31);  // ... and closes
  const CpuTimes cpu1 = CpuTimes::read();
  const NicCounters in1 = NicCounters::read("eth0"), out1 = NicCounters::read("eth1");
  const uint64_t out_discards = guest_snmp("Ip", 10) - out_discards0;  // Ip: OutDiscards
  if (!j.is_object() || !j.contains("forwarded") || !j.contains("drops")) return fail("the method's report has no forwarded/drops");
  // Sends the kernel dropped after reporting success (a full qdisc): the methods that count
  // them as their own drops say so in proxy_kernel (kernel-forward's ip_out_discards).
  const std::string kernel_stage(drop_stage_name(DropStage::kProxyKernel)), tx_stage(drop_stage_name(DropStage::kProxyTx));
  if (!j["drops"].contains(kernel_stage) || !j["drops"][kernel_stage].contains("ip_out_discards"))
    j["drops"][tx_stage]["kernel_ip_out_discards"] = out_discards;
  const long hz = sysconf(_SC_CLK_TCK);
  auto s = [&](uint64_t jiffies) { return double(jiffies) / double(hz); };
  j["proxy_vm"] = {{"cpu_busy_s", s(cpu1.busy() - cpu0.busy())},
                   {"cpu_user_s", s(cpu1.user + cpu1.nice - cpu0.user - cpu0.nice)},
                   {"cpu_system_s", s(cpu1.system - cpu0.system)},
                   {"cpu_irq_s", s(cpu1.irq - cpu0.irq)},
                   {"cpu_softirq_s", s(cpu1.softirq - cpu0.softirq)},
                   {"cpu_steal_s", s(cpu1.steal - cpu0.steal)},
                   {"cpu_total_s", s(cpu1.total() - cpu0.total())},
                   {"clock_ticks_per_s", hz},
                   {"cpus", sysconf(_SC_NPROCESSORS_ONLN)},
                   {"process_cpu_ns", self_cpu_ns() - self0},
                   {"wall_s", double(guest_now_ns() - t0) / 1e9},
                   {"kernel_ip_in_receives", guest_snmp("Ip", 2) - ip0},
                   {"kernel_ip_out_discards", out_discards},
                   {"kernel_softnet_processed", guest_softnet_processed() - sn0}};
  j["nic"] = {{"eth0", nic_delta(in0, in1)}, {"eth1", nic_delta(out0, out1)}};
  j["insn_marks"] = {{"start", 0x30}, {"end", 0x31}};
  if (stand) j["last_snapshot"] = stand_snapshot(getpid());
  std::printf("ULSNET-METHOD-REPORT %s\n", j.dump().c_str());
  return 0;
}
