// The sandbox image's runtime: what the Stack's C++ needs from a C and C++ library, and nothing
// else, since an extension may make no system call but the return call.
//  - A heap in the region (kHeapOff, kHeapBytes): blocks of power-of-two size classes, carved
//    from the area in order and kept on per-class free lists when freed. The Stack allocates at
//    construction and while its vectors first grow; forwarding itself allocates nothing.
//  - memcpy, memmove, memset, memcmp, strlen, strnlen.
//  - The C++ library's error paths (a vector too long, out of memory, a pure virtual call): the
//    image records what happened in the control block, marks itself failed and ends the upcall
//    with a fault (ud2). The kernel counts the fault (ULS_IOC_STATS) and resumes the process
//    the upcall ran in as if nothing happened; later upcalls return at once.
// Built only into the image (sandbox/uls/BUILD), never into an ordinary program.
#include <cstddef>
#include <cstdint>
#include <new>
#include <string>

#include "sandbox/uls/image.h"
#include "sandbox/uls/image_runtime.h"

namespace ulsnet::uls {
namespace {

constexpr int kClasses = 20;       // 16 B .. 8 MiB
constexpr size_t kHeaderBytes = 16;  // before every block: its class

struct Heap {
  uint8_t* next = nullptr;
  uint8_t* end = nullptr;
  void* free_list[kClasses] = {};
  uint64_t used = 0, allocs = 0;
} g_heap;

ImageControl* g_control = nullptr;

int size_class(size_t n) {
  size_t b = 16;
  for (int c = 0; c < kClasses; ++c, b <<= 1)
    if (n <= b) return c;
  return -1;
}

void copy_string(char* dst, size_t cap, const char* a, const char* b) {
  size_t i = 0;
  for (const char* s : {a, b})
    for (; s && *s && i + 1 < cap; ++s) dst[i++] = *s;
  dst[i] = 0;
}

}  // namespace

void runtime_enter(ImageControl* c) { g_control = c; }

void heap_init(uint8_t* base, size_t bytes) {
  g_heap = Heap{};
  g_heap.next = base;
  g_heap.end = base + bytes;
}

uint64_t heap_used() { return g_heap.used; }
uint64_t heap_allocs() { return g_heap.allocs; }

[[noreturn]] void image_fail(const char* what, const char* detail) {
  if (g_control != nullptr) {
    copy_string(g_control->error, sizeof g_control->error, what, detail);
    __atomic_store_n(&g_control->phase, Phase::kFailed, __ATOMIC_RELEASE);
  }
  __builtin_trap();
}

void* heap_alloc(size_t n) {
  const int c = size_class(n);
  if (c < 0) image_fail("out of memory: allocation too large", nullptr);
  const size_t block = size_t(16) << c;
  void* p = g_heap.free_list[c];
  if (p != nullptr) {
    g_heap.free_list[c] = *static_cast<void**>(p);
  } else {
    if (size_t(g_heap.end - g_heap.next) < block + kHeaderBytes)
      image_fail("out of memory: the image's heap is full", nullptr);
    uint8_t* h = g_heap.next;
    g_heap.next += block + kHeaderBytes;
    *reinterpret_cast<uint64_t*>(h) = uint64_t(c);
    p = h + kHeaderBytes;
  }
  g_heap.used += block;
  ++g_heap.allocs;
  return p;
}

void heap_free(void* p) {
  if (p == nullptr) return;
  auto* h = static_cast<uint8_t*>(p) - kHeaderBytes;
  const uint64_t c = *reinterpret_cast<uint64_t*>(h);
  if (c >= uint64_t(kClasses)) image_fail("heap corrupted: a freed block has no size class", nullptr);
  *static_cast<void**>(p) = g_heap.free_list[c];
  g_heap.free_list[c] = p;
  g_heap.used -= size_t(16) << c;
}

}  // namespace ulsnet::uls

using ulsnet::uls::heap_alloc;
using ulsnet::uls::heap_free;
using ulsnet::uls::image_fail;

void* operator new(size_t n) { return heap_alloc(n); }
void* operator new[](size_t n) { return heap_alloc(n); }
void operator delete(void* p) noexcept { heap_free(p); }
void operator delete[](void* p) noexcept { heap_free(p); }
void operator delete(void* p, size_t) noexcept { heap_free(p); }
void operator delete[](void* p, size_t) noexcept { heap_free(p); }

namespace ulsnet {
// stack/fail.h: a configuration the Stack cannot work with.
void throw_invalid_argument(const std::string& what) { image_fail("invalid argument: ", what.c_str()); }
}  // namespace ulsnet

// The C++ library's error paths (bits/functexcept.h), reached only through a bug or exhaustion.
namespace std {
void __throw_bad_alloc() { image_fail("std::bad_alloc", nullptr); }
void __throw_bad_array_new_length() { image_fail("std::bad_array_new_length", nullptr); }
void __throw_length_error(const char* s) { image_fail("std::length_error: ", s); }
void __throw_logic_error(const char* s) { image_fail("std::logic_error: ", s); }
void __throw_out_of_range(const char* s) { image_fail("std::out_of_range: ", s); }
void __throw_out_of_range_fmt(const char* s, ...) { image_fail("std::out_of_range: ", s); }
void __throw_invalid_argument(const char* s) { image_fail("std::invalid_argument: ", s); }
}  // namespace std

extern "C" {

void __cxa_pure_virtual() { image_fail("pure virtual call", nullptr); }
void abort() { image_fail("abort", nullptr); }

// rep movsb / stosb: short and fast enough, and no loop the compiler could turn back into a
// call to the very function it is in.
void* memcpy(void* d, const void* s, size_t n) {
  void* r = d;
  __asm__ volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
  return r;
}

void* memmove(void* d, const void* s, size_t n) {
  if (d <= s || static_cast<const char*>(s) + n <= static_cast<char*>(d)) return memcpy(d, s, n);
  // Overlapping, destination after source: copy backwards.
  void* r = d;
  const char* sp = static_cast<const char*>(s) + n - 1;
  char* dp = static_cast<char*>(d) + n - 1;
  __asm__ volatile("std\n\trep movsb\n\tcld" : "+D"(dp), "+S"(sp), "+c"(n) : : "memory");
  return r;
}

void* memset(void* d, int c, size_t n) {
  void* r = d;
  __asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
  return r;
}

int memcmp(const void* a, const void* b, size_t n) {
  const auto* x = static_cast<const volatile unsigned char*>(a);
  const auto* y = static_cast<const volatile unsigned char*>(b);
  for (size_t i = 0; i < n; ++i)
    if (x[i] != y[i]) return x[i] < y[i] ? -1 : 1;
  return 0;
}

size_t strlen(const char* s) {
  const volatile char* p = s;
  while (*p) ++p;
  return size_t(p - s);
}

size_t strnlen(const char* s, size_t max) {
  const volatile char* p = s;
  size_t n = 0;
  while (n < max && p[n]) ++n;
  return n;
}

}  // extern "C"
