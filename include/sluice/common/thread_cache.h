#pragma once
// A per-thread cache of small blocks in front of malloc, for every C++ allocation (the program's
// `operator new` and `operator delete`, replaced in src/common/operator_new.cc, come here).
//
// Why: an HTTP/2 stream allocates about 15 blocks (coroutine frames of the exchange and of
// Boost.Asio's `async_result` initiations, completion handlers, timer waits; Asio 1.74 recycles
// one block per kind and thread) and a worker runs hundreds of streams at once. glibc's
// per-thread cache holds 7 blocks per size, so nearly every one of them took `_int_malloc` /
// `_int_free` (with `unlink_chunk` and `malloc_consolidate`): ~10 % of a worker's CPU at
// h2load -c50 -m10 (perf record -e cpu-clock), and the CPU per stream grew by 6.4 µs from 100 to
// 500 streams in flight, HAProxy's (own pools) by 2 µs
// (bench/results/2026-12-02-h2c-profile.md). A block freed here goes on a free list of its
// size class and is the next one handed out: the most recently used memory, still in cache.
//
// Only threads that enable it cache (the workers: a worker is one thread, DESIGN.md §1, so the
// lists take no lock); elsewhere blocks go straight to malloc and free, so what the control
// thread frees after a reload still reaches malloc_trim. A block freed on another thread than
// the one that allocated it simply joins that thread's lists (or goes to free()).
//
// Bounds: blocks of up to kMaxCachedBlock bytes, in classes of 16 bytes; at most
// kMaxCachedBytes per thread; the lists go back to malloc when the thread ends. Under
// AddressSanitizer nothing is cached and operator new is not replaced, so a use after free is
// still caught.
#include <cstddef>

#if defined(__SANITIZE_ADDRESS__)
#define SLUICE_THREAD_CACHE_PASSTHROUGH 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLUICE_THREAD_CACHE_PASSTHROUGH 1
#endif
#endif

namespace sluice::thread_cache {

inline constexpr size_t kGranule = 16;
inline constexpr size_t kMaxCachedBlock = 2048;
inline constexpr size_t kMaxCachedBytes = 4 * 1024 * 1024;

// From now until it ends, the calling thread caches the blocks it frees.
void enable();
bool enabled();

// malloc's contract (nullptr when out of memory); every block of up to kMaxCachedBlock bytes is
// rounded up to its class, so a later release() may put it on that class's list.
void* allocate(size_t size);
// `size`: the size it was allocated with, or 0 when unknown (then malloc_usable_size tells).
void release(void* block, size_t size);

// Bytes on the calling thread's lists (for tests).
size_t cached_bytes();

}  // namespace sluice::thread_cache
