#pragma once
// The admin HTTP server (Boost.Beast) on the control thread: stats, readiness, server info,
// config dump, clusters, and the health-check override. Never on a data listener; it reads
// worker stats without posting to workers, so admin requests never block a worker.
#include <memory>
#include <string>

#include "sluice/common/asio.h"
#include "sluice/common/result.h"
#include "sluice/config/config.h"
#include "sluice/server/server.h"

namespace sluice::admin {

// Admin connections open at once. One more is closed as soon as it is accepted, so scrapers and
// health checks that leave connections open cannot take every descriptor of the process (rule 7).
// Not configurable yet (an `admin.max_connections` key would be the place).
inline constexpr size_t kMaxAdminConnections = 64;

class AdminServer {
 public:
  static Result<std::unique_ptr<AdminServer>> create(asio::io_context& context,
                                                     server::Server& server,
                                                     const config::Address& address);
  void start();
  uint16_t port() const { return port_; }
  // POST /healthcheck/fail sets this; /ready answers 503 while it is set.
  bool health_check_failed() const { return health_check_failed_; }

  struct Response {
    int status = 200;
    std::string content_type = "text/plain; charset=utf-8";
    std::string body;
  };
  // The routing of one admin request, separated from the transport for tests.
  Response handle(std::string_view method, std::string_view target);

 private:
  AdminServer(asio::io_context& context, server::Server& server);
  awaitable<void> accept_loop();
  awaitable<void> serve_connection(tcp::socket socket);

  asio::io_context& context_;
  server::Server& server_;
  tcp::acceptor acceptor_;
  // Open admin connections. Shared with the connections' coroutines, which may be destroyed
  // after this object when the io_context is torn down.
  std::shared_ptr<size_t> connections_ = std::make_shared<size_t>(0);
  uint16_t port_ = 0;
  bool health_check_failed_ = false;
};

}  // namespace sluice::admin
