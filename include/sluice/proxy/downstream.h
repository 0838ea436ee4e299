#pragma once
// What a downstream codec offers the exchange it produced: the request body, the response
// written in the codec's own framing, local replies and tunnels. The HTTP/1 codec implements it
// per connection (one exchange at a time); the HTTP/2 codec implements it per stream.
// The exchange runner and the router step see only this, never the wire format.
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "sluice/common/asio.h"
#include "sluice/config/config.h"
#include "sluice/filters/filter.h"
#include "sluice/upstream/session.h"

namespace sluice::proxy {

class Downstream {
 public:
  enum class BodyStatus {
    kOk,
    kGone,       // the client went away
    kBad,        // malformed body framing (400)
    kTooLarge,   // over the listener's max_request_body_bytes (413)
    kTimeout,    // request_body_timeout or request_body_total_timeout passed (408)
  };
  // What the codec needs to frame a response head.
  struct ResponseFraming {
    bool length_known = false;           // the body length was declared in the fields
    std::string_view transfer_codings;   // codings applied to the body, passed on
    std::string_view upgrade;            // a 101 accepting this protocol
  };

  virtual ~Downstream() = default;
  // Keeps the codec alive while a deadline of the exchange waits.
  virtual std::shared_ptr<void> guard() = 0;

  // --- Request body. ---
  // The client asked to be told before it sends its body (HTTP/1.1 Expect: 100-continue) and
  // has not been told yet; send_continue() tells it. Split so the common case costs no
  // coroutine frame.
  virtual bool wants_continue() const = 0;
  virtual awaitable<bool> send_continue() = 0;
  // The next part of the request body; views valid until the next call. `last` at the end,
  // with the trailer fields in the exchange's request_trailers. Without `wait`, returns what
  // is already buffered, possibly nothing (so a request head goes upstream without waiting for
  // body bytes, and with the first ones when they came with it).
  virtual awaitable<BodyStatus> read_request_body(filters::BodySpans& part, bool& last,
                                                  bool wait) = 0;

  // --- Response (the exchange's response head, after the response steps). ---
  // False when the codec cannot carry this response (e.g. a transfer coding to an HTTP/1.0
  // client): the caller answers 502 instead.
  virtual bool queue_response_head(const ResponseFraming& framing) = 0;
  virtual void queue_response_body(filters::BodySpans body, bool last) = 0;
  // Writes what is queued within `timeout`; false when the client is gone or too slow.
  virtual awaitable<bool> flush_response(config::Duration timeout) = 0;
  // Writes what the connection takes now, without waiting; true when nothing queued is left
  // (then flush_response() is not needed). A codec that cannot write synchronously says false.
  virtual bool flush_now() { return false; }
  // Writes the exchange's local_reply (after the response steps); `close` ends the connection.
  // Returns whether the connection stays open.
  virtual awaitable<bool> send_local_reply(bool close) = 0;
  // Whether the connection stays open after the response just queued.
  virtual bool keeps_connection() const = 0;

  // --- Upgrades. ---
  // Bytes both ways between the client and `session` until either side is done or the tunnel
  // has been idle for `idle_timeout`; counts bytes into the two counters.
  virtual awaitable<void> tunnel(upstream::Session& session, config::Duration idle_timeout,
                                 uint64_t& from_client, uint64_t& to_client) = 0;
};

}  // namespace sluice::proxy
