#pragma once
// An upstream session: one protocol to one endpoint, able to carry a request and read its
// response in protocol-neutral terms. The pool hands sessions out; the router step talks to
// them only through this interface: Http1Session (one connection, one request at a time) and
// Http2StreamSession (one stream of a multiplexed Http2Connection).
//
// The I/O calls are the only ones that suspend. Parsing is split from reading so a response
// whose head and body arrive in one read is relayed with one downstream write.
#include <span>
#include <string_view>

#include "sluice/common/asio.h"
#include "sluice/common/byte_buffer.h"
#include "sluice/http/fields.h"
#include "sluice/http/head_builder.h"
#include "sluice/net/stream.h"

namespace sluice::upstream {

// The neutral facts of a response head, beyond status and fields.
struct ResponseHeadFacts {
  int status = 0;
  std::string_view reason;
  bool interim = false;      // 1xx other than 101
  bool length_known = false;  // a declared length (Content-Length): no re-framing needed
  // Codings applied to the body before transfer framing ("gzip" of "gzip, chunked"): part of
  // the body, passed on downstream.
  std::string_view transfer_codings;
};

// What parse_response() found in the bytes read so far.
struct ResponseStep {
  bool error = false;
  std::string_view reason;   // why, for logs (error)
  bool head = false;         // a head completed: head_facts() and response_fields() describe it
  bool complete = false;     // the message ended (trailers(), if any, are final)
  bool need_input = false;   // nothing more to parse: read_response() next
};

class Session {
 public:
  enum class ReadStatus { kOk, kEof, kError, kHeadTooLarge };

  virtual ~Session() = default;
  virtual std::string_view protocol() const = 0;
  // The transport, for a tunnel after an accepted upgrade (HTTP/1 only). An HTTP/2 stream
  // shares it with other streams: never close or cancel it through a session.
  virtual net::Stream& stream() = 0;
  // Ends this session's pending I/O with an error (the upstream deadline calls it). HTTP/1
  // cancels its socket; an HTTP/2 stream wakes only its own waiter, the connection goes on.
  virtual void cancel(error_code& ec) = 0;
  // After a failure: the backend said it did not process the request (HTTP/2 GOAWAY above
  // the stream's id, REFUSED_STREAM), so it may go again on another connection whatever the
  // method.
  virtual bool unprocessed() const { return false; }

  // --- The request. ---
  // Queues the head; `head_request` tells the response parser the response has no body.
  virtual void queue_request_head(const http::UpstreamRequestInput& head, bool head_request) = 0;
  // Queues body bytes (framed as the head said); `last` ends the body, with `trailers`.
  virtual void queue_request_body(std::span<const std::span<const char>> body, bool last,
                                  std::span<const http::HeaderView> trailers) = 0;
  // Sends everything queued; false when the connection failed.
  virtual awaitable<bool> write_request() = 0;
  // Sends what the connection takes now, without waiting; true when nothing queued is left
  // (then write_request() is not needed). A session that cannot write synchronously says false.
  // `more_follows`: more of this request's body is certain to be queued next (see
  // net::Stream::write_now), so the connection may hold a partial segment for it.
  virtual bool write_request_now(bool more_follows) {
    (void)more_follows;
    return false;
  }

  // --- The response. ---
  // Parses bytes already read. Body parts of the step are in body(), valid until the next call
  // of parse_response(), read_response() or release_body().
  virtual ResponseStep parse_response() = 0;
  virtual const ResponseHeadFacts& head_facts() const = 0;
  virtual std::span<const http::HeaderView> response_fields() const = 0;
  virtual std::span<const std::span<const char>> body() const = 0;
  virtual std::span<const http::HeaderView> trailers() const = 0;
  // The body parts parsed so far went downstream: their buffer space may be reused.
  virtual void release_body() = 0;
  virtual awaitable<ReadStatus> read_response() = 0;
  // At the end of the stream: does it complete a body delimited by the connection's close?
  virtual bool finish_at_eof() = 0;
  // Bytes that came after a 101 head: the tunnel's first bytes, moved into `to`.
  virtual ByteBuffer& leftover() = 0;
  // After a complete response: may the session carry another request?
  virtual bool reusable() = 0;
};

}  // namespace sluice::upstream
