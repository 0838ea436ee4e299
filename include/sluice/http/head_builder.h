#pragma once
// Builds the heads Sluice sends: the request head upstream and the response head downstream.
// Header lines that pass through unchanged are referenced in place (scatter-gather), adjacent
// ones coalesced into one view; only the lines Sluice writes itself are copied.
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/http/request_view.h"

namespace sluice::http {

// Storage for the values forward_request_fields() builds (reused: its capacity stays).
struct ForwardScratch {
  std::string forwarded_for;
  std::string client_certs;
};

// The three parts of a head, in order: prefix (owned), middle (views into the received head or
// static strings), suffix (owned, ends with the blank line).
struct HeadParts {
  std::string prefix;
  std::vector<std::string_view> middle;
  std::string suffix;
  ForwardScratch scratch;  // the request builder's, kept with the parts so its capacity stays
  void clear() {
    prefix.clear();
    middle.clear();
    suffix.clear();
  }
  std::string flatten() const;
};

// What the request sent upstream carries in x-forwarded-client-cert (Envoy's XFCC), decided per
// request by client_cert_header() (forwarded_client_cert.h).
enum class ClientCertHeader : uint8_t {
  kRemove,   // the client's removed, none written (the default: plaintext, no client certificate)
  kForward,  // the client's passed on as received
  // From here on `client_cert_element` is written (the head builder tests >= kAppend).
  kAppend,  // the client's values, then `client_cert_element`, in one field
  kSet,     // the client's removed; `client_cert_element` written
};

struct UpstreamRequestInput {
  std::string_view method;
  std::string_view path;   // already rewritten, without the query
  std::string_view query;  // without '?'; empty when none
  std::string_view host;   // the Host value to send (host_rewrite or the original)
  std::string_view original_host;  // for x-forwarded-host
  std::string_view client_address;
  std::string_view forwarded_proto;  // "http" or "https"
  std::string_view generated_request_id;  // set when the request had no x-request-id
  bool chunked_body = false;  // re-frame the body as chunked (it arrived chunked)
  bool has_body = false;      // a body follows the head (HTTP/2 ends the stream with the head when not)
  ClientCertHeader client_cert = ClientCertHeader::kRemove;
  std::string_view upgrade;   // a tunnel offer to keep ("websocket"): sends Connection: upgrade
  std::string_view client_cert_element;  // this connection's XFCC element (kAppend, kSet)
  std::span<const HeaderView> headers;
};

struct DownstreamResponseInput {
  int status = 200;
  std::string_view reason;
  std::string_view request_id;  // added when the response has none
  bool chunked_body = false;     // Sluice frames the body as chunked
  // Codings the upstream applied before chunked ("gzip"): kept, with chunked after them.
  std::string_view transfer_codings;
  bool close = false;            // add "connection: close"
  bool keep_alive_header = false;  // add "connection: keep-alive" (HTTP/1.0 keep-alive clients)
  std::string_view upgrade;  // a 101 accepting this protocol: sends Connection/Upgrade
  std::span<const HeaderView> headers;
};

void build_upstream_request_head(const UpstreamRequestInput& in, HeadParts& out);
void build_downstream_response_head(const DownstreamResponseInput& in, HeadParts& out);

// Connection, Keep-Alive, Proxy-Connection, TE, Trailer, Upgrade, Transfer-Encoding. Inline and
// by length first: one jump instead of seven comparisons for every field of every head (26 fewer
// instructions per small GET in the response head alone, bench/instructions).
inline bool is_hop_by_hop(std::string_view name) {
  switch (name.size()) {
    case 2: return iequals(name, "te");
    case 7: return iequals(name, "trailer") || iequals(name, "upgrade");
    case 10: return iequals(name, "connection") || iequals(name, "keep-alive");
    case 16: return iequals(name, "proxy-connection");
    case 17: return iequals(name, "transfer-encoding");
    default: return false;
  }
}
// True when `name` is listed in any Connection header among `headers`.
bool named_by_connection(std::span<const HeaderView> headers, std::string_view name);

// --- The fields of the request sent upstream, decided once for every upstream protocol. ---
namespace detail {
// Calls `f` with every token of every Connection header among `headers`, trimmed, until `f`
// returns true; returns whether it did.
template <typename F>
bool any_connection_token(std::span<const HeaderView> headers, F&& f) {
  for (const auto& h : headers) {
    if (!iequals(h.name, "connection")) continue;
    std::string_view v = h.value;
    while (!v.empty()) {
      size_t comma = v.find(',');
      std::string_view token = v.substr(0, comma);
      while (!token.empty() && (token.front() == ' ' || token.front() == '\t')) token.remove_prefix(1);
      while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.remove_suffix(1);
      if (f(token)) return true;
      if (comma == std::string_view::npos) break;
      v.remove_prefix(comma + 1);
    }
  }
  return false;
}

// What the Connection headers of a head remove besides the hop-by-hop fields.
struct ConnectionOptions {
  bool other = false;  // a token other than keep-alive and close: check every field against them
  bool close = false;  // "close": only a field named "close" goes
};

// Most heads carry no Connection header, or one that only says "keep-alive" or "close".
// Recognising that once spares each field a pass over all the headers (89 iequals calls per
// small GET before, bench/instructions). A "keep-alive" token needs no field check: the
// Keep-Alive field is hop-by-hop anyway.
inline ConnectionOptions connection_options(std::span<const HeaderView> headers) {
  ConnectionOptions o;
  any_connection_token(headers, [&o](std::string_view token) {
    if (iequals(token, "close")) {
      o.close = true;
    } else if (!token.empty() && !iequals(token, "keep-alive")) {
      o.other = true;
    }
    return o.other;
  });
  return o;
}

// True when the Connection headers name field `name`.
inline bool removed_by_connection(const ConnectionOptions& o, std::span<const HeaderView> headers,
                                  std::string_view name) {
  if (o.other) return named_by_connection(headers, name);
  return o.close && iequals(name, "close");
}

}  // namespace detail
// The Connection-options summary serves the HTTP/2 response head too (proxy/http2_connection.cc).
using detail::ConnectionOptions;
using detail::connection_options;
using detail::removed_by_connection;

// A field Sluice writes itself: its lower-case name, and the same name with ": " after it, so
// the HTTP/1 builder appends a line in three pieces rather than four (the fourth append cost 114
// instructions per small GET, bench/instructions).
struct WrittenField {
  std::string_view name;
  std::string_view line_start;  // name + ": "
};

namespace written {
inline constexpr WrittenField kClientCert{"x-forwarded-client-cert", "x-forwarded-client-cert: "};
inline constexpr WrittenField kForwardedFor{"x-forwarded-for", "x-forwarded-for: "};
inline constexpr WrittenField kForwardedProto{"x-forwarded-proto", "x-forwarded-proto: "};
inline constexpr WrittenField kForwardedHost{"x-forwarded-host", "x-forwarded-host: "};
inline constexpr WrittenField kRequestId{"x-request-id", "x-request-id: "};
}  // namespace written

// The fields of the request sent upstream, whatever its protocol: `pass(h)` for each received
// field that goes on unchanged, in order, then `add(field, value)` (a WrittenField) for each field Sluice writes
// (x-forwarded-client-cert, x-forwarded-for, x-forwarded-proto, x-forwarded-host,
// x-request-id), names lower-case. Dropped: Host (each protocol writes the authority its own
// way), Expect, the hop-by-hop fields and those named by Connection, and the forwarding fields
// Sluice rewrites. The HTTP/1 builder and the HTTP/2 upstream session both call it, so the
// forwarding decisions live here only. A template so the HTTP/1 path pays no indirect call per
// field.
template <typename Pass, typename Add>
void forward_request_fields(const UpstreamRequestInput& in, ForwardScratch& scratch, Pass&& pass,
                            Add&& add) {
  using namespace std::string_view_literals;
  const detail::ConnectionOptions connection = detail::connection_options(in.headers);
  scratch.forwarded_for.clear();
  scratch.client_certs.clear();
  // The client's x-forwarded-client-cert values are kept when this connection's element is
  // appended to them.
  const bool append_client_certs = in.client_cert == ClientCertHeader::kAppend;
  for (const auto& h : in.headers) {
    // The fields Sluice writes or drops itself, found by length first: one jump instead of a
    // comparison per name for every field.
    switch (h.name.size()) {
      case 4:
        if (iequals(h.name, "host")) continue;
        break;
      case 6:
        if (iequals(h.name, "expect")) continue;
        break;
      case 12:
        // A generated id replaces an empty one the client sent.
        if (!in.generated_request_id.empty() && iequals(h.name, "x-request-id")) continue;
        break;
      case 15:
        if (iequals(h.name, "x-forwarded-for")) {
          if (!scratch.forwarded_for.empty()) scratch.forwarded_for += ", "sv;
          scratch.forwarded_for.append(h.value);
          continue;
        }
        break;
      case 16:
        if (iequals(h.name, "x-forwarded-host")) continue;
        break;
      case 17:
        if (iequals(h.name, "x-forwarded-proto")) continue;
        break;
      case 23:
        if (in.client_cert != ClientCertHeader::kForward && iequals(h.name, "x-forwarded-client-cert")) {
          if (append_client_certs && !h.value.empty()) {
            if (!scratch.client_certs.empty()) scratch.client_certs += ',';
            scratch.client_certs.append(h.value);
          }
          continue;
        }
        break;
      default:
        break;
    }
    if (is_hop_by_hop(h.name)) continue;
    if (detail::removed_by_connection(connection, in.headers, h.name)) continue;
    pass(h);
  }
  if (in.client_cert >= ClientCertHeader::kAppend) {  // kAppend, kSet
    if (!scratch.client_certs.empty()) scratch.client_certs += ',';
    scratch.client_certs.append(in.client_cert_element);
    add(written::kClientCert, std::string_view(scratch.client_certs));
  }
  if (!scratch.forwarded_for.empty()) scratch.forwarded_for += ", "sv;
  scratch.forwarded_for.append(in.client_address);
  add(written::kForwardedFor, std::string_view(scratch.forwarded_for));
  add(written::kForwardedProto, in.forwarded_proto);
  if (!in.original_host.empty()) add(written::kForwardedHost, in.original_host);
  if (!in.generated_request_id.empty()) add(written::kRequestId, in.generated_request_id);
}

// A random version 4 UUID, lower-case hex with dashes (36 characters).
std::string make_request_id();
// The same into `id`, whose buffer is kept (no allocation for a reused exchange's string).
void make_request_id(std::string& id);

}  // namespace sluice::http
