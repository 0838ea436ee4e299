// Per-thread size-class cache in front of malloc. See thread_cache.h.
#include "sluice/common/thread_cache.h"

#include <malloc.h>

#include <cstdlib>

namespace sluice::thread_cache {

namespace {

constexpr size_t kClasses = kMaxCachedBlock / kGranule;  // class c holds blocks of c * 16 bytes

struct FreeBlock {
  FreeBlock* next;
};

// Trivially destructible on purpose: a block freed while the thread exits (after Drain below
// ran) still finds valid memory here and, seeing `enabled` false, gives it to free().
struct Cache {
  FreeBlock* head[kClasses + 1];
  size_t bytes;
  bool enabled;
};

thread_local Cache cache{};

// Gives the lists back to malloc when the thread ends.
struct Drain {
  bool armed = false;
  ~Drain() {
    cache.enabled = false;
    for (FreeBlock*& head : cache.head) {
      while (FreeBlock* b = head) {
        head = b->next;
        std::free(b);
      }
    }
    cache.bytes = 0;
  }
};

thread_local Drain drain;

constexpr size_t class_of(size_t size) { return size == 0 ? 1 : (size + kGranule - 1) / kGranule; }

}  // namespace

void enable() {
#ifndef SLUICE_THREAD_CACHE_PASSTHROUGH
  drain.armed = true;  // constructs this thread's Drain, so the lists are emptied at exit
  cache.enabled = true;
#endif
}

bool enabled() { return cache.enabled; }

void* allocate(size_t size) {
  if (size > kMaxCachedBlock) return std::malloc(size);
  const size_t c = class_of(size);
  if (FreeBlock* b = cache.head[c]) {
    cache.head[c] = b->next;
    cache.bytes -= c * kGranule;
    // The next block of this class is read (its `next`) when it is handed out, often long
    // after it was freed, with hundreds of requests' memory touched in between: fetch it now.
    if (b->next != nullptr) __builtin_prefetch(b->next, 1);
    return b;
  }
  // Rounded up on every thread, not only caching ones: a block may be freed on another thread,
  // and a sized release there puts it on the list its size names.
  return std::malloc(c * kGranule);
}

void release(void* block, size_t size) {
  if (block == nullptr) return;
  if (!cache.enabled) {
    std::free(block);
    return;
  }
  size_t c;
  if (size != 0) {
    c = class_of(size);
  } else {
    // Unsized delete (Asio's recycled blocks, libstdc++'s array forms): the block holds at least
    // its class (allocate rounded it up), perhaps more, and the largest class it holds is as
    // good a list for it.
    c = malloc_usable_size(block) / kGranule;
  }
  if (size > kMaxCachedBlock || c > kClasses || cache.bytes + c * kGranule > kMaxCachedBytes) {
    std::free(block);
    return;
  }
  auto* b = static_cast<FreeBlock*>(block);
  b->next = cache.head[c];
  cache.head[c] = b;
  cache.bytes += c * kGranule;
}

size_t cached_bytes() { return cache.bytes; }

}  // namespace sluice::thread_cache
