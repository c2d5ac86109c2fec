// Small helpers shared by the static programs that run inside the virtual hosts (kernel/tests,
// bench/guest, sandbox/uls): the clock, a NIC's counters and address, its carrier,
// /proc/net/snmp fields, and the assembly an extension ends with.
#ifndef ULSNET_KERNEL_GUEST_GUEST_UTIL_H_
#define ULSNET_KERNEL_GUEST_GUEST_UTIL_H_

#include <linux/uls.h>

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define GUEST_STRINGIFY_(x) #x
#define GUEST_STRINGIFY(x) GUEST_STRINGIFY_(x)

// For extension blobs written in assembly (AT&T): the return call (ULS_SYSCALL_RETURN), which
// ends the upcall and restores the process it ran in; never returns.
#define GUEST_ASM_ULS_RETURN \
  "  mov $" GUEST_STRINGIFY(ULS_SYSCALL_RETURN) ", %eax\n" \
  "  syscall\n"

// For extension blobs written in assembly (AT&T): rax = CLOCK_MONOTONIC now in nanoseconds, by
// the clock_gettime system call (allowed inside an upcall), using 16 bytes of stack. Clobbers
// rcx, rdi, rsi, r11.
#define GUEST_ASM_MONOTONIC_NS_TO_RAX \
  "  sub $16, %rsp\n"                \
  "  mov $1, %edi\n" /* CLOCK_MONOTONIC */ \
  "  mov %rsp, %rsi\n"               \
  "  mov $228, %eax\n" /* clock_gettime */ \
  "  syscall\n"                      \
  "  mov (%rsp), %rax\n"             \
  "  imul $1000000000, %rax, %rax\n" \
  "  add 8(%rsp), %rax\n"            \
  "  add $16, %rsp\n"

// Makes the QEMU instruction-count plugin (kernel/qemu/insn_count.c, kernel/vm.sh --count-insns)
// write the guest's instruction counts so far, tagged TAG (a number 0..255); a no-op otherwise.
#define GUEST_INSN_MARK(tag) \
  __asm__ volatile(".byte 0x0f, 0x1f, 0x84, 0x00, 0x55, 0x4c, 0x53, " #tag ::: "memory")

static inline uint64_t guest_now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

// /sys/class/net/IF/statistics/NAME, or 0.
static inline uint64_t guest_if_stat(const char* ifname, const char* name) {
  char path[128];
  snprintf(path, sizeof path, "/sys/class/net/%s/statistics/%s", ifname, name);
  FILE* f = fopen(path, "r");
  if (!f) return 0;
  unsigned long long v = 0;
  if (fscanf(f, "%llu", &v) != 1) v = 0;
  fclose(f);
  return v;
}

// e1000 statistics registers (Intel 8254x manual, 13.7): missed packets (the NIC had no free
// receive descriptor) and receive-no-buffers.
#define GUEST_E1000_MPC 0x04010
#define GUEST_E1000_RNBC 0x040A0

// One 32-bit register of the interface's e1000, read from its BAR 0 (the sysfs resource0 file,
// mapped read-only), or -1 when it cannot be read. Why not the driver's counters: Linux's e1000
// treats MPC and RNBC as clear-on-read and adds each read to its total (rx_missed_errors), but
// QEMU's model never clears them, so the driver's total grows by the whole count at every
// statistics update (every 2 s). The register itself is the model's exact count since the NIC's
// last reset. Reading these two has no side effect (unlike the clear-on-read ones the driver
// relies on, which must not be read here).
static inline int64_t guest_e1000_reg(const char* ifname, uint32_t offset) {
  char path[128];
  snprintf(path, sizeof path, "/sys/class/net/%s/device/resource0", ifname);
  int fd = open(path, O_RDONLY | O_SYNC);
  if (fd < 0) return -1;
  const size_t len = 0x20000;  // the e1000's register window
  void* m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
  close(fd);
  if (m == MAP_FAILED) return -1;
  const uint32_t v = *(volatile const uint32_t*)((const char*)m + offset);
  munmap(m, len);
  return (int64_t)v;
}

// "aa:bb:cc:dd:ee:ff" -> mac; 0 or -1.
static inline int guest_parse_mac(const char* s, uint8_t mac[6]) {
  unsigned v[6];
  if (sscanf(s, "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6) return -1;
  for (int i = 0; i < 6; i++) mac[i] = (uint8_t)v[i];
  return 0;
}

// The interface's own MAC address; 0 or -1.
static inline int guest_if_mac(const char* ifname, uint8_t mac[6]) {
  char path[64], buf[32] = {0};
  snprintf(path, sizeof path, "/sys/class/net/%s/address", ifname);
  FILE* f = fopen(path, "r");
  if (!f) return -1;
  int ok = fgets(buf, sizeof buf, f) != NULL;
  fclose(f);
  return ok ? guest_parse_mac(buf, mac) : -1;
}

// The interface's MTU from sysfs, or 0 if it cannot be read.
static inline unsigned guest_if_mtu(const char* ifname) {
  char path[64], buf[16] = {0};
  snprintf(path, sizeof path, "/sys/class/net/%s/mtu", ifname);
  FILE* f = fopen(path, "r");
  if (!f) return 0;
  int ok = fgets(buf, sizeof buf, f) != NULL;
  fclose(f);
  return ok ? (unsigned)strtoul(buf, NULL, 10) : 0;
}

// Waits up to 10 s for the interface's carrier (a restarted e1000 reports its link once its
// watchdog ran); 1 if it is up.
static inline int guest_wait_carrier(const char* ifname) {
  char path[64];
  snprintf(path, sizeof path, "/sys/class/net/%s/carrier", ifname);
  for (int i = 0; i < 500; i++) {
    FILE* f = fopen(path, "r");
    int c = f ? fgetc(f) : EOF;
    if (f) fclose(f);
    if (c == '1') return 1;
    struct timespec ts = {0, 20000000};
    nanosleep(&ts, NULL);
  }
  return 0;
}

// Field number `index` (0 = the first after the name) of the "SECTION:" value line of
// /proc/net/snmp (e.g. "Ip", 2 = InReceives; "Udp", 4 = RcvbufErrors), or 0.
static inline uint64_t guest_snmp(const char* section, int index) {
  FILE* f = fopen("/proc/net/snmp", "r");
  if (!f) return 0;
  char line[1024];
  size_t n = strlen(section);
  int header = 0;
  uint64_t v = 0;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, section, n) != 0 || line[n] != ':') continue;
    if (!header) {
      header = 1;
      continue;
    }
    char* p = line + n + 1;
    for (int i = 0; i <= index && p; i++) {
      char* end;
      unsigned long long x = strtoull(p, &end, 10);
      if (end == p) break;
      if (i == index) v = x;
      p = end;
    }
    break;
  }
  fclose(f);
  return v;
}

// Packets the kernel's softnet layer processed, summed over CPUs (/proc/net/softnet_stat, first
// column): how many frames went up the kernel's receive path.
static inline uint64_t guest_softnet_processed(void) {
  FILE* f = fopen("/proc/net/softnet_stat", "r");
  if (!f) return 0;
  char line[512];
  uint64_t v = 0;
  while (fgets(line, sizeof line, f)) v += strtoull(line, NULL, 16);
  fclose(f);
  return v;
}

#endif  // ULSNET_KERNEL_GUEST_GUEST_UTIL_H_
