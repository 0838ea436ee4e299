#pragma once
// The control side: builds snapshots, binds listeners, starts workers, applies reloads and drains.
// Every member function runs on the control (main) thread.
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "sluice/common/result.h"
#include "sluice/config/config.h"
#include "sluice/server/file_watcher.h"
#include "sluice/server/snapshot.h"
#include "sluice/server/worker.h"
#include "sluice/stats/shard.h"
#include "sluice/upstream/cluster_manager.h"

namespace sluice::server {

// What the admin server shows about the configuration and its reloads.
struct ReloadState {
  std::string path;
  uint64_t version = 1;  // of the configuration now serving
  std::string sha256;    // of the file now serving
  std::chrono::system_clock::time_point applied_at;
  std::chrono::system_clock::time_point last_attempt_at;
  bool last_ok = true;
  std::string last_error;  // of the last failed attempt, empty when it succeeded
  uint64_t success = 0;
  uint64_t failed = 0;
};

// Thread safety: the public functions may be called from any one thread (main's); the work that
// changes what workers see (reload, health and DNS changes) runs on the server's own control
// thread, and the getters return copies taken under a mutex.
class Server {
 public:
  // Builds the first snapshot and binds every listener on every worker (SO_REUSEPORT), so an
  // address in use is reported here, before anything runs.
  static Result<std::unique_ptr<Server>> create(config::Config config, std::string sha256 = {});
  ~Server();

  void start();
  // The worker count came from the command line, not the file: reloads need not warn about it.
  void set_workers_overridden() { workers_overridden_ = true; }
  // Re-reads `path`; on success the new snapshot is posted to every worker (requests in flight
  // finish on the old one) and listeners are added or removed. On failure nothing changes.
  Result<void> reload(const std::string& path);

  // Stops accepting and lets requests in flight finish; returns at once.
  void begin_drain();
  // Waits for the workers until `deadline`, then stops those still busy.
  void join(std::chrono::steady_clock::time_point deadline);
  // begin_drain() then join() with `drain_timeout`.
  void stop(std::chrono::milliseconds drain_timeout);

  uint16_t listener_port(const std::string& name) const;  // real port, also when configured as 0
  size_t worker_count() const { return workers_.size(); }
  SnapshotPtr snapshot() const;
  ReloadState reload_state() const;
  bool started() const { return started_; }
  bool draining() const { return draining_; }
  std::vector<const stats::Shard*> stats_shards() const;
  // Closes access-log files so the next lines reopen them (SIGUSR1, after logrotate).
  void reopen_access_logs() { access_log_->reopen(); }
  uint64_t access_log_dropped_lines() const { return access_log_->dropped_lines(); }
  std::chrono::steady_clock::time_point start_time() const { return start_time_; }
  // TLS material refused since start: a certificate file changed into something unusable, or a
  // SIGHUP reload failed on one (sluice_tls_reload_failures_total).
  uint64_t tls_reload_failures() const { return tls_reload_failures_; }

 private:
  Server();
  Result<void> reload_on_control_thread(const std::string& path);
  // Publishes the current routing with the cluster manager's current clusters (control thread).
  void publish_clusters();
  void publish(SnapshotPtr snapshot);  // to every worker, and as snapshot()
  // Watches every certificate, key, CA and CRL file of `snapshot` (none without TLS).
  void watch_tls_files(const Snapshot& snapshot);
  // A watched TLS file changed: rebuilds only the TLS material from the running configuration
  // (no YAML is read) and publishes it; on failure the old material keeps serving.
  void rotate_tls_on_control_thread();
  // Runs `f` on the control thread and waits for its result.
  template <typename F>
  auto on_control_thread(F&& f) -> decltype(f());
  // One acceptor per worker for `listener`, all on the same port.
  Result<std::vector<tcp::acceptor>> bind(const config::Listener& listener, uint16_t& port, bool reloading);
  void adopt(const std::string& name, std::vector<tcp::acceptor> acceptors);
  // `routing`, whose last owner (usually a worker, when its last request on the old snapshot
  // ends) hands it to the control thread to destroy, then returns the freed heap to the system.
  std::shared_ptr<const Routing> retired_on_control_thread(std::shared_ptr<const Routing> routing);

  // Where a retired Routing goes; null once the server is being destroyed.
  struct Retirement {
    std::mutex mu;
    asio::io_context* control = nullptr;
  };

  asio::io_context control_{1};
  asio::executor_work_guard<asio::io_context::executor_type> control_work_;
  std::thread control_thread_;
  std::unique_ptr<upstream::ClusterManager> clusters_;  // control thread only
  std::shared_ptr<Retirement> retirement_ = std::make_shared<Retirement>();
  std::unique_ptr<FileWatcher> tls_watcher_;  // control thread only
  std::atomic<uint64_t> tls_reload_failures_{0};

  mutable std::mutex mu_;  // guards snapshot_ and reload_ for the getters
  SnapshotPtr snapshot_;
  // Declared before the workers: it must outlive them (they flush into it when they stop).
  std::unique_ptr<accesslog::Writer> access_log_ = std::make_unique<accesslog::Writer>();
  std::vector<std::unique_ptr<Worker>> workers_;
  std::map<std::string, uint16_t> ports_;
  ReloadState reload_;
  std::chrono::steady_clock::time_point start_time_ = std::chrono::steady_clock::now();
  bool started_ = false;
  std::atomic<bool> draining_{false};  // read by the control thread
  bool workers_overridden_ = false;
  bool joined_ = false;
};

}  // namespace sluice::server
