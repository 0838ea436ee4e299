#pragma once
// The immutable routing tree of one listener: virtual hosts chosen by Host, then routes in
// order (first match wins).
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "sluice/common/result.h"
#include "sluice/config/config.h"
#include "sluice/filters/filter.h"
#include "sluice/router/matchers.h"

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
};

class Route {
 public:
  // `levels`: the header policies that apply above this route (listener, virtual host).
  Route(const config::Route& spec, size_t cluster_index, const config::VirtualHost& vhost,
        const std::vector<const config::HeaderPolicy*>& levels);
  bool matches(const http::RequestView& request) const;
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
  RouteAction action_;
  filters::Chain chain_;
  bool chain_wants_body_ = false;
};

class VirtualHost {
 public:
  VirtualHost(const config::VirtualHost& spec, const std::vector<config::Cluster>& clusters,
              const config::HeaderPolicy* listener_policy = nullptr);
  const Route* match(const http::RequestView& request) const;
  const std::string& name() const { return name_; }
  const std::vector<Route>& routes() const { return routes_; }
  void assign_state_slots(std::string_view prefix, std::vector<filters::StateSlot>& slots);

 private:
  std::string name_;
  std::vector<Route> routes_;
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
  std::unordered_map<std::string, const VirtualHost*, StringHash, std::equal_to<>> exact_;
  std::vector<std::pair<std::string, const VirtualHost*>> suffixes_;  // "*.a.com" → ".a.com"
  std::vector<std::pair<std::string, const VirtualHost*>> prefixes_;  // "www.*" → "www."
  const VirtualHost* default_ = nullptr;
};

// Strips the port (and IPv6 brackets are kept) from a Host value.
std::string_view host_without_port(std::string_view authority);

}  // namespace sluice::router
