#pragma once
// Runs a sluice::server::Server in-process on 127.0.0.1:0 for one test, and stops it (draining,
// joining its worker threads) when the test ends.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sluice/server/server.h"

namespace sluice::testing {

// The shape of the YAML most tests need: one listener "main" with one virtual host "main"
// (domains ['*']) and one cluster "backend". Options are YAML flow-map entries.
struct ProxyConfig {
  std::vector<uint16_t> endpoint_ports;  // cluster "backend" endpoints on 127.0.0.1
  int workers = 1;
  std::string listener_options;  // e.g. "max_request_headers_size: 8KiB, idle_timeout: 5s"
  std::string cluster_options;   // e.g. "idle_timeout: 2s"
  std::string domains = "['*']";
  // Flow maps, first match wins. Default: everything to "backend".
  std::vector<std::string> routes = {"{name: all, match: {prefix: /}, cluster: backend}"};
};

std::string make_yaml(const ProxyConfig& config);

// The default shape in front of one backend on 127.0.0.1:`port`.
inline ProxyConfig to_port(uint16_t port) {
  ProxyConfig c;
  c.endpoint_ports = {port};
  return c;
}

class RunningProxy {
 public:
  // Loads, creates and starts; records a test failure and returns null on any error.
  static std::unique_ptr<RunningProxy> start(const std::string& yaml);
  static std::unique_ptr<RunningProxy> start(const ProxyConfig& config) { return start(make_yaml(config)); }
  ~RunningProxy();

  uint16_t port() const { return port_; }
  server::Server& server() { return *server_; }
  // Drains and joins; idempotent.
  void stop(std::chrono::milliseconds drain = std::chrono::milliseconds(2000));

 private:
  RunningProxy() = default;
  std::unique_ptr<server::Server> server_;
  uint16_t port_ = 0;
  bool stopped_ = false;
};

// A 127.0.0.1 port with nothing listening on it: the socket stays bound (so no one else takes
// the port) but never listens, so connecting to it is refused.
class ClosedPort {
 public:
  ClosedPort();
  ~ClosedPort();
  ClosedPort(const ClosedPort&) = delete;
  ClosedPort& operator=(const ClosedPort&) = delete;
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

}  // namespace sluice::testing
