#pragma once
// Header names and value templates of `request_headers` / `response_headers` (HeaderMutation).
// The loader validates every name and template with these functions; the proxy parses each
// stored template once more with parse_header_template() when it builds a snapshot, and never
// on the request path.
#include <string>
#include <string_view>
#include <vector>

#include "sluice/common/result.h"

namespace sluice::config {

// A header field name: an RFC 9110 token (letters, digits and !#$%&'*+-.^_`|~), not empty.
bool is_header_name(std::string_view name);

// Named by Sluice itself, on both sides: the framing headers (Content-Length, Transfer-Encoding)
// and the hop-by-hop ones (http::is_hop_by_hop). A header mutation may not touch them.
bool is_framing_header(std::string_view lower_case_name);

// One piece of a header value template.
struct TemplatePart {
  enum class Kind {
    kLiteral,                  // `text`, with each "%%" already turned into one '%'
    kRequestHeader,            // %REQ(name)%: the request's header `text` (lower-case name)
    kDownstreamRemoteAddress,  // %DOWNSTREAM_REMOTE_ADDRESS%: the client's IP address
    kUpstreamHost,             // %UPSTREAM_HOST%: the chosen endpoint, ip:port
    kRequestId,                // %REQUEST_ID%: the request's x-request-id
    // The downstream TLS connection (empty on plaintext) and its verified client certificate
    // (empty without one), under Envoy's names:
    kDownstreamTlsVersion,          // %DOWNSTREAM_TLS_VERSION%: "TLSv1.3"
    kDownstreamTlsCipher,           // %DOWNSTREAM_TLS_CIPHER%: "TLS_AES_128_GCM_SHA256"
    kRequestedServerName,           // %REQUESTED_SERVER_NAME%: the SNI
    kDownstreamPeerSubject,         // %DOWNSTREAM_PEER_SUBJECT%: RFC 2253
    kDownstreamPeerUriSan,          // %DOWNSTREAM_PEER_URI_SAN%: every URI SAN, joined by ","
    kDownstreamPeerDnsSan,          // %DOWNSTREAM_PEER_DNS_SAN%: every DNS SAN, joined by ","
    kDownstreamPeerFingerprint256,  // %DOWNSTREAM_PEER_FINGERPRINT_256%: SHA-256 of the DER, hex
  };
  Kind kind = Kind::kLiteral;
  std::string text;
  bool operator==(const TemplatePart&) const = default;
};

// Splits a value template into parts, in order; consecutive literal text is one part, and an
// empty template has no parts. Variables are case-sensitive. Errors: an unknown variable, a '%'
// without its closing '%', and a %REQ(...)% whose name is not a header name.
Result<std::vector<TemplatePart>> parse_header_template(std::string_view text);

}  // namespace sluice::config
