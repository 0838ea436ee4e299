#include "sluice/upstream/http2_stream_session.h"

#include <charconv>
#include <cstring>
#include <utility>

namespace sluice::upstream {

namespace {

// The bounds of a response head (and of trailers), as for HTTP/1 responses: beyond them the
// stream is reset and the request fails as an invalid response.
constexpr size_t kMaxResponseHeadBytes = 96 * 1024;
constexpr size_t kMaxResponseFields = 1000;
// What a spare Http2StreamBuffers may keep: more is freed with the stream that needed it, so
// spares stay small whatever one request carried.
constexpr size_t kSpareBodyBytes = 64 * 1024;
constexpr size_t kSpareHeadBytes = 16 * 1024;

nghttp2_nv make_nv(std::string_view name, std::string_view value,
                   uint8_t flags = NGHTTP2_NV_FLAG_NONE) {
  // Names are lower-case already; nghttp2 copies both when the request is submitted.
  return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                    reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(),
                    value.size(), flags};
}

// RFC 9113 §8.2.2: fields HTTP/2 forbids besides the hop-by-hop ones forward_request_fields
// drops already (an h2c upgrade's HTTP2-Settings is connection-specific too).
bool connection_specific(std::string_view lower_name) { return lower_name == "http2-settings"; }

bool te_asks_for_trailers(std::span<const http::HeaderView> headers) {
  for (const auto& h : headers) {
    if (!http::iequals(h.name, "te")) continue;
    std::string_view v = h.value;
    while (!v.empty()) {
      const size_t comma = v.find(',');
      std::string_view token = v.substr(0, comma);
      while (!token.empty() && (token.front() == ' ' || token.front() == '\t'))
        token.remove_prefix(1);
      token = token.substr(0, token.find(';'));
      while (!token.empty() && (token.back() == ' ' || token.back() == '\t'))
        token.remove_suffix(1);
      if (http::iequals(token, "trailers")) return true;
      if (comma == std::string_view::npos) break;
      v.remove_prefix(comma + 1);
    }
  }
  return false;
}

bool is_grpc(std::span<const http::HeaderView> headers) {
  for (const auto& h : headers) {
    if (http::iequals(h.name, "content-type")) {
      return h.value.size() >= 16 && http::iequals(h.value.substr(0, 16), "application/grpc");
    }
  }
  return false;
}

ssize_t read_body_cb(nghttp2_session* session, int32_t id, uint8_t* buf, size_t len,
                     uint32_t* flags, nghttp2_data_source*, void*) {
  auto* s = static_cast<Http2StreamSession*>(nghttp2_session_get_stream_user_data(session, id));
  if (!s) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  // its session is gone: reset the stream
  return s->read_body(buf, len, flags);
}

}  // namespace

bool Http2StreamBuffers::clear_for_reuse() {
  if (large_head || req_body.capacity() > kSpareBodyBytes) return false;
  req_body.clear();
  req_trailers.clear();
  fields.clear();
  trailer_fields.clear();
  field_views.clear();
  trailer_views.clear();
  chunks.clear();
  body_spans.clear();
  return true;
}

Http2StreamSession::Http2StreamSession(std::shared_ptr<Http2Connection> conn)
    : conn_(std::move(conn)),
      buf_(conn_->take_buffers()),
      waker_(buf_->waker),
      req_body_(buf_->req_body),
      req_trailers_(buf_->req_trailers),
      fields_(buf_->fields),
      trailer_fields_(buf_->trailer_fields),
      field_views_(buf_->field_views),
      trailer_views_(buf_->trailer_views),
      chunks_(buf_->chunks),
      body_spans_(buf_->body_spans) {}

Http2StreamSession::~Http2StreamSession() {
  conn_->stream_done(this, unconsumed_, id_ > 0 && !closed_ && !failed_);
  // No wait is pending (its coroutine would hold this session), so the waker has no handler
  // queued either; a set with one would be freed (the timer's destructor cancels it).
  if (waiting_ == 0) conn_->give_back(std::move(buf_));
}

void Http2StreamSession::cancel(error_code&) {
  cancelled_ = true;
  wake();
}

void Http2StreamSession::queue_request_head(const http::UpstreamRequestInput& in,
                                            bool head_request) {
  head_request_ = head_request;
  Http2Connection::RequestScratch& scratch = conn_->request_scratch();
  // The connection's scratch: streams submit their heads one at a time, and nghttp2 copies
  // the fields it is given.
  std::string& names = scratch.names;
  std::string& path = scratch.path;
  std::vector<nghttp2_nv>& nva = scratch.nva;
  path.assign(in.path);
  if (!in.query.empty()) path.append("?").append(in.query);
  // Lower-cased names are copied once into names, sized up front so the views stay put.
  size_t name_bytes = 0;
  for (const auto& h : in.headers) name_bytes += h.name.size();
  names.clear();
  names.reserve(name_bytes);
  nva.clear();
  nva.push_back(make_nv(":method", in.method));
  nva.push_back(make_nv(":scheme", conn_->scheme()));
  nva.push_back(make_nv(":authority", in.host));
  nva.push_back(make_nv(":path", path));
  http::forward_request_fields(
      in, scratch.forward,
      [&names, &nva](const http::HeaderView& h) {
        const size_t at = names.size();
        for (char c : h.name)
          names.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c);
        std::string_view name(names.data() + at, h.name.size());
        if (connection_specific(name)) return;
        nva.push_back(make_nv(name, h.value));
      },
      [&nva](const http::WrittenField& field, std::string_view value) {
        // Empty only for Sluice's own requests (a health probe has no client address).
        if (value.empty()) return;
        // A generated request id never repeats: a never-indexed literal keeps it out of the
        // HPACK table, where it would push out the fields that do repeat (callgrind,
        // bench/instructions --grpc).
        const bool unique = field.name == http::written::kRequestId.name;
        nva.push_back(
            make_nv(field.name, value, unique ? NGHTTP2_NV_FLAG_NO_INDEX : NGHTTP2_NV_FLAG_NONE));
      });
  // The one `te` HTTP/2 allows; gRPC servers refuse a request without it.
  if (te_asks_for_trailers(in.headers) || is_grpc(in.headers))
    nva.push_back(make_nv("te", "trailers"));

  nghttp2_data_provider provider{};
  provider.read_callback = read_body_cb;
  nghttp2_session* session = conn_->session();
  const int32_t id = nghttp2_submit_request(session, nullptr, nva.data(), nva.size(),
                                            in.has_body ? &provider : nullptr, this);
  if (id < 0) {
    failed_ = true;
    return;
  }
  id_ = id;
  req_last_ = !in.has_body;
}

void Http2StreamSession::queue_request_body(std::span<const std::span<const char>> body, bool last,
                                            std::span<const http::HeaderView> trailers) {
  if (req_sent_ == req_body_.size()) {
    req_body_.clear();
    req_sent_ = 0;
  }
  for (const auto& part : body) req_body_.append(part.data(), part.size());
  if (last) {
    req_last_ = true;
    for (const auto& t : trailers) {
      auto& [name, value] = req_trailers_.add();
      name.assign(t.name);
      for (char& c : name) c = c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
      if (http::is_hop_by_hop(name) || connection_specific(name)) {
        req_trailers_.pop();
        continue;
      }
      value.assign(t.value);
    }
  }
}

ssize_t Http2StreamSession::read_body(uint8_t* buf, size_t len, uint32_t* flags) {
  const size_t left = req_body_.size() - req_sent_;
  const size_t n = std::min(len, left);
  if (n > 0) {
    std::memcpy(buf, req_body_.data() + req_sent_, n);
    req_sent_ += n;
  }
  if (req_sent_ == req_body_.size()) {
    if (req_last_) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      if (!req_trailers_.empty()) {
        std::vector<nghttp2_nv> nv;
        nv.reserve(req_trailers_.size());
        for (const auto& [k, v] : req_trailers_) nv.push_back(make_nv(k, v));
        if (nghttp2_submit_trailer(conn_->session(), id_, nv.data(), nv.size()) == 0) {
          *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        }
      }
    } else if (n == 0) {
      req_deferred_ = true;
      wake();  // write_request() waits for the queue to drain
      return NGHTTP2_ERR_DEFERRED;
    }
    wake();
  }
  return static_cast<ssize_t>(n);
}

awaitable<bool> Http2StreamSession::write_request() {
  if (id_ < 0 || failed_) co_return false;
  if (req_deferred_ && (req_sent_ < req_body_.size() || req_last_)) {
    req_deferred_ = false;
    nghttp2_session_resume_data(conn_->session(), id_);
  }
  conn_->flush();
  // One part at a time, like HTTP/1's write: the next is read from downstream only when this
  // one left (the backend's window and a slow backend bound what Sluice holds).
  while (req_sent_ < req_body_.size() && !failed_ && !cancelled_ && !closed_) {
    co_await start_wait();
    --waiting_;
  }
  co_return !cancelled_ && (!failed_ || ended_);
}

bool Http2StreamSession::news() const {
  return (final_head_ && !head_reported_) ||
         (head_reported_ && (reported_chunks_ < chunks_.size() || (ended_ && !end_reported_)));
}

ResponseStep Http2StreamSession::parse_response() {
  ResponseStep out;
  body_spans_.clear();
  // Like the HTTP/1 parser: a head step carries the head alone, and the step after it runs
  // even without news, so the router sends the head before waiting for body bytes (and the
  // body encoder frames one body part per write).
  if (final_head_ && !head_reported_) {
    head_reported_ = true;
    step_again_ = true;
    out.head = true;
    return out;
  }
  const bool again = std::exchange(step_again_, false);
  if (!news()) {
    out.need_input = !again;
    return out;
  }
  for (; reported_chunks_ < chunks_.size(); ++reported_chunks_) {
    const std::string& c = chunks_[reported_chunks_];
    body_spans_.emplace_back(c.data(), c.size());
  }
  if (ended_ && !end_reported_) {
    end_reported_ = true;
    out.complete = true;
  }
  return out;
}

void Http2StreamSession::release_body() {
  size_t bytes = 0;
  for (size_t i = 0; i < reported_chunks_; ++i) {
    bytes += chunks_.front().size();
    chunks_.pop_front();
  }
  reported_chunks_ = 0;
  if (bytes == 0 || closed_ || failed_) return;
  unconsumed_ -= bytes;
  // The client took these bytes: the backend may send as many more on this stream.
  nghttp2_session_consume(conn_->session(), id_, bytes);
  conn_->flush();
}

awaitable<Session::ReadStatus> Http2StreamSession::read_response() {
  while (!news()) {
    if (cancelled_ || failed_) co_return ReadStatus::kError;
    co_await start_wait();
    --waiting_;
  }
  co_return ReadStatus::kOk;
}

awaitable<void> Http2StreamSession::start_wait() {
  // The writer and the reader of a duplex exchange may both wait: setting the expiry while the
  // other waits would cancel its wait (and it would cancel ours in turn), so only the first
  // sets it; wake() ends every wait.
  if (waiting_++ == 0) waker_.expires_at(asio::steady_timer::time_point::max());
  return waker_.async_wait(asio::redirect_error(use_awaitable, wait_ec_));
}

void Http2StreamSession::wake() {
  if (waiting_ > 0) waker_.cancel();
}

// --- From the connection's reader. ---

void Http2StreamSession::on_begin_headers() {
  in_head_ = !final_head_;
  head_bytes_ = 0;
  if (in_head_)
    fields_.clear();
  else
    trailer_fields_.clear();
}

bool Http2StreamSession::on_header(std::string_view name, std::string_view value) {
  head_bytes_ += name.size() + value.size() + 32;  // RFC 9113 §6.5.2's per-field overhead
  if (head_bytes_ > kSpareHeadBytes) buf_->large_head = true;
  if (head_bytes_ > kMaxResponseHeadBytes ||
      (in_head_ ? fields_.size() : trailer_fields_.size()) >= kMaxResponseFields) {
    return false;
  }
  if (!in_head_) {
    trailer_fields_.add(name, value);
    return true;
  }
  if (name == ":status") {
    int status = 0;
    std::from_chars(value.data(), value.data() + value.size(), status);
    facts_ = ResponseHeadFacts{};
    facts_.status = status;
    return true;
  }
  if (!name.empty() && name.front() == ':') return true;  // nghttp2 validated the pseudo-fields
  if (name == "content-length") facts_.length_known = true;
  fields_.add(name, value);
  return true;
}

void Http2StreamSession::on_headers_end(bool end_stream) {
  if (in_head_) {
    in_head_ = false;
    // 1xx heads are dropped, as over HTTP/1 (Sluice answers Expect itself).
    if (facts_.status >= 200) {
      final_head_ = true;
      field_views_.clear();
      for (const auto& [k, v] : fields_) field_views_.push_back({k, v});
      // A HEAD response, 204 and 304 carry no body whatever Content-Length says.
      if (head_request_ || facts_.status == 204 || facts_.status == 304) facts_.length_known = true;
    }
  } else {
    trailer_views_.clear();
    for (const auto& [k, v] : trailer_fields_) trailer_views_.push_back({k, v});
  }
  if (end_stream) on_end_stream();
  wake();
}

void Http2StreamSession::on_data(const uint8_t* data, size_t len) {
  chunks_.emplace_back(reinterpret_cast<const char*>(data), len);
  unconsumed_ += len;
  wake();
}

void Http2StreamSession::on_end_stream() {
  // A trailers-only or body-less end still needs a final head to be a response.
  if (final_head_) ended_ = true;
  wake();
}

void Http2StreamSession::on_close(uint32_t error_code) {
  closed_ = true;
  if (!ended_) {
    failed_ = true;
    if (error_code == NGHTTP2_REFUSED_STREAM) unprocessed_ = true;
  }
  wake();
}

void Http2StreamSession::fail(bool unprocessed) {
  if (ended_) return;
  failed_ = true;
  if (unprocessed) unprocessed_ = true;
  wake();
}

}  // namespace sluice::upstream
