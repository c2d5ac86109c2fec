// The proxy host of //bench:throughput --hosts=vm: runs one proxy method (baselines/, the same
// code as on the namespace hosts) inside the proxy VM, between eth0 (toward the sender,
// 10.201.1.0/24) and eth1 (toward the receiver, 10.201.2.0/24), on kernel/guest-init.sh's
// address plan, until the stream is through; then prints its report as one JSON line.
//
//   ulsnet_proxy METHOD VARIANT relay|router MAX_SECONDS EXPECT
// Stops at MAX_SECONDS, or once eth0 received min(EXPECT/2, 1000) frames and then none for 3 s
// (eth0's rx_packets, which e1000 takes from the NIC's own counters, on every path).
// Who owns the proxy's addresses follows the method (MethodInfo::kernel_owns_addresses): for
// the Stack's methods they are removed from the kernel, which would otherwise answer ARP and
// ICMP for them. Peers' MACs are static on both sides (kernel/vm.sh's plan), as on the
// namespace hosts.
//
// Output: "ULSNET-METHOD-READY ...", then "ULSNET-METHOD-REPORT {json}" with the method's
// report plus the proxy VM's CPU time (/proc/stat), this process's CPU time, and the kernel's
// IP and softnet counters over the run; or "ULSNET-METHOD-ERROR message" (exit 3).
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

#include "baselines/proxy_method.h"
#include "kernel/tests/guest_util.h"

namespace {

using namespace ulsnet;

// Busy and total jiffies of all CPUs (/proc/stat's first line).
std::pair<uint64_t, uint64_t> cpu_jiffies() {
  FILE* f = std::fopen("/proc/stat", "r");
  if (!f) return {0, 0};
  unsigned long long v[10] = {};
  const int n = std::fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
                            &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]);
  std::fclose(f);
  if (n < 8) return {0, 0};
  uint64_t total = 0;
  for (int i = 0; i < 8; ++i) total += v[i];
  return {total - v[3] - v[4], total};  // minus idle and iowait
}


uint64_t self_cpu_ns() {
  rusage r{};
  getrusage(RUSAGE_SELF, &r);
  return (uint64_t(r.ru_utime.tv_sec) + uint64_t(r.ru_stime.tv_sec)) * 1000000000ull +
         (uint64_t(r.ru_utime.tv_usec) + uint64_t(r.ru_stime.tv_usec)) * 1000ull;
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
  if (argc != 6 || (std::strcmp(argv[3], "relay") != 0 && std::strcmp(argv[3], "router") != 0)) {
    std::fprintf(stderr, "usage: ulsnet_proxy METHOD VARIANT relay|router MAX_SECONDS EXPECT\n");
    return 2;
  }
  ProxyConfig cfg;
  cfg.method = argv[1];
  cfg.variant = argv[2];
  cfg.mode = std::strcmp(argv[3], "relay") == 0 ? ForwardMode::kRelay : ForwardMode::kRouter;
  const int seconds = std::atoi(argv[4]);
  const uint64_t expect = std::strtoull(argv[5], nullptr, 10);
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
    while (guest_now_ns() < end && getppid() == self) {
      usleep(200000);
      const uint64_t rx = guest_if_stat("eth0", "rx_packets");
      if (rx != last) {
        last = rx;
        last_change = guest_now_ns();
      }
      // Past the readiness pings (a few dozen frames) and then quiet: the stream is through.
      if (last - base >= std::min<uint64_t>(expect / 2, 1000) && guest_now_ns() - last_change > 3000000000ull)
        break;
    }
    kill(self, SIGUSR1);
    _exit(0);
  }

  const auto [busy0, total0] = cpu_jiffies();
  const uint64_t ip0 = guest_snmp("Ip", 2), sn0 = guest_softnet_processed(), self0 = self_cpu_ns();
  const uint64_t missed0 = guest_if_stat("eth0", "rx_missed_errors");
  const uint64_t t0 = guest_now_ns(), base = guest_if_stat("eth0", "rx_packets");
  auto m = make_proxy_method(cfg.method);
  try {
    m->start(cfg);
  } catch (const std::exception& e) {
    kill(watcher, SIGKILL);
    waitpid(watcher, nullptr, 0);
    return fail(e.what());
  }
  std::printf("ULSNET-METHOD-READY method=%s variant=%s mode=%s\n", argv[1], argv[2], argv[3]);
  m->run(g_stop);
  kill(watcher, SIGKILL);
  waitpid(watcher, nullptr, 0);
  nlohmann::json j = m->report();
  const auto [busy1, total1] = cpu_jiffies();
  const long hz = sysconf(_SC_CLK_TCK);
  j["proxy_vm"] = {{"cpu_busy_s", double(busy1 - busy0) / double(hz)},
                   {"cpu_total_s", double(total1 - total0) / double(hz)},
                   {"cpus", sysconf(_SC_NPROCESSORS_ONLN)},
                   {"process_cpu_ns", self_cpu_ns() - self0},
                   {"wall_s", double(guest_now_ns() - t0) / 1e9},
                   {"kernel_ip_in_receives", guest_snmp("Ip", 2) - ip0},
                   {"kernel_softnet_processed", guest_softnet_processed() - sn0},
                   {"eth0_rx_packets", guest_if_stat("eth0", "rx_packets") - base},
                   {"eth0_rx_missed", guest_if_stat("eth0", "rx_missed_errors") - missed0}};
  std::printf("ULSNET-METHOD-REPORT %s\n", j.dump().c_str());
  return 0;
}
