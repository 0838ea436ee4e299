#pragma once
// One request/response exchange in protocol-neutral form: what the route's steps see and change.
// A downstream codec (HTTP/1 or HTTP/2) fills the request part; the router step and the
// upstream session fill the response part; the codec writes the response in its own framing.
// Nothing here knows HTTP/1 text.
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/filters/filter.h"
#include "sluice/http/fields.h"
#include "sluice/stats/metrics.h"

namespace sluice::router {
class Route;
}
namespace sluice::net {
struct TlsInfo;
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

// What the downstream codec tells the exchange about the request beyond its head.
struct RequestFacts {
  std::string_view protocol = "HTTP/1.1";  // for logs: "HTTP/1.0", "HTTP/1.1", later "HTTP/2"
  bool head_request = false;       // HEAD: whatever the status, the response carries no body
  bool has_body = false;           // body bytes follow the head
  bool body_length_known = false;  // the body's length was declared (else it is framed upstream)
  bool idempotent = false;         // RFC 9110 §9.2.2: may be sent again after a failed attempt
  std::string_view upgrade;        // a WebSocket offer the route tunnels ("websocket"), else empty
  bool request_id_generated = false;  // Sluice made request_id (the client sent none)
  // A gRPC request (content-type application/grpc*): Sluice's own replies are gRPC-shaped, and
  // its valid `grpc-timeout` (0 = none or invalid) may cap the route timeout. Set by the runner.
  bool grpc = false;
  std::chrono::milliseconds grpc_timeout{0};
};

struct Exchange {
  RequestHead request;
  RequestFacts facts;
  ResponseHead response;
  http::FieldList request_trailers;   // filled when the request body ends with trailer fields
  http::FieldList response_trailers;  // likewise for the response
  const router::Route* route = nullptr;
  std::string_view client_address;
  // The downstream connection's TLS parameters and client identity; null on plaintext.
  const net::TlsInfo* tls = nullptr;
  std::string request_id;
  std::string_view upstream_host;  // the chosen endpoint ("ip:port"), once picked
  std::optional<LocalReply> local_reply;  // set by a step that answers the request itself
  std::optional<Error> error;
  // The worker's state of every step of the snapshot this exchange runs on, by state slot.
  const std::vector<std::shared_ptr<filters::WorkerState>>* step_states = nullptr;

  // The per-worker state of `step` (made by its make_worker_state()), or null when it has none.
  template <typename State>
  State* step_state(const filters::Filter& step) const {
    const size_t slot = step.state_slot();
    if (!step_states || slot >= step_states->size()) return nullptr;
    return static_cast<State*>((*step_states)[slot].get());
  }

  // Makes the exchange answer locally; the caller returns filters::Status::kLocalReply.
  LocalReply& reply_locally(int status, stats::LocalReason reason, std::string body) {
    local_reply.emplace();
    local_reply->status = status;
    local_reply->reason = reason;
    local_reply->body = std::move(body);
    return *local_reply;
  }
  // Copies the request head into storage of its own: its views pointed into the codec's read
  // buffer, which a long request body needs back. Uploads only; a GET never pays for it.
  void own_request_head() {
    auto& f = request.fields;
    request.method = f.own(std::string(request.method));
    request.authority = f.own(std::string(request.authority));
    request.path = f.own(std::string(request.path));
    request.query = f.own(std::string(request.query));
    for (auto& item : f.items()) {
      item.name = f.own(std::string(item.name));
      item.value = f.own(std::string(item.value));
    }
  }
  // Resets for the next request, keeping the fields' storage (no allocation per request).
  void clear() {
    request.fields.clear();
    response.fields.clear();
    request_trailers.clear();
    response_trailers.clear();
    facts = RequestFacts{};
    request_id.clear();
    request.method = request.authority = request.path = request.query = {};
    request.scheme = "http";
    request.has_query = false;
    response.status = 0;
    response.reason = {};
    route = nullptr;
    tls = nullptr;
    upstream_host = {};
    local_reply.reset();
    error.reset();
    step_states = nullptr;
  }
};

}  // namespace sluice::proxy
