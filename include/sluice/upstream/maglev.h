#pragma once
// Maglev consistent hashing (Eisenbud et al., "Maglev: A Fast and Reliable Software Network Load
// Balancer", NSDI 2016, section 3.4), with weights the way Envoy's MaglevTable does them.
//
// A table of M slots (M prime) maps a request hash to a member in O(1): lookup(h) = entries[h % M].
// Each member walks its own permutation of the slots, offset + j * skip (mod M), and members take
// turns claiming their next preferred free slot until the table is full. Because M is prime every
// skip in [1, M - 1] visits every slot, so the walk always finds a free one.
//
// Properties the tests pin (tests/unit/upstream/maglev_test.cc):
//   - balance: with equal weights every member owns floor(M / N) or ceil(M / N) slots;
//   - weights: a member's share of slots is weight / total weight (within 1% of M);
//   - minimal disruption: removing one of N members moves its keys, and only a few percent of
//     the other members' keys;
//   - determinism: the table depends only on the set of (name, weight) pairs and M, never on the
//     order the members are listed in or on the process, so every proxy of a fleet agrees.
//
// Built on the control thread when a snapshot is built (DESIGN.md rule 2); workers only lookup().
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace sluice::upstream {

// Deterministic primality test (Miller-Rabin with the first 12 prime bases, exact for every
// 64-bit n). Used to validate Maglev table sizes.
bool is_prime(uint64_t n);

class MaglevTable {
 public:
  struct Member {
    std::string_view name;  // the endpoint's stable key, "ip:port"; unique within a table
    uint32_t weight;        // >= 1
  };

  // Envoy's default table size (prime). Shares are counted in slots, so a member's share is
  // accurate to 1/M; like Envoy, keep M >= 100 * members so each member owns many slots.
  static constexpr uint32_t kDefaultTableSize = 65537;

  // Builds the table. Preconditions: members non-empty, every weight >= 1, table_size prime and
  // >= members.size(). Throws std::invalid_argument when they do not hold: building happens while
  // a configuration is loaded (DESIGN.md rule 5), whose loader validates these first.
  //
  // Member order does not matter: members are ranked by (name, weight) before the population, and
  // entries hold indices into `members` as given. Names must be unique; two members with the same
  // name and weight are interchangeable, so which of the two a slot names depends on their order.
  static MaglevTable build(std::span<const Member> members,
                           uint32_t table_size = kDefaultTableSize);

  // Index into the `members` span given to build(). O(1), no branches, no allocation.
  uint32_t lookup(uint64_t hash) const { return entries_[hash % size_]; }

  uint32_t size() const { return size_; }
  std::span<const uint32_t> entries() const { return entries_; }

 private:
  explicit MaglevTable(std::vector<uint32_t> entries)
      : entries_(std::move(entries)), size_(static_cast<uint32_t>(entries_.size())) {}

  std::vector<uint32_t> entries_;
  uint32_t size_;
};

}  // namespace sluice::upstream
