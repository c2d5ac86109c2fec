// Per-network-namespace kernel counters from /proc/net/snmp and /proc/net/dev. /proc/net
// follows the reading thread's network namespace, so a process inside a host's namespace reads
// that host's counters exactly (unlike /sys/class/net, which follows the sysfs mount).
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace ulsnet {

// {"Ip.ForwDatagrams": n, "Udp.RcvbufErrors": n, ...}; empty on failure.
std::map<std::string, uint64_t> read_snmp();
// {"p0.rx_packets", "p0.rx_drop", "p0.tx_packets", "p0.tx_drop", ...} for every interface.
std::map<std::string, uint64_t> read_netdev();
// b - a for every key of b (missing in a counts as 0).
std::map<std::string, uint64_t> counter_delta(const std::map<std::string, uint64_t>& a,
                                              const std::map<std::string, uint64_t>& b);

}  // namespace ulsnet
