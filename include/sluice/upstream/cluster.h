#pragma once
// The immutable view of a cluster inside a snapshot: its settings and resolved endpoints.
#include <string>
#include <vector>

#include "sluice/common/asio.h"
#include "sluice/config/config.h"

namespace sluice::upstream {

struct EndpointInfo {
  std::string key;  // "ip:port", the stable name per-worker state is keyed by
  tcp::endpoint address;
  uint32_t weight = 1;
};

struct ClusterInfo {
  config::Cluster spec;
  std::vector<EndpointInfo> endpoints;
  const std::string& name() const { return spec.name; }
  static ClusterInfo from_config(const config::Cluster& spec);
};

}  // namespace sluice::upstream
