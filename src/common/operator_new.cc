// The program's replacements of the global operator new and delete (C++20 [new.delete]): every
// C++ allocation goes through the per-thread cache of thread_cache.h, including Boost.Asio's
// coroutine frames and handlers, which no allocator argument reaches. The array, nothrow and
// aligned forms are libstdc++'s: the first two call these, the aligned ones pair among
// themselves. Not replaced under AddressSanitizer, whose own operator new checks mismatches.
#include <new>

#include "sluice/common/thread_cache.h"

#ifndef SLUICE_THREAD_CACHE_PASSTHROUGH

namespace {

void* allocate_or_throw(std::size_t size) {
  while (true) {
    if (void* p = sluice::thread_cache::allocate(size)) return p;
    std::new_handler handler = std::get_new_handler();
    if (handler == nullptr) throw std::bad_alloc();
    handler();
  }
}

}  // namespace

void* operator new(std::size_t size) { return allocate_or_throw(size); }

void operator delete(void* p) noexcept { sluice::thread_cache::release(p, 0); }

void operator delete(void* p, std::size_t size) noexcept { sluice::thread_cache::release(p, size); }

#endif
