// The state of the in-guest forwarding extension (uls_fwd_ext.c), shared with the program that
// sets it up and reads its counters (uls_proxy.c). Lives in the sandbox region.
#ifndef ULSNET_KERNEL_TESTS_ULS_FWD_H_
#define ULSNET_KERNEL_TESTS_ULS_FWD_H_

#include <stdint.h>

#define FWD_POOL_MAX 1024

struct fwd_port {
  uint64_t rings;         // address of its struct uls_net_rings (in the region)
  uint8_t mac[6];         // the port's own MAC: source of frames sent out of it
  uint8_t next_mac[6];    // the next hop's MAC on that link
  uint32_t net, mask;     // IPv4 destinations routed out of this port (host byte order)
  uint64_t rx;            // frames received on it
  uint64_t tx;            // frames posted to it
  uint64_t sent;          // buffers back from it as sent
  uint64_t refused;       // buffers back from it refused by the kernel (ULS_DESC_INVALID)
  uint64_t unused;        // receive buffers back unused (at unbind)
};

struct fwd_state {
  uint64_t region_base;
  struct fwd_port port[2];
  uint64_t upcalls;
  // Frames dropped by the extension, by reason (their buffers go back to the free list).
  uint64_t drop_runt, drop_not_ipv4, drop_bad_ip, drop_ttl, drop_no_route, drop_tx_full;
  uint64_t free_overflow;  // buffers that did not fit the free list (lost: must stay 0)
  uint32_t nfree, pad;
  uint32_t free[FWD_POOL_MAX];  // region offsets of free buffers
};

#endif  // ULSNET_KERNEL_TESTS_ULS_FWD_H_
