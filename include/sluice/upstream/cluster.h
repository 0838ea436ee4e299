#pragma once
// The immutable view of a cluster that workers balance over: resolved endpoints, their health,
// and what the balancers need precomputed (eligible set, cumulative weights, Maglev table).
// Built on the control thread whenever membership, weights or health change, and published to
// workers inside a Snapshot (rule 2).
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sluice/common/asio.h"
#include "sluice/config/config.h"
#include "sluice/upstream/maglev.h"

namespace sluice::upstream {

struct EndpointInfo {
  std::string key;  // "ip:port", the stable name per-worker state and stats are keyed by
  tcp::endpoint address;
  uint32_t weight = 1;
  std::string hostname;  // the DNS name it was resolved from, empty for a literal address
  bool healthy = true;
};

struct ClusterInfo {
  config::Cluster spec;
  std::vector<EndpointInfo> endpoints;
  size_t healthy_count = 0;
  // Fewer than panic_threshold percent healthy: balance over every endpoint (Envoy's panic mode).
  bool panic = false;
  std::vector<uint32_t> eligible;            // endpoint indexes the balancers choose from
  std::vector<uint64_t> cumulative_weights;  // over `eligible`, for weighted random picks
  std::optional<MaglevTable> maglev;         // over `eligible`, when lb is maglev

  const std::string& name() const { return spec.name; }
  static std::shared_ptr<const ClusterInfo> build(const config::Cluster& spec,
                                                  std::vector<EndpointInfo> endpoints);
};

using ClusterInfoPtr = std::shared_ptr<const ClusterInfo>;

}  // namespace sluice::upstream
