#include "baselines/proc_counters.h"

#include <fstream>
#include <sstream>
#include <vector>

namespace ulsnet {

namespace {

std::ifstream open_net_file(const std::string& name) {
  std::ifstream in("/proc/thread-self/net/" + name);
  if (!in) in.open("/proc/net/" + name);  // kernels before 3.17 lack thread-self
  return in;
}

// snmp and netstat are pairs of lines: "Proto: Name1 Name2 ..." then "Proto: v1 v2 ...".
std::map<std::string, uint64_t> read_paired(const std::string& file) {
  std::map<std::string, uint64_t> out;
  std::ifstream in = open_net_file(file);
  std::string names, values;
  while (std::getline(in, names) && std::getline(in, values)) {
    std::istringstream n(names), v(values);
    std::string proto, name, value;
    n >> proto;
    v >> value;
    if (proto.empty() || proto.back() != ':') continue;
    proto.pop_back();
    while (n >> name && v >> value) {
      // Some counters (Ip.Forwarding, Tcp.MaxConn) are not monotonic or may be negative.
      try {
        long long x = std::stoll(value);
        if (x >= 0) out[proto + "." + name] = uint64_t(x);
      } catch (...) {
      }
    }
  }
  return out;
}

}  // namespace

std::map<std::string, uint64_t> read_snmp() { return read_paired("snmp"); }
std::map<std::string, uint64_t> read_netstat() { return read_paired("netstat"); }

namespace {

std::map<std::string, uint64_t> parse_netdev(std::ifstream& in) {
  std::map<std::string, uint64_t> out;
  std::string line;
  std::getline(in, line);  // two header lines
  std::getline(in, line);
  while (std::getline(in, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string dev = line.substr(0, colon);
    dev.erase(0, dev.find_first_not_of(' '));
    std::istringstream v(line.substr(colon + 1));
    std::vector<uint64_t> f;
    uint64_t x;
    while (v >> x) f.push_back(x);
    if (f.size() < 16) continue;
    out[dev + ".rx_packets"] = f[1];
    out[dev + ".rx_drop"] = f[3];
    out[dev + ".tx_packets"] = f[9];
    out[dev + ".tx_drop"] = f[11];
  }
  return out;
}

}  // namespace

std::map<std::string, uint64_t> read_netdev() {
  std::ifstream in = open_net_file("dev");
  return parse_netdev(in);
}

std::map<std::string, uint64_t> read_netdev_of(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/net/dev");
  return parse_netdev(in);
}

std::map<std::string, uint64_t> counter_delta(const std::map<std::string, uint64_t>& a,
                                              const std::map<std::string, uint64_t>& b) {
  std::map<std::string, uint64_t> d;
  for (const auto& [k, v] : b) {
    uint64_t base = counter(a, k);
    d[k] = v >= base ? v - base : 0;
  }
  return d;
}

uint64_t counter(const std::map<std::string, uint64_t>& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? 0 : it->second;
}

}  // namespace ulsnet
