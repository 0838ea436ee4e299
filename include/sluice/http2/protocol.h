#pragma once
// The closed sets of HTTP/2 that metrics label by (RFC 9113 §7 error codes, the kinds of abuse
// Sluice closes a connection for), and the connection preface. Free of nghttp2 headers so the
// stats module can size its cells by them.
#include <array>
#include <cstddef>
#include <string_view>

namespace sluice::http2 {

// The client connection preface (RFC 9113 §3.4): what an h2c prior-knowledge client sends first.
inline constexpr std::string_view kClientPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

// RFC 9113 §7, by code (label `code`); codes above 0xd are counted as INTERNAL_ERROR.
inline constexpr std::array<std::string_view, 14> kErrorCodeNames = {
    "NO_ERROR",          "PROTOCOL_ERROR",   "INTERNAL_ERROR",      "FLOW_CONTROL_ERROR",
    "SETTINGS_TIMEOUT",  "STREAM_CLOSED",    "FRAME_SIZE_ERROR",    "REFUSED_STREAM",
    "CANCEL",            "COMPRESSION_ERROR", "CONNECT_ERROR",      "ENHANCE_YOUR_CALM",
    "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED",
};
inline constexpr size_t error_code_index(uint32_t code) { return code < kErrorCodeNames.size() ? code : 2; }

// Why Sluice ended an HTTP/2 connection with an error (label `reason`). Each maps to one of the
// attacks a test performs (tests/e2e/test_http2_hardening.py).
enum class Violation {
  kProtocol,           // a frame or state the protocol forbids (nghttp2 found it): PROTOCOL_ERROR
  kFlowControl,        // window overflow: FLOW_CONTROL_ERROR
  kCompression,        // an HPACK block that does not decode: COMPRESSION_ERROR
  kRapidReset,         // many streams reset by the client before their response (CVE-2023-44487)
  kContinuationFlood,  // a header block in too many CONTINUATION frames (CVE-2024-27316 family)
  kControlFlood,       // SETTINGS, PING or PRIORITY frames beyond the budget, or unread ACKs
  kEmptyDataFlood,     // DATA frames without payload and without END_STREAM
  kHeaderBomb,         // header blocks that decode to far more than max_header_list_size
  kBadPreface,         // not an HTTP/2 connection preface
  kCount,
};
inline constexpr size_t kViolationCount = static_cast<size_t>(Violation::kCount);
inline constexpr std::array<std::string_view, kViolationCount> kViolationNames = {
    "protocol_error",     "flow_control_error", "compression_error", "rapid_reset",  "continuation_flood",
    "control_frame_flood", "empty_data_flood",  "header_list_bomb",  "bad_preface",
};

}  // namespace sluice::http2
