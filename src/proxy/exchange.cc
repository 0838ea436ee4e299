// One proxied exchange: route → pick → forward → reply (the DownstreamConnection members that
// handle a single request once its head has been read).
#include <fmt/core.h>
#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "sluice/common/log.h"
#include "sluice/proxy/downstream_connection.h"
#include "sluice/upstream/hash.h"

namespace sluice::proxy {

namespace {

constexpr size_t kMaxUpstreamHeadBytes = 96 * 1024;
constexpr std::string_view kCrlf = "\r\n";
constexpr std::string_view kLastChunk = "0\r\n\r\n";
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && http::iequals(s.substr(0, prefix.size()), prefix);
}

// RFC 9110 §9.2.2: a request with one of these methods may be sent again after a connection
// failure; any other (POST, PATCH, ...) may already have had its effect and is never replayed.
bool is_idempotent(llhttp_method_t method) {
  switch (method) {
    case HTTP_GET:
    case HTTP_HEAD:
    case HTTP_OPTIONS:
    case HTTP_TRACE:
    case HTTP_PUT:
    case HTTP_DELETE:
      return true;
    default:
      return false;
  }
}

}  // namespace

awaitable<bool> DownstreamConnection::serve(const server::WorkerView& view,
                                            const server::ListenerInfo& listener) {
  const char* base = in_.data();
  headers_.clear();
  for (const auto& h : parser_.headers()) headers_.push_back({h.name.in(base), h.value.in(base)});

  RequestInfo info;
  info.http10 = parser_.http_major() == 1 && parser_.http_minor() == 0;
  info.keep_alive = parser_.keep_alive();
  info.chunked = parser_.chunked();
  info.has_body = info.chunked || parser_.content_length() > 0;
  info.is_head = parser_.method() == HTTP_HEAD;
  info.idempotent = is_idempotent(parser_.method());
  is_head_ = info.is_head;
  request_keep_alive_ = info.keep_alive;
  body_unread_ = info.has_body;
  if (!info.has_body) {
    // Let the parser step over the end of a body-less message (consumes nothing), and mark the
    // head consumed: whatever answers it (upstream or a local reply), the next request starts
    // after it. The bytes stay in place, so the views into them stay valid for this exchange.
    parser_.execute(in_.data(), head_end_, head_end_);
    in_.consume_to(head_end_);
  }

  http::RequestView req;
  req.method = llhttp_method_name(parser_.method());
  req.headers = headers_;
  std::string_view target = parser_.url().in(base);
  if (log::enabled(log::Level::kDebug)) method_and_path_ = fmt::format("{} {}", req.method, target);

  std::string_view authority_in_target;
  if (parser_.method() == HTTP_CONNECT) {
    co_return co_await local_reply(400, LocalReason::kBadRequest, "CONNECT is not supported\n", true);
  }
  if (starts_with_ci(target, "http://") || starts_with_ci(target, "https://")) {
    // Absolute form: the authority in the target wins over Host (RFC 9112 §3.2.2).
    std::string_view rest = target.substr(target.find("://") + 3);
    size_t slash = rest.find_first_of("/?");
    authority_in_target = rest.substr(0, slash);
    target = slash == std::string_view::npos ? std::string_view("/") : rest.substr(slash);
    if (!target.empty() && target.front() == '?') {
      co_return co_await local_reply(400, LocalReason::kBadRequest, "invalid request target\n", true);
    }
  } else if (target != "*" && (target.empty() || target.front() != '/')) {
    co_return co_await local_reply(400, LocalReason::kBadRequest, "invalid request target\n", true);
  }
  const size_t question = target.find('?');
  req.path = target.substr(0, question);
  req.query = question == std::string_view::npos ? std::string_view{} : target.substr(question + 1);

  int host_headers = 0;
  std::string_view host;
  std::string_view request_id;
  std::string_view upgrade_offer;
  bool connection_upgrade = false;
  // One pass over the fields, dispatched on the name's length first: most names match none of
  // these, and the length settles that without comparing characters.
  for (const auto& h : headers_) {
    switch (h.name.size()) {
      case 4:  // host
        if (http::iequals(h.name, "host")) {
          ++host_headers;
          host = h.value;
        }
        break;
      case 6:  // expect
        if (http::iequals(h.name, "expect")) {
          if (!http::iequals(h.value, "100-continue")) {
            co_return co_await local_reply(400, LocalReason::kBadRequest, "unsupported Expect header\n", true);
          }
          info.expect_continue = !info.http10;
        }
        break;
      case 7:  // upgrade
        if (http::iequals(h.name, "upgrade")) upgrade_offer = h.value;
        break;
      case 10:  // connection
        if (http::iequals(h.name, "connection")) {
          connection_upgrade = connection_upgrade || http::named_by_connection({&h, 1}, "upgrade");
        }
        break;
      case 12:  // x-request-id
        if (request_id.empty() && http::iequals(h.name, "x-request-id")) request_id = h.value;
        break;
      default:
        break;
    }
  }
  if (host_headers > 1) {
    co_return co_await local_reply(400, LocalReason::kBadRequest, "more than one Host header\n", true);
  }
  if (host_headers == 0 && !info.http10 && authority_in_target.empty()) {
    co_return co_await local_reply(400, LocalReason::kBadRequest, "missing Host header\n", true);
  }
  req.authority = authority_in_target.empty() ? host : authority_in_target;
  // An empty x-request-id counts as absent: Sluice generates one and replaces the empty header.
  info.request_id = request_id.empty() ? http::make_request_id() : std::string(request_id);
  info.request_id_generated = request_id.empty();

  if (record_.log) {
    record_.method = req.method;
    record_.authority = req.authority;
    record_.target = parser_.url().in(base);
    record_.request_id = info.request_id;
    record_.protocol = info.http10 ? "HTTP/1.0" : "HTTP/1.1";
  }
  const auto& spec = listener.spec;
  if (spec.max_request_body_bytes > 0 && parser_.has_content_length() &&
      parser_.content_length() > spec.max_request_body_bytes) {
    co_return co_await local_reply(413, LocalReason::kBodyTooLarge, "request body too large\n", true,
                                   info.request_id);
  }

  const router::VirtualHost* vhost = listener.routes.find_virtual_host(req.authority);
  if (!vhost) {
    co_return co_await local_reply(404, LocalReason::kNoRoute,
                                   "no virtual host matches the request's Host\n", info.has_body,
                                   info.request_id);
  }
  const router::Route* route = vhost->match(req);
  if (!route) {
    co_return co_await local_reply(404, LocalReason::kNoRoute,
                                   fmt::format("no route matches the request in virtual host '{}'\n",
                                               vhost->name()),
                                   info.has_body, info.request_id);
  }
  record_.route_name = route->name();
  record_.route_stats = view.route_stats(listener_index_, vhost, route);
  record_.route_stats->active.add(1);

  // The neutral request the route's steps see.
  RequestHead& head = exchange_.request;
  head.method = req.method;
  head.authority = req.authority;
  head.path = req.path;
  head.query = req.query;
  head.has_query = question != std::string_view::npos;
  for (const auto& h : headers_) head.fields.push_back(h);
  exchange_.route = route;
  exchange_.request_id = info.request_id;

  // An upgrade offer is tunnelled only where the route allows it (a WebSocket handshake: a GET
  // without a body); anywhere else it is served as plain HTTP/1.1 and the Upgrade/Connection
  // fields are dropped as hop-by-hop, like nginx. This is also how an h2c offer is declined.
  if (connection_upgrade && route->action().websocket && http::iequals(upgrade_offer, "websocket") &&
      parser_.method() == HTTP_GET && !info.has_body && !info.http10) {
    info.upgrade = upgrade_offer;
  }

  // The request steps, inline: a nested coroutine per request would cost a frame allocation.
  filters::Status st = filters::Status::kContinue;
  for (const auto& step : route->chain()) {
    st = step->on_request_head(exchange_);
    if (st == filters::Status::kPause) st = co_await step->resume(exchange_);
    if (st == filters::Status::kLocalReply) break;
  }
  bool keep_open;
  if (st == filters::Status::kLocalReply) {
    keep_open = co_await send_local_reply(route, body_unread_);
  } else if (route->action().kind != config::Route::ActionKind::kCluster) {
    // Not reachable: a direct_response or redirect step always answers. Never index clusters
    // with a route that has none.
    keep_open = co_await local_reply(500, LocalReason::kNoRoute, "route has no cluster\n", true,
                                     info.request_id);
  } else {
    keep_open = co_await proxy(view, listener, *route, req, info);
  }
  record_.route_stats->active.add(-1);
  co_return keep_open;
}

awaitable<bool> DownstreamConnection::proxy(const server::WorkerView& view,
                                            const server::ListenerInfo& listener,
                                            const router::Route& route,
                                            const http::RequestView& req, const RequestInfo& info) {
  const auto& action = route.action();
  const upstream::ClusterInfo& cluster = *view.snapshot->clusters[action.cluster_index];
  const auto& binding = view.clusters[action.cluster_index];
  record_.cluster = cluster.name();

  std::string rewritten;
  std::string_view path = req.path;
  if (action.prefix_rewrite) {
    rewritten = route.rewritten_path(req.path);
    path = rewritten;
  }
  std::optional<uint64_t> hash;
  if (cluster.spec.lb == config::Cluster::LbPolicy::kMaglev) hash = request_hash(cluster.spec.hash_on, req);
  // Request steps change the fields per attempt (the endpoint may differ): start each attempt
  // from the fields as they were before the steps ran. A member, so its storage is reused.
  const bool has_steps = !route.chain().empty();
  if (has_steps) fields_before_ = exchange_.request.fields.items();
  // Waiting for a connection under the circuit breaker counts against the route timeout.
  const config::Duration queue_timeout =
      action.timeout.count() > 0 ? action.timeout : cluster.spec.connect_timeout;

  bool continue_sent = false;
  for (int attempt = 0;; ++attempt) {
    std::string connect_error;
    AcquireStatus acquired = AcquireStatus::kOk;
    // A retry goes to a freshly opened connection, never to another pooled one.
    Lease lease = co_await acquire(cluster, binding, /*fresh_only=*/attempt > 0, hash, queue_timeout,
                                   connect_error, acquired);
    if (acquired == AcquireStatus::kOverflow) {
      co_return co_await local_reply(503, LocalReason::kOverflow,
                                     fmt::format("upstream overflow: {} (cluster '{}')\n",
                                                 connect_error, cluster.name()),
                                     body_unread_, info.request_id);
    }
    if (!lease && cluster.eligible.empty()) {
      co_return co_await local_reply(503, LocalReason::kNoHealthyUpstream,
                                     fmt::format("no healthy upstream (cluster '{}')\n", cluster.name()),
                                     body_unread_, info.request_id);
    }
    if (!lease) {
      co_return co_await local_reply(
          503, LocalReason::kConnectFailure,
          fmt::format("upstream connect error: {} (cluster '{}')\n", connect_error, cluster.name()),
          body_unread_, info.request_id);
    }
    exchange_.upstream_host = lease.endpoint->key;
    if (has_steps) {
      exchange_.request.fields.items() = fields_before_;
      for (const auto& step : route.chain()) step->on_upstream_request(exchange_);
    }

    http::UpstreamRequestInput head;
    head.method = req.method;
    head.path = path;
    head.query = req.query;
    head.host = action.host_rewrite ? std::string_view(*action.host_rewrite) : req.authority;
    head.original_host = req.authority;
    head.client_address = client_address_;
    head.forwarded_proto = exchange_.request.scheme;
    if (info.request_id_generated) head.generated_request_id = info.request_id;
    head.chunked_body = info.chunked;
    head.upgrade = info.upgrade;
    head.headers = exchange_.request.fields.items();
    // A step may have set Host: the head builder writes `host` itself from head.host.
    if (auto h = exchange_.request.fields.get("host"); h && *h != req.authority) head.host = *h;
    http::build_upstream_request_head(head, head_parts_);

    if (info.expect_continue && !continue_sent) {
      // Sluice asks for the body itself (and drops Expect upstream), like nginx: the body then
      // streams without waiting on the backend's interim response.
      out_.clear();
      out_.emplace_back(kContinue.data(), kContinue.size());
      if (!co_await write_downstream(idle_timeout_)) {
        release(lease, false);
        co_return false;
      }
      continue_sent = true;
    }
    SendStatus sent = co_await send_request(lease, listener.spec, info);
    if (sent == SendStatus::kDownstreamGone) {
      release(lease, false);
      co_return false;
    }
    if (sent == SendStatus::kBadBody) {
      release(lease, false);
      co_return co_await local_reply(400, LocalReason::kBadRequest, "malformed request body\n", true,
                                     info.request_id);
    }
    if (sent == SendStatus::kBodyTooLarge) {
      release(lease, false);
      co_return co_await local_reply(413, LocalReason::kBodyTooLarge, "request body too large\n", true,
                                     info.request_id);
    }
    if (sent == SendStatus::kBodyTimeout) {
      release(lease, false);
      co_return co_await local_reply(408, LocalReason::kRequestTimeout,
                                     "request body not received in time\n", true, info.request_id);
    }
    // A pooled connection the backend closed just as we reused it fails before any response
    // byte. An idempotent request without a body can be sent again, once, on a fresh
    // connection; anything else (a POST, or any request whose body bytes left) never is: the
    // backend may have acted on it (RFC 9110 §9.2.2).
    const bool may_retry = lease.reused && info.idempotent && !info.has_body && attempt == 0;
    // The error records its source and whether it may be retried; the retry decision reads it
    // (the resilience work adds retry policies on the same record).
    auto upstream_error = [&] {
      exchange_.error = Error{Error::Source::kUpstream, may_retry};
      return exchange_.error->retryable;
    };
    if (sent == SendStatus::kUpstreamFailed) {
      release(lease, false);
      if (upstream_error()) continue;
      co_return co_await local_reply(502, LocalReason::kUpstreamReset,
                                     "upstream connection failed while sending the request\n",
                                     body_unread_, info.request_id);
    }
    bool keep_alive = false;
    record_.upstream_start = std::chrono::steady_clock::now();
    RelayStatus relayed = co_await relay_response(lease, info, route, keep_alive);
    record_.upstream_end = std::chrono::steady_clock::now();
    std::string_view endpoint = lease.endpoint->key;
    switch (relayed) {
      case RelayStatus::kDone:
        record_.status = lease.conn->parser.status_code();
        binding.stats->upstream_requests[stats::code_class_index(record_.status)].add();
        // llhttp's keep-alive answer is false for bodies delimited by the end of the stream.
        release(lease, lease.conn->stream.is_open() && lease.conn->parser.keep_alive() &&
                           lease.conn->in.size() == 0);
        co_return keep_alive;
      case RelayStatus::kUpgraded:
        record_.status = 101;
        binding.stats->upstream_requests[0].add();
        co_await tunnel(lease, action.upgrade_idle_timeout);
        release(lease, false);
        co_return false;
      case RelayStatus::kClosedBeforeResponse:
        release(lease, false);
        if (upstream_error()) continue;
        co_return co_await local_reply(502, LocalReason::kUpstreamReset,
                                       "upstream closed the connection before responding\n", false,
                                       info.request_id);
      case RelayStatus::kUpstreamReset:
        release(lease, false);
        co_return co_await local_reply(502, LocalReason::kUpstreamReset,
                                       "upstream reset the connection before the response headers\n",
                                       false, info.request_id);
      case RelayStatus::kInvalidResponse:
        record_.flags = "UPE";
        release(lease, false);
        co_return co_await local_reply(502, LocalReason::kUpstreamReset,
                                       "invalid response from upstream\n", false, info.request_id);
      case RelayStatus::kTimeout:
        release(lease, false);
        co_return co_await local_reply(504, LocalReason::kTimeout, "upstream request timeout\n", false,
                                       info.request_id);
      case RelayStatus::kFailedAfterHead:
        record_.status = lease.conn->parser.status_code();
        record_.flags = "UC";
        log::debug("{}: upstream {} failed mid-response; closing the downstream connection",
                   method_and_path_, endpoint);
        release(lease, false);
        co_return false;
      case RelayStatus::kDownstreamGone:
        if (record_.status == 0) record_.status = lease.conn->parser.status_code();
        if (!record_.flags) record_.flags = "DC";
        release(lease, false);
        co_return false;
    }
  }
}

awaitable<DownstreamConnection::Lease> DownstreamConnection::acquire(
    const upstream::ClusterInfo& cluster, const server::WorkerView::ClusterBinding& binding,
    bool fresh_only, std::optional<uint64_t> hash, config::Duration queue_timeout,
    std::string& error, AcquireStatus& status) {
  const size_t n = cluster.eligible.size();
  status = AcquireStatus::kNoEndpoint;
  if (n == 0) {
    error = "no endpoint";
    co_return Lease{};
  }
  if (cluster.panic) binding.stats->lb_panic.add();
  upstream::CircuitBreaker& breaker = *binding.breaker;
  // The balancer chooses the first endpoint; after a connect failure the others follow in order,
  // each tried at most once. Nothing has been sent yet, so that retry is always safe.
  const size_t first = binding.balancer->pick(cluster, worker_.random(), hash, [&](uint32_t i) {
    return binding.pools[i]->endpoint_stats()->requests_active.value();
  });
  const auto queue_deadline = std::chrono::steady_clock::now() + queue_timeout;
  for (size_t tries = 0; tries < n; ++tries) {
    size_t index = cluster.eligible[(first + tries) % n];
    Lease lease;
    lease.pool = binding.pools[index];
    lease.endpoint = &cluster.endpoints[index];
    lease.max_idle = cluster.spec.max_idle_connections;
    std::unique_ptr<upstream::UpstreamConnection> pooled;
    while (true) {
      pooled = fresh_only ? nullptr : lease.pool->take(upstream::Clock::now(), cluster.spec.idle_timeout);
      if (pooled || breaker.can_open()) break;
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
    if (pooled) {
      lease.conn = std::move(pooled);
      lease.reused = true;
      lease.pool->cluster_stats()->connection_reuse.add();
      start_endpoint_request(lease);
      status = AcquireStatus::kOk;
      co_return lease;
    }
    auto conn = std::make_unique<upstream::UpstreamConnection>(
        stream_.get_executor(), lease.pool->cluster_stats(), lease.pool->endpoint_stats(),
        binding.breaker);
    error_code ec;
    up_deadline_.arm(conn->stream, cluster.spec.connect_timeout, shared_from_this());
    co_await conn->stream.lowest_layer().async_connect(lease.endpoint->address,
                                                       asio::redirect_error(asio::use_awaitable, ec));
    bool timed_out = up_deadline_.expired();
    up_deadline_.disarm();
    if (!ec) {
      conn->stream.lowest_layer().set_option(tcp::no_delay(true), ec);
      lease.conn = std::move(conn);
      lease.pool->cluster_stats()->connections_total.add();
      start_endpoint_request(lease);
      status = AcquireStatus::kOk;
      co_return lease;
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
                      : fmt::format("{}: {}", lease.endpoint->key, ec.message());
    status = AcquireStatus::kConnectFailed;
    log::debug("cluster '{}': {}", cluster.name(), error);
  }
  co_return Lease{};
}

std::optional<uint64_t> DownstreamConnection::request_hash(const config::HashOn& on,
                                                          const http::RequestView& req) const {
  std::string_view key;
  switch (on.kind) {
    case config::HashOn::Kind::kNone: return std::nullopt;
    case config::HashOn::Kind::kSourceIp: key = client_address_; break;
    case config::HashOn::Kind::kPath: key = req.path; break;
    case config::HashOn::Kind::kHeader:
      for (const auto& h : req.headers) {
        if (http::iequals(h.name, on.name)) {
          key = h.value;
          break;
        }
      }
      break;
    case config::HashOn::Kind::kCookie:
      // Cookie: a=1; session=xyz — the first cookie of that name in any Cookie header.
      for (const auto& h : req.headers) {
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

void DownstreamConnection::start_endpoint_request(Lease& lease) {
  record_.endpoint = lease.endpoint;
  lease.pool->endpoint_stats()->requests_total.add();
  lease.pool->endpoint_stats()->requests_active.add(1);
}

void DownstreamConnection::release(Lease& lease, bool reusable) {
  if (!lease.conn) return;
  // The upstream deadline may still name this connection's stream (an early return on an error
  // path): disarm it before the stream can be freed, so no later timer touches it.
  up_deadline_.disarm();
  lease.pool->endpoint_stats()->requests_active.add(-1);
  if (reusable && !worker_.draining()) {
    lease.conn->parser.set_skip_body(false);
    lease.pool->give_back(std::move(lease.conn), upstream::Clock::now(), lease.max_idle);
  } else {
    lease.conn->stream.close();
    lease.conn.reset();
  }
}

void DownstreamConnection::append_body(const std::vector<std::span<const char>>& body, bool chunked,
                                       bool last, const std::vector<http::OwnedField>& trailers) {
  size_t total = 0;
  for (const auto& s : body) total += s.size();
  if (chunked && total > 0) {
    auto r = fmt::format_to_n(chunk_head_.data(), chunk_head_.size(), "{:x}\r\n", total);
    out_.emplace_back(chunk_head_.data(), static_cast<size_t>(r.out - chunk_head_.data()));
  }
  for (const auto& s : body) {
    if (!s.empty()) out_.emplace_back(s.data(), s.size());
  }
  if (chunked && total > 0) out_.emplace_back(kCrlf.data(), kCrlf.size());
  if (chunked && last) {
    if (trailers.empty()) {
      out_.emplace_back(kLastChunk.data(), kLastChunk.size());
      return;
    }
    // Trailers travel end to end like the body (RFC 9110 §6.5), except hop-by-hop fields.
    last_chunk_ = "0\r\n";
    for (const auto& t : trailers) {
      if (http::is_hop_by_hop(t.name)) continue;
      last_chunk_.append(t.name).append(": ").append(t.value).append("\r\n");
    }
    last_chunk_.append("\r\n");
    out_.emplace_back(last_chunk_.data(), last_chunk_.size());
  }
}

awaitable<DownstreamConnection::SendStatus> DownstreamConnection::send_request(
    Lease& lease, const config::Listener& spec, const RequestInfo& info) {
  auto& up = *lease.conn;
  auto self = shared_from_this();
  out_.clear();
  out_.emplace_back(head_parts_.prefix.data(), head_parts_.prefix.size());
  for (auto v : head_parts_.middle) out_.emplace_back(v.data(), v.size());
  out_.emplace_back(head_parts_.suffix.data(), head_parts_.suffix.size());

  size_t pos = head_end_;
  uint64_t body_bytes = 0;
  // A body that trickles in is cut: request_body_timeout between reads, and optionally
  // request_body_total_timeout for the whole body (slowloris on the body).
  const auto body_start = std::chrono::steady_clock::now();
  const config::Duration between_reads =
      spec.request_body_timeout.count() > 0 ? spec.request_body_timeout : idle_timeout_;
  while (true) {
    bool complete = !info.has_body;
    if (info.has_body && pos < in_.end()) {
      http::Parser::Step step = parser_.execute(in_.data(), pos, in_.end());
      if (step.error) co_return SendStatus::kBadBody;
      pos += step.consumed;
      for (const auto& s : parser_.body()) body_bytes += s.size();
      record_.received_bytes = body_bytes;
      if (spec.max_request_body_bytes > 0 && body_bytes > spec.max_request_body_bytes) {
        co_return SendStatus::kBodyTooLarge;
      }
      complete = step.message_complete;
      append_body(parser_.body(), info.chunked, complete, parser_.trailers());
    }
    if (!out_.empty()) {
      error_code ec;
      up_deadline_.arm(up.stream, idle_timeout_, self);
      co_await up.stream.async_write(out_, asio::redirect_error(asio::use_awaitable, ec));
      up_deadline_.disarm();
      out_.clear();
      if (ec) co_return SendStatus::kUpstreamFailed;
    }
    if (complete) {
      in_.consume_to(pos);
      body_unread_ = false;
      co_return SendStatus::kSent;
    }
    // Everything read so far went upstream: reuse the buffer for the next part of the body.
    in_.consume_to(pos);
    in_.compact();
    pos = in_.begin();
    error_code ec;
    config::Duration wait = between_reads;
    bool total_limited = false;
    if (spec.request_body_total_timeout.count() > 0) {
      auto left = std::chrono::duration_cast<config::Duration>(
          body_start + spec.request_body_total_timeout - std::chrono::steady_clock::now());
      if (left.count() <= 0) co_return SendStatus::kBodyTimeout;
      if (left < wait) {
        wait = left;
        total_limited = true;
      }
    }
    down_deadline_.arm(stream_, wait, self);
    size_t n = co_await stream_.async_read_some(asio::buffer(in_.write_ptr(), in_.writable()),
                                                asio::redirect_error(asio::use_awaitable, ec));
    const bool timed_out = down_deadline_.expired();
    down_deadline_.disarm();
    if (ec && timed_out && (total_limited || spec.request_body_timeout.count() > 0)) {
      co_return SendStatus::kBodyTimeout;
    }
    if (ec) co_return SendStatus::kDownstreamGone;
    in_.commit(n);
  }
}

// The codings of a response other than a final "chunked" ("gzip" for "gzip, chunked"), from
// the parser: they are part of the body and travel with it.
std::string DownstreamConnection::transfer_codings_of(const http::Parser& parser, const char* base) {
  const auto& codings = parser.transfer_codings();
  size_t n = codings.size();
  if (n > 0 && http::iequals(codings[n - 1].in(base), "chunked")) --n;
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) out += ", ";
    out.append(codings[i].in(base));
  }
  return out;
}

void DownstreamConnection::run_response_steps() {
  if (!exchange_.route) return;
  // Response steps run in reverse chain order (the innermost step sees the response first).
  const auto& chain = exchange_.route->chain();
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) (*it)->on_response_head(exchange_);
}

void DownstreamConnection::queue_response_head(const RequestInfo& info, bool chunked, bool close,
                                               std::string_view transfer_codings,
                                               std::string_view upgrade) {
  run_response_steps();
  http::DownstreamResponseInput in;
  in.status = exchange_.response.status;
  in.reason = exchange_.response.reason;
  in.request_id = info.request_id;
  in.chunked_body = chunked;
  in.transfer_codings = transfer_codings;
  in.close = close;
  in.keep_alive_header = !close && info.http10;
  in.upgrade = upgrade;
  in.headers = exchange_.response.fields.items();
  http::build_downstream_response_head(in, head_parts_);
  out_.emplace_back(head_parts_.prefix.data(), head_parts_.prefix.size());
  for (auto v : head_parts_.middle) out_.emplace_back(v.data(), v.size());
  out_.emplace_back(head_parts_.suffix.data(), head_parts_.suffix.size());
}

awaitable<DownstreamConnection::RelayStatus> DownstreamConnection::relay_response(
    Lease& lease, const RequestInfo& info, const router::Route& route, bool& keep_alive) {
  auto& up = *lease.conn;
  auto self = shared_from_this();
  const config::Duration route_timeout = route.action().timeout;
  up.parser.set_skip_body(info.is_head);
  up.in.compact();  // a pooled connection starts each response at the front of its buffer
  // The route timeout covers the whole response, from the end of the request (like Envoy's):
  // reading it from upstream and writing it to a client that may read slowly.
  up_deadline_.arm(up.stream, route_timeout, self);
  response_deadline_ = route_timeout.count() > 0 ? std::chrono::steady_clock::now() + route_timeout
                                                 : std::chrono::steady_clock::time_point{};
  bool received_any = false;
  bool head_sent = false;
  bool interim = false;
  bool chunked_down = false;
  std::string codings;
  size_t parse_pos = up.in.begin();
  // After the parser pauses at the end of a head, it must run once more even with no new bytes:
  // that is how a body-less message (204, 304, Content-Length: 0) reaches its end.
  bool step_again = false;
  keep_alive = false;

  while (true) {
    if (parse_pos == up.in.end() && !step_again) {
      if (up_deadline_.expired()) co_return head_sent ? RelayStatus::kFailedAfterHead : RelayStatus::kTimeout;
      if (up.in.writable() == 0) {
        if (head_sent || up.in.capacity() >= kMaxUpstreamHeadBytes) {
          log::debug("response head from upstream {} over {} bytes", lease.endpoint->key,
                     kMaxUpstreamHeadBytes);
          up_deadline_.disarm();
          co_return head_sent ? RelayStatus::kFailedAfterHead : RelayStatus::kInvalidResponse;
        }
        up.in.grow(std::min(kMaxUpstreamHeadBytes, up.in.capacity() * 2));
      }
      error_code ec;
      size_t n = co_await up.stream.async_read_some(asio::buffer(up.in.write_ptr(), up.in.writable()),
                                                    asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        if (up_deadline_.expired()) {
          co_return head_sent ? RelayStatus::kFailedAfterHead : RelayStatus::kTimeout;
        }
        if (ec == asio::error::eof && head_sent) {
          // A body delimited by the end of the stream ends here; anything else was cut short.
          http::Parser::Step step = up.parser.finish();
          if (!step.error && step.message_complete) {
            up.stream.close();
            out_.clear();
            if (chunked_down) out_.emplace_back(kLastChunk.data(), kLastChunk.size());
            up_deadline_.disarm();
            if (!out_.empty() && !co_await write_downstream(response_write_timeout())) {
              co_return RelayStatus::kDownstreamGone;
            }
            co_return RelayStatus::kDone;
          }
        }
        up_deadline_.disarm();
        if (!received_any) co_return RelayStatus::kClosedBeforeResponse;
        co_return head_sent ? RelayStatus::kFailedAfterHead : RelayStatus::kUpstreamReset;
      }
      received_any = true;
      up.in.commit(n);
    }

    http::Parser::Step step = up.parser.execute(up.in.data(), parse_pos, up.in.end());
    if (step.error) {
      up_deadline_.disarm();
      log::debug("invalid response from upstream {}: {}", lease.endpoint->key, step.reason);
      co_return head_sent ? RelayStatus::kFailedAfterHead : RelayStatus::kInvalidResponse;
    }
    parse_pos += step.consumed;
    step_again = step.headers_complete && !step.message_complete;
    if (step.headers_complete) {
      const int status = up.parser.status_code();
      const char* base = up.in.data();
      if (status == 101) {
        // A 101 is valid only as the answer to an upgrade Sluice forwarded (RFC 9110 §15.2.2).
        if (info.upgrade.empty()) {
          up_deadline_.disarm();
          log::debug("upstream {} answered 101 to a request without an upgrade", lease.endpoint->key);
          co_return RelayStatus::kInvalidResponse;
        }
        exchange_.response.status = status;
        exchange_.response.reason = up.parser.status_text().in(base);
        exchange_.response.fields.clear();
        std::string_view accepted = info.upgrade;
        for (const auto& h : up.parser.headers()) {
          http::HeaderView f{h.name.in(base), h.value.in(base)};
          if (http::iequals(f.name, "upgrade")) accepted = f.value;
          exchange_.response.fields.push_back(f);
        }
        out_.clear();
        queue_response_head(info, false, false, {}, accepted);
        // Bytes the upstream sent after its 101 are the tunnel's first bytes.
        up.in.consume_to(parse_pos);
        up_deadline_.disarm();
        if (!co_await write_downstream(idle_timeout_)) co_return RelayStatus::kDownstreamGone;
        co_return RelayStatus::kUpgraded;
      }
      if (status < 200) {
        // 1xx interim responses (100, 102, 103) are dropped: Sluice answers Expect itself and
        // does not forward early hints (documented; nginx does the same).
        interim = true;
      } else {
        exchange_.response.status = status;
        exchange_.response.reason = up.parser.status_text().in(base);
        exchange_.response.fields.clear();
        for (const auto& h : up.parser.headers()) {
          exchange_.response.fields.push_back({h.name.in(base), h.value.in(base)});
        }
        const bool no_body = info.is_head || status == 204 || status == 304;
        const bool sized = up.parser.has_content_length();
        codings = no_body ? std::string() : transfer_codings_of(up.parser, base);
        if (!codings.empty() && info.http10) {
          // An HTTP/1.0 client cannot be told about a transfer coding (RFC 9112 §6.1).
          up_deadline_.disarm();
          co_return RelayStatus::kInvalidResponse;
        }
        chunked_down = !no_body && !sized && !info.http10;
        // An HTTP/1.0 client gets an unsized body delimited by closing the connection.
        const bool close_delimited = !no_body && !sized && info.http10;
        keep_alive = info.keep_alive && !worker_.draining() && !close_delimited && !listener_removed();
        queue_response_head(info, chunked_down, !keep_alive, codings, {});
      }
    }
    if (!interim) {
      for (const auto& s : up.parser.body()) record_.sent_bytes += s.size();
      append_body(up.parser.body(), chunked_down, step.message_complete, up.parser.trailers());
    }
    // After the head, parse the bytes already buffered before writing, so the head and the
    // first body bytes leave in one sendmsg: a small response costs one write, not two (the
    // second write was ~15% of the CPU per request, bench/compare small GET).
    if (step_again && !interim) continue;
    if (!out_.empty()) {
      if (!co_await write_downstream(response_write_timeout())) {
        up_deadline_.disarm();
        if (down_deadline_.expired() && response_deadline_ != std::chrono::steady_clock::time_point{} &&
            std::chrono::steady_clock::now() >= response_deadline_) {
          record_.flags = "UT";  // the route timeout ended a response the client read too slowly
        }
        co_return RelayStatus::kDownstreamGone;
      }
      head_sent = true;
    }
    if (step.message_complete) {
      if (interim) {
        interim = false;
        continue;
      }
      up.in.consume_to(parse_pos);
      up_deadline_.disarm();
      co_return RelayStatus::kDone;
    }
    if (head_sent || interim) {
      // Body bytes already went downstream: recycle the buffer.
      up.in.consume_to(parse_pos);
      up.in.compact();
      parse_pos = up.in.begin();
    }
  }
}

awaitable<void> DownstreamConnection::tunnel(Lease& lease, config::Duration idle_timeout) {
  auto& up = *lease.conn;
  auto self = shared_from_this();
  record_.tunnel = true;
  // Bytes that arrived behind the heads belong to the tunnel: the client's after its request,
  // the upstream's after its 101.
  in_.consume_to(head_end_);
  body_unread_ = false;
  TunnelState state(stream_.get_executor());
  state.idle_timeout = idle_timeout;
  state.last_activity = std::chrono::steady_clock::now();
  // Downstream → upstream runs in its own coroutine; upstream → downstream in this one. This
  // frame outlives both: it waits for the other pump before returning.
  asio::co_spawn(stream_.get_executor(),
                 [self, &state, &up]() -> awaitable<void> {
                   co_await self->pump(self->stream_, up.stream, self->in_, state,
                                       self->record_.received_bytes);
                   state.up_done = true;
                   state.done.cancel();
                 },
                 asio::detached);
  asio::co_spawn(stream_.get_executor(), watch_tunnel(state, up), asio::detached);
  co_await pump(up.stream, stream_, up.in, state, record_.sent_bytes);
  state.down_done = true;
  if (!state.up_done) {
    error_code ignored;
    state.done.expires_at(std::chrono::steady_clock::time_point::max());
    co_await state.done.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  }
  state.idle.cancel();
  if (!state.watcher_done) {
    error_code ignored;
    state.done.expires_at(std::chrono::steady_clock::time_point::max());
    co_await state.done.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  }
  stream_.close();
}

awaitable<void> DownstreamConnection::pump(net::Stream& from, net::Stream& to, ByteBuffer& buffer,
                                           TunnelState& state, uint64_t& counter) {
  // Whatever is already buffered goes first.
  while (true) {
    if (buffer.size() > 0) {
      error_code ec;
      co_await to.async_write(asio::buffer(buffer.data() + buffer.begin(), buffer.size()),
                              asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;
      counter += buffer.size();
      state.last_activity = std::chrono::steady_clock::now();
      buffer.consume_to(buffer.end());
      buffer.compact();
    }
    error_code ec;
    size_t n = co_await from.async_read_some(asio::buffer(buffer.write_ptr(), buffer.writable()),
                                             asio::redirect_error(asio::use_awaitable, ec));
    if (ec == asio::error::eof) {
      // A half close travels on: the other side may still send (TCP allows it, WebSocket
      // closes with a handshake in the data before the FIN anyway).
      to.shutdown_send();
      co_return;
    }
    if (ec) break;
    buffer.commit(n);
    state.last_activity = std::chrono::steady_clock::now();
  }
  // An error either way (a reset, the idle timeout) ends the whole tunnel.
  from.cancel();
  to.cancel();
  state.failed = true;
}

awaitable<void> DownstreamConnection::watch_tunnel(TunnelState& state, upstream::UpstreamConnection& up) {
  auto self = shared_from_this();
  while (!(state.up_done && state.down_done) && !state.failed) {
    auto deadline = state.last_activity + state.idle_timeout;
    if (std::chrono::steady_clock::now() >= deadline) {
      log::debug("tunnel idle for {}ms: closing", state.idle_timeout.count());
      state.failed = true;
      stream_.cancel();
      up.stream.cancel();
      break;
    }
    state.idle.expires_at(deadline);
    error_code ec;
    co_await state.idle.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) break;  // cancelled: the tunnel ended
  }
  state.watcher_done = true;
  if (state.up_done && state.down_done) state.done.cancel();
}


}  // namespace sluice::proxy
