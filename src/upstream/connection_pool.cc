#include "sluice/upstream/connection_pool.h"

#include <sys/socket.h>

#include <cerrno>

namespace sluice::upstream {

UpstreamConnection::UpstreamConnection(const asio::any_io_executor& ex,
                                       stats::ClusterStats* cstats, stats::EndpointStats* estats)
    : cluster_stats(cstats),
      endpoint_stats(estats),
      socket(ex),
      in(32 * 1024),
      parser(http::Parser::Kind::kResponse, 1000) {
  cluster_stats->connections_active.add(1);
  endpoint_stats->connections_active.add(1);
}

UpstreamConnection::~UpstreamConnection() {
  cluster_stats->connections_active.add(-1);
  endpoint_stats->connections_active.add(-1);
}

bool idle_socket_is_alive(tcp::socket& socket) {
  char byte;
  ssize_t n = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK;
  // 0: the peer closed; > 0: bytes nobody asked for, so the connection's framing is lost.
  return false;
}

std::unique_ptr<UpstreamConnection> EndpointPool::take(Clock::time_point now,
                                                       Clock::duration idle_timeout) {
  while (!idle_.empty()) {
    std::unique_ptr<UpstreamConnection> conn = std::move(idle_.back());
    idle_.pop_back();
    drop_idle(1);
    if (now - conn->idle_since >= idle_timeout || !idle_socket_is_alive(conn->socket)) {
      error_code ignored;
      conn->socket.close(ignored);
      continue;
    }
    return conn;
  }
  return nullptr;
}

void EndpointPool::give_back(std::unique_ptr<UpstreamConnection> conn, Clock::time_point now,
                             size_t max_idle) {
  if (retired_ || idle_.size() >= max_idle) {
    error_code ignored;
    conn->socket.close(ignored);
    return;
  }
  conn->idle_since = now;
  idle_.push_back(std::move(conn));
  cluster_stats_->connections_idle.add(1);
}

void EndpointPool::sweep(Clock::time_point now, Clock::duration idle_timeout) {
  // Oldest first: idle_ is ordered by idle_since.
  size_t expired = 0;
  while (expired < idle_.size() && now - idle_[expired]->idle_since >= idle_timeout) ++expired;
  for (size_t i = 0; i < expired; ++i) {
    error_code ignored;
    idle_[i]->socket.close(ignored);
  }
  idle_.erase(idle_.begin(), idle_.begin() + static_cast<ptrdiff_t>(expired));
  drop_idle(expired);
}

void EndpointPool::close_all() {
  for (auto& c : idle_) {
    error_code ignored;
    c->socket.close(ignored);
  }
  drop_idle(idle_.size());
  idle_.clear();
}

}  // namespace sluice::upstream
