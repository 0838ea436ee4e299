#pragma once
// Plain configuration structs: what sluice.yaml says, with defaults filled in.
// Produced and validated by config::load_file(); consumed when a Snapshot is built.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace sluice::config {

using Duration = std::chrono::milliseconds;

// A literal IP address and port ("127.0.0.1:8080", "[::1]:80").
struct Address {
  std::string ip;
  uint16_t port = 0;
  std::string to_string() const;
};

struct HeaderMatch {
  enum class Kind { kExact, kPresent, kRegex };
  std::string name;  // lower-case
  Kind kind = Kind::kPresent;
  std::string value;     // exact value or regex pattern
  bool present = true;   // for kPresent: false means "must be absent"
};

struct QueryMatch {
  enum class Kind { kExact, kPresent };
  std::string name;
  Kind kind = Kind::kPresent;
  std::string value;
  bool present = true;
};

// Header mutation of one direction at one level (listener, virtual host or route). Levels apply
// listener → virtual host → route, so the most specific level acts last and wins. Values are
// templates: %REQ(name)%, %DOWNSTREAM_REMOTE_ADDRESS%, %UPSTREAM_HOST%, %REQUEST_ID%.
struct HeaderMutation {
  std::vector<std::pair<std::string, std::string>> set;  // name (lower-case) → value template
  std::vector<std::pair<std::string, std::string>> add;  // appended, existing fields kept
  std::vector<std::string> remove;                       // lower-case names
  bool empty() const { return set.empty() && add.empty() && remove.empty(); }
};

// `request_headers` and `response_headers` of one level.
struct HeaderPolicy {
  HeaderMutation request;
  HeaderMutation response;
  bool empty() const { return request.empty() && response.empty(); }
};

// Route action: answer locally with a fixed response.
struct DirectResponse {
  int status = 200;
  std::string body;
  std::string content_type = "text/plain";
};

// Route action: answer with a redirect built from the request; unset parts are kept.
struct Redirect {
  std::optional<std::string> scheme;          // "http" | "https"
  std::optional<std::string> host;            // replaces the host, keeps the port unless `port`
  std::optional<uint16_t> port;               // replaces the port (dropped when the scheme default)
  std::optional<std::string> path;            // replaces the whole path
  std::optional<std::string> prefix_rewrite;  // replaces the matched route prefix
  bool strip_query = false;
  int code = 301;  // 301, 302, 303, 307 or 308
};

// How a string from the request or the peer's certificate is compared.
struct StringMatch {
  enum class Kind { kExact, kPrefix, kSuffix, kRegex };
  Kind kind = Kind::kExact;
  std::string value;  // the literal, or an RE2 pattern that must match the whole string
};

// Route match on the downstream peer's TLS client certificate (mTLS). Every condition given must
// hold; a SAN condition holds when any SAN of that type matches. On a plaintext connection, or
// one without a client certificate, only `present: false` matches.
struct ClientCertMatch {
  std::optional<bool> present;
  std::optional<StringMatch> subject;  // the subject in RFC 2253 form ("CN=alice,O=corp")
  std::optional<StringMatch> uri_san;
  std::optional<StringMatch> dns_san;
};

struct Route {
  enum class PathKind { kPath, kPrefix, kRegex };
  enum class ActionKind { kCluster, kDirectResponse, kRedirect };
  std::string name;
  PathKind path_kind = PathKind::kPrefix;
  std::string path;  // exact path, prefix or regex pattern
  std::vector<HeaderMatch> headers;
  std::vector<QueryMatch> query;
  std::optional<ClientCertMatch> client_cert;
  std::string cluster;
  Duration timeout{std::chrono::seconds(15)};  // 0 = no timeout
  std::optional<std::string> prefix_rewrite;
  std::optional<std::string> host_rewrite;
  // Exactly one action: `cluster`, `direct_response` or `redirect`.
  ActionKind action = ActionKind::kCluster;
  std::optional<DirectResponse> direct_response;
  std::optional<Redirect> redirect;
  HeaderPolicy header_policy;  // request_headers / response_headers
  // Upgrade protocols tunnelled on this route (lower-case, only "websocket" today); unset: the
  // virtual host's list.
  std::optional<std::vector<std::string>> upgrades;
  Duration upgrade_idle_timeout{std::chrono::hours(1)};  // an open tunnel with no bytes either way
  // A gRPC request's `grpc-timeout` caps `timeout` (never raises it; also applies when timeout is 0).
  bool grpc_timeout_header = true;
};

struct VirtualHost {
  std::string name;
  std::vector<std::string> domains;  // lower-case
  std::vector<Route> routes;
  HeaderPolicy header_policy;
  std::vector<std::string> upgrades;  // default for routes that do not set their own
};

struct AccessLog {
  enum class Format { kJson, kText };
  std::string path;  // "stdout", "stderr" or a file path
  Format format = Format::kJson;
};

// A PEM certificate chain (leaf first) and its private key (PEM, no passphrase).
struct CertificateFiles {
  std::string cert;
  std::string key;
};

enum class TlsVersion { kTls12, kTls13 };

// Downstream client certificates (mTLS).
struct ClientCertificate {
  enum class Mode {
    kRequired,  // the handshake fails without a valid client certificate
    kOptional,  // no certificate is fine (routes decide); a certificate that fails verification
                // still fails the handshake
  };
  Mode mode = Mode::kRequired;
  std::string ca;   // PEM bundle the client chain must lead to
  std::string crl;  // optional PEM CRL(s) of that CA; empty: none
};

// What happens to `x-forwarded-client-cert` (Envoy's XFCC header and modes).
enum class ForwardClientCert {
  kSanitize,     // remove it; never set it
  kForward,      // pass the client's on, only on mTLS connections (else remove)
  kAppend,       // mTLS: append this connection's element to the client's; else remove
  kSanitizeSet,  // remove the client's; on mTLS set this connection's element (default)
};

struct ListenerTls {
  std::vector<CertificateFiles> certificates;  // chosen by SNI; the first is the default
  TlsVersion min_version = TlsVersion::kTls12;
  std::vector<std::string> alpn{"http/1.1"};  // protocols offered, in server preference order
  std::optional<ClientCertificate> client_certificate;
  ForwardClientCert forward_client_cert = ForwardClientCert::kSanitizeSet;
};

// HTTP/2 on a listener: by ALPN `h2` on a TLS listener, or with `prior_knowledge` on a
// plaintext one (h2c: a client that opens with the HTTP/2 connection preface; HTTP/1.1 clients
// are still served on the same port). The limits apply to every HTTP/2 connection of the
// listener; the defaults are the ones an edge proxy wants (Envoy's and nginx's neighbourhood).
struct ListenerHttp2 {
  bool prior_knowledge = false;
  uint32_t max_concurrent_streams = 100;
  uint32_t initial_stream_window = 1024 * 1024;          // SETTINGS_INITIAL_WINDOW_SIZE
  uint32_t initial_connection_window = 4 * 1024 * 1024;  // raised by WINDOW_UPDATE on stream 0
  uint32_t max_header_list_size = 60 * 1024;             // SETTINGS_MAX_HEADER_LIST_SIZE
  // Abuse limits (docs/OPERATIONS.md "HTTP/2 limits and attacks"): far above what a browser or
  // a gRPC client sends, far below what a flood needs.
  uint32_t max_control_frames = 1000;        // SETTINGS, PING, PRIORITY a client may send at once
  uint32_t control_frames_per_second = 200;  // ... and per second after that
  uint32_t max_empty_data_frames = 100;      // DATA without payload and without END_STREAM
  uint32_t empty_data_frames_per_second = 10;
  // Streams reset by the client before their response; with at least half of all streams:
  // rapid reset (CVE-2023-44487).
  uint32_t max_premature_resets = 100;
  uint32_t max_oversized_header_blocks = 100;  // header blocks over max_header_list_size (431 each)
};

struct Listener {
  std::string name;
  Address address;
  std::vector<VirtualHost> virtual_hosts;
  uint32_t max_request_headers_bytes = 60 * 1024;
  uint32_t max_request_headers_count = 100;
  uint64_t max_request_body_bytes = 0;  // 0 = unlimited
  Duration request_headers_timeout{std::chrono::seconds(10)};
  Duration idle_timeout{std::chrono::seconds(60)};
  // Longest wait between two reads of a request body (408 when it passes), and an optional cap
  // on the whole body (0 = none): a body that trickles in cannot hold a connection forever.
  Duration request_body_timeout{std::chrono::seconds(60)};
  Duration request_body_total_timeout{0};
  HeaderPolicy header_policy;
  // Open downstream connections per listener for the whole process (split evenly across
  // workers); a connection over the limit is accepted and closed at once, and counted.
  uint32_t max_connections = 10000;
  std::optional<AccessLog> access_log;  // none: no access log
  std::optional<ListenerTls> tls;        // none: plaintext
  // A TLS handshake that has not finished by then is closed (and counted as a timeout).
  Duration tls_handshake_timeout{std::chrono::seconds(10)};
  ListenerHttp2 http2;
  // Whether HTTP/2 is served at all: ALPN offers h2, or h2c prior knowledge is on.
  bool serves_http2() const {
    return http2.prior_knowledge ||
           (tls && std::find(tls->alpn.begin(), tls->alpn.end(), "h2") != tls->alpn.end());
  }
};

struct Endpoint {
  Address address;       // ip empty when `hostname` is set
  std::string hostname;  // a DNS name, resolved at load and every dns_refresh
  uint32_t weight = 1;
  std::string to_string() const;  // as written: "10.0.0.1:8080" or "app.internal:8080"
};

// Where Maglev finds the key of a request.
struct HashOn {
  enum class Kind { kNone, kHeader, kCookie, kSourceIp, kPath };
  Kind kind = Kind::kNone;
  std::string name;  // header (lower-case) or cookie name
};

struct HealthCheck {
  std::string path = "/health";
  Duration interval{std::chrono::seconds(5)};
  Duration timeout{std::chrono::seconds(1)};
  uint32_t healthy_threshold = 2;
  uint32_t unhealthy_threshold = 2;
  std::vector<std::pair<int, int>> expected_statuses{{200, 399}};  // inclusive ranges
  std::string host;  // Host header of the probe; empty: the endpoint's address
  // grpc.health.v1.Health/Check for `grpc_service` instead of a GET of `path` (needs an
  // HTTP/2 cluster); SERVING is healthy, anything else is not.
  bool grpc = false;
  std::string grpc_service;
};

// The first circuit breakers (Envoy's names and defaults), per cluster for the whole process,
// split evenly across workers like listener connection limits.
struct CircuitBreakers {
  uint32_t max_connections = 1024;       // open upstream connections
  uint32_t max_pending_requests = 1024;  // requests waiting for a connection; beyond: 503 overflow
};

// TLS to a cluster's endpoints.
struct ClusterTls {
  std::string sni;      // empty: the endpoint's host name if it has one (an IP sends no SNI)
  std::string ca;       // PEM bundle; empty: the system's trust store
  bool verify = true;   // chain and host name (against `sni`); false must be written out
  std::string cert;     // optional client certificate chain (upstream mTLS), with `key`
  std::string key;
};

// HTTP/2 to a cluster's endpoints: one multiplexed connection per endpoint per worker (more
// when its stream limit is reached, within circuit_breakers.max_connections).
struct ClusterHttp2 {
  uint32_t max_concurrent_streams = 100;  // our own cap; the backend's SETTINGS may lower it
  Duration ping_interval{std::chrono::seconds(30)};  // keepalive PING on an idle connection; 0: off
  Duration ping_timeout{std::chrono::seconds(10)};   // no PING ack by then: the connection is dead
  uint32_t initial_stream_window = 1024 * 1024;
  uint32_t initial_connection_window = 4 * 1024 * 1024;
};

struct Cluster {
  enum class Protocol { kHttp1, kHttp2 };
  enum class LbPolicy { kRoundRobin, kLeastRequest, kRandom, kMaglev };
  std::string name;
  LbPolicy lb = LbPolicy::kRoundRobin;
  HashOn hash_on;
  uint32_t maglev_table_size = 65537;
  Duration dns_refresh{std::chrono::seconds(30)};
  std::optional<HealthCheck> health_check;
  uint32_t panic_threshold = 50;  // percent healthy below which all endpoints are used
  Duration connect_timeout{std::chrono::seconds(1)};
  // Below Jetty's default 30 s idle timeout, so Sluice retires a pooled connection before the
  // backend closes it under our feet.
  Duration idle_timeout{std::chrono::seconds(20)};
  uint32_t max_idle_connections = 64;  // per endpoint, per worker
  CircuitBreakers circuit_breakers;
  std::optional<ClusterTls> tls;  // none: plaintext
  // http2: prior knowledge on plaintext, ALPN h2 over TLS (a backend that does not agree to h2
  // fails the connection: no silent fall back to HTTP/1.1).
  Protocol protocol = Protocol::kHttp1;
  ClusterHttp2 http2;
  std::vector<Endpoint> endpoints;
};

struct Admin {
  Address address{"127.0.0.1", 9901};
};

struct Config {
  std::string source_path;
  Admin admin;
  uint32_t workers = 0;  // 0 = one per core ("auto")
  Duration drain_timeout{std::chrono::seconds(15)};
  std::vector<Listener> listeners;
  std::vector<Cluster> clusters;
};

}  // namespace sluice::config
