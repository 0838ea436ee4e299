#pragma once
// One HTTP/2 connection to one endpoint (`protocol: http2` clusters), shared by the streams of
// one worker (rule 1: never across threads). nghttp2's client session runs over our net::Stream
// by mem_recv/mem_send only: one reader coroutine feeds it what the socket gives, one writer
// coroutine sends what it has queued whenever something was submitted. Each request is an
// Http2StreamSession (http2_stream_session.h) the pool hands out while the connection has free
// stream capacity.
//
// Flow control is manual: the bytes of a stream are given back to the backend's window only
// when the router has relayed them downstream (release_body), so a slow client stops its own
// stream's upstream reads, never the connection's.
//
// Failure rules: a GOAWAY stops new streams here; streams above its last_stream_id (and any
// REFUSED_STREAM) fail as *unprocessed*, which the router may retry on another connection.
// PING keepalive finds a dead peer: `ping_interval` without a frame from the backend sends a
// PING, and no ack within `ping_timeout` closes the connection, failing its streams.
#include <nghttp2/nghttp2.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/common/asio.h"
#include "sluice/config/config.h"
#include "sluice/http/head_builder.h"
#include "sluice/net/stream.h"
#include "sluice/stats/metrics.h"
#include "sluice/upstream/circuit_breaker.h"

namespace sluice::upstream {

class Http2StreamSession;
struct Http2StreamBuffers;

class Http2Connection : public std::enable_shared_from_this<Http2Connection> {
 public:
  using Clock = std::chrono::steady_clock;

  // Counts itself in the cluster's and endpoint's active-connection gauges and in the worker's
  // circuit breaker for its lifetime, like an HTTP/1 connection (all three may be null: a
  // health check's connection counts nowhere).
  Http2Connection(const asio::any_io_executor& ex, const config::ClusterHttp2& settings,
                  stats::ClusterStats* cluster_stats, stats::EndpointStats* endpoint_stats,
                  std::shared_ptr<CircuitBreaker> breaker);
  ~Http2Connection();
  Http2Connection(const Http2Connection&) = delete;
  Http2Connection& operator=(const Http2Connection&) = delete;

  // The transport: connected (and its TLS handshake done) by the caller before start().
  net::Stream& stream() { return stream_; }
  // Once connected: sends the connection preface, SETTINGS and any request already submitted,
  // and starts the reader, the writer and the PING keepalive. False when the nghttp2 session
  // could not be made (out of memory) or the connection was closed meanwhile.
  bool start();
  // Streams may be taken while the connection is still connecting (the pool lists it at once,
  // so a burst of requests shares one connect); their frames wait until start(), and they fail
  // if the connect does.

  // Whether a new stream may start here: open, no GOAWAY, not retired, under both sides'
  // concurrent-stream limits and stream ids left.
  bool has_capacity() const;
  // A new stream (no frame sent yet). Call only when has_capacity().
  std::unique_ptr<Http2StreamSession> new_stream();
  size_t streams() const { return streams_; }
  bool closed() const { return closed_; }
  // No new streams; the connection closes when its last stream ends (TLS rotation, an endpoint
  // leaving the configuration, drain).
  void retire();
  bool retired() const { return retired_; }
  // Closes now; the streams still open fail.
  void close(std::string_view why);
  // Since when the connection carries no stream (for the idle timeout).
  Clock::time_point idle_since() const { return idle_since_; }
  uint64_t pool_generation = 0;  // EndpointPool::generation() when it was made

  // --- For Http2StreamSession. ---
  nghttp2_session* session() { return session_; }
  std::string_view scheme() const { return stream_.is_tls() ? "https" : "http"; }
  // Queues a write of what nghttp2 has to send (a no-op while a write is in progress: the
  // writer loops until nghttp2 has nothing left).
  void flush();
  // The stream's session went away: reset the stream if still open (RST_STREAM CANCEL), give
  // its unconsumed bytes back to the connection window, and end the connection if retired and
  // now empty.
  void stream_done(Http2StreamSession* stream, size_t unconsumed, bool open);
  // A stream's buffers: a spare one (emptied by the stream that had it) or a new one.
  std::unique_ptr<Http2StreamBuffers> take_buffers();
  // Keeps `buf` for the next stream while the connection is open and holds fewer spares than
  // its stream limit (never more than ever ran at once); frees it otherwise.
  void give_back(std::unique_ptr<Http2StreamBuffers> buf);
  // What a stream builds its request HEADERS in. nghttp2 copies the fields when the request is
  // submitted, so one set per connection serves every stream: a stream of its own allocated
  // and grew these for each request (callgrind, bench/instructions --grpc).
  struct RequestScratch {
    http::ForwardScratch forward;
    std::string names;  // lower-cased field names, referenced by nva
    std::string path;
    std::vector<nghttp2_nv> nva;
  };
  RequestScratch& request_scratch() { return request_scratch_; }

 private:
  bool init();  // the nghttp2 session and our SETTINGS (no I/O)
  awaitable<void> read_loop(std::shared_ptr<Http2Connection> self);
  awaitable<void> write_loop(std::shared_ptr<Http2Connection> self);
  awaitable<void> ping_loop(std::shared_ptr<Http2Connection> self);
  // Fails every open stream (the connection died) with `why` for the logs.
  void fail_streams(std::string_view why);
  void set_idle(bool idle);

  static int on_begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* user);
  static int on_header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                       size_t namelen, const uint8_t* value, size_t valuelen, uint8_t flags,
                       void* user);
  static int on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* user);
  static int on_data_chunk(nghttp2_session*, uint8_t flags, int32_t id, const uint8_t* data,
                           size_t len, void* user);
  static int on_stream_close(nghttp2_session*, int32_t id, uint32_t error_code, void* user);

  config::ClusterHttp2 settings_;
  stats::ClusterStats* cluster_stats_;
  stats::EndpointStats* endpoint_stats_;
  std::shared_ptr<CircuitBreaker> breaker_;
  net::Stream stream_;
  nghttp2_session* session_ = nullptr;
  asio::steady_timer ping_timer_;
  std::string out_;  // what the writer is sending
  RequestScratch request_scratch_;
  std::vector<Http2StreamSession*> live_;  // the sessions of this connection, for failures
  std::vector<std::unique_ptr<Http2StreamBuffers>> spare_buffers_;  // of ended streams
  size_t streams_ = 0;
  bool started_ = false;
  bool writing_ = false;
  bool closed_ = false;
  bool retired_ = false;
  bool goaway_ = false;
  bool idle_ = false;  // counted in connections_idle
  bool ping_acked_ = true;
  Clock::time_point last_frame_{};
  Clock::time_point idle_since_{};
};

}  // namespace sluice::upstream
