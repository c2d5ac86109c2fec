// In-guest test of /dev/uls (patch 0001): the region is at the same address with the same
// contents in two processes, and every bad request is refused with an error code (the harness
// also checks the console for kernel warnings). Run with uls.protect=0 (the region mapped
// read/write into processes); the protected region is tested by uls_upcall_test. Static; prints one line per check and
// "ULSNET-TEST uls_region pass|fail"; exit status 0 only if every check passed.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/uls.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

static int failures;
static void check(int ok, const char* what) {
  printf("uls_region: %s: %s\n", ok ? "ok" : "FAIL", what);
  if (!ok) ++failures;
}

static void* map_region(int fd, uint64_t addr, uint64_t len, int flags, off_t off) {
  return mmap((void*)(uintptr_t)addr, len, PROT_READ | PROT_WRITE, flags | MAP_FIXED_NOREPLACE, fd,
              off);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  int fd = open("/dev/uls", O_RDWR | O_CLOEXEC);
  check(fd >= 0, "open /dev/uls");
  if (fd < 0) {
    printf("ULSNET-TEST uls_region fail (%s)\n", strerror(errno));
    return 1;
  }
  struct uls_info info;
  memset(&info, 0xff, sizeof info);
  check(ioctl(fd, ULS_IOC_INFO, &info) == 0, "ULS_IOC_INFO");
  check(info.base == ULS_REGION_BASE && info.version == ULS_API_VERSION && info.flags == 0 &&
            info.size >= 4096 && info.size % 4096 == 0,
        "info: base, version, page-multiple size, not protected (booted with uls.protect=0)");

  // Bad requests: each refused with EINVAL, nothing mapped.
  void* p = map_region(fd, info.base + 4096, 4096, MAP_SHARED, 0);
  check(p == MAP_FAILED && errno == EINVAL, "mapping away from the base is refused");
  p = map_region(fd, info.base, info.size + 4096, MAP_SHARED, 0);
  check(p == MAP_FAILED && errno == EINVAL, "mapping more than the region is refused");
  p = map_region(fd, info.base, 4096, MAP_SHARED, 4096);
  check(p == MAP_FAILED && errno == EINVAL, "a non-zero offset is refused");
  p = map_region(fd, info.base, 4096, MAP_PRIVATE, 0);
  check(p == MAP_FAILED && errno == EINVAL, "a private (copy-on-write) mapping is refused");
  check(ioctl(fd, _IO(ULS_IOC_MAGIC, 0x7f), 0) == -1 && errno == ENOTTY, "an unknown ioctl is ENOTTY");
  check(ioctl(fd, ULS_IOC_INFO, (void*)16) == -1 && errno == EFAULT, "a bad ioctl pointer is EFAULT");

  // The region in this process, then in a child that maps it afresh.
  uint8_t* r = map_region(fd, info.base, info.size, MAP_SHARED, 0);
  check(r == (uint8_t*)(uintptr_t)info.base, "mapped at the base");
  if (r != (uint8_t*)(uintptr_t)info.base) {
    printf("ULSNET-TEST uls_region fail\n");
    return 1;
  }
  uint64_t* words = (uint64_t*)r;
  words[0] = 0x554c534e45543031ull;           // written by the parent
  words[1] = (uint64_t)(uintptr_t)&words[0];  // a pointer stored in the region
  r[info.size - 1] = 0x5a;                    // the last byte
  check(mremap(r, info.size, info.size * 2, 0) == MAP_FAILED, "the region cannot grow through mremap");

  pid_t pid = fork();
  if (pid == 0) {
    // The child drops the inherited mapping and maps the region through its own descriptor.
    munmap(r, info.size);
    int cfd = open("/dev/uls", O_RDWR | O_CLOEXEC);
    uint8_t* c = map_region(cfd, info.base, info.size, MAP_SHARED, 0);
    if (c != r) _exit(10);
    uint64_t* w = (uint64_t*)c;
    if (w[0] != 0x554c534e45543031ull) _exit(11);
    if (*(uint64_t*)(uintptr_t)w[1] != w[0]) _exit(12);  // the stored pointer works here too
    if (c[info.size - 1] != 0x5a) _exit(13);
    w[2] = (uint64_t)getpid();  // written by the child
    _exit(0);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  check(WIFEXITED(st) && WEXITSTATUS(st) == 0,
        "a second process sees the same data at the same address");
  check(words[2] == (uint64_t)pid, "and its writes are seen by the first");
  munmap(r, info.size);
  close(fd);
  printf("ULSNET-TEST uls_region %s\n", failures ? "fail" : "pass");
  return failures ? 1 : 0;
}
