// The router step, the end of every `cluster` route's chain: pick an endpoint (balancer,
// circuit breaker), check out an upstream session, forward the request head and body through
// it, relay the response back through the route's steps to the codec, and retry only what may
// be retried.
#include <fmt/core.h>

#include <optional>

#include "sluice/common/log.h"
#include "sluice/http/forwarded_client_cert.h"
#include "sluice/net/stream.h"
#include "sluice/proxy/exchange_runner.h"
#include "sluice/upstream/hash.h"
#include "sluice/upstream/http2_stream_session.h"

namespace sluice::proxy {

awaitable<bool> ExchangeRunner::forward(const router::Route& route) {
  const server::WorkerView& view = *record_.view;
  const auto& action = route.action();
  const upstream::ClusterInfo& cluster = *view.snapshot->clusters[action.cluster_index];
  const auto& binding = view.clusters[action.cluster_index];
  record_.cluster = cluster.name();
  const RequestHead& request = exchange_.request;

  std::string rewritten;
  std::string_view path = request.path;
  if (action.prefix_rewrite) {
    rewritten = route.rewritten_path(request.path);
    path = rewritten;
  }
  std::optional<uint64_t> hash;
  if (cluster.spec.lb == config::Cluster::LbPolicy::kMaglev) hash = request_hash(cluster.spec.hash_on);
  // Request steps change the fields per attempt (the endpoint may differ): start each attempt
  // from the fields as they were before the steps ran. A member, so its storage is reused.
  const bool has_steps = !route.chain().empty();
  if (has_steps) fields_before_ = exchange_.request.fields.items();
  // A gRPC client's grpc-timeout caps the route timeout, and applies alone where the route has
  // none (facts.grpc_timeout is 0 for every other request).
  const config::Duration grpc_timeout = exchange_.facts.grpc_timeout;
  route_timeout_ = action.timeout;
  if (grpc_timeout.count() > 0 && action.grpc_timeout_header) {
    route_timeout_ =
        action.timeout.count() > 0 ? std::min(action.timeout, grpc_timeout) : grpc_timeout;
  }
  // Waiting for a connection under the circuit breaker counts against the route timeout.
  const config::Duration queue_timeout =
      route_timeout_.count() > 0 ? route_timeout_ : cluster.spec.connect_timeout;

  for (int attempt = 0;; ++attempt) {
    std::string connect_error;
    AcquireStatus acquired = AcquireStatus::kOk;
    const size_t first = pick_endpoint(cluster, binding, hash);
    // The usual case, a pooled connection (or a stream on a shared one) of the balancer's pick,
    // is taken without a coroutine: its frame and suspension cost ~200 instructions per small
    // GET (bench/instructions). A retry goes to a freshly opened connection, never to another
    // pooled one.
    Lease lease = attempt == 0 && !cluster.eligible.empty()
                      ? take_open(cluster, binding, cluster.eligible[first], /*fresh_only=*/false)
                      : Lease{};
    if (!lease) {
      lease = co_await acquire(cluster, binding, first, /*fresh_only=*/attempt > 0, queue_timeout,
                               connect_error, acquired);
    }
    if (acquired == AcquireStatus::kOverflow) {
      co_return co_await reply(503, LocalReason::kOverflow,
                               fmt::format("upstream overflow: {} (cluster '{}')\n", connect_error,
                                           cluster.name()),
                               false);
    }
    if (!lease && cluster.eligible.empty()) {
      co_return co_await reply(503, LocalReason::kNoHealthyUpstream,
                               fmt::format("no healthy upstream (cluster '{}')\n", cluster.name()),
                               false);
    }
    if (!lease) {
      co_return co_await reply(
          503, LocalReason::kConnectFailure,
          fmt::format("upstream connect error: {} (cluster '{}')\n", connect_error, cluster.name()),
          false);
    }
    exchange_.upstream_host = lease.endpoint->key;
    if (has_steps) {
      exchange_.request.fields.items() = fields_before_;
      for (const auto& step : route.chain()) step->on_upstream_request(exchange_);
    }

    http::UpstreamRequestInput head;
    head.method = request.method;
    head.path = path;
    head.query = request.query;
    head.host = action.host_rewrite ? std::string_view(*action.host_rewrite) : request.authority;
    // An HTTP/1.0 request may come without Host: the backend gets the endpoint's address, as
    // nginx sends its proxy_host (an empty Host is refused by HTTP/1.1 servers, RFC 9112 §3.2).
    if (head.host.empty()) head.host = lease.endpoint->key;
    head.original_host = request.authority;
    head.client_address = exchange_.client_address;
    head.forwarded_proto = request.scheme;
    if (exchange_.facts.request_id_generated) head.generated_request_id = exchange_.request_id;
    // A body of undeclared length is framed as chunked upstream.
    head.chunked_body = exchange_.facts.has_body && !exchange_.facts.body_length_known;
    head.has_body = exchange_.facts.has_body;
    // An HTTP/2 cluster cannot tunnel: the upgrade offer is dropped and the request served as a
    // plain one (documented).
    if (!lease.multiplexed) head.upgrade = exchange_.facts.upgrade;
    // x-forwarded-client-cert: removed unless the connection is mTLS (nothing to decide on
    // plaintext, so a plain request pays one test).
    if (exchange_.tls && exchange_.tls->peer_certificate) {
      const auto& tls_spec = view.snapshot->listeners()[record_.listener_index].spec.tls;
      head.client_cert = http::client_cert_header(
          tls_spec ? tls_spec->forward_client_cert : config::ForwardClientCert::kSanitizeSet,
          exchange_.tls);
      if (head.client_cert == http::ClientCertHeader::kAppend ||
          head.client_cert == http::ClientCertHeader::kSet) {
        client_cert_element_.clear();
        http::append_client_cert_element(*exchange_.tls, client_cert_element_);
        head.client_cert_element = client_cert_element_;
      }
    }
    head.headers = exchange_.request.fields.items();
    // A step may have set Host: the head builder writes `host` itself from head.host. Unchanged,
    // the field is the authority's own bytes: the pointer test spares the string comparison
    // (an out-of-line compare, 47 instructions per small GET, bench/instructions).
    if (auto h = exchange_.request.fields.get("host");
        h && h->data() != request.authority.data() && *h != request.authority) {
      head.host = *h;
    }
    lease.conn->queue_request_head(head, exchange_.facts.head_request);

    // Sluice asks for the body itself (and drops Expect upstream), like nginx: the body then
    // streams without waiting on the backend's interim response.
    if (down_->wants_continue() && !co_await down_->send_continue()) {
      release(lease, false);
      co_return false;
    }
    // gRPC over HTTP/2 on both sides streams both ways at once (a bidirectional call's server
    // answers while its client still sends, and stops reading when its answers are not read):
    // the request body then goes up from a coroutine of its own while this one relays the
    // response. Everything else sends its whole request first, as HTTP/1 proxies do.
    const bool duplex = exchange_.facts.grpc && exchange_.facts.has_body && lease.multiplexed &&
                        exchange_.facts.protocol == "HTTP/2";
    // A pooled connection the backend closed just as we reused it fails before any response
    // byte. An idempotent request without a body can be sent again, once, on a fresh
    // connection; anything else (a POST, or any request whose body bytes left) never is: the
    // backend may have acted on it (RFC 9110 §9.2.2).
    const bool may_retry = lease.reused && exchange_.facts.idempotent && !exchange_.facts.has_body &&
                           attempt == 0;
    // The error records its source and whether it may be retried; the retry decision reads it
    // (the resilience work adds retry policies on the same record).
    // An HTTP/2 backend may also say it did not process the request (GOAWAY, REFUSED_STREAM):
    // then any method may go again on another connection, once, if no body had to be sent.
    auto upstream_error = [&] {
      const bool unprocessed = lease.conn->unprocessed() && !exchange_.facts.has_body && attempt == 0;
      exchange_.error = Error{Error::Source::kUpstream, may_retry || unprocessed};
      return exchange_.error->retryable;
    };
    SendStatus sent = SendStatus::kSent;
    RelayStatus relayed;
    if (duplex) {
      record_.upstream_start = std::chrono::steady_clock::now();
      relayed = co_await relay_duplex(lease, route, sent);
      record_.upstream_end = std::chrono::steady_clock::now();
      // A response that began stands; without one, a request that could not be sent whole is
      // answered as in the sequential case.
      const bool answered = relayed == RelayStatus::kDone || relayed == RelayStatus::kFailedAfterHead ||
                            relayed == RelayStatus::kDownstreamGone;
      if (!answered && sent != SendStatus::kSent && sent != SendStatus::kUpstreamFailed) {
        co_return co_await answer_unsent(sent, lease);
      }
    } else {
      // A request without a body is its head alone: when the socket takes it at once, no
      // coroutine runs (send_request's frame, write_request's and the asynchronous write's
      // operation; with the same for the response write, 26.4k -> 20.4k instructions per
      // small GET, bench/instructions).
      sent = !exchange_.facts.has_body && lease.conn->write_request_now(/*more_follows=*/false)
                 ? SendStatus::kSent
                 : co_await send_request(lease, route, /*duplex=*/false);
      if (sent != SendStatus::kSent && sent != SendStatus::kUpstreamFailed) {
        co_return co_await answer_unsent(sent, lease);
      }
      if (sent == SendStatus::kUpstreamFailed) {
        const bool retry = upstream_error();  // reads the session: before release()
        release(lease, false);
        if (retry) continue;
        co_return co_await reply(502, LocalReason::kUpstreamReset,
                                 "upstream connection failed while sending the request\n", false);
      }
      record_.upstream_start = std::chrono::steady_clock::now();
      relayed = co_await relay_response(lease, route);
      record_.upstream_end = std::chrono::steady_clock::now();
    }
    switch (relayed) {
      case RelayStatus::kDone:
        record_.status = lease.conn->head_facts().status;
        binding.stats->upstream_requests[stats::code_class_index(record_.status)].add();
        release(lease, lease.conn->reusable());
        co_return down_->keeps_connection();
      case RelayStatus::kUpgraded:
        record_.status = 101;
        record_.tunnel = true;
        binding.stats->upstream_requests[0].add();
        co_await down_->tunnel(*lease.conn, action.upgrade_idle_timeout, record_.received_bytes,
                              record_.sent_bytes);
        release(lease, false);
        co_return false;
      case RelayStatus::kClosedBeforeResponse: {
        const bool retry = upstream_error();  // reads the session: before release()
        release(lease, false);
        if (retry) continue;
        co_return co_await reply(502, LocalReason::kUpstreamReset,
                                 "upstream closed the connection before responding\n", false);
      }
      case RelayStatus::kUpstreamReset:
        release(lease, false);
        co_return co_await reply(502, LocalReason::kUpstreamReset,
                                 "upstream reset the connection before the response headers\n",
                                 false);
      case RelayStatus::kInvalidResponse:
        record_.flags = "UPE";
        release(lease, false);
        co_return co_await reply(502, LocalReason::kUpstreamReset, "invalid response from upstream\n",
                                 false);
      case RelayStatus::kTimeout:
        release(lease, false);
        co_return co_await reply(504, LocalReason::kTimeout, "upstream request timeout\n", false);
      case RelayStatus::kFailedAfterHead:
        record_.status = lease.conn->head_facts().status;
        if (exchange_.facts.grpc && up_deadline_->expired() && exchange_.facts.protocol == "HTTP/2") {
          // The deadline (the route's, or the client's grpc-timeout) passed after the response
          // head went out. A gRPC server out of time ends the call with DEADLINE_EXCEEDED in
          // trailers; so does Sluice here, where a reset stream would reach the client as
          // INTERNAL (gRPC maps RST_STREAM INTERNAL_ERROR so) whenever Sluice's timer fires
          // before the client's own.
          record_.flags = "UT";
          release(lease, false);
          exchange_.response_trailers.clear();
          exchange_.response_trailers.push_back({"grpc-status", "4"});
          exchange_.response_trailers.push_back({"grpc-message", "upstream request timeout"});
          note_grpc_status(exchange_.response_trailers);
          down_->queue_response_body({}, true);
          co_await down_->flush_response(response_write_timeout());
          co_return false;
        }
        record_.flags = "UC";
        log::debug("{}: upstream {} failed mid-response; closing the downstream connection",
                   method_and_path_, lease.endpoint->key);
        release(lease, false);
        co_return false;
      case RelayStatus::kDownstreamGone:
        if (record_.status == 0) record_.status = lease.conn->head_facts().status;
        if (!record_.flags) record_.flags = "DC";
        release(lease, false);
        co_return false;
    }
  }
}

awaitable<ExchangeRunner::RelayStatus> ExchangeRunner::relay_duplex(Lease& lease,
                                                                    const router::Route& route,
                                                                    SendStatus& sent) {
  bool sender_done = false;
  asio::steady_timer sender_waker(executor_);
  asio::co_spawn(
      executor_of(executor_),
      [this, &lease, &route, &sent, &sender_done, &sender_waker,
       guard = down_->guard()]() -> awaitable<void> {
        sent = co_await send_request(lease, route, /*duplex=*/true);
        // A failed request stops the response relay too (it reads kError and ends).
        if (sent != SendStatus::kSent) {
          error_code ignored;
          lease.conn->cancel(ignored);
        }
        sender_done = true;
        sender_waker.cancel();
      },
      asio::detached);
  const RelayStatus relayed = co_await relay_response(lease, route);
  // The sender holds the lease, and this frame its flag and timer: wait for it. It ends with
  // the request body, or when the client's stream or the upstream stream closes (a finished
  // response resets the client's upload, RFC 9113 §8.1).
  while (!sender_done) {
    sender_waker.expires_at(std::chrono::steady_clock::time_point::max());
    error_code ignored;
    co_await sender_waker.async_wait(asio::redirect_error(use_awaitable, ignored));
  }
  co_return relayed;
}

awaitable<bool> ExchangeRunner::answer_unsent(SendStatus sent, Lease& lease) {
  // The upstream saw part of a request at most: its connection goes whatever the answer.
  release(lease, false);
  switch (sent) {
    case SendStatus::kBadBody:
      co_return co_await reply(400, LocalReason::kBadRequest, "malformed request body\n", true);
    case SendStatus::kBodyTooLarge:
      co_return co_await reply(413, LocalReason::kBodyTooLarge, "request body too large\n", true);
    case SendStatus::kBodyTimeout:
      co_return co_await reply(408, LocalReason::kRequestTimeout,
                               "request body not received in time\n", true);
    case SendStatus::kLocalReply:  // a body step answered
      co_return co_await send_local_reply(true);
    case SendStatus::kDownstreamGone:
    case SendStatus::kSent:
    case SendStatus::kUpstreamFailed:
      break;
  }
  co_return false;
}

size_t ExchangeRunner::pick_endpoint(const upstream::ClusterInfo& cluster,
                                     const server::WorkerView::ClusterBinding& binding,
                                     std::optional<uint64_t> hash) {
  if (cluster.eligible.empty()) return 0;
  if (cluster.panic) binding.stats->lb_panic.add();
  return binding.balancer->pick(cluster, worker_.random(), hash, [&](uint32_t i) {
    return binding.pools[i]->endpoint_stats()->requests_active.value();
  });
}

ExchangeRunner::Lease ExchangeRunner::take_open(const upstream::ClusterInfo& cluster,
                                                const server::WorkerView::ClusterBinding& binding,
                                                size_t index, bool fresh_only) {
  const auto& pool = binding.pools[index];
  Lease lease;
  if (cluster.spec.protocol == config::Cluster::Protocol::kHttp2) {
    // A retry may take a stream too: a connection that failed or got a GOAWAY has no room.
    upstream::Http2Connection* shared = pool->h2_with_capacity();
    if (!shared) return lease;
    lease.conn = shared->new_stream();
    lease.multiplexed = true;
  } else {
    if (fresh_only) return lease;
    lease.conn = pool->take(upstream::Clock::now(), cluster.spec.idle_timeout);
    if (!lease.conn) return lease;
  }
  lease.pool = pool;
  lease.endpoint = &cluster.endpoints[index];
  lease.max_idle = cluster.spec.max_idle_connections;
  lease.reused = true;
  pool->cluster_stats()->connection_reuse.add();
  start_endpoint_request(lease);
  return lease;
}

awaitable<ExchangeRunner::Lease> ExchangeRunner::acquire(
    const upstream::ClusterInfo& cluster, const server::WorkerView::ClusterBinding& binding,
    size_t first, bool fresh_only, config::Duration queue_timeout, std::string& error,
    AcquireStatus& status) {
  const size_t n = cluster.eligible.size();
  status = AcquireStatus::kNoEndpoint;
  if (n == 0) {
    error = "no endpoint";
    co_return Lease{};
  }
  upstream::CircuitBreaker& breaker = *binding.breaker;
  // The balancer chose the first endpoint (pick_endpoint); after a connect failure the others
  // follow in order, each tried at most once. Nothing has been sent yet, so that retry is
  // always safe.
  const auto queue_deadline = std::chrono::steady_clock::now() + queue_timeout;
  for (size_t tries = 0; tries < n; ++tries) {
    size_t index = cluster.eligible[(first + tries) % n];
    while (true) {
      if (Lease open = take_open(cluster, binding, index, fresh_only)) {
        status = AcquireStatus::kOk;
        co_return open;
      }
      if (breaker.can_open()) break;
      // At the connection cap: wait in the bounded queue for a connection to come back or close.
      auto left = std::chrono::duration_cast<config::Duration>(queue_deadline -
                                                               std::chrono::steady_clock::now());
      auto waited = left.count() > 0 ? co_await breaker.wait(left) : upstream::CircuitBreaker::Wait::kTimeout;
      if (waited == upstream::CircuitBreaker::Wait::kReady) continue;
      binding.stats->upstream_overflow.add();
      status = AcquireStatus::kOverflow;
      error = waited == upstream::CircuitBreaker::Wait::kOverflow
                  ? "too many requests waiting for a connection (circuit_breakers.max_pending_requests)"
                  : "no connection became free in time (circuit_breakers.max_connections)";
      co_return Lease{};
    }
    // Nothing open to take: a new connection.
    Lease lease;
    lease.pool = binding.pools[index];
    lease.endpoint = &cluster.endpoints[index];
    lease.max_idle = cluster.spec.max_idle_connections;
    const bool http2 = cluster.spec.protocol == config::Cluster::Protocol::kHttp2;
    error_code ec;
    bool timed_out = false;
    std::string tls_error;
    if (http2) {
      auto conn = std::make_shared<upstream::Http2Connection>(
          executor_, cluster.spec.http2, lease.pool->cluster_stats(), lease.pool->endpoint_stats(),
          binding.breaker);
      conn->pool_generation = lease.pool->generation();
      // Listed before it connects: requests arriving meanwhile take streams on it instead of
      // each opening a connection of its own.
      lease.pool->add_h2(conn);
      ec = co_await connect(conn->stream(), lease, cluster, timed_out, tls_error);
      // A backend that does not speak h2 either picks no protocol or, as OpenSSL servers do,
      // fails the handshake with a no_application_protocol alert: the same error either way.
      constexpr std::string_view kNoH2 = "upstream TLS: backend did not agree to h2 (ALPN)";
      if (!ec && conn->stream().is_tls() && conn->stream().tls_info()->alpn != "h2") {
        ec = asio::error::no_protocol_option;
        tls_error = kNoH2;
      } else if (ec && tls_error.find("no application protocol") != std::string::npos) {
        tls_error = fmt::format("{} ({})", kNoH2, tls_error.substr(tls_error.find(": ") + 2));
      }
      if (!ec && !conn->start()) ec = asio::error::no_memory;
      if (ec) conn->close("connect failed");  // streams taken meanwhile fail (and may retry)
      if (!ec) {
        lease.pool->keep_tls_session(conn->stream(), conn->pool_generation);
        lease.conn = conn->new_stream();
        lease.multiplexed = true;
        lease.pool->cluster_stats()->connections_total.add();
        start_endpoint_request(lease);
        status = AcquireStatus::kOk;
        co_return lease;
      }
    } else {
      auto conn = std::make_unique<upstream::UpstreamConnection>(
          executor_, lease.pool->cluster_stats(), lease.pool->endpoint_stats(), binding.breaker);
      conn->pool_generation = lease.pool->generation();
      ec = co_await connect(conn->stream(), lease, cluster, timed_out, tls_error);
      if (!ec) {
        lease.conn = std::move(conn);
        lease.pool->cluster_stats()->connections_total.add();
        start_endpoint_request(lease);
        status = AcquireStatus::kOk;
        co_return lease;
      }
    }
    lease.pool->cluster_stats()->connect_failures.add();
    lease.pool->endpoint_stats()->connect_failures.add();
    if (cluster.spec.health_check) {
      // Passive detection: the control thread takes the endpoint out before its next probe.
      worker_.report_connect_failure(cluster.name(), lease.endpoint->key,
                                     timed_out ? "connect timeout" : ec.message());
    }
    error = timed_out ? fmt::format("connection to {} timed out after {}ms", lease.endpoint->key,
                                    cluster.spec.connect_timeout.count())
                      : fmt::format("{}: {}", lease.endpoint->key, tls_error.empty() ? ec.message() : tls_error);
    status = AcquireStatus::kConnectFailed;
    log::debug("cluster '{}': {}", cluster.name(), error);
  }
  co_return Lease{};
}

awaitable<error_code> ExchangeRunner::connect(net::Stream& stream, const Lease& lease,
                                              const upstream::ClusterInfo& cluster, bool& timed_out,
                                              std::string& tls_error) {
  error_code ec;
  // connect_timeout bounds the TCP connect and the TLS handshake together.
  up_deadline_->arm(stream, cluster.spec.connect_timeout, down_->guard());
  co_await stream.lowest_layer().async_connect(lease.endpoint->address,
                                               asio::redirect_error(use_awaitable, ec));
  if (!ec && lease.pool->tls()) {
    const auto& tls = lease.pool->tls();
    const std::string host = lease.endpoint->hostname.empty() ? lease.endpoint->address.address().to_string()
                                                              : lease.endpoint->hostname;
    stream = net::Stream(std::move(stream.lowest_layer()), tls->new_ssl(host, lease.pool->tls_session()), tls);
    co_await stream.async_handshake(asio::redirect_error(use_awaitable, ec));
    if (ec && !up_deadline_->expired()) tls_error = "upstream TLS: " + stream.tls_error();
  }
  timed_out = up_deadline_->expired();
  up_deadline_->disarm();
  if (!ec) {
    error_code ignored;
    stream.lowest_layer().set_option(tcp::no_delay(true), ignored);
  }
  co_return ec;
}

std::optional<uint64_t> ExchangeRunner::request_hash(const config::HashOn& on) const {
  std::string_view key;
  const auto& fields = exchange_.request.fields.items();
  switch (on.kind) {
    case config::HashOn::Kind::kNone: return std::nullopt;
    case config::HashOn::Kind::kSourceIp: key = exchange_.client_address; break;
    case config::HashOn::Kind::kPath: key = exchange_.request.path; break;
    case config::HashOn::Kind::kHeader:
      for (const auto& h : fields) {
        if (http::iequals(h.name, on.name)) {
          key = h.value;
          break;
        }
      }
      break;
    case config::HashOn::Kind::kCookie:
      // Cookie: a=1; session=xyz — the first cookie of that name in any Cookie header.
      for (const auto& h : fields) {
        if (!http::iequals(h.name, "cookie")) continue;
        std::string_view rest = h.value;
        while (!rest.empty() && key.empty()) {
          size_t semi = rest.find(';');
          std::string_view pair = rest.substr(0, semi);
          rest = semi == std::string_view::npos ? std::string_view{} : rest.substr(semi + 1);
          while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
          size_t eq = pair.find('=');
          if (eq != std::string_view::npos && pair.substr(0, eq) == on.name) key = pair.substr(eq + 1);
        }
        if (!key.empty()) break;
      }
      break;
  }
  if (key.empty()) return std::nullopt;
  return upstream::hash64(key);
}

void ExchangeRunner::start_endpoint_request(Lease& lease) {
  record_.endpoint = lease.endpoint;
  lease.pool->endpoint_stats()->requests_total.add();
  lease.pool->endpoint_stats()->requests_active.add(1);
}

void ExchangeRunner::release(Lease& lease, bool reusable) {
  if (!lease.conn) return;
  // The upstream deadline may still name this session's stream (an early return on an error
  // path): disarm it before the stream can be freed, so no later timer touches it.
  up_deadline_->disarm();
  lease.pool->endpoint_stats()->requests_active.add(-1);
  if (lease.multiplexed) {
    // The stream ends (reset if still open); the connection stays with the pool.
    lease.conn.reset();
    return;
  }
  std::unique_ptr<upstream::UpstreamConnection> conn(
      static_cast<upstream::UpstreamConnection*>(lease.conn.release()));
  if (reusable && !worker_.draining()) {
    lease.pool->give_back(std::move(conn), upstream::Clock::now(), lease.max_idle);
  } else {
    lease.pool->keep_tls_session(*conn);
    conn->stream().close();
  }
}

awaitable<ExchangeRunner::SendStatus> ExchangeRunner::send_request(Lease& lease,
                                                                   const router::Route& route,
                                                                   bool duplex) {
  upstream::Session& session = *lease.conn;
  auto guard = down_->guard();
  const bool body_steps = route.chain_wants_body();
  bool last = !exchange_.facts.has_body;
  // The head leaves with whatever body bytes came with it; then the body streams part by part.
  bool wait = false;
  while (true) {
    if (!last) {
      filters::BodySpans part;
      switch (co_await down_->read_request_body(part, last, wait)) {
        case Downstream::BodyStatus::kOk: break;
        case Downstream::BodyStatus::kGone: co_return SendStatus::kDownstreamGone;
        case Downstream::BodyStatus::kBad: co_return SendStatus::kBadBody;
        case Downstream::BodyStatus::kTooLarge: co_return SendStatus::kBodyTooLarge;
        case Downstream::BodyStatus::kTimeout: co_return SendStatus::kBodyTimeout;
      }
      wait = true;
      for (const auto& s : part) record_.received_bytes += s.size();
      if (body_steps &&
          co_await run_body_steps(route, part, last, /*request=*/true) == filters::Status::kLocalReply) {
        co_return SendStatus::kLocalReply;
      }
      session.queue_request_body(part, last, exchange_.request_trailers.items());
    }
    // On the session, not its socket: an HTTP/2 stream's deadline must not cut the connection
    // its sibling streams share.
    // Duplex: the relay owns the deadline (the route timeout cancels the session, which ends
    // this write too).
    // A part is tried synchronously first; only what the socket does not take now waits.
    // While a sized body has bytes to come, its parts leave with MSG_MORE so the kernel sends
    // full segments (HAProxy does the same): the next part is certain to follow, so nothing is
    // held longer than the client takes to send it, and the last part always flushes.
    bool ok = false;
    if (!duplex) {
      ok = session.write_request_now(/*more_follows=*/!last && exchange_.facts.body_length_known);
    }
    if (!ok) {
      if (!duplex) up_deadline_->arm(session, idle_timeout_, guard);
      ok = co_await session.write_request();
      if (!duplex) up_deadline_->disarm();
    }
    if (!ok) co_return SendStatus::kUpstreamFailed;
    if (last) co_return SendStatus::kSent;
  }
}

awaitable<filters::Status> ExchangeRunner::run_body_steps(const router::Route& route,
                                                          filters::BodySpans body, bool last,
                                                          bool request) {
  const auto& chain = route.chain();
  const size_t n = chain.size();
  http::FieldList& trailers = request ? exchange_.request_trailers : exchange_.response_trailers;
  for (size_t k = 0; k < n; ++k) {
    const filters::Filter& step = *(request ? chain[k] : chain[n - 1 - k]);
    if (!step.wants_body()) continue;
    filters::Status st = request ? step.on_request_body(exchange_, body, last)
                                 : step.on_response_body(exchange_, body, last);
    if (st == filters::Status::kPause) st = co_await step.resume(exchange_);
    if (st == filters::Status::kLocalReply) co_return st;
    if (!last || trailers.items().empty()) continue;
    st = request ? step.on_request_trailers(exchange_) : step.on_response_trailers(exchange_);
    if (st == filters::Status::kPause) st = co_await step.resume(exchange_);
    if (st == filters::Status::kLocalReply) co_return st;
  }
  co_return filters::Status::kContinue;
}

awaitable<ExchangeRunner::RelayStatus> ExchangeRunner::relay_response(Lease& lease,
                                                                      const router::Route& route) {
  upstream::Session& session = *lease.conn;
  auto guard = down_->guard();
  const config::Duration route_timeout = route_timeout_;  // set by forward()
  const bool body_steps = route.chain_wants_body();
  // The route timeout covers the whole response, from the end of the request (like Envoy's):
  // reading it from upstream and writing it to a client that may read slowly.
  up_deadline_->arm(session, route_timeout, guard);
  response_deadline_ = route_timeout.count() > 0 ? std::chrono::steady_clock::now() + route_timeout
                                                 : std::chrono::steady_clock::time_point{};
  bool received_any = false;
  bool head_sent = false;
  bool interim = false;   // between a 1xx head and its (empty) end
  bool pending = false;   // something is queued downstream

  while (true) {
    upstream::ResponseStep step = session.parse_response();
    if (step.need_input) {
      if (up_deadline_->expired()) co_return head_sent ? RelayStatus::kFailedAfterHead : RelayStatus::kTimeout;
      const auto read = co_await session.read_response();
      if (read == upstream::Session::ReadStatus::kOk) {
        received_any = true;
        continue;
      }
      if (read == upstream::Session::ReadStatus::kHeadTooLarge) {
        log::debug("response head from upstream {} too large", lease.endpoint->key);
        up_deadline_->disarm();
        co_return head_sent ? RelayStatus::kFailedAfterHead : RelayStatus::kInvalidResponse;
      }
      if (up_deadline_->expired()) {
        co_return head_sent ? RelayStatus::kFailedAfterHead : RelayStatus::kTimeout;
      }
      if (read == upstream::Session::ReadStatus::kEof && head_sent && session.finish_at_eof()) {
        // A body delimited by the end of the stream ends here.
        up_deadline_->disarm();
        if (body_steps &&
            co_await run_body_steps(route, {}, true, /*request=*/false) == filters::Status::kLocalReply) {
          co_return RelayStatus::kFailedAfterHead;
        }
        down_->queue_response_body({}, true);
        if (!co_await down_->flush_response(response_write_timeout())) {
          co_return RelayStatus::kDownstreamGone;
        }
        co_return RelayStatus::kDone;
      }
      up_deadline_->disarm();
      if (!received_any) co_return RelayStatus::kClosedBeforeResponse;
      co_return head_sent ? RelayStatus::kFailedAfterHead : RelayStatus::kUpstreamReset;
    }
    if (step.error) {
      up_deadline_->disarm();
      log::debug("invalid response from upstream {}: {}", lease.endpoint->key, step.reason);
      co_return head_sent ? RelayStatus::kFailedAfterHead : RelayStatus::kInvalidResponse;
    }
    if (step.head) {
      const upstream::ResponseHeadFacts& facts = session.head_facts();
      if (facts.status == 101) {
        // A 101 is valid only as the answer to an upgrade Sluice forwarded (RFC 9110 §15.2.2).
        if (exchange_.facts.upgrade.empty()) {
          up_deadline_->disarm();
          log::debug("upstream {} answered 101 to a request without an upgrade", lease.endpoint->key);
          co_return RelayStatus::kInvalidResponse;
        }
        exchange_.response.status = facts.status;
        exchange_.response.reason = facts.reason;
        exchange_.response.fields.clear();
        std::string_view accepted = exchange_.facts.upgrade;
        for (const auto& f : session.response_fields()) {
          if (http::iequals(f.name, "upgrade")) accepted = f.value;
          exchange_.response.fields.push_back(f);
        }
        run_response_steps();
        down_->queue_response_head({.upgrade = accepted});
        up_deadline_->disarm();
        if (!co_await down_->flush_response(idle_timeout_)) co_return RelayStatus::kDownstreamGone;
        co_return RelayStatus::kUpgraded;
      }
      if (facts.interim) {
        // 1xx interim responses (100, 102, 103) are dropped: Sluice answers Expect itself and
        // does not forward early hints (documented; nginx does the same).
        interim = true;
      } else {
        exchange_.response.status = facts.status;
        exchange_.response.reason = facts.reason;
        exchange_.response.fields.clear();
        for (const auto& f : session.response_fields()) exchange_.response.fields.push_back(f);
        run_response_steps();
        if (exchange_.facts.grpc) note_grpc_status(exchange_.response.fields);  // trailers-only
        if (!down_->queue_response_head({.length_known = facts.length_known,
                                        .transfer_codings = facts.transfer_codings})) {
          up_deadline_->disarm();
          co_return RelayStatus::kInvalidResponse;
        }
        pending = true;
      }
    }
    if (!interim) {
      const auto body = session.body();
      for (const auto& s : body) record_.sent_bytes += s.size();
      if (step.complete) {
        exchange_.response_trailers.clear();
        for (const auto& t : session.trailers()) exchange_.response_trailers.push_back(t);
        if (exchange_.facts.grpc) note_grpc_status(exchange_.response_trailers);
      }
      if (body_steps && co_await run_body_steps(route, body, step.complete, /*request=*/false) ==
                            filters::Status::kLocalReply) {
        up_deadline_->disarm();
        co_return RelayStatus::kFailedAfterHead;  // a step aborted the response
      }
      if (!body.empty() || step.complete) {
        down_->queue_response_body(body, step.complete);
        pending = true;
      }
    }
    // After the head, parse the bytes already buffered before writing, so the head and the
    // first body bytes leave in one sendmsg: a small response costs one write, not two (the
    // second write was ~15% of the CPU per request, bench/compare small GET).
    if (step.head && !step.complete && !interim) continue;
    if (pending) {
      if (!down_->flush_now() && !co_await down_->flush_response(response_write_timeout())) {
        up_deadline_->disarm();
        if (response_deadline_ != std::chrono::steady_clock::time_point{} &&
            std::chrono::steady_clock::now() >= response_deadline_) {
          record_.flags = "UT";  // the route timeout ended a response the client read too slowly
        }
        co_return RelayStatus::kDownstreamGone;
      }
      pending = false;
      head_sent = true;
    }
    if (step.complete) {
      if (interim) {
        interim = false;
        continue;
      }
      up_deadline_->disarm();
      co_return RelayStatus::kDone;
    }
    // Body bytes already went downstream: recycle the buffer.
    if (head_sent || interim) session.release_body();
  }
}

}  // namespace sluice::proxy
