#pragma once
// Per-worker metric cells. Each cell has exactly one writer (its worker thread), which updates it
// with a relaxed load and store: on x86 that is a plain memory write, no locked instruction and
// no cache line shared between workers (rule 1). The scraping thread reads with relaxed loads and
// sums the workers' shards.
#include <array>
#include <atomic>
#include <cstdint>

#include "sluice/http2/protocol.h"
#include "sluice/net/tls_policy.h"

namespace sluice::stats {

class Counter {
 public:
  void add(uint64_t n = 1) { v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  uint64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

class Gauge {
 public:
  void add(int64_t n) { v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  void set(int64_t n) { v_.store(n, std::memory_order_relaxed); }
  int64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> v_{0};
};

// Latency buckets in seconds, from 0.5 ms to 60 s (upper bounds; +Inf is implicit).
inline constexpr std::array<double, 17> kLatencyBuckets = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60};

class Histogram {
 public:
  static constexpr size_t kBuckets = kLatencyBuckets.size() + 1;  // the last one is +Inf
  void observe_seconds(double seconds);
  uint64_t bucket(size_t i) const { return buckets_[i].value(); }  // not cumulative
  uint64_t count() const { return count_.value(); }
  double sum_seconds() const { return static_cast<double>(sum_ns_.value()) / 1e9; }

 private:
  std::array<Counter, kBuckets> buckets_;
  Counter count_;
  Counter sum_ns_;
};

// The closed set of reasons for a local reply (label `reason`).
enum class LocalReason : uint8_t {
  kNoRoute,
  kNoHealthyUpstream,
  kConnectFailure,
  kUpstreamReset,
  kTimeout,
  kBadRequest,
  kHeadersTooLarge,
  kBodyTooLarge,
  kRequestTimeout,
  kOverflow,         // circuit breaker: too many requests waiting for an upstream connection
  kNotImplemented,   // a transfer coding or method Sluice cannot forward (501)
  kDirectResponse,   // the route's direct_response action
  kRedirect,         // the route's redirect action
  kCount,
};
const char* to_string(LocalReason reason);
inline constexpr size_t kLocalReasonCount = static_cast<size_t>(LocalReason::kCount);

// 1xx..5xx → 0..4; anything else counts as 5xx.
inline size_t code_class_index(int status) {
  return status >= 100 && status < 600 ? static_cast<size_t>(status / 100 - 1) : 4;
}

// gRPC status codes 0..16 (names in sluice/http/grpc.h, which checks the count).
inline constexpr size_t kGrpcCodeCount = 17;

struct RouteStats {
  std::array<Counter, 5> requests;  // by code class
  Gauge active;
  Histogram duration;           // first request byte to last response byte
  Histogram upstream_duration;  // request sent to response complete
  Counter received_bytes;       // request body bytes
  Counter sent_bytes;           // response body bytes
  std::array<Counter, kLocalReasonCount> local_replies;
  std::array<Counter, kGrpcCodeCount> grpc;  // gRPC exchanges by final grpc-status
};

struct ClusterStats {
  std::array<Counter, 5> upstream_requests;  // by code class of the upstream's response
  Counter connections_total;
  Gauge connections_active;
  Gauge connections_idle;
  Counter connect_failures;
  Counter connection_reuse;
  Counter lb_panic;  // requests balanced over all endpoints because too few were healthy
  Counter upstream_overflow;  // requests refused by the circuit breakers (503 overflow)
};

struct EndpointStats {
  Gauge connections_active;
  Gauge requests_active;
  Counter requests_total;
  Counter connect_failures;
};

// Downstream TLS handshakes of one listener.
struct TlsStats {
  Counter handshakes;   // completed
  Counter resumptions;  // completed by resuming a session (a ticket)
  std::array<Counter, net::kTlsFailureCount> failures;            // by net::TlsFailure
  std::array<Counter, net::kTlsVersionNames.size()> versions;     // completed, by version
  std::array<Counter, net::kTlsCipherNames.size()> ciphers;       // completed, by cipher suite
};

// Downstream HTTP/2 connections of one listener.
struct Http2Stats {
  Counter connections;      // connections that spoke HTTP/2 (ALPN h2 or h2c prior knowledge)
  Counter streams;          // request streams opened by clients
  Counter resets_received;  // RST_STREAM frames from clients
  Counter resets_sent;      // RST_STREAM frames Sluice sent
  std::array<Counter, http2::kErrorCodeNames.size()> goaway_sent;  // by error code
  std::array<Counter, http2::kViolationCount> violations;          // connections closed, by reason
};

struct ListenerStats {
  Counter connections_total;
  Counter connections_overflow;  // closed at once: over max_connections
  Gauge connections_active;
  Counter requests_total;
  TlsStats tls;
  Http2Stats http2;
};

}  // namespace sluice::stats
