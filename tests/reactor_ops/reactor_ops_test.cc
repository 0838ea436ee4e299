// net::async_receive_after_drain, net::async_receive_some and net::async_wait_readable
// (net/reactor_ops.h) against real TCP sockets on 127.0.0.1: that a read after a drain makes no
// recv() until bytes come, and that no bytes are ever left unread because of it (bytes that came
// before the read started, the rest of a read that filled its buffer, end of stream,
// cancellation).
//
// The test counts recv() calls by defining recv in this executable, which the dynamic linker
// prefers to libc's (and to a sanitizer's interceptor) for the whole process; that is why these
// tests are an executable of their own.
#include <dlfcn.h>
#include <sys/socket.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <string>

#include "sluice/net/reactor_ops.h"

namespace {
std::atomic<int> g_recv_calls{0};
}  // namespace

extern "C" ssize_t recv(int fd, void* data, size_t size, int flags) {
  using Recv = ssize_t (*)(int, void*, size_t, int);
  static const Recv real = reinterpret_cast<Recv>(dlsym(RTLD_NEXT, "recv"));
  g_recv_calls.fetch_add(1);
  return real(fd, data, size, flags);
}

namespace sluice::net {
namespace {

using namespace std::chrono_literals;

class ReactorOpsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tcp::acceptor acceptor(io_, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    client_.connect(acceptor.local_endpoint());
    server_ = acceptor.accept();
  }

  void send(std::string_view text) {
    ASSERT_EQ(asio::write(client_, asio::buffer(text)), text.size());
  }

  // Runs io_ for `time`: the reactor handles every readiness event of the sockets, whether an
  // operation is pending on them or not.
  void idle(std::chrono::milliseconds time = 50ms) {
    // The timer is work for io_, so the reactor waits in epoll_wait (an io_context without work
    // returns from run_for at once, without looking at the sockets).
    asio::steady_timer timer(io_, time);
    timer.async_wait([](error_code) {});
    io_.restart();
    io_.run_for(time + 20ms);
  }

  struct Read {
    std::string data;
    std::optional<error_code> ec;  // set when the read completed
  };
  enum class Mode { kAfterDrain, kTryFirst };
  // Starts a read of up to `size` bytes; it completes in later runs of io_.
  std::shared_ptr<Read> start_read(size_t size, Mode mode = Mode::kAfterDrain) {
    auto read = std::make_shared<Read>();
    read->data.resize(size);
    auto done = [read](error_code ec, size_t n) {
      read->data.resize(n);
      read->ec = ec;
    };
    if (mode == Mode::kAfterDrain) {
      async_receive_after_drain(server_, asio::buffer(read->data), done);
    } else {
      async_receive_some(server_, asio::buffer(read->data), done);
    }
    return read;
  }
  // Runs io_ until `read` completes or `limit` passes.
  void finish(const std::shared_ptr<Read>& read, std::chrono::milliseconds limit = 2000ms) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (!read->ec && std::chrono::steady_clock::now() < until) {
      io_.restart();
      io_.run_for(10ms);
    }
  }

  asio::io_context io_{1};
  tcp::socket client_{io_};
  tcp::socket server_{io_};
};

TEST_F(ReactorOpsTest, ReadAfterAShortReadWaitsWithoutARecvUntilBytesCome) {
  send("one");
  // The bytes' readiness event is handled before the read; had it waited until after the read
  // took the bytes, it would mark the socket readable again (a spurious try, never a lost byte).
  idle();
  auto first = start_read(64);
  finish(first);
  ASSERT_TRUE(first->ec && !*first->ec);
  EXPECT_EQ(first->data, "one");  // shorter than asked: the socket was drained

  const int before = g_recv_calls.load();
  auto second = start_read(64);
  io_.restart();
  io_.poll();
  idle();
  EXPECT_FALSE(second->ec) << "completed without bytes";
  EXPECT_EQ(g_recv_calls.load(), before) << "a recv was tried on the drained socket";

  send("two");
  finish(second);
  ASSERT_TRUE(second->ec && !*second->ec);
  EXPECT_EQ(second->data, "two");
  EXPECT_EQ(g_recv_calls.load(), before + 1);  // the one recv that found the bytes
}

TEST_F(ReactorOpsTest, BytesThatCameBeforeTheReadStartedAreRead) {
  send("one");
  auto first = start_read(64);
  finish(first);
  ASSERT_EQ(first->data, "one");
  // The bytes arrive, and the reactor handles their readiness event, while no read is pending:
  // the read that starts afterwards must not wait for another event (none would come).
  send("two");
  idle();
  auto second = start_read(64);
  finish(second, 500ms);
  ASSERT_TRUE(second->ec) << "the read waits for bytes that are already there";
  EXPECT_FALSE(*second->ec);
  EXPECT_EQ(second->data, "two");
}

TEST_F(ReactorOpsTest, ARestLeftByAFullReadIsReadWithoutANewEvent) {
  send(std::string(100, 'x'));
  idle();  // one readiness event for all 100 bytes, handled before the first read
  auto first = start_read(64);
  finish(first);
  ASSERT_EQ(first->data.size(), 64u);  // filled: the socket may hold more
  auto second = start_read(64);
  finish(second, 500ms);
  ASSERT_TRUE(second->ec) << "the rest of the bytes were left unread";
  EXPECT_EQ(second->data, std::string(36, 'x'));
}

TEST_F(ReactorOpsTest, EndOfStreamAfterADrainCompletesTheRead) {
  send("last");
  auto first = start_read(64);
  finish(first);
  ASSERT_EQ(first->data, "last");
  auto second = start_read(64);
  client_.shutdown(tcp::socket::shutdown_send);
  finish(second);
  ASSERT_TRUE(second->ec);
  EXPECT_EQ(*second->ec, asio::error::eof);
}

TEST_F(ReactorOpsTest, ATryFirstReadSeesAnEndOfStreamThatCameWithTheLastBytes) {
  // A body delimited by the close: the last bytes and the FIN arrive together, one event.
  send("last");
  client_.shutdown(tcp::socket::shutdown_send);
  idle();
  auto first = start_read(64, Mode::kTryFirst);
  finish(first);
  ASSERT_EQ(first->data, "last");  // short: the reactor counts the socket drained
  auto second = start_read(64, Mode::kTryFirst);
  finish(second, 500ms);
  ASSERT_TRUE(second->ec) << "the end of stream was not read";
  EXPECT_EQ(*second->ec, asio::error::eof);
}

TEST_F(ReactorOpsTest, ATryFirstReadThatFindsNothingWaitsWithoutAnotherRecv) {
  send("one");
  idle();
  auto first = start_read(64, Mode::kTryFirst);
  finish(first);
  ASSERT_EQ(first->data, "one");
  const int before = g_recv_calls.load();
  auto second = start_read(64, Mode::kTryFirst);
  idle();
  EXPECT_FALSE(second->ec);
  EXPECT_EQ(g_recv_calls.load(), before + 1);  // its own try, not the reactor's second one
  send("two");
  finish(second);
  ASSERT_TRUE(second->ec && !*second->ec);
  EXPECT_EQ(second->data, "two");
  EXPECT_EQ(g_recv_calls.load(), before + 2);
}

TEST_F(ReactorOpsTest, ACancelledOrClosedWaitEndsWithOperationAborted) {
  send("one");
  auto first = start_read(64);
  finish(first);
  auto pending = start_read(64);
  idle(10ms);
  ASSERT_FALSE(pending->ec);
  server_.cancel();
  finish(pending);
  ASSERT_TRUE(pending->ec);
  EXPECT_EQ(*pending->ec, asio::error::operation_aborted);

  std::optional<error_code> wait_ec;
  async_wait_readable(server_, [&](error_code ec) { wait_ec = ec; });
  idle(10ms);
  ASSERT_FALSE(wait_ec);
  server_.close();
  idle(10ms);
  ASSERT_TRUE(wait_ec);
  EXPECT_EQ(*wait_ec, asio::error::operation_aborted);
}

TEST_F(ReactorOpsTest, WaitReadableCompletesForBytesThatCameSinceTheLastWait) {
  // The TLS Stream's pattern: wait, then read with a recv of its own until EAGAIN, then wait.
  char buf[64];
  auto drain = [&] {
    error_code ec;
    server_.non_blocking(true);
    while (server_.receive(asio::buffer(buf), 0, ec) > 0) {
    }
    EXPECT_EQ(ec, asio::error::would_block);
  };
  std::optional<error_code> ready;
  send("one");
  idle();  // as above: the event of "one" is handled before the wait
  async_wait_readable(server_, [&](error_code ec) { ready = ec; });
  idle(10ms);
  ASSERT_TRUE(ready && !*ready);
  drain();

  // Nothing came since: the wait stays pending, without a recv of its own.
  ready.reset();
  const int before = g_recv_calls.load();
  async_wait_readable(server_, [&](error_code ec) { ready = ec; });
  idle();
  EXPECT_FALSE(ready);
  EXPECT_EQ(g_recv_calls.load(), before);
  send("two");
  idle(10ms);
  ASSERT_TRUE(ready && !*ready);
  drain();

  // Bytes that came, with their event handled, between a drain and the next wait complete it.
  send("three");
  idle();
  ready.reset();
  async_wait_readable(server_, [&](error_code ec) { ready = ec; });
  idle(10ms);
  ASSERT_TRUE(ready) << "the wait missed bytes that are already there";
  EXPECT_FALSE(*ready);
}

}  // namespace
}  // namespace sluice::net
