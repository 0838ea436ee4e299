#include "sluice/http/parser.h"

namespace sluice::http {

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

Parser::Step Parser::execute(const char* buffer, size_t begin, size_t end) {
  base_ = buffer;
  body_.clear();
  headers_complete_ = false;
  message_complete_ = false;
  Step step;
  const char* start = buffer + begin;
  llhttp_errno_t err = llhttp_execute(&parser_, start, end - begin);
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
  if (self->kind_ == Kind::kResponse) {
    // 1 tells llhttp the message has no body (a response to HEAD); then pause at its end.
    return self->skip_body_ ? 1 : HPE_PAUSED;
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
