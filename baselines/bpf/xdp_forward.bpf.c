// xdp-redirect: the in-kernel XDP forwarder, the fastest the proxy host's path allows.
//
// Attached to both proxy interfaces. It does the same rewrite the ulsnet Stack does, in the
// driver's receive path, and redirects the frame to the other interface with bpf_redirect:
//  - relay: UDP to (our address on the receiving interface, listen_port) is re-addressed to
//    (to_ip, to_port) from (our address on the out interface, listen_port), fresh TTL 64, with
//    RFC 1624 incremental IPv4 and UDP checksum updates (a zero UDP checksum stays zero);
//  - router: IPv4 to the other interface's subnet gets its TTL decremented (incremental header
//    checksum update) and is sent to the static neighbour there.
// Everything else (ARP, ICMP, IPv4 options or fragments, TTL <= 1, other addresses) is passed
// to the proxy's kernel, which owns the addresses and answers ARP and ICMP as for
// kernel-forward. Every frame is counted in exactly one counter.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

// Per interface (key = 0 for the "in" interface, 1 for "out"), written by user space once.
struct fwd_port {
  __u32 ifindex;        // this interface
  __u32 ip;             // our address here (network order)
  __u32 net, mask;      // its subnet (network order)
  __u8 mac[6];          // our MAC here
  __u8 peer_mac[6];     // the neighbour's MAC on this link
  __u32 peer_ip;        // the neighbour's address (network order)
};

struct fwd_config {
  struct fwd_port port[2];
  __u32 relay;          // 1: relay mode, 0: router mode
  __u16 listen_port;    // relay (network order)
  __u16 to_port;        // relay (network order)
  __u32 to_ip;          // relay (network order)
};

enum fwd_counter {
  FWD_REDIRECTED = 0,   // rewritten and handed to bpf_redirect
  FWD_PASS_NOT_IPV4,    // ARP and other ethertypes: the kernel's
  FWD_PASS_NOT_OURS,    // IPv4 not for a relay port / not routable to the other side
  FWD_PASS_OPTIONS,     // IPv4 options or fragments: the kernel's slow path
  FWD_PASS_TTL,         // TTL <= 1 (router): the kernel sends ICMP time exceeded
  FWD_DROP_MALFORMED,   // shorter than its headers claim
  FWD_REDIRECT_FAILED,  // bpf_redirect refused the target
  FWD_NCOUNTERS,
};

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct fwd_config);
} fwd_config_map SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, FWD_NCOUNTERS);
  __type(key, __u32);
  __type(value, __u64);
} fwd_counters SEC(".maps");

static __always_inline int count(__u32 c, int action) {
  __u64* v = bpf_map_lookup_elem(&fwd_counters, &c);
  if (v) *v += 1;
  return action;
}

// RFC 1624: HC' = ~(~HC + ~m + m') over 16-bit words.
static __always_inline __u16 csum_update16(__u16 hc, __u16 old, __u16 new_) {
  __u32 s = (__u16)~hc + (__u16)~old + new_;
  s = (s & 0xffff) + (s >> 16);
  s = (s & 0xffff) + (s >> 16);
  return ~s;
}
static __always_inline __u16 csum_update32(__u16 hc, __u32 old, __u32 new_) {
  hc = csum_update16(hc, old >> 16, new_ >> 16);
  return csum_update16(hc, old & 0xffff, new_ & 0xffff);
}

SEC("xdp")
int xdp_forward(struct xdp_md* ctx) {
  void* data = (void*)(long)ctx->data;
  void* end = (void*)(long)ctx->data_end;
  __u32 zero = 0;
  struct fwd_config* cfg = bpf_map_lookup_elem(&fwd_config_map, &zero);
  if (!cfg) return XDP_PASS;
  struct ethhdr* eth = data;
  if ((void*)(eth + 1) > end) return count(FWD_DROP_MALFORMED, XDP_DROP);
  if (eth->h_proto != bpf_htons(ETH_P_IP)) return count(FWD_PASS_NOT_IPV4, XDP_PASS);
  struct iphdr* ip = (void*)(eth + 1);
  if ((void*)(ip + 1) > end) return count(FWD_DROP_MALFORMED, XDP_DROP);
  if (ip->ihl != 5 || ip->version != 4 || (ip->frag_off & bpf_htons(0x3fff)))
    return count(FWD_PASS_OPTIONS, XDP_PASS);
  const __u32 in = ctx->ingress_ifindex == cfg->port[1].ifindex ? 1 : 0;
  const __u32 out = 1 - in;
  struct fwd_port* po = &cfg->port[out];

  if (cfg->relay) {
    if (ip->protocol != IPPROTO_UDP || ip->daddr != cfg->port[in].ip || in != 0)
      return count(FWD_PASS_NOT_OURS, XDP_PASS);
    struct udphdr* udp = (void*)(ip + 1);
    if ((void*)(udp + 1) > end) return count(FWD_DROP_MALFORMED, XDP_DROP);
    if (udp->dest != cfg->listen_port) return count(FWD_PASS_NOT_OURS, XDP_PASS);
    const __u32 old_src = ip->saddr, old_dst = ip->daddr;
    const __u16 old_sport = udp->source, old_dport = udp->dest;
    const __u16 old_ttl_word = *(__u16*)&ip->ttl;
    ip->saddr = po->ip;
    ip->daddr = cfg->to_ip;
    ip->ttl = 64;
    __u16 hc = ip->check;
    hc = csum_update32(hc, old_src, ip->saddr);
    hc = csum_update32(hc, old_dst, ip->daddr);
    hc = csum_update16(hc, old_ttl_word, *(__u16*)&ip->ttl);
    ip->check = hc;
    udp->source = cfg->listen_port;
    udp->dest = cfg->to_port;
    if (udp->check != 0) {
      __u16 uc = udp->check;
      uc = csum_update32(uc, old_src, ip->saddr);
      uc = csum_update32(uc, old_dst, ip->daddr);
      uc = csum_update16(uc, old_sport, udp->source);
      uc = csum_update16(uc, old_dport, udp->dest);
      udp->check = uc == 0 ? 0xffff : uc;
    }
  } else {
    if ((ip->daddr & po->mask) != po->net || ip->daddr == po->ip)
      return count(FWD_PASS_NOT_OURS, XDP_PASS);
    if (ip->daddr != po->peer_ip) return count(FWD_PASS_NOT_OURS, XDP_PASS);  // no neighbour entry
    if (ip->ttl <= 1) return count(FWD_PASS_TTL, XDP_PASS);
    const __u16 old_ttl_word = *(__u16*)&ip->ttl;
    ip->ttl -= 1;
    ip->check = csum_update16(ip->check, old_ttl_word, *(__u16*)&ip->ttl);
  }
  __builtin_memcpy(eth->h_dest, po->peer_mac, 6);
  __builtin_memcpy(eth->h_source, po->mac, 6);
  int rc = bpf_redirect(po->ifindex, 0);
  return rc == XDP_REDIRECT ? count(FWD_REDIRECTED, rc) : count(FWD_REDIRECT_FAILED, XDP_DROP);
}

// For the far end of a veth pair that receives redirected frames: an XDP program there gives
// the veth the NAPI context that XDP redirects into it need; this one passes everything.
SEC("xdp")
int xdp_pass(struct xdp_md* ctx) { return XDP_PASS; }

char LICENSE[] SEC("license") = "GPL";
