#pragma once
// Spare read buffers of one size, per worker (one thread: no lock). A keep-alive connection
// gives its read buffer back while it waits for its next request and takes one when bytes
// arrive, so an idle connection holds no buffer (nginx frees its buffer the same way) and a
// busy one pays a vector push and pop, not malloc/free (freeing a 32 KiB block next to the top
// of the heap can make glibc trim the heap and fault the pages in again on the next request).
#include <cstddef>
#include <memory>
#include <vector>

namespace sluice {

class BufferPool {
 public:
  BufferPool(size_t buffer_size, size_t max_spare) : buffer_size_(buffer_size), max_spare_(max_spare) {}
  size_t buffer_size() const { return buffer_size_; }
  std::unique_ptr<char[]> take() {
    if (spare_.empty()) return std::unique_ptr<char[]>(new char[buffer_size_]);
    auto b = std::move(spare_.back());
    spare_.pop_back();
    return b;
  }
  // Keeps `buffer` (of `capacity` bytes) for the next take(), up to max_spare; buffers of
  // another size (grown for a large head) are freed.
  void give(std::unique_ptr<char[]> buffer, size_t capacity) {
    if (buffer && capacity == buffer_size_ && spare_.size() < max_spare_) spare_.push_back(std::move(buffer));
  }
  size_t spare() const { return spare_.size(); }

 private:
  size_t buffer_size_;
  size_t max_spare_;
  std::vector<std::unique_ptr<char[]>> spare_;
};

}  // namespace sluice
