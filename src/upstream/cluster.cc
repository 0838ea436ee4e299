#include "sluice/upstream/cluster.h"

namespace sluice::upstream {

ClusterInfo ClusterInfo::from_config(const config::Cluster& spec) {
  ClusterInfo c;
  c.spec = spec;
  for (const auto& e : spec.endpoints) {
    EndpointInfo info;
    info.key = e.address.to_string();
    info.address = tcp::endpoint(asio::ip::make_address(e.address.ip), e.address.port);
    info.weight = e.weight;
    c.endpoints.push_back(std::move(info));
  }
  return c;
}

}  // namespace sluice::upstream
