#include "sluice/http/parser.h"

#include <array>
#include <cstring>
#include <limits>

#if !LLHTTP_STRICT_MODE
#error "Parser relies on llhttp's strict mode (CMakeLists.txt): field names, CR without LF"
#endif

namespace sluice::http {
namespace {

constexpr uint64_t kMaxLength = std::numeric_limits<int64_t>::max();

// RFC 9110 §5.6.2 tchar. llhttp's loose mode also accepts a space in a field name, which lets
// "Host : x" through (RFC 9112 §5.1 requires a 400 for it).
// A 256-entry table: one load per byte instead of a strchr for every name character (the
// strchr version was ~1k instructions per small GET, bench/instructions).
constexpr std::array<bool, 256> kTchar = [] {
  std::array<bool, 256> t{};
  for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
  return t;
}();

// Bytes other than controls, SP and DEL (obs-text included): inside a start line's elements they
// move no state of check_start_line().
constexpr std::array<bool, 256> kVisible = [] {
  std::array<bool, 256> t{};
  for (int c = 0x21; c < 256; ++c) t[c] = c != 0x7f;
  return t;
}();

bool is_tchar(char c) { return kTchar[static_cast<unsigned char>(c)]; }

bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// RFC 3986 pchar, '/', '?' and the gen-delims an absolute-form or authority-form target needs.
// Strict llhttp already refuses controls, SP and bytes >= 0x80; this also refuses '#' (a
// fragment is never sent) and " < > \ ^ ` { | }, which no URI contains unencoded and which
// backends disagree about (one proxy's path is then another's).
bool is_target_char(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c)) return true;
  return c != 0 && std::strchr("-._~!$&'()*+,;=:@/?%[]", c) != nullptr;
}

bool is_ows(char c) { return c == ' ' || c == '\t'; }

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

// Calls `f` with every non-empty element of a comma-separated list (RFC 9110 §5.6.1: empty
// elements are allowed and ignored), trimmed.
template <typename F>
void for_each_element(std::string_view list, F&& f) {
  while (true) {
    size_t comma = list.find(',');
    std::string_view element = trim_ows(list.substr(0, comma));
    if (!element.empty()) f(element);
    if (comma == std::string_view::npos) return;
    list.remove_prefix(comma + 1);
  }
}

}  // namespace

Parser::Parser(Kind kind, uint32_t max_headers) : kind_(kind), max_headers_(max_headers) {
  llhttp_settings_init(&settings_);
  settings_.on_message_begin = &Parser::on_message_begin;
  settings_.on_url = &Parser::on_url;
  settings_.on_url_complete = &Parser::on_url_complete;
  settings_.on_status = &Parser::on_status;
  settings_.on_version = &Parser::on_version;
  settings_.on_version_complete = &Parser::on_version_complete;
  settings_.on_header_field = &Parser::on_header_field;
  settings_.on_header_field_complete = &Parser::on_header_field_complete;
  settings_.on_header_value = &Parser::on_header_value;
  settings_.on_headers_complete = &Parser::on_headers_complete;
  settings_.on_chunk_header = &Parser::on_chunk_header;
  settings_.on_body = &Parser::on_body;
  settings_.on_message_complete = &Parser::on_message_complete;
  // No lenient flags (rule 6), and llhttp is compiled with LLHTTP_STRICT_MODE (CMakeLists.txt):
  // llhttp rejects Content-Length together with Transfer-Encoding, duplicate Content-Length,
  // a request whose final coding is not chunked, CR without LF, and missing CRLF after chunks.
  llhttp_init(&parser_, kind == Kind::kRequest ? HTTP_REQUEST : HTTP_RESPONSE, &settings_);
  parser_.data = this;
  headers_.reserve(32);
  body_.reserve(8);
}

void Parser::extend(Span& span, const char* base, const char* at, size_t len) {
  if (span.length == 0) span.offset = static_cast<uint32_t>(at - base);
  span.length += static_cast<uint32_t>(len);
}

int Parser::reject(const char* reason, int reply_status) {
  reject_reason_ = reason;
  reject_status_ = reply_status;
  llhttp_set_error_reason(&parser_, reason);
  return HPE_USER;
}

Parser::Step Parser::error_step(const char* reason, int reply_status) {
  // Later execute() calls report it again: the connection cannot be trusted.
  failed_ = reason;
  if (kind_ == Kind::kResponse) {
    reply_status = 502;
  } else if (reply_status == 0) {
    reply_status = too_many_headers_ ? 431 : 400;
  }
  failed_status_ = reply_status;
  Step step;
  step.error = true;
  step.reason = reason;
  step.reply_status = reply_status;
  step.too_many_headers = too_many_headers_;
  return step;
}

const char* Parser::check_start_line(char c) {
  const bool request = kind_ == Kind::kRequest;
  switch (start_line_) {
    case StartLine::kBegin:
      // RFC 9112 §2.2: a server may ignore empty lines before a request line; a response has
      // none (a stray CRLF means the previous body was not what its framing said).
      if (c == '\r' || c == '\n') {
        if (!request) return "Empty line before status line";
        return nullptr;
      }
      start_line_ = StartLine::kFirst;
      return nullptr;
    case StartLine::kFirst:  // method or version
      if (c == ' ') {
        start_line_ = StartLine::kSecond;
        status_digits_ = 0;
      }
      return nullptr;
    case StartLine::kSecond:  // request-target or status code
      if (request) {
        if (c == ' ') start_line_ = StartLine::kThird;
        if (c == '\r' || c == '\n') return "Missing HTTP version in request line";
        return nullptr;
      }
      if (is_digit(c)) {
        if (++status_digits_ > 3) return "Status code is not three digits";
        return nullptr;
      }
      if (status_digits_ != 3) return "Status code is not three digits";
      // RFC 9112 §4 asks for "SP [reason-phrase]"; a status line that ends right after the code
      // is accepted like nginx and HAProxy do (the reason is not part of the framing).
      start_line_ = c == ' ' ? StartLine::kThird : StartLine::kDone;
      return nullptr;
    case StartLine::kThird:  // version or reason phrase
      if (c == '\r' || c == '\n') {
        start_line_ = StartLine::kDone;
        return nullptr;
      }
      if (request) return c == ' ' ? "Extra space in request line" : nullptr;
      if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f) {
        return "Invalid character in reason phrase";
      }
      return nullptr;
    case StartLine::kDone:
      return nullptr;
  }
  return nullptr;
}

const char* Parser::check_lines(const char* data, size_t len) {
  const bool trailer = in_trailers_;
  const char* bare_lf = trailer ? "Bare LF in trailer section (lines must end with CRLF)"
                                : "Bare LF in message head (lines must end with CRLF)";
  // llhttp joins a line that starts with white space to the previous header value.
  const char* folding = trailer ? "Obsolete line folding in trailer section"
                                : "Obsolete line folding in message head";
  auto before = [&](size_t i) { return i > 0 ? data[i - 1] : prev_line_byte_; };
  size_t i = 0;
  // The start line byte by byte (its grammar is small and strict)...
  for (; i < len && start_line_ != StartLine::kDone; ++i) {
    // ...except for runs of visible bytes inside the method, target, version and reason,
    // where the state machine does nothing: skipped with one table load each (312 fewer
    // instructions per small GET, bench/instructions). The status code's digits are counted.
    if (start_line_ != StartLine::kBegin && (kind_ == Kind::kRequest || start_line_ != StartLine::kSecond)) {
      while (i < len && kVisible[static_cast<unsigned char>(data[i])]) ++i;
      if (i == len) break;
    }
    const char c = data[i];
    if (c == '\n' && before(i) != '\r') return bare_lf;
    if ((c == ' ' || c == '\t') && before(i) == '\n') return folding;
    if (const char* reason = check_start_line(c)) return reason;
  }
  // ...the field lines only where lines end: every LF must follow a CR, and no line may start
  // with white space. memchr finds the line ends; checking every byte cost ~5k instructions per
  // small GET (bench/instructions).
  if (i < len && (data[i] == ' ' || data[i] == '\t') && before(i) == '\n') return folding;
  while (i < len) {
    const void* lf = std::memchr(data + i, '\n', len - i);
    if (!lf) break;
    const size_t n = static_cast<size_t>(static_cast<const char*>(lf) - data);
    if (before(n) != '\r') return bare_lf;
    if (n + 1 < len && (data[n + 1] == ' ' || data[n + 1] == '\t')) return folding;
    i = n + 1;
  }
  if (len > 0) prev_line_byte_ = data[len - 1];
  return nullptr;
}

Parser::Step Parser::execute(const char* buffer, size_t begin, size_t end) {
  base_ = buffer;
  body_.clear();
  headers_complete_ = false;
  message_complete_ = false;
  if (failed_) return error_step(failed_, failed_status_);
  size_t pos = begin;
  while (true) {
    // Every byte of a head or trailer section is checked line by line; body bytes are not.
    const bool checking = head_pending_ || in_trailers_;
    const char* start = buffer + pos;
    reject_reason_ = nullptr;
    reject_status_ = 0;
    llhttp_errno_t err = llhttp_execute(&parser_, start, end - pos);
    size_t used = end - pos;
    bool resumed_after_upgrade = false;
    if (err == HPE_PAUSED) {
      used = static_cast<size_t>(llhttp_get_error_pos(&parser_) - start);
      llhttp_resume(&parser_);
    } else if (err == HPE_PAUSED_UPGRADE) {
      // llhttp stops after a message that offered an upgrade (and at a 101). Whether to tunnel
      // is the caller's decision, taken from the head; until it switches the connection to a
      // tunnel, the bytes that follow are HTTP, so parsing goes on.
      used = static_cast<size_t>(llhttp_get_error_pos(&parser_) - start);
      llhttp_resume_after_upgrade(&parser_);
      resumed_after_upgrade = !message_complete_ && pos + used < end;
    } else if (err != HPE_OK) {
      if (reject_reason_) return error_step(reject_reason_, reject_status_);
      if (err == HPE_INVALID_VERSION && !version_seen_ && version_length_ == 3 &&
          is_digit(version_[0]) && version_[1] == '.' && is_digit(version_[2])) {
        // "HTTP/1.2", "HTTP/3.0": well-formed, just not a version llhttp knows.
        unsupported_version_ = true;
        return error_step("Unsupported HTTP version", 505);
      }
      const char* reason = llhttp_get_error_reason(&parser_);
      return error_step(reason ? reason : "invalid", 0);
    }
    if (checking) {
      if (const char* reason = check_lines(start, used)) return error_step(reason, 0);
    }
    pos += used;
    if (headers_complete_) head_pending_ = false;
    if (resumed_after_upgrade) continue;
    if (last_chunk_) {
      // Paused after the last chunk's size line: what follows up to the end of the message is
      // the trailer section, checked like a head.
      last_chunk_ = false;
      in_trailers_ = true;
      prev_line_byte_ = '\n';
      continue;
    }
    break;
  }
  if (message_complete_) {
    head_pending_ = true;
    in_trailers_ = false;
    prev_line_byte_ = 0;
    start_line_ = StartLine::kBegin;
  }
  Step step;
  step.consumed = pos - begin;
  step.headers_complete = headers_complete_;
  step.message_complete = message_complete_;
  return step;
}

Parser::Step Parser::finish() {
  body_.clear();
  message_complete_ = false;
  if (failed_) return error_step(failed_, failed_status_);
  llhttp_errno_t err = llhttp_finish(&parser_);
  if (err != HPE_OK && err != HPE_PAUSED) {
    const char* reason = llhttp_get_error_reason(&parser_);
    return error_step(reason ? reason : "invalid", 0);
  }
  Step step;
  step.message_complete = message_complete_;
  return step;
}

int Parser::on_message_begin(llhttp_t* p) {
  auto* self = static_cast<Parser*>(p->data);
  self->in_head_ = true;
  self->field_open_ = false;
  self->too_many_headers_ = false;
  self->content_length_ = 0;
  self->url_ = {};
  self->status_ = {};
  self->headers_.clear();
  self->version_seen_ = false;
  self->unsupported_version_ = false;
  self->version_length_ = 0;
  self->other_transfer_coding_ = false;
  self->final_chunked_ = false;
  self->transfer_codings_.clear();
  self->trailers_.clear();
  self->trailer_bytes_ = 0;
  return 0;
}

int Parser::on_url(llhttp_t* p, const char* at, size_t len) {
  auto* self = static_cast<Parser*>(p->data);
  extend(self->url_, self->base_, at, len);
  return 0;
}

int Parser::on_url_complete(llhttp_t* p) {
  auto* self = static_cast<Parser*>(p->data);
  // The head stays in one buffer until it is complete, so the whole target is at url_.
  std::string_view target = self->url_.in(self->base_);
  for (size_t i = 0; i < target.size(); ++i) {
    char c = target[i];
    if (!is_target_char(c)) return self->reject("Invalid character in request-target");
    if (c == '%' && (i + 2 >= target.size() || !is_hex(target[i + 1]) || !is_hex(target[i + 2]))) {
      return self->reject("Invalid percent-encoding in request-target");
    }
  }
  // RFC 9112 §3.2.4: the asterisk form is only for a server-wide OPTIONS (and the HTTP/2
  // preface "PRI * HTTP/2.0", which the version check then answers with 505).
  if (target == "*" && p->method != HTTP_OPTIONS && p->method != HTTP_PRI) {
    return self->reject("Asterisk-form request-target is only for OPTIONS");
  }
  return 0;
}

int Parser::on_status(llhttp_t* p, const char* at, size_t len) {
  auto* self = static_cast<Parser*>(p->data);
  extend(self->status_, self->base_, at, len);
  return 0;
}

int Parser::on_version(llhttp_t* p, const char* at, size_t len) {
  auto* self = static_cast<Parser*>(p->data);
  for (size_t i = 0; i < len; ++i) {
    if (self->version_length_ < sizeof(self->version_))
      self->version_[self->version_length_] = at[i];
    if (self->version_length_ < 255) ++self->version_length_;
  }
  return 0;
}

int Parser::on_version_complete(llhttp_t* p) {
  auto* self = static_cast<Parser*>(p->data);
  self->version_seen_ = true;
  // llhttp also knows 0.9 and 2.0; neither is HTTP/1 framing (RFC 9112 §2.3).
  if (p->http_major != 1 || p->http_minor > 1) {
    self->unsupported_version_ = true;
    return self->reject("Unsupported HTTP version", 505);
  }
  return 0;
}

int Parser::on_header_field(llhttp_t* p, const char* at, size_t len) {
  auto* self = static_cast<Parser*>(p->data);
  // No tchar check here: strict llhttp hands this callback only tchar bytes and refuses any
  // other in a field name itself ("Invalid header token"), in heads and trailers, including after
  // a partial match of the names it knows (Parser.EveryNonTcharInAFieldNameIsRefused, and an
  // exhaustive run of 76,800 cases against llhttp alone). The check cost ~380 instructions per
  // small GET (bench/instructions).
  if (!self->field_open_) {
    self->field_open_ = true;
    if (self->in_head_) {
      if (self->headers_.size() >= self->max_headers_) {
        self->too_many_headers_ = true;
        return self->reject("Too many header fields");
      }
      self->headers_.emplace_back();
    } else {
      if (self->trailers_.size() >= self->max_headers_) {
        self->too_many_headers_ = true;
        return self->reject("Too many trailer fields");
      }
      self->trailers_.emplace_back();
    }
  }
  if (self->in_head_) {
    extend(self->headers_.back().name, self->base_, at, len);
    return 0;
  }
  return self->append_trailer(self->trailers_.back().name, at, len);
}

int Parser::on_header_field_complete(llhttp_t* p) {
  auto* self = static_cast<Parser*>(p->data);
  // llhttp takes ": chunked" as a field with an empty name (RFC 9110 §5.1: 1*tchar).
  bool empty = !self->field_open_ || (self->in_head_ ? self->headers_.back().name.length == 0
                                                     : self->trailers_.back().name.empty());
  self->field_open_ = false;
  if (empty) return self->reject("Empty header name");
  if (!self->in_head_) {
    // RFC 9110 §6.5.1: framing and routing fields have no meaning in a trailer section, and a
    // backend that merges trailers into the head would see a second, conflicting one.
    const std::string& name = self->trailers_.back().name;
    if (iequals(name, "content-length") || iequals(name, "transfer-encoding") ||
        iequals(name, "host")) {
      return self->reject("Forbidden field in trailer section");
    }
  }
  return 0;
}

int Parser::on_header_value(llhttp_t* p, const char* at, size_t len) {
  auto* self = static_cast<Parser*>(p->data);
  if (self->in_head_) {
    extend(self->headers_.back().value, self->base_, at, len);
    return 0;
  }
  return self->append_trailer(self->trailers_.back().value, at, len);
}

int Parser::append_trailer(std::string& to, const char* at, size_t len) {
  // Trailers are copied (their bytes arrive in recycled body buffers), so they are bounded here.
  trailer_bytes_ += len;
  if (trailer_bytes_ > max_trailer_bytes_) {
    too_many_headers_ = true;
    return reject("Trailer section too large");
  }
  to.append(at, len);
  return 0;
}

const char* Parser::parse_transfer_codings(std::string_view value) {
  const char* error = nullptr;
  size_t found = 0;
  for_each_element(value, [&](std::string_view element) {
    ++found;
    size_t name_end = 0;
    while (name_end < element.size() && is_tchar(element[name_end])) ++name_end;
    std::string_view name = element.substr(0, name_end);
    std::string_view rest = trim_ows(element.substr(name_end));
    if (name.empty() || (!rest.empty() && rest.front() != ';')) {
      error = "Invalid Transfer-Encoding";
      return;
    }
    final_chunked_ = iequals(name, "chunked");
    // chunked has no parameters (RFC 9112 §7); llhttp would not take "chunked;x=1" as chunked.
    if (final_chunked_ && !rest.empty()) error = "Invalid Transfer-Encoding";
    if (!final_chunked_) other_transfer_coding_ = true;
    extend(transfer_codings_.emplace_back(), base_, element.data(), element.size());
  });
  if (found == 0) return "Empty Transfer-Encoding";
  return error;
}

const char* Parser::check_head() {
  const bool request = kind_ == Kind::kRequest;
  if (request && !version_seen_) return "Missing HTTP version in request line";
  bool close = false;
  bool keep_alive = false;
  for (auto& h : headers_) {
    // llhttp drops the white space before a value but keeps the white space after it; a field
    // value has neither (RFC 9110 §5.5), or "x-canary: 1 " would not match exact "1".
    while (h.value.length > 0 && is_ows(base_[h.value.offset + h.value.length - 1]))
      --h.value.length;
    std::string_view name = h.name.in(base_);
    if (iequals(name, "connection")) {
      // llhttp misses "close\t" and a few other spellings; Sluice decides from the tokens.
      for_each_element(h.value.in(base_), [&](std::string_view token) {
        if (iequals(token, "close")) close = true;
        if (iequals(token, "keep-alive")) keep_alive = true;
      });
    } else if (iequals(name, "transfer-encoding")) {
      if (const char* reason = parse_transfer_codings(h.value.in(base_))) return reason;
    }
  }
  // llhttp_should_keep_alive() and llhttp's own "no data after close" check read these flags.
  parser_.flags &= static_cast<uint16_t>(~(F_CONNECTION_CLOSE | F_CONNECTION_KEEP_ALIVE));
  if (close) parser_.flags |= F_CONNECTION_CLOSE;
  if (keep_alive) parser_.flags |= F_CONNECTION_KEEP_ALIVE;

  const bool te = !transfer_codings_.empty();
  if (te != ((parser_.flags & F_TRANSFER_ENCODING) != 0) || final_chunked_ != chunked()) {
    return "Ambiguous Transfer-Encoding";  // Sluice and llhttp must agree on the framing
  }
  // RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 means the framing is faulty.
  if (te && parser_.http_minor == 0) return "Transfer-Encoding in an HTTP/1.0 message";
  // Backends keep lengths in signed 64 bits (Java's long, off_t): beyond it they disagree.
  if (has_content_length() && parser_.content_length > kMaxLength) return "Content-Length overflow";
  if (!request && (parser_.status_code < 100 || parser_.status_code > 599)) {
    return "Invalid status code";  // RFC 9110 §15
  }
  return nullptr;
}

int Parser::on_headers_complete(llhttp_t* p) {
  auto* self = static_cast<Parser*>(p->data);
  self->in_head_ = false;
  if (const char* reason = self->check_head()) return self->reject(reason);
  if (self->kind_ == Kind::kRequest && !self->transfer_codings_.empty()) {
    // RFC 9112 §6.3: without chunked last the length of a request cannot be known (400);
    // §6.1: a coding the server does not implement gets 501. Sluice implements only chunked.
    if (!self->final_chunked_) return self->reject("Transfer-Encoding without final chunked");
    if (self->other_transfer_coding_) return self->reject("Unsupported transfer coding", 501);
  }
  self->headers_complete_ = true;
  self->content_length_ = p->content_length;
  if (self->kind_ == Kind::kResponse) {
    // RFC 9112 §6.3: a response to HEAD and every 1xx, 204 and 304 ends with its head,
    // whatever Content-Length or Transfer-Encoding say (llhttp would wait for the body).
    int status = p->status_code;
    bool no_body = self->skip_body_ || status < 200 || status == 204 || status == 304;
    // 1 tells llhttp the message has no body; then it pauses at the message's end.
    return no_body ? 1 : HPE_PAUSED;
  }
  return HPE_PAUSED;
}

int Parser::on_chunk_header(llhttp_t* p) {
  auto* self = static_cast<Parser*>(p->data);
  if (p->content_length > kMaxLength) return self->reject("Chunk size overflow");
  if (p->content_length != 0) return 0;
  // The last chunk: pause so that execute() checks the trailer section's lines.
  self->last_chunk_ = true;
  return HPE_PAUSED;
}

int Parser::on_body(llhttp_t* p, const char* at, size_t len) {
  auto* self = static_cast<Parser*>(p->data);
  self->body_.emplace_back(at, len);
  return 0;
}

int Parser::on_message_complete(llhttp_t* p) {
  auto* self = static_cast<Parser*>(p->data);
  for (auto& t : self->trailers_) {
    while (!t.value.empty() && is_ows(t.value.back())) t.value.pop_back();
  }
  self->message_complete_ = true;
  return HPE_PAUSED;
}

}  // namespace sluice::http
