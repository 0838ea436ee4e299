#include "sluice/stats/metrics.h"

#include <algorithm>

#include "sluice/stats/shard.h"

namespace sluice::stats {

void Histogram::observe_seconds(double seconds) {
  size_t i = static_cast<size_t>(
      std::lower_bound(kLatencyBuckets.begin(), kLatencyBuckets.end(), seconds) - kLatencyBuckets.begin());
  buckets_[i].add();
  count_.add();
  sum_ns_.add(seconds > 0 ? static_cast<uint64_t>(seconds * 1e9) : 0);
}

const char* to_string(LocalReason reason) {
  switch (reason) {
    case LocalReason::kNoRoute: return "no_route";
    case LocalReason::kNoHealthyUpstream: return "no_healthy_upstream";
    case LocalReason::kConnectFailure: return "connect_failure";
    case LocalReason::kUpstreamReset: return "upstream_reset";
    case LocalReason::kTimeout: return "timeout";
    case LocalReason::kBadRequest: return "bad_request";
    case LocalReason::kHeadersTooLarge: return "headers_too_large";
    case LocalReason::kBodyTooLarge: return "body_too_large";
    case LocalReason::kRequestTimeout: return "request_timeout";
    case LocalReason::kOverflow: return "overflow";
    case LocalReason::kNotImplemented: return "not_implemented";
    case LocalReason::kDirectResponse: return "direct_response";
    case LocalReason::kRedirect: return "redirect";
    case LocalReason::kCount: break;
  }
  return "unknown";
}

namespace {
template <typename Map, typename Key>
auto* find_or_create(Map& map, const Key& key) {
  auto& slot = map[key];
  if (!slot) slot = std::make_unique<typename Map::mapped_type::element_type>();
  return slot.get();
}
}  // namespace

RouteStats* Shard::route(const RouteKey& key) {
  std::lock_guard lock(mu_);
  return find_or_create(routes_, key);
}
ClusterStats* Shard::cluster(const std::string& name) {
  std::lock_guard lock(mu_);
  return find_or_create(clusters_, name);
}
EndpointStats* Shard::endpoint(const EndpointKey& key) {
  std::lock_guard lock(mu_);
  return find_or_create(endpoints_, key);
}
ListenerStats* Shard::listener(const std::string& name) {
  std::lock_guard lock(mu_);
  return find_or_create(listeners_, name);
}

}  // namespace sluice::stats
