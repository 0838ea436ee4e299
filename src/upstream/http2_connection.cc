#include "sluice/upstream/http2_connection.h"

#include <algorithm>

#include "sluice/common/log.h"
#include "sluice/http2/allocator.h"
#include "sluice/upstream/http2_stream_session.h"

namespace sluice::upstream {

namespace {
constexpr size_t kReadBufferSize = 16 * 1024;
// Stream ids are odd and below 2^31: stop opening streams a little before the end.
constexpr int32_t kLastStreamId = 0x7fffffff - 1024;

Http2StreamSession* stream_of(nghttp2_session* session, int32_t id) {
  return static_cast<Http2StreamSession*>(nghttp2_session_get_stream_user_data(session, id));
}
}  // namespace

Http2Connection::Http2Connection(const asio::any_io_executor& ex,
                                 const config::ClusterHttp2& settings, stats::ClusterStats* cstats,
                                 stats::EndpointStats* estats,
                                 std::shared_ptr<CircuitBreaker> breaker)
    : settings_(settings),
      cluster_stats_(cstats),
      endpoint_stats_(estats),
      breaker_(std::move(breaker)),
      stream_(tcp::socket(ex)),
      ping_timer_(ex) {
  if (cluster_stats_) cluster_stats_->connections_active.add(1);
  if (endpoint_stats_) endpoint_stats_->connections_active.add(1);
  if (breaker_) breaker_->opened();
  idle_since_ = Clock::now();
  if (!init()) closed_ = true;
}

Http2Connection::~Http2Connection() {
  set_idle(false);
  if (session_) nghttp2_session_del(session_);
  if (cluster_stats_) cluster_stats_->connections_active.add(-1);
  if (endpoint_stats_) endpoint_stats_->connections_active.add(-1);
  if (breaker_) breaker_->closed();
}

bool Http2Connection::init() {
  nghttp2_session_callbacks* cbs = nullptr;
  if (nghttp2_session_callbacks_new(&cbs) != 0) return false;
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
  nghttp2_option* opt = nullptr;
  if (nghttp2_option_new(&opt) != 0) {
    nghttp2_session_callbacks_del(cbs);
    return false;
  }
  // Window updates only for bytes relayed downstream (release_body).
  nghttp2_option_set_no_auto_window_update(opt, 1);
  const int rv = nghttp2_session_client_new3(&session_, cbs, this, opt, http2::thread_allocator());
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cbs);
  if (rv != 0) {
    session_ = nullptr;
    return false;
  }
  const nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, settings_.max_concurrent_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, settings_.initial_stream_window},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, iv, std::size(iv));
  // The connection window starts at 65,535 whatever SETTINGS say: raise it by WINDOW_UPDATE.
  if (settings_.initial_connection_window > NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE) {
    nghttp2_session_set_local_window_size(
        session_, NGHTTP2_FLAG_NONE, 0, static_cast<int32_t>(settings_.initial_connection_window));
  }
  return true;
}

bool Http2Connection::start() {
  if (closed_ || !session_) return false;
  started_ = true;
  last_frame_ = Clock::now();
  set_idle(true);
  auto self = shared_from_this();
  asio::co_spawn(executor_of(stream_.get_executor()), read_loop(self), asio::detached);
  if (settings_.ping_interval.count() > 0) {
    asio::co_spawn(executor_of(stream_.get_executor()), ping_loop(self), asio::detached);
  }
  flush();
  return true;
}

bool Http2Connection::has_capacity() const {
  if (closed_ || goaway_ || retired_) return false;
  const uint32_t remote =
      nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
  const size_t limit = std::min(settings_.max_concurrent_streams, remote);
  return streams_ < limit &&
         nghttp2_session_get_next_stream_id(session_) < static_cast<uint32_t>(kLastStreamId);
}

std::unique_ptr<Http2StreamSession> Http2Connection::new_stream() {
  ++streams_;
  set_idle(false);
  auto s = std::make_unique<Http2StreamSession>(shared_from_this());
  live_.push_back(s.get());
  return s;
}

void Http2Connection::set_idle(bool idle) {
  if (idle == idle_) return;
  idle_ = idle;
  if (cluster_stats_) cluster_stats_->connections_idle.add(idle ? 1 : -1);
  if (idle) idle_since_ = Clock::now();
}

void Http2Connection::retire() {
  retired_ = true;
  if (streams_ == 0) close("retired");
}

void Http2Connection::close(std::string_view why) {
  if (closed_) return;
  closed_ = true;
  set_idle(false);
  log::debug("upstream HTTP/2 connection closed: {}", why);
  fail_streams(why);
  error_code ignored;
  ping_timer_.cancel();
  stream_.close();
}

void Http2Connection::fail_streams(std::string_view why) {
  for (Http2StreamSession* s : live_) {
    log::debug("upstream HTTP/2 stream {} failed: {}", s->id(), why);
    s->fail(false);
    if (session_ && s->id() > 0) nghttp2_session_set_stream_user_data(session_, s->id(), nullptr);
  }
}

void Http2Connection::stream_done(Http2StreamSession* stream, size_t unconsumed, bool open) {
  --streams_;
  if (auto it = std::find(live_.begin(), live_.end(), stream); it != live_.end()) {
    *it = live_.back();
    live_.pop_back();
  }
  const int32_t id = stream->id();
  if (session_ && id > 0 && !closed_) {
    nghttp2_session_set_stream_user_data(session_, id, nullptr);
    if (open) nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
    // Bytes received but never relayed still count against the connection window.
    if (unconsumed > 0) nghttp2_session_consume_connection(session_, unconsumed);
    flush();
  }
  if (streams_ == 0) {
    if (retired_ || goaway_) {
      close("no streams left");
    } else if (!closed_) {
      set_idle(true);
    }
  }
  if (breaker_) breaker_->returned();  // a request waiting for a stream slot may go
}

std::unique_ptr<Http2StreamBuffers> Http2Connection::take_buffers() {
  if (spare_buffers_.empty()) return std::make_unique<Http2StreamBuffers>(stream_.get_executor());
  std::unique_ptr<Http2StreamBuffers> buf = std::move(spare_buffers_.back());
  spare_buffers_.pop_back();
  return buf;
}

void Http2Connection::give_back(std::unique_ptr<Http2StreamBuffers> buf) {
  if (!buf || closed_ || retired_ || spare_buffers_.size() >= settings_.max_concurrent_streams)
    return;
  if (buf->clear_for_reuse()) spare_buffers_.push_back(std::move(buf));
}

void Http2Connection::flush() {
  if (!started_ || writing_ || closed_) return;
  if (!nghttp2_session_want_write(session_)) return;
  writing_ = true;
  asio::co_spawn(executor_of(stream_.get_executor()), write_loop(shared_from_this()), asio::detached);
}

awaitable<void> Http2Connection::write_loop(
    std::shared_ptr<Http2Connection> /*self: alive while it runs*/) {
  while (!closed_) {
    out_.clear();
    while (true) {
      const uint8_t* data = nullptr;
      const ssize_t n = nghttp2_session_mem_send(session_, &data);
      if (n < 0) {
        writing_ = false;
        close(nghttp2_strerror(static_cast<int>(n)));
        co_return;
      }
      if (n == 0) break;
      out_.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
      if (out_.size() >= 64 * 1024) break;
    }
    if (out_.empty()) break;
    error_code ec;
    co_await stream_.async_write(asio::buffer(out_), asio::redirect_error(use_awaitable, ec));
    if (ec) {
      writing_ = false;
      close("write failed: " + ec.message());
      co_return;
    }
  }
  writing_ = false;
  // Nothing more to send, no stream, and the backend said goodbye: done.
  if (!closed_ && goaway_ && streams_ == 0) close("GOAWAY");
}

awaitable<void> Http2Connection::read_loop(
    std::shared_ptr<Http2Connection> /*self: alive while it runs*/) {
  std::unique_ptr<uint8_t[]> buf(new uint8_t[kReadBufferSize]);
  while (!closed_) {
    error_code ec;
    const size_t n = co_await stream_.async_read_some(
        asio::buffer(buf.get(), kReadBufferSize), asio::redirect_error(use_awaitable, ec));
    if (closed_) break;
    if (ec) {
      close(ec == asio::error::eof ? "the backend closed the connection" : ec.message());
      break;
    }
    last_frame_ = Clock::now();
    const ssize_t rv = nghttp2_session_mem_recv(session_, buf.get(), n);
    if (rv < 0) {
      close(nghttp2_strerror(static_cast<int>(rv)));
      break;
    }
    flush();
    if (!nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_)) {
      close("session ended");
      break;
    }
  }
}

awaitable<void> Http2Connection::ping_loop(
    std::shared_ptr<Http2Connection> /*self: alive while it runs*/) {
  while (!closed_) {
    ping_timer_.expires_after(settings_.ping_interval);
    error_code ec;
    co_await ping_timer_.async_wait(asio::redirect_error(use_awaitable, ec));
    if (ec || closed_) break;
    if (Clock::now() - last_frame_ < settings_.ping_interval) continue;
    ping_acked_ = false;
    nghttp2_submit_ping(session_, NGHTTP2_FLAG_NONE, nullptr);
    flush();
    ping_timer_.expires_after(settings_.ping_timeout);
    co_await ping_timer_.async_wait(asio::redirect_error(use_awaitable, ec));
    if (ec || closed_) break;
    if (!ping_acked_) {
      log::debug("upstream HTTP/2: no PING ack within {}ms: connection dead",
                 settings_.ping_timeout.count());
      close("PING timeout");
      break;
    }
  }
}

// --- nghttp2 callbacks. ---

int Http2Connection::on_begin_headers(nghttp2_session* session, const nghttp2_frame* frame, void*) {
  if (frame->hd.type != NGHTTP2_HEADERS) return 0;
  if (Http2StreamSession* s = stream_of(session, frame->hd.stream_id)) s->on_begin_headers();
  return 0;
}

int Http2Connection::on_header(nghttp2_session* session, const nghttp2_frame* frame,
                               const uint8_t* name, size_t namelen, const uint8_t* value,
                               size_t valuelen, uint8_t, void*) {
  if (frame->hd.type != NGHTTP2_HEADERS) return 0;
  if (Http2StreamSession* s = stream_of(session, frame->hd.stream_id)) {
    if (!s->on_header({reinterpret_cast<const char*>(name), namelen},
                      {reinterpret_cast<const char*>(value), valuelen})) {
      log::debug("upstream HTTP/2 stream {}: response head too large", frame->hd.stream_id);
      return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  // resets this stream only
    }
  }
  return 0;
}

int Http2Connection::on_frame_recv(nghttp2_session* session, const nghttp2_frame* frame,
                                   void* user) {
  auto* self = static_cast<Http2Connection*>(user);
  switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
      if (Http2StreamSession* s = stream_of(session, frame->hd.stream_id)) {
        s->on_headers_end((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0);
      }
      break;
    case NGHTTP2_DATA:
      if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
        if (Http2StreamSession* s = stream_of(session, frame->hd.stream_id)) s->on_end_stream();
      }
      break;
    case NGHTTP2_PING:
      if (frame->hd.flags & NGHTTP2_FLAG_ACK) self->ping_acked_ = true;
      break;
    case NGHTTP2_GOAWAY: {
      // No new streams here. nghttp2 closes the streams above last_stream_id with
      // REFUSED_STREAM (on_stream_close marks them unprocessed); those at or below finish.
      self->goaway_ = true;
      log::debug("upstream HTTP/2: GOAWAY (last stream {}, code {})", frame->goaway.last_stream_id,
                 frame->goaway.error_code);
      for (Http2StreamSession* s : self->live_) {
        if (s->id() > frame->goaway.last_stream_id && stream_of(session, s->id()) == s) {
          s->fail(true);
          nghttp2_session_set_stream_user_data(session, s->id(), nullptr);
        }
      }
      break;
    }
    default:
      break;
  }
  return 0;
}

int Http2Connection::on_data_chunk(nghttp2_session* session, uint8_t, int32_t id,
                                   const uint8_t* data, size_t len, void*) {
  if (Http2StreamSession* s = stream_of(session, id)) {
    s->on_data(data, len);
  } else {
    // Nobody will relay these bytes (the stream's session is gone): give them back at once.
    nghttp2_session_consume(session, id, len);
  }
  return 0;
}

int Http2Connection::on_stream_close(nghttp2_session* session, int32_t id, uint32_t error_code,
                                     void*) {
  if (Http2StreamSession* s = stream_of(session, id)) {
    s->on_close(error_code);
    nghttp2_session_set_stream_user_data(session, id, nullptr);
  }
  return 0;
}

}  // namespace sluice::upstream
