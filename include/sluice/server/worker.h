#pragma once
// A worker: one thread, one io_context (rule 1). It owns its acceptors, its downstream
// connections, its upstream pools and its view of the current snapshot.
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "sluice/accesslog/writer.h"
#include "sluice/common/asio.h"
#include "sluice/net/stream.h"
#include "sluice/server/snapshot.h"
#include "sluice/stats/shard.h"
#include "sluice/upstream/connection_pool.h"
#include "sluice/upstream/load_balancer.h"

namespace sluice::proxy {
class DownstreamConnection;
struct Http1State;
}

namespace sluice::server {

// Mutable per-worker state of a cluster, keyed by cluster name so it outlives a reload that keeps
// the name (rule 4).
struct ClusterState {
  std::unordered_map<std::string, std::shared_ptr<upstream::EndpointPool>> pools;  // by endpoint key
  std::shared_ptr<upstream::LoadBalancer> balancer;  // for the newest view; carried over by key
  std::shared_ptr<upstream::CircuitBreaker> breaker = std::make_shared<upstream::CircuitBreaker>();
};

// The snapshot as this worker uses it: the snapshot plus its clusters bound to worker state by
// index, so the request path indexes vectors instead of hashing names.
struct WorkerView {
  struct ClusterBinding {
    std::shared_ptr<ClusterState> state;
    std::vector<std::shared_ptr<upstream::EndpointPool>> pools;  // by endpoint index
    std::shared_ptr<upstream::LoadBalancer> balancer;  // built for this view's ClusterInfo
    std::shared_ptr<upstream::CircuitBreaker> breaker;  // the worker's, for this cluster name
    stats::ClusterStats* stats = nullptr;
  };
  struct ListenerBinding {
    stats::ListenerStats* stats = nullptr;
    std::vector<std::vector<stats::RouteStats*>> routes;  // [virtual host][route]
    stats::RouteStats* unrouted = nullptr;  // requests answered before a route was chosen
  };
  SnapshotPtr snapshot;
  std::vector<ClusterBinding> clusters;    // by Snapshot::clusters index
  std::vector<ListenerBinding> listeners;  // by Snapshot::listeners index
  // The worker's state of each route step that keeps one, by state slot (Routing::step_slots).
  std::vector<std::shared_ptr<filters::WorkerState>> step_states;

  // The stats cells of `route` in virtual host `vhost` of listener `listener_index`.
  stats::RouteStats* route_stats(size_t listener_index, const router::VirtualHost* vhost,
                                 const router::Route* route) const;
};

// The label used for the virtual host and route of requests answered before routing.
inline constexpr const char* kUnroutedLabel = "-";

class Worker {
 public:
  // `access_log` outlives the worker; `worker_count` workers share each listener's limits.
  Worker(size_t index, size_t worker_count, accesslog::Writer* access_log);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  size_t index() const { return index_; }
  asio::io_context& context() { return context_; }

  // --- Called from the control thread; each posts to the worker. ---
  void start();
  void publish(SnapshotPtr snapshot);
  void adopt_acceptor(std::string listener_name, tcp::acceptor acceptor);
  void close_acceptor(std::string listener_name);
  using ConnectFailureReporter = std::function<void(std::string cluster, std::string endpoint, std::string why)>;
  // Before start(): where connect failures go (the control thread's passive health detection).
  void set_connect_failure_reporter(ConnectFailureReporter r) { report_connect_failure_ = std::move(r); }
  // Stop accepting, close idle connections; in-flight requests finish with "connection: close".
  void drain();
  // Waits for the thread to finish on its own until `deadline`, then stops the loop.
  void join(std::chrono::steady_clock::time_point deadline);

  // --- Worker thread only. ---
  const std::shared_ptr<WorkerView>& view() const { return view_; }
  stats::Shard& stats() { return stats_; }
  accesslog::Batcher& access_log() { return access_log_; }
  upstream::FastRandom& random() { return random_; }
  // Per-request state of HTTP/1 connections (proxy/http1_state.h): a spare one, or a new one.
  std::unique_ptr<proxy::Http1State> take_http1_state();
  // Keeps `state` for the next take, up to kMaxSpareHttp1States (~37 KiB each, mostly the read
  // buffer: at most ~2.4 MiB per worker); beyond that it is freed.
  void give_http1_state(std::unique_ptr<proxy::Http1State> state);
  static constexpr size_t kMaxSpareHttp1States = 64;
  void report_connect_failure(std::string cluster, std::string endpoint, std::string why) {
    if (report_connect_failure_) report_connect_failure_(std::move(cluster), std::move(endpoint), std::move(why));
  }
  const stats::Shard& stats() const { return stats_; }
  bool draining() const { return draining_; }
  void add_connection(proxy::DownstreamConnection* c) { connections_.insert(c); }
  void remove_connection(proxy::DownstreamConnection* c) { connections_.erase(c); }

 private:
  awaitable<void> accept_loop(std::string listener_name, tcp::acceptor& acceptor);
  void swap_snapshot(SnapshotPtr snapshot);
  bool over_connection_limit(const std::string& listener_name);
  // The stream of a new connection: TLS with the listener's current context, or plain TCP.
  net::Stream downstream_stream(tcp::socket socket, const std::string& listener_name) const;
  void retire_unused_pools(const Snapshot& snapshot);
  void schedule_sweep();

  size_t index_;
  size_t worker_count_;
  // Declared before context_ so it outlives it: connections destroyed while the io_context is torn
  // down (after a drain timeout) still unregister themselves.
  std::unordered_set<proxy::DownstreamConnection*> connections_;
  // Likewise: a connection destroyed during teardown may still give its state back.
  std::vector<std::unique_ptr<proxy::Http1State>> spare_http1_states_;
  stats::Shard stats_;  // read by the admin thread while the worker runs
  // UNSAFE_IO drops the per-socket lock in the reactor and keeps the scheduler lock that
  // cross-thread posts (publish, drain, adopt_acceptor) need: every socket and timer of a worker
  // is used on its thread only (rule 1), so the lock never had a second party. Hint 1 still
  // locked: 12 lock/unlock pairs per proxied request (bench/instructions).
  asio::io_context context_{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::thread thread_;
  std::atomic<bool> finished_{false};
  std::shared_ptr<WorkerView> view_;
  std::unordered_map<std::string, std::shared_ptr<ClusterState>> cluster_states_;
  // Route steps' per-worker state by slot key, carried over reloads that keep the step.
  std::unordered_map<std::string, std::shared_ptr<filters::WorkerState>> step_states_;
  std::map<std::string, std::unique_ptr<tcp::acceptor>> acceptors_;
  std::vector<std::unique_ptr<tcp::acceptor>> retired_acceptors_;  // closed; freed with the worker
  asio::steady_timer sweep_timer_;
  accesslog::Batcher access_log_;
  upstream::FastRandom random_;
  ConnectFailureReporter report_connect_failure_;
  bool draining_ = false;
};

}  // namespace sluice::server
