#pragma once
// Runs one exchange, whatever codec produced it: picks the virtual host and route, runs the
// route's filter chain, then the router step (pick cluster and endpoint, forward through an
// upstream session, relay the response back through the chain to the codec), and records the
// exchange once at its end (stats, access log). The HTTP/1 codec keeps one runner per
// connection, reused per request; the HTTP/2 codec gives one to each stream.
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sluice/common/asio.h"
#include "sluice/common/deadline.h"
#include "sluice/http/grpc.h"
#include "sluice/proxy/downstream.h"
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
  std::string_view cluster;  // into the snapshot held by `view`
  std::shared_ptr<server::WorkerView> view;  // keeps the names above alive
  size_t listener_index = 0;                 // in `view`
  uint64_t received_bytes = 0;  // request body
  uint64_t sent_bytes = 0;      // response body
  const char* flags = nullptr;  // access-log flags, e.g. "UF"; null when none
  std::string_view route_name = "-";
  // Copied from the head only when the listener writes an access log.
  bool log = false;
  std::chrono::system_clock::time_point start_wall;
  std::string method = "-", authority, target;
  bool tunnel = false;  // an upgraded connection: bytes counted both ways until either side closed
  // A gRPC exchange's grpc-status as the client got it (response trailers, else the head of a
  // trailers-only response or of Sluice's own reply); set when one was seen.
  std::optional<http::GrpcStatus> grpc_status;
};

class ExchangeRunner {
 public:
  ExchangeRunner(server::Worker& worker, const asio::any_io_executor& ex);
  // The codec this runner serves and the deadline it uses for upstream I/O (both owned by the
  // codec, which may hand the runner on to another connection once it is idle).
  void bind(Downstream& downstream, Deadline& up_deadline) {
    down_ = &downstream;
    up_deadline_ = &up_deadline;
  }

  Exchange& exchange() { return exchange_; }
  const Exchange& exchange() const { return exchange_; }
  ExchangeRecord& record() { return record_; }
  const ExchangeRecord& record() const { return record_; }

  // Starts the record of an exchange whose head was just read (or failed to parse).
  // `tls`: the connection's TLS parameters and peer identity (null on plaintext); it outlives
  // the exchange.
  void open(std::shared_ptr<server::WorkerView> view, size_t listener_index,
            std::chrono::steady_clock::time_point start, std::string_view client_address,
            const net::TlsInfo* tls);
  // Routes the exchange's request, runs the route's steps and the router step. Returns whether
  // the connection may stay open.
  awaitable<bool> run(const server::ListenerInfo& listener);
  // A reply made by Sluice itself (no route, a malformed request, an upstream failure): the
  // route's response steps run on it when the exchange was routed.
  awaitable<bool> reply(int status, LocalReason reason, std::string body, bool close);
  // Counts the exchange in the stats and logs it; a no-op when none is open.
  void finish();
  // The route timeout's end while a response streams (none when zero).
  std::chrono::steady_clock::time_point response_deadline() const { return response_deadline_; }
  // For debug logs: "METHOD target", filled only when debug logging is on.
  std::string& method_and_path() { return method_and_path_; }

 private:
  // An upstream session checked out of a worker pool for one request.
  struct Lease {
    std::shared_ptr<upstream::EndpointPool> pool;
    std::unique_ptr<upstream::Session> conn;  // an Http1Session, or an Http2StreamSession
    const upstream::EndpointInfo* endpoint = nullptr;
    bool reused = false;
    bool multiplexed = false;  // an HTTP/2 stream: its connection stays with the pool
    size_t max_idle = 0;  // the cluster's max_idle_connections
    explicit operator bool() const { return conn != nullptr; }
  };
  enum class AcquireStatus { kOk, kNoEndpoint, kConnectFailed, kOverflow };
  enum class SendStatus { kSent, kUpstreamFailed, kDownstreamGone, kBadBody, kBodyTooLarge,
                          kBodyTimeout, kLocalReply };
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

  // --- exchange_runner.cc: the chain runner. ---
  awaitable<bool> send_local_reply(bool close);
  // The response steps (reverse chain order) on exchange_.response.
  void run_response_steps();
  bool chain_wants_body() const;
  // The downstream write timeout while a response streams: the idle timeout, or less when the
  // route timeout ends sooner (so a client that stops reading is cut by the route timeout).
  config::Duration response_write_timeout() const;
  void write_access_log(std::chrono::steady_clock::time_point now);
  // Sets facts.grpc (and facts.grpc_timeout) from the request fields, in one pass.
  void detect_grpc();
  // Records the grpc-status among `fields`, if there is one (gRPC exchanges only).
  void note_grpc_status(const http::FieldList& fields);

  // --- router_step.cc: pick → forward → relay. ---
  awaitable<bool> forward(const router::Route& route);
  // The balancer's choice among the cluster's eligible endpoints (an index into `eligible`,
  // 0 when there is none); counts a panic-mode pick.
  size_t pick_endpoint(const upstream::ClusterInfo& cluster,
                       const server::WorkerView::ClusterBinding& binding,
                       std::optional<uint64_t> hash);
  // A connection of endpoint `index` (into cluster.endpoints) that is open already: a pooled
  // one (none when `fresh_only`), or a stream on a shared HTTP/2 one; an empty lease otherwise.
  Lease take_open(const upstream::ClusterInfo& cluster,
                  const server::WorkerView::ClusterBinding& binding, size_t index,
                  bool fresh_only);
  // Everything else: waits under the circuit breaker, connects, tries the other endpoints after
  // a connect failure, starting from `first`.
  awaitable<Lease> acquire(const upstream::ClusterInfo& cluster,
                           const server::WorkerView::ClusterBinding& binding, size_t first,
                           bool fresh_only, config::Duration queue_timeout, std::string& error,
                           AcquireStatus& status);
  // Connects `stream` to the lease's endpoint (TCP, then TLS with the pool's context), within
  // the cluster's connect_timeout. On failure: `ec`, `timed_out`, and OpenSSL's words in
  // `tls_error`.
  awaitable<error_code> connect(net::Stream& stream, const Lease& lease,
                                const upstream::ClusterInfo& cluster, bool& timed_out,
                                std::string& tls_error);
  // The Maglev key of a request (hash_on), or none when the request does not carry it.
  std::optional<uint64_t> request_hash(const config::HashOn& on) const;
  // `duplex`: runs beside relay_response() (gRPC over HTTP/2), which then owns the deadline.
  awaitable<SendStatus> send_request(Lease& lease, const router::Route& route, bool duplex);
  awaitable<RelayStatus> relay_response(Lease& lease, const router::Route& route);
  // gRPC over HTTP/2 on both sides: send_request() in a coroutine of its own beside
  // relay_response(); returns when both ended, with the sender's status in `sent`.
  awaitable<RelayStatus> relay_duplex(Lease& lease, const router::Route& route, SendStatus& sent);
  // The answer to a request that could not be sent whole (a bad, too large or late body, a
  // body step's local reply, a client gone); releases the lease. kSent and kUpstreamFailed are
  // not answered here.
  awaitable<bool> answer_unsent(SendStatus sent, Lease& lease);
  // The body (and, with `last`, trailer) hooks of the route's steps on one part: request side
  // in chain order, response side in reverse. A step that pauses is resumed before the part
  // moves on. kLocalReply when a step answered (request) or aborted (response).
  awaitable<filters::Status> run_body_steps(const router::Route& route, filters::BodySpans body,
                                            bool last, bool request);
  void start_endpoint_request(Lease& lease);
  void release(Lease& lease, bool reusable);

  server::Worker& worker_;
  Downstream* down_ = nullptr;
  asio::any_io_executor executor_;
  Deadline* up_deadline_ = nullptr;
  Exchange exchange_;  // the current request in neutral form, reused (its storage) per request
  ExchangeRecord record_;
  config::Duration idle_timeout_{60000};  // the listener's
  std::chrono::steady_clock::time_point response_deadline_{};  // route timeout; none when zero
  // This request's route timeout (0 = none): the route's, capped by a gRPC client's grpc-timeout.
  config::Duration route_timeout_{0};
  std::string method_and_path_;
  // Reused per request so the steady state allocates little.
  std::vector<http::HeaderView> fields_before_;  // request fields before the steps ran
  std::string client_cert_element_;  // this connection's XFCC element, rebuilt per mTLS request
};

}  // namespace sluice::proxy
