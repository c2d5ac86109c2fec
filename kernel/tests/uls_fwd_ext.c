// A forwarding extension for the zero-copy path (patch 0005), run by upcalls in the proxy VM:
// frames arrive on one bound e1000 interface's rx ring, are routed by IPv4 destination, get their
// Ethernet addresses rewritten and their TTL decremented (checksum updated incrementally), and
// are posted, in the same buffer, on the other interface's tx ring. Nothing is copied.
//
// Freestanding: built into a flat binary that runs at whatever region address it is loaded to
// (position-independent code, no data of its own, no calls out; see tests/uls_ext.ld). This is a
// test of the kernel path, deliberately minimal: it is not the project's network stack (stack/),
// which the sandbox's `uls` backend is to run on this path.
#include <linux/uls.h>

#define FWD_STRINGIFY_(x) #x
#define FWD_STRINGIFY(x) FWD_STRINGIFY_(x)

#include "uls_fwd.h"

#define MASK (ULS_NET_RING_SIZE - 1)

__asm__(
    ".section .text.entry,\"ax\"\n"
    ".globl _start\n"
    "_start:\n"
    "  sub $8, %rsp\n"  // the kernel enters as if called: realign for the call below
    "  call fwd_main\n"
    "  mov $" FWD_STRINGIFY(ULS_SYSCALL_RETURN) ", %eax\n"
    "  syscall\n"
    "  ud2\n"
    ".text\n");

// x86 keeps loads and stores in order; the compiler must too, around the shared indices.
static inline uint32_t load_acquire(const volatile uint32_t* p) {
  uint32_t v = *p;
  __asm__ volatile("" ::: "memory");
  return v;
}
static inline void store_release(volatile uint32_t* p, uint32_t v) {
  __asm__ volatile("" ::: "memory");
  *p = v;
}

static inline void put_free(struct fwd_state* s, uint32_t off) {
  if (s->nfree < FWD_POOL_MAX)
    s->free[s->nfree++] = off;
  else
    s->free_overflow++;
}

static inline struct uls_net_rings* rings(struct fwd_state* s, int p) {
  return (struct uls_net_rings*)s->port[p].rings;
}

// Routes the frame at f; returns the port to send it out of, or -1 (dropped, counted).
static int route(struct fwd_state* s, uint8_t* f, uint32_t len) {
  if (len < 14 + 20) {
    s->drop_runt++;
    return -1;
  }
  if (f[12] != 0x08 || f[13] != 0x00) {
    s->drop_not_ipv4++;
    return -1;
  }
  uint8_t* ip = f + 14;
  uint32_t ihl = (uint32_t)(ip[0] & 15) * 4;
  if ((ip[0] >> 4) != 4 || ihl < 20 || 14 + ihl > len) {
    s->drop_bad_ip++;
    return -1;
  }
  uint32_t dst = (uint32_t)ip[16] << 24 | (uint32_t)ip[17] << 16 | (uint32_t)ip[18] << 8 | ip[19];
  int out = -1;
  for (int p = 0; p < 2; p++)
    if ((dst & s->port[p].mask) == s->port[p].net) out = p;
  if (out < 0) {
    s->drop_no_route++;
    return -1;
  }
  if (ip[8] <= 1) {
    s->drop_ttl++;
    return -1;
  }
  // TTL - 1: the checksum word (TTL, protocol) drops by 0x0100; one's complement update.
  ip[8]--;
  uint32_t sum = ((uint32_t)ip[10] << 8 | ip[11]) + 0x0100;
  sum = (sum & 0xffff) + (sum >> 16);
  ip[10] = (uint8_t)(sum >> 8);
  ip[11] = (uint8_t)sum;
  for (int i = 0; i < 6; i++) {
    f[i] = s->port[out].next_mac[i];
    f[6 + i] = s->port[out].mac[i];
  }
  return out;
}

void fwd_main(struct fwd_state* s) {
  s->upcalls++;
  // Buffers back from the kernel: sent, refused or unused.
  for (int p = 0; p < 2; p++) {
    struct uls_ring* c = &rings(s, p)->comp;
    uint32_t prod = load_acquire(&c->producer), cons = c->consumer;
    for (; cons != prod; cons++) {
      struct uls_desc d = c->desc[cons & MASK];
      if (d.flags & ULS_DESC_INVALID)
        s->port[p].refused++;
      else if (d.flags & ULS_DESC_UNUSED)
        s->port[p].unused++;
      else
        s->port[p].sent++;
      put_free(s, d.off);
    }
    store_release(&c->consumer, cons);
  }
  // Received frames: forward in place.
  for (int p = 0; p < 2; p++) {
    struct uls_ring* r = &rings(s, p)->rx;
    uint32_t prod = load_acquire(&r->producer), cons = r->consumer;
    for (; cons != prod; cons++) {
      struct uls_desc d = r->desc[cons & MASK];
      s->port[p].rx++;
      int out = route(s, (uint8_t*)(s->region_base + d.off), d.len);
      if (out < 0) {
        put_free(s, d.off);
        continue;
      }
      struct uls_ring* t = &rings(s, out)->tx;
      uint32_t tprod = t->producer;
      if (tprod - load_acquire(&t->consumer) >= ULS_NET_RING_SIZE) {
        s->drop_tx_full++;
        put_free(s, d.off);
        continue;
      }
      t->desc[tprod & MASK].off = d.off;
      t->desc[tprod & MASK].len = d.len;
      t->desc[tprod & MASK].flags = 0;
      store_release(&t->producer, tprod + 1);
      s->port[out].tx++;
    }
    store_release(&r->consumer, cons);
  }
  // Keep both fill rings full while there are free buffers.
  for (int p = 0; p < 2; p++) {
    struct uls_ring* f = &rings(s, p)->fill;
    uint32_t prod = f->producer, cons = load_acquire(&f->consumer);
    while (prod - cons < ULS_NET_RING_SIZE && s->nfree > 0) {
      f->desc[prod & MASK].off = s->free[--s->nfree];
      prod++;
    }
    store_release(&f->producer, prod);
  }
}
