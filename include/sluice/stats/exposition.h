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
struct ListenerValues {
  uint64_t connections_total = 0;
  uint64_t connections_overflow = 0;
  int64_t connections_active = 0;
  uint64_t requests_total = 0;
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
