// net::accept_now: one accept4 gives a socket Asio can use at once, non-blocking and
// close-on-exec, and the peer's address as remote_endpoint() printed it before (the access log
// and x-forwarded-for read it); no pending connection and a closed descriptor are reported.
#include "sluice/net/accept.h"

#include <fcntl.h>
#include <gtest/gtest.h>

#include <boost/asio/read.hpp>

#include <array>

namespace sluice::net {
namespace {

struct Listener {
  asio::io_context io;
  tcp::acceptor acceptor{io};

  explicit Listener(const asio::ip::address& address) {
    error_code ec;
    acceptor.open(tcp::endpoint(address, 0).protocol(), ec);
    if (!ec) acceptor.bind(tcp::endpoint(address, 0), ec);
    if (!ec) acceptor.listen(16, ec);
    if (ec) acceptor.close();
  }
  uint16_t port() const { return acceptor.local_endpoint().port(); }
};

void expect_accepts(const asio::ip::address& address, const std::string& printed) {
  Listener l(address);
  ASSERT_TRUE(l.acceptor.is_open()) << "cannot listen on " << address.to_string();
  PeerInfo peer;
  error_code ec;
  tcp::socket nothing = accept_now(l.acceptor, peer, ec);
  EXPECT_EQ(ec, asio::error::would_block);
  EXPECT_FALSE(nothing.is_open());

  tcp::socket client(l.io);
  client.connect(tcp::endpoint(address, l.port()));
  tcp::socket accepted(l.io);
  for (int i = 0; i < 200; ++i) {  // the handshake completes in the kernel, asynchronously
    accepted = accept_now(l.acceptor, peer, ec);
    if (ec != asio::error::would_block) break;
    ::usleep(5000);
  }
  ASSERT_FALSE(ec) << ec.message();
  ASSERT_TRUE(accepted.is_open());
  EXPECT_EQ(peer.address, printed);
  EXPECT_EQ(peer.port, client.local_endpoint().port());
  EXPECT_EQ(accepted.remote_endpoint().address().to_string(), peer.address);
  const int fd = accepted.native_handle();
  EXPECT_TRUE(::fcntl(fd, F_GETFL) & O_NONBLOCK);
  EXPECT_TRUE(::fcntl(fd, F_GETFD) & FD_CLOEXEC);

  // Asio's operations work on it as on a socket of its own accept, both ways.
  asio::write(client, asio::buffer(std::string("ping")));
  std::array<char, 4> got{};
  size_t n = 0;
  accepted.async_read_some(asio::buffer(got), [&](error_code e, size_t k) {
    ec = e;
    n = k;
  });
  l.io.run();
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(std::string(got.data(), n), "ping");
  asio::write(accepted, asio::buffer(std::string("pong")));
  got = {};
  EXPECT_EQ(asio::read(client, asio::buffer(got)), 4u);
  EXPECT_EQ(std::string(got.data(), 4), "pong");

  // Closed here (without the EPOLL_CTL_DEL), the peer sees the end of the stream.
  accepted.close();
  client.read_some(asio::buffer(got), ec);
  EXPECT_EQ(ec, asio::error::eof);
}

TEST(AcceptNow, Ipv4PeerAddressAndUsableSocket) {
  expect_accepts(asio::ip::make_address("127.0.0.1"), "127.0.0.1");
}

TEST(AcceptNow, Ipv6PeerAddressAndUsableSocket) {
  expect_accepts(asio::ip::make_address("::1"), "::1");
}

TEST(AcceptNow, ClosedListenerIsAnErrorToBackOffFrom) {
  Listener l(asio::ip::make_address("127.0.0.1"));
  ASSERT_TRUE(l.acceptor.is_open());
  // A descriptor that is not a listening socket fails the way a broken listener would.
  tcp::acceptor not_listening(l.io, tcp::v4());
  PeerInfo peer;
  error_code ec;
  tcp::socket s = accept_now(not_listening, peer, ec);
  EXPECT_TRUE(ec);
  EXPECT_NE(ec, asio::error::would_block);
  EXPECT_FALSE(accept_error_is_transient(ec));
  EXPECT_FALSE(s.is_open());
  EXPECT_TRUE(accept_error_is_transient(error_code(ECONNABORTED, boost::system::system_category())));
  EXPECT_FALSE(accept_error_is_transient(error_code(EMFILE, boost::system::system_category())));
}

}  // namespace
}  // namespace sluice::net
