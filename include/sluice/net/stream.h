#pragma once
// A byte stream under an HTTP codec: bytes in, bytes out, and what is known about the peer.
// Plain TCP or TLS behind the same members, so the HTTP/1 code (and later HTTP/2) is written
// once against Stream, neither copied nor templated per transport.
//
// The asynchronous members are templates over the completion token (so a coroutine awaiting a
// read costs what awaiting the socket costs: no extra frame), dispatching at run time on the
// transport. They are not virtual on purpose: one branch per I/O is cheaper than an allocated
// type-erased operation.
//
// TLS runs OpenSSL directly on the non-blocking socket (through a send/recv BIO of ours,
// stream.cc) and waits for readiness (async_wait_readable, or async_wait to write) when OpenSSL
// asks for it, the way HAProxy drives it: no memory BIO pair, so no extra copy of every byte and
// no extra buffer per connection (which is what Asio's ssl::stream would add).
//
// Reads, plain or TLS, remember when they drained the socket, so that the first read of the
// peer's next message waits for readiness instead of first calling a recv that fails with EAGAIN
// (async_read_next_message, net/reactor_ops.h).
#include <openssl/ssl.h>

#include <boost/container/small_vector.hpp>
#include <memory>
#include <string>
#include <vector>

#include "sluice/common/asio.h"
#include "sluice/net/reactor_ops.h"
#include "sluice/net/tls_context.h"
#include "sluice/net/tls_policy.h"

namespace sluice::net {

// What the codec and the logs may know about the far end of an accepted connection (from
// accept4, net/accept.h).
struct PeerInfo {
  std::string address;  // IP without port
  uint16_t port = 0;
};

// The TLS parameters and the peer's identity of an established TLS connection.
struct TlsInfo {
  const char* version = "";  // "TLSv1.3" (OpenSSL's static strings)
  const char* cipher = "";   // "TLS_AES_128_GCM_SHA256"
  std::string sni;           // the server name the client asked for; empty: none
  std::string alpn;          // the protocol agreed; empty: none
  bool resumed = false;
  // A client certificate that passed verification (mTLS); the fields below describe it.
  bool peer_certificate = false;
  std::string peer_subject;  // RFC 2253
  std::vector<std::string> peer_uri_sans;
  std::vector<std::string> peer_dns_sans;
  std::string peer_cert_sha256;  // lower-case hex of the DER certificate (XFCC "Hash")
};

// What a TLS Stream's socket BIO (stream.cc) knows: the descriptor, and whether its last read
// left the socket empty (a recv shorter than asked, or EAGAIN).
struct SocketBio {
  int fd = -1;
  bool drained = false;
};

class Stream {
 public:
  explicit Stream(tcp::socket socket) : socket_(std::move(socket)) {}
  // A TLS stream over `socket`; `ssl` comes from a TlsServerContext or TlsClientContext, which
  // `owner` keeps alive for the callbacks OpenSSL makes into it.
  Stream(tcp::socket socket, SslPtr ssl, std::shared_ptr<const void> owner);
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  Stream(Stream&&) noexcept;
  Stream& operator=(Stream&&) noexcept;

  bool is_tls() const { return tls_ != nullptr; }
  // The established TLS connection's parameters; null on plain TCP.
  const TlsInfo* tls_info() const { return tls_ ? &tls_->info : nullptr; }
  // After a failed handshake: why, for metrics, and OpenSSL's words for messages.
  TlsFailure tls_failure() const;
  // Whether a ClientHello (server) or ServerHello (client) was received.
  bool tls_hello_seen() const { return tls_ && SSL_get_state(tls_->ssl.get()) != TLS_ST_BEFORE; }
  std::string tls_error() const;

  // The TLS handshake (server or client, as the SSL was made). On failure `ec` is set and the
  // SSL must not be used for data. Like the members below it takes the token every caller
  // uses, `asio::redirect_error(use_awaitable, ec)`.
  template <typename Token>
  awaitable<void> async_handshake(Token&& token) {
    return tls_handshake(token.ec_);
  }

  // Reads what the peer has sent, at least one byte. Tries a recv (SSL_read) at once, so bytes
  // or an end of stream that are already there are read without a wait.
  template <typename Buffers, typename Token>
  auto async_read_some(const Buffers& buffers, Token&& token) {
    if (!tls_) [[likely]] return async_receive_some(socket_, buffers, std::forward<Token>(token));
    return tls_read_some(first_nonempty(buffers), /*next_message=*/false, token.ec_);
  }

  // The first read of the peer's next message, which it sends only after it got ours: the next
  // HTTP/1 request after a response, the response after a request. When the last read drained
  // the socket (and over TLS OpenSSL holds nothing), it waits for readiness instead of first
  // trying a recv that would fail with EAGAIN, unless a readiness event came since
  // (net/reactor_ops.h). A FIN that came together with the last bytes read is then seen only at
  // the next event: a closed backend's RST, or a client's idle timeout.
  template <typename Buffers, typename Token>
  auto async_read_next_message(const Buffers& buffers, Token&& token) {
    if (!tls_) [[likely]] return async_receive_after_drain(socket_, buffers, std::forward<Token>(token));
    return tls_read_some(first_nonempty(buffers), /*next_message=*/true, token.ec_);
  }

  // Writes every byte of `buffers` (a gather list) or fails.
  template <typename Buffers, typename Token>
  auto async_write(const Buffers& buffers, Token&& token) {
    if (!tls_) [[likely]] return asio::async_write(socket_, buffers, std::forward<Token>(token));
    WriteCursor cursor;
    for (auto it = asio::buffer_sequence_begin(buffers); it != asio::buffer_sequence_end(buffers); ++it) {
      if (asio::const_buffer b(*it); b.size() > 0) cursor.pieces.push_back(b);
    }
    return tls_write(std::move(cursor), token.ec_);
  }

  // Writes what the connection takes now, without waiting, and drops the written bytes from
  // `pieces`; true when nothing is left. Most small heads and responses leave in this one
  // sendmsg (plain) or SSL_write (TLS), which spares the asynchronous write's operation,
  // completion and coroutine resumption. The caller falls back to async_write for the rest, or
  // when an error waits to be reported there. `more_follows` (plain TCP only) sends with
  // MSG_MORE: the kernel may hold a last partial segment until the next write, so the caller
  // sets it only when that next write is certain to come (the rest of a sized body).
  bool write_now(std::vector<asio::const_buffer>& pieces, bool more_follows = false);

  // Stops sending (a TLS close_notify, then a TCP FIN); reads may continue.
  void shutdown_send();
  // Closes the connection; over TLS a close_notify goes first (best effort, never a wait), so
  // the peer can tell the end from a cut and keeps its session resumable (OpenSSL clients drop
  // a session whose connection ended without one: found with `openssl s_time -reuse -www`).
  void close() {
    if (tls_) send_close_notify();
    error_code ignored;
    socket_.close(ignored);
  }
  // Ends the pending operations with operation_aborted (deadlines use it).
  void cancel() {
    error_code ignored;
    socket_.cancel(ignored);
  }
  void cancel(error_code& ec) { socket_.cancel(ec); }  // the form Deadline calls
  bool is_open() const { return socket_.is_open(); }
  asio::any_io_executor get_executor() { return socket_.get_executor(); }
  // The TCP socket underneath, for socket options and liveness checks; never for HTTP bytes.
  tcp::socket& lowest_layer() { return socket_; }
  // TLS only: whether the connection is still usable while idle (a pooled upstream connection).
  // Reads what the peer sent since (TLS 1.3 session tickets, a close_notify) without blocking;
  // false when it closed, failed or sent application data nobody asked for.
  bool tls_idle_alive();
  // TLS client only: a copy of the session to resume on the next connection to the same
  // endpoint, or null when this one cannot be resumed or has not changed since the last call
  // returned it (the caller keeps that copy: a pooled connection is asked after every request).
  SslSessionPtr tls_session();

 private:
  enum class Want { kDone, kRead, kWrite };
  // A gather write in progress: the pieces, the position and what was written.
  struct WriteCursor {
    boost::container::small_vector<asio::const_buffer, 8> pieces;
    size_t index = 0;   // current piece
    size_t offset = 0;  // into the current piece
    size_t written = 0;
  };
  struct TlsState {
    SocketBio bio;  // the BIO's data (stream.cc), here so its address is stable
    SslPtr ssl;
    std::shared_ptr<const void> owner;
    TlsInfo info;
    unsigned long error = 0;     // OpenSSL's error code of the failure (0: none, or a syscall)
    long verify_result = X509_V_OK;
    bool established = false;    // the handshake completed
    bool failed = false;         // a fatal error: no close_notify may follow
    std::string staging;         // small pieces of a gather write, sent as one record
    size_t staging_sent = 0;
    // The SSL's session that tls_session() last copied, referenced (not copied) so that its
    // address cannot be reused by a newer session while it is compared.
    SslSessionPtr session_copied;
  };

  // The TLS operations: coroutines compiled once in stream.cc, so the plain branches above stay
  // as small as before TLS existed. (As async_compose templates instantiated in every caller's
  // file they made GCC inline less elsewhere: +486 instructions per plain small GET,
  // bench/instructions.) Each sets `ec` as redirect_error would.
  awaitable<void> tls_handshake(error_code& ec);
  awaitable<size_t> tls_read_some(asio::mutable_buffer target, bool next_message, error_code& ec);
  template <typename Buffers>
  static asio::mutable_buffer first_nonempty(const Buffers& buffers) {
    for (auto it = asio::buffer_sequence_begin(buffers); it != asio::buffer_sequence_end(buffers); ++it) {
      if (asio::mutable_buffer b(*it); b.size() > 0) return b;
    }
    return {};
  }
  awaitable<size_t> tls_write(WriteCursor cursor, error_code& ec);
  // Waits until the socket is ready for what `want` asks; false (with `ec`) when that failed.
  awaitable<bool> tls_wait(Want want, error_code& ec);

  // One step of each operation: kDone (with `ec` set on failure) or what to wait for.
  Want tls_handshake_step(error_code& ec);
  Want tls_read_step(asio::mutable_buffer target, size_t& n, error_code& ec);
  bool tls_write_now(std::vector<asio::const_buffer>& pieces);
  Want tls_write_step(WriteCursor& cursor, error_code& ec);
  void send_close_notify();
  // Turns OpenSSL's answer to a call that returned `ret` into a wait or an error.
  Want tls_outcome(int ret, error_code& ec);

  tcp::socket socket_;
  std::unique_ptr<TlsState> tls_;
};

}  // namespace sluice::net
