#include "sluice/proxy/downstream_connection.h"

#include <fmt/core.h>

#include "sluice/accesslog/format.h"
#include "sluice/common/log.h"

namespace sluice::proxy {

namespace {

constexpr size_t kInitialBufferSize = 32 * 1024;
constexpr auto kLingerTime = std::chrono::seconds(2);
constexpr size_t kLingerMaxBytes = 4 * 1024 * 1024;

const char* reason_phrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 405: return "Method Not Allowed";
    case 429: return "Too Many Requests";
    case 501: return "Not Implemented";
    case 505: return "HTTP Version Not Supported";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 431: return "Request Header Fields Too Large";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Error";
  }
}

// Access-log flags, after Envoy's response flags where one exists.
const char* flag_for(LocalReason reason) {
  switch (reason) {
    case LocalReason::kNoRoute: return "NR";
    case LocalReason::kNoHealthyUpstream: return "UH";
    case LocalReason::kConnectFailure: return "UF";
    case LocalReason::kUpstreamReset: return "UC";
    case LocalReason::kTimeout: return "UT";
    case LocalReason::kBadRequest: return "DPE";
    case LocalReason::kHeadersTooLarge: return "DPE";
    case LocalReason::kBodyTooLarge: return "RTL";
    case LocalReason::kRequestTimeout: return "DT";
    case LocalReason::kOverflow: return "UO";
    case LocalReason::kNotImplemented: return "DPE";
    case LocalReason::kDirectResponse: return "-";
    case LocalReason::kRedirect: return "-";
    case LocalReason::kCount: break;
  }
  return "-";
}

}  // namespace

DownstreamConnection::DownstreamConnection(server::Worker& worker, std::string listener_name,
                                           tcp::socket socket)
    : worker_(worker),
      listener_name_(std::move(listener_name)),
      stream_(std::move(socket)),
      down_deadline_(stream_.get_executor()),
      up_deadline_(stream_.get_executor()),
      in_(kInitialBufferSize),
      parser_(http::Parser::Kind::kRequest, 100) {
  client_address_ = stream_.peer().address;
  error_code ec;
  stream_.lowest_layer().set_option(tcp::no_delay(true), ec);
  headers_.reserve(32);
  out_.reserve(16);
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
  asio::co_spawn(stream_.get_executor(),
                 [self = shared_from_this()]() -> awaitable<void> { co_await self->run(); },
                 asio::detached);
}

void DownstreamConnection::drain() {
  if (idle_) stream_.cancel();
}

awaitable<void> DownstreamConnection::run() {
  while (!worker_.draining()) {
    std::shared_ptr<server::WorkerView> view = worker_.view();
    const server::ListenerInfo* listener = view ? view->snapshot->find_listener(listener_name_) : nullptr;
    if (!listener) break;
    const config::Listener& spec = listener->spec;
    idle_timeout_ = spec.idle_timeout;
    parser_.set_max_headers(spec.max_request_headers_count);
    body_unread_ = false;
    request_keep_alive_ = true;

    HeadStatus status = co_await read_head(spec);
    if (status == HeadStatus::kClosed) break;
    // The newest snapshot routes this request, also on a long-lived keep-alive connection. If a
    // reload removed this listener meanwhile, the request is still answered, on the snapshot
    // the connection knew (listener_removed() then closes the connection after the response).
    if (auto newest = worker_.view(); newest && newest->snapshot->find_listener(listener_name_)) {
      view = newest;
      listener = view->snapshot->find_listener(listener_name_);
    }
    listener_index_ = static_cast<size_t>(listener - view->snapshot->listeners().data());
    open_exchange(view);
    bool keep_open = false;
    if (status == HeadStatus::kTimeout) {
      co_await local_reply(408, LocalReason::kRequestTimeout, "request headers not received in time\n", true);
    } else if (status == HeadStatus::kBad) {
      co_await local_reply(400, LocalReason::kBadRequest, "malformed request\n", true);
    } else if (status == HeadStatus::kTooLarge) {
      co_await local_reply(431, LocalReason::kHeadersTooLarge, "request headers too large\n", true);
    } else if (status == HeadStatus::kNotImplemented) {
      co_await local_reply(501, LocalReason::kNotImplemented,
                           "transfer codings other than chunked are not supported\n", true);
    } else if (status == HeadStatus::kBadVersion) {
      co_await local_reply(505, LocalReason::kBadRequest, "HTTP version not supported\n", true);
    } else {
      keep_open = co_await serve(*view, *listener);
    }
    finish_exchange();
    if (!keep_open) break;
  }
  co_await close_gracefully();
  // End the watchdogs' pending waits: they hold this connection alive.
  down_deadline_.cancel();
  up_deadline_.cancel();
}

awaitable<DownstreamConnection::HeadStatus> DownstreamConnection::read_head(const config::Listener& spec) {
  in_.compact();
  size_t parse_pos = in_.begin();
  const size_t head_start = parse_pos;
  idle_ = in_.size() == 0;
  // Pipelined bytes already buffered: this request started when they arrived (close enough).
  if (!idle_) head_start_ = std::chrono::steady_clock::now();
  auto self = shared_from_this();
  // A new connection must send its first request within the header timeout, not the idle
  // timeout: silent sockets would otherwise hold connection slots for a minute (nginx: the same).
  const bool keep_alive_wait = idle_ && !first_request_;
  first_request_ = false;
  down_deadline_.arm(stream_, keep_alive_wait ? spec.idle_timeout : spec.request_headers_timeout, self);
  while (true) {
    if (parse_pos < in_.end()) {
      http::Parser::Step step = parser_.execute(in_.data(), parse_pos, in_.end());
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
    if (in_.writable() == 0) {
      // The head must stay contiguous while it is parsed; grow up to the configured limit.
      size_t limit = spec.max_request_headers_bytes + 1024;
      if (in_.capacity() >= limit) {
        down_deadline_.disarm();
        co_return HeadStatus::kTooLarge;
      }
      in_.grow(std::min(limit, in_.capacity() * 2));
    }
    error_code ec;
    size_t n = co_await stream_.async_read_some(asio::buffer(in_.write_ptr(), in_.writable()),
                                                asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      bool timed_out = down_deadline_.expired();
      down_deadline_.disarm();
      idle_ = false;
      // A quiet keep-alive connection that times out, closes or is drained just ends; one that
      // sent part of a head and then stalled is answered 408.
      if (timed_out && in_.size() > 0) co_return HeadStatus::kTimeout;
      co_return HeadStatus::kClosed;
    }
    in_.commit(n);
    if (idle_ || parse_pos == head_start) head_start_ = std::chrono::steady_clock::now();
    if (idle_) {
      // The first byte of a request starts the header timeout (slowloris defence).
      idle_ = false;
      if (keep_alive_wait) down_deadline_.arm(stream_, spec.request_headers_timeout, self);
    }
  }
}

awaitable<bool> DownstreamConnection::write_downstream(config::Duration idle_timeout) {
  error_code ec;
  down_deadline_.arm(stream_, idle_timeout, shared_from_this());
  co_await stream_.async_write(out_, asio::redirect_error(asio::use_awaitable, ec));
  down_deadline_.disarm();
  out_.clear();
  co_return !ec;
}

awaitable<bool> DownstreamConnection::local_reply(int status, LocalReason reason, std::string_view body,
                                                  bool close, std::string_view request_id) {
  exchange_.local_reply.emplace();
  exchange_.local_reply->status = status;
  exchange_.local_reply->reason = reason;
  exchange_.local_reply->body.assign(body);
  if (!request_id.empty()) exchange_.request_id = request_id;
  co_return co_await send_local_reply(nullptr, close);
}

awaitable<bool> DownstreamConnection::send_local_reply(const router::Route* route, bool close) {
  LocalReply& reply = *exchange_.local_reply;
  if (worker_.draining() || !request_keep_alive_ || listener_removed()) close = true;
  // The route's response steps (header mutation) see a local answer like an upstream one.
  exchange_.response.status = reply.status;
  exchange_.response.fields = std::move(reply.headers);
  exchange_.route = route;
  run_response_steps();
  std::string msg = fmt::format("HTTP/1.1 {} {}\r\n", reply.status, reason_phrase(reply.status));
  bool has_type = false;
  for (const auto& f : exchange_.response.fields.items()) {
    if (http::iequals(f.name, "content-length") || http::iequals(f.name, "transfer-encoding") ||
        http::iequals(f.name, "connection")) {
      continue;  // framing is Sluice's
    }
    has_type = has_type || http::iequals(f.name, "content-type");
    fmt::format_to(std::back_inserter(msg), "{}: {}\r\n", f.name, f.value);
  }
  if (!has_type && !reply.body.empty()) fmt::format_to(std::back_inserter(msg), "content-type: {}\r\n", reply.content_type);
  fmt::format_to(std::back_inserter(msg), "content-length: {}\r\n", reply.body.size());
  if (!exchange_.request_id.empty() && !exchange_.response.fields.get("x-request-id")) {
    fmt::format_to(std::back_inserter(msg), "x-request-id: {}\r\n", exchange_.request_id);
  }
  if (close) msg += "connection: close\r\n";
  msg += "\r\n";
  // A reply to HEAD has the head only: its Content-Length says what a GET would have carried
  // (RFC 9110 §9.3.2), and body bytes would desynchronise a keep-alive client.
  if (!is_head_) msg.append(reply.body);
  record_.status = reply.status;
  record_.local = reply.reason;
  record_.sent_bytes = is_head_ ? 0 : reply.body.size();  // what the client received
  if (!record_.flags) record_.flags = flag_for(reply.reason);
  out_.clear();
  out_.emplace_back(msg.data(), msg.size());
  bool ok = co_await write_downstream(idle_timeout_);
  co_return ok && !close;
}

bool DownstreamConnection::listener_removed() const {
  const auto& current = worker_.view();
  if (!current || current == record_.view) return false;
  return current->snapshot->find_listener(listener_name_) == nullptr;
}

config::Duration DownstreamConnection::response_write_timeout() const {
  if (response_deadline_ == std::chrono::steady_clock::time_point{}) return idle_timeout_;
  auto left = std::chrono::duration_cast<config::Duration>(response_deadline_ -
                                                           std::chrono::steady_clock::now());
  // idle_timeout 0 means "none": then the route deadline alone bounds the write. At least 1 ms:
  // a zero timeout would mean "none" to Deadline.
  const config::Duration bound = idle_timeout_.count() > 0 ? std::min(idle_timeout_, left) : left;
  return std::max(config::Duration(1), bound);
}

awaitable<void> DownstreamConnection::close_gracefully() {
  error_code ec;
  if (!stream_.is_open()) co_return;
  if (body_unread_ || in_.size() > 0) {
    stream_.shutdown_send();
    // Lingering close: unread bytes in our receive queue would make close() send a reset that
    // can destroy the response before the client reads it. Read and drop them for a while.
    down_deadline_.arm(stream_, std::chrono::duration_cast<config::Duration>(kLingerTime),
                       shared_from_this());
    size_t dropped = 0;
    while (!ec && dropped < kLingerMaxBytes) {
      in_.consume_to(in_.end());
      in_.compact();
      dropped += co_await stream_.async_read_some(asio::buffer(in_.write_ptr(), in_.writable()),
                                                  asio::redirect_error(asio::use_awaitable, ec));
    }
    down_deadline_.disarm();
  }
  stream_.close();
}

void DownstreamConnection::open_exchange(std::shared_ptr<server::WorkerView> view) {
  record_ = ExchangeRecord{};
  record_.open = true;
  record_.start = head_start_;
  record_.route_stats = view->listeners[listener_index_].unrouted;
  record_.log = view->snapshot->listeners()[listener_index_].spec.access_log.has_value();
  if (record_.log) {
    auto now = std::chrono::steady_clock::now();
    record_.start_wall = std::chrono::system_clock::now() -
                         std::chrono::duration_cast<std::chrono::system_clock::duration>(now - head_start_);
  }
  record_.view = std::move(view);
  if (listener_stats_) listener_stats_->requests_total.add();
  method_and_path_.clear();
  exchange_.clear();
  exchange_.client_address = client_address_;
  is_head_ = false;
  response_deadline_ = {};
}

void DownstreamConnection::write_access_log(std::chrono::steady_clock::time_point now) {
  using namespace std::chrono;
  const auto& spec = *record_.view->snapshot->listeners()[listener_index_].spec.access_log;
  accesslog::Entry e;
  e.start = record_.start_wall;
  e.request_id = record_.request_id;
  e.client_address = client_address_;
  e.method = record_.method;
  e.authority = record_.authority;
  e.path = record_.target;
  e.protocol = record_.protocol;
  e.status = record_.status;
  e.received_bytes = record_.received_bytes;
  e.sent_bytes = record_.sent_bytes;
  e.duration_ms = duration<double, std::milli>(now - record_.start).count();
  if (record_.endpoint) e.upstream_endpoint = record_.endpoint->key;
  if (record_.upstream_end > record_.upstream_start) {
    e.upstream_ms = duration<double, std::milli>(record_.upstream_end - record_.upstream_start).count();
  }
  e.route = record_.route_name;
  e.cluster = record_.cluster;
  e.flags = record_.flags ? record_.flags : "-";
  std::string& out = worker_.access_log().buffer(spec.path);
  if (spec.format == config::AccessLog::Format::kJson) accesslog::append_json(out, e);
  else accesslog::append_text(out, e);
  worker_.access_log().committed(spec.path);
}

void DownstreamConnection::finish_exchange() {
  if (!record_.open) return;
  using namespace std::chrono;
  auto now = steady_clock::now();
  // The client went away before a response was sent: counted as 499, like nginx.
  if (record_.status == 0) {
    record_.status = 499;
    if (!record_.flags) record_.flags = "DC";
  }
  stats::RouteStats& rs = *record_.route_stats;
  rs.requests[stats::code_class_index(record_.status)].add();
  rs.duration.observe_seconds(duration<double>(now - record_.start).count());
  if (record_.upstream_end > record_.upstream_start) {
    rs.upstream_duration.observe_seconds(
        duration<double>(record_.upstream_end - record_.upstream_start).count());
  }
  rs.received_bytes.add(record_.received_bytes);
  rs.sent_bytes.add(record_.sent_bytes);
  if (record_.local) rs.local_replies[static_cast<size_t>(*record_.local)].add();
  if (record_.log) write_access_log(now);
  if (log::enabled(log::Level::kDebug)) {
    log::debug("{} {} -> {}{}{} cluster={} endpoint={} {:.1f}ms", client_address_, method_and_path_,
               record_.status, record_.local ? " local=" : "",
               record_.local ? stats::to_string(*record_.local) : "", record_.cluster,
               record_.endpoint ? std::string_view(record_.endpoint->key) : std::string_view("-"),
               duration<double, std::milli>(now - record_.start).count());
  }
  record_ = ExchangeRecord{};
}

}  // namespace sluice::proxy
