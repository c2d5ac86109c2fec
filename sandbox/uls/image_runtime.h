// The sandbox image's runtime (image_runtime.cc): its heap and its way of failing.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ulsnet::uls {

struct ImageControl;

// At the start of every upcall: where failures are reported.
void runtime_enter(ImageControl* c);
// Once, before anything allocates.
void heap_init(uint8_t* base, size_t bytes);
void* heap_alloc(size_t n);
void heap_free(void* p);
uint64_t heap_used();
uint64_t heap_allocs();
// Records what happened (what + detail) in the control block, marks the image failed and ends
// the upcall with a fault.
[[noreturn]] void image_fail(const char* what, const char* detail);

}  // namespace ulsnet::uls
