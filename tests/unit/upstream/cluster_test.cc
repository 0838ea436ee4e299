// ClusterInfo::build: what the control thread precomputes for the balancers from a cluster's
// endpoints and their health (eligible set, panic mode, cumulative weights, Maglev table).
#include "sluice/upstream/cluster.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "sluice/upstream/hash.h"

namespace sluice::upstream {
namespace {

using LbPolicy = config::Cluster::LbPolicy;

EndpointInfo endpoint(size_t i, uint32_t weight = 1, bool healthy = true) {
  EndpointInfo e;
  e.key = "192.168.1." + std::to_string(i + 1) + ":80";
  e.address = tcp::endpoint(asio::ip::make_address("192.168.1." + std::to_string(i + 1)), 80);
  e.weight = weight;
  e.healthy = healthy;
  return e;
}

// Endpoints with the given health (weight 1 each).
std::vector<EndpointInfo> with_health(const std::vector<bool>& healthy) {
  std::vector<EndpointInfo> eps;
  for (size_t i = 0; i < healthy.size(); ++i) eps.push_back(endpoint(i, 1, healthy[i]));
  return eps;
}

config::Cluster spec_of(LbPolicy lb = LbPolicy::kRoundRobin, uint32_t panic_threshold = 50) {
  config::Cluster spec;
  spec.name = "backend";
  spec.lb = lb;
  spec.panic_threshold = panic_threshold;
  if (lb == LbPolicy::kMaglev) {
    spec.hash_on.kind = config::HashOn::Kind::kHeader;
    spec.hash_on.name = "x-user-id";
  }
  return spec;
}

TEST(ClusterInfoBuild, KeepsSpecAndEndpoints) {
  auto c = ClusterInfo::build(spec_of(), with_health({true, true}));
  EXPECT_EQ(c->name(), "backend");
  ASSERT_EQ(c->endpoints.size(), 2u);
  EXPECT_EQ(c->endpoints[1].key, "192.168.1.2:80");
  EXPECT_FALSE(c->maglev.has_value());  // only for lb: maglev
}

TEST(ClusterInfoBuild, AllHealthyAllEligible) {
  auto c = ClusterInfo::build(spec_of(), with_health({true, true, true}));
  EXPECT_EQ(c->healthy_count, 3u);
  EXPECT_FALSE(c->panic);
  EXPECT_EQ(c->eligible, (std::vector<uint32_t>{0, 1, 2}));
}

TEST(ClusterInfoBuild, EligibleAreTheHealthyEndpoints) {
  auto c = ClusterInfo::build(spec_of(), with_health({true, false, true, true}));
  EXPECT_EQ(c->healthy_count, 3u);
  EXPECT_FALSE(c->panic);  // 75% healthy >= 50%
  EXPECT_EQ(c->eligible, (std::vector<uint32_t>{0, 2, 3}));
}

TEST(ClusterInfoBuild, PanicBelowThresholdBalancesOverAll) {
  // 1 of 4 healthy = 25% < 50%: every endpoint becomes eligible again.
  auto c = ClusterInfo::build(spec_of(), with_health({false, true, false, false}));
  EXPECT_EQ(c->healthy_count, 1u);
  EXPECT_TRUE(c->panic);
  EXPECT_EQ(c->eligible, (std::vector<uint32_t>{0, 1, 2, 3}));
}

TEST(ClusterInfoBuild, ExactlyAtThresholdIsNotPanic) {
  // 2 of 4 = 50%, not below 50%.
  auto c = ClusterInfo::build(spec_of(), with_health({true, false, true, false}));
  EXPECT_FALSE(c->panic);
  EXPECT_EQ(c->eligible, (std::vector<uint32_t>{0, 2}));
  // 1 of 3 = 33% < 50%.
  auto d = ClusterInfo::build(spec_of(), with_health({true, false, false}));
  EXPECT_TRUE(d->panic);
  EXPECT_EQ(d->eligible.size(), 3u);
  // 2 of 3 = 67%.
  auto e = ClusterInfo::build(spec_of(), with_health({true, false, true}));
  EXPECT_FALSE(e->panic);
}

TEST(ClusterInfoBuild, AllUnhealthyPanicsWithDefaultThreshold) {
  auto c = ClusterInfo::build(spec_of(), with_health({false, false}));
  EXPECT_EQ(c->healthy_count, 0u);
  EXPECT_TRUE(c->panic);
  EXPECT_EQ(c->eligible, (std::vector<uint32_t>{0, 1}));
}

TEST(ClusterInfoBuild, ThresholdZeroNeverPanics) {
  auto c = ClusterInfo::build(spec_of(LbPolicy::kRoundRobin, 0), with_health({false, false, false}));
  EXPECT_FALSE(c->panic);
  EXPECT_TRUE(c->eligible.empty());  // the exchange answers "no healthy upstream"
  EXPECT_TRUE(c->cumulative_weights.empty());
  auto d = ClusterInfo::build(spec_of(LbPolicy::kRoundRobin, 0), with_health({false, true, false}));
  EXPECT_FALSE(d->panic);
  EXPECT_EQ(d->eligible, (std::vector<uint32_t>{1}));
}

TEST(ClusterInfoBuild, ThresholdHundredPanicsOnAnyUnhealthy) {
  auto c = ClusterInfo::build(spec_of(LbPolicy::kRoundRobin, 100), with_health({true, true, true, false}));
  EXPECT_TRUE(c->panic);
  EXPECT_EQ(c->eligible.size(), 4u);
  auto d = ClusterInfo::build(spec_of(LbPolicy::kRoundRobin, 100), with_health({true, true}));
  EXPECT_FALSE(d->panic);
}

TEST(ClusterInfoBuild, NoEndpointsNoPanic) {
  auto c = ClusterInfo::build(spec_of(LbPolicy::kMaglev), {});
  EXPECT_FALSE(c->panic);
  EXPECT_TRUE(c->eligible.empty());
  EXPECT_FALSE(c->maglev.has_value());
}

TEST(ClusterInfoBuild, CumulativeWeightsOverEligible) {
  auto c = ClusterInfo::build(spec_of(), {endpoint(0, 1), endpoint(1, 2), endpoint(2, 3), endpoint(3, 4)});
  EXPECT_EQ(c->cumulative_weights, (std::vector<uint64_t>{1, 3, 6, 10}));
  // The unhealthy weight-3 endpoint is left out: 1, 1+2, 1+2+4.
  auto d = ClusterInfo::build(spec_of(), {endpoint(0, 1), endpoint(1, 2), endpoint(2, 3, false), endpoint(3, 4)});
  EXPECT_EQ(d->eligible, (std::vector<uint32_t>{0, 1, 3}));
  EXPECT_EQ(d->cumulative_weights, (std::vector<uint64_t>{1, 3, 7}));
}

TEST(ClusterInfoBuild, CumulativeWeightsDoNotOverflowAtTheLargestWeights) {
  std::vector<EndpointInfo> eps;
  for (size_t i = 0; i < 200; ++i) eps.push_back(endpoint(i, 1000));
  auto c = ClusterInfo::build(spec_of(), eps);
  EXPECT_EQ(c->cumulative_weights.back(), 200'000u);
}

TEST(ClusterInfoBuild, MaglevTableOverEligibleOnly) {
  auto spec = spec_of(LbPolicy::kMaglev);
  spec.maglev_table_size = 1009;
  auto c = ClusterInfo::build(spec, with_health({true, false, true, true}));
  ASSERT_TRUE(c->maglev.has_value());
  EXPECT_EQ(c->maglev->size(), 1009u);
  // Table entries index `eligible`; the unhealthy endpoint 1 never appears, the others all do.
  std::set<uint32_t> endpoints_seen;
  for (uint32_t e : c->maglev->entries()) {
    ASSERT_LT(e, c->eligible.size());
    endpoints_seen.insert(c->eligible[e]);
  }
  EXPECT_EQ(endpoints_seen, (std::set<uint32_t>{0, 2, 3}));
  // And it is the very table a fleet member with only those three endpoints builds.
  std::vector<MaglevTable::Member> members;
  for (uint32_t i : c->eligible) members.push_back({c->endpoints[i].key, c->endpoints[i].weight});
  auto expected = MaglevTable::build(members, 1009);
  EXPECT_TRUE(std::equal(expected.entries().begin(), expected.entries().end(), c->maglev->entries().begin(),
                         c->maglev->entries().end()));
}

TEST(ClusterInfoBuild, MaglevTableIncludesEveryoneInPanic) {
  auto spec = spec_of(LbPolicy::kMaglev);
  spec.maglev_table_size = 1009;
  auto c = ClusterInfo::build(spec, with_health({false, false, true}));
  ASSERT_TRUE(c->panic);
  ASSERT_TRUE(c->maglev.has_value());
  std::set<uint32_t> seen;
  for (uint32_t e : c->maglev->entries()) seen.insert(c->eligible[e]);
  EXPECT_EQ(seen, (std::set<uint32_t>{0, 1, 2}));
}

TEST(ClusterInfoBuild, MaglevKeysOfHealthyEndpointsMostlyStayWhenOneFails) {
  // Consistency: taking one of 5 endpoints out moves its keys and few others.
  auto spec = spec_of(LbPolicy::kMaglev);
  auto all = ClusterInfo::build(spec, with_health({true, true, true, true, true}));
  auto one_down = ClusterInfo::build(spec, with_health({true, true, false, true, true}));
  int moved = 0, stayed_eligible = 0;
  for (int k = 0; k < 10'000; ++k) {
    uint64_t h = hash64("key-" + std::to_string(k));
    uint32_t before = all->eligible[all->maglev->lookup(h)];
    uint32_t after = one_down->eligible[one_down->maglev->lookup(h)];
    ASSERT_NE(after, 2u);
    if (before == 2) continue;
    ++stayed_eligible;
    moved += before != after;
  }
  EXPECT_LT(moved, stayed_eligible / 20) << moved << " of " << stayed_eligible << " keys moved";
}

TEST(ClusterInfoBuild, MaglevWeightsUseEndpointWeights) {
  auto spec = spec_of(LbPolicy::kMaglev);
  auto c = ClusterInfo::build(spec, {endpoint(0, 1), endpoint(1, 2), endpoint(2, 1)});
  std::vector<uint32_t> slots(3, 0);
  for (uint32_t e : c->maglev->entries()) ++slots[c->eligible[e]];
  EXPECT_NEAR(slots[1] / static_cast<double>(c->maglev->size()), 0.5, 0.01);
  EXPECT_NEAR(slots[0] / static_cast<double>(c->maglev->size()), 0.25, 0.01);
}

TEST(ClusterInfoBuild, MaglevTableGrowsWhenThereAreMoreEndpointsThanSlots) {
  // The loader rejects a configured size below the endpoint count, but DNS can return more
  // addresses later; the table then takes the next prime that fits instead of failing.
  auto spec = spec_of(LbPolicy::kMaglev);
  spec.maglev_table_size = 2;
  auto c = ClusterInfo::build(spec, with_health({true, true, true, true}));
  ASSERT_TRUE(c->maglev.has_value());
  EXPECT_EQ(c->maglev->size(), 5u);  // the first prime >= 4
  std::set<uint32_t> seen(c->maglev->entries().begin(), c->maglev->entries().end());
  EXPECT_EQ(seen.size(), 4u);
}

}  // namespace
}  // namespace sluice::upstream
