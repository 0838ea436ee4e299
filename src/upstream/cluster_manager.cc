#include "sluice/upstream/cluster_manager.h"

#include <fmt/format.h>

#include <set>

#include "sluice/common/log.h"

namespace sluice::upstream {

struct ClusterManager::Runtime {
  config::Cluster spec;
  // Addresses of each configured endpoint, in config order (one for a literal address, every
  // address DNS returned for a host name).
  std::vector<std::vector<tcp::endpoint>> resolved;
  std::map<std::string, bool> health;  // by endpoint key; survives reloads for names that stay
  ClusterInfoPtr info;
  std::unique_ptr<HealthChecker> checker;
  std::unique_ptr<asio::steady_timer> dns_timer;
};

ClusterManager::ClusterManager(asio::io_context& control, ChangeFn on_change)
    : control_(control), on_change_(std::move(on_change)) {}

ClusterManager::~ClusterManager() { *alive_ = false; }

Result<std::vector<tcp::endpoint>> ClusterManager::resolve(const std::string& host, uint16_t port) {
  tcp::resolver resolver(asio::system_executor{});
  error_code ec;
  auto results = resolver.resolve(host, std::to_string(port), tcp::resolver::numeric_service, ec);
  if (ec) return Error{fmt::format("cannot resolve '{}': {}", host, ec.message())};
  std::vector<tcp::endpoint> out;
  std::set<tcp::endpoint> seen;
  for (const auto& r : results) {
    if (seen.insert(r.endpoint()).second) out.push_back(r.endpoint());
  }
  if (out.empty()) return Error{fmt::format("'{}' resolved to no address", host)};
  // Sorted, so every process (and every refresh) lists the same set in the same order.
  std::sort(out.begin(), out.end());
  return out;
}

Result<void> ClusterManager::apply(const std::vector<config::Cluster>& clusters, const net::TlsMaterial* tls) {
  // Resolve first: a name that does not resolve fails the whole change.
  std::vector<std::vector<std::vector<tcp::endpoint>>> resolved(clusters.size());
  for (size_t c = 0; c < clusters.size(); ++c) {
    for (const auto& ep : clusters[c].endpoints) {
      if (ep.hostname.empty()) {
        resolved[c].push_back({tcp::endpoint(asio::ip::make_address(ep.address.ip), ep.address.port)});
        continue;
      }
      auto addrs = resolve(ep.hostname, ep.address.port);
      if (!addrs) return Error{fmt::format("cluster '{}': {}", clusters[c].name, addrs.error().message)};
      resolved[c].push_back(std::move(*addrs));
    }
  }
  std::map<std::string, std::unique_ptr<Runtime>> next;
  order_.clear();
  for (size_t c = 0; c < clusters.size(); ++c) {
    const auto& spec = clusters[c];
    auto it = clusters_.find(spec.name);
    std::unique_ptr<Runtime> r = it != clusters_.end() ? std::move(it->second) : std::make_unique<Runtime>();
    bool checks_changed = !r->checker || !spec.health_check ||
                          r->spec.health_check.has_value() != spec.health_check.has_value();
    if (!checks_changed) {
      const auto& a = *r->spec.health_check;
      const auto& b = *spec.health_check;
      checks_changed = a.path != b.path || a.interval != b.interval || a.timeout != b.timeout ||
                       a.healthy_threshold != b.healthy_threshold ||
                       a.unhealthy_threshold != b.unhealthy_threshold ||
                       a.expected_statuses != b.expected_statuses || a.host != b.host ||
                       a.grpc != b.grpc || a.grpc_service != b.grpc_service;
    }
    r->spec = spec;
    r->resolved = std::move(resolved[c]);
    if (!spec.health_check) {
      // Without active checks nothing would ever bring an endpoint back: all count as healthy.
      r->checker.reset();
      r->health.clear();
    } else if (checks_changed) {
      std::string name = spec.name;
      r->checker = std::make_unique<HealthChecker>(
          control_, name, *spec.health_check,
          [this, name](const std::string& key, bool healthy, const std::string& why) {
            auto found = clusters_.find(name);
            if (found == clusters_.end()) return;
            Runtime& rt = *found->second;
            rt.health[key] = healthy;
            if (healthy) log::info("cluster '{}': endpoint {} is healthy again ({})", name, key, why);
            else log::warn("cluster '{}': endpoint {} is unhealthy: {}", name, key, why);
            rebuild(rt);
            on_change_();
          });
    }
    if (r->checker) {
      r->checker->set_tls(tls && c < tls->clusters.size() ? tls->clusters[c] : nullptr);
      r->checker->set_http2(spec.protocol == config::Cluster::Protocol::kHttp2
                                ? std::optional<config::ClusterHttp2>(spec.http2)
                                : std::nullopt);
    }
    rebuild(*r);
    schedule_dns_refresh(*r);
    order_.push_back(spec.name);
    next[spec.name] = std::move(r);
  }
  clusters_ = std::move(next);  // runtimes of removed clusters (and their checkers) end here
  return {};
}

void ClusterManager::set_tls(const net::TlsMaterial* tls) {
  // order_ is the config order, which is the index of tls->clusters.
  for (size_t c = 0; c < order_.size(); ++c) {
    auto it = clusters_.find(order_[c]);
    if (it == clusters_.end() || !it->second->checker) continue;
    it->second->checker->set_tls(tls && c < tls->clusters.size() ? tls->clusters[c] : nullptr);
  }
}

void ClusterManager::rebuild(Runtime& r) {
  std::vector<EndpointInfo> endpoints;
  std::set<std::string> keys;
  std::map<std::string, std::pair<tcp::endpoint, bool>> probe_targets;
  for (size_t i = 0; i < r.spec.endpoints.size() && i < r.resolved.size(); ++i) {
    for (const auto& address : r.resolved[i]) {
      EndpointInfo e;
      e.address = address;
      e.key = address.address().is_v6() ? fmt::format("[{}]:{}", address.address().to_string(), address.port())
                                         : fmt::format("{}:{}", address.address().to_string(), address.port());
      if (!keys.insert(e.key).second) continue;  // a name resolving to an address listed already
      e.weight = r.spec.endpoints[i].weight;
      e.hostname = r.spec.endpoints[i].hostname;
      auto h = r.health.find(e.key);
      e.healthy = h == r.health.end() || h->second;  // new endpoints start healthy
      if (r.checker) {
        r.health[e.key] = e.healthy;
        probe_targets[e.key] = {address, e.healthy};
      }
      endpoints.push_back(std::move(e));
    }
  }
  // Forget the health of endpoints that left.
  for (auto it = r.health.begin(); it != r.health.end();) {
    it = keys.count(it->first) ? std::next(it) : r.health.erase(it);
  }
  if (r.checker) r.checker->set_endpoints(probe_targets);
  r.info = ClusterInfo::build(r.spec, std::move(endpoints));
  if (r.info->panic) {
    log::warn("cluster '{}': {} of {} endpoints healthy, below panic_threshold {}%; balancing over all",
              r.spec.name, r.info->healthy_count, r.info->endpoints.size(), r.spec.panic_threshold);
  }
}

void ClusterManager::schedule_dns_refresh(Runtime& r) {
  bool has_names = false;
  for (const auto& ep : r.spec.endpoints) has_names |= !ep.hostname.empty();
  if (!has_names) {
    r.dns_timer.reset();
    return;
  }
  if (!r.dns_timer) r.dns_timer = std::make_unique<asio::steady_timer>(control_);
  r.dns_timer->expires_after(r.spec.dns_refresh);
  std::string name = r.spec.name;
  r.dns_timer->async_wait([this, name, alive = alive_](error_code ec) {
    if (ec || !*alive) return;
    asio::co_spawn(control_, refresh_dns(name, alive), asio::detached);
  });
}

awaitable<void> ClusterManager::refresh_dns(std::string cluster, std::shared_ptr<bool> alive) {
  if (!*alive) co_return;
  auto it = clusters_.find(cluster);
  if (it == clusters_.end()) co_return;
  // Copy what is needed: a reload may replace the runtime while we wait on DNS.
  config::Cluster spec = it->second->spec;
  std::vector<std::vector<tcp::endpoint>> fresh;
  bool failed = false;
  for (const auto& ep : spec.endpoints) {
    if (ep.hostname.empty()) {
      fresh.push_back({tcp::endpoint(asio::ip::make_address(ep.address.ip), ep.address.port)});
      continue;
    }
    tcp::resolver resolver(control_);
    error_code ec;
    auto results = co_await resolver.async_resolve(ep.hostname, std::to_string(ep.address.port),
                                                   tcp::resolver::numeric_service,
                                                   asio::redirect_error(use_awaitable, ec));
    if (!*alive) co_return;  // stopped while resolving (`this` is gone)
    std::vector<tcp::endpoint> addrs;
    for (const auto& r : results) addrs.push_back(r.endpoint());
    std::sort(addrs.begin(), addrs.end());
    addrs.erase(std::unique(addrs.begin(), addrs.end()), addrs.end());
    if (ec || addrs.empty()) {
      log::warn("cluster '{}': re-resolving '{}' failed ({}); keeping the last good addresses", cluster,
                ep.hostname, ec ? ec.message() : "no address");
      failed = true;
      break;
    }
    fresh.push_back(std::move(addrs));
  }
  it = clusters_.find(cluster);
  if (it == clusters_.end()) co_return;
  Runtime& r = *it->second;
  if (!failed && r.spec.endpoints.size() == fresh.size() && fresh != r.resolved) {
    log::info("cluster '{}': DNS returned a new set of addresses; updating endpoints", cluster);
    r.resolved = std::move(fresh);
    rebuild(r);
    on_change_();
  }
  schedule_dns_refresh(r);
}

std::vector<ClusterInfoPtr> ClusterManager::infos() const {
  std::vector<ClusterInfoPtr> out;
  for (const auto& name : order_) out.push_back(clusters_.at(name)->info);
  return out;
}

void ClusterManager::report_connect_failure(const std::string& cluster, const std::string& endpoint_key,
                                            const std::string& why) {
  auto it = clusters_.find(cluster);
  if (it == clusters_.end() || !it->second->checker) return;
  // record_passive_failure calls the transition callback, which rebuilds and publishes.
  it->second->checker->record_passive_failure(endpoint_key, why);
}

}  // namespace sluice::upstream
