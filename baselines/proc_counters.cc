#include "baselines/proc_counters.h"

#include <fstream>
#include <sstream>
#include <vector>

namespace ulsnet {

std::map<std::string, uint64_t> read_snmp() {
  std::map<std::string, uint64_t> out;
  std::ifstream in("/proc/net/snmp");
  std::string names, values;
  // The file is pairs of lines: "Proto: Name1 Name2 ..." then "Proto: v1 v2 ...".
  while (std::getline(in, names) && std::getline(in, values)) {
    std::istringstream n(names), v(values);
    std::string proto, name, value;
    n >> proto;
    v >> value;
    proto.pop_back();  // trailing ':'
    while (n >> name && v >> value) {
      try {
        out[proto + "." + name] = uint64_t(std::stoll(value));
      } catch (...) {
      }
    }
  }
  return out;
}

std::map<std::string, uint64_t> read_netdev() {
  std::map<std::string, uint64_t> out;
  std::ifstream in("/proc/net/dev");
  std::string line;
  std::getline(in, line);
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

std::map<std::string, uint64_t> counter_delta(const std::map<std::string, uint64_t>& a,
                                              const std::map<std::string, uint64_t>& b) {
  std::map<std::string, uint64_t> d;
  for (const auto& [k, v] : b) {
    auto it = a.find(k);
    uint64_t base = it == a.end() ? 0 : it->second;
    d[k] = v >= base ? v - base : 0;
  }
  return d;
}

}  // namespace ulsnet
