#include "sluice/upstream/maglev.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "sluice/upstream/hash.h"

namespace sluice::upstream {
namespace {

using Member = MaglevTable::Member;
constexpr uint32_t kM = 65537;

std::vector<std::string> endpoint_names(size_t n) {
  std::vector<std::string> names;
  for (size_t i = 0; i < n; ++i) {
    names.push_back("10.0." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1) +
                    ":8080");
  }
  return names;
}

std::vector<Member> members_of(const std::vector<std::string>& names,
                               const std::vector<uint32_t>& weights) {
  std::vector<Member> members;
  for (size_t i = 0; i < names.size(); ++i) {
    members.push_back(Member{names[i], weights.empty() ? 1 : weights[i]});
  }
  return members;
}

std::vector<uint32_t> counts_of(const MaglevTable& table, size_t n) {
  std::vector<uint32_t> counts(n, 0);
  for (uint32_t e : table.entries()) ++counts.at(e);
  return counts;
}

// The table as names, so tables built from differently ordered member lists can be compared.
std::vector<std::string_view> by_name(const MaglevTable& table, std::span<const Member> members) {
  std::vector<std::string_view> out;
  out.reserve(table.size());
  for (uint32_t e : table.entries()) out.push_back(members[e].name);
  return out;
}

// A plain transcription of the algorithm (the paper's listing 1 with Envoy's weighted turns):
// members ranked by (name, weight), permutation[j] = (offset + j * skip) % M computed with a
// 64-bit modulo every time, table of signed slots with -1 for free, one pass over all members per
// round. build() is optimised (incremental permutation, occupancy bitmap, a heap for skewed
// weights); it must give exactly this table.
std::vector<uint32_t> reference_table(std::span<const Member> members, uint64_t m) {
  std::vector<uint32_t> order(members.size());
  std::iota(order.begin(), order.end(), 0u);
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    if (members[a].name != members[b].name) return members[a].name < members[b].name;
    if (members[a].weight != members[b].weight) return members[a].weight < members[b].weight;
    return a < b;
  });
  uint64_t max_weight = 0;
  for (const Member& mem : members) max_weight = std::max<uint64_t>(max_weight, mem.weight);
  struct Entry {
    uint64_t offset, skip, next, weight, target;
    uint32_t index;
  };
  std::vector<Entry> entries;
  for (uint32_t i : order) {
    entries.push_back(Entry{hash64(members[i].name, 0) % m,
                            hash64(members[i].name, 1) % (m - 1) + 1, 0, members[i].weight, 0, i});
  }
  std::vector<int64_t> table(m, -1);
  uint64_t filled = 0;
  for (uint64_t iteration = 1; filled < m; ++iteration) {
    for (size_t i = 0; i < entries.size() && filled < m; ++i) {
      Entry& e = entries[i];
      if (iteration * e.weight < e.target) continue;
      e.target += max_weight;
      uint64_t c = (e.offset + e.next * e.skip) % m;
      while (table[c] >= 0) {
        ++e.next;
        c = (e.offset + e.next * e.skip) % m;
      }
      table[c] = e.index;
      ++e.next;
      ++filled;
    }
  }
  return {table.begin(), table.end()};
}

void expect_matches_reference(std::span<const Member> members, uint32_t m) {
  const MaglevTable table = MaglevTable::build(members, m);
  const std::vector<uint32_t> expected = reference_table(members, m);
  ASSERT_EQ(table.size(), m);
  ASSERT_EQ(table.entries().size(), expected.size());
  EXPECT_TRUE(std::equal(expected.begin(), expected.end(), table.entries().begin()))
      << members.size() << " members, M = " << m;
}

TEST(IsPrime, SmallAndTableSizes) {
  EXPECT_FALSE(is_prime(0));
  EXPECT_FALSE(is_prime(1));
  EXPECT_TRUE(is_prime(2));
  EXPECT_TRUE(is_prime(3));
  EXPECT_FALSE(is_prime(4));
  EXPECT_TRUE(is_prime(37));
  EXPECT_FALSE(is_prime(561));  // Carmichael number
  EXPECT_TRUE(is_prime(65537));
  EXPECT_FALSE(is_prime(65536));
  EXPECT_FALSE(is_prime(65535));
  EXPECT_TRUE(is_prime(5000011));  // Envoy's largest Maglev table size
}

TEST(IsPrime, LargeValues) {
  EXPECT_TRUE(is_prime(4294967291ULL));                   // largest prime below 2^32
  EXPECT_TRUE(is_prime(2305843009213693951ULL));          // 2^61 - 1
  EXPECT_TRUE(is_prime(18446744073709551557ULL));         // largest prime below 2^64
  EXPECT_FALSE(is_prime(18446744073709551615ULL));        // 2^64 - 1
  EXPECT_FALSE(is_prime(4294967291ULL * 4294967279ULL));  // product of two primes near 2^32
  EXPECT_FALSE(is_prime(3215031751ULL));                  // strong pseudoprime to bases 2, 3, 5, 7
  EXPECT_FALSE(is_prime(3825123056546413051ULL));         // strong pseudoprime to bases 2..23
}

TEST(IsPrime, AgreesWithTrialDivisionBelow100000) {
  std::vector<bool> composite(100000, false);
  for (uint64_t i = 2; i < composite.size(); ++i) {
    if (composite[i]) continue;
    for (uint64_t j = i * i; j < composite.size(); j += i) composite[j] = true;
  }
  for (uint64_t n = 0; n < composite.size(); ++n) {
    ASSERT_EQ(is_prime(n), n >= 2 && !composite[n]) << n;
  }
}

TEST(MaglevTable, RejectsBadArguments) {
  const auto names = endpoint_names(3);
  const auto members = members_of(names, {});
  EXPECT_THROW(MaglevTable::build({}, kM), std::invalid_argument);
  EXPECT_THROW(MaglevTable::build(members, 65536), std::invalid_argument);
  EXPECT_THROW(MaglevTable::build(members, 2), std::invalid_argument);  // fewer slots than members
  EXPECT_THROW(MaglevTable::build(members, 1), std::invalid_argument);
  auto zero = members;
  zero[1].weight = 0;
  EXPECT_THROW(MaglevTable::build(zero, kM), std::invalid_argument);
  EXPECT_NO_THROW(MaglevTable::build(members, 3));
}

TEST(MaglevTable, LookupIndexesEntriesByHashModuloSize) {
  const auto names = endpoint_names(5);
  const auto members = members_of(names, {});
  const MaglevTable table = MaglevTable::build(members, 101);
  EXPECT_EQ(table.size(), 101u);
  EXPECT_EQ(table.entries().size(), 101u);
  std::mt19937_64 rng(7);
  for (int i = 0; i < 1000; ++i) {
    const uint64_t h = rng();
    EXPECT_EQ(table.lookup(h), table.entries()[h % 101]);
  }
  EXPECT_EQ(table.lookup(~uint64_t{0}), table.entries()[~uint64_t{0} % 101]);
}

TEST(MaglevTable, SingleMemberFillsTheTable) {
  const std::vector<Member> one{{"10.0.0.1:8080", 3}};
  for (uint32_t m : {2u, 13u, kM}) {
    const MaglevTable table = MaglevTable::build(one, m);
    ASSERT_EQ(table.size(), m);
    EXPECT_TRUE(std::all_of(table.entries().begin(), table.entries().end(),
                            [](uint32_t e) { return e == 0; }));
  }
}

// Round 1 gives every member a turn, so a table at least as large as the member list names every
// member, even one whose weight is 1/1000 of the others (that case takes the heap path).
TEST(MaglevTable, EveryMemberOwnsAnEntry) {
  const auto names = endpoint_names(1000);
  std::vector<uint32_t> skewed(1000, 1000);
  skewed[500] = 1;
  for (const auto& weights : {std::vector<uint32_t>{}, skewed}) {
    const auto members = members_of(names, weights);
    for (uint32_t m : {1009u, kM}) {
      const auto counts = counts_of(MaglevTable::build(members, m), members.size());
      EXPECT_EQ(std::count(counts.begin(), counts.end(), 0u), 0) << "M = " << m;
    }
  }
  // Exactly as many slots as members: one each.
  const auto seven = endpoint_names(7);
  const auto counts = counts_of(MaglevTable::build(members_of(seven, {}), 7), 7);
  EXPECT_TRUE(std::all_of(counts.begin(), counts.end(), [](uint32_t c) { return c == 1; }));
}

// With equal weights every round gives each member one slot, so the 65537 slots split as
// 6553 or 6554 per member (7 members get the extra slot).
TEST(MaglevTable, TenEqualMembersOwnAnEqualShare) {
  const auto names = endpoint_names(10);
  const auto members = members_of(names, {});
  const auto counts = counts_of(MaglevTable::build(members, kM), members.size());
  for (uint32_t c : counts) {
    EXPECT_GE(c, kM / 10);
    EXPECT_LE(c, kM / 10 + 1);
  }
  EXPECT_EQ(std::count(counts.begin(), counts.end(), kM / 10 + 1), kM % 10);
}

// A member's share of slots is weight / total within 1% of the table (655 slots). Measured: the
// deviation is at most a few slots, since turns follow the weights exactly round by round.
TEST(MaglevTable, WeightedSharesFollowWeights) {
  const std::vector<std::vector<uint32_t>> cases = {
      {1, 2, 3, 4}, {1, 10}, {10, 1}, {5, 5, 1}, {100, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}};
  for (const auto& weights : cases) {
    const auto names = endpoint_names(weights.size());
    const auto members = members_of(names, weights);
    const auto counts = counts_of(MaglevTable::build(members, kM), members.size());
    const double total = std::accumulate(weights.begin(), weights.end(), 0.0);
    for (size_t i = 0; i < weights.size(); ++i) {
      const double expected = kM * weights[i] / total;
      EXPECT_NEAR(counts[i], expected, 0.01 * kM)
          << "weights case of " << weights.size() << " members, member " << i;
      // Tighter than the requirement, to catch a drift the 1% bound would hide.
      EXPECT_NEAR(counts[i], expected, 0.001 * kM) << "member " << i;
    }
  }
}

TEST(MaglevTable, MemberOrderDoesNotMatter) {
  const auto names = endpoint_names(50);
  std::vector<uint32_t> weights(names.size());
  std::mt19937_64 rng(99);
  for (auto& w : weights) w = static_cast<uint32_t>(rng() % 10 + 1);
  const auto members = members_of(names, weights);
  const MaglevTable reference = MaglevTable::build(members, kM);
  const auto expected = by_name(reference, members);
  for (int trial = 0; trial < 5; ++trial) {
    auto shuffled = members;
    std::shuffle(shuffled.begin(), shuffled.end(), rng);
    const MaglevTable table = MaglevTable::build(shuffled, kM);
    EXPECT_EQ(by_name(table, shuffled), expected) << "trial " << trial;
  }
  auto reversed = members;
  std::reverse(reversed.begin(), reversed.end());
  EXPECT_EQ(by_name(MaglevTable::build(reversed, kM), reversed), expected);
}

TEST(MaglevTable, MatchesPlainTranscriptionOfTheAlgorithm) {
  const auto names = endpoint_names(1000);
  auto first = [&](size_t n, const std::vector<uint32_t>& weights) {
    std::vector<Member> members;  // views into `names`, which outlives them
    for (size_t i = 0; i < n; ++i)
      members.push_back(Member{names[i], weights.empty() ? 1 : weights[i]});
    return members;
  };
  // Round-by-round path.
  expect_matches_reference(first(10, {}), kM);
  expect_matches_reference(first(4, {1, 2, 3, 4}), kM);
  expect_matches_reference(first(2, {1, 10}), kM);
  expect_matches_reference(first(2, {1, 1}), 2);
  expect_matches_reference(first(3, {}), 3);
  expect_matches_reference(first(100, {}), 101);
  // Heap path: build() switches to it when n * max_weight > 64 * total_weight.
  auto heap_path = [](const std::vector<Member>& members) {
    uint64_t total = 0;
    uint64_t max = 0;
    for (const Member& m : members) {
      total += m.weight;
      max = std::max<uint64_t>(max, m.weight);
    }
    return members.size() * max > 64 * total;
  };
  std::vector<uint32_t> skewed(100, 1);
  skewed[17] = 1000;
  ASSERT_TRUE(heap_path(first(100, skewed)));
  expect_matches_reference(first(100, skewed), kM);
  expect_matches_reference(first(100, skewed), 101);
  std::vector<uint32_t> random_weights(1000);
  std::mt19937_64 rng(3);
  for (auto& w : random_weights) w = rng() % 200 == 0 ? 1000 : static_cast<uint32_t>(rng() % 3 + 1);
  ASSERT_TRUE(heap_path(first(1000, random_weights)));
  expect_matches_reference(first(1000, random_weights), kM);
  expect_matches_reference(first(1000, random_weights), 1009);
}

// A fixed small table: the entries depend only on the names, weights and M, through hash64 and
// the two permutation seeds, so they are the same in every process and every version. If this
// test changes, proxies of one fleet running different versions disagree on every key.
TEST(MaglevTable, KnownAnswerSmallTable) {
  const std::vector<Member> members{
      {"10.0.0.1:8080", 1}, {"10.0.0.2:8080", 2}, {"10.0.0.3:8080", 1}};
  const MaglevTable table = MaglevTable::build(members, 13);
  const std::vector<uint32_t> expected{0, 2, 1, 1, 0, 1, 1, 0, 0, 1, 2, 2, 1};
  EXPECT_EQ(std::vector<uint32_t>(table.entries().begin(), table.entries().end()), expected);
}

// Removing one of 10 equal members. 1,000,000 random 16-byte keys (std::mt19937_64, whose output
// the standard fixes, with a fixed seed) are hashed with hash64 and looked up before and after.
//
// What Maglev guarantees: the removed member's keys (1/10 of the slots) all move, since it is no
// longer in the table; the other members' keys mostly stay. Unlike a ring, Maglev does not promise
// zero movement among the others: when a member's preferred slot is freed, later turns of the
// population shift a little. The paper (section 3.4, figure 13) measures this to be small for
// M >> N. Measured here, for each of the 10 members removed in turn: its keys were 9.95-10.04% of
// all keys; the other members' keys that moved were 0.19-0.59% of all keys (at most 0.65% of
// their own keys); so 10.18-10.59% of all keys moved. The bounds below (other members' keys that
// move <= 2% of all keys, total <= 12%) hold with a 3x margin over the worst measured case and
// would catch a table that reshuffles (a modulo hash moves ~90% of keys here).
TEST(MaglevTable, RemovingOneOfTenMembersMovesLittleMoreThanItsKeys) {
  const auto names = endpoint_names(10);
  const auto all = members_of(names, {});
  const MaglevTable before = MaglevTable::build(all, kM);

  std::vector<uint64_t> key_hashes(1'000'000);
  std::mt19937_64 rng(20240601);
  for (auto& h : key_hashes) {
    char key[16];
    const uint64_t a = rng();
    const uint64_t b = rng();
    std::memcpy(key, &a, 8);
    std::memcpy(key + 8, &b, 8);
    h = hash64(std::string_view(key, sizeof key));
  }
  const double n_keys = static_cast<double>(key_hashes.size());

  for (size_t removed = 0; removed < all.size(); ++removed) {
    std::vector<Member> rest;
    for (size_t i = 0; i < all.size(); ++i) {
      if (i != removed) rest.push_back(all[i]);
    }
    const MaglevTable after = MaglevTable::build(rest, kM);
    size_t keys_of_removed = 0;
    size_t keys_of_others = 0;
    size_t others_moved = 0;
    for (uint64_t h : key_hashes) {
      const std::string_view owner_before = all[before.lookup(h)].name;
      const std::string_view owner_after = rest[after.lookup(h)].name;
      ASSERT_NE(owner_after, all[removed].name);
      if (owner_before == all[removed].name) {
        ++keys_of_removed;
      } else {
        ++keys_of_others;
        if (owner_after != owner_before) ++others_moved;
      }
    }
    const double removed_share = static_cast<double>(keys_of_removed) / n_keys;
    const double others_moved_share = static_cast<double>(others_moved) / n_keys;
    SCOPED_TRACE("removed member " + std::to_string(removed));
    EXPECT_NEAR(removed_share, 0.10, 0.005);
    EXPECT_LE(others_moved_share, 0.02);
    EXPECT_LE(removed_share + others_moved_share, 0.12);
    // Equivalently: at least 97.5% of the remaining members' keys stay where they were.
    EXPECT_GE(1.0 - static_cast<double>(others_moved) / static_cast<double>(keys_of_others), 0.975);
  }
}

}  // namespace
}  // namespace sluice::upstream
