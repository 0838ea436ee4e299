#pragma once
// Builds the heads Sluice sends: the request head upstream and the response head downstream.
// Header lines that pass through unchanged are referenced in place (scatter-gather), adjacent
// ones coalesced into one view; only the lines Sluice writes itself are copied.
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/http/request_view.h"

namespace sluice::http {

// The three parts of a head, in order: prefix (owned), middle (views into the received head or
// static strings), suffix (owned, ends with the blank line).
struct HeadParts {
  std::string prefix;
  std::vector<std::string_view> middle;
  std::string suffix;
  void clear() {
    prefix.clear();
    middle.clear();
    suffix.clear();
  }
  std::string flatten() const;
};

struct UpstreamRequestInput {
  std::string_view method;
  std::string_view path;   // already rewritten, without the query
  std::string_view query;  // without '?'; empty when none
  std::string_view host;   // the Host value to send (host_rewrite or the original)
  std::string_view original_host;  // for x-forwarded-host
  std::string_view client_address;
  std::string_view forwarded_proto;  // "http" (later "https")
  std::string_view generated_request_id;  // set when the request had no x-request-id
  bool chunked_body = false;  // re-frame the body as chunked (it arrived chunked)
  std::string_view upgrade;   // a tunnel offer to keep ("websocket"): sends Connection: upgrade
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

// Connection, Keep-Alive, Proxy-Connection, TE, Trailer, Upgrade, Transfer-Encoding.
bool is_hop_by_hop(std::string_view name);
// True when `name` is listed in any Connection header among `headers`.
bool named_by_connection(std::span<const HeaderView> headers, std::string_view name);

// A random version 4 UUID, lower-case hex with dashes (36 characters).
std::string make_request_id();

}  // namespace sluice::http
