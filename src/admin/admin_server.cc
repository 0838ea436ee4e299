#include "sluice/admin/admin_server.h"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "sluice/common/accept_backoff.h"
#include "sluice/common/log.h"
#include "sluice/config/dump.h"
#include "sluice/stats/exposition.h"

namespace sluice::admin {

namespace beast = boost::beast;
namespace http = boost::beast::http;

namespace {

constexpr const char* kEndpointList =
    "admin endpoints:\n"
    "  GET  /stats/prometheus    metrics in the Prometheus text format\n"
    "  GET  /stats               the same numbers as text (?format=json for JSON)\n"
    "  GET  /ready               200 when serving, 503 before start, while draining or after /healthcheck/fail\n"
    "  GET  /server_info         version, uptime, workers, config version and hash, last reload\n"
    "  GET  /config_dump         the effective configuration as JSON\n"
    "  GET  /clusters            every endpoint with its state and activity (?format=json)\n"
    "  GET  /certs               every loaded TLS certificate: where used, serial, expiry\n"
    "  POST /healthcheck/fail    make /ready answer 503 (drain this instance)\n"
    "  POST /healthcheck/ok      undo /healthcheck/fail\n";

std::string rfc3339(std::chrono::system_clock::time_point t) {
  if (t.time_since_epoch().count() == 0) return "";
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count() % 1000;
  return fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:03}Z", fmt::gmtime(std::chrono::system_clock::to_time_t(t)), ms);
}

std::string json(std::string_view s) { return fmt::format("\"{}\"", stats::escape_json(s)); }

// Every certificate of the snapshot's TLS material with where it is used: `f(cluster, owner,
// info)`, listeners' certificates first (cluster false), then clusters' client certificates.
template <typename F>
void for_each_certificate(const server::Snapshot& snapshot, F&& f) {
  if (!snapshot.tls) return;
  const auto& config = snapshot.config();
  const auto& tls = *snapshot.tls;
  for (size_t i = 0; i < tls.listeners.size() && i < config.listeners.size(); ++i) {
    if (!tls.listeners[i]) continue;
    for (const auto& info : tls.listeners[i]->certificates()) {
      f(false, config.listeners[i].name, info);
    }
  }
  for (size_t i = 0; i < tls.clusters.size() && i < config.clusters.size(); ++i) {
    if (const auto* info = tls.clusters[i] ? tls.clusters[i]->client_certificate() : nullptr) {
      f(true, config.clusters[i].name, *info);
    }
  }
}

std::string certs_json(const server::Snapshot& snapshot) {
  const auto now = std::chrono::system_clock::now();
  const int64_t now_s =
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  auto time = [](int64_t unix_seconds) {
    return rfc3339(std::chrono::system_clock::from_time_t(unix_seconds));
  };
  std::string out = "{\"certificates\":[";
  bool first = true;
  for_each_certificate(
      snapshot, [&](bool cluster, const std::string& owner, const net::CertificateInfo& c) {
        std::string names;
        for (const auto& n : c.names) {
          if (!names.empty()) names += ',';
          names += json(n);
        }
        // Whole days, rounded down; negative once expired.
        int64_t left = c.not_after - now_s;
        int64_t days_left = left >= 0 ? left / 86400 : -((-left + 86399) / 86400);
        fmt::format_to(std::back_inserter(out),
                       "{}{{\"{}\":{},\"certificate\":{},\"key\":{},\"names\":[{}],\"subject\":{},"
                       "\"issuer\":{},\"serial\":{},\"not_before\":{},\"not_before_unix\":{},"
                       "\"not_after\":{},\"not_after_unix\":{},\"days_left\":{},\"key_type\":{}}}",
                       first ? "" : ",", cluster ? "cluster" : "listener", json(owner),
                       json(c.cert_path), json(c.key_path), names, json(c.subject), json(c.issuer),
                       json(c.serial), json(time(c.not_before)), c.not_before,
                       json(time(c.not_after)), c.not_after, days_left, json(c.key_type));
        first = false;
      });
  out += "]}\n";
  return out;
}

}  // namespace

AdminServer::AdminServer(asio::io_context& context, server::Server& server)
    : context_(context), server_(server), acceptor_(context) {}

Result<std::unique_ptr<AdminServer>> AdminServer::create(asio::io_context& context,
                                                          server::Server& server,
                                                          const config::Address& address) {
  std::unique_ptr<AdminServer> admin(new AdminServer(context, server));
  tcp::endpoint endpoint(asio::ip::make_address(address.ip), address.port);
  error_code ec;
  admin->acceptor_.open(endpoint.protocol(), ec);
  if (!ec) admin->acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) admin->acceptor_.bind(endpoint, ec);
  if (!ec) admin->acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Error{fmt::format("admin: cannot listen on {}: {}", address.to_string(), ec.message())};
  }
  admin->port_ = admin->acceptor_.local_endpoint().port();
  return admin;
}

void AdminServer::start() { asio::co_spawn(context_, accept_loop(), asio::detached); }

awaitable<void> AdminServer::accept_loop() {
  AcceptBackoff backoff("admin");
  bool at_limit = false;  // log once per stretch of refused connections
  while (acceptor_.is_open()) {
    error_code ec;
    tcp::socket socket = co_await acceptor_.async_accept(asio::redirect_error(use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) break;
      // Out of descriptors: retrying at once spun a core at 100% until some came back.
      co_await backoff.after_failure(ec);
      continue;
    }
    backoff.after_success();
    if (*connections_ >= kMaxAdminConnections) {
      if (!at_limit) {
        log::warn("admin: {} connections open (the limit); closing new ones until one ends",
                  kMaxAdminConnections);
      }
      at_limit = true;
      error_code ignored;
      socket.close(ignored);
      continue;
    }
    at_limit = false;
    ++*connections_;  // here, not when the coroutine starts running: the count is exact
    asio::co_spawn(context_, serve_connection(std::move(socket)), asio::detached);
  }
}

awaitable<void> AdminServer::serve_connection(tcp::socket socket) {
  struct Release {
    std::shared_ptr<size_t> count;
    ~Release() { --*count; }
  } release{connections_};
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  while (true) {
    // A body is accepted (and ignored) so `curl -X POST -d …` gets an answer too.
    http::request_parser<http::string_body> parser;
    parser.header_limit(16 * 1024);
    parser.body_limit(64 * 1024);
    error_code ec;
    stream.expires_after(std::chrono::seconds(30));
    co_await http::async_read(stream, buffer, parser, asio::redirect_error(use_awaitable, ec));
    if (ec) break;
    auto& req = parser.get();
    Response r = handle(std::string_view(req.method_string().data(), req.method_string().size()),
                        std::string_view(req.target().data(), req.target().size()));
    http::response<http::string_body> res{static_cast<http::status>(r.status), req.version()};
    res.set(http::field::content_type, r.content_type);
    res.set(http::field::cache_control, "no-store");
    res.keep_alive(req.keep_alive());
    if (req.method() == http::verb::head) {
      res.content_length(r.body.size());  // the length of the body a GET would get, and no body
    } else {
      res.body() = std::move(r.body);
      res.prepare_payload();
    }
    co_await http::async_write(stream, res, asio::redirect_error(use_awaitable, ec));
    if (ec || !req.keep_alive()) break;
  }
  error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
}

AdminServer::Response AdminServer::handle(std::string_view method, std::string_view target) {
  std::string_view path = target.substr(0, target.find('?'));
  std::string_view query = target.size() > path.size() ? target.substr(path.size() + 1) : std::string_view{};
  bool want_json = query.find("format=json") != std::string_view::npos;
  auto method_is = [&](std::string_view m) { return method == m; };
  auto not_allowed = [&](std::string_view allowed) {
    return Response{405, "text/plain; charset=utf-8", fmt::format("{} {}: use {}\n", method, path, allowed)};
  };

  const auto& snapshot = server_.snapshot();
  const auto& reload = server_.reload_state();
  auto server_values = [&] {
    stats::ServerValues v;
    v.uptime_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - server_.start_time()).count();
    v.workers = server_.worker_count();
    v.reloads_success = reload.success;
    v.reloads_failed = reload.failed;
    v.config_version = reload.version;
    v.config_sha256 = reload.sha256;
    v.resident_memory_bytes = stats::read_resident_memory_bytes();
    v.open_fds = stats::count_open_fds();
    v.access_log_dropped_lines = server_.access_log_dropped_lines();
    for (const auto& c : snapshot->clusters) v.cluster_endpoints[c->name()] = {c->healthy_count, c->endpoints.size() - c->healthy_count};
    for (const auto& l : snapshot->config().listeners) {
      if (l.tls) v.tls_listeners.push_back(l.name);
      if (l.serves_http2()) v.http2_listeners.push_back(l.name);
    }
    for_each_certificate(
        *snapshot, [&](bool cluster, const std::string& owner, const net::CertificateInfo& c) {
          v.certificates.push_back({cluster, owner, c.cert_path, c.not_after});
        });
    v.tls_reload_failures = server_.tls_reload_failures();
    return v;
  };
  auto merged = [&] {
    auto shards = server_.stats_shards();
    return stats::MergedStats::collect(shards);
  };

  if (path == "/stats/prometheus") {
    if (!method_is("GET") && !method_is("HEAD")) return not_allowed("GET");
    return {200, "text/plain; version=0.0.4; charset=utf-8", stats::render_prometheus(merged(), server_values())};
  }
  if (path == "/stats") {
    if (!method_is("GET") && !method_is("HEAD")) return not_allowed("GET");
    if (want_json) return {200, "application/json", stats::render_json(merged(), server_values())};
    return {200, "text/plain; charset=utf-8", stats::render_text(merged(), server_values())};
  }
  if (path == "/ready") {
    if (!method_is("GET") && !method_is("HEAD")) return not_allowed("GET");
    if (!server_.started()) return {503, "text/plain; charset=utf-8", "starting\n"};
    if (server_.draining()) return {503, "text/plain; charset=utf-8", "draining\n"};
    if (health_check_failed_) return {503, "text/plain; charset=utf-8", "failing (POST /healthcheck/fail)\n"};
    return {200, "text/plain; charset=utf-8", "ready\n"};
  }
  if (path == "/server_info") {
    if (!method_is("GET") && !method_is("HEAD")) return not_allowed("GET");
    auto v = server_values();
    std::string state = !server_.started() ? "starting" : server_.draining() ? "draining"
                        : health_check_failed_ ? "failing" : "serving";
    return {200, "application/json",
            fmt::format("{{\"version\":{},\"state\":{},\"uptime_seconds\":{:.3f},\"workers\":{},"
                        "\"config\":{{\"path\":{},\"version\":{},\"sha256\":{},\"applied_at\":{}}},"
                        "\"last_reload\":{{\"time\":{},\"result\":{},\"error\":{}}},"
                        "\"reloads\":{{\"success\":{},\"failed\":{}}}}}\n",
                        json(SLUICE_VERSION), json(state), v.uptime_seconds, v.workers, json(reload.path),
                        reload.version, json(reload.sha256), json(rfc3339(reload.applied_at)),
                        reload.last_attempt_at.time_since_epoch().count() ? json(rfc3339(reload.last_attempt_at)) : "null",
                        reload.last_attempt_at.time_since_epoch().count() ? json(reload.last_ok ? "success" : "failed") : "null",
                        reload.last_error.empty() ? "null" : json(reload.last_error), reload.success,
                        reload.failed)};
  }
  if (path == "/config_dump") {
    if (!method_is("GET") && !method_is("HEAD")) return not_allowed("GET");
    return {200, "application/json", config::to_json(snapshot->config())};
  }
  if (path == "/clusters") {
    if (!method_is("GET") && !method_is("HEAD")) return not_allowed("GET");
    auto m = merged();
    std::string text, js;
    for (const auto& c : snapshot->clusters) {
      for (const auto& e : c->endpoints) {
        stats::EndpointValues ev;
        if (auto it = m.endpoints.find({c->name(), e.key}); it != m.endpoints.end()) ev = it->second;
        const char* state = e.healthy ? "healthy" : "unhealthy";
        const std::string& cn = c->name();
        text += fmt::format("{}::{}::state::{}\n{}::{}::weight::{}\n{}::{}::hostname::{}\n"
                            "{}::{}::connections_active::{}\n{}::{}::requests_active::{}\n"
                            "{}::{}::requests_total::{}\n{}::{}::connect_failures::{}\n",
                            cn, e.key, state, cn, e.key, e.weight, cn, e.key, e.hostname.empty() ? "-" : e.hostname,
                            cn, e.key, ev.connections_active, cn, e.key, ev.requests_active, cn, e.key,
                            ev.requests_total, cn, e.key, ev.connect_failures);
        js += fmt::format("{}{{\"cluster\":{},\"endpoint\":{},\"hostname\":{},\"state\":\"{}\",\"weight\":{},"
                          "\"connections_active\":{},\"requests_active\":{},\"requests_total\":{},"
                          "\"connect_failures\":{},\"panic\":{}}}",
                          js.empty() ? "" : ",", json(cn), json(e.key),
                          e.hostname.empty() ? "null" : json(e.hostname), state, e.weight, ev.connections_active,
                          ev.requests_active, ev.requests_total, ev.connect_failures, c->panic);
      }
    }
    if (want_json) return {200, "application/json", fmt::format("{{\"endpoints\":[{}]}}\n", js)};
    return {200, "text/plain; charset=utf-8", text};
  }
  if (path == "/certs") {
    if (!method_is("GET") && !method_is("HEAD")) return not_allowed("GET");
    return {200, "application/json", certs_json(*snapshot)};
  }
  if (path == "/healthcheck/fail" || path == "/healthcheck/ok") {
    if (!method_is("POST")) return not_allowed("POST");
    health_check_failed_ = path == "/healthcheck/fail";
    log::info("admin: health check {}", health_check_failed_ ? "failing on request (/ready answers 503)" : "restored");
    return {200, "text/plain; charset=utf-8", health_check_failed_ ? "failing\n" : "ok\n"};
  }
  return {404, "text/plain; charset=utf-8", fmt::format("no admin endpoint at {}\n\n{}", path, kEndpointList)};
}

}  // namespace sluice::admin
