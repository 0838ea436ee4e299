#pragma once
// A strict llhttp parser for one direction of one connection. It records the head as offsets
// into the caller's buffer (no copies), pauses after the head so the caller can route before
// any body byte is consumed, and reports body bytes as spans of the same buffer.
//
// Strict means: llhttp built with LLHTTP_STRICT_MODE and no lenient flag, plus Sluice's own
// checks for what llhttp 8.1 still lets through (RFC 9112/9110): bare LF and obs-fold, empty
// field names, start lines that are not exactly "method SP target SP version" or
// "version SP 3DIGIT SP reason", characters outside RFC 3986 in the request-target, versions
// other than HTTP/1.0 and HTTP/1.1, Transfer-Encoding in HTTP/1.0 or with a coding other than
// a final chunked (requests), Content-Length above 2^63-1, 1xx/204/304 responses with a body.
#include <llhttp.h>

#include <cstdint>
#include <span>
#include <string>
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

// A field line the parser owns: trailers arrive with the body, whose buffers the caller recycles.
struct OwnedField {
  std::string name;
  std::string value;
  bool operator==(const OwnedField&) const = default;
};

class Parser {
 public:
  enum class Kind { kRequest, kResponse };
  struct Step {
    size_t consumed = 0;
    bool headers_complete = false;  // the head ended inside this step
    bool message_complete = false;  // the whole message ended inside this step
    bool error = false;
    bool too_many_headers = false;  // header or trailer fields over the count or byte limit
    const char* reason = "";        // llhttp's or Sluice's reason when error
    // When error: the status to answer the client with. Requests: 431 (too_many_headers), 501
    // (a transfer coding other than chunked), 505 (a version other than HTTP/1.0 and 1.1), 400
    // for everything else. Responses: always 502. The connection must be closed in every case.
    int reply_status = 0;
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
  // Bounds the header section and the trailer section alike (each counted on its own).
  void set_max_headers(uint32_t n) { max_headers_ = n; }
  // Bytes of trailer field names and values one message may carry (the header section's byte
  // limit is the caller's, which sees the head in one buffer). Over it: too_many_headers.
  void set_max_trailer_bytes(uint32_t n) { max_trailer_bytes_ = n; }

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

  // The start line named an HTTP version other than 1.0 and 1.1 (HTTP/0.9, HTTP/1.2, HTTP/2.0):
  // the step that found it has error set and reply_status 505. Valid until the next message.
  bool unsupported_version() const { return unsupported_version_; }
  // Transfer codings of the message in order over all Transfer-Encoding field lines, each as
  // written (name and parameters, no surrounding white space), e.g. {"gzip", "chunked"}.
  // Valid like headers(). A response keeps them so they can be forwarded intact.
  const std::vector<Span>& transfer_codings() const { return transfer_codings_; }
  // A coding other than chunked is present. Requests: the step reports error with
  // reply_status 501 (400 when chunked is not the final coding). Responses: allowed (with
  // chunked last the body is chunked, otherwise it runs to end of stream: body_until_eof()).
  bool has_other_transfer_coding() const { return other_transfer_coding_; }
  // The trailer fields of a chunked message, owned by the parser, values without surrounding
  // white space. Complete in the step that reports message_complete; cleared when the next
  // message starts. Content-Length, Transfer-Encoding and Host are refused in trailers.
  const std::vector<OwnedField>& trailers() const { return trailers_; }

 private:
  // Where the start line checker is: the first line has three parts separated by single SPs.
  enum class StartLine : uint8_t { kBegin, kFirst, kSecond, kThird, kDone };

  static int on_message_begin(llhttp_t* p);
  static int on_url(llhttp_t* p, const char* at, size_t len);
  static int on_url_complete(llhttp_t* p);
  static int on_status(llhttp_t* p, const char* at, size_t len);
  static int on_version(llhttp_t* p, const char* at, size_t len);
  static int on_version_complete(llhttp_t* p);
  static int on_header_field(llhttp_t* p, const char* at, size_t len);
  static int on_header_field_complete(llhttp_t* p);
  static int on_header_value(llhttp_t* p, const char* at, size_t len);
  static int on_headers_complete(llhttp_t* p);
  static int on_chunk_header(llhttp_t* p);
  static int on_body(llhttp_t* p, const char* at, size_t len);
  static int on_message_complete(llhttp_t* p);
  static void extend(Span& span, const char* base, const char* at, size_t len);
  // Rejects what strict llhttp 8.1 still lets through in a head or trailer section: a bare LF
  // as a line end, obsolete line folding, and start lines that are not exactly three parts
  // (the status code exactly three digits, the reason phrase free of controls). Returns the
  // reason, or nullptr when the bytes are fine.
  const char* check_lines(const char* data, size_t len);
  const char* check_start_line(char c);
  // The checks of a complete head that need all its fields; returns the reason or nullptr.
  const char* check_head();
  const char* parse_transfer_codings(std::string_view value);
  // Records a failure found in a callback; returns the value that makes llhttp stop.
  int reject(const char* reason, int reply_status = 0);
  int append_trailer(std::string& to, const char* at, size_t len);
  Step error_step(const char* reason, int reply_status);

  llhttp_settings_t settings_{};
  llhttp_t parser_{};
  Kind kind_;
  uint32_t max_headers_;
  uint32_t max_trailer_bytes_ = 60 * 1024;
  bool skip_body_ = false;
  bool in_head_ = true;
  bool field_open_ = false;  // a field name started and its colon not reached yet
  bool too_many_headers_ = false;
  bool headers_complete_ = false;
  bool message_complete_ = false;
  bool head_pending_ = true;  // the next bytes belong to a head (or the empty lines before it)
  bool last_chunk_ = false;   // llhttp paused at the last chunk: the trailer section follows
  bool in_trailers_ = false;  // the next bytes belong to the trailer section
  char prev_line_byte_ = 0;   // the last checked byte of the previous run, for CRLF checks
  StartLine start_line_ = StartLine::kBegin;
  uint8_t status_digits_ = 0;
  bool version_seen_ = false;
  bool unsupported_version_ = false;
  bool other_transfer_coding_ = false;
  bool final_chunked_ = false;
  uint8_t version_length_ = 0;
  char version_[4] = {};                 // the version after "HTTP/", for telling 505 from 400
  const char* reject_reason_ = nullptr;  // why one of Sluice's callbacks stopped llhttp
  int reject_status_ = 0;
  const char* failed_ = nullptr;  // sticky error: the connection cannot be trusted any more
  int failed_status_ = 0;
  uint64_t content_length_ = 0;
  uint64_t trailer_bytes_ = 0;
  const char* base_ = nullptr;
  Span url_;
  Span status_;
  std::vector<HeaderSpan> headers_;
  std::vector<Span> transfer_codings_;
  std::vector<OwnedField> trailers_;
  std::vector<std::span<const char>> body_;
};

}  // namespace sluice::http
