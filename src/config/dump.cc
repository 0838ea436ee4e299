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
      "{{\"name\":{},\"match\":{{\"{}\":{},\"headers\":[{}],\"query\":[{}]}},\"cluster\":{},"
      "\"timeout\":{},\"prefix_rewrite\":{},\"host_rewrite\":{}}}",
      str(r.name), path_kind(r.path_kind), str(r.path), headers, query, str(r.cluster), dur(r.timeout),
      r.prefix_rewrite ? str(*r.prefix_rewrite) : "null", r.host_rewrite ? str(*r.host_rewrite) : "null");
}

std::string access_log_json(const Listener& l) {
  if (!l.access_log) return "null";
  return fmt::format("{{\"path\":{},\"format\":{}}}", str(l.access_log->path),
                     str(l.access_log->format == AccessLog::Format::kJson ? "json" : "text"));
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
      "\"unhealthy_threshold\":{},\"expected_statuses\":[{}],\"host\":{}}}",
      str(h->path), dur(h->interval), dur(h->timeout), h->healthy_threshold, h->unhealthy_threshold,
      statuses, h->host.empty() ? "null" : str(h->host));
}

}  // namespace

std::string to_json(const Config& c) {
  std::string listeners;
  for (const auto& l : c.listeners) {
    std::string vhosts;
    for (const auto& vh : l.virtual_hosts) {
      std::string domains, routes;
      for (const auto& d : vh.domains) domains += (domains.empty() ? "" : ",") + str(d);
      for (const auto& r : vh.routes) routes += (routes.empty() ? "" : ",") + route_json(r);
      vhosts += fmt::format("{}{{\"name\":{},\"domains\":[{}],\"routes\":[{}]}}", vhosts.empty() ? "" : ",",
                            str(vh.name), domains, routes);
    }
    listeners += fmt::format(
        "{}{{\"name\":{},\"address\":{},\"max_request_headers_size\":{},\"max_request_headers_count\":{},"
        "\"max_request_body_size\":{},\"request_headers_timeout\":{},\"idle_timeout\":{},"
        "\"max_connections\":{},\"access_log\":{},\"virtual_hosts\":[{}]}}",
        listeners.empty() ? "" : ",", str(l.name), str(l.address.to_string()), l.max_request_headers_bytes,
        l.max_request_headers_count, l.max_request_body_bytes, dur(l.request_headers_timeout),
        dur(l.idle_timeout), l.max_connections, access_log_json(l), vhosts);
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
        "\"dns_refresh\":{},\"health_check\":{},\"panic_threshold\":{},\"endpoints\":[{}]}}",
        clusters.empty() ? "" : ",", str(cl.name), lb_name(cl.lb), hash_on_json(cl.hash_on),
        cl.maglev_table_size, dur(cl.connect_timeout), dur(cl.idle_timeout), cl.max_idle_connections,
        dur(cl.dns_refresh), health_check_json(cl.health_check), cl.panic_threshold, endpoints);
  }
  return fmt::format(
      "{{\"source_path\":{},\"admin\":{{\"address\":{}}},\"workers\":{},\"drain_timeout\":{},"
      "\"listeners\":[{}],\"clusters\":[{}]}}\n",
      str(c.source_path), str(c.admin.address.to_string()),
      c.workers == 0 ? std::string("\"auto\"") : std::to_string(c.workers), dur(c.drain_timeout), listeners,
      clusters);
}

}  // namespace sluice::config
