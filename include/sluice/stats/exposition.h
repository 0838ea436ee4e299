#pragma once
// Merges worker shards into plain numbers and renders them: Prometheus text format 0.0.4,
// human-readable text, and JSON.
#include <array>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "sluice/stats/shard.h"

namespace sluice::stats {

struct HistogramValues {
  std::array<uint64_t, Histogram::kBuckets> buckets{};  // not cumulative
  uint64_t count = 0;
  double sum = 0;
  void add(const Histogram& h);
};

struct RouteValues {
  std::array<uint64_t, 5> requests{};
  int64_t active = 0;
  HistogramValues duration, upstream_duration;
  uint64_t received_bytes = 0, sent_bytes = 0;
  std::array<uint64_t, kLocalReasonCount> local_replies{};
  std::array<uint64_t, kGrpcCodeCount> grpc{};
  bool grpc_seen = false;  // any gRPC exchange on the route (its grpc series are then shown)
};
struct ClusterValues {
  std::array<uint64_t, 5> upstream_requests{};
  uint64_t connections_total = 0;
  int64_t connections_active = 0, connections_idle = 0;
  uint64_t connect_failures = 0, connection_reuse = 0, lb_panic = 0, upstream_overflow = 0;
};
struct EndpointValues {
  int64_t connections_active = 0, requests_active = 0;
  uint64_t requests_total = 0, connect_failures = 0;
};
struct TlsValues {
  uint64_t handshakes = 0, resumptions = 0;
  std::array<uint64_t, net::kTlsFailureCount> failures{};
  std::array<uint64_t, net::kTlsVersionNames.size()> versions{};
  std::array<uint64_t, net::kTlsCipherNames.size()> ciphers{};
};
struct Http2Values {
  uint64_t connections = 0, streams = 0, resets_received = 0, resets_sent = 0;
  std::array<uint64_t, http2::kErrorCodeNames.size()> goaway_sent{};
  std::array<uint64_t, http2::kViolationCount> violations{};
};
struct ListenerValues {
  uint64_t connections_total = 0;
  uint64_t connections_overflow = 0;
  int64_t connections_active = 0;
  uint64_t requests_total = 0;
  TlsValues tls;
  Http2Values http2;
};

struct MergedStats {
  std::map<RouteKey, RouteValues> routes;
  std::map<std::string, ClusterValues> clusters;
  std::map<EndpointKey, EndpointValues> endpoints;
  std::map<std::string, ListenerValues> listeners;
  static MergedStats collect(std::span<const Shard* const> shards);
};

// Process-level facts the admin server adds to a scrape.
struct ServerValues {
  double uptime_seconds = 0;
  size_t workers = 0;
  uint64_t reloads_success = 0, reloads_failed = 0;
  uint64_t config_version = 0;
  std::string config_sha256;
  uint64_t resident_memory_bytes = 0;
  uint64_t open_fds = 0;
  uint64_t access_log_dropped_lines = 0;  // queue full (accesslog::Writer)
  struct ClusterEndpoints {
    size_t healthy = 0, unhealthy = 0;
  };
  std::map<std::string, ClusterEndpoints> cluster_endpoints;  // current config's clusters
  // TLS listeners of the current config: only they get the sluice_tls_* handshake families, all
  // of their samples present from the start (0 included).
  std::vector<std::string> tls_listeners;
  // Listeners of the current config that serve HTTP/2 (ALPN h2 or h2c): only they get the
  // sluice_http2_* families, every sample present from the start.
  std::vector<std::string> http2_listeners;
  // Every loaded certificate (the current snapshot's TLS material), for the expiry gauge.
  struct CertificateExpiry {
    bool cluster = false;     // a cluster's client certificate, else a listener's certificate
    std::string owner;        // the listener or cluster name
    std::string certificate;  // the cert file path
    int64_t not_after = 0;    // Unix seconds
  };
  std::vector<CertificateExpiry> certificates;
  uint64_t tls_reload_failures = 0;  // TLS material refused (file change or SIGHUP)
};

std::string render_prometheus(const MergedStats& stats, const ServerValues& server);
std::string render_text(const MergedStats& stats, const ServerValues& server);
std::string render_json(const MergedStats& stats, const ServerValues& server);

// Escapes a label value for the text format: backslash, double quote and newline.
std::string escape_label_value(std::string_view value);
// Escapes a string for a JSON string literal (without the quotes).
std::string escape_json(std::string_view value);

// Resident set size and open descriptors of this process, from /proc/self.
uint64_t read_resident_memory_bytes();
uint64_t count_open_fds();

}  // namespace sluice::stats
