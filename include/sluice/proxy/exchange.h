#pragma once
// One request/response exchange in protocol-neutral form: what the route's steps see and change.
// A downstream codec (HTTP/1 today, HTTP/2 next) fills the request part; the router step and the
// upstream session fill the response part; the codec writes the response in its own framing.
// Nothing here knows HTTP/1 text.
#include <optional>
#include <string>
#include <string_view>

#include "sluice/http/fields.h"
#include "sluice/stats/metrics.h"

namespace sluice::router {
class Route;
}

namespace sluice::proxy {

// Where an error came from, and whether the request may be sent again (after Pingora's errors).
struct Error {
  enum class Source { kDownstream, kUpstream, kPolicy, kInternal };
  Source source = Source::kInternal;
  bool retryable = false;
};

// A reply produced by Sluice itself instead of an upstream: by a step (direct_response,
// redirect, later rate limits and policies) or by the request path (no route, 503, 504, ...).
struct LocalReply {
  int status = 200;
  stats::LocalReason reason = stats::LocalReason::kBadRequest;
  std::string body;
  std::string content_type = "text/plain";
  http::FieldList headers;  // extra fields, e.g. location
};

struct RequestHead {
  std::string_view method;
  std::string_view scheme = "http";
  std::string_view authority;  // Host, or the authority of an absolute-form target
  std::string_view path;       // without the query
  std::string_view query;      // after '?', may be empty
  bool has_query = false;      // a '?' was present (even with nothing after it)
  http::FieldList fields;
};

struct ResponseHead {
  int status = 0;
  std::string_view reason;
  http::FieldList fields;
};

struct Exchange {
  RequestHead request;
  ResponseHead response;
  const router::Route* route = nullptr;
  std::string_view client_address;
  std::string_view request_id;
  std::string_view upstream_host;  // the chosen endpoint ("ip:port"), once picked
  std::optional<LocalReply> local_reply;  // set by a step that answers the request itself
  std::optional<Error> error;

  // Makes the exchange answer locally; the caller returns filters::Status::kLocalReply.
  LocalReply& reply_locally(int status, stats::LocalReason reason, std::string body) {
    local_reply.emplace();
    local_reply->status = status;
    local_reply->reason = reason;
    local_reply->body = std::move(body);
    return *local_reply;
  }
  // Resets for the next request, keeping the fields' storage (no allocation per request).
  void clear() {
    request.fields.clear();
    response.fields.clear();
    request.method = request.authority = request.path = request.query = {};
    request.scheme = "http";
    request.has_query = false;
    response.status = 0;
    response.reason = {};
    route = nullptr;
    upstream_host = {};
    local_reply.reset();
    error.reset();
  }
};

}  // namespace sluice::proxy
