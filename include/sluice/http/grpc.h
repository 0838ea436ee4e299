#pragma once
// The protocol-neutral parts of gRPC (issue 11): what makes a request gRPC, its `grpc-timeout`,
// the closed set of status codes, and the gRPC shape of Sluice's own replies. Whatever codec
// carried the request, these are decided in the exchange layer, so an HTTP/1.1 client that sends
// `content-type: application/grpc` gets the same answers as an HTTP/2 one.
// Reference: https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md and
// https://github.com/grpc/grpc/blob/master/doc/http-grpc-status-mapping.md.
#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "sluice/stats/metrics.h"

namespace sluice::http {

// The 17 gRPC status codes, by their number (label `grpc_code` of the route metrics).
enum class GrpcStatus : uint8_t {
  kOk = 0,
  kCancelled = 1,
  kUnknown = 2,
  kInvalidArgument = 3,
  kDeadlineExceeded = 4,
  kNotFound = 5,
  kAlreadyExists = 6,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kFailedPrecondition = 9,
  kAborted = 10,
  kOutOfRange = 11,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
  kDataLoss = 15,
  kUnauthenticated = 16,
};
inline constexpr std::array<const char*, 17> kGrpcCodeNames = {
    "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
    "DATA_LOSS", "UNAUTHENTICATED"};
inline constexpr size_t kGrpcStatusCount = kGrpcCodeNames.size();
static_assert(kGrpcStatusCount == stats::kGrpcCodeCount);

// `application/grpc`, alone or followed by `+` (application/grpc+proto) or `;` (parameters);
// the media type compared case-insensitively (RFC 9110 §8.3.1).
bool is_grpc_content_type(std::string_view value);

// A `grpc-timeout` value: 1 to 8 ASCII digits and one unit (H M S m u n). Anything else is
// invalid and yields nothing (the header is then ignored, as gRPC servers do). Sub-millisecond
// values, and 0, round up to 1 ms: a zero duration means "no timeout" to Sluice, and a deadline
// the client says has passed must still fire. Values above kGrpcTimeoutMax are clamped to it.
std::optional<std::chrono::milliseconds> parse_grpc_timeout(std::string_view value);
// 99,999,999 seconds (about 3.2 years), the most the `S` unit can say: far above any route
// timeout, and small enough that a deadline computed in nanoseconds from now cannot overflow
// (99,999,999 H would).
inline constexpr std::chrono::milliseconds kGrpcTimeoutMax{99'999'999LL * 1000};

// A `grpc-status` value: its decimal number when it is one of the 17 codes, else UNKNOWN (what
// gRPC clients report for a status they cannot read).
GrpcStatus parse_grpc_status(std::string_view value);

// The status a gRPC client derives from an HTTP status when the response has no grpc-status
// (http-grpc-status-mapping.md; Envoy's Grpc::Utility::httpToGrpcStatus): 400 INTERNAL,
// 401 UNAUTHENTICATED, 403 PERMISSION_DENIED, 404 UNIMPLEMENTED, 429/502/503/504 UNAVAILABLE,
// anything else UNKNOWN.
GrpcStatus http_to_grpc_status(int http_status);

// The status of Sluice's own reply to a gRPC request: by its reason where the reason says more
// than the HTTP status (no route is UNIMPLEMENTED, every upstream failure UNAVAILABLE, the
// route timeout DEADLINE_EXCEEDED), else from the HTTP status as above.
GrpcStatus grpc_status_for(stats::LocalReason reason, int http_status);

// Appends `message` percent-encoded as `grpc-message` requires: bytes outside 0x20-0x7E, and
// '%' itself, become %XX (upper-case hex); everything else is copied.
void append_grpc_message(std::string& out, std::string_view message);

}  // namespace sluice::http
