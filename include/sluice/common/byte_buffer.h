#pragma once
// A contiguous read buffer: bytes [begin, end) are unconsumed. Growing keeps offsets valid, which
// the parser relies on while a head spans several reads.
#include <cstring>
#include <memory>

namespace sluice {

class ByteBuffer {
 public:
  explicit ByteBuffer(size_t capacity) : data_(new char[capacity]), capacity_(capacity) {}

  char* data() { return data_.get(); }
  const char* data() const { return data_.get(); }
  size_t begin() const { return begin_; }
  size_t end() const { return end_; }
  size_t size() const { return end_ - begin_; }
  size_t capacity() const { return capacity_; }
  char* write_ptr() { return data_.get() + end_; }
  size_t writable() const { return capacity_ - end_; }
  void commit(size_t n) { end_ += n; }
  // Marks bytes before `offset` consumed. Offsets stay valid (nothing moves) until compact(),
  // so views into consumed bytes can still be used by the exchange that parsed them.
  void consume_to(size_t offset) {
    if (offset > begin_) begin_ = offset < end_ ? offset : end_;
  }
  // Moves unconsumed bytes to the front; invalidates offsets and views.
  void compact() {
    if (begin_ == 0) return;
    if (begin_ == end_) {
      begin_ = end_ = 0;
      return;
    }
    std::memmove(data_.get(), data_.get() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  void grow(size_t capacity) {
    if (capacity <= capacity_) return;
    std::unique_ptr<char[]> bigger(new char[capacity]);
    std::memcpy(bigger.get(), data_.get(), end_);
    data_ = std::move(bigger);
    capacity_ = capacity;
  }

 private:
  std::unique_ptr<char[]> data_;
  size_t capacity_;
  size_t begin_ = 0;
  size_t end_ = 0;
};

}  // namespace sluice
