// LoadBalancer: the per-worker endpoint choice (round robin, least request, random, maglev) over a
// ClusterInfo built the way the control thread builds it. Every RNG is a FastRandom with a fixed
// seed, so a run is reproducible; where a bound is statistical, the comment says how many
// standard deviations it leaves, so the bound holds for (practically) any seed, not just this one.
#include "sluice/upstream/load_balancer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <numeric>
#include <string>
#include <vector>

#include "sluice/upstream/hash.h"

namespace sluice::upstream {
namespace {

using LbPolicy = config::Cluster::LbPolicy;

constexpr uint64_t kSeed = 0x5eed5eed12345678ULL;

EndpointInfo endpoint(size_t i, uint32_t weight = 1, bool healthy = true) {
  EndpointInfo e;
  e.key = "10.0.0." + std::to_string(i + 1) + ":8080";
  e.address = tcp::endpoint(asio::ip::make_address("10.0.0." + std::to_string(i + 1)), 8080);
  e.weight = weight;
  e.healthy = healthy;
  return e;
}

ClusterInfoPtr cluster_of(LbPolicy lb, const std::vector<uint32_t>& weights) {
  config::Cluster spec;
  spec.name = "c";
  spec.lb = lb;
  if (lb == LbPolicy::kMaglev) spec.hash_on.kind = config::HashOn::Kind::kPath;
  std::vector<EndpointInfo> eps;
  for (size_t i = 0; i < weights.size(); ++i) eps.push_back(endpoint(i, weights[i]));
  return ClusterInfo::build(spec, std::move(eps));
}

ClusterInfoPtr equal_cluster(LbPolicy lb, size_t n) {
  return cluster_of(lb, std::vector<uint32_t>(n, 1));
}

auto idle = [](uint32_t) -> uint64_t { return 0; };

// `picks` picks; returns how often each eligible position was chosen.
template <typename ActiveFn>
std::vector<uint64_t> count_picks(const ClusterInfo& c, LoadBalancer& lb, FastRandom& rng,
                                  size_t picks, ActiveFn&& active) {
  std::vector<uint64_t> counts(c.eligible.size(), 0);
  for (size_t i = 0; i < picks; ++i) {
    size_t p = lb.pick(c, rng, std::nullopt, active);
    EXPECT_LT(p, c.eligible.size());
    if (p < counts.size()) ++counts[p];
  }
  return counts;
}

std::vector<uint64_t> count_picks(const ClusterInfo& c, LoadBalancer& lb, FastRandom& rng,
                                  size_t picks) {
  return count_picks(c, lb, rng, picks, idle);
}

std::vector<size_t> sequence(const ClusterInfo& c, LoadBalancer& lb, FastRandom& rng, size_t picks) {
  std::vector<size_t> out;
  for (size_t i = 0; i < picks; ++i) out.push_back(lb.pick(c, rng, std::nullopt, idle));
  return out;
}

std::string letters(const std::vector<size_t>& seq) {
  std::string s;
  for (size_t p : seq) s += static_cast<char>('a' + p);
  return s;
}

size_t longest_run_of(const std::vector<size_t>& seq, size_t value) {
  size_t best = 0, run = 0;
  for (size_t p : seq) {
    run = p == value ? run + 1 : 0;
    best = std::max(best, run);
  }
  return best;
}

// --- round robin -----------------------------------------------------------------------------

TEST(RoundRobin, TenEqualEndpointsGetExactlyAThousandEach) {
  auto c = equal_cluster(LbPolicy::kRoundRobin, 10);
  LoadBalancer lb(*c, nullptr);
  FastRandom rng(kSeed);
  auto counts = count_picks(*c, lb, rng, 10'000);
  // A plain rotation: exact, not just within 1%.
  for (size_t i = 0; i < counts.size(); ++i) EXPECT_EQ(counts[i], 1000u) << "endpoint " << i;
}

TEST(RoundRobin, EqualWeightsRotateInOrder) {
  auto c = equal_cluster(LbPolicy::kRoundRobin, 4);
  LoadBalancer lb(*c, nullptr);
  FastRandom rng(kSeed);
  EXPECT_EQ(letters(sequence(*c, lb, rng, 9)), "abcdabcda");
}

TEST(RoundRobin, EqualWeightsAboveOneRotateToo) {
  // All weights 7: the same as all 1 (the equal-weights fast path).
  auto c = cluster_of(LbPolicy::kRoundRobin, {7, 7, 7});
  LoadBalancer lb(*c, nullptr);
  FastRandom rng(kSeed);
  EXPECT_EQ(letters(sequence(*c, lb, rng, 6)), "abcabc");
}

TEST(RoundRobin, WeightsOneTwoThreeFourGiveProportionalShares) {
  auto c = cluster_of(LbPolicy::kRoundRobin, {1, 2, 3, 4});
  LoadBalancer lb(*c, nullptr);
  FastRandom rng(kSeed);
  auto counts = count_picks(*c, lb, rng, 10'000);
  const double weights[] = {1, 2, 3, 4};
  for (size_t i = 0; i < 4; ++i) {
    double share = counts[i] / 10'000.0;
    EXPECT_NEAR(share, weights[i] / 10.0, 0.01) << "endpoint " << i << " got " << counts[i];
  }
  // Smooth weighted round robin is periodic with period sum(weights): every aligned block of 10
  // picks holds exactly 1, 2, 3, 4 of them, so 10 000 picks give exactly 1000/2000/3000/4000.
  EXPECT_EQ(counts, (std::vector<uint64_t>{1000, 2000, 3000, 4000}));
}

TEST(RoundRobin, EveryAlignedPeriodHoldsExactlyTheWeights) {
  auto c = cluster_of(LbPolicy::kRoundRobin, {1, 2, 3, 4});
  LoadBalancer lb(*c, nullptr);
  FastRandom rng(kSeed);
  auto seq = sequence(*c, lb, rng, 1000);
  for (size_t start = 0; start < seq.size(); start += 10) {
    std::vector<int> n(4, 0);
    for (size_t i = start; i < start + 10; ++i) ++n[seq[i]];
    ASSERT_EQ(n, (std::vector<int>{1, 2, 3, 4})) << "block starting at pick " << start;
  }
}

TEST(RoundRobin, SmoothFiveOneOneIsNginxSequence) {
  auto c = cluster_of(LbPolicy::kRoundRobin, {5, 1, 1});
  LoadBalancer lb(*c, nullptr);
  FastRandom rng(kSeed);
  auto seq = sequence(*c, lb, rng, 7 * 100);
  // nginx's documented order for weights 5,1,1 (ngx_http_upstream_round_robin.c), repeated.
  std::string expected;
  for (int i = 0; i < 100; ++i) expected += "aabacaa";
  EXPECT_EQ(letters(seq), expected);

  // Within one period the heavy endpoint never runs more than twice in a row (a naive weighted
  // rotation gives "aaaaabc", a run of 5). Periods join as "...aa|aa...", so over many periods the
  // longest run is 4, still below the weight; it is never 5 or more.
  std::vector<size_t> one_period(seq.begin(), seq.begin() + 7);
  EXPECT_EQ(longest_run_of(one_period, 0), 2u);
  EXPECT_EQ(longest_run_of(seq, 0), 4u);
  EXPECT_EQ(longest_run_of(seq, 1), 1u);
  EXPECT_EQ(longest_run_of(seq, 2), 1u);

  // Every window of 7 consecutive picks (sliding, any start) holds exactly 5/1/1.
  for (size_t start = 0; start + 7 <= seq.size(); ++start) {
    std::vector<int> n(3, 0);
    for (size_t i = start; i < start + 7; ++i) ++n[seq[i]];
    ASSERT_EQ(n, (std::vector<int>{5, 1, 1})) << "window starting at pick " << start;
  }
}

TEST(RoundRobin, NoEndpointStarvedEvenWithSkewedWeights) {
  // Weights 1000 (the maximum the config allows) and 1: the light one still gets its turn within
  // every period of 1001 picks.
  auto c = cluster_of(LbPolicy::kRoundRobin, {1000, 1, 1, 1});
  LoadBalancer lb(*c, nullptr);
  FastRandom rng(kSeed);
  auto seq = sequence(*c, lb, rng, 1003 * 5);
  for (size_t start = 0; start < seq.size(); start += 1003) {
    std::vector<int> n(4, 0);
    for (size_t i = start; i < start + 1003; ++i) ++n[seq[i]];
    EXPECT_EQ(n, (std::vector<int>{1000, 1, 1, 1})) << "period starting at pick " << start;
  }
}

TEST(RoundRobin, SkipsIneligibleEndpoints) {
  config::Cluster spec;
  spec.name = "c";
  std::vector<EndpointInfo> eps = {endpoint(0), endpoint(1, 1, /*healthy=*/false), endpoint(2),
                                   endpoint(3)};
  auto c = ClusterInfo::build(spec, eps);
  ASSERT_EQ(c->eligible, (std::vector<uint32_t>{0, 2, 3}));
  LoadBalancer lb(*c, nullptr);
  FastRandom rng(kSeed);
  std::map<uint32_t, int> by_endpoint;
  for (int i = 0; i < 300; ++i) ++by_endpoint[c->eligible[lb.pick(*c, rng, std::nullopt, idle)]];
  EXPECT_EQ(by_endpoint, (std::map<uint32_t, int>{{0, 100}, {2, 100}, {3, 100}}));
}

TEST(RoundRobin, SmoothStateCarriesOverToTheNextBalancer) {
  auto c = cluster_of(LbPolicy::kRoundRobin, {5, 1, 1});
  FastRandom rng(kSeed);
  LoadBalancer first(*c, nullptr);
  EXPECT_EQ(letters(sequence(*c, first, rng, 3)), "aab");
  // A reload builds a new ClusterInfo with the same endpoints: the rotation goes on where it was,
  // it does not restart at "aab".
  auto c2 = cluster_of(LbPolicy::kRoundRobin, {5, 1, 1});
  LoadBalancer second(*c2, &first);
  EXPECT_EQ(letters(sequence(*c2, second, rng, 11)), "acaaaabacaa");
  // Without the previous balancer it would restart.
  LoadBalancer fresh(*c2, nullptr);
  EXPECT_EQ(letters(sequence(*c2, fresh, rng, 3)), "aab");
}

TEST(RoundRobin, SmoothStateFollowsEndpointKeysNotPositions) {
  // The new view lists the same endpoints in another order: the state is matched by key, so the
  // endpoints are chosen in the same order as if nothing had changed. Weights 4,2,1 never tie
  // (with ties, the first listed wins, and the order of the list would legitimately matter).
  FastRandom rng(kSeed);
  config::Cluster spec;
  spec.name = "c";
  auto c = ClusterInfo::build(spec, {endpoint(0, 4), endpoint(1, 2), endpoint(2, 1)});
  LoadBalancer first(*c, nullptr);
  LoadBalancer reference(*c, nullptr);
  EXPECT_EQ(letters(sequence(*c, first, rng, 3)), "aba");
  sequence(*c, reference, rng, 3);
  auto reordered = ClusterInfo::build(spec, {endpoint(2, 1), endpoint(0, 4), endpoint(1, 2)});
  LoadBalancer second(*reordered, &first);
  std::string got, want;
  for (int i = 0; i < 21; ++i) {
    got += reordered->endpoints[reordered->eligible[second.pick(*reordered, rng, std::nullopt, idle)]].key + " ";
    want += c->endpoints[c->eligible[reference.pick(*c, rng, std::nullopt, idle)]].key + " ";
  }
  EXPECT_EQ(got, want);
}

TEST(RoundRobin, CursorCarriesOverForEqualWeights) {
  auto c = equal_cluster(LbPolicy::kRoundRobin, 10);
  FastRandom rng(kSeed);
  LoadBalancer first(*c, nullptr);
  sequence(*c, first, rng, 3);  // a b c
  LoadBalancer second(*c, &first);
  EXPECT_EQ(letters(sequence(*c, second, rng, 3)), "def");
}

TEST(RoundRobin, NewEndpointStartsFreshAndOthersKeepTheirState) {
  FastRandom rng(kSeed);
  config::Cluster spec;
  spec.name = "c";
  auto c = ClusterInfo::build(spec, {endpoint(0, 2), endpoint(1, 1)});
  LoadBalancer first(*c, nullptr);
  sequence(*c, first, rng, 3);  // one full period of 2,1: the counters are back at 0
  auto grown = ClusterInfo::build(spec, {endpoint(0, 2), endpoint(1, 1), endpoint(2, 1)});
  LoadBalancer second(*grown, &first);
  auto counts = count_picks(*grown, second, rng, 4000);
  EXPECT_EQ(counts, (std::vector<uint64_t>{2000, 1000, 1000}));
}

TEST(RoundRobin, SingleEndpointAlwaysZero) {
  auto c = cluster_of(LbPolicy::kRoundRobin, {3});
  LoadBalancer lb(*c, nullptr);
  FastRandom rng(kSeed);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(lb.pick(*c, rng, std::nullopt, idle), 0u);
}

// --- least request -----------------------------------------------------------------------------

TEST(LeastRequest, EqualLoadSpreadsEvenly) {
  // At equal load, power-of-two-choices keeps its first candidate, which is uniform: each of 10
  // endpoints gets Binomial(N, 0.1). With N = 100 000 the standard deviation is
  // sqrt(N * 0.1 * 0.9) = 95, and +-5% of the mean (500) is 5.3 standard deviations, so the bound
  // is a property of the algorithm, not of the seed; it is checked for 20 seeds. (With 10 000
  // picks +-5% would be only 1.7 standard deviations: a coin flip over ten endpoints.)
  auto c = equal_cluster(LbPolicy::kLeastRequest, 10);
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    LoadBalancer lb(*c, nullptr);
    FastRandom rng(kSeed + seed);
    auto counts = count_picks(*c, lb, rng, 100'000);
    for (size_t i = 0; i < counts.size(); ++i) {
      EXPECT_NEAR(static_cast<double>(counts[i]), 10'000.0, 500.0) << "seed " << seed << " endpoint " << i;
    }
  }
}

TEST(LeastRequest, BusyEndpointGetsFarFewerPicks) {
  auto c = equal_cluster(LbPolicy::kLeastRequest, 5);
  LoadBalancer lb(*c, nullptr);
  FastRandom rng(kSeed);
  // Endpoint 0 has 50 requests in flight, the others none. It wins no comparison against an
  // idle endpoint, so it is chosen only when it is the only candidate drawn: at most 1/n^2 = 4%
  // of the picks with candidates drawn with replacement (0 when they are distinct), against a
  // fair share of 20%. 800 (8%) is > 9 sd above 400.
  auto counts = count_picks(*c, lb, rng, 10'000, [](uint32_t i) -> uint64_t { return i == 0 ? 50 : 0; });
  EXPECT_LT(counts[0], 800u);
  // The others share the rest evenly: ~2400 each; +-300 is > 7 sd.
  for (size_t i = 1; i < 5; ++i) EXPECT_NEAR(static_cast<double>(counts[i]), (10'000.0 - counts[0]) / 4, 300.0) << i;
}

TEST(LeastRequest, FewerInFlightWins) {
  // Two endpoints, 3 and 7 requests in flight: the less busy one gets at least 3/4 of the picks
  // (every comparison of the two goes its way; only draws of the same endpoint twice can go
  // the other way).
  auto c = equal_cluster(LbPolicy::kLeastRequest, 2);
  LoadBalancer lb(*c, nullptr);
  FastRandom rng(kSeed);
  auto counts = count_picks(*c, lb, rng, 10'000, [](uint32_t i) -> uint64_t { return i == 0 ? 7 : 3; });
  EXPECT_GT(counts[1], 7'200u) << counts[0] << " vs " << counts[1];
}

TEST(LeastRequest, LoadIsEvenedOutUnderConcurrency) {
  // A closed loop: requests start on the picked endpoint and one of every two in-flight requests
  // finishes each step. Endpoint 0 is slow (its requests finish 4x less often), so it piles up
  // in-flight requests and must receive far fewer new ones than the fast endpoints.
  auto c = equal_cluster(LbPolicy::kLeastRequest, 4);
  LoadBalancer lb(*c, nullptr);
  FastRandom rng(kSeed);
  FastRandom finish(kSeed ^ 0xabcdef);
  std::vector<uint64_t> active(4, 0), picks(4, 0);
  for (int step = 0; step < 40'000; ++step) {
    size_t p = lb.pick(*c, rng, std::nullopt, [&](uint32_t i) { return active[i]; });
    ++active[p];
    ++picks[p];
    for (size_t i = 0; i < 4; ++i) {
      uint64_t chance = i == 0 ? 8 : 2;  // slow endpoint: 1 in 8 per step, fast: 1 in 2
      if (active[i] > 0 && finish.below(chance) == 0) --active[i];
    }
  }
  for (size_t i = 1; i < 4; ++i) EXPECT_LT(picks[0] * 2, picks[i]) << "fast endpoint " << i;
  EXPECT_GT(picks[0], 0u);  // slower, but not starved
}

TEST(LeastRequest, WeightsHonouredAtEqualLoad) {
  // Weight 3 vs weight 1, both idle: the heavy endpoint should get ~3/4 of the picks.
  auto c = cluster_of(LbPolicy::kLeastRequest, {3, 1});
  LoadBalancer lb(*c, nullptr);
  FastRandom rng(kSeed);
  auto counts = count_picks(*c, lb, rng, 100'000);
  double heavy = counts[0] / 100'000.0;
  // 3:1 is a share of 0.75; +-0.02 leaves > 14 standard deviations for a correct weighted choice.
  EXPECT_NEAR(heavy, 0.75, 0.02) << "weight-3 picks " << counts[0] << ", weight-1 picks " << counts[1];
}

TEST(LeastRequest, WeightsHonouredAtEqualLoadWithThreeEndpoints) {
  auto c = cluster_of(LbPolicy::kLeastRequest, {3, 1, 1});
  LoadBalancer lb(*c, nullptr);
  FastRandom rng(kSeed);
  auto counts = count_picks(*c, lb, rng, 100'000);
  EXPECT_NEAR(counts[0] / 100'000.0, 0.6, 0.02) << counts[0] << " " << counts[1] << " " << counts[2];
  EXPECT_NEAR(counts[1] / 100'000.0, 0.2, 0.02);
  EXPECT_NEAR(counts[2] / 100'000.0, 0.2, 0.02);
}

TEST(LeastRequest, NoEndpointStarvedAtEqualLoad) {
  for (const auto& weights : std::vector<std::vector<uint32_t>>{{1, 1, 1, 1}, {1, 2, 3, 4}, {10, 1}}) {
    auto c = cluster_of(LbPolicy::kLeastRequest, weights);
    LoadBalancer lb(*c, nullptr);
    FastRandom rng(kSeed);
    auto counts = count_picks(*c, lb, rng, 10'000);
    uint64_t total = std::accumulate(weights.begin(), weights.end(), uint64_t{0});
    for (size_t i = 0; i < counts.size(); ++i) {
      // At least half of its weighted share: far from starved.
      EXPECT_GT(counts[i] * total * 2, 10'000u * weights[i])
          << "weights[" << i << "] = " << weights[i] << " got " << counts[i] << " of 10000";
    }
  }
}

TEST(LeastRequest, TwoIdleEndpointsSplitEvenly) {
  // Ties keep the first candidate, which is drawn uniformly here: Binomial(100 000, 0.5), and
  // +-1% is 6 sd.
  auto c = equal_cluster(LbPolicy::kLeastRequest, 2);
  LoadBalancer lb(*c, nullptr);
  FastRandom rng(kSeed);
  auto counts = count_picks(*c, lb, rng, 100'000);
  EXPECT_NEAR(counts[0] / 100'000.0, 0.5, 0.01);
}

// --- random --------------------------------------------------------------------------------------

TEST(Random, WeightedSharesOverAHundredThousandPicks) {
  auto c = cluster_of(LbPolicy::kRandom, {1, 2, 3, 4});
  LoadBalancer lb(*c, nullptr);
  FastRandom rng(kSeed);
  auto counts = count_picks(*c, lb, rng, 100'000);
  // Binomial: the widest sd is sqrt(1e5 * 0.4 * 0.6) = 155 picks = 0.155% of the picks, so a
  // tolerance of 1% of the picks is > 6 sd.
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_NEAR(counts[i] / 100'000.0, (i + 1) / 10.0, 0.01) << "endpoint " << i << " got " << counts[i];
  }
}

TEST(Random, EqualSharesOverAHundredThousandPicks) {
  auto c = equal_cluster(LbPolicy::kRandom, 10);
  LoadBalancer lb(*c, nullptr);
  FastRandom rng(kSeed);
  auto counts = count_picks(*c, lb, rng, 100'000);
  for (size_t i = 0; i < 10; ++i) EXPECT_NEAR(counts[i] / 100'000.0, 0.1, 0.005) << i;  // 5.3 sd
}

TEST(Random, OnlyEligibleEndpointsAndWeightsOfEligible) {
  config::Cluster spec;
  spec.name = "c";
  spec.lb = LbPolicy::kRandom;
  auto c = ClusterInfo::build(spec, {endpoint(0, 1), endpoint(1, 50, false), endpoint(2, 3)});
  ASSERT_EQ(c->eligible.size(), 2u);
  LoadBalancer lb(*c, nullptr);
  FastRandom rng(kSeed);
  auto counts = count_picks(*c, lb, rng, 100'000);
  EXPECT_NEAR(counts[0] / 100'000.0, 0.25, 0.01);
  EXPECT_NEAR(counts[1] / 100'000.0, 0.75, 0.01);
}

TEST(Random, SameSeedSameSequence) {
  auto c = cluster_of(LbPolicy::kRandom, {1, 2, 3});
  LoadBalancer a(*c, nullptr), b(*c, nullptr);
  FastRandom ra(7), rb(7);
  EXPECT_EQ(sequence(*c, a, ra, 100), sequence(*c, b, rb, 100));
}

// --- maglev through the balancer ---------------------------------------------------------------

TEST(MaglevPick, KeyedRequestsFollowTheTable) {
  auto c = equal_cluster(LbPolicy::kMaglev, 5);
  ASSERT_TRUE(c->maglev.has_value());
  LoadBalancer lb(*c, nullptr);
  FastRandom rng(kSeed);
  for (int i = 0; i < 1000; ++i) {
    uint64_t h = hash64("user-" + std::to_string(i));
    size_t p = lb.pick(*c, rng, h, idle);
    EXPECT_EQ(p, c->maglev->lookup(h));
    EXPECT_EQ(lb.pick(*c, rng, h, idle), p) << "not sticky";
  }
}

TEST(MaglevPick, RequestsWithoutAKeySpreadByWeight) {
  auto c = cluster_of(LbPolicy::kMaglev, {1, 3});
  LoadBalancer lb(*c, nullptr);
  FastRandom rng(kSeed);
  auto counts = count_picks(*c, lb, rng, 100'000);
  EXPECT_NEAR(counts[1] / 100'000.0, 0.75, 0.01);
}

}  // namespace
}  // namespace sluice::upstream
