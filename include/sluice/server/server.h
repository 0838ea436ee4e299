#pragma once
// The control side: builds snapshots, binds listeners, starts workers, applies reloads and drains.
// Every member function runs on the control (main) thread.
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sluice/common/result.h"
#include "sluice/config/config.h"
#include "sluice/server/snapshot.h"
#include "sluice/server/worker.h"
#include "sluice/stats/shard.h"

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

class Server {
 public:
  // Builds the first snapshot and binds every listener on every worker (SO_REUSEPORT), so an
  // address in use is reported here, before anything runs.
  static Result<std::unique_ptr<Server>> create(config::Config config, std::string sha256 = {});
  ~Server();

  void start();
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
  const SnapshotPtr& snapshot() const { return snapshot_; }
  const ReloadState& reload_state() const { return reload_; }
  bool started() const { return started_; }
  bool draining() const { return draining_; }
  std::vector<const stats::Shard*> stats_shards() const;
  // Closes access-log files so the next lines reopen them (SIGUSR1, after logrotate).
  void reopen_access_logs() { access_log_->reopen(); }
  std::chrono::steady_clock::time_point start_time() const { return start_time_; }

 private:
  Server() = default;
  // One acceptor per worker for `listener`, all on the same port.
  Result<std::vector<tcp::acceptor>> bind(const config::Listener& listener, uint16_t& port);
  void adopt(const std::string& name, std::vector<tcp::acceptor> acceptors);

  SnapshotPtr snapshot_;
  // Declared before the workers: it must outlive them (they flush into it when they stop).
  std::unique_ptr<accesslog::Writer> access_log_ = std::make_unique<accesslog::Writer>();
  std::vector<std::unique_ptr<Worker>> workers_;
  std::map<std::string, uint16_t> ports_;
  ReloadState reload_;
  std::chrono::steady_clock::time_point start_time_ = std::chrono::steady_clock::now();
  bool started_ = false;
  bool draining_ = false;
  bool joined_ = false;
};

}  // namespace sluice::server
