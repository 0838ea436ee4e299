#include "sluice/upstream/load_balancer.h"

#include <algorithm>
#include <unordered_map>

namespace sluice::upstream {

LoadBalancer::LoadBalancer(const ClusterInfo& cluster, const LoadBalancer* previous) {
  const size_t n = cluster.eligible.size();
  current_.assign(n, 0);
  keys_.reserve(n);
  for (uint32_t i : cluster.eligible) {
    keys_.push_back(cluster.endpoints[i].key);
    equal_weights_ &= cluster.endpoints[i].weight == cluster.endpoints[cluster.eligible[0]].weight;
  }
  if (!previous) return;
  cursor_ = previous->cursor_;
  std::unordered_map<std::string_view, int64_t> old;
  for (size_t i = 0; i < previous->keys_.size(); ++i) old[previous->keys_[i]] = previous->current_[i];
  for (size_t i = 0; i < n; ++i) {
    if (auto it = old.find(keys_[i]); it != old.end()) current_[i] = it->second;
  }
}

size_t LoadBalancer::pick_round_robin(const ClusterInfo& cluster) {
  const size_t n = cluster.eligible.size();
  if (equal_weights_) return cursor_++ % n;
  // nginx's smooth weighted round robin: every endpoint gains its weight, the richest is picked
  // and pays the total. Weights 5,1,1 give a a b a c a a, not a a a a a b c.
  int64_t total = 0;
  size_t best = 0;
  for (size_t i = 0; i < n; ++i) {
    int64_t w = cluster.endpoints[cluster.eligible[i]].weight;
    current_[i] += w;
    total += w;
    if (current_[i] > current_[best]) best = i;
  }
  current_[best] -= total;
  return best;
}

size_t LoadBalancer::pick_weighted_random(const ClusterInfo& cluster, FastRandom& rng) {
  const auto& cw = cluster.cumulative_weights;
  uint64_t point = rng.below(cw.back());
  return static_cast<size_t>(std::upper_bound(cw.begin(), cw.end(), point) - cw.begin());
}

}  // namespace sluice::upstream
