#pragma once
// hash64: the one stable 64-bit hash of the upstream module (Maglev permutations, hash-based
// endpoint selection).
//
// Algorithm: XXH64 (xxHash, 64-bit variant, Yann Collet; spec in the xxHash repository's
// doc/xxhash_spec.md), implemented here from the specification. For the same bytes and seed it
// returns the same value as the reference XXH64(data, len, seed); hash_test.cc pins known answers
// taken from the reference library.
//
// Stability is the contract: the value depends only on the bytes and the seed. There is no
// per-process random seed and no dependence on the platform's endianness (input words are read
// with memcpy and interpreted as little-endian; on a big-endian host they are byte-swapped), so
// every process of a fleet builds the same Maglev table from the same endpoints. Never change the
// algorithm or its constants: doing so remaps keys across a fleet that runs mixed versions.
//
// Not a cryptographic hash: do not use it where an attacker choosing keys matters (use a keyed
// hash such as SipHash for that).
#include <cstdint>
#include <string_view>

namespace sluice::upstream {

uint64_t hash64(std::string_view data, uint64_t seed = 0);

}  // namespace sluice::upstream
