#include "sluice/http/parser.h"

#include <cstring>

namespace sluice::http {
namespace {

// RFC 9110 §5.6.2 tchar. llhttp's loose mode also accepts a space in a field name, which lets
// "Host : x" through (RFC 9112 §5.1 requires a 400 for it).
bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return c != 0 && std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

}  // namespace

Parser::Parser(Kind kind, uint32_t max_headers) : kind_(kind), max_headers_(max_headers) {
  llhttp_settings_init(&settings_);
  settings_.on_message_begin = &Parser::on_message_begin;
  settings_.on_url = &Parser::on_url;
  settings_.on_status = &Parser::on_status;
  settings_.on_header_field = &Parser::on_header_field;
  settings_.on_header_value = &Parser::on_header_value;
  settings_.on_headers_complete = &Parser::on_headers_complete;
  settings_.on_body = &Parser::on_body;
  settings_.on_message_complete = &Parser::on_message_complete;
  // No lenient flags (rule 6): llhttp rejects ambiguous framing such as Content-Length together
  // with Transfer-Encoding, obsolete line folding, and invalid header characters.
  llhttp_init(&parser_, kind == Kind::kRequest ? HTTP_REQUEST : HTTP_RESPONSE, &settings_);
  parser_.data = this;
  headers_.reserve(32);
  body_.reserve(8);
}

void Parser::extend(Span& span, const char* base, const char* at, size_t len) {
  if (span.length == 0) span.offset = static_cast<uint32_t>(at - base);
  span.length += static_cast<uint32_t>(len);
}

void Parser::fail(const char* reason) {
  failed_ = reason;  // later execute() calls report it again: the connection cannot be trusted
}

const char* Parser::check_head_bytes(const char* data, size_t len) {
  for (size_t i = 0; i < len; ++i) {
    char c = data[i];
    char before = i > 0 ? data[i - 1] : prev_head_byte_;
    if (c == '\n' && before != '\r') return "Bare LF in message head (lines must end with CRLF)";
    // llhttp joins a line that starts with white space to the previous header value.
    if ((c == ' ' || c == '\t') && before == '\n') return "Obsolete line folding in message head";
  }
  if (len > 0) prev_head_byte_ = data[len - 1];
  return nullptr;
}

Parser::Step Parser::execute(const char* buffer, size_t begin, size_t end) {
  base_ = buffer;
  body_.clear();
  headers_complete_ = false;
  message_complete_ = false;
  Step step;
  if (failed_) {
    step.error = true;
    step.reason = failed_;
    return step;
  }
  const bool in_head = head_pending_;
  const char* start = buffer + begin;
  llhttp_errno_t err = llhttp_execute(&parser_, start, end - begin);
  // llhttp stops after a message that offered an upgrade (and at a 101). Whether to tunnel is
  // the caller's decision, taken from the head; until it switches the connection to a tunnel,
  // the bytes that follow are HTTP, so parsing simply goes on.
  while (err == HPE_PAUSED_UPGRADE) {
    const char* at = llhttp_get_error_pos(&parser_);
    llhttp_resume_after_upgrade(&parser_);
    if (message_complete_) {  // report the end of this message; the next call goes on
      Step done;
      done.consumed = static_cast<size_t>(at - start);
      done.headers_complete = headers_complete_;
      done.message_complete = true;
      head_pending_ = true;
      prev_head_byte_ = 0;
      return done;
    }
    err = llhttp_execute(&parser_, at, static_cast<size_t>(buffer + end - at));
  }
  if (err == HPE_OK) {
    step.consumed = end - begin;
  } else if (err == HPE_PAUSED) {
    step.consumed = static_cast<size_t>(llhttp_get_error_pos(&parser_) - start);
    llhttp_resume(&parser_);
  } else {
    step.error = true;
    step.too_many_headers = too_many_headers_;
    step.reason = llhttp_get_error_reason(&parser_) ? llhttp_get_error_reason(&parser_) : "invalid";
  }
  if (!step.error && in_head) {
    // Everything consumed in this step up to the end of the head (where llhttp pauses) is head.
    if (const char* reason = check_head_bytes(start, step.consumed)) {
      fail(reason);
      Step bad;
      bad.error = true;
      bad.reason = reason;
      return bad;
    }
  }
  if (headers_complete_) head_pending_ = false;
  if (message_complete_) {
    head_pending_ = true;
    prev_head_byte_ = 0;
  }
  step.headers_complete = headers_complete_;
  step.message_complete = message_complete_;
  return step;
}

Parser::Step Parser::finish() {
  body_.clear();
  message_complete_ = false;
  Step step;
  llhttp_errno_t err = llhttp_finish(&parser_);
  if (err != HPE_OK && err != HPE_PAUSED) {
    step.error = true;
    step.reason = llhttp_get_error_reason(&parser_) ? llhttp_get_error_reason(&parser_) : "invalid";
  }
  step.message_complete = message_complete_;
  return step;
}

int Parser::on_message_begin(llhttp_t* p) {
  auto* self = static_cast<Parser*>(p->data);
  self->in_head_ = true;
  self->last_was_value_ = false;
  self->too_many_headers_ = false;
  self->content_length_ = 0;
  self->url_ = {};
  self->status_ = {};
  self->headers_.clear();
  return 0;
}

int Parser::on_url(llhttp_t* p, const char* at, size_t len) {
  auto* self = static_cast<Parser*>(p->data);
  extend(self->url_, self->base_, at, len);
  return 0;
}

int Parser::on_status(llhttp_t* p, const char* at, size_t len) {
  auto* self = static_cast<Parser*>(p->data);
  extend(self->status_, self->base_, at, len);
  return 0;
}

int Parser::on_header_field(llhttp_t* p, const char* at, size_t len) {
  auto* self = static_cast<Parser*>(p->data);
  for (size_t i = 0; i < len; ++i) {
    if (!is_tchar(at[i])) {
      llhttp_set_error_reason(p, "Invalid header token");
      return HPE_USER;
    }
  }
  if (!self->in_head_) return 0;  // trailers are not forwarded
  if (self->headers_.empty() || self->last_was_value_) {
    if (self->headers_.size() >= self->max_headers_) {
      self->too_many_headers_ = true;
      return HPE_USER;
    }
    self->headers_.emplace_back();
    self->last_was_value_ = false;
  }
  extend(self->headers_.back().name, self->base_, at, len);
  return 0;
}

int Parser::on_header_value(llhttp_t* p, const char* at, size_t len) {
  auto* self = static_cast<Parser*>(p->data);
  if (!self->in_head_) return 0;
  self->last_was_value_ = true;
  extend(self->headers_.back().value, self->base_, at, len);
  return 0;
}

int Parser::on_headers_complete(llhttp_t* p) {
  auto* self = static_cast<Parser*>(p->data);
  self->in_head_ = false;
  self->headers_complete_ = true;
  self->content_length_ = p->content_length;
  // llhttp drops the white space before a value but keeps the white space after it; a field
  // value has neither (RFC 9110 §5.5), or "x-canary: 1 " would not match exact "1".
  for (auto& h : self->headers_) {
    while (h.value.length > 0) {
      char last = self->base_[h.value.offset + h.value.length - 1];
      if (last != ' ' && last != '\t') break;
      --h.value.length;
    }
  }
  if (self->kind_ == Kind::kResponse) {
    // 1 tells llhttp the message has no body whatever its Content-Length says: a response to
    // HEAD, 1xx, 204 and 304 (RFC 9112 §6.3). Pausing here instead would leave llhttp waiting
    // for the body bytes a 304 with Content-Length announces but never sends.
    const int status = p->status_code;
    if (self->skip_body_ || status < 200 || status == 204 || status == 304) return 1;
    return HPE_PAUSED;
  }
  return HPE_PAUSED;
}

int Parser::on_body(llhttp_t* p, const char* at, size_t len) {
  auto* self = static_cast<Parser*>(p->data);
  self->body_.emplace_back(at, len);
  return 0;
}

int Parser::on_message_complete(llhttp_t* p) {
  auto* self = static_cast<Parser*>(p->data);
  self->message_complete_ = true;
  return HPE_PAUSED;
}

}  // namespace sluice::http
