#include "sluice/net/accept.h"

#include <sys/socket.h>

#include <boost/asio/version.hpp>
#include <cerrno>

namespace sluice::net {

namespace {

// Boost.Asio 1.74 cannot adopt a descriptor that is non-blocking already: assign() records it
// as blocking and possibly dup'ed, so its first operation makes an ioctl(FIONBIO) and its close
// an EPOLL_CTL_DEL (needed only if another descriptor shares the open file). The socket's
// implementation is a protected member of basic_socket; this subclass records what accept4
// made true (O_NONBLOCK, a descriptor of its own) and is moved into a plain tcp::socket, which
// keeps that state. The state is what Asio's own async operations record after their ioctl, so
// nothing behaves differently; other Asio versions take the public path (one ioctl).
class AcceptedSocket : public tcp::socket {
 public:
  AcceptedSocket(const asio::any_io_executor& executor, const tcp& protocol, int fd,
                 error_code& ec)
      : tcp::socket(executor) {
    assign(protocol, fd, ec);
    if (ec) return;
#if BOOST_ASIO_VERSION == 101800 && !defined(BOOST_ASIO_HAS_IOCP)
    auto& state = impl_.get_implementation().state_;
    state |= asio::detail::socket_ops::internal_non_blocking;
    state &= static_cast<asio::detail::socket_ops::state_type>(~asio::detail::socket_ops::possible_dup);
#else
    native_non_blocking(true, ec);
#endif
  }
};

}  // namespace

tcp::socket accept_now(tcp::acceptor& acceptor, PeerInfo& peer, error_code& ec) {
  ec = {};
  // accept4 must not wait for a connection. Asio made the listener non-blocking already if it
  // waited on it (every async operation does, once); this covers a caller that did not.
  if (!acceptor.native_non_blocking()) {
    acceptor.native_non_blocking(true, ec);
    if (ec) return tcp::socket(acceptor.get_executor());
  }
  tcp::endpoint remote;
  socklen_t len = static_cast<socklen_t>(remote.capacity());
  const int fd = ::accept4(acceptor.native_handle(), remote.data(), &len,
                           SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    ec = err == EAGAIN || err == EWOULDBLOCK ? error_code(asio::error::would_block)
                                             : error_code(err, boost::system::system_category());
    return tcp::socket(acceptor.get_executor());
  }
  remote.resize(len);
  // What remote_endpoint() reported before: the address as Asio prints it ("::ffff:10.0.0.1"
  // on a dual-stack listener), without the port.
  peer.address = remote.address().to_string();
  peer.port = remote.port();
  AcceptedSocket socket(acceptor.get_executor(), remote.protocol(), fd, ec);
  if (ec) {
    if (!socket.is_open()) ::close(fd);  // assign failed: nobody owns the descriptor
    error_code ignored;
    socket.close(ignored);
    return tcp::socket(acceptor.get_executor());
  }
  return tcp::socket(std::move(socket));
}

bool accept_error_is_transient(const error_code& ec) {
  // What Asio's accept retries by itself (socket_ops::non_blocking_accept), plus EINTR.
  if (ec.category() != boost::system::system_category()) return false;
  return ec.value() == ECONNABORTED || ec.value() == EPROTO || ec.value() == EINTR;
}

}  // namespace sluice::net
