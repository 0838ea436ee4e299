#pragma once
// The memory functions of this thread's nghttp2 sessions (nghttp2_session_*_new3): blocks nghttp2
// frees are kept per size class and handed out again, instead of going through malloc each time.
//
// Why: nghttp2 allocates and frees a handful of small blocks for every stream (its stream,
// each outbound frame, the copied header array) and a worker runs hundreds of streams at once,
// more than glibc's per-thread cache holds, so most of them took malloc's slow paths
// (callgrind, bench/instructions --h2c). A worker is one thread and a session never leaves it
// (DESIGN.md §1), so the cache is per thread and takes no lock; a block freed on another thread
// simply joins that thread's cache.
//
// Bounds: blocks of up to 4 KiB are cached, at most kMaxCachedBytes per size class per thread;
// larger blocks and anything beyond the bound go straight back to malloc. Under
// AddressSanitizer nothing is cached, so a use after free in a session is still caught.
#include <nghttp2/nghttp2.h>

#include <cstddef>

#if defined(__SANITIZE_ADDRESS__)
#define SLUICE_H2_ALLOCATOR_PASSTHROUGH 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLUICE_H2_ALLOCATOR_PASSTHROUGH 1
#endif
#endif

namespace sluice::http2 {

inline constexpr size_t kMaxCachedBytes = 256 * 1024;
#ifdef SLUICE_H2_ALLOCATOR_PASSTHROUGH
inline constexpr bool kAllocatorCaches = false;
#else
inline constexpr bool kAllocatorCaches = true;
#endif

// The allocator for sessions created on the calling thread; valid for the process's life.
nghttp2_mem* thread_allocator();

}  // namespace sluice::http2
