#include "sluice/http/grpc.h"

#include <algorithm>

#include "sluice/http/request_view.h"

namespace sluice::http {

bool is_grpc_content_type(std::string_view value) {
  constexpr std::string_view kType = "application/grpc";
  if (value.size() < kType.size() || !iequals(value.substr(0, kType.size()), kType)) return false;
  return value.size() == kType.size() || value[kType.size()] == '+' || value[kType.size()] == ';';
}

std::optional<std::chrono::milliseconds> parse_grpc_timeout(std::string_view value) {
  // TimeoutValue: 1*8 DIGIT, so it fits in an int64 with room for every unit below.
  if (value.size() < 2 || value.size() > 9) return std::nullopt;
  int64_t n = 0;
  for (char c : value.substr(0, value.size() - 1)) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + (c - '0');
  }
  // Everything in nanoseconds first would overflow for hours; per unit, rounding up below 1 ms.
  int64_t ms = 0;
  switch (value.back()) {
    case 'H':
      ms = n * 3'600'000;
      break;
    case 'M':
      ms = n * 60'000;
      break;
    case 'S':
      ms = n * 1000;
      break;
    case 'm':
      ms = n;
      break;
    case 'u':
      ms = (n + 999) / 1000;
      break;
    case 'n':
      ms = (n + 999'999) / 1'000'000;
      break;
    default:
      return std::nullopt;
  }
  return std::clamp(std::chrono::milliseconds(ms), std::chrono::milliseconds(1), kGrpcTimeoutMax);
}

GrpcStatus parse_grpc_status(std::string_view value) {
  // At most two digits: 0..16. No sign, no spaces, no leading '+'.
  if (value.empty() || value.size() > 2) return GrpcStatus::kUnknown;
  unsigned n = 0;
  for (char c : value) {
    if (c < '0' || c > '9') return GrpcStatus::kUnknown;
    n = n * 10 + static_cast<unsigned>(c - '0');
  }
  return n < kGrpcStatusCount ? static_cast<GrpcStatus>(n) : GrpcStatus::kUnknown;
}

GrpcStatus http_to_grpc_status(int http_status) {
  switch (http_status) {
    case 400:
      return GrpcStatus::kInternal;
    case 401:
      return GrpcStatus::kUnauthenticated;
    case 403:
      return GrpcStatus::kPermissionDenied;
    case 404:
      return GrpcStatus::kUnimplemented;
    case 429:
    case 502:
    case 503:
    case 504:
      return GrpcStatus::kUnavailable;
    default:
      return GrpcStatus::kUnknown;
  }
}

GrpcStatus grpc_status_for(stats::LocalReason reason, int http_status) {
  using stats::LocalReason;
  switch (reason) {
    case LocalReason::kNoRoute:
      return GrpcStatus::kUnimplemented;
    case LocalReason::kNoHealthyUpstream:
    case LocalReason::kConnectFailure:
    case LocalReason::kUpstreamReset:
    case LocalReason::kOverflow:
      return GrpcStatus::kUnavailable;
    // The route timeout, or the client's own grpc-timeout that capped it: the deadline passed
    // (Envoy answers its route timeout the same way).
    case LocalReason::kTimeout:
      return GrpcStatus::kDeadlineExceeded;
    // Reasons still to come (issue 11): a rate limit answers RESOURCE_EXHAUSTED (not the
    // UNAVAILABLE its 429 would give) and a failed authentication UNAUTHENTICATED; add their
    // cases here when the reasons exist.
    // The rest follow their HTTP status: a malformed request (400) is INTERNAL, as in Envoy;
    // 408, 413, 431 and 501 are UNKNOWN. direct_response and redirect never reach here: their
    // configured reply is kept as it is (exchange_runner.cc).
    case LocalReason::kBadRequest:
    case LocalReason::kHeadersTooLarge:
    case LocalReason::kBodyTooLarge:
    case LocalReason::kRequestTimeout:
    case LocalReason::kNotImplemented:
    case LocalReason::kDirectResponse:
    case LocalReason::kRedirect:
    case LocalReason::kCount:
      break;
  }
  return http_to_grpc_status(http_status);
}

void append_grpc_message(std::string& out, std::string_view message) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (unsigned char c : message) {
    if (c >= 0x20 && c <= 0x7e && c != '%') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
}

}  // namespace sluice::http
