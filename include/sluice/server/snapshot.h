#pragma once
// One immutable configuration as workers see it (rule 2). Built on the control thread, published
// to workers as shared_ptr<const Snapshot>; a request keeps the snapshot it was routed with.
// Routing is built once per configuration and shared by the snapshots published after a
// health or DNS change, which replace only the clusters.
#include <memory>
#include <string_view>
#include <vector>

#include "sluice/config/config.h"
#include "sluice/net/tls_context.h"
#include "sluice/router/route_table.h"
#include "sluice/upstream/cluster.h"

namespace sluice::server {

struct ListenerInfo {
  // The listener in Routing::config, which owns it: a copy held every route's config twice
  // (bench/results/2026-12-01-reload.md).
  const config::Listener& spec;
  router::RouteTable routes;
};

// What a configuration load builds: the config itself and the route tables.
struct Routing {
  Routing() = default;
  Routing(const Routing&) = delete;  // its listeners refer into its own config
  Routing& operator=(const Routing&) = delete;

  config::Config config;
  std::vector<ListenerInfo> listeners;
  // Every route step with per-worker state, by state slot (Filter::state_slot()).
  std::vector<filters::StateSlot> step_slots;
  // `config` must have passed config::load_*; building cannot fail after that.
  static std::shared_ptr<const Routing> build(config::Config config);
};

struct Snapshot {
  uint64_t version = 0;  // of the configuration (1, 2, 3 … per applied reload)
  std::shared_ptr<const Routing> routing;
  std::vector<upstream::ClusterInfoPtr> clusters;  // in config order
  // TLS contexts by listener and cluster index; replaced alone when certificate files change.
  std::shared_ptr<const net::TlsMaterial> tls;

  const config::Config& config() const { return routing->config; }
  const std::vector<ListenerInfo>& listeners() const { return routing->listeners; }
  const ListenerInfo* find_listener(std::string_view name) const;
};

using SnapshotPtr = std::shared_ptr<const Snapshot>;

}  // namespace sluice::server
