#pragma once
// One immutable, fully built configuration (rule 2). Built on the control thread, published to
// workers as shared_ptr<const Snapshot>; a request keeps the snapshot it was routed with.
#include <memory>
#include <string_view>
#include <vector>

#include "sluice/config/config.h"
#include "sluice/router/route_table.h"
#include "sluice/upstream/cluster.h"

namespace sluice::server {

struct ListenerInfo {
  config::Listener spec;
  router::RouteTable routes;
};

struct Snapshot {
  uint64_t version = 0;
  config::Config config;
  std::vector<ListenerInfo> listeners;
  std::vector<upstream::ClusterInfo> clusters;

  const ListenerInfo* find_listener(std::string_view name) const;
  // `config` must have passed config::load_*; building cannot fail after that.
  static std::shared_ptr<const Snapshot> build(config::Config config, uint64_t version);
};

using SnapshotPtr = std::shared_ptr<const Snapshot>;

}  // namespace sluice::server
