#include "sluice/config/dump.h"

#include <fmt/format.h>

#include "sluice/stats/exposition.h"

namespace sluice::config {

namespace {

std::string str(std::string_view s) { return fmt::format("\"{}\"", stats::escape_json(s)); }
std::string dur(Duration d) { return str(fmt::format("{}ms", d.count())); }

const char* path_kind(Route::PathKind k) {
  switch (k) {
    case Route::PathKind::kPath: return "path";
    case Route::PathKind::kPrefix: return "prefix";
    case Route::PathKind::kRegex: return "regex";
  }
  return "?";
}

std::string str_list(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ",") + str(i);
  return fmt::format("[{}]", out);
}

std::string mutation_json(const HeaderMutation& m) {
  auto pairs = [](const std::vector<std::pair<std::string, std::string>>& list) {
    std::string out;
    for (const auto& [name, value] : list) out += fmt::format("{}{}:{}", out.empty() ? "" : ",", str(name), str(value));
    return out;
  };
  return fmt::format("{{\"set\":{{{}}},\"add\":{{{}}},\"remove\":{}}}", pairs(m.set), pairs(m.add),
                     str_list(m.remove));
}

// `"request_headers":{...},"response_headers":{...}`, to go inside an object.
std::string header_policy_json(const HeaderPolicy& p) {
  return fmt::format("\"request_headers\":{},\"response_headers\":{}", mutation_json(p.request),
                     mutation_json(p.response));
}

const char* action_name(Route::ActionKind k) {
  switch (k) {
    case Route::ActionKind::kCluster: return "cluster";
    case Route::ActionKind::kDirectResponse: return "direct_response";
    case Route::ActionKind::kRedirect: return "redirect";
  }
  return "?";
}

std::string direct_response_json(const std::optional<DirectResponse>& d) {
  if (!d) return "null";
  return fmt::format("{{\"status\":{},\"body\":{},\"content_type\":{}}}", d->status, str(d->body),
                     str(d->content_type));
}

std::string redirect_json(const std::optional<Redirect>& r) {
  if (!r) return "null";
  auto opt = [](const std::optional<std::string>& s) { return s ? str(*s) : std::string("null"); };
  return fmt::format(
      "{{\"scheme\":{},\"host\":{},\"port\":{},\"path\":{},\"prefix_rewrite\":{},\"strip_query\":{},"
      "\"code\":{}}}",
      opt(r->scheme), opt(r->host), r->port ? std::to_string(*r->port) : "null", opt(r->path),
      opt(r->prefix_rewrite), r->strip_query, r->code);
}

// Empty: null (an unset path or name).
std::string str_or_null(const std::string& s) { return s.empty() ? std::string("null") : str(s); }

std::string string_match_json(const std::optional<StringMatch>& m) {
  if (!m) return "null";
  const char* kind = "exact";
  switch (m->kind) {
    case StringMatch::Kind::kExact: kind = "exact"; break;
    case StringMatch::Kind::kPrefix: kind = "prefix"; break;
    case StringMatch::Kind::kSuffix: kind = "suffix"; break;
    case StringMatch::Kind::kRegex: kind = "regex"; break;
  }
  return fmt::format("{{\"{}\":{}}}", kind, str(m->value));
}

std::string client_cert_json(const std::optional<ClientCertMatch>& c) {
  if (!c) return "null";
  return fmt::format("{{\"present\":{},\"subject\":{},\"uri_san\":{},\"dns_san\":{}}}",
                     c->present ? (*c->present ? "true" : "false") : "null", string_match_json(c->subject),
                     string_match_json(c->uri_san), string_match_json(c->dns_san));
}

std::string route_json(const Route& r) {
  std::string headers;
  for (const auto& h : r.headers) {
    if (!headers.empty()) headers += ",";
    switch (h.kind) {
      case HeaderMatch::Kind::kExact: headers += fmt::format("{{\"name\":{},\"exact\":{}}}", str(h.name), str(h.value)); break;
      case HeaderMatch::Kind::kRegex: headers += fmt::format("{{\"name\":{},\"regex\":{}}}", str(h.name), str(h.value)); break;
      case HeaderMatch::Kind::kPresent: headers += fmt::format("{{\"name\":{},\"present\":{}}}", str(h.name), h.present); break;
    }
  }
  std::string query;
  for (const auto& q : r.query) {
    if (!query.empty()) query += ",";
    if (q.kind == QueryMatch::Kind::kExact) query += fmt::format("{{\"name\":{},\"exact\":{}}}", str(q.name), str(q.value));
    else query += fmt::format("{{\"name\":{},\"present\":{}}}", str(q.name), q.present);
  }
  return fmt::format(
      "{{\"name\":{},\"match\":{{\"{}\":{},\"headers\":[{}],\"query\":[{}],\"client_cert\":{}}},\"action\":\"{}\","
      "\"cluster\":{},\"direct_response\":{},\"redirect\":{},\"timeout\":{},\"prefix_rewrite\":{},"
      "\"host_rewrite\":{},{},\"upgrades\":{},\"upgrade_idle_timeout\":{},\"grpc_timeout_header\":{}}}",
      str(r.name), path_kind(r.path_kind), str(r.path), headers, query, client_cert_json(r.client_cert),
      action_name(r.action),
      r.action == Route::ActionKind::kCluster ? str(r.cluster) : "null", direct_response_json(r.direct_response),
      redirect_json(r.redirect), dur(r.timeout), r.prefix_rewrite ? str(*r.prefix_rewrite) : "null",
      r.host_rewrite ? str(*r.host_rewrite) : "null", header_policy_json(r.header_policy),
      r.upgrades ? str_list(*r.upgrades) : "null", dur(r.upgrade_idle_timeout), r.grpc_timeout_header);
}

std::string access_log_json(const Listener& l) {
  if (!l.access_log) return "null";
  return fmt::format("{{\"path\":{},\"format\":{}}}", str(l.access_log->path),
                     str(l.access_log->format == AccessLog::Format::kJson ? "json" : "text"));
}

const char* forward_client_cert_name(ForwardClientCert f) {
  switch (f) {
    case ForwardClientCert::kSanitize: return "sanitize";
    case ForwardClientCert::kForward: return "forward";
    case ForwardClientCert::kAppend: return "append";
    case ForwardClientCert::kSanitizeSet: return "sanitize_set";
  }
  return "?";
}

// File paths only: the dump never shows what a certificate or key file holds.
std::string listener_tls_json(const std::optional<ListenerTls>& t) {
  if (!t) return "null";
  std::string certs;
  for (const auto& c : t->certificates) {
    certs += fmt::format("{}{{\"cert\":{},\"key\":{}}}", certs.empty() ? "" : ",", str(c.cert), str(c.key));
  }
  std::string client = "null";
  if (const auto& c = t->client_certificate) {
    client = fmt::format("{{\"mode\":\"{}\",\"ca\":{},\"crl\":{}}}",
                         c->mode == ClientCertificate::Mode::kRequired ? "required" : "optional", str(c->ca),
                         str_or_null(c->crl));
  }
  return fmt::format(
      "{{\"certificates\":[{}],\"min_version\":\"{}\",\"alpn\":{},\"client_certificate\":{},"
      "\"forward_client_cert\":\"{}\"}}",
      certs, t->min_version == TlsVersion::kTls13 ? "1.3" : "1.2", str_list(t->alpn), client,
      forward_client_cert_name(t->forward_client_cert));
}

std::string cluster_tls_json(const std::optional<ClusterTls>& t) {
  if (!t) return "null";
  return fmt::format("{{\"sni\":{},\"ca\":{},\"verify\":{},\"cert\":{},\"key\":{}}}", str_or_null(t->sni),
                     str_or_null(t->ca), t->verify, str_or_null(t->cert), str_or_null(t->key));
}

const char* lb_name(Cluster::LbPolicy lb) {
  switch (lb) {
    case Cluster::LbPolicy::kRoundRobin: return "round_robin";
    case Cluster::LbPolicy::kLeastRequest: return "least_request";
    case Cluster::LbPolicy::kRandom: return "random";
    case Cluster::LbPolicy::kMaglev: return "maglev";
  }
  return "?";
}

std::string hash_on_json(const HashOn& h) {
  switch (h.kind) {
    case HashOn::Kind::kNone: return "null";
    case HashOn::Kind::kHeader: return fmt::format("{{\"header\":{}}}", str(h.name));
    case HashOn::Kind::kCookie: return fmt::format("{{\"cookie\":{}}}", str(h.name));
    case HashOn::Kind::kSourceIp: return "{\"source_ip\":true}";
    case HashOn::Kind::kPath: return "{\"path\":true}";
  }
  return "null";
}

std::string health_check_json(const std::optional<HealthCheck>& h) {
  if (!h) return "null";
  std::string statuses;
  for (auto [lo, hi] : h->expected_statuses) {
    statuses += (statuses.empty() ? "" : ",") +
                (lo == hi ? str(std::to_string(lo)) : str(fmt::format("{}-{}", lo, hi)));
  }
  return fmt::format(
      "{{\"path\":{},\"interval\":{},\"timeout\":{},\"healthy_threshold\":{},"
      "\"unhealthy_threshold\":{},\"expected_statuses\":[{}],\"host\":{},\"grpc\":{}}}",
      str(h->path), dur(h->interval), dur(h->timeout), h->healthy_threshold, h->unhealthy_threshold,
      statuses, h->host.empty() ? "null" : str(h->host),
      h->grpc ? fmt::format("{{\"service\":{}}}", str(h->grpc_service)) : "null");
}

}  // namespace

std::string to_json(const Config& c) {
  std::string listeners;
  for (const auto& l : c.listeners) {
    std::string vhosts;
    for (const auto& vh : l.virtual_hosts) {
      std::string routes;
      for (const auto& r : vh.routes) routes += (routes.empty() ? "" : ",") + route_json(r);
      vhosts += fmt::format("{}{{\"name\":{},\"domains\":{},{},\"upgrades\":{},\"routes\":[{}]}}",
                            vhosts.empty() ? "" : ",", str(vh.name), str_list(vh.domains),
                            header_policy_json(vh.header_policy), str_list(vh.upgrades), routes);
    }
    listeners += fmt::format(
        "{}{{\"name\":{},\"address\":{},\"max_request_headers_size\":{},\"max_request_headers_count\":{},"
        "\"max_request_body_size\":{},\"request_headers_timeout\":{},\"idle_timeout\":{},"
        "\"request_body_timeout\":{},\"request_body_total_timeout\":{},\"max_connections\":{},"
        "\"access_log\":{},\"tls\":{},\"tls_handshake_timeout\":{},\"http2\":{},{},\"virtual_hosts\":[{}]}}",
        listeners.empty() ? "" : ",", str(l.name), str(l.address.to_string()), l.max_request_headers_bytes,
        l.max_request_headers_count, l.max_request_body_bytes, dur(l.request_headers_timeout),
        dur(l.idle_timeout), dur(l.request_body_timeout), dur(l.request_body_total_timeout), l.max_connections,
        access_log_json(l), listener_tls_json(l.tls), dur(l.tls_handshake_timeout),
        fmt::format("{{\"prior_knowledge\":{},\"max_concurrent_streams\":{},\"initial_stream_window\":{},"
                    "\"initial_connection_window\":{},\"max_header_list_size\":{},\"max_control_frames\":{},"
                    "\"control_frames_per_second\":{},\"max_empty_data_frames\":{},"
                    "\"empty_data_frames_per_second\":{},\"max_premature_resets\":{},"
                    "\"max_oversized_header_blocks\":{}}}",
                    l.http2.prior_knowledge, l.http2.max_concurrent_streams, l.http2.initial_stream_window,
                    l.http2.initial_connection_window, l.http2.max_header_list_size, l.http2.max_control_frames,
                    l.http2.control_frames_per_second, l.http2.max_empty_data_frames,
                    l.http2.empty_data_frames_per_second, l.http2.max_premature_resets,
                    l.http2.max_oversized_header_blocks),
        header_policy_json(l.header_policy), vhosts);
  }
  std::string clusters;
  for (const auto& cl : c.clusters) {
    std::string endpoints;
    for (const auto& e : cl.endpoints) {
      endpoints += fmt::format("{}{{\"address\":{},\"weight\":{}}}", endpoints.empty() ? "" : ",",
                               str(e.to_string()), e.weight);
    }
    clusters += fmt::format(
        "{}{{\"name\":{},\"lb\":\"{}\",\"hash_on\":{},\"maglev_table_size\":{},"
        "\"connect_timeout\":{},\"idle_timeout\":{},\"max_idle_connections\":{},"
        "\"dns_refresh\":{},\"health_check\":{},\"panic_threshold\":{},"
        "\"circuit_breakers\":{{\"max_connections\":{},\"max_pending_requests\":{}}},\"tls\":{},"
        "\"protocol\":\"{}\",\"http2\":{},\"endpoints\":[{}]}}",
        clusters.empty() ? "" : ",", str(cl.name), lb_name(cl.lb), hash_on_json(cl.hash_on),
        cl.maglev_table_size, dur(cl.connect_timeout), dur(cl.idle_timeout), cl.max_idle_connections,
        dur(cl.dns_refresh), health_check_json(cl.health_check), cl.panic_threshold,
        cl.circuit_breakers.max_connections, cl.circuit_breakers.max_pending_requests, cluster_tls_json(cl.tls),
        cl.protocol == Cluster::Protocol::kHttp2 ? "http2" : "http1",
        fmt::format("{{\"max_concurrent_streams\":{},\"ping_interval\":{},\"ping_timeout\":{},"
                    "\"initial_stream_window\":{},\"initial_connection_window\":{}}}",
                    cl.http2.max_concurrent_streams, dur(cl.http2.ping_interval), dur(cl.http2.ping_timeout),
                    cl.http2.initial_stream_window, cl.http2.initial_connection_window),
        endpoints);
  }
  return fmt::format(
      "{{\"source_path\":{},\"admin\":{{\"address\":{}}},\"workers\":{},\"drain_timeout\":{},"
      "\"listeners\":[{}],\"clusters\":[{}]}}\n",
      str(c.source_path), str(c.admin.address.to_string()),
      c.workers == 0 ? std::string("\"auto\"") : std::to_string(c.workers), dur(c.drain_timeout), listeners,
      clusters);
}

}  // namespace sluice::config
