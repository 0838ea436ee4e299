#pragma once
// One request on an Http2Connection: the Session the router talks to for an HTTP/2 cluster.
// The request goes as HEADERS (the forwarding fields decided by http::forward_request_fields,
// like HTTP/1), DATA fed by queue_request_body()/write_request() through a data provider, and
// trailers. The connection's reader fills this stream's response queues and wakes only this
// stream's waiter; parse_response() hands out what arrived.
//
// HTTP/2 field rules (RFC 9113 §8.2): names lower-case, no connection-specific fields, `te`
// only as `te: trailers` (sent when the client asked for trailers and on every gRPC request,
// which gRPC servers expect). An upgrade (tunnel) offer is dropped: the request goes as a plain
// request.
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "sluice/common/asio.h"
#include "sluice/http2/received_fields.h"
#include "sluice/upstream/http2_connection.h"
#include "sluice/upstream/session.h"

namespace sluice::upstream {

// What a stream session allocates and grows: its waker, the queued request body and trailers,
// the response's fields, DATA chunks and views. A session takes a spare set from its connection
// and gives it back, emptied, when it ends (Http2Connection::take_buffers/give_back), so a gRPC
// call does not allocate and free these again for every stream (callgrind, bench/instructions
// --grpc). A set belongs to one live session at a time: nothing of a finished stream points
// into it (nghttp2's stream user data is cleared in stream_done first).
struct Http2StreamBuffers {
  explicit Http2StreamBuffers(const asio::any_io_executor& ex) : waker(ex) {}
  // Empties everything for the next stream, keeping capacity; false when the set holds more
  // than a spare should (a large request body or response head), so it is freed instead.
  bool clear_for_reuse();

  asio::steady_timer waker;
  std::string req_body;
  http2::ReceivedFields req_trailers;  // lower-cased, hop-by-hop dropped
  http2::ReceivedFields fields;
  http2::ReceivedFields trailer_fields;
  std::vector<http::HeaderView> field_views;
  std::vector<http::HeaderView> trailer_views;
  std::deque<std::string> chunks;  // deque: stable addresses for the spans handed out
  std::vector<std::span<const char>> body_spans;
  bool large_head = false;  // a response head or trailers beyond kSpareHeadBytes arrived
};

class Http2StreamSession final : public Session {
 public:
  Http2StreamSession(std::shared_ptr<Http2Connection> conn);
  ~Http2StreamSession() override;
  Http2StreamSession(const Http2StreamSession&) = delete;
  Http2StreamSession& operator=(const Http2StreamSession&) = delete;

  std::string_view protocol() const override { return "HTTP/2"; }
  net::Stream& stream() override { return conn_->stream(); }
  void cancel(error_code& ec) override;
  bool unprocessed() const override { return unprocessed_; }
  void queue_request_head(const http::UpstreamRequestInput& head, bool head_request) override;
  void queue_request_body(std::span<const std::span<const char>> body, bool last,
                          std::span<const http::HeaderView> trailers) override;
  awaitable<bool> write_request() override;
  ResponseStep parse_response() override;
  const ResponseHeadFacts& head_facts() const override { return facts_; }
  std::span<const http::HeaderView> response_fields() const override { return field_views_; }
  std::span<const std::span<const char>> body() const override { return body_spans_; }
  std::span<const http::HeaderView> trailers() const override { return trailer_views_; }
  void release_body() override;
  awaitable<ReadStatus> read_response() override;
  // HTTP/2 never delimits a body by the end of the connection.
  bool finish_at_eof() override { return false; }
  ByteBuffer& leftover() override { return no_leftover_; }
  // A stream carries one request; the connection stays with the pool.
  bool reusable() override { return false; }

  int32_t id() const { return id_; }

  // --- For Http2Connection's callbacks. ---
  void on_begin_headers();
  // False when the head or trailers go beyond their bounds: the stream is reset.
  bool on_header(std::string_view name, std::string_view value);
  void on_headers_end(bool end_stream);
  void on_data(const uint8_t* data, size_t len);
  void on_end_stream();
  // nghttp2 closed the stream; `error_code` is the RST_STREAM/GOAWAY code (0: clean).
  void on_close(uint32_t error_code);
  // The connection died or went away before this stream ended.
  void fail(bool unprocessed);
  // The data provider: copies up to `len` request body bytes into `buf`.
  ssize_t read_body(uint8_t* buf, size_t len, uint32_t* flags);

 private:
  // A wait until wake(): the caller co_awaits what this returns at once, then decrements
  // waiting_. Not a coroutine of its own, so a wait makes no frame of its own (a coroutine
  // frame per wait, three per gRPC call: callgrind, bench/instructions --grpc).
  awaitable<void> start_wait();
  void wake();
  // Something arrived that parse_response() has not reported.
  bool news() const;

  std::shared_ptr<Http2Connection> conn_;
  // The recycled buffers (see Http2StreamBuffers), and names for its parts.
  std::unique_ptr<Http2StreamBuffers> buf_;
  asio::steady_timer& waker_;
  int32_t id_ = -1;
  int waiting_ = 0;  // coroutines waiting (the writer and the reader of a duplex exchange)
  error_code wait_ec_;  // a wait's result: a wake() cancels it, which is how it ends
  bool cancelled_ = false;
  bool failed_ = false;  // reset or cut before the response ended
  bool unprocessed_ = false;
  bool closed_ = false;  // nghttp2 closed the stream
  // The request (its HEADERS are built in the connection's RequestScratch).
  std::string& req_body_;  // queued body bytes; req_sent_ of them went
  size_t req_sent_ = 0;
  bool req_last_ = false;      // the body's end is queued
  bool req_deferred_ = false;  // the data provider waits for bytes
  http2::ReceivedFields& req_trailers_;
  // The response.
  bool head_request_ = false;
  bool in_head_ = false;     // a HEADERS block is arriving
  size_t head_bytes_ = 0;    // of the block arriving
  bool final_head_ = false;  // the final (non-1xx) head arrived
  bool head_reported_ = false;
  bool step_again_ = false;  // the step after a head runs even without news
  bool ended_ = false;       // END_STREAM arrived
  bool end_reported_ = false;
  http2::ReceivedFields& fields_;
  http2::ReceivedFields& trailer_fields_;
  std::vector<http::HeaderView>& field_views_;
  std::vector<http::HeaderView>& trailer_views_;
  ResponseHeadFacts facts_;
  std::deque<std::string>& chunks_;  // received DATA, not yet consumed
  size_t reported_chunks_ = 0;       // chunks_ handed out by parse_response()
  size_t unconsumed_ = 0;            // bytes in chunks_ not yet given back to the window
  std::vector<std::span<const char>>& body_spans_;
  ByteBuffer no_leftover_{0};
};

}  // namespace sluice::upstream
