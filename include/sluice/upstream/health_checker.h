#pragma once
// Active HTTP health checks for one cluster, for the whole process (not per worker). Each
// endpoint is probed every `interval`: GET `path`, healthy when the status is expected and the
// answer comes within `timeout`. For `protocol: http2` clusters the probe is an HTTP/2 request
// (prior knowledge, or TLS with ALPN h2) on an Http2Connection of its own; with `grpc` it is
// grpc.health.v1.Health/Check for `grpc_service`, healthy only on grpc-status 0 and SERVING. `healthy_threshold` passes in a row bring an endpoint back,
// `unhealthy_threshold` failures in a row take it out. Runs on the control thread.
//
// Lifetime: a reload that changes `health_check` (or removes the cluster) destroys the checker
// while its probes wait on I/O. The probe coroutines never refer to the checker itself: each
// holds its Target, which has its own copy of the settings and a pointer back to the checker
// that the checker clears when it stops the target. A probe that resumes after that finds the
// pointer null and ends without touching anything else.
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "sluice/common/asio.h"
#include "sluice/config/config.h"
#include "sluice/net/tls_context.h"

namespace sluice::upstream {

class HealthChecker {
 public:
  // Called on a transition, on the checker's thread.
  using TransitionFn = std::function<void(const std::string& endpoint_key, bool healthy, const std::string& why)>;

  HealthChecker(asio::io_context& context, std::string cluster, config::HealthCheck spec,
                TransitionFn on_transition);
  ~HealthChecker();
  HealthChecker(const HealthChecker&) = delete;
  HealthChecker& operator=(const HealthChecker&) = delete;

  // Probes exactly these endpoints from now on (new ones start at once; removed ones stop).
  // `healthy` is each endpoint's current state, kept for those already probed.
  void set_endpoints(const std::map<std::string, std::pair<tcp::endpoint, bool>>& endpoints);
  // A request could not connect: count it as a failed probe now (passive detection). Returns
  // true when that made the endpoint unhealthy.
  bool record_passive_failure(const std::string& endpoint_key, const std::string& why);
  const config::HealthCheck& spec() const { return *spec_; }
  // Probes speak TLS with this context (the cluster's `tls`; null: plaintext), from the next
  // probe on. Their SNI and verified name: `tls.sni`, else the check's `host`, else the IP.
  void set_tls(std::shared_ptr<const net::TlsClientContext> tls) { tls_ = std::move(tls); }
  // Probes speak HTTP/2 with these settings (none: HTTP/1.1), from the next probe on.
  void set_http2(std::optional<config::ClusterHttp2> http2) { http2_ = std::move(http2); }

 private:
  struct Target;
  struct ProbeState;
  // Static: they reach the checker only through Target::owner, checked after every wait.
  static awaitable<void> probe_loop(std::shared_ptr<Target> target);
  static awaitable<std::string> probe(Target& target);  // empty on success, else why it failed
  // The request and response of an HTTP/2 probe, on a connected state.h2.
  static awaitable<std::string> probe_h2(ProbeState& state, const config::HealthCheck& spec,
                                         const std::string& host);
  static void stop(Target& target);
  void record(Target& target, const std::string& failure);

  asio::io_context& context_;
  std::string cluster_;
  std::shared_ptr<const config::HealthCheck> spec_;  // shared with the targets
  TransitionFn on_transition_;
  std::shared_ptr<const net::TlsClientContext> tls_;
  std::optional<config::ClusterHttp2> http2_;
  std::map<std::string, std::shared_ptr<Target>> targets_;
};

}  // namespace sluice::upstream
