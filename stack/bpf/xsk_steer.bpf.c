// The AF_XDP steering program: redirects the experiment's frames on this interface into the
// AF_XDP socket bound to the receiving queue, and passes everything else to the kernel.
//
// "The experiment's frames": IPv4 and ARP whose destination MAC is the interface's or
// broadcast, optionally restricted (IPv4 only) to one UDP destination port and/or one IPv4
// destination (0 = any). Every frame lands in exactly one counter.
//
// With stamp_rx set, each redirected IPv4 frame carries its receive time: bpf_ktime_get_ns()
// (CLOCK_MONOTONIC), read as the program starts, in 8 bytes of XDP metadata just in front of the
// frame; AF_XDP copies the metadata with the frame (user space reads it before the frame's
// address in the umem). A frame whose metadata could not be reserved is counted (STEER_NO_STAMP)
// and still redirected.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

struct steer_config {
  __u8 mac[6];        // the interface's MAC
  __u16 udp_port;     // network order; 0 = any IPv4
  __u32 ipv4_dst;     // network order; 0 = any
  __u32 steer_arp;    // 1: ARP goes to the socket too (the Stack answers it)
  __u32 stamp_rx;     // 1: the receive time in the metadata of each redirected IPv4 frame
};

enum steer_counter {
  STEER_IPV4 = 0,       // redirected: IPv4
  STEER_ARP,            // redirected: ARP
  STEER_PASS_OTHER,     // not ours: to the kernel
  STEER_REDIRECT_FAILED,  // no socket on this queue (or its ring full): dropped
  STEER_NO_STAMP,       // stamp_rx: no room for the metadata (redirected without a time)
  STEER_NCOUNTERS,
};

struct {
  __uint(type, BPF_MAP_TYPE_XSKMAP);
  __uint(max_entries, 64);
  __type(key, __u32);
  __type(value, __u32);
} xsks_map SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct steer_config);
} steer_config_map SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, STEER_NCOUNTERS);
  __type(key, __u32);
  __type(value, __u64);
} steer_counters SEC(".maps");

static __always_inline void count(__u32 c) {
  __u64* v = bpf_map_lookup_elem(&steer_counters, &c);
  if (v) *v += 1;
}

static __always_inline int mac_ok(const __u8* d, const __u8* mine) {
  int bcast = 1, own = 1;
#pragma unroll
  for (int i = 0; i < 6; ++i) {
    bcast &= d[i] == 0xff;
    own &= d[i] == mine[i];
  }
  return bcast | own;
}

SEC("xdp")
int xsk_steer(struct xdp_md* ctx) {
  const __u64 now = bpf_ktime_get_ns();
  void* data = (void*)(long)ctx->data;
  void* end = (void*)(long)ctx->data_end;
  __u32 zero = 0;
  struct steer_config* c = bpf_map_lookup_elem(&steer_config_map, &zero);
  struct ethhdr* eth = data;
  if (!c || (void*)(eth + 1) > end || !mac_ok(eth->h_dest, c->mac)) goto pass;
  __u32 which;
  if (eth->h_proto == bpf_htons(ETH_P_ARP)) {
    if (!c->steer_arp) goto pass;
    which = STEER_ARP;
  } else if (eth->h_proto == bpf_htons(ETH_P_IP)) {
    struct iphdr* ip = (void*)(eth + 1);
    if ((void*)(ip + 1) > end) goto pass;
    if (c->ipv4_dst && ip->daddr != c->ipv4_dst) goto pass;
    if (c->udp_port) {
      if (ip->protocol != IPPROTO_UDP || ip->ihl != 5) goto pass;
      struct udphdr* udp = (void*)(ip + 1);
      if ((void*)(udp + 1) > end || udp->dest != c->udp_port) goto pass;
    }
    which = STEER_IPV4;
    if (c->stamp_rx) {
      // Packet pointers are invalid after the adjustment: only ctx's are used from here on.
      if (bpf_xdp_adjust_meta(ctx, -(int)sizeof(__u64)) == 0) {
        void* meta = (void*)(long)ctx->data_meta;
        if (meta + sizeof(__u64) <= (void*)(long)ctx->data)
          *(__u64*)meta = now;
        else
          count(STEER_NO_STAMP);
      } else {
        count(STEER_NO_STAMP);
      }
    }
  } else {
    goto pass;
  }
  // XDP_DROP if there is no socket for this queue: the frame is ours, never the kernel's.
  int rc = bpf_redirect_map(&xsks_map, ctx->rx_queue_index, XDP_DROP);
  count(rc == XDP_REDIRECT ? which : STEER_REDIRECT_FAILED);
  return rc;
pass:
  count(STEER_PASS_OTHER);
  return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
