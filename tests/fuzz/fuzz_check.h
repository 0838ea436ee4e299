#pragma once
// Invariant checks for the fuzz targets. Unlike assert() they stay on in Release builds, where
// ctest replays the corpora, and a failed check aborts, which libFuzzer records as a crash.
#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond, what)                                                                  \
  do {                                                                                          \
    if (!(cond)) {                                                                              \
      std::fprintf(stderr, "%s:%d: invariant broken: %s (%s)\n", __FILE__, __LINE__, what, #cond); \
      std::abort();                                                                             \
    }                                                                                           \
  } while (0)
