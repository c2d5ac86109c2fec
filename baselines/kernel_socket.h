// What the kernel-socket relay's variants share (baselines/kernel_methods.cc: per-datagram and
// batched; baselines/uring_relay.cc: io_uring): the sockets, and the drops the proxy's kernel
// counted, read from its network namespace's counters.
#pragma once

#include <netinet/in.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "stack/drop_stage.h"
#include "stack/net_types.h"
#include "stack/proxy_method.h"

namespace ulsnet::kernel_socket {

inline constexpr size_t kMaxDatagram = 65536;  // any UDP datagram fits: nothing is ever truncated
inline constexpr int kIdleWaitMs = 10;         // wait bound when idle: stop is seen within this

sockaddr_in socket_address(Ipv4Addr ip, uint16_t port);
// A UDP socket bound to ip:port with 8 MiB of buffer on its side; the receive side
// non-blocking, the send side blocking with a 50 ms bound. Throws MethodError.
int udp_socket_bound(Ipv4Addr ip, uint16_t port, bool receive_side);
int socket_buffer(int fd, int opt);
// The kernel's drop counter of one UDP socket (/proc/thread-self/net/udp).
uint64_t udp_socket_drops(int fd);
std::string errno_name(int e);
// The drops so far from the kernel's counters since start() (`d`: a counter_delta of
// read_snmp()) and the relay's own datagrams that it received and could not send.
DropLedger drops(const std::map<std::string, uint64_t>& d, uint64_t send_failed);

// Counts by errno, named ({"ENOBUFS": n, ...}).
nlohmann::json errno_counts(const std::map<int, uint64_t>& by_errno);
// What every variant's report has: received, forwarded, the drop ledger (drops() and the
// variant's own), the send errors (ENOBUFS also as tx_refused_by_link), the kernel's UDP
// counters since start() (`d`) and the two sockets' buffers and drops.
nlohmann::json relay_report(uint64_t received, uint64_t forwarded, const DropLedger& ledger,
                            const std::map<int, uint64_t>& send_errors, const std::map<std::string, uint64_t>& d,
                            int in, int out);

// The io_uring variant (baselines/uring_relay.cc); start() checks its config.
std::unique_ptr<ProxyMethod> make_uring_relay(const MethodInfo& info);

}  // namespace ulsnet::kernel_socket
