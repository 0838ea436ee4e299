// The exchange runner: route → the route's steps → router step or local reply, and the one
// place an exchange is counted and logged. Protocol-neutral: the codec behind `down_` frames
// everything.
#include "sluice/proxy/exchange_runner.h"

#include <fmt/core.h>

#include "sluice/accesslog/format.h"
#include "sluice/common/log.h"

namespace sluice::proxy {

namespace {

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

// Turns a local reply to a gRPC request into a "trailers-only" gRPC response: HTTP 200, no
// body, the status and message in the head (PROTOCOL-HTTP2.md), so a gRPC client reports the
// code instead of a protocol error. The reply text, without its newline, is the message.
void shape_for_grpc(LocalReply& reply) {
  const http::GrpcStatus code = http::grpc_status_for(reply.reason, reply.status);
  std::string_view text = reply.body;
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
  std::string message;
  http::append_grpc_message(message, text);
  reply.status = 200;
  reply.headers.set("content-type", "application/grpc");
  reply.headers.set("grpc-status", std::to_string(static_cast<int>(code)));
  reply.headers.set("grpc-message", std::move(message));
  reply.body.clear();
}

}  // namespace

ExchangeRunner::ExchangeRunner(server::Worker& worker, const asio::any_io_executor& ex)
    : worker_(worker), executor_(ex) {}

void ExchangeRunner::open(std::shared_ptr<server::WorkerView> view, size_t listener_index,
                          std::chrono::steady_clock::time_point start,
                          std::string_view client_address, const net::TlsInfo* tls) {
  record_ = ExchangeRecord{};
  record_.open = true;
  record_.start = start;
  record_.listener_index = listener_index;
  record_.route_stats = view->listeners[listener_index].unrouted;
  const auto& spec = view->snapshot->listeners()[listener_index].spec;
  record_.log = spec.access_log.has_value();
  if (record_.log) {
    auto now = std::chrono::steady_clock::now();
    record_.start_wall = std::chrono::system_clock::now() -
                         std::chrono::duration_cast<std::chrono::system_clock::duration>(now - start);
  }
  record_.view = std::move(view);
  idle_timeout_ = spec.idle_timeout;
  method_and_path_.clear();
  exchange_.clear();
  exchange_.client_address = client_address;
  exchange_.tls = tls;
  if (tls) exchange_.request.scheme = "https";
  response_deadline_ = {};
}

awaitable<bool> ExchangeRunner::run(const server::ListenerInfo& listener) {
  const server::WorkerView& view = *record_.view;
  RequestHead& head = exchange_.request;
  http::RequestView req;
  req.method = head.method;
  req.authority = head.authority;
  req.path = head.path;
  req.query = head.query;
  req.headers = head.fields.items();
  req.tls = exchange_.tls;
  // gRPC is always a POST (PROTOCOL-HTTP2.md): any other request pays this one comparison.
  if (head.method == "POST") detect_grpc();

  const router::VirtualHost* vhost = listener.routes.find_virtual_host(req.authority);
  if (!vhost) {
    co_return co_await reply(404, LocalReason::kNoRoute,
                             "no virtual host matches the request's Host\n", false);
  }
  const router::Route* route = vhost->match(req);
  if (!route) {
    co_return co_await reply(
        404, LocalReason::kNoRoute,
        fmt::format("no route matches the request in virtual host '{}'\n", vhost->name()), false);
  }
  record_.route_name = route->name();
  record_.route_stats = view.route_stats(record_.listener_index, vhost, route);
  record_.route_stats->active.add(1);
  exchange_.route = route;
  exchange_.step_states = &view.step_states;
  // An upgrade offer is tunnelled only where the route allows it; anywhere else it is served
  // as plain HTTP/1.1 and the Upgrade/Connection fields are dropped as hop-by-hop, like nginx.
  // This is also how an h2c offer is declined.
  if (!route->action().websocket) exchange_.facts.upgrade = {};

  // The request steps, inline: a nested coroutine per request would cost a frame allocation.
  filters::Status st = filters::Status::kContinue;
  for (const auto& step : route->chain()) {
    st = step->on_request_head(exchange_);
    if (st == filters::Status::kPause) st = co_await step->resume(exchange_);
    if (st == filters::Status::kLocalReply) break;
  }
  bool keep_open;
  if (st == filters::Status::kLocalReply) {
    keep_open = co_await send_local_reply(false);
  } else if (route->action().kind != config::Route::ActionKind::kCluster) {
    // Not reachable: a direct_response or redirect step always answers. Never index clusters
    // with a route that has none.
    exchange_.route = nullptr;
    keep_open = co_await reply(500, LocalReason::kNoRoute, "route has no cluster\n", true);
  } else {
    keep_open = co_await forward(*route);
  }
  record_.route_stats->active.add(-1);
  co_return keep_open;
}

awaitable<bool> ExchangeRunner::reply(int status, LocalReason reason, std::string body, bool close) {
  // Sluice's own error replies do not go through the route's response steps: a step's
  // configuration describes responses of the route, not failures to produce one.
  exchange_.route = nullptr;
  exchange_.reply_locally(status, reason, std::move(body));
  co_return co_await send_local_reply(close);
}

void ExchangeRunner::detect_grpc() {
  std::string_view type, timeout;
  for (const auto& f : exchange_.request.fields.items()) {
    // "content-type" and "grpc-timeout" are both 12 bytes: one length test passes the others.
    if (f.name.size() != 12) continue;
    if (type.empty() && http::iequals(f.name, "content-type")) {
      type = f.value;
    } else if (timeout.empty() && http::iequals(f.name, "grpc-timeout")) {
      timeout = f.value;
    }
  }
  if (type.empty() || !http::is_grpc_content_type(type)) return;
  exchange_.facts.grpc = true;
  // An invalid grpc-timeout is ignored, as gRPC servers do.
  if (!timeout.empty()) {
    exchange_.facts.grpc_timeout = http::parse_grpc_timeout(timeout).value_or(config::Duration(0));
  }
}

void ExchangeRunner::note_grpc_status(const http::FieldList& fields) {
  if (auto v = fields.get("grpc-status")) record_.grpc_status = http::parse_grpc_status(*v);
}

awaitable<bool> ExchangeRunner::send_local_reply(bool close) {
  LocalReply& reply = *exchange_.local_reply;
  // A gRPC client gets a gRPC answer. A route's direct_response or redirect is the operator's
  // own reply and is sent as configured (it may carry grpc-status itself).
  if (exchange_.facts.grpc && reply.reason != LocalReason::kDirectResponse &&
      reply.reason != LocalReason::kRedirect) {
    shape_for_grpc(reply);
  }
  // The route's response steps (header mutation) see a local answer like an upstream one.
  exchange_.response.status = reply.status;
  exchange_.response.reason = {};
  exchange_.response.fields = std::move(reply.headers);
  run_response_steps();
  if (exchange_.facts.grpc) note_grpc_status(exchange_.response.fields);
  record_.status = reply.status;
  record_.local = reply.reason;
  record_.sent_bytes = exchange_.facts.head_request ? 0 : reply.body.size();  // what the client got
  if (!record_.flags) record_.flags = flag_for(reply.reason);
  co_return co_await down_->send_local_reply(close);
}

void ExchangeRunner::run_response_steps() {
  if (!exchange_.route) return;
  // Response steps run in reverse chain order (the innermost step sees the response first).
  const auto& chain = exchange_.route->chain();
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) (*it)->on_response_head(exchange_);
}

bool ExchangeRunner::chain_wants_body() const {
  return exchange_.route && exchange_.route->chain_wants_body();
}

config::Duration ExchangeRunner::response_write_timeout() const {
  if (response_deadline_ == std::chrono::steady_clock::time_point{}) return idle_timeout_;
  auto left = std::chrono::duration_cast<config::Duration>(response_deadline_ -
                                                           std::chrono::steady_clock::now());
  // idle_timeout 0 means "none": then the route deadline alone bounds the write. At least 1 ms:
  // a zero timeout would mean "none" to Deadline.
  const config::Duration bound = idle_timeout_.count() > 0 ? std::min(idle_timeout_, left) : left;
  return std::max(config::Duration(1), bound);
}

void ExchangeRunner::write_access_log(std::chrono::steady_clock::time_point now) {
  using namespace std::chrono;
  const auto& spec = *record_.view->snapshot->listeners()[record_.listener_index].spec.access_log;
  accesslog::Entry e;
  e.start = record_.start_wall;
  e.request_id = exchange_.request_id;
  e.client_address = exchange_.client_address;
  e.method = record_.method;
  e.authority = record_.authority;
  e.path = record_.target;
  e.protocol = exchange_.facts.protocol;
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
  e.tls = exchange_.tls;
  if (record_.grpc_status) e.grpc_status = static_cast<int>(*record_.grpc_status);
  std::string& out = worker_.access_log().buffer(spec.path);
  if (spec.format == config::AccessLog::Format::kJson) accesslog::append_json(out, e);
  else accesslog::append_text(out, e);
  worker_.access_log().committed(spec.path);
}

void ExchangeRunner::finish() {
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
  if (exchange_.facts.grpc) {
    // Without a grpc-status, what a gRPC client reports: the HTTP status mapped, or UNKNOWN for
    // a 200 that ended without one (and for a client that went away, 499).
    if (!record_.grpc_status) record_.grpc_status = http::http_to_grpc_status(record_.status);
    rs.grpc[static_cast<size_t>(*record_.grpc_status)].add();
  }
  if (record_.log) write_access_log(now);
  if (log::enabled(log::Level::kDebug)) {
    log::debug("{} {} -> {}{}{} cluster={} endpoint={} {:.1f}ms", exchange_.client_address,
               method_and_path_, record_.status, record_.local ? " local=" : "",
               record_.local ? stats::to_string(*record_.local) : "", record_.cluster,
               record_.endpoint ? std::string_view(record_.endpoint->key) : std::string_view("-"),
               duration<double, std::milli>(now - record_.start).count());
  }
  record_ = ExchangeRecord{};
}

}  // namespace sluice::proxy
