#include "parser_drive.h"

#include <cctype>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string_view>

#include "fuzz_check.h"
#include "sluice/http/request_view.h"

namespace sluice::fuzz {
namespace {

using Kind = http::Parser::Kind;

// RFC 9110 §5.6.2: a field name is a token.
bool is_token_byte(unsigned char c) {
  static constexpr std::string_view kSymbols = "!#$%&'*+-.^_`|~";
  return std::isalnum(c) != 0 || (c != 0 && kSymbols.find(static_cast<char>(c)) != std::string_view::npos);
}

void check_span(http::Span span, size_t first, size_t end, const char* what) {
  if (span.length == 0) return;  // an empty span keeps offset 0 (nothing was seen)
  FUZZ_CHECK(span.offset >= first && size_t{span.offset} + span.length <= end, what);
}

// Bytes that would change the framing of the head Sluice writes upstream or downstream if they
// were forwarded inside a field value, a target or a reason phrase.
bool has_line_break_or_nul(std::string_view s) {
  return s.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos;
}

// What every caller relies on once the parser reports headers_complete: spans inside the bytes
// of this message, fields that can be forwarded as they are, and framing that cannot be read in
// two ways (RFC 9112 §6.3; DESIGN.md rule 6).
void check_head(const http::Parser& p, const char* base, size_t first, size_t end,
                const DriveOptions& o) {
  // HTTP/0.9 request lines and "HTTP/2.0" in HTTP/1 syntax are other protocols: two parsers that
  // disagree on them are a smuggling vector, and Sluice forwards as HTTP/1.1.
  FUZZ_CHECK(p.http_major() == 1 && (p.http_minor() == 0 || p.http_minor() == 1),
             "a version other than HTTP/1.0 or HTTP/1.1 accepted");
  if (o.kind == Kind::kRequest) {
    check_span(p.url(), first, end, "request target outside the bytes of its message");
    std::string_view target = p.url().in(base);
    FUZZ_CHECK(!target.empty(), "request without a target");
    FUZZ_CHECK(!has_line_break_or_nul(target) && target.find_first_of(" \t") == std::string_view::npos,
               "white space, CR, LF or NUL in the request target");
  } else {
    check_span(p.status_text(), first, end, "reason phrase outside the bytes of its message");
    FUZZ_CHECK(p.status_code() >= 100 && p.status_code() <= 999, "status code out of range");
    FUZZ_CHECK(!has_line_break_or_nul(p.status_text().in(base)), "CR, LF or NUL in the reason phrase");
  }
  FUZZ_CHECK(p.headers().size() <= o.max_headers, "more header fields than the limit");
  int content_lengths = 0;
  int transfer_encodings = 0;
  for (const auto& h : p.headers()) {
    check_span(h.name, first, end, "field name outside the bytes of its message");
    check_span(h.value, first, end, "field value outside the bytes of its message");
    std::string_view name = h.name.in(base);
    std::string_view value = h.value.in(base);
    FUZZ_CHECK(!name.empty(), "empty field name");
    for (unsigned char c : name) FUZZ_CHECK(is_token_byte(c), "field name is not a token");
    FUZZ_CHECK(!has_line_break_or_nul(value), "CR, LF or NUL in a field value");
    FUZZ_CHECK(value.empty() || (value.front() != ' ' && value.front() != '\t' &&
                                 value.back() != ' ' && value.back() != '\t'),
               "white space around a field value");
    if (http::iequals(name, "content-length")) ++content_lengths;
    if (http::iequals(name, "transfer-encoding")) ++transfer_encodings;
  }
  FUZZ_CHECK(content_lengths <= 1, "more than one Content-Length field accepted");
  FUZZ_CHECK(content_lengths == 0 || transfer_encodings == 0,
             "Content-Length together with Transfer-Encoding accepted");
  FUZZ_CHECK(p.has_content_length() == (content_lengths == 1),
             "has_content_length() disagrees with the fields");
  FUZZ_CHECK(!p.chunked() || transfer_encodings > 0, "chunked without Transfer-Encoding");
  if (o.kind == Kind::kRequest) {
    // RFC 9112 §6.3 item 4: a request whose final coding is not chunked has no knowable length.
    FUZZ_CHECK(transfer_encodings == 0 || p.chunked(), "request with a non-chunked Transfer-Encoding accepted");
  }
}

// RFC 9110 §6.4.1: a response to HEAD, a 1xx, 204 or 304 response has no body, whatever its
// Content-Length or Transfer-Encoding say; its head is its end.
bool has_no_body(const http::Parser& p, const DriveOptions& o, bool head_request) {
  const int status = p.status_code();
  return o.kind == Kind::kResponse && (head_request || status < 200 || status == 204 || status == 304);
}

// At message_complete: the body matches the framing the head announced.
void check_framing(const http::Parser& p, const ParsedMessage& m, const DriveOptions& o, bool head_request) {
  const bool response = o.kind == Kind::kResponse;
  if (has_no_body(p, o, head_request)) {
    FUZZ_CHECK(m.body.empty(), "body in a response that has none (HEAD, 1xx, 204, 304)");
  } else if (!response && p.method() == HTTP_CONNECT) {
    // RFC 9110 §9.3.6: what follows the head of a CONNECT is the tunnel, whatever the framing.
    FUZZ_CHECK(m.body.empty(), "body in a CONNECT request");
  } else if (p.chunked()) {
    // The decoded size is whatever the chunks said; the spans were checked as they came.
  } else if (p.has_content_length()) {
    FUZZ_CHECK(m.body.size() == p.content_length(), "body length differs from Content-Length");
  } else if (!response) {
    FUZZ_CHECK(m.body.empty(), "request body without Content-Length or chunked");
  }
}

std::string render_head(const http::Parser& p, const char* base, Kind kind) {
  std::string out;
  if (kind == Kind::kRequest) {
    out += llhttp_method_name(p.method());
    out += ' ';
    out += p.url().in(base);
  } else {
    out += std::to_string(p.status_code());
    out += ' ';
    out += p.status_text().in(base);
  }
  out += " HTTP/" + std::to_string(p.http_major()) + "." + std::to_string(p.http_minor());
  out += " chunked=" + std::to_string(p.chunked());
  out += " content_length=" + (p.has_content_length() ? std::to_string(p.content_length()) : "none");
  out += " keep_alive=" + std::to_string(p.keep_alive());
  for (const auto& h : p.headers()) {
    out += '\n';
    out += h.name.in(base);
    out += ": ";
    out += h.value.in(base);
  }
  return out;
}

void append_escaped(std::string& out, std::string_view s) {
  for (unsigned char c : s) {
    if (c == '\n') {
      out += "\n    ";
    } else if (c < 0x20 || c >= 0x7f || c == '\\') {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    } else {
      out += static_cast<char>(c);
    }
  }
}

}  // namespace

std::string ParseOutcome::describe() const {
  std::string out;
  for (size_t i = 0; i < messages.size(); ++i) {
    out += "  message " + std::to_string(i) + ":\n    ";
    append_escaped(out, messages[i].head);
    out += "\n    body (" + std::to_string(messages[i].body.size()) + " bytes): ";
    append_escaped(out, messages[i].body);
    out += '\n';
  }
  out += error ? "  then an error\n" : "  then no error\n";
  return out;
}

ParseOutcome drive(const char* data, size_t size, const std::vector<size_t>& arrivals,
                   const DriveOptions& o) {
  http::Parser parser(o.kind, o.max_headers);
  ParseOutcome out;
  ParsedMessage current;
  size_t pos = 0;            // parse position
  size_t message_start = 0;  // where the bytes of the current message (and blank lines before it) start
  bool head_done = false;
  bool head_request = false;
  bool step_again = false;  // the last step ended a head: step once more even with no new bytes
  bool must_end = false;    // the last step ended the head of a message that has no body
  auto start_message = [&] {
    current = {};
    head_done = false;
    message_start = pos;
    size_t index = out.messages.size();
    head_request = o.kind == Kind::kResponse && index < 32 && ((o.head_mask >> index) & 1) != 0;
    parser.set_skip_body(head_request);
  };
  start_message();

  // Every step consumes a byte, ends a head or a message (at most twice per message), or waits
  // for the next arrival: more steps than this is a parser that stopped making progress.
  const size_t max_steps = 4 * size + 2 * arrivals.size() + 16;
  size_t steps = 0;
  std::unique_ptr<char[]> moved;
  const char* base = data;

  for (size_t avail : arrivals) {
    FUZZ_CHECK(avail >= pos && avail <= size, "bad arrivals (fuzz target bug)");
    if (o.move_buffer) {
      auto copy = std::make_unique<char[]>(avail);
      if (avail > 0) std::memcpy(copy.get(), data, avail);
      moved = std::move(copy);  // frees the previous buffer
      base = moved.get();
    }
    while (pos < avail || step_again) {
      FUZZ_CHECK(++steps <= max_steps, "the parser keeps stepping without progress");
      http::Parser::Step st = parser.execute(base, pos, avail);
      if (must_end) {
        // Otherwise the bytes of the next response are read as this one's body, or the
        // connection waits for a body that never comes.
        FUZZ_CHECK(!st.error && st.message_complete && st.consumed == 0,
                   "a response without a body (HEAD, 1xx, 204, 304) does not end with its head");
        must_end = false;
      }
      if (st.error) {
        FUZZ_CHECK(!st.headers_complete && !st.message_complete, "a step reports an error and an event");
        FUZZ_CHECK(parser.execute(base, pos, avail).error, "the error is not sticky");
        out.error = true;
        return out;
      }
      FUZZ_CHECK(st.consumed <= avail - pos, "consumed more bytes than it was given");
      const size_t end = pos + st.consumed;
      const char* body_cursor = base + pos;
      for (const auto& chunk : parser.body()) {
        FUZZ_CHECK(head_done, "body bytes before headers_complete");
        FUZZ_CHECK(chunk.data() >= body_cursor && chunk.data() + chunk.size() <= base + end,
                   "body bytes out of order or outside the bytes consumed by this step");
        body_cursor = chunk.data() + chunk.size();
        current.body.append(chunk.data(), chunk.size());
      }
      if (st.headers_complete) {
        FUZZ_CHECK(!head_done, "headers_complete twice for one message");
        check_head(parser, base, message_start, end, o);
        current.head = render_head(parser, base, o.kind);
        head_done = true;
      }
      step_again = st.headers_complete && !st.message_complete;
      must_end = step_again && has_no_body(parser, o, head_request);
      if (st.message_complete) {
        FUZZ_CHECK(head_done, "message_complete without headers_complete");
        check_framing(parser, current, o, head_request);
        out.messages.push_back(std::move(current));
        pos = end;
        start_message();
        continue;
      }
      if (st.consumed == 0 && !st.headers_complete) {
        FUZZ_CHECK(pos == avail, "execute() stalled: it consumed nothing, reported nothing, and bytes remain");
        break;  // waits for more bytes
      }
      pos = end;
    }
  }

  if (o.finish_at_end && head_done) {
    http::Parser::Step st = parser.finish();
    if (st.error) {
      FUZZ_CHECK(!st.message_complete, "finish() reports an error and a complete message");
      out.error = true;
      return out;
    }
    if (st.message_complete) {
      FUZZ_CHECK(parser.body_until_eof() && !head_request,
                 "finish() completed a message whose end is not the end of the stream");
      FUZZ_CHECK(parser.body().empty(), "finish() reported body bytes");
      check_framing(parser, current, o, head_request);
      out.messages.push_back(std::move(current));
    }
  }
  return out;
}

void expect_same(const ParseOutcome& reference, const ParseOutcome& other, const char* how) {
  if (reference == other) return;
  std::fprintf(stderr, "parsed differently when fed %s\nall at once:\n%s%s:\n%s", how,
               reference.describe().c_str(), how, other.describe().c_str());
  FUZZ_CHECK(false, "the way the bytes arrive changed what was parsed");
}

void drive_three_ways(const char* data, size_t size, size_t split, const DriveOptions& options) {
  ParseOutcome whole = drive(data, size, {size}, options);

  DriveOptions moving = options;
  moving.move_buffer = true;
  expect_same(whole, drive(data, size, {split, size}, moving), "in two reads");

  std::vector<size_t> bytes;
  bytes.reserve(size);
  for (size_t i = 1; i <= size; ++i) bytes.push_back(i);
  expect_same(whole, drive(data, size, bytes, options), "one byte per read");
}

}  // namespace sluice::fuzz
