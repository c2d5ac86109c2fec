// The proxy of the in-guest zero-copy forwarding test (patch 0005): loads the forwarding
// extension (uls_fwd_ext.c, embedded as kFwdExt) into the sandbox region with its state and the
// rings of two e1000 interfaces, binds eth0 and eth1 to it, and then only hosts: it waits in
// ULS_IOC_HOST so that, when the CPU is otherwise idle, someone takes the upcalls. Every second
// it prints one line of counters -- the extension's, both interfaces' (zero-copy path) and the
// kernel's own IP and softnet counters, which must not move (no kernel protocol processing, no
// skb) -- and at the end unbinds (by unregistering the extension), which gives the interfaces
// back to the kernel.
//
//   uls_proxy MAX_SECONDS SENDER_MAC RECEIVER_MAC [EXPECT]
// It stops at MAX_SECONDS, or once half of EXPECT frames came in on eth0 (the stream is on:
// under load some are lost) and then none for 2 s.
// eth0 faces the sender (10.201.1.0/24), eth1 the receiver (10.201.2.0/24); static.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/uls.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "kernel/uls_fwd_ext_blob.h"
#include "kernel/guest/guest_util.h"
#include "kernel/tests/uls_fwd.h"

// Where things go in the region.
#define CODE 0x10000ull
#define STATE 0x20000ull
#define RINGS0 0x30000ull
#define RINGS1 0x34000ull
#define STACK 0x40000ull
#define STACK_SIZE 0x4000ull
#define POOL 0x200000ull
#define POOL_SIZE ((uint64_t)FWD_POOL_MAX * ULS_NET_BUF_SIZE)

static int fd;

// The kernel's Ip: InReceives.
static uint64_t ip_in_receives(void) { return guest_snmp("Ip", 2); }


static uint64_t missed0, errors0, missed1;  // the NICs' counters at bind

static void report(uint32_t id, uint64_t ip0, uint64_t sn0, int final) {
  struct fwd_state s;
  struct uls_stats es = {.id = id};
  struct uls_net_stats n[2];
  memset(n, 0, sizeof n);
  strcpy(n[0].ifname, "eth0");
  strcpy(n[1].ifname, "eth1");
  if (pread(fd, &s, sizeof s, STATE) != (ssize_t)sizeof s || ioctl(fd, ULS_IOC_STATS, &es) != 0 ||
      ioctl(fd, ULS_IOC_NET_STATS, &n[0]) != 0 || ioctl(fd, ULS_IOC_NET_STATS, &n[1]) != 0) {
    printf("uls_proxy: reading counters: %s\n", strerror(errno));
    return;
  }
  printf("ULSNET-PROXY final=%d upcalls=%llu in_current=%llu in_host=%llu faults=%llu overruns=%llu "
         "returned=%llu events=%llu pending=%u ineligible=%llu host_wakeups=%llu denied=%llu "
         "coalesced=%llu ext_rx0=%llu ext_rx1=%llu ext_tx0=%llu ext_tx1=%llu sent0=%llu sent1=%llu "
         "drop_runt=%llu drop_not_ipv4=%llu drop_bad_ip=%llu drop_ttl=%llu drop_no_route=%llu "
         "drop_tx_full=%llu free_overflow=%llu refused=%llu run_ns=%llu",
         final, (unsigned long long)es.upcalls, (unsigned long long)es.in_current,
         (unsigned long long)es.in_host, (unsigned long long)es.faults,
         (unsigned long long)es.overruns, (unsigned long long)es.returned,
         (unsigned long long)es.events, es.pending, (unsigned long long)es.ineligible,
         (unsigned long long)es.host_wakeups, (unsigned long long)es.denied_syscalls,
         (unsigned long long)es.coalesced,
         (unsigned long long)s.port[0].rx, (unsigned long long)s.port[1].rx,
         (unsigned long long)s.port[0].tx, (unsigned long long)s.port[1].tx,
         (unsigned long long)s.port[0].sent, (unsigned long long)s.port[1].sent,
         (unsigned long long)s.drop_runt, (unsigned long long)s.drop_not_ipv4,
         (unsigned long long)s.drop_bad_ip, (unsigned long long)s.drop_ttl,
         (unsigned long long)s.drop_no_route, (unsigned long long)s.drop_tx_full,
         (unsigned long long)s.free_overflow,
         (unsigned long long)(s.port[0].refused + s.port[1].refused), (unsigned long long)es.run_ns);
  for (int i = 0; i < 2; i++)
    printf(" %s_rx=%llu %s_tx=%llu %s_comp=%llu %s_rx_ring_full=%llu %s_rx_errors=%llu "
           "%s_fill_empty=%llu %s_fill_invalid=%llu %s_tx_invalid=%llu %s_tx_nic_full=%llu "
           "%s_comp_full=%llu %s_ring_corrupt=%llu %s_kicks=%llu",
           n[i].ifname, (unsigned long long)n[i].rx_frames, n[i].ifname,
           (unsigned long long)n[i].tx_frames, n[i].ifname, (unsigned long long)n[i].completions,
           n[i].ifname, (unsigned long long)n[i].rx_ring_full, n[i].ifname,
           (unsigned long long)n[i].rx_errors, n[i].ifname, (unsigned long long)n[i].fill_empty,
           n[i].ifname, (unsigned long long)n[i].fill_invalid, n[i].ifname,
           (unsigned long long)n[i].tx_invalid, n[i].ifname, (unsigned long long)n[i].tx_nic_full,
           n[i].ifname, (unsigned long long)n[i].comp_full, n[i].ifname,
           (unsigned long long)n[i].ring_corrupt, n[i].ifname, (unsigned long long)n[i].kicks);
  printf(" eth0_nic_missed=%llu eth0_nic_errors=%llu eth1_nic_missed=%llu",
         (unsigned long long)(guest_if_stat("eth0", "rx_missed_errors") - missed0),
         (unsigned long long)(guest_if_stat("eth0", "rx_errors") + guest_if_stat("eth0", "rx_fifo_errors") - errors0),
         (unsigned long long)(guest_if_stat("eth1", "rx_missed_errors") - missed1));
  printf(" kernel_ip_in_receives=%llu kernel_softnet_processed=%llu\n",
         (unsigned long long)(ip_in_receives() - ip0),
         (unsigned long long)(guest_softnet_processed() - sn0));
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  struct fwd_state s;
  memset(&s, 0, sizeof s);
  if ((argc != 4 && argc != 5) || guest_parse_mac(argv[2], s.port[0].next_mac) != 0 ||
      guest_parse_mac(argv[3], s.port[1].next_mac) != 0) {
    fprintf(stderr, "usage: uls_proxy MAX_SECONDS SENDER_MAC RECEIVER_MAC [EXPECT]\n");
    return 2;
  }
  int seconds = atoi(argv[1]);
  uint64_t expect = argc == 5 ? strtoull(argv[4], NULL, 10) : UINT64_MAX;
  struct uls_info info;
  fd = open("/dev/uls", O_RDWR | O_CLOEXEC);
  if (fd < 0 || ioctl(fd, ULS_IOC_INFO, &info) != 0) {
    printf("uls_proxy: /dev/uls: %s\n", strerror(errno));
    return 1;
  }
  if (info.size < POOL + POOL_SIZE) {
    printf("uls_proxy: the region (%llu bytes) is too small\n", (unsigned long long)info.size);
    return 1;
  }
  if (guest_if_mac("eth0", s.port[0].mac) != 0 || guest_if_mac("eth1", s.port[1].mac) != 0) {
    printf("uls_proxy: no eth0/eth1\n");
    return 1;
  }
  s.region_base = info.base;
  s.port[0].rings = info.base + RINGS0;
  s.port[0].net = 0x0ac90100;  // 10.201.1.0/24
  s.port[0].mask = 0xffffff00;
  s.port[1].rings = info.base + RINGS1;
  s.port[1].net = 0x0ac90200;  // 10.201.2.0/24
  s.port[1].mask = 0xffffff00;

  // Both fill rings full, the rest of the pool on the free list.
  static struct uls_net_rings r[2];
  memset(r, 0, sizeof r);
  uint32_t next = 0;
  for (int p = 0; p < 2; p++) {
    for (uint32_t i = 0; i < ULS_NET_RING_SIZE; i++)
      r[p].fill.desc[i].off = (uint32_t)(POOL + (uint64_t)(next++) * ULS_NET_BUF_SIZE);
    r[p].fill.producer = ULS_NET_RING_SIZE;
  }
  while (next < FWD_POOL_MAX) s.free[s.nfree++] = (uint32_t)(POOL + (uint64_t)(next++) * ULS_NET_BUF_SIZE);

  if (pwrite(fd, kFwdExt, sizeof kFwdExt, CODE) != (ssize_t)sizeof kFwdExt ||
      pwrite(fd, &s, sizeof s, STATE) != (ssize_t)sizeof s ||
      pwrite(fd, &r[0], sizeof r[0], RINGS0) != (ssize_t)sizeof r[0] ||
      pwrite(fd, &r[1], sizeof r[1], RINGS1) != (ssize_t)sizeof r[1]) {
    printf("uls_proxy: loading the region: %s\n", strerror(errno));
    return 1;
  }
  struct uls_extension e;
  memset(&e, 0, sizeof e);
  e.entry = info.base + CODE;
  e.stack_base = info.base + STACK;
  e.stack_size = STACK_SIZE;
  e.state = info.base + STATE;
  snprintf(e.name, sizeof e.name, "fwd");
  if (ioctl(fd, ULS_IOC_REGISTER, &e) != 0) {
    printf("uls_proxy: register: %s\n", strerror(errno));
    return 1;
  }
  uint64_t ip0 = ip_in_receives(), sn0 = guest_softnet_processed();
  missed0 = guest_if_stat("eth0", "rx_missed_errors");
  errors0 = guest_if_stat("eth0", "rx_errors") + guest_if_stat("eth0", "rx_fifo_errors");
  missed1 = guest_if_stat("eth1", "rx_missed_errors");
  const char* ifs[2] = {"eth0", "eth1"};
  const uint64_t ring_off[2] = {RINGS0, RINGS1};
  for (int p = 0; p < 2; p++) {
    struct uls_net_bind b;
    memset(&b, 0, sizeof b);
    snprintf(b.ifname, sizeof b.ifname, "%s", ifs[p]);
    b.id = e.id;
    b.rings_off = (uint32_t)ring_off[p];
    b.pool_off = POOL;
    b.pool_size = POOL_SIZE;
    if (ioctl(fd, ULS_IOC_NET_BIND, &b) != 0) {
      printf("uls_proxy: binding %s: %s\n", ifs[p], strerror(errno));
      ioctl(fd, ULS_IOC_UNREGISTER, &e.id);
      return 1;
    }
  }
  // A restarted e1000 reports its link once its watchdog ran; wait for it (bounded).
  for (int p = 0; p < 2; p++) guest_wait_carrier(ifs[p]);
  printf("ULSNET-PROXY-READY id=%u\n", e.id);

  uint64_t end = guest_now_ns() + (uint64_t)seconds * 1000000000ull, next_report = guest_now_ns() + 1000000000ull;
  uint64_t last_rx = 0, last_change = guest_now_ns();
  while (guest_now_ns() < end) {
    uint32_t ms = 100;
    ioctl(fd, ULS_IOC_HOST, &ms);  // 0, or ETIMEDOUT when nothing came
    struct uls_net_stats n0;
    memset(&n0, 0, sizeof n0);
    strcpy(n0.ifname, "eth0");
    if (ioctl(fd, ULS_IOC_NET_STATS, &n0) == 0 && n0.rx_frames != last_rx) {
      last_rx = n0.rx_frames;
      last_change = guest_now_ns();
    }
    if (last_rx >= expect / 2 && guest_now_ns() - last_change > 2000000000ull) break;
    if (guest_now_ns() >= next_report) {
      report(e.id, ip0, sn0, 0);
      next_report += 1000000000ull;
    }
  }
  report(e.id, ip0, sn0, 1);
  if (ioctl(fd, ULS_IOC_UNREGISTER, &e.id) != 0) {
    printf("uls_proxy: unregister: %s\n", strerror(errno));
    return 1;
  }
  struct uls_net_stats gone;
  memset(&gone, 0, sizeof gone);
  strcpy(gone.ifname, "eth0");
  int unbound = ioctl(fd, ULS_IOC_NET_STATS, &gone) == -1 && errno == ENOENT;
  printf("ULSNET-PROXY-UNBOUND %s\n", unbound ? "yes" : "no");
  return unbound ? 0 : 1;
}
