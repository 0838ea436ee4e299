#pragma once
// Per-worker keep-alive connections to one endpoint of one cluster (rule 1: never shared across
// threads). Idle connections are kept newest-last and reused newest first.
#include <chrono>
#include <memory>
#include <vector>

#include "sluice/common/asio.h"
#include "sluice/common/byte_buffer.h"
#include "sluice/http/parser.h"
#include "sluice/net/stream.h"
#include "sluice/stats/metrics.h"
#include "sluice/upstream/circuit_breaker.h"
#include "sluice/upstream/http1_session.h"
#include "sluice/upstream/http2_connection.h"

namespace sluice::upstream {

using Clock = std::chrono::steady_clock;

// The pool holds idle HTTP/1.1 sessions (one request each at a time) and, for HTTP/2 clusters,
// the worker's multiplexed connections to the endpoint, which hand out streams.
using UpstreamConnection = Http1Session;

class EndpointPool {
 public:
  EndpointPool(stats::ClusterStats* cluster_stats, stats::EndpointStats* endpoint_stats)
      : cluster_stats_(cluster_stats), endpoint_stats_(endpoint_stats) {}
  stats::ClusterStats* cluster_stats() const { return cluster_stats_; }
  stats::EndpointStats* endpoint_stats() const { return endpoint_stats_; }

  // Idle connections younger than this are handed out without the liveness peek.
  static constexpr Clock::duration kLivenessCheckAfter = std::chrono::milliseconds(200);

  // A live idle connection, or null. Connections idle for longer than `idle_timeout`, and those
  // the backend has closed (a FIN or stray bytes waiting on the socket, checked on connections
  // idle for kLivenessCheckAfter or more), are dropped here, so a request is never sent on a
  // connection already known to be dead.
  std::unique_ptr<UpstreamConnection> take(Clock::time_point now, Clock::duration idle_timeout);
  void give_back(std::unique_ptr<UpstreamConnection> conn, Clock::time_point now, size_t max_idle);
  // Closes connections idle for longer than `idle_timeout` (HTTP/2: without a stream).
  void sweep(Clock::time_point now, Clock::duration idle_timeout);
  void close_all();
  // The endpoint left the configuration: close idle connections now, and those in use when
  // their request ends (HTTP/2: when their last stream ends).
  void retire() {
    retired_ = true;
    close_all();
  }
  size_t idle() const { return idle_.size(); }

  // --- HTTP/2 (multiplexed) connections. ---
  // A connection with a free stream slot made in the current use_tls() era, or null (then the
  // caller opens one, within the circuit breaker, and adds it). Closed connections are dropped.
  Http2Connection* h2_with_capacity();
  void add_h2(std::shared_ptr<Http2Connection> conn);
  size_t h2_connections() const { return h2_.size(); }

  // TLS: the client context of the cluster as the newest snapshot has it (null: plaintext).
  // A different context (TLS switched on or off, rotated material) closes the idle connections
  // and makes those in use close when they come back: none made with the old material is reused.
  void use_tls(const std::shared_ptr<const net::TlsClientContext>& tls);
  const std::shared_ptr<const net::TlsClientContext>& tls() const { return tls_; }
  // Which use_tls() era a connection was made in (Http1Session::pool_generation).
  uint64_t generation() const { return generation_; }
  // The session the next TLS connection to this endpoint resumes (null: a full handshake).
  SSL_SESSION* tls_session() const { return tls_session_.get(); }
  // Keeps `conn`'s TLS session (if resumable) for the next connection; called for every
  // connection whose exchange ended, reused or not: a backend that closes after each response
  // is where resumption saves the most.
  void keep_tls_session(UpstreamConnection& conn) { keep_tls_session(conn.stream(), conn.pool_generation); }
  void keep_tls_session(net::Stream& stream, uint64_t generation);

 private:
  void retire_h2();
  void drop_idle(size_t n) { cluster_stats_->connections_idle.add(-static_cast<int64_t>(n)); }

  bool retired_ = false;
  stats::ClusterStats* cluster_stats_;
  stats::EndpointStats* endpoint_stats_;
  std::vector<std::unique_ptr<UpstreamConnection>> idle_;
  std::vector<std::shared_ptr<Http2Connection>> h2_;
  std::shared_ptr<const net::TlsClientContext> tls_;
  uint64_t generation_ = 0;
  net::SslSessionPtr tls_session_;
};

// True when nothing is waiting on an idle socket: no FIN, no reset, no unexpected bytes.
bool idle_socket_is_alive(tcp::socket& socket);

}  // namespace sluice::upstream
