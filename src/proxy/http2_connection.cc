// The downstream HTTP/2 codec: nghttp2's server session driven by three kinds of coroutines
// (reader, writer, one per stream) on the worker's thread. See http2_connection.h.
#include "sluice/proxy/http2_connection.h"

#include <fmt/core.h>

#include <algorithm>
#include <charconv>
#include <cstring>

#include "sluice/common/log.h"
#include "sluice/http2/allocator.h"
#include "sluice/http/head_builder.h"

namespace sluice::proxy {

namespace {

// The abuse limits are the listener's (config::ListenerHttp2): control frames (SETTINGS, PING,
// PRIORITY) and empty DATA frames each draw on a budget refilled over time (a browser sends a
// handful per connection, a flood thousands per second); a client that resets
// max_premature_resets streams before their response, and at least half of all its streams,
// loses the connection (Envoy's premature-reset rule has the same shape).
// A header block that decodes to this many times max_header_list_size is an HPACK bomb: the
// connection goes (below that, the stream is answered 431).
constexpr size_t kHeaderBombFactor = 8;
// The writer gathers up to this much from nghttp2 before one write.
constexpr size_t kWriteGather = 64 * 1024;

bool is_idempotent(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "TRACE" ||
         method == "PUT" || method == "DELETE";
}

nghttp2_nv make_nv(std::string_view name, std::string_view value,
                   uint8_t flags = NGHTTP2_NV_FLAG_NONE) {
  return {reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
          reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(), value.size(),
          flags};
}

// RFC 9113 §8.2.2: fields specific to a connection never appear in HTTP/2 (nghttp2 refuses
// them in requests; a response from an HTTP/1 upstream may carry them and loses them here).
bool is_connection_specific(std::string_view name) { return http::is_hop_by_hop(name); }

constexpr std::array<char, 256> kLowerCase = [] {
  std::array<char, 256> t{};
  for (int i = 0; i < 256; ++i) t[i] = static_cast<char>(i >= 'A' && i <= 'Z' ? i + 32 : i);
  return t;
}();

}  // namespace

// ---------------------------------------------------------------------------------------------
// Http2Stream

Http2Stream::Http2Stream(Http2Connection& conn, int32_t id)
    : conn_(conn),
      conn_guard_(conn.shared_from_this()),
      id_(id),
      runner_(conn.take_runner()),
      up_deadline_(conn.stream_.get_executor()),
      waker_(conn.stream_.get_executor()),
      body_waker_(conn.stream_.get_executor()),
      start_(std::chrono::steady_clock::now()) {}

Http2Stream::~Http2Stream() = default;

void Http2Stream::reuse(int32_t id) {
  id_ = id;
  if (!runner_) runner_ = conn_.take_runner();
  start_ = std::chrono::steady_clock::now();
  method_.clear();
  scheme_.clear();
  authority_.clear();
  path_.clear();
  protocol_.clear();
  fields_.clear();
  trailers_.clear();
  header_bytes_ = 0;
  headers_too_large_ = false;
  declared_length_ = 0;
  has_declared_length_ = false;
  body_in_.clear();
  handed_.clear();
  acknowledged_all_ = false;
  body_bytes_ = 0;
  has_body_ = false;
  end_stream_received_ = false;
  body_out_.clear();
  out_pos_ = 0;
  out_last_ = false;
  out_deferred_ = false;
  head_submitted_ = false;
  head_pending_ = false;
  has_body_source_ = false;
  response_ended_ = false;
  response_trailers_.clear();
  started_ = false;
  finished_ = false;
  closed_ = false;
}

template <typename Ready, typename Finish>
awaitable<bool> Http2Stream::wait_until(asio::steady_timer& timer, Ready ready,
                                        config::Duration timeout, Finish finish) {
  const auto deadline = timeout.count() > 0 ? std::chrono::steady_clock::now() + timeout
                                            : std::chrono::steady_clock::time_point::max();
  while (!ready()) {
    if (std::chrono::steady_clock::now() >= deadline) co_return finish(false);
    timer.expires_at(deadline);
    error_code ec;
    co_await timer.async_wait(asio::redirect_error(use_awaitable, ec));
  }
  co_return finish(true);
}

awaitable<void> Http2Stream::run(std::shared_ptr<Http2Stream> self) {
  Http2Connection& c = conn_;
  // The newest snapshot routes each stream; if a reload removed the listener, the stream is
  // still served on the snapshot the connection started on (the drain sent GOAWAY already).
  std::shared_ptr<server::WorkerView> view = c.worker_.view();
  const server::ListenerInfo* listener = view ? view->snapshot->find_listener(c.listener_name_) : nullptr;
  if (!listener) {
    view = c.view_;
    listener = view->snapshot->find_listener(c.listener_name_);
  }
  const auto listener_index = static_cast<size_t>(listener - view->snapshot->listeners().data());
  if (c.stats_) c.stats_->requests_total.add();
  runner_->bind(*this, up_deadline_);
  runner_->open(std::move(view), listener_index, start_, c.client_address_, c.stream_.tls_info());
  const Refusal refused = decode_head(*listener);
  if (refused.status != 0) {
    co_await runner_->reply(refused.status, refused.reason, std::string(refused.body), false);
  } else {
    co_await runner_->run(*listener);
  }
  runner_->finish();
  // The deadline's wait stays pending (it holds this stream) for the next request this stream
  // serves: no timer cancel now and no new wait then, a heap removal and insertion in a queue
  // of ~1,000 timers at 500 streams in flight. recycle() cancels it when the stream is let go.
  up_deadline_.disarm();
  finished_ = true;
  c.give_runner(std::move(runner_));
  if (!closed_) {
    if (!response_ended_) {
      // A response that did not end (the upstream failed mid-body, the client read too slowly)
      // is cut: the client must not take a truncated body for a whole one.
      nghttp2_submit_rst_stream(c.session_, NGHTTP2_FLAG_NONE, id_, NGHTTP2_INTERNAL_ERROR);
    }
    // Request body bytes the exchange never took: their window goes back to the client.
    const size_t unacknowledged = body_in_.size() + handed_.size();
    if (unacknowledged > 0) nghttp2_session_consume(c.session_, id_, unacknowledged);
    body_in_.clear();
    handed_.clear();
    acknowledged_all_ = true;
  }
  c.wake_writer();
  c.stream_done(*this);
  // Last: recycle() may drop the last reference to this stream.
  if (closed_) c.recycle(std::move(self));
}

Http2Stream::Refusal Http2Stream::decode_head(const server::ListenerInfo& listener) {
  const config::Listener& spec = listener.spec;
  Exchange& ex = runner_->exchange();
  RequestHead& head = ex.request;
  ex.facts.protocol = "HTTP/2";
  ExchangeRecord& record = runner_->record();
  if (record.log) {
    record.method = method_;
    record.authority = authority_;
    record.target = path_;
  }
  if (log::enabled(log::Level::kDebug)) runner_->method_and_path() = fmt::format("{} {}", method_, path_);
  if (headers_too_large_ || fields_.size() > spec.max_request_headers_count) {
    return {431, LocalReason::kHeadersTooLarge, "request headers too large\n"};
  }
  if (method_ == "CONNECT") return {400, LocalReason::kBadRequest, "CONNECT is not supported\n"};
  head.method = method_;
  const size_t question = path_.find('?');
  head.path = std::string_view(path_).substr(0, question);
  head.query = question == std::string::npos ? std::string_view{} : std::string_view(path_).substr(question + 1);
  head.has_query = question != std::string::npos;

  std::string_view host;
  std::string_view request_id;
  size_t cookies = 0;
  for (const auto& [name, value] : fields_) {
    // nghttp2 has checked the names (lower case, no connection-specific fields, `te` only as
    // "trailers") and the values; what is left is HTTP's own rules.
    if (name == "host") {
      if (!host.empty()) return {400, LocalReason::kBadRequest, "more than one Host header\n"};
      host = value;
    } else if (name == "cookie") {
      ++cookies;
      continue;
    } else if (name == "expect") {
      continue;  // Sluice asks for the body itself (flow control is HTTP/2's "continue")
    } else if (name == "x-request-id" && request_id.empty()) {
      request_id = value;
    }
    head.fields.push_back({name, value});
  }
  // RFC 9113 §8.2.3: cookie fields may arrive split; an HTTP/1.1 hop needs them as one.
  if (cookies > 0) {
    std::string joined;
    for (const auto& [name, value] : fields_) {
      if (name != "cookie") continue;
      if (!joined.empty()) joined += "; ";
      joined += value;
    }
    head.fields.push_back({"cookie", head.fields.own(std::move(joined))});
  }
  // RFC 9113 §8.3.1: :authority, else Host; a Host that contradicts :authority is refused.
  if (!authority_.empty() && !host.empty() && !http::iequals(authority_, host)) {
    return {400, LocalReason::kBadRequest, ":authority and Host disagree\n"};
  }
  head.authority = authority_.empty() ? host : std::string_view(authority_);
  if (head.authority.empty()) return {400, LocalReason::kBadRequest, "missing :authority\n"};

  ex.facts.request_id_generated = request_id.empty();
  if (request_id.empty()) http::make_request_id(ex.request_id);
  else ex.request_id.assign(request_id);
  ex.facts.head_request = method_ == "HEAD";
  ex.facts.idempotent = is_idempotent(method_);
  ex.facts.has_body = has_body_;
  ex.facts.body_length_known = has_declared_length_;
  if (spec.max_request_body_bytes > 0 && has_declared_length_ && declared_length_ > spec.max_request_body_bytes) {
    return {413, LocalReason::kBodyTooLarge, "request body too large\n"};
  }
  return {};
}

awaitable<Downstream::BodyStatus> Http2Stream::read_request_body(filters::BodySpans& part, bool& last,
                                                                 bool wait) {
  Http2Connection& c = conn_;
  const config::Listener& spec = c.spec();
  if (!wait) body_start_ = std::chrono::steady_clock::now();
  // What the exchange took last time has gone upstream: acknowledge it, so the client may send
  // that much more (the window is the only buffer a client can fill here).
  if (!handed_.empty()) {
    if (!acknowledged_all_) nghttp2_session_consume(c.session_, id_, handed_.size());
    handed_.clear();
    c.wake_writer();
  }
  while (body_in_.empty() && !end_stream_received_) {
    if (closed_) co_return BodyStatus::kGone;
    if (!wait) {
      part = {};
      last = false;
      co_return BodyStatus::kOk;
    }
    config::Duration timeout =
        spec.request_body_timeout.count() > 0 ? spec.request_body_timeout : spec.idle_timeout;
    if (spec.request_body_total_timeout.count() > 0) {
      auto left = std::chrono::duration_cast<config::Duration>(
          body_start_ + spec.request_body_total_timeout - std::chrono::steady_clock::now());
      if (left.count() <= 0) co_return BodyStatus::kTimeout;
      timeout = std::min(timeout, left);
    }
    const bool ready = co_await wait_until(
        body_waker_, [this] { return !body_in_.empty() || end_stream_received_ || closed_; },
        timeout, [](bool ready) { return ready; });
    if (!ready) co_return BodyStatus::kTimeout;
  }
  if (closed_ && !end_stream_received_) co_return BodyStatus::kGone;
  body_bytes_ += body_in_.size();
  if (spec.max_request_body_bytes > 0 && body_bytes_ > spec.max_request_body_bytes) {
    co_return BodyStatus::kTooLarge;
  }
  handed_.swap(body_in_);  // body_in_ takes over handed_'s (cleared) storage for the next bytes
  part_[0] = std::span<const char>(handed_.data(), handed_.size());
  part = handed_.empty() ? filters::BodySpans{} : filters::BodySpans(part_);
  last = end_stream_received_;
  if (last) {
    auto& trailers = runner_->exchange().request_trailers;
    trailers.clear();
    for (const auto& [name, value] : trailers_) trailers.push_back({name, value});
  }
  co_return BodyStatus::kOk;
}

bool Http2Stream::submit_head(int status, std::span<const http::HeaderView> fields, bool body,
                              std::string_view content_type, std::string_view content_length) {
  if (head_submitted_ || closed_) return false;
  // Names must go lower case in HTTP/2 (RFC 9113 §8.2.1); an HTTP/1 upstream may send
  // "Content-Type". One buffer, sized first, so the views into it stay put.
  std::string& nv_names_ = conn_.nv_names_;
  std::vector<nghttp2_nv>& nva_ = conn_.nva_;
  char* status_text_ = conn_.status_text_;
  size_t name_bytes = 0;
  for (const auto& f : fields) name_bytes += f.name.size();
  const http::ConnectionOptions connection = http::connection_options(fields);
  nv_names_.resize(name_bytes);
  char* lower = nv_names_.data();
  nva_.clear();
  nva_.reserve(fields.size() + 4);
  status_text_[0] = static_cast<char>('0' + status / 100 % 10);
  status_text_[1] = static_cast<char>('0' + status / 10 % 10);
  status_text_[2] = static_cast<char>('0' + status % 10);
  nva_.push_back(make_nv(":status", std::string_view(status_text_, 3)));
  bool has_request_id = false;
  bool has_type = false;
  for (const auto& f : fields) {
    if (is_connection_specific(f.name)) continue;
    if (http::removed_by_connection(connection, fields, f.name)) continue;
    if (!content_length.empty() && http::iequals(f.name, "content-length")) continue;
    std::string_view name(lower, f.name.size());
    for (char ch : f.name) *lower++ = kLowerCase[static_cast<unsigned char>(ch)];
    has_request_id = has_request_id || name == "x-request-id";
    has_type = has_type || name == "content-type";
    nva_.push_back(make_nv(name, f.value));
  }
  if (!content_type.empty() && !has_type) nva_.push_back(make_nv("content-type", content_type));
  if (!content_length.empty()) nva_.push_back(make_nv("content-length", content_length));
  const std::string& request_id = runner_->exchange().request_id;
  // A value no later response repeats: a never-indexed literal, as upstream. The response
  // encoder keeps no dynamic table (init), so here the flag changes no table of Sluice's; it
  // asks intermediaries not to index the value either (RFC 7541 §6.2.3).
  if (!has_request_id && !request_id.empty()) {
    nva_.push_back(make_nv("x-request-id", request_id, NGHTTP2_NV_FLAG_NO_INDEX));
  }
  nghttp2_data_provider source{};
  source.source.ptr = this;
  source.read_callback = &Http2Stream::read_body;
  // nghttp2 copies the names and values: the buffers above may change after this call.
  const int rv = nghttp2_submit_response(conn_.session_, id_, nva_.data(), nva_.size(), body ? &source : nullptr);
  if (rv != 0) return false;
  head_submitted_ = true;
  if (!body) response_ended_ = true;
  has_body_source_ = body;
  conn_.wake_writer();
  return true;
}

ssize_t Http2Stream::read_body(nghttp2_session* session, int32_t stream_id, uint8_t* buf, size_t length,
                               uint32_t* flags, nghttp2_data_source* source, void*) {
  auto* s = static_cast<Http2Stream*>(source->ptr);
  const size_t available = s->body_out_.size() - s->out_pos_;
  const size_t n = std::min(length, available);
  if (n > 0) {
    std::memcpy(buf, s->body_out_.data() + s->out_pos_, n);
    s->out_pos_ += n;
  }
  if (s->out_pos_ == s->body_out_.size()) {
    s->body_out_.clear();
    s->out_pos_ = 0;
    if (s->out_last_) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      if (!s->response_trailers_.empty()) {
        // Trailers end the stream instead of the last DATA frame.
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        std::vector<nghttp2_nv>& nva = s->conn_.nva_;  // scratch: nghttp2 copies the fields
        nva.clear();
        for (const auto& [name, value] : s->response_trailers_) nva.push_back(make_nv(name, value));
        nghttp2_submit_trailer(session, stream_id, nva.data(), nva.size());
      }
      s->response_ended_ = true;
    } else if (n == 0) {
      s->out_deferred_ = true;
      return NGHTTP2_ERR_DEFERRED;
    }
    s->wake();  // the exchange's flush waits for its part to be taken
  }
  return static_cast<ssize_t>(n);
}

bool Http2Stream::queue_response_head(const ResponseFraming& framing) {
  // A transfer coding cannot travel in HTTP/2 (RFC 9113 §8.2.2), nor can an upgrade: 502.
  if (!framing.upgrade.empty() || !framing.transfer_codings.empty()) return false;
  const Exchange& ex = runner_->exchange();
  const int status = ex.response.status;
  const bool no_body = ex.facts.head_request || status == 204 || status == 304;
  if (no_body) return submit_head(status, ex.response.fields.items(), false, {}, {});
  // Submitted with the first body part or at the flush: a response that turns out empty (a
  // gRPC trailers-only answer) then leaves as one HEADERS frame with END_STREAM, which gRPC
  // clients require of a trailers-only response.
  head_pending_ = !head_submitted_ && !closed_;
  return true;
}

bool Http2Stream::submit_pending_head(bool body) {
  head_pending_ = false;
  const Exchange& ex = runner_->exchange();
  return submit_head(ex.response.status, ex.response.fields.items(), body, {}, {});
}

void Http2Stream::queue_response_body(filters::BodySpans body, bool last) {
  if (head_pending_) {
    size_t bytes = 0;
    for (const auto& s : body) bytes += s.size();
    const bool empty = last && bytes == 0 && runner_->exchange().response_trailers.items().empty();
    if (!submit_pending_head(!empty) || empty) return;
  }
  if (!has_body_source_ || out_last_) return;  // a body-less response (HEAD, 204, 304)
  for (const auto& s : body) body_out_.append(s.data(), s.size());
  if (last) {
    out_last_ = true;
    // The trailers may be views into the upstream's buffer: keep copies for the data source.
    for (const auto& t : runner_->exchange().response_trailers.items()) {
      auto& [name, value] = response_trailers_.add();
      name.assign(t.name);
      for (auto& ch : name) ch = kLowerCase[static_cast<unsigned char>(ch)];
      if (is_connection_specific(name)) {
        response_trailers_.pop();
        continue;
      }
      value.assign(t.value);
    }
  }
  if (out_deferred_ && !closed_) {
    out_deferred_ = false;
    nghttp2_session_resume_data(conn_.session_, id_);
  }
}

namespace {
awaitable<bool> answer(bool value) { co_return value; }
}  // namespace

awaitable<bool> Http2Stream::flush_response(config::Duration timeout) {
  // Not a coroutine itself: the wait is the only frame a flush makes (one frame fewer per
  // stream, callgrind, bench/instructions --h2c / --grpc).
  if (head_pending_ && !submit_pending_head(true)) return answer(false);
  // While the writer waits for work (it is not writing out_), its next gathering is done here:
  // nghttp2 takes this stream's bytes now, as far as the client's window allows, and the
  // stream rarely has to wait for the writer to run (a timer wait and a wake-up fewer per
  // stream: bench/results/2026-12-02-h2c-profile.md). The writer, woken, sends out_ as before.
  if (conn_.writer_waiting_ && !conn_.closing_) conn_.gather_output();
  conn_.wake_writer();
  // Done when nghttp2 took every queued byte (the client's window allowed it): only then may
  // the exchange read more from its upstream. A client that stops reading stalls its own
  // stream here, until `timeout`. A stream closed before its response ended failed.
  auto taken = [this] { return (body_out_.empty() && (!out_last_ || response_ended_)) || closed_; };
  auto succeeded = [this](bool taken) { return taken && !(closed_ && !response_ended_); };
  if (taken()) return answer(succeeded(true));
  return wait_until(waker_, taken, timeout, succeeded);
}

awaitable<bool> Http2Stream::send_local_reply(bool) {
  const Exchange& ex = runner_->exchange();
  const LocalReply& reply = *ex.local_reply;
  const bool body = !reply.body.empty();
  // A reply to HEAD says what a GET would have carried, without the bytes (RFC 9110 §9.3.2).
  std::string length = body ? std::to_string(reply.body.size()) : std::string();
  if (body && !ex.facts.head_request) {
    body_out_ = reply.body;
    out_pos_ = 0;
    out_last_ = true;
  }
  if (!submit_head(reply.status, ex.response.fields.items(), body && !ex.facts.head_request,
                   body ? std::string_view(reply.content_type) : std::string_view{}, length)) {
    co_return false;
  }
  co_return co_await flush_response(conn_.spec().idle_timeout);
}

// ---------------------------------------------------------------------------------------------
// Http2Connection

bool Http2Connection::FrameBudget::take(std::chrono::steady_clock::time_point now) {
  tokens = std::min(capacity, tokens + per_second * std::chrono::duration<double>(now - last).count());
  last = now;
  if (tokens < 1) return false;
  tokens -= 1;
  return true;
}

Http2Connection::Http2Connection(server::Worker& worker, std::string listener_name, net::Stream& stream,
                                 std::shared_ptr<void> owner, std::string_view client_address,
                                 stats::ListenerStats* stats)
    : worker_(worker),
      listener_name_(std::move(listener_name)),
      stream_(stream),
      owner_(std::move(owner)),
      client_address_(client_address),
      stats_(stats),
      writer_waker_(stream.get_executor()),
      done_waker_(stream.get_executor()),
      capacity_waker_(stream.get_executor()),
      read_deadline_(stream.get_executor()),
      write_deadline_(stream.get_executor()) {
}

Http2Connection::~Http2Connection() {
  if (session_) nghttp2_session_del(session_);
}

bool Http2Connection::init(const config::Listener& spec) {
  nghttp2_session_callbacks* callbacks = nullptr;
  if (nghttp2_session_callbacks_new(&callbacks) != 0) return false;
  nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, &on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(callbacks, &on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, &on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, &on_data_chunk_recv);
  nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, &on_stream_close);
  nghttp2_session_callbacks_set_on_frame_send_callback(callbacks, &on_frame_send);
  nghttp2_option* option = nullptr;
  if (nghttp2_option_new(&option) != 0) {
    nghttp2_session_callbacks_del(callbacks);
    return false;
  }
  // Window updates are ours: bytes are acknowledged once the exchange took them.
  nghttp2_option_set_no_auto_window_update(option, 1);
  // Frames nghttp2 answers by itself (SETTINGS and PING ACKs) queue up when a client does not
  // read: at 1000 queued the client is flooding (nghttp2 ends the session).
  nghttp2_option_set_max_outbound_ack(option, 1000);
  nghttp2_option_set_max_settings(option, 32);
  // nghttp2's own rapid-reset limit (Debian's CVE-2023-44487 patch) is a backstop behind the
  // premature-reset rule in on_frame_recv.
  nghttp2_option_set_stream_reset_rate_limit(option, 1000, 33);
  // Response heads are encoded without a dynamic table, as nginx does: HPACK's table search was
  // ~100 memcmp calls per response (callgrind, h2load small GETs) for a few saved bytes.
  nghttp2_option_set_max_deflate_dynamic_table_size(option, 0);
  const int rv = nghttp2_session_server_new3(&session_, callbacks, this, option, http2::thread_allocator());
  nghttp2_option_del(option);
  nghttp2_session_callbacks_del(callbacks);
  if (rv != 0) return false;
  const config::ListenerHttp2& h2 = spec.http2;
  const auto now = std::chrono::steady_clock::now();
  control_budget_ = {double(h2.max_control_frames), double(h2.max_control_frames),
                     double(h2.control_frames_per_second), now};
  empty_data_budget_ = {double(h2.max_empty_data_frames), double(h2.max_empty_data_frames),
                        double(h2.empty_data_frames_per_second), now};
  nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, h2.max_concurrent_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, h2.initial_stream_window},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, h2.max_header_list_size},
  };
  if (nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings)) != 0) return false;
  // The connection window starts at 64 KiB - 1 (RFC 9113 §6.9.2) and only WINDOW_UPDATE on
  // stream 0 raises it.
  if (h2.initial_connection_window > NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE) {
    nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0,
                                          static_cast<int32_t>(h2.initial_connection_window));
  }
  return true;
}

awaitable<void> Http2Connection::run(std::string received) {
  auto self = shared_from_this();
  view_ = worker_.view();
  const server::ListenerInfo* listener = view_ ? view_->snapshot->find_listener(listener_name_) : nullptr;
  if (!listener) co_return;
  spec_ = &listener->spec;
  if (!init(*spec_)) {
    log::warn("HTTP/2 session for {} could not be set up", client_address_);
    co_return;
  }
  if (stats_) stats_->http2.connections.add();
  asio::co_spawn(executor_of(stream_.get_executor()),
                 [self]() -> awaitable<void> {
                   co_await self->write_loop();
                   self->writer_done_ = true;
                   self->done_waker_.cancel();
                 },
                 asio::detached);
  if (!received.empty()) receive(received.data(), received.size());
  co_await read_loop();
  closing_ = true;
  // Whatever is still open cannot finish without the client: end it now.
  for (auto& s : streams_) {
    s->closed_ = true;
    s->wake();
    s->up_deadline_.expire_now();
  }
  wake_writer();
  stream_.cancel();
  while (!writer_done_ || running_ > 0) {
    done_waker_.expires_at(std::chrono::steady_clock::time_point::max());
    error_code ec;
    co_await done_waker_.async_wait(asio::redirect_error(use_awaitable, ec));
  }
  read_deadline_.cancel();
  write_deadline_.cancel();
  // The streams hold the connection, and a stream's pending deadline wait holds the stream:
  // end both so the cycle breaks.
  for (auto& s : streams_) s->up_deadline_.cancel();
  for (auto& s : spare_streams_) s->up_deadline_.cancel();
  streams_.clear();
  spare_streams_.clear();
}

void Http2Connection::drain() {
  if (!session_ || goaway_sent_ || closing_) return;
  // The last stream id processed: streams above it were not, and the client may retry them
  // elsewhere; the ones below finish (RFC 9113 §6.8).
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(session_),
                        NGHTTP2_NO_ERROR, nullptr, 0);
  wake_writer();
}

bool Http2Connection::receive(const char* data, size_t size) {
  const ssize_t rv = nghttp2_session_mem_recv(session_, reinterpret_cast<const uint8_t*>(data), size);
  if (rv >= 0) return true;
  switch (rv) {
    case NGHTTP2_ERR_CALLBACK_FAILURE: break;  // a callback called fail() already
    case NGHTTP2_ERR_BAD_CLIENT_MAGIC: fail(NGHTTP2_PROTOCOL_ERROR, http2::Violation::kBadPreface); break;
    case NGHTTP2_ERR_FLOODED: fail(NGHTTP2_ENHANCE_YOUR_CALM, http2::Violation::kControlFlood); break;
    case NGHTTP2_ERR_TOO_MANY_CONTINUATIONS:
      fail(NGHTTP2_ENHANCE_YOUR_CALM, http2::Violation::kContinuationFlood);
      break;
    default: fail(NGHTTP2_PROTOCOL_ERROR, http2::Violation::kProtocol); break;
  }
  log::debug("HTTP/2 connection from {} ends: {}", client_address_, nghttp2_strerror(static_cast<int>(rv)));
  return false;
}

awaitable<void> Http2Connection::read_loop() {
  std::array<char, 16 * 1024> buffer;
  while (!closing_) {
    wake_writer();
    if (!nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_)) break;
    // Streams whose client reset them may still be finishing their upstream part; a client
    // that opens new ones faster than they end is not read from until they do.
    while (running_ >= 2 * static_cast<size_t>(spec_->http2.max_concurrent_streams) && !closing_) {
      capacity_waker_.expires_at(std::chrono::steady_clock::time_point::max());
      error_code ec;
      co_await capacity_waker_.async_wait(asio::redirect_error(use_awaitable, ec));
    }
    // An idle connection (no stream in progress) is closed after idle_timeout.
    // The guard is this connection, not owner_: the deadlines are members here, and a wait
    // cancelled at the end of run() still completes after run() returned, when owner_ may
    // already have let this connection go.
    if (running_ == 0) read_deadline_.arm(stream_, spec_->idle_timeout, shared_from_this());
    // A client sends its next frames when it wants, but reading them as its "next message"
    // costs nothing when they are there (a readiness event came, or the last read filled the
    // buffer) and saves the recv that fails with EAGAIN after each batch when they are not
    // (0.1 recvfrom per stream at h2load -c50 -m10). The price (net/stream.h): a FIN that came
    // with the last bytes read is seen at the next event; a client that says GOAWAY first, as
    // clients do, ends the loop above without it.
    error_code ec;
    const size_t n = co_await stream_.async_read_next_message(asio::buffer(buffer),
                                                              asio::redirect_error(use_awaitable, ec));
    read_deadline_.disarm();
    if (ec) {
      if (read_deadline_.expired() && running_ == 0 && !goaway_sent_) {
        // Idle: tell the client before closing, so it does not send a request into the close.
        drain();
        closing_ = true;
        wake_writer();
      }
      break;
    }
    if (!receive(buffer.data(), n)) break;
  }
}

awaitable<void> Http2Connection::write_loop() {
  auto self = shared_from_this();
  while (true) {
    gather_output();
    if (!out_.empty()) {
      error_code ec;
      write_deadline_.arm(stream_, spec_->idle_timeout, self);
      co_await stream_.async_write(asio::buffer(out_), asio::redirect_error(use_awaitable, ec));
      write_deadline_.disarm();
      out_.clear();
      if (ec) {
        // A client that does not read for idle_timeout, or is gone.
        closing_ = true;
        stream_.cancel();
        co_return;
      }
      continue;
    }
    if (closing_) {
      stream_.cancel();
      co_return;
    }
    if (!nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_)) {
      // Both sides said GOAWAY and every stream ended.
      closing_ = true;
      stream_.cancel();
      co_return;
    }
    writer_waker_.expires_at(std::chrono::steady_clock::time_point::max());
    writer_waiting_ = true;
    writer_woken_ = false;
    error_code ec;
    co_await writer_waker_.async_wait(asio::redirect_error(use_awaitable, ec));
    writer_waiting_ = false;
  }
}

void Http2Connection::gather_output() {
  while (out_.size() < kWriteGather) {
    const uint8_t* data = nullptr;
    const ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (n <= 0) {
      if (n < 0) closing_ = true;
      break;
    }
    out_.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
  }
}

void Http2Connection::fail(uint32_t code, http2::Violation why) {
  if (!violation_counted_ && stats_) stats_->http2.violations[static_cast<size_t>(why)].add();
  violation_counted_ = true;
  if (why != http2::Violation::kBadPreface) {
    log::info("HTTP/2 connection from {} closed: {} (GOAWAY {})", client_address_,
              http2::kViolationNames[static_cast<size_t>(why)], http2::kErrorCodeNames[http2::error_code_index(code)]);
  }
  if (!goaway_sent_) nghttp2_session_terminate_session(session_, code);
  closing_ = true;
  wake_writer();
}

std::unique_ptr<ExchangeRunner> Http2Connection::take_runner() {
  if (spare_runners_.empty()) return std::make_unique<ExchangeRunner>(worker_, stream_.get_executor());
  auto runner = std::move(spare_runners_.back());
  spare_runners_.pop_back();
  return runner;
}

void Http2Connection::give_runner(std::unique_ptr<ExchangeRunner> runner) {
  // Kept with their buffers' capacity, like the HTTP/1 states: a new stream then allocates
  // little. At most one per concurrent stream.
  if (spare_runners_.size() < spec_->http2.max_concurrent_streams) spare_runners_.push_back(std::move(runner));
}

void Http2Connection::add_open(std::shared_ptr<Http2Stream> s) {
  s->slot_ = streams_.size();
  streams_.push_back(std::move(s));
}

std::shared_ptr<Http2Stream> Http2Connection::remove_open(Http2Stream& s) {
  std::shared_ptr<Http2Stream> out = std::move(streams_[s.slot_]);
  if (s.slot_ + 1 != streams_.size()) {
    streams_[s.slot_] = std::move(streams_.back());
    streams_[s.slot_]->slot_ = s.slot_;
  }
  streams_.pop_back();
  return out;
}

void Http2Connection::recycle(std::shared_ptr<Http2Stream> s) {
  if (closing_ || spare_streams_.size() >= spec_->http2.max_concurrent_streams) {
    s->up_deadline_.cancel();  // its pending wait would keep it until the route timeout
    return;
  }
  spare_streams_.push_back(std::move(s));
}

void Http2Connection::stream_done(Http2Stream&) {
  --running_;
  capacity_waker_.cancel();
  if (!closing_ && !nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_)) {
    // Both sides said GOAWAY and this was the last stream: the connection is done.
    closing_ = true;
    stream_.cancel();
    wake_writer();
  }
  if (running_ == 0) {
    if (closing_) done_waker_.cancel();
    // The reader's pending read was started without the idle deadline: arm it now.
    else read_deadline_.arm(stream_, spec_->idle_timeout, shared_from_this());
  }
}

void Http2Connection::start_stream(const std::shared_ptr<Http2Stream>& s) {
  s->started_ = true;
  ++running_;
  read_deadline_.disarm();
  // Not started here: this runs inside nghttp2_session_mem_recv's callbacks.
  spawn(executor_of(stream_.get_executor()), s->run(s));
}

// --- nghttp2 callbacks ---

int Http2Connection::on_begin_headers(nghttp2_session* session, const nghttp2_frame* frame, void* user_data) {
  auto* c = static_cast<Http2Connection*>(user_data);
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  std::shared_ptr<Http2Stream> s;
  // A spare is reusable once nothing holds it but this list and its own deadline's pending wait
  // (kept on purpose, see run()). Anything else still running for it, such as a superseded
  // wait whose handler has not run yet, makes it wait its turn. The newest reusable one is
  // taken, since its memory is the likeliest to be still in the CPU's cache.
  auto& spares = c->spare_streams_;
  for (size_t i = spares.size(); i-- > 0;) {
    if (spares[i].use_count() != 1 + (spares[i]->up_deadline_.waiting() ? 1 : 0)) continue;
    s = std::move(spares[i]);
    spares.erase(spares.begin() + static_cast<ptrdiff_t>(i));  // keeps the age order
    s->reuse(frame->hd.stream_id);
    break;
  }
  if (!s) s = std::make_shared<Http2Stream>(*c, frame->hd.stream_id);
  nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, s.get());
  c->add_open(std::move(s));
  ++c->streams_opened_;
  if (c->stats_) c->stats_->http2.streams.add();
  return 0;
}

int Http2Connection::on_header(nghttp2_session* session, const nghttp2_frame* frame, const uint8_t* name,
                               size_t namelen, const uint8_t* value, size_t valuelen, uint8_t, void* user_data) {
  auto* c = static_cast<Http2Connection*>(user_data);
  auto* s = static_cast<Http2Stream*>(nghttp2_session_get_stream_user_data(session, frame->hd.stream_id));
  if (!s || frame->hd.type != NGHTTP2_HEADERS) return 0;
  // RFC 9113 §6.5.2's measure: name + value + 32 per field.
  const size_t limit = c->spec_->http2.max_header_list_size;
  s->header_bytes_ += namelen + valuelen + 32;
  if (s->header_bytes_ > limit) {
    if (!s->headers_too_large_) {
      s->headers_too_large_ = true;
      if (++c->oversized_blocks_ > c->spec_->http2.max_oversized_header_blocks) {
        c->fail(NGHTTP2_ENHANCE_YOUR_CALM, http2::Violation::kHeaderBomb);
        return NGHTTP2_ERR_CALLBACK_FAILURE;
      }
    }
    // Decoding goes on (HPACK state is per connection) but nothing is kept; a block that
    // expands far beyond the limit is an HPACK bomb.
    if (s->header_bytes_ > kHeaderBombFactor * limit) {
      c->fail(NGHTTP2_ENHANCE_YOUR_CALM, http2::Violation::kHeaderBomb);
      return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    return 0;
  }
  std::string_view n(reinterpret_cast<const char*>(name), namelen);
  std::string_view v(reinterpret_cast<const char*>(value), valuelen);
  if (frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
    if (!n.empty() && n.front() != ':') s->trailers_.add(n, v);
    return 0;
  }
  if (!n.empty() && n.front() == ':') {
    // nghttp2 has refused unknown, repeated and misplaced pseudo-header fields.
    if (n == ":method") s->method_ = v;
    else if (n == ":path") s->path_ = v;
    else if (n == ":authority") s->authority_ = v;
    else if (n == ":scheme") s->scheme_ = v;
    return 0;
  }
  if (n == "content-length") {
    uint64_t length = 0;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), length);
    if (ec == std::errc{} && end == v.data() + v.size()) {
      s->declared_length_ = length;
      s->has_declared_length_ = true;
    }
  }
  s->fields_.add(n, v);
  return 0;
}

int Http2Connection::on_frame_recv(nghttp2_session* session, const nghttp2_frame* frame, void* user_data) {
  auto* c = static_cast<Http2Connection*>(user_data);
  const auto now = std::chrono::steady_clock::now();
  const bool end_stream = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
  switch (frame->hd.type) {
    case NGHTTP2_HEADERS: {
      auto* s = static_cast<Http2Stream*>(nghttp2_session_get_stream_user_data(session, frame->hd.stream_id));
      if (!s) return 0;
      if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
        s->has_body_ = !end_stream;
        s->end_stream_received_ = end_stream;
        s->header_bytes_ = 0;
        c->start_stream(c->streams_[s->slot_]);
      } else {
        // Trailers (nghttp2 made sure they end the stream).
        s->end_stream_received_ = true;
        s->wake();
      }
      return 0;
    }
    case NGHTTP2_DATA: {
      if (frame->hd.length == 0 && !end_stream && !c->empty_data_budget_.take(now)) {
        c->fail(NGHTTP2_ENHANCE_YOUR_CALM, http2::Violation::kEmptyDataFlood);
        return NGHTTP2_ERR_CALLBACK_FAILURE;
      }
      if (!end_stream) return 0;
      if (auto* s = static_cast<Http2Stream*>(nghttp2_session_get_stream_user_data(session, frame->hd.stream_id))) {
        s->end_stream_received_ = true;
        s->wake();
      }
      return 0;
    }
    case NGHTTP2_SETTINGS:
      c->settings_received_ = true;
      [[fallthrough]];
    case NGHTTP2_PING:
      if (frame->hd.flags & NGHTTP2_FLAG_ACK) return 0;
      [[fallthrough]];
    case NGHTTP2_PRIORITY:
      if (!c->control_budget_.take(now)) {
        c->fail(NGHTTP2_ENHANCE_YOUR_CALM, http2::Violation::kControlFlood);
        return NGHTTP2_ERR_CALLBACK_FAILURE;
      }
      return 0;
    case NGHTTP2_RST_STREAM: {
      if (c->stats_) c->stats_->http2.resets_received.add();
      auto* s = static_cast<Http2Stream*>(nghttp2_session_get_stream_user_data(session, frame->hd.stream_id));
      if (s && !s->response_ended_) {
        ++c->premature_resets_;
        if (c->premature_resets_ >= c->spec_->http2.max_premature_resets &&
            2 * c->premature_resets_ >= c->streams_opened_) {
          c->fail(NGHTTP2_ENHANCE_YOUR_CALM, http2::Violation::kRapidReset);
          return NGHTTP2_ERR_CALLBACK_FAILURE;
        }
      }
      return 0;
    }
    default:
      return 0;
  }
}

int Http2Connection::on_data_chunk_recv(nghttp2_session* session, uint8_t, int32_t stream_id,
                                        const uint8_t* data, size_t len, void*) {
  auto* s = static_cast<Http2Stream*>(nghttp2_session_get_stream_user_data(session, stream_id));
  if (!s || s->finished_) {
    // Nobody will take these bytes (the exchange ended before the body did): their window
    // goes back at once.
    nghttp2_session_consume(session, stream_id, len);
    return 0;
  }
  s->body_in_.append(reinterpret_cast<const char*>(data), len);
  s->wake();
  return 0;
}

int Http2Connection::on_stream_close(nghttp2_session* session, int32_t stream_id, uint32_t, void* user_data) {
  auto* c = static_cast<Http2Connection*>(user_data);
  auto* open = static_cast<Http2Stream*>(nghttp2_session_get_stream_user_data(session, stream_id));
  if (!open) return 0;
  Http2Stream& s = *open;
  s.closed_ = true;
  // Bytes received and never acknowledged belong to the connection's window too. (The handed
  // bytes stay: the exchange may still be writing them upstream.)
  const size_t unacknowledged = s.body_in_.size() + s.handed_.size();
  if (unacknowledged > 0) nghttp2_session_consume_connection(session, unacknowledged);
  s.body_in_.clear();
  s.acknowledged_all_ = true;
  s.wake();
  // The exchange may be waiting on its upstream for a client that is gone.
  if (!s.response_ended_) s.up_deadline_.expire_now();
  nghttp2_session_set_stream_user_data(session, stream_id, nullptr);
  std::shared_ptr<Http2Stream> closed = c->remove_open(s);
  // Its exchange is over (or never began): the stream may serve another request.
  if (closed->finished_ || !closed->started_) c->recycle(std::move(closed));
  return 0;
}

int Http2Connection::on_frame_send(nghttp2_session* session, const nghttp2_frame* frame, void* user_data) {
  auto* c = static_cast<Http2Connection*>(user_data);
  switch (frame->hd.type) {
    case NGHTTP2_GOAWAY: {
      c->goaway_sent_ = true;
      const uint32_t code = frame->goaway.error_code;
      if (c->stats_) c->stats_->http2.goaway_sent[http2::error_code_index(code)].add();
      if (code != NGHTTP2_NO_ERROR && !c->violation_counted_) {
        // nghttp2 found the error itself: count it by the code it chose.
        c->violation_counted_ = true;
        // The magic not followed by a SETTINGS frame is an invalid preface too (RFC 9113 §3.4);
        // on h2c it is the only bad preface that reaches nghttp2 (the magic chose HTTP/2).
        http2::Violation why =
            code == NGHTTP2_PROTOCOL_ERROR && !c->settings_received_ ? http2::Violation::kBadPreface
            : code == NGHTTP2_FLOW_CONTROL_ERROR                     ? http2::Violation::kFlowControl
            : code == NGHTTP2_COMPRESSION_ERROR                      ? http2::Violation::kCompression
            : code == NGHTTP2_ENHANCE_YOUR_CALM                      ? http2::Violation::kControlFlood
                                                                     : http2::Violation::kProtocol;
        if (c->stats_) c->stats_->http2.violations[static_cast<size_t>(why)].add();
        if (why != http2::Violation::kBadPreface) {  // not logged, as in fail(): scanners
          log::info("HTTP/2 connection from {} closed: {} (GOAWAY {})", c->client_address_,
                    http2::kViolationNames[static_cast<size_t>(why)],
                    http2::kErrorCodeNames[http2::error_code_index(code)]);
        }
      }
      return 0;
    }
    case NGHTTP2_RST_STREAM:
      if (c->stats_) c->stats_->http2.resets_sent.add();
      return 0;
    case NGHTTP2_DATA:
    case NGHTTP2_HEADERS: {
      if (!(frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) return 0;
      auto* s = static_cast<Http2Stream*>(nghttp2_session_get_stream_user_data(session, frame->hd.stream_id));
      // RFC 9113 §8.1: the response is complete while the client still sends its body; tell it
      // to stop (NO_ERROR), now that the response is on its way.
      if (s && !s->end_stream_received_) {
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id, NGHTTP2_NO_ERROR);
      }
      return 0;
    }
    default:
      return 0;
  }
}

}  // namespace sluice::proxy
