#include "sluice/proxy/downstream_connection.h"

#include <fmt/core.h>
#include <fmt/format.h>

#include <cstring>

#include "sluice/common/log.h"
#include "sluice/http/status.h"
#include "sluice/http2/protocol.h"
#include "sluice/proxy/http2_connection.h"

namespace sluice::proxy {

namespace {

constexpr auto kLingerTime = std::chrono::seconds(2);
constexpr size_t kLingerMaxBytes = 4 * 1024 * 1024;
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
// How long a keep-alive connection waits for its next request inside its coroutine before it
// parks (DownstreamConnection::park).
constexpr config::Duration kParkAfter = std::chrono::milliseconds(200);

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

DownstreamConnection::DownstreamConnection(server::Worker& worker, std::string listener_name,
                                           net::Stream stream, std::string client_address)
    : worker_(worker),
      listener_name_(std::move(listener_name)),
      stream_(std::move(stream)),
      client_address_(std::move(client_address)),
      down_deadline_(stream_.get_executor()),
      up_deadline_(stream_.get_executor()) {
  error_code ec;
  stream_.lowest_layer().set_option(tcp::no_delay(true), ec);
}

DownstreamConnection::~DownstreamConnection() {
  if (listener_stats_) listener_stats_->connections_active.add(-1);
  worker_.remove_connection(this);
}

void DownstreamConnection::start() {
  worker_.add_connection(this);
  if (const auto& view = worker_.view()) {
    if (const auto* l = view->snapshot->find_listener(listener_name_)) {
      // Listener stats are keyed by name, so this pointer stays valid across reloads.
      listener_stats_ = view->listeners[static_cast<size_t>(l - view->snapshot->listeners().data())].stats;
      listener_stats_->connections_total.add();
      listener_stats_->connections_active.add(1);
    }
  }
  // run() holds the connection from the spawn on: its parameter is copied into its frame.
  spawn(executor_of(stream_.get_executor()), run(shared_from_this(), 0));
}

void DownstreamConnection::park(config::Duration idle_left) {
  // The coroutine ended after this call, and with it its frames (run's and the pending read's,
  // ~2 KiB): a parked connection holds only itself, this read and its deadline's
  // wait. The read goes into first_bytes_ as the coroutine's would, and like it tries a recv
  // first only if the socket became readable since its last read drained it (net/reactor_ops.h),
  // so bytes that came meanwhile are not missed.
  idle_ = true;
  auto self = shared_from_this();
  // The upstream deadline's lazy wait of the last request may still be pending (until that
  // request's timeout, 15 s by default), holding a timer operation and a reference to us.
  up_deadline_.cancel();
  down_deadline_.arm(stream_, idle_left, self);
  net::async_receive_after_drain(
      stream_.lowest_layer(), asio::buffer(first_bytes_),
      [self = std::move(self)](const error_code& ec, size_t n) mutable {
        self->idle_ = false;
        if (ec) {
          // Nothing was received: a quiet close, the idle timeout, or a drain. Nothing is
          // buffered either, so no lingering close.
          self->stream_.close();
          self->down_deadline_.cancel();
          self->up_deadline_.cancel();
          return;
        }
        DownstreamConnection& conn = *self;
        start_now(executor_of(conn.stream_.get_executor()), conn.run(std::move(self), n));
      });
}

void DownstreamConnection::drain() {
  if (h2_) h2_->drain();
  else if (idle_) stream_.cancel();
}

awaitable<void> DownstreamConnection::serve_http2(std::string received) {
  h2_ = std::make_shared<Http2Connection>(worker_, listener_name_, stream_, shared_from_this(),
                                          client_address_, listener_stats_);
  co_await h2_->run(std::move(received));
  h2_.reset();
}

awaitable<bool> DownstreamConnection::handshake(const config::Listener& spec) {
  auto self = shared_from_this();
  down_deadline_.arm(stream_, spec.tls_handshake_timeout, self);
  error_code ec;
  co_await stream_.async_handshake(asio::redirect_error(use_awaitable, ec));
  down_deadline_.disarm();
  if (ec) {
    const net::TlsFailure why = down_deadline_.expired() ? net::TlsFailure::kTimeout : stream_.tls_failure();
    // A peer that closes before sending any byte (a load balancer's TCP check, a port scan)
    // did not try a handshake: not a failure to alert on. Garbage or a half ClientHello is.
    const bool attempted = why != net::TlsFailure::kClosed || stream_.tls_hello_seen();
    if (listener_stats_ && attempted) listener_stats_->tls.failures[static_cast<size_t>(why)].add();
    log::debug("TLS handshake with {} failed: {} ({})", client_address_, net::to_string(why), stream_.tls_error());
    co_return false;
  }
  if (listener_stats_) {
    const net::TlsInfo& info = *stream_.tls_info();
    stats::TlsStats& tls = listener_stats_->tls;
    tls.handshakes.add();
    if (info.resumed) tls.resumptions.add();
    if (auto v = net::index_of(net::kTlsVersionNames, info.version); v < tls.versions.size()) tls.versions[v].add();
    if (auto c = net::index_of(net::kTlsCipherNames, info.cipher); c < tls.ciphers.size()) tls.ciphers[c].add();
  }
  co_return true;
}

awaitable<void> DownstreamConnection::run(std::shared_ptr<DownstreamConnection> self, size_t unparked) {
  if (stream_.is_tls() && first_request_) {
    std::shared_ptr<server::WorkerView> view = worker_.view();
    const server::ListenerInfo* listener = view ? view->snapshot->find_listener(listener_name_) : nullptr;
    if (!listener || !co_await handshake(listener->spec)) {
      stream_.close();
      down_deadline_.cancel();
      co_return;
    }
    if (stream_.tls_info()->alpn == "h2") {
      co_await serve_http2({});
      stream_.close();
      down_deadline_.cancel();
      co_return;
    }
  }
  while (!worker_.draining()) {
    std::shared_ptr<server::WorkerView> view = worker_.view();
    const server::ListenerInfo* listener = view ? view->snapshot->find_listener(listener_name_) : nullptr;
    if (!listener) break;
    const config::Listener& spec = listener->spec;
    body_unread_ = false;
    request_keep_alive_ = true;

    // Nothing buffered: the per-request state goes back to the worker, and the wait for the
    // next request holds only this connection and this frame (inline, not in read_head(), so
    // an idle connection keeps one coroutine frame, not two).
    if (st_) {
      st_->in.compact();
      if (st_->in.size() == 0) worker_.give_http1_state(std::move(st_));
    }
    bool deadline_armed = false;
    if (!st_) {
      // A new connection must send its first request within the header timeout, not the idle
      // timeout: silent sockets would otherwise hold connection slots for a minute (nginx: the
      // same). A keep-alive connection waits idle_timeout for its next request.
      const bool keep_alive_wait = !first_request_;
      size_t n = unparked;
      unparked = 0;
      if (n == 0) {
        // A plain keep-alive connection quiet for kParkAfter parks (park()): it stops holding
        // coroutine frames, at the cost of a co_spawn when its next request comes. Waiting a
        // moment first keeps that cost off connections whose requests follow each other closely.
        const bool may_park = keep_alive_wait && !stream_.is_tls() &&
                              (spec.idle_timeout.count() <= 0 || spec.idle_timeout > kParkAfter);
        idle_ = true;
        down_deadline_.arm(stream_,
                           !keep_alive_wait ? spec.request_headers_timeout
                           : may_park       ? kParkAfter
                                            : spec.idle_timeout,
                           self);
        error_code ec;
        // The client's next request: no recv is spent finding the socket empty.
        n = co_await stream_.async_read_next_message(asio::buffer(first_bytes_),
                                             asio::redirect_error(use_awaitable, ec));
        idle_ = false;
        if (ec) {
          const bool park_now = may_park && down_deadline_.expired() && !worker_.draining();
          down_deadline_.disarm();
          if (park_now) {
            park(spec.idle_timeout.count() <= 0 ? spec.idle_timeout : spec.idle_timeout - kParkAfter);
            co_return;
          }
          break;  // nothing was received: a quiet close, the idle timeout, or a drain
        }
      }
      // h2c with prior knowledge: a client that opens with the HTTP/2 preface speaks HTTP/2 on
      // this plaintext port; anything else is HTTP/1.1 as usual.
      if (!keep_alive_wait && spec.http2.prior_knowledge && !stream_.is_tls()) {
        n = co_await read_preface(n);
        if (n == 0) {
          down_deadline_.disarm();
          break;
        }
        if (n >= http2::kClientPreface.size() &&
            std::string_view(first_bytes_.data(), http2::kClientPreface.size()) == http2::kClientPreface) {
          down_deadline_.disarm();
          co_await serve_http2(std::string(first_bytes_.data(), n));
          break;
        }
      }
      head_start_ = std::chrono::steady_clock::now();
      st_ = worker_.take_http1_state();
      st_->runner.bind(*this, up_deadline_);
      std::memcpy(st_->in.write_ptr(), first_bytes_.data(), n);
      st_->in.commit(n);
      // The first byte of a request starts the header timeout (slowloris defence); the first
      // request's has run since accept.
      if (keep_alive_wait) down_deadline_.arm(stream_, spec.request_headers_timeout, self);
      deadline_armed = true;
    }
    first_request_ = false;
    st_->parser.set_max_headers(spec.max_request_headers_count);

    HeadStatus status = co_await read_head(spec, deadline_armed);
    if (status == HeadStatus::kClosed) break;
    // The newest snapshot routes this request, also on a long-lived keep-alive connection. If a
    // reload removed this listener meanwhile, the request is still answered, on the snapshot
    // the connection knew (listener_removed() then closes the connection after the response).
    if (auto newest = worker_.view(); newest && newest->snapshot->find_listener(listener_name_)) {
      view = newest;
      listener = view->snapshot->find_listener(listener_name_);
    }
    spec_ = &listener->spec;
    const auto listener_index = static_cast<size_t>(listener - view->snapshot->listeners().data());
    if (listener_stats_) listener_stats_->requests_total.add();
    ExchangeRunner& runner = st_->runner;
    runner.open(std::move(view), listener_index, head_start_, client_address_, stream_.tls_info());
    http10_ = false;
    expect_continue_ = continue_sent_ = false;
    // One await site per outcome: every co_await in this loop adds to the frame an idle
    // connection keeps (bench/compare idle).
    Refusal refused = status == HeadStatus::kOk ? decode_head(*listener) : refusal_for(status);
    bool keep_open = false;
    if (refused.status != 0) {
      co_await runner.reply(refused.status, refused.reason, std::string(refused.body), true);
    } else {
      keep_open = co_await runner.run(*listener);
    }
    runner.finish();
    if (!keep_open) break;
  }
  co_await close_gracefully();
  // End the watchdogs' pending waits: they hold this connection alive.
  down_deadline_.cancel();
  up_deadline_.cancel();
}

awaitable<size_t> DownstreamConnection::read_preface(size_t n) {
  // Reads until the bytes stop matching the preface or all of it is here (it usually comes in
  // one segment with the client's SETTINGS). 0: the client went away meanwhile.
  const std::string_view preface = http2::kClientPreface;
  while (n < preface.size() && std::string_view(first_bytes_.data(), n) == preface.substr(0, n)) {
    error_code ec;
    n += co_await stream_.async_read_some(asio::buffer(first_bytes_.data() + n, first_bytes_.size() - n),
                                          asio::redirect_error(use_awaitable, ec));
    if (ec) co_return 0;
  }
  co_return n;
}

DownstreamConnection::Refusal DownstreamConnection::refusal_for(HeadStatus status) {
  switch (status) {
    case HeadStatus::kTimeout:
      return {408, LocalReason::kRequestTimeout, "request headers not received in time\n"};
    case HeadStatus::kTooLarge:
      return {431, LocalReason::kHeadersTooLarge, "request headers too large\n"};
    case HeadStatus::kNotImplemented:
      return {501, LocalReason::kNotImplemented, "transfer codings other than chunked are not supported\n"};
    case HeadStatus::kBadVersion:
      return {505, LocalReason::kBadRequest, "HTTP version not supported\n"};
    case HeadStatus::kBad:
    case HeadStatus::kOk:
    case HeadStatus::kClosed:
      break;
  }
  return {400, LocalReason::kBadRequest, "malformed request\n"};
}

awaitable<DownstreamConnection::HeadStatus> DownstreamConnection::read_head(const config::Listener& spec,
                                                                          bool deadline_armed) {
  ByteBuffer& in = st_->in;
  in.compact();
  size_t parse_pos = in.begin();
  const size_t head_start = parse_pos;
  auto self = shared_from_this();
  if (!deadline_armed) {
    // Pipelined bytes already buffered: this request started when they arrived (close enough).
    head_start_ = std::chrono::steady_clock::now();
    down_deadline_.arm(stream_, spec.request_headers_timeout, self);
  }
  while (true) {
    if (parse_pos < in.end()) {
      http::Parser::Step step = st_->parser.execute(in.data(), parse_pos, in.end());
      if (step.error) {
        down_deadline_.disarm();
        log::debug("bad request from {}: {}", client_address_, step.reason);
        if (step.too_many_headers) co_return HeadStatus::kTooLarge;
        if (step.reply_status == 501) co_return HeadStatus::kNotImplemented;
        if (step.reply_status == 505) co_return HeadStatus::kBadVersion;
        co_return HeadStatus::kBad;
      }
      parse_pos += step.consumed;
      if (parse_pos - head_start > spec.max_request_headers_bytes) {
        down_deadline_.disarm();
        co_return HeadStatus::kTooLarge;
      }
      if (step.headers_complete) {
        down_deadline_.disarm();
        head_end_ = parse_pos;
        co_return HeadStatus::kOk;
      }
    }
    if (in.writable() == 0) {
      // The head must stay contiguous while it is parsed; grow up to the configured limit.
      size_t limit = spec.max_request_headers_bytes + 1024;
      if (in.capacity() >= limit) {
        down_deadline_.disarm();
        co_return HeadStatus::kTooLarge;
      }
      in.grow(std::min(limit, in.capacity() * 2));
    }
    error_code ec;
    size_t n = co_await stream_.async_read_some(asio::buffer(in.write_ptr(), in.writable()),
                                                asio::redirect_error(use_awaitable, ec));
    if (ec) {
      bool timed_out = down_deadline_.expired();
      down_deadline_.disarm();
      // Part of a head arrived and then the client stalled: 408; it closed: nothing to answer.
      if (timed_out) co_return HeadStatus::kTimeout;
      co_return HeadStatus::kClosed;
    }
    in.commit(n);
  }
}

DownstreamConnection::Refusal DownstreamConnection::decode_head(const server::ListenerInfo& listener) {
  const char* base = st_->in.data();
  Exchange& ex = st_->runner.exchange();
  RequestHead& head = ex.request;
  for (const auto& h : st_->parser.headers()) head.fields.push_back({h.name.in(base), h.value.in(base)});

  http10_ = st_->parser.http_major() == 1 && st_->parser.http_minor() == 0;
  const bool chunked = st_->parser.chunked();
  ex.facts.protocol = http10_ ? "HTTP/1.0" : "HTTP/1.1";
  ex.facts.has_body = chunked || st_->parser.content_length() > 0;
  ex.facts.body_length_known = !chunked;
  ex.facts.head_request = st_->parser.method() == HTTP_HEAD;
  ex.facts.idempotent = is_idempotent(st_->parser.method());
  request_keep_alive_ = st_->parser.keep_alive();
  body_unread_ = ex.facts.has_body;
  body_pos_ = head_end_;
  body_bytes_ = 0;
  head_owned_ = false;
  if (!ex.facts.has_body) {
    // Let the parser step over the end of a body-less message (consumes nothing), and mark the
    // head consumed: whatever answers it (upstream or a local reply), the next request starts
    // after it. The bytes stay in place, so the views into them stay valid for this exchange.
    st_->parser.execute(st_->in.data(), head_end_, head_end_);
    st_->in.consume_to(head_end_);
  }

  head.method = llhttp_method_name(st_->parser.method());
  std::string_view target = st_->parser.url().in(base);
  if (log::enabled(log::Level::kDebug)) st_->runner.method_and_path() = fmt::format("{} {}", head.method, target);

  std::string_view authority_in_target;
  if (st_->parser.method() == HTTP_CONNECT) {
    return {400, LocalReason::kBadRequest, "CONNECT is not supported\n"};
  }
  if (starts_with_ci(target, "http://") || starts_with_ci(target, "https://")) {
    // Absolute form: the authority in the target wins over Host (RFC 9112 §3.2.2).
    std::string_view rest = target.substr(target.find("://") + 3);
    size_t slash = rest.find_first_of("/?");
    authority_in_target = rest.substr(0, slash);
    target = slash == std::string_view::npos ? std::string_view("/") : rest.substr(slash);
    if (!target.empty() && target.front() == '?') {
      return {400, LocalReason::kBadRequest, "invalid request target\n"};
    }
  } else if (target != "*" && (target.empty() || target.front() != '/')) {
    return {400, LocalReason::kBadRequest, "invalid request target\n"};
  }
  const size_t question = target.find('?');
  head.path = target.substr(0, question);
  head.query = question == std::string_view::npos ? std::string_view{} : target.substr(question + 1);
  head.has_query = question != std::string_view::npos;

  int host_headers = 0;
  std::string_view host;
  std::string_view request_id;
  std::string_view upgrade_offer;
  bool connection_upgrade = false;
  // One pass over the fields, dispatched on the name's length first: most names match none of
  // these, and the length settles that without comparing characters.
  for (const auto& h : head.fields.items()) {
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
            return {400, LocalReason::kBadRequest, "unsupported Expect header\n"};
          }
          expect_continue_ = !http10_;
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
    return {400, LocalReason::kBadRequest, "more than one Host header\n"};
  }
  if (host_headers == 0 && !http10_ && authority_in_target.empty()) {
    return {400, LocalReason::kBadRequest, "missing Host header\n"};
  }
  head.authority = authority_in_target.empty() ? host : authority_in_target;
  // An empty x-request-id counts as absent: Sluice generates one and replaces the empty header.
  ex.facts.request_id_generated = request_id.empty();
  if (request_id.empty()) {
    ex.request_id = http::make_request_id();
  } else {
    ex.request_id.assign(request_id);
  }
  // A WebSocket handshake (a GET without a body) may be tunnelled; the route decides.
  if (connection_upgrade && http::iequals(upgrade_offer, "websocket") &&
      st_->parser.method() == HTTP_GET && !ex.facts.has_body && !http10_) {
    ex.facts.upgrade = upgrade_offer;
  }

  ExchangeRecord& record = st_->runner.record();
  if (record.log) {
    record.method = head.method;
    record.authority = head.authority;
    record.target = st_->parser.url().in(base);
  }
  const auto& spec = listener.spec;
  if (spec.max_request_body_bytes > 0 && st_->parser.has_content_length() &&
      st_->parser.content_length() > spec.max_request_body_bytes) {
    return {413, LocalReason::kBodyTooLarge, "request body too large\n"};
  }
  return {};
}

// --- Downstream ---

awaitable<bool> DownstreamConnection::send_continue() {
  continue_sent_ = true;
  st_->out.clear();
  st_->out.emplace_back(kContinue.data(), kContinue.size());
  co_return co_await flush_response(spec_->idle_timeout);
}

awaitable<Downstream::BodyStatus> DownstreamConnection::read_request_body(filters::BodySpans& part,
                                                                          bool& last, bool wait) {
  const config::Listener& spec = *spec_;
  if (!wait) body_start_ = std::chrono::steady_clock::now();
  // A body that trickles in is cut: request_body_timeout between reads, and optionally
  // request_body_total_timeout for the whole body (slowloris on the body).
  const config::Duration between_reads =
      spec.request_body_timeout.count() > 0 ? spec.request_body_timeout : spec.idle_timeout;
  while (true) {
    if (body_pos_ < st_->in.end()) {
      http::Parser::Step step = st_->parser.execute(st_->in.data(), body_pos_, st_->in.end());
      if (step.error) co_return BodyStatus::kBad;
      body_pos_ += step.consumed;
      for (const auto& s : st_->parser.body()) body_bytes_ += s.size();
      if (spec.max_request_body_bytes > 0 && body_bytes_ > spec.max_request_body_bytes) {
        co_return BodyStatus::kTooLarge;
      }
      part = st_->parser.body();
      last = step.message_complete;
      if (last) {
        body_unread_ = false;
        st_->in.consume_to(body_pos_);  // the bytes stay in place until the next compact()
        auto& trailers = st_->runner.exchange().request_trailers;
        trailers.clear();
        for (const auto& t : st_->parser.trailers()) trailers.push_back({t.name, t.value});
      }
      co_return BodyStatus::kOk;
    }
    if (!wait) {
      part = {};
      last = false;
      co_return BodyStatus::kOk;
    }
    // Everything parsed so far went upstream: reuse the buffer for the next part. The request
    // head's views point into it, so the exchange takes its own copy first (once).
    if (!head_owned_) {
      st_->runner.exchange().own_request_head();
      head_owned_ = true;
    }
    st_->in.consume_to(body_pos_);
    st_->in.compact();
    body_pos_ = st_->in.begin();
    error_code ec;
    config::Duration timeout = between_reads;
    bool total_limited = false;
    if (spec.request_body_total_timeout.count() > 0) {
      auto left = std::chrono::duration_cast<config::Duration>(
          body_start_ + spec.request_body_total_timeout - std::chrono::steady_clock::now());
      if (left.count() <= 0) co_return BodyStatus::kTimeout;
      if (left < timeout) {
        timeout = left;
        total_limited = true;
      }
    }
    down_deadline_.arm(stream_, timeout, shared_from_this());
    size_t n = co_await stream_.async_read_some(asio::buffer(st_->in.write_ptr(), st_->in.writable()),
                                                asio::redirect_error(use_awaitable, ec));
    const bool timed_out = down_deadline_.expired();
    down_deadline_.disarm();
    if (ec && timed_out && (total_limited || spec.request_body_timeout.count() > 0)) {
      co_return BodyStatus::kTimeout;
    }
    if (ec) co_return BodyStatus::kGone;
    st_->in.commit(n);
  }
}

bool DownstreamConnection::queue_response_head(const ResponseFraming& framing) {
  const Exchange& ex = st_->runner.exchange();
  const int status = ex.response.status;
  http::DownstreamResponseInput in;
  in.status = status;
  in.reason = ex.response.reason;
  in.request_id = ex.request_id;
  in.headers = ex.response.fields.items();
  st_->out.clear();
  if (!framing.upgrade.empty()) {
    in.upgrade = framing.upgrade;
    chunked_down_ = false;
    keep_open_ = false;
  } else {
    // An HTTP/1.0 client cannot be told about a transfer coding (RFC 9112 §6.1).
    if (!framing.transfer_codings.empty() && http10_) return false;
    const bool no_body = ex.facts.head_request || status == 204 || status == 304;
    chunked_down_ = !no_body && !framing.length_known && !http10_;
    // An HTTP/1.0 client gets an unsized body delimited by closing the connection.
    const bool close_delimited = !no_body && !framing.length_known && http10_;
    keep_open_ = request_keep_alive_ && !worker_.draining() && !close_delimited && !listener_removed();
    in.chunked_body = chunked_down_;
    in.transfer_codings = framing.transfer_codings;
    in.close = !keep_open_;
    in.keep_alive_header = keep_open_ && http10_;
  }
  http::build_downstream_response_head(in, st_->head_parts);
  st_->out.emplace_back(st_->head_parts.prefix.data(), st_->head_parts.prefix.size());
  for (auto v : st_->head_parts.middle) st_->out.emplace_back(v.data(), v.size());
  st_->out.emplace_back(st_->head_parts.suffix.data(), st_->head_parts.suffix.size());
  return true;
}

void DownstreamConnection::queue_response_body(filters::BodySpans body, bool last) {
  st_->encoder.append(st_->out, body, chunked_down_, last, st_->runner.exchange().response_trailers.items());
}

bool DownstreamConnection::flush_now() { return stream_.write_now(st_->out); }

awaitable<bool> DownstreamConnection::flush_response(config::Duration timeout) {
  if (st_->out.empty()) co_return true;
  error_code ec;
  down_deadline_.arm(stream_, timeout, shared_from_this());
  co_await stream_.async_write(st_->out, asio::redirect_error(use_awaitable, ec));
  down_deadline_.disarm();
  st_->out.clear();
  co_return !ec;
}

awaitable<bool> DownstreamConnection::send_local_reply(bool close) {
  const Exchange& ex = st_->runner.exchange();
  const LocalReply& reply = *ex.local_reply;
  if (worker_.draining() || !request_keep_alive_ || body_unread_ || listener_removed()) close = true;
  std::string& msg = st_->local_head;
  msg.clear();
  fmt::format_to(std::back_inserter(msg), "HTTP/1.1 {} {}\r\n", reply.status, http::standard_reason(reply.status));
  bool has_type = false;
  for (const auto& f : ex.response.fields.items()) {
    if (http::iequals(f.name, "content-length") || http::iequals(f.name, "transfer-encoding") ||
        http::iequals(f.name, "connection")) {
      continue;  // framing is Sluice's
    }
    has_type = has_type || http::iequals(f.name, "content-type");
    msg.append(f.name).append(": ").append(f.value).append("\r\n");
  }
  if (!has_type && !reply.body.empty()) msg.append("content-type: ").append(reply.content_type).append("\r\n");
  fmt::format_to(std::back_inserter(msg), "content-length: {}\r\n", reply.body.size());
  if (!ex.request_id.empty() && !ex.response.fields.get("x-request-id")) {
    msg.append("x-request-id: ").append(ex.request_id).append("\r\n");
  }
  if (close) msg += "connection: close\r\n";
  msg += "\r\n";
  // A reply to HEAD has the head only: its Content-Length says what a GET would have carried
  // (RFC 9110 §9.3.2), and body bytes would desynchronise a keep-alive client.
  if (!ex.facts.head_request) msg.append(reply.body);
  st_->out.clear();
  st_->out.emplace_back(msg.data(), msg.size());
  const bool ok = co_await flush_response(spec_ ? spec_->idle_timeout : config::Duration(0));
  co_return ok && !close;
}

bool DownstreamConnection::listener_removed() const {
  const auto& current = worker_.view();
  if (!st_) return false;
  const auto& mine = st_->runner.record().view;
  if (!current || current == mine) return false;
  return current->snapshot->find_listener(listener_name_) == nullptr;
}

awaitable<void> DownstreamConnection::close_gracefully() {
  error_code ec;
  if (!stream_.is_open()) co_return;
  if (st_ && (body_unread_ || st_->in.size() > 0)) {
    stream_.shutdown_send();
    // Lingering close: unread bytes in our receive queue would make close() send a reset that
    // can destroy the response before the client reads it. Read and drop them for a while.
    down_deadline_.arm(stream_, std::chrono::duration_cast<config::Duration>(kLingerTime),
                       shared_from_this());
    size_t dropped = 0;
    while (!ec && dropped < kLingerMaxBytes) {
      st_->in.consume_to(st_->in.end());
      st_->in.compact();
      dropped += co_await stream_.async_read_some(asio::buffer(st_->in.write_ptr(), st_->in.writable()),
                                                  asio::redirect_error(use_awaitable, ec));
    }
    down_deadline_.disarm();
  }
  stream_.close();
}

// --- Tunnels ---

// What the two halves of a tunnel share; it lives in tunnel()'s frame, which outlives both.
struct DownstreamConnection::TunnelState {
  explicit TunnelState(const asio::any_io_executor& ex) : done(ex), idle(ex) {}
  asio::steady_timer done;  // cancelled to wake tunnel() when the other half has finished
  asio::steady_timer idle;  // the idle watchdog's timer
  config::Duration idle_timeout{0};
  std::chrono::steady_clock::time_point last_activity;
  bool up_done = false, down_done = false, failed = false, watcher_done = false;
};

awaitable<void> DownstreamConnection::tunnel(upstream::Session& session, config::Duration idle_timeout,
                                             uint64_t& from_client, uint64_t& to_client) {
  net::Stream& up = session.stream();
  ByteBuffer& up_buffer = session.leftover();  // bytes the upstream sent after its 101
  auto self = shared_from_this();
  // Bytes that arrived behind the request head belong to the tunnel.
  st_->in.consume_to(head_end_);
  body_unread_ = false;
  TunnelState state(stream_.get_executor());
  state.idle_timeout = idle_timeout;
  state.last_activity = std::chrono::steady_clock::now();
  // Downstream → upstream runs in its own coroutine; upstream → downstream in this one. This
  // frame outlives both: it waits for the other pump before returning.
  asio::co_spawn(executor_of(stream_.get_executor()),
                 [self, &state, &up, &from_client]() -> awaitable<void> {
                   co_await self->pump(self->stream_, up, self->st_->in, state, from_client);
                   state.up_done = true;
                   state.done.cancel();
                 },
                 asio::detached);
  asio::co_spawn(executor_of(stream_.get_executor()), watch_tunnel(state, up), asio::detached);
  co_await pump(up, stream_, up_buffer, state, to_client);
  state.down_done = true;
  if (!state.up_done) {
    error_code ignored;
    state.done.expires_at(std::chrono::steady_clock::time_point::max());
    co_await state.done.async_wait(asio::redirect_error(use_awaitable, ignored));
  }
  state.idle.cancel();
  if (!state.watcher_done) {
    error_code ignored;
    state.done.expires_at(std::chrono::steady_clock::time_point::max());
    co_await state.done.async_wait(asio::redirect_error(use_awaitable, ignored));
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
                              asio::redirect_error(use_awaitable, ec));
      if (ec) break;
      counter += buffer.size();
      state.last_activity = std::chrono::steady_clock::now();
      buffer.consume_to(buffer.end());
      buffer.compact();
    }
    error_code ec;
    size_t n = co_await from.async_read_some(asio::buffer(buffer.write_ptr(), buffer.writable()),
                                             asio::redirect_error(use_awaitable, ec));
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

awaitable<void> DownstreamConnection::watch_tunnel(TunnelState& state, net::Stream& up) {
  auto self = shared_from_this();
  while (!(state.up_done && state.down_done) && !state.failed) {
    auto deadline = state.last_activity + state.idle_timeout;
    if (std::chrono::steady_clock::now() >= deadline) {
      log::debug("tunnel idle for {}ms: closing", state.idle_timeout.count());
      state.failed = true;
      stream_.cancel();
      up.cancel();
      break;
    }
    state.idle.expires_at(deadline);
    error_code ec;
    co_await state.idle.async_wait(asio::redirect_error(use_awaitable, ec));
    if (ec) break;  // cancelled: the tunnel ended
  }
  state.watcher_done = true;
  if (state.up_done && state.down_done) state.done.cancel();
}

}  // namespace sluice::proxy
