// What a fuzz target asserts: a property the code under test must keep for every input. A
// broken one prints where and aborts, so libFuzzer saves the input as a crash (which then goes
// into regressions/ with a test that replays it).
#pragma once

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond)                                                          \
  do {                                                                            \
    if (!(cond)) {                                                                \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                               \
    }                                                                             \
  } while (0)
