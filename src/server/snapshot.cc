#include "sluice/server/snapshot.h"

namespace sluice::server {

const ListenerInfo* Snapshot::find_listener(std::string_view name) const {
  for (const auto& l : listeners) {
    if (l.spec.name == name) return &l;
  }
  return nullptr;
}

std::shared_ptr<const Snapshot> Snapshot::build(config::Config config, uint64_t version) {
  auto s = std::make_shared<Snapshot>();
  s->version = version;
  for (const auto& c : config.clusters) s->clusters.push_back(upstream::ClusterInfo::from_config(c));
  for (const auto& l : config.listeners) {
    s->listeners.push_back(ListenerInfo{l, router::RouteTable(l, config.clusters)});
  }
  s->config = std::move(config);
  return s;
}

}  // namespace sluice::server
