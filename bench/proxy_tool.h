// What //bench:proxy's runners share (bench/proxy_main.cc: the namespace hosts; bench/proxy_vm.cc:
// the three VMs on the ULS kernel; bench/proxy_ssh.cc: real hosts over SSH): the options, the
// output, the stop signal.
#pragma once

#include <signal.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "stack/proxy_method.h"

namespace ulsnet {
class ProxyStatus;
namespace ssh {
struct SshThroughputOptions;
}
}

namespace ulsnet::proxy_tool {

struct Options {
  std::string method, mode = "router", protection = "auto", hosts = "netns";
  uint32_t batch = 32;
  uint16_t relay_port = 9000;
  double interval = 1.0, duration = 0;
  bool json = false, arp = false;
  int proxy_cpu = -1;
  std::vector<std::string> exec_sender, exec_receiver;
  uint64_t udp_count = 0;
  double udp_rate = 10000;
  uint32_t udp_payload = 64;
};

// Output: JSON lines on stdout (--json) or lines for people; one writer at a time.
class Out {
 public:
  explicit Out(bool json) : json_(json) {}
  bool json() const { return json_; }
  // An event: its JSON with --json, else `human` (if not empty).
  void event(const nlohmann::json& j, const std::string& human) {
    std::lock_guard<std::mutex> g(mu_);
    if (json_)
      put(stdout, j.dump());
    else if (!human.empty())
      put(stdout, human);
  }
  // Errors: stderr.
  void error(const std::string& s) {
    std::lock_guard<std::mutex> g(mu_);
    put(stderr, s);
  }
  // Messages for people: stderr with --json, stdout otherwise.
  void note(const std::string& s) {
    std::lock_guard<std::mutex> g(mu_);
    put(json_ ? stderr : stdout, s);
  }

 private:
  static void put(std::FILE* f, const std::string& s) {
    std::fputs((s + "\n").c_str(), f);
    std::fflush(f);
  }
  bool json_;
  std::mutex mu_;
};

// The first SIGINT/SIGTERM/SIGHUP asks for a clean stop (final report, hosts removed): it sets
// stop_requested(). A second one runs the handler that was installed before (the hosts' hard
// clean-up: bench/topology.h's, kernel/vm_harness.h's), which ends the program.
void install_stop_handler();
bool stop_requested();

// The end of a run, as both runners print it: the last status line (from the report's
// "last_snapshot", with "t" moved back by t0 and the report as its method counters), then the
// "final" event with the report, the totals of every line and `why` it stopped. Returns the totals.
nlohmann::json print_final(Out& out, ProxyStatus* tracker, nlohmann::json report, double t0,
                           const std::vector<std::string>& ifaces, const std::string& label, const std::string& why,
                           int exit_code);

// --udp-test's result from the generator's report `g` and the sink's `s` (either may be
// {"error": ...}): sent, received, lost, duplicates, reordered, corrupted, both reports, and the
// sink's one-way delays when the sender and the receiver read `one_clock` (one machine's clock).
nlohmann::json udp_test_result(const nlohmann::json& g, const nlohmann::json& s, const std::string& to,
                               const Options& o, bool one_clock);

// --udp-test's result as one line for people: sent, received, lost, duplicates, corrupted and,
// when the sink timed them, the one-way delay's p50 and p99.
std::string udp_test_line(const nlohmann::json& r);

// The "udp_test" event (its line for people); false when the test failed to run (an error, not
// losses: those are results).
bool print_udp_test(Out& out, const nlohmann::json& r);

// "exit status N" / "killed by SIGNAL" for a wait status.
std::string describe_wait_status(int st);

// The VM runner (bench/proxy_vm.cc): `variant` resolved, the mode checked. Returns the exit code.
int run_on_vms(const Options& o, const MethodInfo& info, const std::string& variant, Out& out, int argc,
               char** argv);

// The SSH runner (bench/proxy_ssh.cc): `variant` resolved, the mode checked, `so` the hosts, links
// and SSH settings (bench/ssh/ssh_options.h). Returns the exit code.
int run_on_ssh(const Options& o, const ssh::SshThroughputOptions& so, const MethodInfo& info,
               const std::string& variant, Out& out);

}  // namespace ulsnet::proxy_tool
