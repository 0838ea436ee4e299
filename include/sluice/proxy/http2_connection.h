#pragma once
// One downstream HTTP/2 connection: the HTTP/2 codec (nghttp2's server session) over a
// net::Stream that the DownstreamConnection owns and hands over after ALPN chose h2 or an h2c
// client opened with the connection preface. Each request stream is one Http2Stream: its own
// ExchangeRunner and coroutine, the Downstream interface in HTTP/2 framing, so the route steps,
// balancers, stats and logs work the same as for an HTTP/1.1 request.
//
// Coroutines: one reader (socket → nghttp2_session_mem_recv, whose callbacks open streams and
// queue their bytes), one writer (nghttp2_session_mem_send → socket, woken when anything was
// submitted), one per open stream. All on the worker's thread: nghttp2 is never entered from
// two places at once because nothing here is multi-threaded and the callbacks never suspend.
//
// Flow control is manual (nghttp2's automatic WINDOW_UPDATE is off): request body bytes are
// acknowledged only after the exchange took them (sent them upstream), so a client can never
// have more than its window buffered here; a response body part is handed to nghttp2 only as
// the client's window allows, and the exchange waits (stops reading its upstream) until the
// part is gone. Memory per stream is bounded by the windows, not by body sizes.
#include <nghttp2/nghttp2.h>

#include <chrono>
#include <span>
#include <memory>
#include <string>
#include <vector>

#include "sluice/common/asio.h"
#include "sluice/common/deadline.h"
#include "sluice/config/config.h"
#include "sluice/http2/protocol.h"
#include "sluice/http2/received_fields.h"
#include "sluice/net/stream.h"
#include "sluice/proxy/downstream.h"
#include "sluice/proxy/exchange_runner.h"
#include "sluice/server/worker.h"
#include "sluice/stats/metrics.h"

namespace sluice::proxy {

class Http2Connection;
using http2::ReceivedFields;

// One request stream: the Downstream of its exchange.
class Http2Stream final : public Downstream, public std::enable_shared_from_this<Http2Stream> {
 public:
  Http2Stream(Http2Connection& conn, int32_t id);
  ~Http2Stream() override;
  // Makes a spare stream (one whose exchange ended and nghttp2 closed) stream `id`: the
  // per-request state back to its initial values, buffers keeping their capacity, timers kept.
  void reuse(int32_t id);

 private:
  friend class Http2Connection;

  // The exchange of this stream, from the end of its request head to the end of its response.
  // `self` keeps the stream alive from co_spawn to the end (a parameter, not a capture in a
  // wrapping lambda: one coroutine frame less per stream, and no copy that outlives run()).
  awaitable<void> run(std::shared_ptr<Http2Stream> self);
  // Turns the received head into the runner's exchange; a refusal (status != 0) is answered.
  struct Refusal {
    int status = 0;
    LocalReason reason = LocalReason::kBadRequest;
    std::string_view body;
  };
  Refusal decode_head(const server::ListenerInfo& listener);
  // Waits on `timer` until `ready()` or `timeout` (0: none); false on timeout. Woken by wake().
  // The request body and the response each wait on a timer of their own: a duplex exchange
  // (gRPC) waits for both at once, and setting one timer's expiry cancels its other wait.
  // Whether ready() came true before `timeout`, passed through finish(), which the caller may
  // use to decide its answer inside this one coroutine frame.
  template <typename Ready, typename Finish>
  awaitable<bool> wait_until(asio::steady_timer& timer, Ready ready, config::Duration timeout,
                             Finish finish);
  void wake() {
    waker_.cancel();
    body_waker_.cancel();
  }
  // Submits HEADERS (and a data source unless `body` is false) for the exchange's response.
  bool submit_head(int status, std::span<const http::HeaderView> fields, bool body,
                   std::string_view content_type, std::string_view content_length);
  bool submit_pending_head(bool body);
  // The data source nghttp2 pulls the response body from.
  static ssize_t read_body(nghttp2_session* session, int32_t stream_id, uint8_t* buf, size_t length,
                           uint32_t* flags, nghttp2_data_source* source, void* user_data);

  // --- Downstream. ---
  std::shared_ptr<void> guard() override { return shared_from_this(); }
  bool wants_continue() const override { return false; }
  awaitable<bool> send_continue() override { co_return true; }
  awaitable<BodyStatus> read_request_body(filters::BodySpans& part, bool& last, bool wait) override;
  bool queue_response_head(const ResponseFraming& framing) override;
  void queue_response_body(filters::BodySpans body, bool last) override;
  awaitable<bool> flush_response(config::Duration timeout) override;
  awaitable<bool> send_local_reply(bool close) override;
  bool keeps_connection() const override { return true; }
  awaitable<void> tunnel(upstream::Session&, config::Duration, uint64_t&, uint64_t&) override { co_return; }

  Http2Connection& conn_;
  std::shared_ptr<Http2Connection> conn_guard_;  // the connection outlives its streams
  int32_t id_;
  size_t slot_ = 0;  // index in the connection's streams_ while open
  std::unique_ptr<ExchangeRunner> runner_;  // the connection's spare, given back at the end
  Deadline up_deadline_;
  asio::steady_timer waker_;       // the response's waits (flush)
  asio::steady_timer body_waker_;  // the request body's waits
  std::chrono::steady_clock::time_point start_;

  // The request head as received (copied: nghttp2's buffers live only during a callback).
  std::string method_, scheme_, authority_, path_, protocol_;
  ReceivedFields fields_;
  ReceivedFields trailers_;
  size_t header_bytes_ = 0;       // decoded size of the current header block (RFC 9113 §6.5.2)
  bool headers_too_large_ = false;
  uint64_t declared_length_ = 0;  // content-length, when the client sent one
  bool has_declared_length_ = false;

  // Request body: bytes received and not yet taken by the exchange; `handed_` of them were
  // given out by the last read_request_body() and are acknowledged (WINDOW_UPDATE) on the next.
  std::string body_in_;
  // The bytes read_request_body() handed out last, moved out of body_in_ so that DATA arriving
  // while the exchange still writes them upstream cannot move them.
  std::string handed_;
  std::span<const char> part_[1];
  bool acknowledged_all_ = false;  // the stream closed: its window is no longer ours to open
  uint64_t body_bytes_ = 0;
  std::chrono::steady_clock::time_point body_start_;
  bool has_body_ = false;  // the HEADERS did not end the stream
  bool end_stream_received_ = false;

  // Response: body bytes the exchange queued and nghttp2 has not taken yet.
  std::string body_out_;
  size_t out_pos_ = 0;
  bool out_last_ = false;       // the exchange queued the last part
  bool out_deferred_ = false;   // the data source said "later": resume it when bytes come
  bool head_submitted_ = false;
  bool head_pending_ = false;  // queued, submitted with the first body part or the flush
  bool has_body_source_ = false;  // the response has a body (a data source was submitted)
  bool response_ended_ = false;  // END_STREAM (or trailers) went to nghttp2
  ReceivedFields response_trailers_;  // lower-cased copies, for the data source
  bool started_ = false;    // run() was spawned
  bool finished_ = false;   // run() ended: request body bytes still arriving are dropped
  bool closed_ = false;     // nghttp2 closed the stream (complete, or reset by either side)
};

class Http2Connection : public std::enable_shared_from_this<Http2Connection> {
 public:
  // `owner` keeps `stream` alive. `tls`: the connection's TLS parameters, null on h2c.
  Http2Connection(server::Worker& worker, std::string listener_name, net::Stream& stream,
                  std::shared_ptr<void> owner, std::string_view client_address,
                  stats::ListenerStats* stats);
  ~Http2Connection();
  Http2Connection(const Http2Connection&) = delete;
  Http2Connection& operator=(const Http2Connection&) = delete;

  // Serves the connection until it ends. `received`: bytes already read (an h2c preface).
  awaitable<void> run(std::string received);
  // Worker thread: GOAWAY (NO_ERROR, the last stream id processed); open streams finish.
  void drain();

 private:
  friend class Http2Stream;

  bool init(const config::Listener& spec);
  // Feeds received bytes to nghttp2; false when the connection is to end.
  bool receive(const char* data, size_t size);
  void start_stream(const std::shared_ptr<Http2Stream>& s);
  awaitable<void> read_loop();
  awaitable<void> write_loop();
  // Appends what nghttp2 has to send to out_, up to kWriteGather bytes.
  void gather_output();
  // Resumes the writer when it waits for work and there is some (nghttp2 wants to write, or
  // the connection is closing): one timer cancel per batch of frames, not per submit.
  void wake_writer() {
    if (writer_waiting_ && !writer_woken_ && (closing_ || !out_.empty() || nghttp2_session_want_write(session_))) {
      writer_woken_ = true;
      writer_waker_.cancel();
    }
  }
  // Ends the connection: GOAWAY with `code` (counted, with `why` when it is abuse), then close
  // once it is written.
  void fail(uint32_t code, http2::Violation why);
  // A budget of frames that cost work but carry no request (SETTINGS, PING, PRIORITY, empty
  // DATA): refilled over time, the connection is closed when a client overdraws it.
  struct FrameBudget {
    double tokens = 0;
    double capacity = 0;
    double per_second = 0;
    std::chrono::steady_clock::time_point last{};
    bool take(std::chrono::steady_clock::time_point now);
  };
  void stream_done(Http2Stream& s);
  std::unique_ptr<ExchangeRunner> take_runner();
  void give_runner(std::unique_ptr<ExchangeRunner> runner);
  const config::Listener& spec() const { return *spec_; }

  // nghttp2 callbacks (user_data is the connection).
  static int on_begin_headers(nghttp2_session*, const nghttp2_frame*, void*);
  static int on_header(nghttp2_session*, const nghttp2_frame*, const uint8_t*, size_t, const uint8_t*,
                       size_t, uint8_t, void*);
  static int on_frame_recv(nghttp2_session*, const nghttp2_frame*, void*);
  static int on_data_chunk_recv(nghttp2_session*, uint8_t, int32_t, const uint8_t*, size_t, void*);
  static int on_stream_close(nghttp2_session*, int32_t, uint32_t, void*);
  static int on_frame_send(nghttp2_session*, const nghttp2_frame*, void*);

  server::Worker& worker_;
  std::string listener_name_;
  net::Stream& stream_;
  std::shared_ptr<void> owner_;
  std::string client_address_;
  stats::ListenerStats* stats_;
  std::shared_ptr<server::WorkerView> view_;  // the snapshot the connection started on
  const config::Listener* spec_ = nullptr;    // in view_
  nghttp2_session* session_ = nullptr;
  // The open streams (nghttp2's stream user data finds one by id), in no order: each knows its
  // slot, so adding and removing one is O(1) without the allocation of a hash-map node
  // (callgrind, bench/instructions --h2c: ~100 instructions per stream in malloc/free).
  std::vector<std::shared_ptr<Http2Stream>> streams_;
  void add_open(std::shared_ptr<Http2Stream> s);
  std::shared_ptr<Http2Stream> remove_open(Http2Stream& s);
  std::vector<std::unique_ptr<ExchangeRunner>> spare_runners_;
  // Streams whose exchange ended and that nghttp2 closed, for reuse (their timers and buffers):
  // a new stream then costs no allocation of its own (callgrind: timers' construction and the
  // stream's allocation were ~2k instructions per request).
  std::vector<std::shared_ptr<Http2Stream>> spare_streams_;
  void recycle(std::shared_ptr<Http2Stream> s);
  // Http2Stream::submit_head()'s scratch buffers (nghttp2 copies what it keeps), here so their
  // storage outlives the streams.
  std::string nv_names_;
  std::vector<nghttp2_nv> nva_;
  char status_text_[4] = {};
  size_t running_ = 0;  // stream coroutines alive
  asio::steady_timer writer_waker_;
  asio::steady_timer done_waker_;  // run() waits on it for the other coroutines to end
  asio::steady_timer capacity_waker_;  // the reader waits on it while too many streams run
  Deadline read_deadline_;
  Deadline write_deadline_;
  std::string out_;
  bool closing_ = false;      // no more reading; close after the writer flushed
  bool reader_done_ = false, writer_done_ = false;
  bool writer_waiting_ = false, writer_woken_ = false;
  bool goaway_sent_ = false;
  bool violation_counted_ = false;
  bool settings_received_ = false;  // the client's first SETTINGS (the end of its preface)
  // Abuse accounting.
  FrameBudget control_budget_;
  FrameBudget empty_data_budget_;
  uint64_t streams_opened_ = 0;
  uint64_t premature_resets_ = 0;   // client resets of streams whose response had not ended
  uint64_t oversized_blocks_ = 0;
};

}  // namespace sluice::proxy
