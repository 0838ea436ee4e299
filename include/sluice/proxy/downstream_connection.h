#pragma once
// One downstream HTTP/1.1 connection: reads request heads, routes each request and proxies it
// (route → pick → forward → reply), one at a time, so pipelined requests are answered in order.
// It lives on the worker that accepted it and is kept alive by its own coroutine.
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
};

class DownstreamConnection : public std::enable_shared_from_this<DownstreamConnection> {
 public:
  DownstreamConnection(server::Worker& worker, std::string listener_name, tcp::socket socket);
  ~DownstreamConnection();
  void start();
  // Worker thread: closes the connection now if it is idle, otherwise after the current response.
  void drain();

 private:
  enum class HeadStatus { kOk, kClosed, kTimeout, kBad, kTooLarge };
  enum class SendStatus { kSent, kUpstreamFailed, kDownstreamGone, kBadBody, kBodyTooLarge };
  enum class RelayStatus {
    kDone,
    kClosedBeforeResponse,  // not one byte came back: the request may be retried on a fresh connection
    kUpstreamReset,
    kInvalidResponse,
    kTimeout,
    kFailedAfterHead,  // the response was cut after its head went downstream: abort the connection
    kDownstreamGone,
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
  awaitable<bool> proxy(const server::WorkerView& view, const server::ListenerInfo& listener,
                        const router::Route& route, const http::RequestView& request,
                        const RequestInfo& info);
  awaitable<Lease> acquire(const upstream::ClusterInfo& cluster,
                           const server::WorkerView::ClusterBinding& binding, bool fresh_only,
                           std::optional<uint64_t> hash, std::string& error);
  // The Maglev key of a request (hash_on), or none when the request does not carry it.
  std::optional<uint64_t> request_hash(const config::HashOn& on, const http::RequestView& req) const;
  awaitable<SendStatus> send_request(Lease& lease, const config::Listener& spec, const RequestInfo& info);
  awaitable<RelayStatus> relay_response(Lease& lease, const RequestInfo& info,
                                        config::Duration route_timeout, const config::Listener& spec,
                                        bool& keep_alive);
  void start_endpoint_request(Lease& lease);
  void release(Lease& lease, bool reusable);
  // A small text/plain reply; returns whether the connection stays open.
  awaitable<bool> local_reply(int status, LocalReason reason, std::string_view body, bool close,
                              std::string_view request_id = {});
  awaitable<bool> write_downstream(config::Duration idle_timeout);
  awaitable<void> close_gracefully();
  void append_body(const std::vector<std::span<const char>>& body, bool chunked, bool last);
  // Starts the record of the exchange whose head was just read (or failed to parse).
  void open_exchange(std::shared_ptr<server::WorkerView> view);
  // Counts the exchange in the stats and logs it; a no-op when none is open.
  void finish_exchange();
  void write_access_log(std::chrono::steady_clock::time_point now);

  server::Worker& worker_;
  std::string listener_name_;
  tcp::socket socket_;
  std::string client_address_;
  Deadline down_deadline_;
  Deadline up_deadline_;
  ByteBuffer in_;
  http::Parser parser_;
  size_t head_end_ = 0;       // offset just past the current request head
  bool body_unread_ = false;  // request body bytes may still be on the wire
  bool request_keep_alive_ = true;  // the client allows another request on this connection
  bool idle_ = false;         // waiting for the first byte of a request
  config::Duration idle_timeout_{60000};
  std::chrono::steady_clock::time_point head_start_;  // first byte of the current request
  size_t listener_index_ = 0;                        // in the view of the current exchange
  stats::ListenerStats* listener_stats_ = nullptr;
  ExchangeRecord record_;

  // Reused per request so the steady state allocates little.
  std::vector<http::HeaderView> headers_;
  http::HeadParts head_parts_;
  std::vector<asio::const_buffer> out_;
  std::array<char, 24> chunk_head_{};  // one chunk per write: all body spans of a read merged
  std::string method_and_path_;  // for logs
};

}  // namespace sluice::proxy
