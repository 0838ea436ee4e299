#pragma once
// One access-log line per exchange, as JSON or text.
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::net {
struct TlsInfo;
}

namespace sluice::accesslog {

struct Entry {
  std::chrono::system_clock::time_point start;
  std::string_view request_id;
  std::string_view client_address;
  std::string_view method;     // "-" when the head could not be parsed
  std::string_view authority;
  std::string_view path;       // the request target as received
  std::string_view protocol;   // "HTTP/1.1"
  int status = 0;
  uint64_t received_bytes = 0;  // request body
  uint64_t sent_bytes = 0;      // response body
  double duration_ms = 0;
  std::string_view upstream_endpoint;  // empty when none was used
  std::optional<double> upstream_ms;
  std::string_view route;    // "-" when none matched
  std::string_view cluster;  // empty when none
  std::string_view flags;    // "-" or e.g. "NR", "UF", "UT", "UC", "UPE", "DPE", "DT", "RTL", "DC"
  // The downstream TLS connection; null on plaintext. JSON lines of TLS connections end with
  // its version, cipher, SNI and the client certificate's subject and URI SANs.
  const net::TlsInfo* tls = nullptr;
  // The gRPC status of a gRPC exchange (0..16); none for other requests, whose JSON lines then
  // have no `grpc_status` key.
  std::optional<int> grpc_status;
};

// RFC 3339 UTC with milliseconds: 2026-11-22T10:45:41.399Z
std::string rfc3339_ms(std::chrono::system_clock::time_point t);
void append_json(std::string& out, const Entry& e);
void append_text(std::string& out, const Entry& e);

}  // namespace sluice::accesslog
