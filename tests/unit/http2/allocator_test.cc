#include "sluice/http2/allocator.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

namespace sluice::http2 {
namespace {

// nghttp2 relies on malloc's contract: distinct live blocks, realloc keeps the contents,
// calloc zeroes, malloc's alignment.
TEST(Http2Allocator, BlocksAreDistinctAlignedAndReused) {
  nghttp2_mem* mem = thread_allocator();
  std::vector<void*> blocks;
  for (size_t size : {1, 16, 32, 33, 200, 1000, 4096, 4097, 100000}) {
    void* p = mem->malloc(size, mem->mem_user_data);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % alignof(std::max_align_t), 0u) << size;
    std::memset(p, 0xab, size);
    blocks.push_back(p);
  }
  for (size_t i = 0; i < blocks.size(); ++i) {
    for (size_t j = i + 1; j < blocks.size(); ++j) EXPECT_NE(blocks[i], blocks[j]);
  }
  void* small = blocks[4];
  mem->free(small, mem->mem_user_data);
  // The same class is served from the cache (outside AddressSanitizer, which disables it).
  void* again = mem->malloc(180, mem->mem_user_data);
  ASSERT_NE(again, nullptr);
  if (kAllocatorCaches) EXPECT_EQ(again, small);
  mem->free(again, mem->mem_user_data);
  for (size_t i = 0; i < blocks.size(); ++i) {
    if (i != 4) mem->free(blocks[i], mem->mem_user_data);
  }
  mem->free(nullptr, mem->mem_user_data);
}

TEST(Http2Allocator, ReallocKeepsContentsAcrossClassesAndLargeBlocks) {
  nghttp2_mem* mem = thread_allocator();
  auto* p = static_cast<unsigned char*>(mem->malloc(20, mem->mem_user_data));
  for (int i = 0; i < 20; ++i) p[i] = static_cast<unsigned char>(i);
  for (size_t size : {30, 500, 4000, 9000, 70000, 100}) {
    p = static_cast<unsigned char*>(mem->realloc(p, size, mem->mem_user_data));
    ASSERT_NE(p, nullptr);
    for (int i = 0; i < 20; ++i) ASSERT_EQ(p[i], i) << size;
    std::memset(p + 20, 0xcd, size - 20);
  }
  EXPECT_EQ(mem->realloc(p, 0, mem->mem_user_data), nullptr);  // frees, like realloc(p, 0)
  void* fresh = mem->realloc(nullptr, 64, mem->mem_user_data);
  ASSERT_NE(fresh, nullptr);
  mem->free(fresh, mem->mem_user_data);
}

TEST(Http2Allocator, CallocZeroesReusedBlocksAndRefusesOverflow) {
  nghttp2_mem* mem = thread_allocator();
  void* dirty = mem->malloc(256, mem->mem_user_data);
  std::memset(dirty, 0xff, 256);
  mem->free(dirty, mem->mem_user_data);
  auto* zeroed = static_cast<unsigned char*>(mem->calloc(16, 16, mem->mem_user_data));
  ASSERT_NE(zeroed, nullptr);
  for (int i = 0; i < 256; ++i) ASSERT_EQ(zeroed[i], 0) << i;
  mem->free(zeroed, mem->mem_user_data);
  EXPECT_EQ(mem->calloc(SIZE_MAX / 2, 4, mem->mem_user_data), nullptr);
}

TEST(Http2Allocator, BlocksMayBeFreedOnAnotherThreadAndThreadsExitCleanly) {
  nghttp2_mem* mem = thread_allocator();
  std::vector<void*> blocks;
  std::thread other([&] {
    for (int i = 0; i < 1000; ++i) blocks.push_back(mem->malloc(48, mem->mem_user_data));
    for (int i = 0; i < 500; ++i) mem->free(blocks[i], mem->mem_user_data);  // cached there
  });
  other.join();  // its cache is given back to malloc at exit
  for (int i = 500; i < 1000; ++i) mem->free(blocks[i], mem->mem_user_data);  // cached here
}

}  // namespace
}  // namespace sluice::http2
