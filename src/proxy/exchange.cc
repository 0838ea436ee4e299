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
  size_t question = target.find('?');
  req.path = target.substr(0, question);
  req.query = question == std::string_view::npos ? std::string_view{} : target.substr(question + 1);

  int host_headers = 0;
  std::string_view host;
  std::string_view request_id;
  for (const auto& h : headers_) {
    if (http::iequals(h.name, "host")) {
      ++host_headers;
      host = h.value;
    } else if (http::iequals(h.name, "x-request-id") && request_id.empty()) {
      request_id = h.value;
    } else if (http::iequals(h.name, "expect")) {
      if (!http::iequals(h.value, "100-continue")) {
        co_return co_await local_reply(400, LocalReason::kBadRequest, "unsupported Expect header\n", true);
      }
      info.expect_continue = !info.http10;
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
  if (route) {
    record_.route_name = route->name();
    record_.route_stats = view.route_stats(listener_index_, vhost, route);
    record_.route_stats->active.add(1);
  }
  if (!route) {
    co_return co_await local_reply(404, LocalReason::kNoRoute,
                                   fmt::format("no route matches the request in virtual host '{}'\n",
                                               vhost->name()),
                                   info.has_body, info.request_id);
  }
  bool keep_open = co_await proxy(view, listener, *route, req, info);
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
  http::UpstreamRequestInput head;
  head.method = req.method;
  head.path = path;
  head.query = req.query;
  head.host = action.host_rewrite ? std::string_view(*action.host_rewrite) : req.authority;
  head.original_host = req.authority;
  head.client_address = client_address_;
  head.forwarded_proto = "http";
  if (info.request_id_generated) head.generated_request_id = info.request_id;
  head.chunked_body = info.chunked;
  head.headers = req.headers;
  http::build_upstream_request_head(head, head_parts_);

  std::optional<uint64_t> hash;
  if (cluster.spec.lb == config::Cluster::LbPolicy::kMaglev) hash = request_hash(cluster.spec.hash_on, req);

  bool continue_sent = false;
  for (int attempt = 0;; ++attempt) {
    std::string connect_error;
    // A retry goes to a freshly opened connection, never to another pooled one.
    Lease lease = co_await acquire(cluster, binding, /*fresh_only=*/attempt > 0, hash, connect_error);
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
    // A pooled connection the backend closed just as we reused it fails before any response
    // byte. Without a body the request can be sent again, once, on a fresh connection.
    const bool may_retry = lease.reused && !info.has_body && attempt == 0;
    if (sent == SendStatus::kUpstreamFailed) {
      release(lease, false);
      if (may_retry) continue;
      co_return co_await local_reply(502, LocalReason::kUpstreamReset,
                                     "upstream connection failed while sending the request\n",
                                     body_unread_, info.request_id);
    }
    bool keep_alive = false;
    record_.upstream_start = std::chrono::steady_clock::now();
    RelayStatus relayed = co_await relay_response(lease, info, action.timeout, listener.spec, keep_alive);
    record_.upstream_end = std::chrono::steady_clock::now();
    std::string_view endpoint = lease.endpoint->key;
    switch (relayed) {
      case RelayStatus::kDone:
        record_.status = lease.conn->parser.status_code();
        binding.stats->upstream_requests[stats::code_class_index(record_.status)].add();
        // llhttp's keep-alive answer is false for bodies delimited by the end of the stream.
        release(lease, lease.conn->socket.is_open() && lease.conn->parser.keep_alive() &&
                           lease.conn->in.size() == 0);
        co_return keep_alive;
      case RelayStatus::kClosedBeforeResponse:
        release(lease, false);
        if (may_retry) continue;
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
        record_.flags = "DC";
        release(lease, false);
        co_return false;
    }
  }
}

awaitable<DownstreamConnection::Lease> DownstreamConnection::acquire(
    const upstream::ClusterInfo& cluster, const server::WorkerView::ClusterBinding& binding,
    bool fresh_only, std::optional<uint64_t> hash, std::string& error) {
  const size_t n = cluster.eligible.size();
  auto now = upstream::Clock::now();
  if (n == 0) {
    error = "no endpoint";
    co_return Lease{};
  }
  if (cluster.panic) binding.stats->lb_panic.add();
  // The balancer chooses the first endpoint; after a connect failure the others follow in order,
  // each tried at most once. Nothing has been sent yet, so that retry is always safe.
  const size_t first = binding.balancer->pick(cluster, worker_.random(), hash, [&](uint32_t i) {
    return binding.pools[i]->endpoint_stats()->requests_active.value();
  });
  for (size_t tries = 0; tries < n; ++tries) {
    size_t index = cluster.eligible[(first + tries) % n];
    Lease lease;
    lease.pool = binding.pools[index];
    lease.endpoint = &cluster.endpoints[index];
    lease.max_idle = cluster.spec.max_idle_connections;
    if (auto conn = fresh_only ? nullptr : lease.pool->take(now, cluster.spec.idle_timeout)) {
      lease.conn = std::move(conn);
      lease.reused = true;
      lease.pool->cluster_stats()->connection_reuse.add();
      start_endpoint_request(lease);
      co_return lease;
    }
    auto conn = std::make_unique<upstream::UpstreamConnection>(
        socket_.get_executor(), lease.pool->cluster_stats(), lease.pool->endpoint_stats());
    error_code ec;
    up_deadline_.arm(conn->socket, cluster.spec.connect_timeout, shared_from_this());
    co_await conn->socket.async_connect(lease.endpoint->address,
                                        asio::redirect_error(asio::use_awaitable, ec));
    bool timed_out = up_deadline_.expired();
    up_deadline_.disarm();
    if (!ec) {
      conn->socket.set_option(tcp::no_delay(true), ec);
      lease.conn = std::move(conn);
      lease.pool->cluster_stats()->connections_total.add();
      start_endpoint_request(lease);
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
  lease.pool->endpoint_stats()->requests_active.add(-1);
  if (reusable && !worker_.draining()) {
    lease.conn->parser.set_skip_body(false);
    lease.pool->give_back(std::move(lease.conn), upstream::Clock::now(), lease.max_idle);
  } else {
    error_code ignored;
    lease.conn->socket.close(ignored);
    lease.conn.reset();
  }
}

void DownstreamConnection::append_body(const std::vector<std::span<const char>>& body, bool chunked,
                                       bool last) {
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
  if (chunked && last) out_.emplace_back(kLastChunk.data(), kLastChunk.size());
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
      append_body(parser_.body(), info.chunked, complete);
    }
    if (!out_.empty()) {
      error_code ec;
      up_deadline_.arm(up.socket, idle_timeout_, self);
      co_await asio::async_write(up.socket, out_, asio::redirect_error(asio::use_awaitable, ec));
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
    down_deadline_.arm(socket_, idle_timeout_, self);
    size_t n = co_await socket_.async_read_some(asio::buffer(in_.write_ptr(), in_.writable()),
                                                asio::redirect_error(asio::use_awaitable, ec));
    down_deadline_.disarm();
    if (ec) co_return SendStatus::kDownstreamGone;
    in_.commit(n);
  }
}

awaitable<DownstreamConnection::RelayStatus> DownstreamConnection::relay_response(
    Lease& lease, const RequestInfo& info, config::Duration route_timeout,
    const config::Listener& spec, bool& keep_alive) {
  (void)spec;
  auto& up = *lease.conn;
  auto self = shared_from_this();
  up.parser.set_skip_body(info.is_head);
  up.in.compact();  // a pooled connection starts each response at the front of its buffer
  // The route timeout covers the whole response, from the end of the request (like Envoy's).
  up_deadline_.arm(up.socket, route_timeout, self);
  bool received_any = false;
  bool head_sent = false;
  bool interim = false;
  bool chunked_down = false;
  size_t parse_pos = up.in.begin();
  // After the parser pauses at the end of a head, it must run once more even with no new bytes:
  // that is how a body-less message (204, 304, Content-Length: 0) reaches its end.
  bool step_again = false;
  keep_alive = false;

  while (true) {
    if (parse_pos == up.in.end() && !step_again) {
      if (up_deadline_.expired()) co_return head_sent ? RelayStatus::kFailedAfterHead : RelayStatus::kTimeout;
      if (up.in.writable() == 0) {
        if (head_sent || up.in.capacity() >= kMaxUpstreamHeadBytes) co_return RelayStatus::kInvalidResponse;
        up.in.grow(std::min(kMaxUpstreamHeadBytes, up.in.capacity() * 2));
      }
      error_code ec;
      size_t n = co_await up.socket.async_read_some(asio::buffer(up.in.write_ptr(), up.in.writable()),
                                                    asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        if (up_deadline_.expired()) {
          co_return head_sent ? RelayStatus::kFailedAfterHead : RelayStatus::kTimeout;
        }
        if (ec == asio::error::eof && head_sent) {
          // A body delimited by the end of the stream ends here; anything else was cut short.
          http::Parser::Step step = up.parser.finish();
          if (!step.error && step.message_complete) {
            error_code ignored;
            up.socket.close(ignored);
            out_.clear();
            if (chunked_down) out_.emplace_back(kLastChunk.data(), kLastChunk.size());
            up_deadline_.disarm();
            if (!out_.empty() && !co_await write_downstream(idle_timeout_)) co_return RelayStatus::kDownstreamGone;
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
      int status = up.parser.status_code();
      if (status < 200) {
        // 1xx interim responses are dropped: Sluice already answered Expect itself.
        interim = true;
      } else {
        const char* base = up.in.data();
        headers_.clear();
        for (const auto& h : up.parser.headers()) headers_.push_back({h.name.in(base), h.value.in(base)});
        bool no_body = info.is_head || status == 204 || status == 304;
        bool sized = up.parser.has_content_length();
        chunked_down = !no_body && !sized && !info.http10;
        // An HTTP/1.0 client gets an unsized body delimited by closing the connection.
        bool close_delimited = !no_body && !sized && info.http10;
        keep_alive = info.keep_alive && !worker_.draining() && !close_delimited;
        http::DownstreamResponseInput in;
        in.status = status;
        in.reason = up.parser.status_text().in(base);
        in.request_id = info.request_id;
        in.chunked_body = chunked_down;
        in.close = !keep_alive;
        in.keep_alive_header = keep_alive && info.http10;
        in.headers = headers_;
        http::build_downstream_response_head(in, head_parts_);
        out_.emplace_back(head_parts_.prefix.data(), head_parts_.prefix.size());
        for (auto v : head_parts_.middle) out_.emplace_back(v.data(), v.size());
        out_.emplace_back(head_parts_.suffix.data(), head_parts_.suffix.size());
      }
    }
    if (!interim) {
      for (const auto& s : up.parser.body()) record_.sent_bytes += s.size();
      append_body(up.parser.body(), chunked_down, step.message_complete);
    }
    // After the head, parse the bytes already buffered before writing, so the head and the
    // first body bytes leave in one sendmsg: a small response costs one write, not two (the
    // second write was ~15% of the CPU per request, bench/compare small GET).
    if (step_again && !interim) continue;
    if (!out_.empty()) {
      if (!co_await write_downstream(idle_timeout_)) {
        up_deadline_.disarm();
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

}  // namespace sluice::proxy
