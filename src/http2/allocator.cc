// Per-thread size-class cache for nghttp2's allocations. See allocator.h.
#include "sluice/http2/allocator.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace sluice::http2 {

namespace {

// Classes of 32, 64, ... 4096 bytes of payload. Each block starts with a header that names its
// class (kLarge: not cached), 16 bytes so that the payload keeps malloc's alignment.
constexpr size_t kHeader = 16;
constexpr size_t kClasses = 8;
constexpr uint32_t kLarge = kClasses;
constexpr size_t kMinShift = 5;

constexpr size_t class_size(uint32_t c) { return size_t{1} << (c + kMinShift); }

uint32_t class_of(size_t size) {
  if (size > class_size(kClasses - 1)) return kLarge;
  uint32_t c = 0;
  while (class_size(c) < size) ++c;
  return c;
}

struct FreeBlock {
  FreeBlock* next;
};

// Trivially destructible on purpose: a session freed while the thread exits (after Drain below
// ran) still finds valid memory here and, seeing `closed`, gives its block to free().
struct Cache {
  FreeBlock* head[kClasses];
  size_t bytes[kClasses];
  bool closed;
};

thread_local Cache cache{};

// Returns the cached blocks to malloc when the thread ends.
struct Drain {
  bool armed = false;
  ~Drain() {
    for (uint32_t c = 0; c < kClasses; ++c) {
      while (FreeBlock* b = cache.head[c]) {
        cache.head[c] = b->next;
        std::free(reinterpret_cast<char*>(b) - kHeader);
      }
      cache.bytes[c] = 0;
    }
    cache.closed = true;
  }
};

thread_local Drain drain;

uint32_t& class_field(void* payload) {
  return *reinterpret_cast<uint32_t*>(static_cast<char*>(payload) - kHeader);
}

void* allocate(size_t size, void*) {
  const uint32_t c = class_of(size);
#ifndef SLUICE_H2_ALLOCATOR_PASSTHROUGH
  if (c != kLarge && cache.head[c] != nullptr) {
    FreeBlock* b = cache.head[c];
    cache.head[c] = b->next;
    cache.bytes[c] -= class_size(c);
    return b;
  }
  drain.armed = true;  // constructs the thread's Drain, so the cache is emptied at exit
#endif
  char* raw = static_cast<char*>(std::malloc(kHeader + (c == kLarge ? size : class_size(c))));
  if (raw == nullptr) return nullptr;
  void* payload = raw + kHeader;
  class_field(payload) = c;
  return payload;
}

void release(void* payload, void*) {
  if (payload == nullptr) return;
#ifndef SLUICE_H2_ALLOCATOR_PASSTHROUGH
  const uint32_t c = class_field(payload);
  if (c != kLarge && !cache.closed && cache.bytes[c] + class_size(c) <= kMaxCachedBytes) {
    auto* b = static_cast<FreeBlock*>(payload);
    b->next = cache.head[c];
    cache.head[c] = b;
    cache.bytes[c] += class_size(c);
    return;
  }
#endif
  std::free(static_cast<char*>(payload) - kHeader);
}

void* allocate_zeroed(size_t count, size_t size, void* user_data) {
  if (size != 0 && count > SIZE_MAX / size) return nullptr;
  void* p = allocate(count * size, user_data);
  if (p != nullptr) std::memset(p, 0, count * size);
  return p;
}

void* reallocate(void* payload, size_t size, void* user_data) {
  if (payload == nullptr) return allocate(size, user_data);
  if (size == 0) {
    release(payload, user_data);
    return nullptr;
  }
  const uint32_t c = class_field(payload);
  if (c == kLarge) {
    // Stays a large block (possibly a smaller one): realloc keeps the header.
    char* raw = static_cast<char*>(std::realloc(static_cast<char*>(payload) - kHeader, kHeader + size));
    return raw == nullptr ? nullptr : raw + kHeader;
  }
  if (size <= class_size(c)) return payload;
  void* grown = allocate(size, user_data);
  if (grown == nullptr) return nullptr;
  std::memcpy(grown, payload, class_size(c));
  release(payload, user_data);
  return grown;
}

nghttp2_mem mem{nullptr, &allocate, &release, &allocate_zeroed, &reallocate};

}  // namespace

nghttp2_mem* thread_allocator() { return &mem; }

}  // namespace sluice::http2
