// The end hosts of the in-guest forwarding test: a numbered UDP stream.
//
//   uls_udp send DST_IP PORT COUNT PPS   sends COUNT datagrams (18-byte payload: 64-byte frames),
//                                        each carrying its sequence number, paced at PPS (0: as
//                                        fast as the socket takes them);
//                                        prints "ULSNET-UDP-SENT sent=N errors=E seconds=S
//                                        nic_tx=T" (T: frames eth0's driver sent meanwhile)
//   uls_udp recv PORT COUNT IDLE_MS MAX_MS
//                                        receives until COUNT distinct numbers arrived, IDLE_MS
//                                        passed without any after the first, or MAX_MS in all;
//                                        prints "ULSNET-UDP-RECV received=R dup=D bad=B
//                                        rcvbuf_errors=X span=S no_ports=P" (X: the kernel's Udp
//                                        RcvbufErrors delta; S: seconds from the first datagram
//                                        to the last; P: Udp NoPorts since boot, i.e. datagrams
//                                        that came before this socket was bound)
// Static (the guest has no libc). Bounded in count and time.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "kernel/guest/guest_util.h"

#define MAGIC 0x756c736e6574ull  // "ulsnet"

struct payload {
  uint64_t seq;
  uint64_t magic;
  uint16_t pad;
} __attribute__((packed));

// Udp: RcvbufErrors.
static uint64_t udp_rcvbuf_errors(void) { return guest_snmp("Udp", 4); }

static int do_send(const char* ip, int port, long count, long pps) {
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  if (s < 0 || inet_pton(AF_INET, ip, &a.sin_addr) != 1 || connect(s, (struct sockaddr*)&a, sizeof a) != 0) {
    printf("uls_udp: socket to %s:%d: %s\n", ip, port, strerror(errno));
    return 1;
  }
  long sent = 0, errors = 0;
  uint64_t tx0 = guest_if_stat("eth0", "tx_packets");
  uint64_t start = guest_now_ns(), gap = pps > 0 ? 1000000000ull / (uint64_t)pps : 0;
  for (long i = 0; i < count; i++) {
    uint64_t due = start + (uint64_t)i * gap;
    while (guest_now_ns() < due) {
      struct timespec ts = {0, 20000};
      nanosleep(&ts, NULL);
    }
    struct payload p = {.seq = (uint64_t)i, .magic = MAGIC};
    if (send(s, &p, sizeof p, 0) == (ssize_t)sizeof p)
      ++sent;
    else
      ++errors;
  }
  double seconds = (double)(guest_now_ns() - start) / 1e9;
  // What left this host's NIC (the driver's count; frames the qdisc dropped never get there).
  struct timespec settle = {0, 500000000};
  nanosleep(&settle, NULL);
  printf("ULSNET-UDP-SENT sent=%ld errors=%ld seconds=%.3f nic_tx=%llu\n", sent, errors, seconds,
         (unsigned long long)(guest_if_stat("eth0", "tx_packets") - tx0));
  return 0;
}

static int do_recv(int port, long count, long idle_ms, long max_ms) {
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  int rcvbuf = 4 << 20;
  setsockopt(s, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  if (s < 0 || bind(s, (struct sockaddr*)&a, sizeof a) != 0) {
    printf("uls_udp: bind port %d: %s\n", port, strerror(errno));
    return 1;
  }
  struct timeval tv = {0, 100000};
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  uint8_t* seen = calloc((size_t)count, 1);
  if (!seen) return 1;
  uint64_t err0 = udp_rcvbuf_errors(), start = guest_now_ns(), first = 0, last = 0;
  long received = 0, dup = 0, bad = 0;
  while (received < count) {
    uint64_t t = guest_now_ns();
    if (t - start > (uint64_t)max_ms * 1000000ull) break;
    if (last && t - last > (uint64_t)idle_ms * 1000000ull) break;
    struct payload p;
    ssize_t n = recv(s, &p, sizeof p, 0);
    if (n < 0) continue;
    last = guest_now_ns();
    if (!first) first = last;
    if (n != (ssize_t)sizeof p || p.magic != MAGIC || p.seq >= (uint64_t)count) {
      ++bad;
      continue;
    }
    if (seen[p.seq]) {
      ++dup;
      continue;
    }
    seen[p.seq] = 1;
    ++received;
  }
  printf("ULSNET-UDP-RECV received=%ld dup=%ld bad=%ld rcvbuf_errors=%llu span=%.6f no_ports=%llu\n",
         received, dup, bad, (unsigned long long)(udp_rcvbuf_errors() - err0),
         (double)(last - first) / 1e9, (unsigned long long)guest_snmp("Udp", 1));
  return 0;
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc == 6 && strcmp(argv[1], "send") == 0)
    return do_send(argv[2], atoi(argv[3]), atol(argv[4]), atol(argv[5]) > 0 ? atol(argv[5]) : 0);
  if (argc == 6 && strcmp(argv[1], "recv") == 0)
    return do_recv(atoi(argv[2]), atol(argv[3]) > 0 ? atol(argv[3]) : 1, atol(argv[4]), atol(argv[5]));
  fprintf(stderr, "usage: uls_udp send DST_IP PORT COUNT PPS | recv PORT COUNT IDLE_MS MAX_MS\n");
  return 2;
}
