#pragma once
// The control side: builds snapshots, binds listeners, starts workers and drains them.
#include <memory>
#include <string>
#include <vector>

#include "sluice/common/result.h"
#include "sluice/config/config.h"
#include "sluice/server/snapshot.h"
#include "sluice/server/worker.h"

namespace sluice::server {

class Server {
 public:
  // Builds the first snapshot and binds every listener on every worker (SO_REUSEPORT), so an
  // address in use is reported here, before anything runs.
  static Result<std::unique_ptr<Server>> create(config::Config config);
  ~Server();

  void start();
  // Actual port of a listener (useful when the config said port 0).
  uint16_t listener_port(const std::string& name) const;
  size_t worker_count() const { return workers_.size(); }
  const SnapshotPtr& snapshot() const { return snapshot_; }
  // Stops accepting, lets requests in flight finish for up to `drain_timeout`, then stops.
  void stop(std::chrono::milliseconds drain_timeout);

 private:
  Server() = default;
  Result<void> bind_listeners();

  SnapshotPtr snapshot_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::map<std::string, uint16_t> ports_;
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace sluice::server
