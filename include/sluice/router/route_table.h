#pragma once
// The immutable routing tree of one listener: virtual hosts chosen by Host, then routes in
// order (first match wins).
#include <bitset>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "sluice/common/result.h"
#include "sluice/config/config.h"
#include "sluice/filters/filter.h"
#include "sluice/router/matchers.h"
#include "sluice/router/route_index.h"

namespace sluice::router {

struct RouteAction {
  config::Route::ActionKind kind = config::Route::ActionKind::kCluster;
  size_t cluster_index = 0;  // index into Snapshot::clusters (kind kCluster)
  std::string cluster_name;
  config::Duration timeout{0};  // 0 = none
  std::optional<std::string> prefix_rewrite;
  std::optional<std::string> host_rewrite;
  bool websocket = false;  // `upgrades: [websocket]` (route, or its virtual host's default)
  config::Duration upgrade_idle_timeout{0};
  bool grpc_timeout_header = true;  // a gRPC request's grpc-timeout caps `timeout`
};

class Route {
 public:
  // `levels`: the header policies that apply above this route (listener, virtual host).
  Route(const config::Route& spec, size_t cluster_index, const config::VirtualHost& vhost,
        const std::vector<const config::HeaderPolicy*>& levels);
  bool matches(const http::RequestView& request) const;
  // The header, query and client certificate conditions alone (the route index has settled the
  // path).
  bool conditions_match(const http::RequestView& request) const;
  const std::string& name() const { return name_; }
  const PathMatcher& path_matcher() const { return path_; }
  const RouteAction& action() const { return action_; }
  // The route's steps, in order; the router step (for cluster routes) follows the last one.
  const filters::Chain& chain() const { return chain_; }
  // Whether any step has body or trailer hooks: without one, bodies stream with no per-part call.
  bool chain_wants_body() const { return chain_wants_body_; }
  // Gives every step with per-worker state the next slot (snapshot build, control thread).
  void assign_state_slots(std::string_view prefix, std::vector<filters::StateSlot>& slots);
  // The path to send upstream (prefix_rewrite applied), without the query.
  std::string rewritten_path(std::string_view path) const;

 private:
  std::string name_;
  PathMatcher path_;
  std::vector<HeaderMatcher> headers_;
  std::vector<QueryMatcher> query_;
  std::optional<ClientCertMatcher> client_cert_;
  RouteAction action_;
  filters::Chain chain_;
  bool chain_wants_body_ = false;
};

class VirtualHost {
 public:
  VirtualHost(const config::VirtualHost& spec, const std::vector<config::Cluster>& clusters,
              const config::HeaderPolicy* listener_policy = nullptr);
  // The first route that matches: through the route index when there is one, else linearly.
  const Route* match(const http::RequestView& request) const;
  // The same answer by trying every route in order: the definition the index must agree with
  // (tests/unit/router/route_index_test.cc) and the faster way for a few routes.
  const Route* match_linear(const http::RequestView& request) const;
  const std::string& name() const { return name_; }
  const std::vector<Route>& routes() const { return routes_; }
  void assign_state_slots(std::string_view prefix, std::vector<filters::StateSlot>& slots);

  // Up to this many routes, match() scans them instead of building an index: a scan costs
  // ~11 ns per prefix or exact route and an index lookup 55-80 ns, so a match of the last of 8
  // routes is about even (bench/route_bench.cc, bench/results/2026-12-01-route-index.md).
  static constexpr size_t kLinearScanMaxRoutes = 8;

 private:
  std::string name_;
  std::vector<Route> routes_;
  std::unique_ptr<const RouteIndex> index_;  // null up to kLinearScanMaxRoutes routes
};

class RouteTable {
 public:
  RouteTable(const config::Listener& spec, const std::vector<config::Cluster>& clusters);
  // Exact domain, then the longest "*.suffix" wildcard, then the longest "prefix.*", then "*".
  // The port in `authority` is ignored; comparison is case-insensitive.
  const VirtualHost* find_virtual_host(std::string_view authority) const;
  const std::vector<std::unique_ptr<VirtualHost>>& virtual_hosts() const { return hosts_; }
  // Numbers the steps with per-worker state of every route (snapshot build, control thread).
  void assign_state_slots(std::string_view listener, std::vector<filters::StateSlot>& slots);

 private:
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::vector<std::unique_ptr<VirtualHost>> hosts_;
  using HostMap = std::unordered_map<std::string, const VirtualHost*, StringHash, std::equal_to<>>;
  // Wildcards are found by one hash lookup per place in the host where one could start (a
  // suffix) or end (a prefix), not by trying each wildcard: 10,000 of them cost what 10 do.
  // Bitmaps skip the places no wildcard fits: the bytes a suffix starts with ('.', '-') or a
  // prefix ends with ('.'), and their lengths (all lengths from kMaxBitmapLength on count as one
  // bit), so a host that matches nothing costs few or no lookups.
  static constexpr size_t kMaxBitmapLength = 255;
  HostMap exact_;
  HostMap suffixes_;  // "*.a.com" → ".a.com"
  HostMap prefixes_;  // "www.*" → "www."
  std::bitset<256> suffix_starts_;
  std::bitset<256> prefix_ends_;
  std::bitset<kMaxBitmapLength + 1> suffix_lengths_;
  std::bitset<kMaxBitmapLength + 1> prefix_lengths_;
  const VirtualHost* default_ = nullptr;
};

// Strips the port (and IPv6 brackets are kept) from a Host value.
std::string_view host_without_port(std::string_view authority);

}  // namespace sluice::router
