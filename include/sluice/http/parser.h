#pragma once
// A strict llhttp parser for one direction of one connection. It records the head as offsets
// into the caller's buffer (no copies), pauses after the head so the caller can route before
// any body byte is consumed, and reports body bytes as spans of the same buffer.
#include <llhttp.h>

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "sluice/http/request_view.h"

namespace sluice::http {

struct Span {
  uint32_t offset = 0;
  uint32_t length = 0;
  std::string_view in(const char* base) const { return {base + offset, length}; }
};

struct HeaderSpan {
  Span name;
  Span value;
};

class Parser {
 public:
  enum class Kind { kRequest, kResponse };
  struct Step {
    size_t consumed = 0;
    bool headers_complete = false;  // the head ended inside this step
    bool message_complete = false;  // the whole message ended inside this step
    bool error = false;
    bool too_many_headers = false;
    const char* reason = "";  // llhttp's reason when error
  };

  Parser(Kind kind, uint32_t max_headers);
  Parser(const Parser&) = delete;
  Parser& operator=(const Parser&) = delete;

  // Parses buffer[begin, end). Offsets in spans are relative to `buffer`, which may move between
  // calls (the caller passes its current address every time).
  Step execute(const char* buffer, size_t begin, size_t end);
  // The peer closed: completes a message delimited by end of stream, or reports truncation.
  Step finish();

  // For responses: the request was HEAD, so the response has no body whatever its headers say.
  void set_skip_body(bool skip) { skip_body_ = skip; }
  void set_max_headers(uint32_t n) { max_headers_ = n; }

  // Valid from headers_complete until the next message starts.
  Span url() const { return url_; }
  Span status_text() const { return status_; }
  const std::vector<HeaderSpan>& headers() const { return headers_; }
  int status_code() const { return parser_.status_code; }
  int http_major() const { return parser_.http_major; }
  int http_minor() const { return parser_.http_minor; }
  llhttp_method_t method() const { return static_cast<llhttp_method_t>(parser_.method); }
  bool chunked() const { return (parser_.flags & F_CHUNKED) != 0; }
  bool has_content_length() const { return (parser_.flags & F_CONTENT_LENGTH) != 0; }
  uint64_t content_length() const { return content_length_; }
  bool keep_alive() const { return llhttp_should_keep_alive(&parser_) != 0; }
  // A response that is neither chunked nor sized nor body-less: its body runs to end of stream.
  bool body_until_eof() const { return (parser_.flags & F_CHUNKED) == 0 && !has_content_length(); }

  // Body bytes found by the last execute() (or finish()), in order.
  const std::vector<std::span<const char>>& body() const { return body_; }

 private:
  static int on_message_begin(llhttp_t* p);
  static int on_url(llhttp_t* p, const char* at, size_t len);
  static int on_status(llhttp_t* p, const char* at, size_t len);
  static int on_header_field(llhttp_t* p, const char* at, size_t len);
  static int on_header_value(llhttp_t* p, const char* at, size_t len);
  static int on_headers_complete(llhttp_t* p);
  static int on_body(llhttp_t* p, const char* at, size_t len);
  static int on_message_complete(llhttp_t* p);
  static void extend(Span& span, const char* base, const char* at, size_t len);
  // Rejects what llhttp 8 (loose mode) lets through in a head: a bare LF as a line end and
  // obsolete line folding. Returns the reason, or nullptr when the bytes are fine.
  const char* check_head_bytes(const char* data, size_t len);
  void fail(const char* reason);

  llhttp_settings_t settings_{};
  llhttp_t parser_{};
  Kind kind_;
  uint32_t max_headers_;
  bool skip_body_ = false;
  bool in_head_ = true;
  bool last_was_value_ = false;
  bool too_many_headers_ = false;
  bool headers_complete_ = false;
  bool message_complete_ = false;
  bool head_pending_ = true;      // the next bytes belong to a head (or the empty lines before it)
  char prev_head_byte_ = 0;       // the last head byte of the previous execute(), for CRLF checks
  const char* failed_ = nullptr;  // sticky error found by Sluice's own checks
  uint64_t content_length_ = 0;
  const char* base_ = nullptr;
  Span url_;
  Span status_;
  std::vector<HeaderSpan> headers_;
  std::vector<std::span<const char>> body_;
};

}  // namespace sluice::http
