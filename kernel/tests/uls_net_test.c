// In-guest test of the zero-copy network path (patch 0005) on one host whose two e1000 NICs sit
// on one QEMU hub (kernel/vm.sh --nics 2), so that what eth0 sends, eth1 receives:
//   - every bad bind is refused with its error code (name, device, driver, state, offsets,
//     alignment, overlap, flags, extension, owner, pointer, twice);
//   - bound, the NIC holds buffers from the fill ring; a frame the extension posts on eth0's tx
//     ring arrives on eth1's rx ring in one of eth1's pool buffers, byte for byte (the NIC wrote
//     it into the region: no copy), and eth0's buffer comes back on its completion ring;
//   - invalid tx descriptors are returned flagged invalid and counted, invalid fill entries are
//     skipped and counted, nonsense ring indices are counted and change nothing;
//   - unbinding hands the NIC's buffers back (flagged unused); unregistering unbinds.
// Static; prints one line per check and "ULSNET-TEST uls_net pass|fail".
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/uls.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kernel/guest/guest_util.h"

static int failures;
static void check(int ok, const char* what) {
  printf("uls_net: %s: %s\n", ok ? "ok" : "FAIL", what);
  if (!ok) ++failures;
}

#define CODE 0x10000u
#define RINGS0 0x30000u
#define RINGS1 0x34000u
#define STACK 0x40000u
#define POOL 0x100000u
#define POOL_SIZE 0x100000u  // 512 buffers: 255 on each fill ring, two spare
#define SPARE1 (POOL + 510u * ULS_NET_BUF_SIZE)
#define SPARE2 (POOL + 511u * ULS_NET_BUF_SIZE)

static int fd;
static struct uls_info info;
static uint32_t id;

static void rd(uint64_t off, void* p, size_t n) {
  if (pread(fd, p, n, (off_t)off) != (ssize_t)n) printf("uls_net: pread %llu: %s\n", (unsigned long long)off, strerror(errno));
}
static void wr(uint64_t off, const void* p, size_t n) {
  if (pwrite(fd, p, n, (off_t)off) != (ssize_t)n) printf("uls_net: pwrite %llu: %s\n", (unsigned long long)off, strerror(errno));
}
static uint32_t rd32(uint64_t off) {
  uint32_t v = 0;
  rd(off, &v, 4);
  return v;
}
static void wr32(uint64_t off, uint32_t v) { wr(off, &v, 4); }

#define RING(rings, which) ((rings) + offsetof(struct uls_net_rings, which))
#define PROD(r) ((r) + offsetof(struct uls_ring, producer))
#define CONS(r) ((r) + offsetof(struct uls_ring, consumer))
#define DESC(r, i) ((r) + offsetof(struct uls_ring, desc) + ((i) % ULS_NET_RING_SIZE) * sizeof(struct uls_desc))

static int bind_if(const char* name, uint32_t ext, uint32_t rings, uint32_t pool, uint32_t size,
                   uint32_t flags, uint32_t reserved) {
  struct uls_net_bind b;
  memset(&b, 0, sizeof b);
  size_t n = strlen(name);
  memcpy(b.ifname, name, n < sizeof b.ifname ? n : sizeof b.ifname);  // 16 bytes: no NUL
  b.id = ext;
  b.rings_off = rings;
  b.pool_off = pool;
  b.pool_size = size;
  b.flags = flags;
  b.reserved = reserved;
  return ioctl(fd, ULS_IOC_NET_BIND, &b) == 0 ? 0 : errno;
}
static int bind_ok(const char* name, uint32_t rings) { return bind_if(name, id, rings, POOL, POOL_SIZE, 0, 0); }

static struct uls_net_stats nstats(const char* name) {
  struct uls_net_stats s;
  memset(&s, 0, sizeof s);
  strcpy(s.ifname, name);
  if (ioctl(fd, ULS_IOC_NET_STATS, &s) != 0) printf("uls_net: stats %s: %s\n", name, strerror(errno));
  return s;
}
static int nstats_errno(const char* name) {
  struct uls_net_stats s;
  memset(&s, 0, sizeof s);
  strcpy(s.ifname, name);
  return ioctl(fd, ULS_IOC_NET_STATS, &s) == 0 ? 0 : errno;
}

// An upcall of the extension in this process: when it ends, its interfaces poll.
static void kick(void) {
  if (ioctl(fd, ULS_IOC_RAISE, &id) != 0) printf("uls_net: raise: %s\n", strerror(errno));
}

// Waits (bounded) until the 32-bit value at off reaches at least v.
static int wait_for(uint64_t off, uint32_t v) {
  for (int i = 0; i < 300; i++) {
    if ((int32_t)(rd32(off) - v) >= 0) return 1;
    struct timespec ts = {0, 10000000};
    nanosleep(&ts, NULL);
    kick();
  }
  return 0;
}

// Waits (bounded, kicking) until counter `field` of `name` reaches at least v; returns the stats.
#define WAIT_STAT(name, field, v)                           \
  ({                                                        \
    struct uls_net_stats ws_ = nstats(name);                \
    for (int i_ = 0; i_ < 300 && ws_.field < (v); i_++) {   \
      struct timespec t_ = {0, 10000000};                   \
      nanosleep(&t_, NULL);                                 \
      kick();                                               \
      ws_ = nstats(name);                                   \
    }                                                       \
    ws_;                                                    \
  })

static void prefill(uint32_t rings, uint32_t first) {
  struct uls_net_rings r;
  memset(&r, 0, sizeof r);
  for (uint32_t i = 0; i < 255; i++) r.fill.desc[i].off = POOL + (first + i) * ULS_NET_BUF_SIZE;
  r.fill.producer = 255;
  wr(rings, &r, sizeof r);
}

// After a restart, an e1000 may reset itself once more (its watchdog, in the first seconds); the
// reset hands the NIC's buffers back on the completion ring, flagged unused. Do what an extension
// does (put them back on the fill ring, then end an upcall so the NIC is refilled) until both
// NICs hold all their buffers and nothing came back for 2.5 s (bounded: 10 s).
static int recycle_unused(uint32_t rings) {
  uint32_t prod = rd32(PROD(RING(rings, comp))), cons = rd32(CONS(RING(rings, comp)));
  uint32_t fprod = rd32(PROD(RING(rings, fill)));
  int n = 0;
  for (; cons != prod; cons++) {
    struct uls_desc c;
    rd(DESC(RING(rings, comp), cons), &c, sizeof c);
    if (c.flags != ULS_DESC_UNUSED) continue;
    struct uls_desc f = {.off = c.off};
    wr(DESC(RING(rings, fill), fprod), &f, sizeof f);
    fprod++;
    n++;
  }
  wr32(PROD(RING(rings, fill)), fprod);
  wr32(CONS(RING(rings, comp)), cons);
  return n;
}

static int settle(void) {
  int quiet_ms = 0, resets = 0;
  for (int ms = 0; ms < 10000; ms += 100) {
    int n = recycle_unused(RINGS0) + recycle_unused(RINGS1);
    if (n) {
      resets++;
      quiet_ms = 0;
    }
    kick();
    struct uls_net_stats a = nstats("eth0"), b = nstats("eth1");
    if (a.nic_buffers == 255 && b.nic_buffers == 255 && (quiet_ms += 100) >= 2500) {
      printf("uls_net: settled after %d ms (%d self-resets recycled)\n", ms, resets);
      return 1;
    }
    struct timespec ts = {0, 100000000};
    nanosleep(&ts, NULL);
  }
  return 0;
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  fd = open("/dev/uls", O_RDWR | O_CLOEXEC);
  if (fd < 0 || ioctl(fd, ULS_IOC_INFO, &info) != 0) {
    printf("ULSNET-TEST uls_net fail (/dev/uls: %s)\n", strerror(errno));
    return 1;
  }
  // The extension only returns: the test drives the rings itself, between upcalls.
  // mov $ULS_SYSCALL_RETURN, %eax; syscall; ud2
  static const uint8_t ret_blob[] = {0xb8, ULS_SYSCALL_RETURN & 0xff, (ULS_SYSCALL_RETURN >> 8) & 0xff, 0x00, 0x00,
                                     0x0f, 0x05, 0x0f, 0x0b};
  wr(CODE, ret_blob, sizeof ret_blob);
  struct uls_extension e;
  memset(&e, 0, sizeof e);
  e.entry = info.base + CODE;
  e.stack_base = info.base + STACK;
  e.stack_size = 0x4000;
  snprintf(e.name, sizeof e.name, "net-test");
  check(ioctl(fd, ULS_IOC_REGISTER, &e) == 0, "an extension is registered");
  id = e.id;
  prefill(RINGS0, 0);
  prefill(RINGS1, 255);
  check(system("ip link set eth0 up && ip link set eth1 up") == 0, "eth0 and eth1 are up");

  // 1. Bad binds.
  char longname[17];
  memset(longname, 'x', sizeof longname);
  longname[16] = 0;
  check(bind_if(longname, id, RINGS0, POOL, POOL_SIZE, 0, 0) == EINVAL, "a name without its NUL is EINVAL");
  check(bind_if("", id, RINGS0, POOL, POOL_SIZE, 0, 0) == EINVAL, "an empty name is EINVAL");
  check(bind_if("nosuch0", id, RINGS0, POOL, POOL_SIZE, 0, 0) == ENODEV, "an unknown interface is ENODEV");
  check(bind_if("lo", id, RINGS0, POOL, POOL_SIZE, 0, 0) == EOPNOTSUPP, "a driver without the path (lo) is EOPNOTSUPP");
  check(bind_if("eth0", id, RINGS0 + 8, POOL, POOL_SIZE, 0, 0) == EINVAL, "misaligned rings are EINVAL");
  check(bind_if("eth0", id, (uint32_t)info.size - 4096, POOL, POOL_SIZE, 0, 0) == EINVAL, "rings running past the region are EINVAL");
  check(bind_if("eth0", id, (uint32_t)info.size, POOL, POOL_SIZE, 0, 0) == EINVAL, "rings past the region are EINVAL");
  check(bind_if("eth0", id, RINGS0, POOL + 8, POOL_SIZE, 0, 0) == EINVAL, "a misaligned pool is EINVAL");
  check(bind_if("eth0", id, RINGS0, POOL, 0, 0, 0) == EINVAL, "an empty pool is EINVAL");
  check(bind_if("eth0", id, RINGS0, POOL, 0x1800, 0, 0) == EINVAL, "a pool size off the page size is EINVAL");
  check(bind_if("eth0", id, RINGS0, POOL, (uint32_t)info.size, 0, 0) == EINVAL, "a pool running past the region is EINVAL");
  check(bind_if("eth0", id, RINGS0, 0xfffff000u, 0x2000, 0, 0) == EINVAL, "a pool past the region (wrapping) is EINVAL");
  check(bind_if("eth0", id, POOL, POOL, POOL_SIZE, 0, 0) == EINVAL, "rings inside the pool are EINVAL");
  check(bind_if("eth0", id, RINGS0, POOL, POOL_SIZE, 1, 0) == EINVAL, "unknown flags are EINVAL");
  check(bind_if("eth0", id, RINGS0, POOL, POOL_SIZE, 0, 1) == EINVAL, "a non-zero reserved field is EINVAL");
  check(bind_if("eth0", 0, RINGS0, POOL, POOL_SIZE, 0, 0) == ENOENT, "extension 0 is ENOENT");
  check(bind_if("eth0", ULS_MAX_EXTENSIONS, RINGS0, POOL, POOL_SIZE, 0, 0) == ENOENT, "an unregistered extension is ENOENT");
  check(ioctl(fd, ULS_IOC_NET_BIND, (void*)16) == -1 && errno == EFAULT, "a bad pointer is EFAULT");
  check(system("ip link set eth1 down") == 0 && bind_ok("eth1", RINGS1) == ENETDOWN, "an interface that is down is ENETDOWN");
  check(system("ip link set eth1 up") == 0, "eth1 up again");
  pid_t pid = fork();
  if (pid == 0) _exit(bind_ok("eth0", RINGS0) == EPERM ? 0 : 1);
  int st = 0;
  waitpid(pid, &st, 0);
  check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "another process binding to this extension is EPERM");

  // 2. Binding.
  check(bind_ok("eth0", RINGS0) == 0, "eth0 is bound");
  check(bind_ok("eth0", RINGS0) == EBUSY, "twice is EBUSY");
  check(bind_ok("eth1", RINGS0) == EBUSY, "eth1 on eth0's rings is EBUSY");
  check(bind_ok("eth1", RINGS1) == 0, "eth1 is bound on its own rings, the same pool");
  check(guest_wait_carrier("eth0") && guest_wait_carrier("eth1"), "both report their link again");
  check(settle(), "both NICs hold all their buffers, steadily");
  struct uls_net_stats s0 = nstats("eth0"), s1 = nstats("eth1");
  printf("uls_net: bound: eth0 nic_buffers=%llu rx=%llu fill_cons=%u; eth1 nic_buffers=%llu rx=%llu fill_cons=%u\n",
         (unsigned long long)s0.nic_buffers, (unsigned long long)s0.rx_frames, rd32(CONS(RING(RINGS0, fill))),
         (unsigned long long)s1.nic_buffers, (unsigned long long)s1.rx_frames, rd32(CONS(RING(RINGS1, fill))));
  check(s0.nic_buffers == 255 && s1.nic_buffers == 255 &&
            rd32(CONS(RING(RINGS0, fill))) == rd32(PROD(RING(RINGS0, fill))) &&
            rd32(CONS(RING(RINGS1, fill))) == rd32(PROD(RING(RINGS1, fill))),
        "each NIC took its 255 receive buffers from its fill ring");
  // Where every ring stands now (a self-reset above moves the completion and fill indices).
  const uint32_t tx0 = rd32(PROD(RING(RINGS0, tx))), comp0 = rd32(CONS(RING(RINGS0, comp)));
  const uint32_t rx1 = rd32(PROD(RING(RINGS1, rx))), fill1 = rd32(PROD(RING(RINGS1, fill)));
  check(nstats_errno("nosuch0") == ENOENT && nstats_errno("lo") == ENOENT, "NET_STATS of an unbound name is ENOENT");

  // 3. A frame from eth0's tx ring to eth1's rx ring, through the wire, no copy.
  uint8_t frame[64];
  memset(frame, 0xff, 6);  // broadcast
  guest_if_mac("eth0", frame + 6);
  frame[12] = 0x88;
  frame[13] = 0xb5;  // local experimental ethertype: the kernel has no protocol for it
  for (int i = 14; i < 64; i++) frame[i] = (uint8_t)(i * 7 + 3);
  wr(SPARE1, frame, sizeof frame);
  struct uls_desc d = {.off = SPARE1, .len = 64};
  wr(DESC(RING(RINGS0, tx), tx0), &d, sizeof d);
  wr32(PROD(RING(RINGS0, tx)), tx0 + 1);
  kick();
  check(wait_for(PROD(RING(RINGS1, rx)), rx1 + 1) && wait_for(PROD(RING(RINGS0, comp)), comp0 + 1),
        "the frame went out of eth0 and came in on eth1");
  struct uls_desc got, back;
  rd(DESC(RING(RINGS1, rx), rx1), &got, sizeof got);
  rd(DESC(RING(RINGS0, comp), comp0), &back, sizeof back);
  uint8_t in[64] = {0};
  rd(got.off, in, sizeof in);
  printf("uls_net: rx[0] off=%u len=%u; comp[0] off=%u flags=%u; rx producer %u, comp producer %u\n", got.off, got.len,
         back.off, back.flags, rd32(PROD(RING(RINGS1, rx))), rd32(PROD(RING(RINGS0, comp))));
  check(got.len == 64 && got.off >= POOL + 255 * ULS_NET_BUF_SIZE && got.off < SPARE1 &&
            memcmp(in, frame, 64) == 0,
        "it is in one of eth1's pool buffers, byte for byte (written there by the NIC)");
  check(back.off == SPARE1 && back.flags == 0, "eth0's buffer came back on its completion ring as sent");
  wr32(CONS(RING(RINGS1, rx)), rx1 + 1);
  wr32(CONS(RING(RINGS0, comp)), comp0 + 1);
  s0 = nstats("eth0");
  s1 = nstats("eth1");
  check(s0.tx_frames == 1 && s0.completions == 1 && s1.rx_frames == 1 && s1.rx_bytes == 64,
        "counted: one frame sent by eth0, one received by eth1");
  check(s1.nic_buffers == 254 && s1.fill_empty >= 1, "eth1's NIC is one buffer short (its fill ring is empty: counted)");

  // 4. Invalid tx descriptors come back flagged, nothing is sent.
  struct uls_desc bad[4] = {{.off = CODE, .len = 64}, {.off = SPARE2 + 8, .len = 64}, {.off = SPARE2, .len = 10}, {.off = SPARE2, .len = 2000}};
  for (uint32_t i = 0; i < 4; i++) wr(DESC(RING(RINGS0, tx), tx0 + 1 + i), &bad[i], sizeof bad[i]);
  wr32(PROD(RING(RINGS0, tx)), tx0 + 5);
  kick();
  check(wait_for(PROD(RING(RINGS0, comp)), comp0 + 5), "four invalid descriptors came back");
  int flagged = 0;
  for (uint32_t i = 1; i < 5; i++) {
    struct uls_desc c;
    rd(DESC(RING(RINGS0, comp), comp0 + i), &c, sizeof c);
    flagged += c.flags == ULS_DESC_INVALID;
  }
  wr32(CONS(RING(RINGS0, comp)), comp0 + 5);
  s0 = nstats("eth0");
  check(flagged == 4 && s0.tx_invalid == 4 && s0.tx_frames == 1, "flagged invalid, counted, none sent");

  // 5. Fill entries: an invalid one is skipped (counted), a valid one feeds the NIC.
  struct uls_desc f1 = {.off = 0x10}, f2 = {.off = SPARE2};
  wr(DESC(RING(RINGS1, fill), fill1), &f1, sizeof f1);
  wr(DESC(RING(RINGS1, fill), fill1 + 1), &f2, sizeof f2);
  wr32(PROD(RING(RINGS1, fill)), fill1 + 2);
  kick();
  check(wait_for(CONS(RING(RINGS1, fill)), fill1 + 2), "eth1 consumed both fill entries");
  s1 = nstats("eth1");
  check(s1.fill_invalid == 1 && s1.nic_buffers == 255, "the invalid one is counted, the valid one is with the NIC");

  // 6. Nonsense indices are counted and change nothing.
  uint32_t cons0 = rd32(CONS(RING(RINGS0, tx)));
  wr32(PROD(RING(RINGS0, tx)), cons0 + 1000);
  kick();
  s0 = WAIT_STAT("eth0", ring_corrupt, 1);
  printf("uls_net: eth0 ring_corrupt=%llu tx_frames=%llu\n", (unsigned long long)s0.ring_corrupt,
         (unsigned long long)s0.tx_frames);
  check(s0.ring_corrupt >= 1 && s0.tx_frames == 1 && rd32(CONS(RING(RINGS0, tx))) == cons0,
        "a tx producer 1000 ahead is counted as corrupt, nothing sent");
  wr32(PROD(RING(RINGS0, tx)), cons0);
  uint32_t rxp = rd32(PROD(RING(RINGS1, rx)));
  wr32(CONS(RING(RINGS1, rx)), rxp + 5000);  // makes the rx ring look over-full
  d.off = SPARE1;
  wr(DESC(RING(RINGS0, tx), cons0), &d, sizeof d);
  wr32(PROD(RING(RINGS0, tx)), cons0 + 1);
  kick();
  wait_for(PROD(RING(RINGS0, comp)), comp0 + 6);
  s1 = WAIT_STAT("eth1", rx_ring_full, 1);
  printf("uls_net: eth1 rx_ring_full=%llu ring_corrupt=%llu\n", (unsigned long long)s1.rx_ring_full,
         (unsigned long long)s1.ring_corrupt);
  check(s1.rx_ring_full == 1 && s1.ring_corrupt >= 1 && rd32(PROD(RING(RINGS1, rx))) == rxp,
        "a frame meeting a nonsense rx consumer is a counted drop, not delivered");
  wr32(CONS(RING(RINGS1, rx)), rxp);

  // 7. Unbinding gives the NIC's buffers back; only the owner may; unregistering unbinds.
  char name[ULS_IFNAMSIZ] = "eth1";
  pid = fork();
  if (pid == 0) _exit(ioctl(fd, ULS_IOC_NET_UNBIND, name) == -1 && errno == EPERM ? 0 : 1);
  waitpid(pid, &st, 0);
  check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "another process unbinding it is EPERM");
  char none[ULS_IFNAMSIZ] = "nosuch0";
  check(ioctl(fd, ULS_IOC_NET_UNBIND, none) == -1 && errno == ENOENT, "unbinding an unbound name is ENOENT");
  uint32_t comp1 = rd32(PROD(RING(RINGS1, comp)));
  check(ioctl(fd, ULS_IOC_NET_UNBIND, name) == 0, "eth1 is unbound");
  uint32_t comp2 = rd32(PROD(RING(RINGS1, comp)));
  int unused = 0;
  for (uint32_t i = comp1; i != comp2; i++) {
    struct uls_desc c;
    rd(DESC(RING(RINGS1, comp), i), &c, sizeof c);
    unused += c.flags == ULS_DESC_UNUSED;
  }
  check(comp2 - comp1 == 255 && unused == 255, "its NIC's 255 buffers came back, flagged unused");
  check(nstats_errno("eth1") == ENOENT, "and it is no longer bound");
  check(ioctl(fd, ULS_IOC_UNREGISTER, &id) == 0 && nstats_errno("eth0") == ENOENT,
        "unregistering the extension unbinds eth0");

  printf("ULSNET-TEST uls_net %s\n", failures ? "fail" : "pass");
  return failures ? 1 : 0;
}
