#pragma once
// Header fields received over HTTP/2, kept across the streams that reuse them (downstream
// streams and upstream stream sessions both recycle theirs).
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::http2 {

// Received header (or trailer) fields, copied out of nghttp2's buffers. clear() keeps every
// string and its capacity, so a reused stream copies the next request's fields without
// allocating (a vector of string pairs frees them all on clear(): one malloc and free per
// field longer than 15 bytes, callgrind, bench/instructions --h2c and --grpc).
class ReceivedFields {
 public:
  using Field = std::pair<std::string, std::string>;
  void clear() { count_ = 0; }
  // An empty field to fill in place; pop() takes the last one back.
  Field& add() {
    if (count_ == items_.size()) items_.emplace_back();
    Field& f = items_[count_++];
    f.first.clear();
    f.second.clear();
    return f;
  }
  void pop() { --count_; }
  void add(std::string_view name, std::string_view value) {
    Field& f = add();
    f.first.assign(name);
    f.second.assign(value);
  }
  size_t size() const { return count_; }
  bool empty() const { return count_ == 0; }
  const Field* begin() const { return items_.data(); }
  const Field* end() const { return items_.data() + count_; }

 private:
  std::vector<Field> items_;
  size_t count_ = 0;
};

}  // namespace sluice::http2
