#pragma once
// One worker's metric cells, keyed by configured names so they survive reloads (rule 4) and
// their cardinality is bounded by the configuration (rule 8).
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>

#include "sluice/stats/metrics.h"

namespace sluice::stats {

struct RouteKey {
  std::string listener, vhost, route;
  auto operator<=>(const RouteKey&) const = default;
};
struct EndpointKey {
  std::string cluster, endpoint;
  auto operator<=>(const EndpointKey&) const = default;
};

class Shard {
 public:
  // Find-or-create. The mutex guards the maps' shape only: workers call these when they adopt a
  // snapshot (not per request) and cache the returned pointers, which stay valid for the
  // shard's lifetime.
  RouteStats* route(const RouteKey& key);
  ClusterStats* cluster(const std::string& name);
  EndpointStats* endpoint(const EndpointKey& key);
  ListenerStats* listener(const std::string& name);

  template <typename F>
  void for_each_route(F&& f) const {
    std::lock_guard lock(mu_);
    for (const auto& [k, v] : routes_) f(k, *v);
  }
  template <typename F>
  void for_each_cluster(F&& f) const {
    std::lock_guard lock(mu_);
    for (const auto& [k, v] : clusters_) f(k, *v);
  }
  template <typename F>
  void for_each_endpoint(F&& f) const {
    std::lock_guard lock(mu_);
    for (const auto& [k, v] : endpoints_) f(k, *v);
  }
  template <typename F>
  void for_each_listener(F&& f) const {
    std::lock_guard lock(mu_);
    for (const auto& [k, v] : listeners_) f(k, *v);
  }

 private:
  mutable std::mutex mu_;
  std::map<RouteKey, std::unique_ptr<RouteStats>> routes_;
  std::map<std::string, std::unique_ptr<ClusterStats>> clusters_;
  std::map<EndpointKey, std::unique_ptr<EndpointStats>> endpoints_;
  std::map<std::string, std::unique_ptr<ListenerStats>> listeners_;
};

}  // namespace sluice::stats
