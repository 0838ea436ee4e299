#include "support/stream_data.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>

#if defined(__SANITIZE_ADDRESS__)
#define SLUICE_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLUICE_TEST_ASAN 1
#endif
#endif

namespace sluice::testing {

namespace {

constexpr size_t kPatternPeriod = 65521;

const std::string& pattern() {
  static const std::string p = [] {
    std::string s(kPatternPeriod, '\0');
    std::mt19937_64 rng(0x5111CEull);
    for (char& c : s) c = static_cast<char>(rng() & 0xff);
    return s;
  }();
  return p;
}

}  // namespace

uint64_t Checksum::mix(uint64_t h, uint64_t word) {
  h ^= word;
  h *= 0x9e3779b97f4a7c15ULL;
  h ^= h >> 29;
  return h;
}

void Checksum::update(const char* data, size_t n) {
  bytes_ += n;
  const auto* p = reinterpret_cast<const unsigned char*>(data);
  while (n > 0 && npending_ > 0 && npending_ < 8) {
    pending_[npending_++] = *p++;
    --n;
    if (npending_ == 8) {
      uint64_t w;
      std::memcpy(&w, pending_, 8);
      h_ = mix(h_, w);
      npending_ = 0;
    }
  }
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    h_ = mix(h_, w);
    p += 8;
    n -= 8;
  }
  while (n > 0) {
    pending_[npending_++] = *p++;
    --n;
  }
}

uint64_t Checksum::value() const {
  uint64_t h = h_;
  if (npending_ > 0) {
    unsigned char tail[8] = {};
    std::memcpy(tail, pending_, npending_);
    uint64_t w;
    std::memcpy(&w, tail, 8);
    h = mix(h, w);
  }
  return mix(h, bytes_);
}

uint64_t checksum_of(std::string_view s) {
  Checksum c;
  c.update(s);
  return c.value();
}

size_t PatternStream::next(char* out, size_t n) {
  const std::string& p = pattern();
  n = static_cast<size_t>(std::min<uint64_t>(n, remaining()));
  size_t done = 0;
  while (done < n) {
    size_t at = static_cast<size_t>((offset_ + produced_) % kPatternPeriod);
    size_t take = std::min(n - done, kPatternPeriod - at);
    std::memcpy(out + done, p.data() + at, take);
    done += take;
    produced_ += take;
  }
  return n;
}

std::string pattern_bytes(size_t n, uint64_t offset) {
  std::string s(n, '\0');
  PatternStream ps(n, offset);
  ps.next(s.data(), n);
  return s;
}

bool sanitized_build() {
#ifdef SLUICE_TEST_ASAN
  return true;
#else
  const char* env = std::getenv("SLUICE_SANITIZE_BUILD");
  return env != nullptr && *env != '\0' && std::strcmp(env, "0") != 0;
#endif
}

uint64_t current_rss_bytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      return std::strtoull(line.c_str() + 6, nullptr, 10) * 1024;  // "VmRSS:  1234 kB"
    }
  }
  return 0;
}

}  // namespace sluice::testing
