#pragma once
// A byte stream under an HTTP codec: bytes in, bytes out, and what is known about the peer.
// Plain TCP today; TLS joins as a second transport behind the same members, so the HTTP/1 code
// (and later HTTP/2) is written once against Stream, neither copied nor templated per transport.
//
// The asynchronous members are templates over the completion token (so a coroutine awaiting a
// read costs what awaiting the socket costs: no extra frame), dispatching at run time on the
// transport. They are not virtual on purpose: one branch per I/O is cheaper than an allocated
// type-erased operation.
#include <string>

#include "sluice/common/asio.h"

namespace sluice::net {

// What the codec and the logs may know about the far end of a stream.
struct PeerInfo {
  std::string address;  // IP without port; "unknown" when the socket could not tell
  uint16_t port = 0;
};

class Stream {
 public:
  explicit Stream(tcp::socket socket) : socket_(std::move(socket)) {}
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  Stream(Stream&&) = default;

  template <typename Buffers, typename Token>
  auto async_read_some(const Buffers& buffers, Token&& token) {
    return socket_.async_read_some(buffers, std::forward<Token>(token));
  }
  // Writes every byte of `buffers` (a gather list) or fails.
  template <typename Buffers, typename Token>
  auto async_write(const Buffers& buffers, Token&& token) {
    return asio::async_write(socket_, buffers, std::forward<Token>(token));
  }

  // Stops sending (a TCP FIN); reads may continue.
  void shutdown_send() {
    error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
  }
  void close() {
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
  PeerInfo peer() const;
  asio::any_io_executor get_executor() { return socket_.get_executor(); }
  // The TCP socket underneath, for socket options and liveness checks; never for HTTP bytes.
  tcp::socket& lowest_layer() { return socket_; }

 private:
  tcp::socket socket_;
};

}  // namespace sluice::net
