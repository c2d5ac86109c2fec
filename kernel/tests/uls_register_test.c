// In-guest test of extension registration (patch 0002): a valid extension is registered and
// read back; every invalid argument (outside the region, misaligned, malformed, twice,
// overlapping, someone else's, a full table, bad pointers) gets its error code. Static; prints
// one line per check and "ULSNET-TEST uls_register pass|fail"; exit 0 only if all passed.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/uls.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

static int failures;
static void check(int ok, const char* what) {
  printf("uls_register: %s: %s\n", ok ? "ok" : "FAIL", what);
  if (!ok) ++failures;
}

static struct uls_info info;

// A valid extension whose stack is page `slot` of the region's second half.
static struct uls_extension ext(unsigned slot) {
  struct uls_extension e;
  memset(&e, 0, sizeof e);
  e.entry = info.base + 64;
  e.stack_base = info.base + info.size / 2 + (uint64_t)slot * 4096;
  e.stack_size = 4096;
  e.state = info.base + 128;
  snprintf(e.name, sizeof e.name, "ext-%u", slot);
  return e;
}

// Registers `e`; returns 0 or the errno.
static int reg(int fd, struct uls_extension e, uint32_t* id) {
  if (ioctl(fd, ULS_IOC_REGISTER, &e) != 0) return errno;
  if (id) *id = e.id;
  return 0;
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  int fd = open("/dev/uls", O_RDWR | O_CLOEXEC);
  if (fd < 0 || ioctl(fd, ULS_IOC_INFO, &info) != 0) {
    printf("ULSNET-TEST uls_register fail (/dev/uls: %s)\n", strerror(errno));
    return 1;
  }

  uint32_t id = 0;
  check(reg(fd, ext(0), &id) == 0 && id >= 1 && id <= ULS_MAX_EXTENSIONS, "a valid extension is registered");
  struct uls_extension q;
  memset(&q, 0, sizeof q);
  q.id = id;
  check(ioctl(fd, ULS_IOC_QUERY, &q) == 0 && q.entry == info.base + 64 && q.stack_size == 4096 &&
            q.owner == getpid() && strcmp(q.name, "ext-0") == 0,
        "and read back, with its owner");

  struct uls_extension e = ext(1);
  e.entry = info.base + info.size;  // one past the end
  check(reg(fd, e, NULL) == EINVAL, "an entry outside the region is EINVAL");
  e = ext(1);
  e.entry = 0x1000;
  check(reg(fd, e, NULL) == EINVAL, "an entry in process memory is EINVAL");
  e = ext(1);
  e.stack_base += 8;
  check(reg(fd, e, NULL) == EINVAL, "a misaligned stack is EINVAL");
  e = ext(1);
  e.stack_size = 0;
  check(reg(fd, e, NULL) == EINVAL, "an empty stack is EINVAL");
  e = ext(1);
  e.stack_size = info.size;  // runs past the end of the region
  check(reg(fd, e, NULL) == EINVAL, "a stack running past the region is EINVAL");
  e = ext(1);
  e.stack_size = ~0ull & ~4095ull;  // overflow of base + size
  check(reg(fd, e, NULL) == EINVAL, "a stack size that overflows is EINVAL");
  e = ext(1);
  e.state = info.base - 1;
  check(reg(fd, e, NULL) == EINVAL, "a state outside the region is EINVAL");
  e = ext(1);
  e.flags = 1;
  check(reg(fd, e, NULL) == EINVAL, "unknown flags are EINVAL");
  e = ext(1);
  e.reserved = 7;
  check(reg(fd, e, NULL) == EINVAL, "a non-zero reserved field is EINVAL");
  e = ext(1);
  memset(e.name, 'x', sizeof e.name);
  check(reg(fd, e, NULL) == EINVAL, "a name without its NUL is EINVAL");
  check(reg(fd, ext(0), NULL) == EEXIST, "the same extension twice is EEXIST");
  e = ext(1);
  e.stack_base = ext(0).stack_base;
  e.entry += 8;
  check(reg(fd, e, NULL) == EBUSY, "a stack overlapping another extension's is EBUSY");
  check(ioctl(fd, ULS_IOC_REGISTER, (void*)8) == -1 && errno == EFAULT, "a bad pointer is EFAULT");

  uint32_t bad = 0;
  check(ioctl(fd, ULS_IOC_UNREGISTER, &bad) == -1 && errno == ENOENT, "unregistering id 0 is ENOENT");
  bad = ULS_MAX_EXTENSIONS + 1;
  check(ioctl(fd, ULS_IOC_UNREGISTER, &bad) == -1 && errno == ENOENT, "an id past the table is ENOENT");
  memset(&q, 0, sizeof q);
  q.id = ULS_MAX_EXTENSIONS;
  check(ioctl(fd, ULS_IOC_QUERY, &q) == -1 && errno == ENOENT, "querying a free id is ENOENT");

  // Another process may not remove it.
  pid_t pid = fork();
  if (pid == 0) {
    uint32_t x = id;
    _exit(ioctl(fd, ULS_IOC_UNREGISTER, &x) == -1 && errno == EPERM ? 0 : 1);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "another process unregistering it is EPERM");

  // Fill the table, then one more.
  uint32_t ids[ULS_MAX_EXTENSIONS];
  int n = 0, rc = 0;
  for (unsigned s = 1; s < ULS_MAX_EXTENSIONS + 4 && rc == 0; ++s) {
    rc = reg(fd, ext(s), &ids[n]);
    if (rc == 0) ++n;
  }
  check(rc == ENOSPC && n == ULS_MAX_EXTENSIONS - 1, "a full table is ENOSPC");
  for (int i = 0; i < n; ++i) ioctl(fd, ULS_IOC_UNREGISTER, &ids[i]);

  check(ioctl(fd, ULS_IOC_UNREGISTER, &id) == 0, "the owner unregisters it");
  memset(&q, 0, sizeof q);
  q.id = id;
  check(ioctl(fd, ULS_IOC_QUERY, &q) == -1 && errno == ENOENT, "and it is gone");
  check(reg(fd, ext(0), &id) == 0, "its slot can be registered again");
  ioctl(fd, ULS_IOC_UNREGISTER, &id);
  close(fd);
  printf("ULSNET-TEST uls_register %s\n", failures ? "fail" : "pass");
  return failures ? 1 : 0;
}
