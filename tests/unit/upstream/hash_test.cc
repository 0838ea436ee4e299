#include "sluice/upstream/hash.h"

#include <gtest/gtest.h>

#include <bit>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace sluice::upstream {
namespace {

std::string_view sv(const std::vector<unsigned char>& bytes, size_t n) {
  return {reinterpret_cast<const char*>(bytes.data()), n};
}

// Known answers. The values come from the reference XXH64 (Debian's libxxhash0 0.8.1,
// XXH64(data, len, seed)); the first three are also the published xxHash test vectors. They pin
// the hash across processes, machines and versions of Sluice: a change here remaps every Maglev
// key of a fleet that runs mixed versions.
TEST(Hash64, KnownAnswersShortInputs) {
  EXPECT_EQ(hash64(""), 0xEF46DB3751D8E999ULL);
  EXPECT_EQ(hash64("a"), 0xD24EC4F1A98C6E5BULL);
  EXPECT_EQ(hash64("abc"), 0x44BC2CF5AD770999ULL);
  EXPECT_EQ(hash64("", 1), 0xD5AFBA1336A3BE4BULL);
  EXPECT_EQ(hash64("a", 1), 0xDEC2BC81C3CD46C6ULL);
  EXPECT_EQ(hash64("abc", 0x9E3779B97F4A7C15ULL), 0x2ED0F59D6B43AC8BULL);
  EXPECT_EQ(hash64("127.0.0.1:8080"), 0xC65E86B000FB3CBFULL);
  EXPECT_EQ(hash64("127.0.0.1:8080", 1), 0xA5D6DC0053AB4ED8ULL);
  EXPECT_EQ(hash64("10.0.0.1:443"), 0x6E6A9695A9D5E393ULL);
  EXPECT_EQ(hash64("10.0.0.1:443", 1), 0x01B45F4666630E01ULL);
  EXPECT_EQ(hash64("0123456789abcdef"), 0x5C5B90C34E376D0BULL);
  EXPECT_EQ(hash64("0123456789abcdef", 1), 0x95398BC8FB82B74DULL);
  EXPECT_EQ(hash64("The quick brown fox jumps over the lazy dog"), 0x0B242D361FDA71BCULL);
  EXPECT_EQ(hash64("The quick brown fox jumps over the lazy dog", 0x9E3779B97F4A7C15ULL),
            0x7CFAC66832F66B74ULL);
}

// Lengths around the 32-byte stripe boundary exercise both the short path and the four-lane path.
TEST(Hash64, KnownAnswersAcrossStripeBoundary) {
  std::vector<unsigned char> bytes(256);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<unsigned char>(i);
  EXPECT_EQ(hash64(sv(bytes, 31)), 0xC346D2B59B4D8EE1ULL);
  EXPECT_EQ(hash64(sv(bytes, 32)), 0xCBF59C5116FF32B4ULL);
  EXPECT_EQ(hash64(sv(bytes, 33)), 0x0C535D1ACAFB8EADULL);
  EXPECT_EQ(hash64(sv(bytes, 100)), 0x6AC1E58032166597ULL);
  EXPECT_EQ(hash64(sv(bytes, 256)), 0x1FACBE8406CD904BULL);
  EXPECT_EQ(hash64(sv(bytes, 31), 2654435761ULL), 0x71969C89A30A986AULL);
  EXPECT_EQ(hash64(sv(bytes, 32), 2654435761ULL), 0x7181354774E0D600ULL);
  EXPECT_EQ(hash64(sv(bytes, 33), 2654435761ULL), 0x57BD8AD0A0390E6DULL);
  EXPECT_EQ(hash64(sv(bytes, 100), 2654435761ULL), 0x8832442A88284F11ULL);
  EXPECT_EQ(hash64(sv(bytes, 256), 2654435761ULL), 0xD48195F45908996CULL);
}

TEST(Hash64, DependsOnlyOnBytesNotOnAddressOrAlignment) {
  const std::string key = "some-session-cookie-value-0123456789";
  std::vector<char> buffer(key.size() + 16);
  for (size_t shift = 0; shift < 16; ++shift) {
    std::copy(key.begin(), key.end(), buffer.begin() + static_cast<std::ptrdiff_t>(shift));
    EXPECT_EQ(hash64(std::string_view(buffer.data() + shift, key.size()), 7), hash64(key, 7))
        << "shift " << shift;
  }
}

TEST(Hash64, SeedChangesOutput) {
  for (const std::string_view input :
       {"", "a", "10.0.0.1:8080", "0123456789abcdef0123456789abcdef!"}) {
    EXPECT_NE(hash64(input, 0), hash64(input, 1)) << input;
    EXPECT_NE(hash64(input, 1), hash64(input, 2)) << input;
    EXPECT_NE(hash64(input, 0), hash64(input, 0x8000000000000000ULL)) << input;
  }
}

TEST(Hash64, TrailingZeroByteChangesOutput) {
  EXPECT_NE(hash64(std::string_view("a", 1)), hash64(std::string_view("a\0", 2)));
  EXPECT_NE(hash64(std::string_view("", 0)), hash64(std::string_view("\0", 1)));
}

// Every single-bit flip of the input changes the output, and on average flips half of the 64
// output bits (a well-mixed hash; measured mean 32.0, the bound allows for sampling noise:
// the standard deviation of one flip count is 4 bits, of a mean over thousands of flips < 0.1).
TEST(Hash64, SingleBitFlipAvalanches) {
  std::mt19937_64 rng(12345);
  uint64_t flips = 0;
  uint64_t changed_bits = 0;
  for (size_t len : {1u, 3u, 4u, 7u, 8u, 15u, 16u, 31u, 32u, 33u, 64u, 100u}) {
    std::vector<unsigned char> bytes(len);
    for (int trial = 0; trial < 4; ++trial) {
      for (auto& b : bytes) b = static_cast<unsigned char>(rng());
      const uint64_t seed = rng();
      const uint64_t base = hash64(sv(bytes, len), seed);
      for (size_t bit = 0; bit < len * 8; ++bit) {
        bytes[bit / 8] ^= static_cast<unsigned char>(1u << (bit % 8));
        const uint64_t flipped = hash64(sv(bytes, len), seed);
        bytes[bit / 8] ^= static_cast<unsigned char>(1u << (bit % 8));
        ASSERT_NE(flipped, base) << "len " << len << " bit " << bit;
        changed_bits += static_cast<uint64_t>(std::popcount(flipped ^ base));
        ++flips;
      }
    }
  }
  const double mean = static_cast<double>(changed_bits) / static_cast<double>(flips);
  EXPECT_GT(mean, 31.0);
  EXPECT_LT(mean, 33.0);
}

// Sequential endpoint-like keys spread evenly over the low bits (what `hash % M` consumes): each
// of 64 buckets gets 1/64 of 640000 keys within 5% (expected 10000, standard deviation ~100).
TEST(Hash64, SequentialKeysSpreadEvenly) {
  constexpr int kBuckets = 64;
  constexpr int kKeys = 640000;
  std::vector<int> counts(kBuckets, 0);
  for (int i = 0; i < kKeys; ++i) {
    const std::string key = "10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256);
    ++counts[hash64(key) % kBuckets];
  }
  for (int b = 0; b < kBuckets; ++b) {
    EXPECT_NEAR(counts[b], kKeys / kBuckets, kKeys / kBuckets / 20) << "bucket " << b;
  }
}

}  // namespace
}  // namespace sluice::upstream
