#include "sluice/common/thread_cache.h"

#include <gtest/gtest.h>

#include <malloc.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

namespace sluice::thread_cache {
namespace {


// Runs `body` on a thread of its own, so the cache it enables ends with it.
template <typename Body>
void on_new_thread(Body body) {
  std::thread t(body);
  t.join();
}

TEST(ThreadCache, BlocksAreDistinctAlignedAndHoldTheirSize) {
  on_new_thread([] {
    enable();
    std::vector<std::pair<void*, size_t>> blocks;
    for (size_t size : {0, 1, 15, 16, 17, 100, 1353, 2047, 2048, 2049, 100000}) {
      void* p = allocate(size);
      ASSERT_NE(p, nullptr);
      EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % alignof(std::max_align_t), 0u) << size;
      EXPECT_GE(malloc_usable_size(p), size);
      std::memset(p, 0xab, size);
      blocks.push_back({p, size});
    }
    for (size_t i = 0; i < blocks.size(); ++i) {
      for (size_t j = i + 1; j < blocks.size(); ++j) EXPECT_NE(blocks[i].first, blocks[j].first);
    }
    for (auto [p, size] : blocks) release(p, size);
  });
}

#ifndef SLUICE_THREAD_CACHE_PASSTHROUGH  // the cache exists only outside AddressSanitizer
TEST(ThreadCache, TheLastBlockFreedOfAClassIsTheNextHandedOut) {
  on_new_thread([] {
    enable();
    void* a = allocate(100);
    void* b = allocate(100);
    release(a, 100);
    release(b, 0);  // unsized: the class comes from the block's usable size
    EXPECT_EQ(cached_bytes(), 2 * 112u);
    // Same class (97..112 bytes): newest first.
    EXPECT_EQ(allocate(97), b);
    EXPECT_EQ(allocate(112), a);
    EXPECT_EQ(cached_bytes(), 0u);
    release(a, 112);
    release(b, 97);
  });
}
#endif

#ifdef SLUICE_THREAD_CACHE_PASSTHROUGH
TEST(ThreadCache, UnderAddressSanitizerNothingIsCachedEvenWhenEnabled) {
  // So that AddressSanitizer still sees every use after free.
  on_new_thread([] {
    enable();
    EXPECT_FALSE(enabled());
    void* a = allocate(64);
    release(a, 64);
    EXPECT_EQ(cached_bytes(), 0u);
  });
}
#endif

TEST(ThreadCache, AThreadThatDidNotEnableItCachesNothing) {
  on_new_thread([] {
    EXPECT_FALSE(enabled());
    void* a = allocate(64);
    release(a, 64);
    EXPECT_EQ(cached_bytes(), 0u);
  });
}

#ifndef SLUICE_THREAD_CACHE_PASSTHROUGH  // the cache exists only outside AddressSanitizer
TEST(ThreadCache, LargeBlocksAndBlocksBeyondTheBoundGoBackToMalloc) {
  on_new_thread([] {
    enable();
    void* large = allocate(kMaxCachedBlock + 1);
    release(large, kMaxCachedBlock + 1);
    EXPECT_EQ(cached_bytes(), 0u);
    std::vector<void*> blocks;
    for (size_t i = 0; i < kMaxCachedBytes / kMaxCachedBlock + 10; ++i) blocks.push_back(allocate(kMaxCachedBlock));
    for (void* p : blocks) release(p, kMaxCachedBlock);
    EXPECT_EQ(cached_bytes(), kMaxCachedBytes);
  });
}

// The program's operator new and delete are the cache's (src/common/operator_new.cc), in this
// test binary as in sluice: a frame freed by `delete` is the next `new` of its class.
#endif

#ifndef SLUICE_THREAD_CACHE_PASSTHROUGH  // the cache exists only outside AddressSanitizer
TEST(ThreadCache, OperatorNewAndDeleteGoThroughIt) {
  on_new_thread([] {
    enable();
    struct Frame {
      char bytes[300];
    };
    auto* first = new Frame;
    void* seen = first;
    delete first;
    EXPECT_EQ(cached_bytes(), 304u);
    auto second = std::make_unique<Frame>();
    EXPECT_EQ(static_cast<void*>(second.get()), seen);
    std::vector<char> v(1000);  // std::allocator: operator new, and sized delete at the end
    EXPECT_EQ(cached_bytes(), 0u);
  });
}
#endif

}  // namespace
}  // namespace sluice::thread_cache
