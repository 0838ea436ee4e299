#include "sluice/stats/exposition.h"

#include <dirent.h>
#include <fmt/format.h>
#include <unistd.h>

#include <fstream>
#include <string_view>

#include "sluice/http/grpc.h"

namespace sluice::stats {

namespace {

constexpr std::array<const char*, 5> kCodeClasses = {"1xx", "2xx", "3xx", "4xx", "5xx"};

// Writes one metric family at a time: HELP and TYPE once, then its samples.
class PromWriter {
 public:
  void family(std::string_view name, std::string_view type, std::string_view help) {
    fmt::format_to(std::back_inserter(out_), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  }
  // labels: a pre-rendered `a="x",b="y"` list (may be empty).
  template <typename T>
  void sample(std::string_view name, std::string_view labels, T value) {
    if (labels.empty()) {
      fmt::format_to(std::back_inserter(out_), "{} {}\n", name, value);
    } else {
      fmt::format_to(std::back_inserter(out_), "{}{{{}}} {}\n", name, labels, value);
    }
  }
  void histogram(std::string_view name, const std::string& labels, const HistogramValues& h) {
    uint64_t cumulative = 0;
    std::string sep = labels.empty() ? "" : ",";
    for (size_t i = 0; i < h.buckets.size(); ++i) {
      cumulative += h.buckets[i];
      std::string le = i < kLatencyBuckets.size() ? fmt::format("{}", kLatencyBuckets[i]) : "+Inf";
      fmt::format_to(std::back_inserter(out_), "{}_bucket{{{}{}le=\"{}\"}} {}\n", name, labels, sep,
                     le, cumulative);
    }
    sample(fmt::format("{}_sum", name), labels, h.sum);
    sample(fmt::format("{}_count", name), labels, h.count);
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

std::string route_labels(const RouteKey& k) {
  return fmt::format("listener=\"{}\",vhost=\"{}\",route=\"{}\"", escape_label_value(k.listener),
                     escape_label_value(k.vhost), escape_label_value(k.route));
}
std::string cluster_labels(const std::string& c) {
  return fmt::format("cluster=\"{}\"", escape_label_value(c));
}
std::string endpoint_labels(const EndpointKey& k) {
  return fmt::format("cluster=\"{}\",endpoint=\"{}\"", escape_label_value(k.cluster),
                     escape_label_value(k.endpoint));
}
std::string listener_labels(const std::string& l) {
  return fmt::format("listener=\"{}\"", escape_label_value(l));
}

// The TLS families: handshake counters of TLS listeners only (a plaintext listener has none to
// count), every sample of the closed label sets present from the start so a rate() or an alert
// has a series before the first failure; the expiry gauge of every loaded certificate.
// The HTTP/2 families, for listeners that serve HTTP/2 only, every sample of the closed label
// sets present from the start (like the TLS ones).
void render_http2(PromWriter& w, const MergedStats& m, const ServerValues& s) {
  std::vector<std::pair<std::string, Http2Values>> listeners;
  for (const auto& name : s.http2_listeners) {
    auto it = m.listeners.find(name);
    listeners.emplace_back(listener_labels(name), it == m.listeners.end() ? Http2Values{} : it->second.http2);
  }
  auto simple = [&](std::string_view family, std::string_view help, uint64_t Http2Values::*value) {
    w.family(family, "counter", help);
    for (const auto& [l, h] : listeners) w.sample(family, l, h.*value);
  };
  simple("sluice_http2_connections_total", "Downstream connections that spoke HTTP/2 (ALPN h2 or h2c).",
         &Http2Values::connections);
  simple("sluice_http2_streams_total", "Request streams opened by HTTP/2 clients.", &Http2Values::streams);
  simple("sluice_http2_resets_received_total", "RST_STREAM frames received from HTTP/2 clients.",
         &Http2Values::resets_received);
  simple("sluice_http2_resets_sent_total", "RST_STREAM frames sent to HTTP/2 clients.",
         &Http2Values::resets_sent);
  w.family("sluice_http2_goaway_sent_total", "counter", "GOAWAY frames sent to HTTP/2 clients, by error code.");
  for (const auto& [l, h] : listeners) {
    for (size_t i = 0; i < h.goaway_sent.size(); ++i) {
      w.sample("sluice_http2_goaway_sent_total", fmt::format("{},code=\"{}\"", l, http2::kErrorCodeNames[i]),
               h.goaway_sent[i]);
    }
  }
  w.family("sluice_http2_violations_total", "counter",
           "HTTP/2 connections closed for abusing the protocol, by reason.");
  for (const auto& [l, h] : listeners) {
    for (size_t i = 0; i < h.violations.size(); ++i) {
      w.sample("sluice_http2_violations_total", fmt::format("{},reason=\"{}\"", l, http2::kViolationNames[i]),
               h.violations[i]);
    }
  }
}

void render_tls(PromWriter& w, const MergedStats& m, const ServerValues& s) {
  std::vector<std::pair<std::string, TlsValues>> listeners;
  for (const auto& name : s.tls_listeners) {
    auto it = m.listeners.find(name);
    listeners.emplace_back(listener_labels(name),
                           it == m.listeners.end() ? TlsValues{} : it->second.tls);
  }
  w.family("sluice_tls_handshakes_total", "counter", "TLS handshakes completed with clients.");
  for (const auto& [l, t] : listeners) w.sample("sluice_tls_handshakes_total", l, t.handshakes);
  w.family("sluice_tls_resumed_handshakes_total", "counter",
           "TLS handshakes completed by resuming a session (a ticket).");
  for (const auto& [l, t] : listeners) {
    w.sample("sluice_tls_resumed_handshakes_total", l, t.resumptions);
  }
  w.family("sluice_tls_handshake_failures_total", "counter",
           "TLS handshakes with clients that failed, by reason.");
  for (const auto& [l, t] : listeners) {
    for (size_t i = 0; i < t.failures.size(); ++i) {
      if (static_cast<net::TlsFailure>(i) == net::TlsFailure::kNone) continue;
      w.sample("sluice_tls_handshake_failures_total",
               fmt::format("{},reason=\"{}\"", l, net::to_string(static_cast<net::TlsFailure>(i))),
               t.failures[i]);
    }
  }
  // A family of one closed label set: `values` of each listener by the index of `names`.
  auto by_closed_set = [&](std::string_view family, std::string_view help, std::string_view label,
                           const auto& names, const auto TlsValues::*values) {
    w.family(family, "counter", help);
    for (const auto& [l, t] : listeners) {
      for (size_t i = 0; i < names.size(); ++i) {
        w.sample(family, fmt::format("{},{}=\"{}\"", l, label, names[i]), (t.*values)[i]);
      }
    }
  };
  by_closed_set("sluice_tls_handshakes_by_version_total",
                "TLS handshakes completed, by protocol version.", "version", net::kTlsVersionNames,
                &TlsValues::versions);
  by_closed_set("sluice_tls_handshakes_by_cipher_total", "TLS handshakes completed, by cipher suite.",
                "cipher", net::kTlsCipherNames, &TlsValues::ciphers);
  w.family("sluice_tls_certificate_expiry_timestamp_seconds", "gauge",
           "When a loaded certificate expires (its notAfter), in Unix seconds.");
  for (const auto& c : s.certificates) {
    w.sample("sluice_tls_certificate_expiry_timestamp_seconds",
             fmt::format("{}=\"{}\",certificate=\"{}\"", c.cluster ? "cluster" : "listener",
                         escape_label_value(c.owner), escape_label_value(c.certificate)),
             c.not_after);
  }
  w.family("sluice_tls_reload_failures_total", "counter",
           "Reloads of TLS material (certificate files changed, or SIGHUP) refused; the old "
           "material kept serving.");
  w.sample("sluice_tls_reload_failures_total", "", s.tls_reload_failures);
}

}  // namespace

void HistogramValues::add(const Histogram& h) {
  for (size_t i = 0; i < buckets.size(); ++i) buckets[i] += h.bucket(i);
  count += h.count();
  sum += h.sum_seconds();
}

MergedStats MergedStats::collect(std::span<const Shard* const> shards) {
  MergedStats m;
  for (const Shard* shard : shards) {
    shard->for_each_route([&](const RouteKey& k, const RouteStats& s) {
      RouteValues& v = m.routes[k];
      for (size_t i = 0; i < 5; ++i) v.requests[i] += s.requests[i].value();
      v.active += s.active.value();
      v.duration.add(s.duration);
      v.upstream_duration.add(s.upstream_duration);
      v.received_bytes += s.received_bytes.value();
      v.sent_bytes += s.sent_bytes.value();
      for (size_t i = 0; i < kLocalReasonCount; ++i) v.local_replies[i] += s.local_replies[i].value();
      for (size_t i = 0; i < kGrpcCodeCount; ++i) {
        v.grpc[i] += s.grpc[i].value();
        v.grpc_seen = v.grpc_seen || v.grpc[i] > 0;
      }
    });
    shard->for_each_cluster([&](const std::string& k, const ClusterStats& s) {
      ClusterValues& v = m.clusters[k];
      for (size_t i = 0; i < 5; ++i) v.upstream_requests[i] += s.upstream_requests[i].value();
      v.connections_total += s.connections_total.value();
      v.connections_active += s.connections_active.value();
      v.connections_idle += s.connections_idle.value();
      v.connect_failures += s.connect_failures.value();
      v.connection_reuse += s.connection_reuse.value();
      v.lb_panic += s.lb_panic.value();
      v.upstream_overflow += s.upstream_overflow.value();
    });
    shard->for_each_endpoint([&](const EndpointKey& k, const EndpointStats& s) {
      EndpointValues& v = m.endpoints[k];
      v.connections_active += s.connections_active.value();
      v.requests_active += s.requests_active.value();
      v.requests_total += s.requests_total.value();
      v.connect_failures += s.connect_failures.value();
    });
    shard->for_each_listener([&](const std::string& k, const ListenerStats& s) {
      ListenerValues& v = m.listeners[k];
      v.connections_total += s.connections_total.value();
      v.connections_overflow += s.connections_overflow.value();
      v.connections_active += s.connections_active.value();
      v.requests_total += s.requests_total.value();
      TlsValues& t = v.tls;
      t.handshakes += s.tls.handshakes.value();
      t.resumptions += s.tls.resumptions.value();
      for (size_t i = 0; i < t.failures.size(); ++i) t.failures[i] += s.tls.failures[i].value();
      for (size_t i = 0; i < t.versions.size(); ++i) t.versions[i] += s.tls.versions[i].value();
      for (size_t i = 0; i < t.ciphers.size(); ++i) t.ciphers[i] += s.tls.ciphers[i].value();
      Http2Values& h = v.http2;
      h.connections += s.http2.connections.value();
      h.streams += s.http2.streams.value();
      h.resets_received += s.http2.resets_received.value();
      h.resets_sent += s.http2.resets_sent.value();
      for (size_t i = 0; i < h.goaway_sent.size(); ++i) h.goaway_sent[i] += s.http2.goaway_sent[i].value();
      for (size_t i = 0; i < h.violations.size(); ++i) h.violations[i] += s.http2.violations[i].value();
    });
  }
  return m;
}

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string escape_json(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (unsigned char c : value) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) fmt::format_to(std::back_inserter(out), "\\u{:04x}", c);
        else out += static_cast<char>(c);
    }
  }
  return out;
}

std::string render_prometheus(const MergedStats& m, const ServerValues& s) {
  PromWriter w;
  w.family("sluice_route_requests_total", "counter",
           "Requests completed on a route, by response code class (local replies included).");
  for (const auto& [k, v] : m.routes) {
    for (size_t i = 0; i < 5; ++i) {
      w.sample("sluice_route_requests_total", fmt::format("{},code_class=\"{}\"", route_labels(k), kCodeClasses[i]),
               v.requests[i]);
    }
  }
  w.family("sluice_route_requests_active", "gauge", "Requests on a route now in progress.");
  for (const auto& [k, v] : m.routes) w.sample("sluice_route_requests_active", route_labels(k), v.active);
  w.family("sluice_route_request_duration_seconds", "histogram",
           "Time from the first byte of the request to the last byte of the response.");
  for (const auto& [k, v] : m.routes) w.histogram("sluice_route_request_duration_seconds", route_labels(k), v.duration);
  w.family("sluice_route_upstream_duration_seconds", "histogram",
           "Time from sending the request upstream to the end of the upstream response.");
  for (const auto& [k, v] : m.routes) {
    w.histogram("sluice_route_upstream_duration_seconds", route_labels(k), v.upstream_duration);
  }
  w.family("sluice_route_received_bytes_total", "counter", "Request body bytes received from clients.");
  for (const auto& [k, v] : m.routes) w.sample("sluice_route_received_bytes_total", route_labels(k), v.received_bytes);
  w.family("sluice_route_sent_bytes_total", "counter", "Response body bytes sent to clients.");
  for (const auto& [k, v] : m.routes) w.sample("sluice_route_sent_bytes_total", route_labels(k), v.sent_bytes);
  w.family("sluice_route_local_replies_total", "counter", "Replies Sluice generated itself, by reason.");
  for (const auto& [k, v] : m.routes) {
    for (size_t i = 0; i < kLocalReasonCount; ++i) {
      w.sample("sluice_route_local_replies_total",
               fmt::format("{},reason=\"{}\"", route_labels(k), to_string(static_cast<LocalReason>(i))),
               v.local_replies[i]);
    }
  }
  // A route's 17 series appear with its first gRPC exchange, all at once: every route showing
  // them from the start would add 17 idle series to each plain HTTP route.
  w.family("sluice_route_grpc_responses_total", "counter",
           "gRPC exchanges completed on a route, by the grpc-status the client got.");
  for (const auto& [k, v] : m.routes) {
    if (!v.grpc_seen) continue;
    for (size_t i = 0; i < kGrpcCodeCount; ++i) {
      w.sample("sluice_route_grpc_responses_total",
               fmt::format("{},grpc_code=\"{}\"", route_labels(k), http::kGrpcCodeNames[i]),
               v.grpc[i]);
    }
  }

  w.family("sluice_cluster_upstream_requests_total", "counter",
           "Responses received from a cluster's endpoints, by code class.");
  for (const auto& [k, v] : m.clusters) {
    for (size_t i = 0; i < 5; ++i) {
      w.sample("sluice_cluster_upstream_requests_total",
               fmt::format("{},code_class=\"{}\"", cluster_labels(k), kCodeClasses[i]), v.upstream_requests[i]);
    }
  }
  w.family("sluice_cluster_upstream_connections_total", "counter", "Upstream connections opened.");
  for (const auto& [k, v] : m.clusters) w.sample("sluice_cluster_upstream_connections_total", cluster_labels(k), v.connections_total);
  w.family("sluice_cluster_upstream_connections_active", "gauge", "Upstream connections open now (in use or idle).");
  for (const auto& [k, v] : m.clusters) w.sample("sluice_cluster_upstream_connections_active", cluster_labels(k), v.connections_active);
  w.family("sluice_cluster_upstream_connections_idle", "gauge", "Upstream connections idle in the pools.");
  for (const auto& [k, v] : m.clusters) w.sample("sluice_cluster_upstream_connections_idle", cluster_labels(k), v.connections_idle);
  w.family("sluice_cluster_connect_failures_total", "counter", "Upstream connection attempts that failed or timed out.");
  for (const auto& [k, v] : m.clusters) w.sample("sluice_cluster_connect_failures_total", cluster_labels(k), v.connect_failures);
  w.family("sluice_cluster_upstream_connection_reuse_total", "counter", "Requests sent on a pooled (reused) connection.");
  for (const auto& [k, v] : m.clusters) w.sample("sluice_cluster_upstream_connection_reuse_total", cluster_labels(k), v.connection_reuse);
  w.family("sluice_cluster_lb_panic_total", "counter",
           "Requests balanced over every endpoint because fewer than panic_threshold percent were healthy.");
  for (const auto& [k, v] : m.clusters) w.sample("sluice_cluster_lb_panic_total", cluster_labels(k), v.lb_panic);
  w.family("sluice_cluster_upstream_overflow_total", "counter",
           "Requests refused with 503 by the cluster's circuit breakers (connection cap and pending queue full).");
  for (const auto& [k, v] : m.clusters) w.sample("sluice_cluster_upstream_overflow_total", cluster_labels(k), v.upstream_overflow);
  w.family("sluice_cluster_endpoints", "gauge", "Endpoints of a cluster by health state.");
  for (const auto& [k, v] : s.cluster_endpoints) {
    w.sample("sluice_cluster_endpoints", fmt::format("{},state=\"healthy\"", cluster_labels(k)), v.healthy);
    w.sample("sluice_cluster_endpoints", fmt::format("{},state=\"unhealthy\"", cluster_labels(k)), v.unhealthy);
  }
  w.family("sluice_endpoint_requests_total", "counter", "Requests sent to an endpoint.");
  for (const auto& [k, v] : m.endpoints) w.sample("sluice_endpoint_requests_total", endpoint_labels(k), v.requests_total);
  w.family("sluice_endpoint_requests_active", "gauge", "Requests in progress on an endpoint.");
  for (const auto& [k, v] : m.endpoints) w.sample("sluice_endpoint_requests_active", endpoint_labels(k), v.requests_active);
  w.family("sluice_endpoint_connections_active", "gauge", "Open connections to an endpoint (in use or idle).");
  for (const auto& [k, v] : m.endpoints) w.sample("sluice_endpoint_connections_active", endpoint_labels(k), v.connections_active);
  w.family("sluice_endpoint_connect_failures_total", "counter", "Failed connection attempts to an endpoint.");
  for (const auto& [k, v] : m.endpoints) w.sample("sluice_endpoint_connect_failures_total", endpoint_labels(k), v.connect_failures);

  w.family("sluice_listener_downstream_connections_total", "counter", "Client connections accepted.");
  for (const auto& [k, v] : m.listeners) w.sample("sluice_listener_downstream_connections_total", listener_labels(k), v.connections_total);
  w.family("sluice_listener_downstream_connections_overflow_total", "counter",
           "Client connections closed at once because the listener had max_connections open.");
  for (const auto& [k, v] : m.listeners) {
    w.sample("sluice_listener_downstream_connections_overflow_total", listener_labels(k), v.connections_overflow);
  }
  w.family("sluice_listener_downstream_connections_active", "gauge", "Client connections open now.");
  for (const auto& [k, v] : m.listeners) w.sample("sluice_listener_downstream_connections_active", listener_labels(k), v.connections_active);
  w.family("sluice_listener_requests_total", "counter", "Requests received on a listener (heads parsed, bad ones included).");
  for (const auto& [k, v] : m.listeners) w.sample("sluice_listener_requests_total", listener_labels(k), v.requests_total);

  render_tls(w, m, s);
  render_http2(w, m, s);

  w.family("sluice_server_uptime_seconds", "gauge", "Seconds since the process started.");
  w.sample("sluice_server_uptime_seconds", "", s.uptime_seconds);
  w.family("sluice_server_workers", "gauge", "Worker threads.");
  w.sample("sluice_server_workers", "", s.workers);
  w.family("sluice_server_reloads_total", "counter", "Configuration reloads by result.");
  w.sample("sluice_server_reloads_total", "result=\"success\"", s.reloads_success);
  w.sample("sluice_server_reloads_total", "result=\"failed\"", s.reloads_failed);
  w.family("sluice_server_config_info", "gauge", "The configuration now serving: version and SHA-256 of its file.");
  w.sample("sluice_server_config_info",
           fmt::format("version=\"{}\",sha256=\"{}\"", s.config_version, escape_label_value(s.config_sha256)), 1);
  w.family("sluice_server_resident_memory_bytes", "gauge", "Resident set size of the process.");
  w.sample("sluice_server_resident_memory_bytes", "", s.resident_memory_bytes);
  w.family("sluice_server_open_fds", "gauge", "Open file descriptors of the process.");
  w.sample("sluice_server_open_fds", "", s.open_fds);
  w.family("sluice_access_log_dropped_lines_total", "counter",
           "Access-log lines dropped because the writer was behind by its queue limit.");
  w.sample("sluice_access_log_dropped_lines_total", "", s.access_log_dropped_lines);
  return w.take();
}

std::string render_text(const MergedStats& m, const ServerValues& s) {
  std::string out;
  auto line = [&](std::string_view name, auto value) { fmt::format_to(std::back_inserter(out), "{}: {}\n", name, value); };
  line("server.uptime_seconds", fmt::format("{:.0f}", s.uptime_seconds));
  line("server.workers", s.workers);
  line("server.config_version", s.config_version);
  line("server.config_sha256", s.config_sha256);
  line("server.reloads.success", s.reloads_success);
  line("server.reloads.failed", s.reloads_failed);
  line("server.resident_memory_bytes", s.resident_memory_bytes);
  line("server.open_fds", s.open_fds);
  line("server.access_log_dropped_lines", s.access_log_dropped_lines);
  for (const auto& [k, v] : m.listeners) {
    std::string p = "listener." + k;
    line(p + ".downstream_connections_total", v.connections_total);
    line(p + ".downstream_connections_active", v.connections_active);
    line(p + ".downstream_connections_overflow", v.connections_overflow);
    line(p + ".requests_total", v.requests_total);
  }
  for (const auto& [k, v] : m.routes) {
    std::string p = fmt::format("route.{}.{}.{}", k.listener, k.vhost, k.route);
    for (size_t i = 0; i < 5; ++i) {
      if (v.requests[i]) line(p + ".requests." + kCodeClasses[i], v.requests[i]);
    }
    line(p + ".requests_active", v.active);
    line(p + ".received_bytes", v.received_bytes);
    line(p + ".sent_bytes", v.sent_bytes);
    line(p + ".duration_seconds.count", v.duration.count);
    line(p + ".duration_seconds.sum", fmt::format("{:.6f}", v.duration.sum));
    for (size_t i = 0; i < kLocalReasonCount; ++i) {
      if (v.local_replies[i]) line(p + ".local_replies." + to_string(static_cast<LocalReason>(i)), v.local_replies[i]);
    }
    for (size_t i = 0; i < kGrpcCodeCount; ++i) {
      if (v.grpc[i]) line(p + ".grpc." + http::kGrpcCodeNames[i], v.grpc[i]);
    }
  }
  for (const auto& [k, v] : m.clusters) {
    std::string p = "cluster." + k;
    for (size_t i = 0; i < 5; ++i) {
      if (v.upstream_requests[i]) line(p + ".upstream_requests." + kCodeClasses[i], v.upstream_requests[i]);
    }
    line(p + ".connections_total", v.connections_total);
    line(p + ".connections_active", v.connections_active);
    line(p + ".connections_idle", v.connections_idle);
    line(p + ".connect_failures", v.connect_failures);
    line(p + ".connection_reuse", v.connection_reuse);
    line(p + ".lb_panic", v.lb_panic);
    line(p + ".upstream_overflow", v.upstream_overflow);
  }
  return out;
}

std::string render_json(const MergedStats& m, const ServerValues& s) {
  std::string out;
  auto o = std::back_inserter(out);
  auto classes = [](const std::array<uint64_t, 5>& a) {
    return fmt::format("{{\"1xx\":{},\"2xx\":{},\"3xx\":{},\"4xx\":{},\"5xx\":{}}}", a[0], a[1], a[2], a[3], a[4]);
  };
  fmt::format_to(o,
                 "{{\"server\":{{\"uptime_seconds\":{:.3f},\"workers\":{},\"config_version\":{},"
                 "\"config_sha256\":\"{}\",\"reloads\":{{\"success\":{},\"failed\":{}}},"
                 "\"resident_memory_bytes\":{},\"open_fds\":{},\"access_log_dropped_lines\":{}}}",
                 s.uptime_seconds, s.workers, s.config_version, escape_json(s.config_sha256),
                 s.reloads_success, s.reloads_failed, s.resident_memory_bytes, s.open_fds,
                 s.access_log_dropped_lines);
  out += ",\"listeners\":[";
  bool first = true;
  for (const auto& [k, v] : m.listeners) {
    fmt::format_to(o, "{}{{\"listener\":\"{}\",\"downstream_connections_total\":{},"
                      "\"downstream_connections_active\":{},\"requests_total\":{}}}",
                   first ? "" : ",", escape_json(k), v.connections_total, v.connections_active, v.requests_total);
    first = false;
  }
  out += "],\"routes\":[";
  first = true;
  for (const auto& [k, v] : m.routes) {
    std::string local;
    for (size_t i = 0; i < kLocalReasonCount; ++i) {
      fmt::format_to(std::back_inserter(local), "{}\"{}\":{}", i ? "," : "",
                     to_string(static_cast<LocalReason>(i)), v.local_replies[i]);
    }
    // As in the Prometheus exposition, a route's gRPC counts appear with its first gRPC exchange.
    std::string grpc;
    if (v.grpc_seen) {
      grpc = ",\"grpc\":{";
      for (size_t i = 0; i < kGrpcCodeCount; ++i) {
        fmt::format_to(std::back_inserter(grpc), "{}\"{}\":{}", i ? "," : "", http::kGrpcCodeNames[i], v.grpc[i]);
      }
      grpc += '}';
    }
    fmt::format_to(o,
                   "{}{{\"listener\":\"{}\",\"vhost\":\"{}\",\"route\":\"{}\",\"requests\":{},"
                   "\"requests_active\":{},\"received_bytes\":{},\"sent_bytes\":{},"
                   "\"duration_seconds\":{{\"count\":{},\"sum\":{:.6f}}},"
                   "\"upstream_duration_seconds\":{{\"count\":{},\"sum\":{:.6f}}},\"local_replies\":{{{}}}{}}}",
                   first ? "" : ",", escape_json(k.listener), escape_json(k.vhost), escape_json(k.route),
                   classes(v.requests), v.active, v.received_bytes, v.sent_bytes, v.duration.count,
                   v.duration.sum, v.upstream_duration.count, v.upstream_duration.sum, local, grpc);
    first = false;
  }
  out += "],\"clusters\":[";
  first = true;
  for (const auto& [k, v] : m.clusters) {
    auto eps = s.cluster_endpoints.count(k) ? s.cluster_endpoints.at(k) : ServerValues::ClusterEndpoints{};
    fmt::format_to(o,
                   "{}{{\"cluster\":\"{}\",\"upstream_requests\":{},\"connections_total\":{},"
                   "\"connections_active\":{},\"connections_idle\":{},\"connect_failures\":{},"
                   "\"connection_reuse\":{},\"endpoints\":{{\"healthy\":{},\"unhealthy\":{}}}}}",
                   first ? "" : ",", escape_json(k), classes(v.upstream_requests), v.connections_total,
                   v.connections_active, v.connections_idle, v.connect_failures, v.connection_reuse,
                   eps.healthy, eps.unhealthy);
    first = false;
  }
  out += "]}\n";
  return out;
}

uint64_t read_resident_memory_bytes() {
  std::ifstream statm("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
}

uint64_t count_open_fds() {
  uint64_t n = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] != '.') ++n;
    }
    ::closedir(d);
    if (n > 0) --n;  // the descriptor opendir itself holds
  }
  return n;
}

}  // namespace sluice::stats
