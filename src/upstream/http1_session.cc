#include "sluice/upstream/http1_session.h"

#include <algorithm>

namespace sluice::upstream {

namespace {
constexpr size_t kInitialBufferSize = 32 * 1024;
// An upstream response head larger than this is refused (502), the connection closed.
constexpr size_t kMaxResponseHeadBytes = 96 * 1024;
constexpr uint32_t kMaxResponseHeaders = 1000;
}  // namespace

Http1Session::Http1Session(const asio::any_io_executor& ex, stats::ClusterStats* cstats,
                           stats::EndpointStats* estats, std::shared_ptr<CircuitBreaker> cb)
    : cluster_stats_(cstats),
      endpoint_stats_(estats),
      breaker_(std::move(cb)),
      stream_(tcp::socket(ex)),
      in_(kInitialBufferSize),
      parser_(http::Parser::Kind::kResponse, kMaxResponseHeaders) {
  cluster_stats_->connections_active.add(1);
  endpoint_stats_->connections_active.add(1);
  if (breaker_) breaker_->opened();
  out_.reserve(16);
}

Http1Session::~Http1Session() {
  cluster_stats_->connections_active.add(-1);
  endpoint_stats_->connections_active.add(-1);
  if (breaker_) breaker_->closed();
}

void Http1Session::queue_request_head(const http::UpstreamRequestInput& head, bool head_request) {
  http::build_upstream_request_head(head, head_parts_);
  out_.clear();
  out_.emplace_back(head_parts_.prefix.data(), head_parts_.prefix.size());
  for (auto v : head_parts_.middle) out_.emplace_back(v.data(), v.size());
  out_.emplace_back(head_parts_.suffix.data(), head_parts_.suffix.size());
  chunked_request_ = head.chunked_body;
  // The response to this request starts at the front of the buffer.
  head_request_ = head_request;
  parser_.set_skip_body(head_request);
  in_.compact();
  parse_pos_ = in_.begin();
  step_again_ = false;
  response_started_ = in_.size() > 0;
}

void Http1Session::queue_request_body(std::span<const std::span<const char>> body, bool last,
                                      std::span<const http::HeaderView> trailers) {
  encoder_.append(out_, body, chunked_request_, last, trailers);
}

awaitable<bool> Http1Session::write_request() {
  if (out_.empty()) co_return stream_.is_open();
  error_code ec;
  co_await stream_.async_write(out_, asio::redirect_error(use_awaitable, ec));
  out_.clear();
  co_return !ec;
}

ResponseStep Http1Session::parse_response() {
  ResponseStep out;
  if (parse_pos_ == in_.end() && !step_again_) {
    out.need_input = true;
    return out;
  }
  http::Parser::Step step = parser_.execute(in_.data(), parse_pos_, in_.end());
  if (step.error) {
    out.error = true;
    out.reason = step.reason;
    return out;
  }
  parse_pos_ += step.consumed;
  step_again_ = step.headers_complete && !step.message_complete;
  if (step.headers_complete) {
    const char* base = in_.data();
    const int status = parser_.status_code();
    out.head = true;
    facts_ = ResponseHeadFacts{};
    facts_.status = status;
    facts_.reason = parser_.status_text().in(base);
    facts_.interim = status < 200 && status != 101;
    facts_.length_known = parser_.has_content_length();
    fields_.clear();
    for (const auto& h : parser_.headers()) fields_.push_back({h.name.in(base), h.value.in(base)});
    // The codings other than a final "chunked" ("gzip" of "gzip, chunked") belong to the body.
    codings_.clear();
    if (!head_request_ && status != 204 && status != 304) {
      const auto& codings = parser_.transfer_codings();
      size_t n = codings.size();
      if (n > 0 && http::iequals(codings[n - 1].in(base), "chunked")) --n;
      for (size_t i = 0; i < n; ++i) {
        if (i > 0) codings_ += ", ";
        codings_.append(codings[i].in(base));
      }
    }
    facts_.transfer_codings = codings_;
  }
  if (step.message_complete) {
    out.complete = true;
    trailers_.clear();
    for (const auto& t : parser_.trailers()) trailers_.push_back({t.name, t.value});
  }
  return out;
}

void Http1Session::release_body() {
  in_.consume_to(parse_pos_);
  in_.compact();
  parse_pos_ = in_.begin();
}

awaitable<Session::ReadStatus> Http1Session::read_response() {
  if (in_.writable() == 0) {
    // A head must stay contiguous while it is parsed: grow up to the limit, then refuse.
    if (in_.capacity() >= kMaxResponseHeadBytes) co_return ReadStatus::kHeadTooLarge;
    in_.grow(std::min(kMaxResponseHeadBytes, in_.capacity() * 2));
  }
  error_code ec;
  const asio::mutable_buffer space(in_.write_ptr(), in_.writable());
  // The response's first bytes come only after the backend got the request: that read waits
  // without a recv first when the last one drained the socket. Later reads try at once, so a
  // body delimited by the close, or a head cut short by it, ends without a wait.
  const size_t n = response_started_
                       ? co_await stream_.async_read_some(space, asio::redirect_error(use_awaitable, ec))
                       : co_await stream_.async_read_next_message(space, asio::redirect_error(use_awaitable, ec));
  if (ec == asio::error::eof) co_return ReadStatus::kEof;
  if (ec) co_return ReadStatus::kError;
  in_.commit(n);
  response_started_ = true;
  co_return ReadStatus::kOk;
}

bool Http1Session::finish_at_eof() {
  // A body delimited by the end of the stream ends here; anything else was cut short.
  http::Parser::Step step = parser_.finish();
  stream_.close();
  return !step.error && step.message_complete;
}

ByteBuffer& Http1Session::leftover() {
  in_.consume_to(parse_pos_);
  return in_;
}

bool Http1Session::reusable() {
  in_.consume_to(parse_pos_);
  // llhttp's keep-alive answer is false for bodies delimited by the end of the stream; bytes
  // after the response mean the framing is lost.
  const bool ok = stream_.is_open() && parser_.keep_alive() && in_.size() == 0;
  if (ok) parser_.set_skip_body(false);
  return ok;
}

}  // namespace sluice::upstream
