#pragma once
// Test data that never has to sit in memory: a deterministic byte stream generated on the fly,
// and a checksum that does not depend on how a stream was split into reads.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace sluice::testing {

// A 64-bit checksum of a byte stream. Feeding the same bytes in any split gives the same value.
class Checksum {
 public:
  void update(const char* data, size_t n);
  void update(std::string_view s) { update(s.data(), s.size()); }
  uint64_t bytes() const { return bytes_; }
  // Includes the pending tail and the length; the stream can continue afterwards.
  uint64_t value() const;

 private:
  static uint64_t mix(uint64_t h, uint64_t word);
  uint64_t h_ = 0xcbf29ce484222325ULL;
  uint64_t bytes_ = 0;
  unsigned char pending_[8] = {};
  size_t npending_ = 0;
};

uint64_t checksum_of(std::string_view s);

// N bytes of a fixed pseudo-random pattern (period 65521, a prime, so it never lines up with
// buffer sizes), produced piecewise.
class PatternStream {
 public:
  explicit PatternStream(uint64_t total, uint64_t start_offset = 0)
      : total_(total), offset_(start_offset) {}
  // Writes up to `n` bytes into `out`; returns how many (0 once `total` bytes were produced).
  size_t next(char* out, size_t n);
  uint64_t produced() const { return produced_; }
  uint64_t remaining() const { return total_ - produced_; }

 private:
  uint64_t total_;
  uint64_t offset_;
  uint64_t produced_ = 0;
};

// `n` pattern bytes as a string (for small bodies). Different `offset`s give different bytes.
std::string pattern_bytes(size_t n, uint64_t offset = 0);

// True when built with AddressSanitizer, or when SLUICE_SANITIZE_BUILD is set in the environment.
bool sanitized_build();

// VmRSS of this process in bytes, from /proc/self/status (0 if unreadable).
uint64_t current_rss_bytes();

}  // namespace sluice::testing
