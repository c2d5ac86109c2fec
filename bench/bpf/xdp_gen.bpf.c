// The in-kernel traffic generator: run with BPF_PROG_RUN in live-frames mode
// (BPF_F_TEST_XDP_LIVE_FRAMES, Linux 5.18+) on the sender's interface. The kernel builds each
// frame from a template (Ethernet + IPv4 + UDP + payload, prepared by user space), runs this
// program on it, and transmits it on XDP_TX; no socket, no skb, no system call per frame.
//
// Per frame the program stamps the payload exactly as the socket generator does (bench/
// traffic.h): sequence number, CLOCK_MONOTONIC send time (bpf_ktime_get_ns is that clock) and
// the pattern byte i = (seq + i) & 0xff, so the same sink checks every datagram. The UDP
// checksum is 0 ("none", valid for IPv4): the generator says so in its report.
// Frames past `limit` are dropped and counted, so the count bound is exact; so are frames run
// after `deadline_ns`, so the time bound holds.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define ETH_IP_UDP 42  // 14 + 20 + 8
#define MAX_PAYLOAD 1472

struct gen_config {
  __u64 next_seq;   // atomically incremented: the next sequence number
  __u64 limit;      // sequence numbers at or past this are not sent
  __u64 sent;       // frames returned XDP_TX (the kernel may still drop them: see report)
  __u64 over_limit; // frames dropped because the limit was reached
  __u64 malformed;  // template shorter than the headers (never, unless user space erred)
  __u64 deadline_ns; // CLOCK_MONOTONIC: frames run after this are dropped, not sent
  __u64 late;       // frames dropped for the deadline (they consume no sequence number)
};

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct gen_config);
} gen_config_map SEC(".maps");

SEC("xdp")
int xdp_gen(struct xdp_md* ctx) {
  __u32 zero = 0;
  struct gen_config* c = bpf_map_lookup_elem(&gen_config_map, &zero);
  if (!c) return XDP_ABORTED;
  __u8* data = (void*)(long)ctx->data;
  __u8* end = (void*)(long)ctx->data_end;
  __u8* p = data + ETH_IP_UDP;
  if (p + 24 > end) {
    __sync_fetch_and_add(&c->malformed, 1);
    return XDP_DROP;
  }
  const __u64 now = bpf_ktime_get_ns();
  // One BPF_PROG_RUN call runs a fixed number of frames; past the trial's deadline the rest
  // are dropped cheaply so that the call, and the trial, end on time.
  if (now >= c->deadline_ns) {
    __sync_fetch_and_add(&c->late, 1);
    return XDP_DROP;
  }
  const __u64 seq = __sync_fetch_and_add(&c->next_seq, 1);
  if (seq >= c->limit) {
    __sync_fetch_and_add(&c->over_limit, 1);
    return XDP_DROP;
  }
  // Little-endian fields, as fill_payload writes them (magic and run id are in the template).
  *(__u64*)(p + 8) = seq;
  *(__u64*)(p + 16) = now;
  const __u32 len = (__u32)(end - p);
  for (__u32 i = 24; i < MAX_PAYLOAD; ++i) {
    if (i >= len) break;
    if (p + i + 1 > end) break;
    p[i] = (__u8)(seq + i);
  }
  __sync_fetch_and_add(&c->sent, 1);
  return XDP_TX;
}

char LICENSE[] SEC("license") = "GPL";
