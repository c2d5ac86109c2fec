// The three hosts of an ssh_throughput run and everything it makes on them: one OpenSSH
// connection master per machine, the agent copied into a fresh temporary directory on each, each
// host's environment from `ulsnet_agent env`, the test interfaces found there by their addresses,
// and the clean-up that undoes it all on every way out (the agents still named in their pid
// files killed, the directories removed, the connections closed). A step that fails is a
// SetupError (exit 3).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/ssh/child.h"
#include "bench/ssh/ssh_command.h"
#include "bench/ssh/ssh_options.h"

namespace ulsnet::ssh {

struct SetupError {
  std::string message;
};

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
class RunHosts {
 public:
  explicit RunHosts(const SshThroughputOptions& o) : o(o) {}
  ~RunHosts() { cleanup(); }

  const SshThroughputOptions& o;
  std::string tool = "ssh_throughput";  // its messages' prefix
  std::vector<Host> hosts;  // sender, proxy, receiver
  std::map<std::string, Master> masters;  // by target
  std::string local_dir;
  nlohmann::json cleanup_log = nlohmann::json::array();

  void cleanup();

 private:
  void cleanup_host(Host& h);
  bool cleaned_ = false;
};

// A test interface: named by a flag or the one holding its address on the host; its MAC from
// the host's own report unless given.
struct Port {
  std::string ifname, ip, mac;
};

// Where a trial runs: the test interfaces, the clocks, the CPUs.
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

// Each host connected, the agent at `agent_path` copied there, its environment read, and the
// four test interfaces resolved into `ad`. Throws SetupError.
void prepare_hosts(RunHosts& run, const std::string& agent_path, Addressing& ad);

// The hosts as the result file records them: target, destination, environment per role.
nlohmann::json hosts_json(const RunHosts& run);

}  // namespace ulsnet::ssh
