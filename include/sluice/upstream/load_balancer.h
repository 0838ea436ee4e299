#pragma once
// Per-worker endpoint choice for one cluster (nginx's peer lifecycle, reduced to pick()). The
// immutable inputs come from ClusterInfo (eligible set, weights, Maglev table); the mutable
// state (smooth round-robin weights, the RNG) belongs to one worker, so no pick locks anything.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "sluice/common/fast_random.h"
#include "sluice/upstream/cluster.h"

namespace sluice::upstream {

// One per worker, to spread picks (sluice/common/fast_random.h).
using FastRandom = sluice::FastRandom;

class LoadBalancer {
 public:
  // Carries smooth round-robin state over from `previous` (the balancer of the same cluster
  // in the worker's previous view) by endpoint key, so a reload does not reset the rotation.
  LoadBalancer(const ClusterInfo& cluster, const LoadBalancer* previous);

  // The position in cluster.eligible to try first. `active_requests(i)` gives endpoint i's
  // in-flight requests on this worker (least_request); `hash` is the request's key (maglev).
  template <typename ActiveFn>
  size_t pick(const ClusterInfo& cluster, FastRandom& rng, std::optional<uint64_t> hash, ActiveFn&& active_requests);

 private:
  size_t pick_round_robin(const ClusterInfo& cluster);
  static size_t pick_weighted_random(const ClusterInfo& cluster, FastRandom& rng);

  bool equal_weights_ = true;
  uint64_t cursor_ = 0;                // equal weights: plain rotation
  std::vector<int64_t> current_;       // smooth weighted round robin, by eligible position
  std::vector<std::string> keys_;      // endpoint key of each eligible position
};

template <typename ActiveFn>
size_t LoadBalancer::pick(const ClusterInfo& cluster, FastRandom& rng, std::optional<uint64_t> hash,
                          ActiveFn&& active_requests) {
  const size_t n = cluster.eligible.size();
  if (n <= 1) return 0;
  switch (cluster.spec.lb) {
    case config::Cluster::LbPolicy::kRoundRobin:
      return pick_round_robin(cluster);
    case config::Cluster::LbPolicy::kRandom:
      return pick_weighted_random(cluster, rng);
    case config::Cluster::LbPolicy::kMaglev:
      // No key on this request: spread it like random (Envoy does the same).
      if (!hash || !cluster.maglev) return pick_weighted_random(cluster, rng);
      return cluster.maglev->lookup(*hash);
    case config::Cluster::LbPolicy::kLeastRequest: {
      // Power of two choices, weight-aware: both candidates are drawn in proportion to their
      // weight and the one with fewer requests in flight wins, ties to the first. At equal load
      // each endpoint is picked in proportion to its weight; under load, busy ones are avoided.
      // (Comparing requests per unit of weight instead would make the heavier candidate win
      // every tie and starve light endpoints.)
      size_t a = pick_weighted_random(cluster, rng);
      size_t b = pick_weighted_random(cluster, rng);
      return active_requests(cluster.eligible[b]) < active_requests(cluster.eligible[a]) ? b : a;
    }
  }
  return 0;
}

}  // namespace sluice::upstream
