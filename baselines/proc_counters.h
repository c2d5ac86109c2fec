// Per-network-namespace kernel counters from /proc/net/snmp, /proc/net/netstat and
// /proc/net/dev. Read through /proc/thread-self/net, which follows the calling thread's network
// namespace (/proc/net is /proc/self/net: the main thread's), so a thread inside a host's
// namespace reads that host's counters exactly. /sys/class/net would follow the sysfs mount
// instead and is never used here.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace ulsnet {

// {"Ip.ForwDatagrams": n, "Udp.RcvbufErrors": n, ...}; empty on failure.
std::map<std::string, uint64_t> read_snmp();
// The extended counters, same form: {"IpExt.InNoRoutes": n, "TcpExt.ListenDrops": n, ...}.
std::map<std::string, uint64_t> read_netstat();
// {"p0.rx_packets", "p0.rx_drop", "p0.tx_packets", "p0.tx_drop", ...} for every interface.
std::map<std::string, uint64_t> read_netdev();
// The same for the network namespace of process `pid` (/proc/PID/net/dev); empty on failure.
std::map<std::string, uint64_t> read_netdev_of(int pid);
// b - a for every key of b (missing in a counts as 0; a counter that went backwards gives 0).
std::map<std::string, uint64_t> counter_delta(const std::map<std::string, uint64_t>& a,
                                              const std::map<std::string, uint64_t>& b);
// The value of `key` in `m`, 0 when absent.
uint64_t counter(const std::map<std::string, uint64_t>& m, const std::string& key);

}  // namespace ulsnet
