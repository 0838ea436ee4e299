#pragma once
// One downstream HTTP/1.1 connection: the HTTP/1 codec over a net::Stream. It reads request
// heads into the protocol-neutral Exchange of its ExchangeRunner, one request at a time so
// pipelined requests are answered in order, feeds the request body to the runner, and writes
// responses, local replies and tunnels in HTTP/1 framing (the Downstream interface). It lives
// on the worker that accepted it and is kept alive by its own coroutine.
#include <array>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "sluice/common/asio.h"
#include "sluice/common/byte_buffer.h"
#include "sluice/common/deadline.h"
#include "sluice/http/body_encoder.h"
#include "sluice/http/head_builder.h"
#include "sluice/http/parser.h"
#include "sluice/net/stream.h"
#include "sluice/proxy/downstream.h"
#include "sluice/proxy/exchange_runner.h"
#include "sluice/proxy/http1_state.h"
#include "sluice/server/worker.h"
#include "sluice/stats/metrics.h"

namespace sluice::proxy {

class DownstreamConnection : public std::enable_shared_from_this<DownstreamConnection>,
                             private Downstream {
 public:
  // `client_address`: the peer's IP as accept returned it (net::accept_now), for the access
  // log, x-forwarded-for and the messages.
  DownstreamConnection(server::Worker& worker, std::string listener_name, net::Stream stream,
                       std::string client_address);
  ~DownstreamConnection() override;
  void start();
  // Worker thread: closes the connection now if it is idle, otherwise after the current response.
  void drain();
  const std::string& listener_name() const { return listener_name_; }

 private:
  enum class HeadStatus {
    kOk,
    kClosed,
    kTimeout,
    kBad,             // 400
    kTooLarge,        // 431
    kNotImplemented,  // 501: a transfer coding Sluice cannot forward
    kBadVersion,      // 505: a well-formed HTTP version other than 1.0 and 1.1
  };

  // The connection's coroutine: the TLS handshake, then requests one at a time. `self` keeps
  // the connection alive. `unparked`: the bytes of the next request park() read into
  // first_bytes_ (0: none yet).
  awaitable<void> run(std::shared_ptr<DownstreamConnection> self, size_t unparked);
  // Waits for the next request of an idle keep-alive connection with a plain completion handler
  // instead of the coroutine, which has ended: run() starts again when bytes arrive.
  // `idle_left`: the rest of the idle timeout.
  void park(config::Duration idle_left);
  // The TLS handshake of a TLS listener's connection, bounded by tls_handshake_timeout and
  // counted in the listener's TLS stats. False: the connection is to be closed.
  awaitable<bool> handshake(const config::Listener& spec);
  // Reads the rest of a request head whose first bytes are buffered. `deadline_armed`: the
  // header timeout already runs (else it starts now).
  awaitable<HeadStatus> read_head(const config::Listener& spec, bool deadline_armed);
  // What a request head just read asks for: routing, or a local reply when the HTTP/1 rules
  // refuse it.
  struct Refusal {
    int status = 0;  // 0: the head is fine
    LocalReason reason = LocalReason::kBadRequest;
    std::string_view body;
  };
  // Turns the request head just read into the runner's exchange (the HTTP/1 rules: target
  // forms, Host, Expect, upgrade offers). Not a coroutine: no frame on the request path.
  Refusal decode_head(const server::ListenerInfo& listener);
  // The local reply for a head that could not be read (408, 431, 501, 505, 400).
  static Refusal refusal_for(HeadStatus status);
  // The listener of this connection left the configuration (a reload removed it).
  bool listener_removed() const;
  awaitable<void> close_gracefully();
  // Hands the connection to the HTTP/2 codec until it ends (ALPN h2, or the h2c preface, whose
  // bytes and what followed them are `received`).
  awaitable<void> serve_http2(std::string received);
  // After the first `n` bytes of a connection began like the HTTP/2 preface: reads until the
  // preface is complete or the bytes differ. Returns the bytes now in first_bytes_ (0: closed).
  awaitable<size_t> read_preface(size_t n);
  // Copies `from` → `to` (starting with what `buffer` holds) until EOF (passed on as a half
  // close) or an error (which ends both directions).
  struct TunnelState;
  awaitable<void> pump(net::Stream& from, net::Stream& to, ByteBuffer& buffer, TunnelState& state,
                       uint64_t& counter);
  awaitable<void> watch_tunnel(TunnelState& state, net::Stream& up);

  // --- Downstream: what the exchange runner asks of this codec. ---
  std::shared_ptr<void> guard() override { return shared_from_this(); }
  bool wants_continue() const override { return expect_continue_ && !continue_sent_; }
  awaitable<bool> send_continue() override;
  awaitable<BodyStatus> read_request_body(filters::BodySpans& part, bool& last, bool wait) override;
  bool queue_response_head(const ResponseFraming& framing) override;
  void queue_response_body(filters::BodySpans body, bool last) override;
  awaitable<bool> flush_response(config::Duration timeout) override;
  bool flush_now() override;
  awaitable<bool> send_local_reply(bool close) override;
  bool keeps_connection() const override { return keep_open_; }
  awaitable<void> tunnel(upstream::Session& session, config::Duration idle_timeout,
                         uint64_t& from_client, uint64_t& to_client) override;

  server::Worker& worker_;
  std::string listener_name_;
  net::Stream stream_;
  std::string client_address_;
  Deadline down_deadline_;
  Deadline up_deadline_;  // the runner's, for upstream I/O; owned here so it never outlives us
  // The per-request state while a request is in progress (null while idle).
  std::unique_ptr<Http1State> st_;
  const config::Listener* spec_ = nullptr;  // of the current exchange (its view keeps it alive)
  stats::ListenerStats* listener_stats_ = nullptr;
  bool idle_ = false;           // waiting for the first byte of a request
  bool first_request_ = true;   // no request read yet: the header timeout runs from accept
  std::chrono::steady_clock::time_point head_start_;  // first byte of the current request

  // The current request.
  size_t head_end_ = 0;             // offset just past the request head
  size_t body_pos_ = 0;             // offset of the next request body byte to parse
  bool body_unread_ = false;        // request body bytes may still be on the wire
  bool request_keep_alive_ = true;  // the client allows another request on this connection
  bool http10_ = false;
  bool expect_continue_ = false;    // the client waits for 100 Continue before its body
  bool continue_sent_ = false;
  uint64_t body_bytes_ = 0;         // request body bytes read so far
  bool head_owned_ = false;         // the exchange copied the head out of the read buffer
  std::chrono::steady_clock::time_point body_start_;
  // The current response.
  bool chunked_down_ = false;
  bool keep_open_ = false;

  // The first bytes of a request, read while the connection holds no per-request state (idle).
  std::array<char, 256> first_bytes_;
  // The HTTP/2 codec, while the connection speaks HTTP/2.
  std::shared_ptr<class Http2Connection> h2_;
};

}  // namespace sluice::proxy
