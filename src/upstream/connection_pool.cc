#include "sluice/upstream/connection_pool.h"

#include <sys/socket.h>

#include <cerrno>

namespace sluice::upstream {

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
    const Clock::duration idle_for = now - conn->idle_since;
    // The liveness peek is a syscall (a third of the recvfrom calls of a small GET, strace), so
    // a connection idle for less than kLivenessCheckAfter skips it: backends close idle
    // connections, or send a 408 first, after their keep-alive timeout (seconds: nginx 75 s,
    // Jetty 30 s, Node 5 s), not within milliseconds of a keep-alive response. Should one
    // close sooner anyway, the request fails before any response byte, which an idempotent
    // request without a body survives by the retry on a fresh connection (a POST gets 502).
    const bool check = idle_for >= kLivenessCheckAfter;
    // Over TLS the bytes on the socket may be records OpenSSL handles itself (TLS 1.3 session
    // tickets), so OpenSSL reads them; only application data or a close means dead.
    auto alive = [&] {
      net::Stream& s = conn->stream();
      return s.is_tls() ? s.tls_idle_alive() : idle_socket_is_alive(s.lowest_layer());
    };
    if (idle_for >= idle_timeout || (check && !alive())) {
      conn->stream().close();
      continue;
    }
    return conn;
  }
  return nullptr;
}

void EndpointPool::give_back(std::unique_ptr<UpstreamConnection> conn, Clock::time_point now,
                             size_t max_idle) {
  keep_tls_session(*conn);
  if (retired_ || idle_.size() >= max_idle || conn->pool_generation != generation_) {
    conn->stream().close();
    return;
  }
  conn->idle_since = now;
  CircuitBreaker* breaker = conn->breaker();
  idle_.push_back(std::move(conn));
  cluster_stats_->connections_idle.add(1);
  if (breaker) breaker->returned();  // a request waiting for a connection may take this one
}

void EndpointPool::keep_tls_session(net::Stream& stream, uint64_t generation) {
  if (stream.is_tls() && generation == generation_) {
    // Read after a response, so a TLS 1.3 ticket sent after the handshake is in it.
    if (auto session = stream.tls_session()) tls_session_ = std::move(session);
  }
}

Http2Connection* EndpointPool::h2_with_capacity() {
  Http2Connection* found = nullptr;
  for (size_t i = 0; i < h2_.size();) {
    Http2Connection& c = *h2_[i];
    if (c.closed()) {
      h2_[i] = std::move(h2_.back());
      h2_.pop_back();
      continue;
    }
    if (!found && c.has_capacity()) found = &c;
    ++i;
  }
  return found;
}

void EndpointPool::add_h2(std::shared_ptr<Http2Connection> conn) {
  if (retired_) conn->retire();
  h2_.push_back(std::move(conn));
}

void EndpointPool::retire_h2() {
  // No new streams on these; each closes when its last stream ends (at once when it has none).
  for (auto& c : h2_) c->retire();
  h2_.clear();
}

void EndpointPool::use_tls(const std::shared_ptr<const net::TlsClientContext>& tls) {
  if (tls == tls_) return;
  close_all();  // HTTP/2 connections made with the old material take no new stream
  tls_ = tls;
  tls_session_.reset();
  ++generation_;
}

void EndpointPool::sweep(Clock::time_point now, Clock::duration idle_timeout) {
  // Oldest first: idle_ is ordered by idle_since.
  size_t expired = 0;
  while (expired < idle_.size() && now - idle_[expired]->idle_since >= idle_timeout) ++expired;
  for (size_t i = 0; i < expired; ++i) {
    idle_[i]->stream().close();
  }
  idle_.erase(idle_.begin(), idle_.begin() + static_cast<ptrdiff_t>(expired));
  drop_idle(expired);
  for (size_t i = 0; i < h2_.size();) {
    Http2Connection& c = *h2_[i];
    if (!c.closed() && c.streams() == 0 && now - c.idle_since() >= idle_timeout) c.close("idle timeout");
    if (c.closed()) {
      h2_[i] = std::move(h2_.back());
      h2_.pop_back();
      continue;
    }
    ++i;
  }
}

void EndpointPool::close_all() {
  for (auto& c : idle_) {
    c->stream().close();
  }
  drop_idle(idle_.size());
  idle_.clear();
  retire_h2();
}

}  // namespace sluice::upstream
