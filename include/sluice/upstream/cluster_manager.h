#pragma once
// The control thread's side of the upstreams: what workers cannot do themselves. It resolves
// DNS endpoints (at load and every dns_refresh), runs one health checker per cluster, takes
// passive connect failures from workers, and rebuilds a cluster's ClusterInfo whenever its
// membership or health changes, then tells the owner to publish.
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sluice/common/asio.h"
#include "sluice/common/result.h"
#include "sluice/config/config.h"
#include "sluice/upstream/cluster.h"
#include "sluice/upstream/health_checker.h"

namespace sluice::upstream {

class ClusterManager {
 public:
  using ChangeFn = std::function<void()>;  // called on the control thread after a change

  ClusterManager(asio::io_context& control, ChangeFn on_change);
  ~ClusterManager();

  // Control thread. Resolves every host name (blocking); on success these clusters become
  // current: health of endpoints that stay is kept, checkers and DNS timers follow the new
  // settings. On failure nothing changes. Does not call on_change: the caller publishes.
  // `tls`: the TLS contexts of the same configuration, for health checks over TLS.
  Result<void> apply(const std::vector<config::Cluster>& clusters, const net::TlsMaterial* tls = nullptr);
  // Control thread. New TLS contexts for the clusters of the last applied config (certificate
  // rotation): health checks use them from their next probe. Membership and health stay.
  void set_tls(const net::TlsMaterial* tls);
  // Current cluster views, in the order of the last applied config.
  std::vector<ClusterInfoPtr> infos() const;
  // Control thread: a worker could not connect to this endpoint.
  void report_connect_failure(const std::string& cluster, const std::string& endpoint_key,
                              const std::string& why);

 private:
  struct Runtime;
  static Result<std::vector<tcp::endpoint>> resolve(const std::string& host, uint16_t port);
  void rebuild(Runtime& r);
  void schedule_dns_refresh(Runtime& r);
  // `alive` is a parameter, not read from the member: the coroutine may start after `this` died.
  awaitable<void> refresh_dns(std::string cluster, std::shared_ptr<bool> alive);

  asio::io_context& control_;
  ChangeFn on_change_;
  // False once this object is being destroyed. DNS refreshes hold a copy: a resolve or a timer
  // completion queued before the destruction must not touch it afterwards.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::map<std::string, std::unique_ptr<Runtime>> clusters_;
  std::vector<std::string> order_;
};

}  // namespace sluice::upstream
