#pragma once
// splitmix64 (Steele, Lea and Flood, 2014): a 64-bit state, three multiplies and shifts per
// number. Not for secrets; for spreading load-balancer picks and for request ids, where it
// replaced mt19937_64 (with the hand-written formatting of http::make_request_id, 2.3k fewer
// instructions per request, bench/instructions; bench/results/2026-12-01-instructions-issue9.md).
// One generator per thread or worker, so nothing locks.
#include <sys/random.h>

#include <chrono>
#include <cstdint>

namespace sluice {

class FastRandom {
 public:
  explicit FastRandom(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  uint64_t below(uint64_t n) { return n == 0 ? 0 : next() % n; }

 private:
  uint64_t state_;
};

// 64 bits from the kernel (getrandom(2)), for seeding. Should the call fail (it does not block
// for 8 bytes once the pool is initialised), the clock and the address of a stack variable.
inline uint64_t random_seed() {
  uint64_t seed = 0;
  if (::getrandom(&seed, sizeof seed, 0) == static_cast<ssize_t>(sizeof seed)) return seed;
  const auto t = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  return t ^ reinterpret_cast<uintptr_t>(&seed);
}

}  // namespace sluice
