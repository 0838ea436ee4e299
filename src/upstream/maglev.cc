#include "sluice/upstream/maglev.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "sluice/upstream/hash.h"

namespace sluice::upstream {
namespace {

// Seeds of the two hashes that give a member its permutation (offset, skip). Part of the
// cross-process contract, like hash64 itself: changing them remaps every key. Envoy uses the same
// pair (xxHash64 with seeds 0 and 1).
constexpr uint64_t kOffsetSeed = 0;
constexpr uint64_t kSkipSeed = 1;

// Above this many member checks per turn the population switches from round scans to a heap.
constexpr uint64_t kScanRatioLimit = 64;

// GCC and Clang's 128-bit integer; __extension__ keeps -Wpedantic quiet about it.
__extension__ typedef unsigned __int128 Uint128;

uint64_t mul_mod(uint64_t a, uint64_t b, uint64_t m) {
  return static_cast<uint64_t>(static_cast<Uint128>(a) * b % m);
}

uint64_t pow_mod(uint64_t base, uint64_t exp, uint64_t m) {
  uint64_t result = 1;
  base %= m;
  while (exp != 0) {
    if (exp & 1) result = mul_mod(result, base, m);
    base = mul_mod(base, base, m);
    exp >>= 1;
  }
  return result;
}

// One member while the table is populated (the paper's offset/skip/next, kept as the next
// candidate slot so that each step is an add and a compare instead of a 64-bit modulo).
struct Builder {
  uint32_t next;  // next candidate slot: (offset + j * skip) % M for the member's j-th probe
  uint32_t skip;  // in [1, M - 1]
  uint32_t wrap;  // M - skip: next + skip >= M  <=>  next >= wrap
  uint32_t weight;
  uint64_t target;  // Envoy's target_weight: a turn in round r iff r * weight >= target
  uint32_t index;   // index into the caller's members span
};

}  // namespace

bool is_prime(uint64_t n) {
  if (n < 2) return false;
  static constexpr uint64_t kBases[] = {2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37};
  for (uint64_t p : kBases) {
    if (n % p == 0) return n == p;
  }
  // n - 1 = d * 2^s with d odd.
  uint64_t d = n - 1;
  int s = 0;
  while ((d & 1) == 0) {
    d >>= 1;
    ++s;
  }
  // These 12 bases are a deterministic witness set for every n < 3.3e24 (Sorenson & Webster 2015),
  // so in particular for every uint64_t.
  for (uint64_t a : kBases) {
    uint64_t x = pow_mod(a, d, n);
    if (x == 1 || x == n - 1) continue;
    bool composite = true;
    for (int r = 1; r < s; ++r) {
      x = mul_mod(x, x, n);
      if (x == n - 1) {
        composite = false;
        break;
      }
    }
    if (composite) return false;
  }
  return true;
}

MaglevTable MaglevTable::build(std::span<const Member> members, uint32_t table_size) {
  if (members.empty()) throw std::invalid_argument("maglev: no members");
  if (table_size < members.size()) {
    throw std::invalid_argument("maglev: table size " + std::to_string(table_size) +
                                " is smaller than the number of members (" +
                                std::to_string(members.size()) + ")");
  }
  if (!is_prime(table_size)) {
    throw std::invalid_argument("maglev: table size " + std::to_string(table_size) +
                                " is not prime");
  }
  uint32_t max_weight = 0;
  for (const Member& m : members) {
    if (m.weight == 0) {
      throw std::invalid_argument("maglev: member '" + std::string(m.name) + "' has weight 0");
    }
    max_weight = std::max(max_weight, m.weight);
  }

  const uint32_t M = table_size;
  const auto n = static_cast<uint32_t>(members.size());

  // Rank members by (name, weight) so that the population order, and so the table, does not
  // depend on the order the caller listed them in.
  std::vector<uint32_t> order(n);
  for (uint32_t i = 0; i < n; ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    if (members[a].name != members[b].name) return members[a].name < members[b].name;
    if (members[a].weight != members[b].weight) return members[a].weight < members[b].weight;
    return a < b;
  });

  std::vector<Builder> builders(n);
  for (uint32_t k = 0; k < n; ++k) {
    const Member& m = members[order[k]];
    Builder& b = builders[k];
    b.next = static_cast<uint32_t>(hash64(m.name, kOffsetSeed) % M);
    // M == 2 is the only prime where M - 1 == 1; the formula still gives skip 1 there.
    b.skip = static_cast<uint32_t>(hash64(m.name, kSkipSeed) % (M - 1)) + 1;
    b.wrap = M - b.skip;
    b.weight = m.weight;
    b.target = 0;
    b.index = order[k];
  }

  // Occupancy as a bitmap: 8 KiB for M = 65537, so the probe loop stays in L1 instead of reading
  // the 256 KiB entries array.
  std::vector<uint64_t> taken((M + 63) / 64, 0);
  std::vector<uint32_t> entries(M);

  // (c + skip) % M for c < M, without a division; c + skip cannot overflow (M < 2^32, skip < M).
  // GCC compiles the select to a branch, which is the faster form here: a mask-based branchless
  // version (cmp/sbb/and/add) lengthens the loop-carried chain, and building 100 equal members at
  // M = 65537 went from 1.8 ms to 3.2 ms of thread CPU time.
  auto step = [](uint32_t c, uint32_t skip, uint32_t wrap) {
    return c < wrap ? c + skip : c - wrap;
  };
  auto take_turn = [&](Builder& b) {
    uint32_t c = b.next;
    while (taken[c >> 6] & (uint64_t{1} << (c & 63))) c = step(c, b.skip, b.wrap);
    taken[c >> 6] |= uint64_t{1} << (c & 63);
    entries[c] = b.index;
    b.next = step(c, b.skip, b.wrap);
  };

  // Envoy's weighted population: a member of weight w takes a turn in round r only when
  // r * w >= target, and each turn raises its target by max_weight, so over R rounds it takes
  // about R * w / max_weight turns. A member of maximal weight takes one turn every round. Within
  // a round, members take their turns in rank order.
  //
  // Scanning every member every round costs n * max_weight / total_weight checks per turn: about
  // 1 for equal weights, but ~500 for one member of weight 1000 among 999 of weight 1 (24 ms
  // instead of ~2 ms for M = 65537). Past a ratio of kScanRatioLimit the same schedule is replayed
  // from a heap ordered by (round, rank), O(log n) per turn but ~40 ns of it (4.8 ms instead of
  // 1.9 ms for 100 equal members). The crossover, measured with thread CPU time for n = 100 and
  // 1000 at M = 65537 on the 2-core Xeon of DESIGN.md, lies between ratios 57 and 91. Both
  // produce the same table; maglev_test.cc checks each against a plain transcription of the
  // algorithm.
  uint64_t total_weight = 0;
  for (const Member& m : members) total_weight += m.weight;
  uint32_t filled = 0;
  if (Uint128{n} * max_weight <= Uint128{kScanRatioLimit} * total_weight) {
    for (uint64_t round = 1; filled < M; ++round) {
      for (uint32_t k = 0; k < n && filled < M; ++k) {
        Builder& b = builders[k];
        if (round * b.weight < b.target) continue;
        b.target += max_weight;
        take_turn(b);
        ++filled;
      }
    }
  } else {
    struct Due {
      uint64_t round;  // the round in which the member takes its next turn
      uint32_t rank;
    };
    // std heap functions keep the greatest element on top, so "greater" puts the earliest turn
    // there.
    auto later = [](const Due& a, const Due& b) {
      return a.round != b.round ? a.round > b.round : a.rank > b.rank;
    };
    std::vector<Due> heap(n);
    for (uint32_t k = 0; k < n; ++k) heap[k] = Due{1, k};
    std::make_heap(heap.begin(), heap.end(), later);
    while (filled < M) {
      std::pop_heap(heap.begin(), heap.end(), later);
      Due& due = heap.back();
      Builder& b = builders[due.rank];
      b.target += max_weight;
      take_turn(b);
      ++filled;
      // The round loop would next find r * weight >= target at r = ceil(target / weight), and it
      // visits a member at most once per round.
      due.round = std::max((b.target + b.weight - 1) / b.weight, due.round + 1);
      std::push_heap(heap.begin(), heap.end(), later);
    }
  }

  return MaglevTable(std::move(entries));
}

}  // namespace sluice::upstream
