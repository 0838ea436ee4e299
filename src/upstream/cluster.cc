#include "sluice/upstream/cluster.h"

namespace sluice::upstream {

std::shared_ptr<const ClusterInfo> ClusterInfo::build(const config::Cluster& spec,
                                                      std::vector<EndpointInfo> endpoints) {
  auto c = std::make_shared<ClusterInfo>();
  c->spec = spec;
  c->endpoints = std::move(endpoints);
  for (const auto& e : c->endpoints) c->healthy_count += e.healthy ? 1 : 0;
  const size_t n = c->endpoints.size();
  c->panic = n > 0 && c->healthy_count * 100 < static_cast<size_t>(spec.panic_threshold) * n;
  for (uint32_t i = 0; i < n; ++i) {
    if (c->panic || c->endpoints[i].healthy) c->eligible.push_back(i);
  }
  uint64_t total = 0;
  for (uint32_t i : c->eligible) {
    total += c->endpoints[i].weight;
    c->cumulative_weights.push_back(total);
  }
  if (spec.lb == config::Cluster::LbPolicy::kMaglev && !c->eligible.empty()) {
    std::vector<MaglevTable::Member> members;
    members.reserve(c->eligible.size());
    for (uint32_t i : c->eligible) members.push_back({c->endpoints[i].key, c->endpoints[i].weight});
    // The table needs at least one slot per member. DNS can return more addresses than the
    // configured size allows; then the next prime that fits is used rather than failing.
    uint32_t size = spec.maglev_table_size;
    while (size < members.size() || !is_prime(size)) ++size;
    c->maglev = MaglevTable::build(members, size);
  }
  return c;
}

}  // namespace sluice::upstream
