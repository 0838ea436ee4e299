#pragma once
// One downstream HTTP/1.1 connection: the HTTP/1 codec over a net::Stream. It reads request
// heads into a protocol-neutral Exchange, runs the route's filter chain, then the router step
// (pick → forward → reply), one request at a time so pipelined requests are answered in order.
// An accepted WebSocket upgrade turns it into a byte tunnel. It lives on the worker that
// accepted it and is kept alive by its own coroutine.
#include <array>
#include <chrono>
#include <optional>
#include <memory>
#include <string>
#include <vector>

#include "sluice/common/asio.h"
#include "sluice/common/byte_buffer.h"
#include "sluice/common/deadline.h"
#include "sluice/http/head_builder.h"
#include "sluice/http/parser.h"
#include "sluice/net/stream.h"
#include "sluice/proxy/exchange.h"
#include "sluice/server/worker.h"
#include "sluice/stats/metrics.h"

namespace sluice::proxy {

using stats::LocalReason;

// What one exchange did, filled in as it goes and finished in one place (stats, logs).
struct ExchangeRecord {
  bool open = false;
  std::chrono::steady_clock::time_point start;
  std::chrono::steady_clock::time_point upstream_start;  // request head sent upstream
  std::chrono::steady_clock::time_point upstream_end;    // upstream response complete
  int status = 0;
  std::optional<LocalReason> local;
  stats::RouteStats* route_stats = nullptr;
  const upstream::EndpointInfo* endpoint = nullptr;
  stats::EndpointStats* endpoint_stats = nullptr;
  std::string_view cluster;  // into the snapshot held by `view`
  std::shared_ptr<server::WorkerView> view;  // keeps the names above alive
  uint64_t received_bytes = 0;  // request body
  uint64_t sent_bytes = 0;      // response body
  const char* flags = nullptr;  // access-log flags, e.g. "UF"; null when none
  std::string_view route_name = "-";
  // Copied from the head only when the listener writes an access log.
  bool log = false;
  std::chrono::system_clock::time_point start_wall;
  std::string method = "-", authority, target, request_id;
  const char* protocol = "HTTP/1.1";
  bool tunnel = false;  // an upgraded connection: bytes counted both ways until either side closed
};

class DownstreamConnection : public std::enable_shared_from_this<DownstreamConnection> {
 public:
  DownstreamConnection(server::Worker& worker, std::string listener_name, tcp::socket socket);
  ~DownstreamConnection();
  void start();
  // Worker thread: closes the connection now if it is idle, otherwise after the current response.
  void drain();
  const std::string& listener_name() const { return listener_name_; }

 private:
  enum class HeadStatus {
    kOk,
    kClosed,
    kTimeout,
    kBad,             // 400
    kTooLarge,        // 431
    kNotImplemented,  // 501: a transfer coding Sluice cannot forward
    kBadVersion,      // 505: a well-formed HTTP version other than 1.0 and 1.1
  };
  enum class SendStatus {
    kSent,
    kUpstreamFailed,
    kDownstreamGone,
    kBadBody,
    kBodyTooLarge,
    kBodyTimeout,  // request_body_timeout or request_body_total_timeout passed
  };
  enum class RelayStatus {
    kDone,
    kClosedBeforeResponse,  // not one byte came back: the request may be retried on a fresh connection
    kUpstreamReset,
    kInvalidResponse,
    kTimeout,
    kFailedAfterHead,  // the response was cut after its head went downstream: abort the connection
    kDownstreamGone,
    kUpgraded,  // 101 to an upgrade Sluice asked for: the head went downstream, tunnel next
  };

  // What the rest of the exchange needs from the request head, copied out before body bytes
  // may reuse the buffer.
  struct RequestInfo {
    bool is_head = false;
    bool http10 = false;
    bool keep_alive = true;
    bool has_body = false;
    bool chunked = false;
    bool expect_continue = false;
    bool idempotent = false;  // RFC 9110 §9.2.2: may be sent again after a failed attempt
    std::string_view upgrade;  // a WebSocket offer this route tunnels ("websocket"), else empty
    bool request_id_generated = false;
    std::string request_id;
  };

  // An upstream connection checked out of a worker pool for one request.
  struct Lease {
    std::shared_ptr<upstream::EndpointPool> pool;
    std::unique_ptr<upstream::UpstreamConnection> conn;
    const upstream::EndpointInfo* endpoint = nullptr;
    bool reused = false;
    size_t max_idle = 0;  // the cluster's max_idle_connections
    explicit operator bool() const { return conn != nullptr; }
  };

  awaitable<void> run();
  awaitable<HeadStatus> read_head(const config::Listener& spec);
  // Serves the request whose head was just read; returns whether the connection stays open.
  awaitable<bool> serve(const server::WorkerView& view, const server::ListenerInfo& listener);
  // The router step: pick an endpoint, forward, relay the response.
  awaitable<bool> proxy(const server::WorkerView& view, const server::ListenerInfo& listener,
                        const router::Route& route, const http::RequestView& request,
                        const RequestInfo& info);
  enum class AcquireStatus { kOk, kNoEndpoint, kConnectFailed, kOverflow };
  awaitable<Lease> acquire(const upstream::ClusterInfo& cluster,
                           const server::WorkerView::ClusterBinding& binding, bool fresh_only,
                           std::optional<uint64_t> hash, config::Duration queue_timeout,
                           std::string& error, AcquireStatus& status);
  // The Maglev key of a request (hash_on), or none when the request does not carry it.
  std::optional<uint64_t> request_hash(const config::HashOn& on, const http::RequestView& req) const;
  awaitable<SendStatus> send_request(Lease& lease, const config::Listener& spec, const RequestInfo& info);
  awaitable<RelayStatus> relay_response(Lease& lease, const RequestInfo& info,
                                        const router::Route& route, bool& keep_alive);
  // Both connections after a 101: bytes both ways until either side is done or the tunnel has
  // been idle for `idle_timeout`.
  awaitable<void> tunnel(Lease& lease, config::Duration idle_timeout);
  // What the two halves of a tunnel share; it lives in tunnel()'s frame, which outlives both.
  struct TunnelState {
    explicit TunnelState(const asio::any_io_executor& ex) : done(ex), idle(ex) {}
    asio::steady_timer done;  // cancelled to wake tunnel() when the other half has finished
    asio::steady_timer idle;  // the idle watchdog's timer
    config::Duration idle_timeout{0};
    std::chrono::steady_clock::time_point last_activity;
    bool up_done = false, down_done = false, failed = false, watcher_done = false;
  };
  // Copies `from` → `to` (starting with what `buffer` holds) until EOF (passed on as a half
  // close) or an error (which ends both directions).
  awaitable<void> pump(net::Stream& from, net::Stream& to, ByteBuffer& buffer, TunnelState& state,
                       uint64_t& counter);
  awaitable<void> watch_tunnel(TunnelState& state, upstream::UpstreamConnection& up);
  static std::string transfer_codings_of(const http::Parser& parser, const char* base);
  // The response steps of the exchange's route (none for a reply made before routing).
  void run_response_steps();
  // Builds the response head of the exchange (after the response steps) into out_.
  void queue_response_head(const RequestInfo& info, bool chunked, bool close,
                           std::string_view transfer_codings, std::string_view upgrade);
  void start_endpoint_request(Lease& lease);
  void release(Lease& lease, bool reusable);
  // A small text/plain reply; returns whether the connection stays open.
  awaitable<bool> local_reply(int status, LocalReason reason, std::string_view body, bool close,
                              std::string_view request_id = {});
  // A reply made by a step (exchange_.local_reply), after the route's response steps.
  awaitable<bool> send_local_reply(const router::Route* route, bool close);
  awaitable<bool> write_downstream(config::Duration idle_timeout);
  // The downstream write timeout while a response streams: the idle timeout, or less when the
  // route timeout ends sooner (so a client that stops reading is cut by the route timeout).
  config::Duration response_write_timeout() const;
  // The listener of this connection left the configuration (a reload removed it).
  bool listener_removed() const;
  awaitable<void> close_gracefully();
  // Queues body spans (as one chunk when `chunked`); with `last`, the end of a chunked body with
  // the message's trailer fields (hop-by-hop ones removed).
  void append_body(const std::vector<std::span<const char>>& body, bool chunked, bool last,
                   const std::vector<http::OwnedField>& trailers);
  // Starts the record of the exchange whose head was just read (or failed to parse).
  void open_exchange(std::shared_ptr<server::WorkerView> view);
  // Counts the exchange in the stats and logs it; a no-op when none is open.
  void finish_exchange();
  void write_access_log(std::chrono::steady_clock::time_point now);

  server::Worker& worker_;
  std::string listener_name_;
  net::Stream stream_;
  std::string client_address_;
  Deadline down_deadline_;
  Deadline up_deadline_;
  ByteBuffer in_;
  http::Parser parser_;
  size_t head_end_ = 0;       // offset just past the current request head
  bool body_unread_ = false;  // request body bytes may still be on the wire
  bool request_keep_alive_ = true;  // the client allows another request on this connection
  bool idle_ = false;         // waiting for the first byte of a request
  bool first_request_ = true;  // no request read yet: the header timeout runs from accept
  config::Duration idle_timeout_{60000};
  std::chrono::steady_clock::time_point head_start_;  // first byte of the current request
  size_t listener_index_ = 0;                        // in the view of the current exchange
  stats::ListenerStats* listener_stats_ = nullptr;
  ExchangeRecord record_;
  Exchange exchange_;  // the current request in neutral form, reused (its storage) per request
  bool is_head_ = false;  // the current request is HEAD: replies carry no body
  std::chrono::steady_clock::time_point response_deadline_{};  // route timeout; none when zero

  // Reused per request so the steady state allocates little.
  std::vector<http::HeaderView> headers_;
  std::vector<http::HeaderView> fields_before_;  // request fields before the steps ran
  http::HeadParts head_parts_;
  std::vector<asio::const_buffer> out_;
  std::array<char, 24> chunk_head_{};  // one chunk per write: all body spans of a read merged
  std::string method_and_path_;  // for logs
  std::string last_chunk_;       // "0\r\n", trailer fields, "\r\n" of the body being written
};

}  // namespace sluice::proxy
