#pragma once
// Per-worker keep-alive connections to one endpoint of one cluster (rule 1: never shared across
// threads). Idle connections are kept newest-last and reused newest first.
#include <chrono>
#include <memory>
#include <vector>

#include "sluice/common/asio.h"
#include "sluice/common/byte_buffer.h"
#include "sluice/http/parser.h"

namespace sluice::upstream {

using Clock = std::chrono::steady_clock;

struct UpstreamConnection {
  explicit UpstreamConnection(const asio::any_io_executor& ex)
      : socket(ex), in(32 * 1024), parser(http::Parser::Kind::kResponse, 1000) {}
  tcp::socket socket;
  ByteBuffer in;
  http::Parser parser;
  Clock::time_point idle_since{};
  uint64_t requests = 0;
};

class EndpointPool {
 public:
  // A live idle connection, or null. Connections idle for longer than `idle_timeout`, and those
  // the backend has closed (a FIN or stray bytes waiting on the socket), are dropped here, so a
  // request is never sent on a connection already known to be dead.
  std::unique_ptr<UpstreamConnection> take(Clock::time_point now, Clock::duration idle_timeout);
  void give_back(std::unique_ptr<UpstreamConnection> conn, Clock::time_point now, size_t max_idle);
  // Closes connections idle for longer than `idle_timeout`.
  void sweep(Clock::time_point now, Clock::duration idle_timeout);
  void close_all();
  size_t idle() const { return idle_.size(); }
  size_t active = 0;  // connections checked out by requests

 private:
  std::vector<std::unique_ptr<UpstreamConnection>> idle_;
};

// True when nothing is waiting on an idle socket: no FIN, no reset, no unexpected bytes.
bool idle_socket_is_alive(tcp::socket& socket);

}  // namespace sluice::upstream
