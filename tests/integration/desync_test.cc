// Request smuggling over real sockets: raw malformed requests go to the in-process proxy, and
// the backend must receive nothing of them. The backend here records every byte it is sent (not
// only complete requests), so a forwarded head or a partial body counts too. Each case then
// sends one valid "sentinel" request on a new connection and waits for its response: the
// backend's bytes must be exactly that request, which also shows the recorder works.
#include <fmt/core.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "support/http_client.h"
#include "support/net.h"
#include "support/proxy_harness.h"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;
using namespace std::string_literals;

// A backend that keeps every byte it receives, in arrival order, and answers "200 ok" to each
// complete head it sees (so that a forwarded request never leaves the proxy waiting).
class RecordingBackend {
 public:
  RecordingBackend() {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (listen_fd_ < 0 ||
        ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listen_fd_, 16) != 0 ||
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ADD_FAILURE() << "backend could not listen";
      return;
    }
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~RecordingBackend() {
    stopping_ = true;
    if (acceptor_.joinable()) acceptor_.join();
    for (auto& t : threads_) t.join();
    if (listen_fd_ >= 0) ::close(listen_fd_);
  }
  RecordingBackend(const RecordingBackend&) = delete;
  RecordingBackend& operator=(const RecordingBackend&) = delete;

  uint16_t port() const { return port_; }
  std::string received() const {
    std::lock_guard lock(mu_);
    return received_;
  }

 private:
  void accept_loop() {
    while (!stopping_) {
      pollfd pfd{listen_fd_, POLLIN, 0};
      if (::poll(&pfd, 1, 20) <= 0) continue;
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      threads_.emplace_back([this, fd] { serve(Socket(fd)); });
    }
  }

  void serve(Socket socket) {
    socket.set_abort_flag(&stopping_);
    std::string mine;
    size_t answered = 0;
    char buf[16384];
    while (!stopping_) {
      size_t got = 0;
      IoStatus st = socket.read_some(buf, sizeof buf, got, deadline_in(60s));
      if (st != IoStatus::kOk) return;
      {
        std::lock_guard lock(mu_);
        received_.append(buf, got);
      }
      mine.append(buf, got);
      for (size_t at; (at = mine.find("\r\n\r\n", answered)) != std::string::npos;
           answered = at + 4) {
        socket.send_all("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", deadline_in(5s));
      }
    }
  }

  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  std::vector<std::thread> threads_;  // touched by the acceptor thread only, then joined
  mutable std::mutex mu_;
  std::string received_;
};

struct DesyncCase {
  const char* name;
  std::string bytes;
  int status;      // what the proxy answers now
  int better = 0;  // where it differs from `status`: the more precise answer (501, 505)
};

void PrintTo(const DesyncCase& c, std::ostream* os) { *os << c.name; }

std::unique_ptr<RunningProxy> proxy_to(const RecordingBackend& backend) {
  EXPECT_NE(backend.port(), 0);
  ProxyConfig config;
  config.endpoint_ports = {backend.port()};
  return RunningProxy::start(config);
}

class Desync : public ::testing::TestWithParam<DesyncCase> {};

const std::string kSentinel = "GET /sentinel HTTP/1.1\r\nHost: localhost\r\n\r\n";

TEST_P(Desync, RefusedAndNothingReachesTheBackend) {
  const DesyncCase& c = GetParam();
  RecordingBackend backend;
  auto proxy = proxy_to(backend);
  ASSERT_TRUE(proxy);

  HttpConnection client(proxy->port());
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(client.send(c.bytes));
  auto result = client.read_until_close(5000ms);
  EXPECT_EQ(result.status, IoStatus::kEof) << "connection not closed: " << to_string(result.status);
  RawResponse r = parse_raw_response(result.data);
  ASSERT_TRUE(r.ok) << "no response; received: " << result.data;
  // 501 for a transfer coding other than chunked, 505 for an HTTP version other than 1.0/1.1.
  EXPECT_EQ(r.status, c.better != 0 ? c.better : c.status) << r.body;
  EXPECT_EQ(find_header(r.headers, "connection"), "close");
  // One response only: no second (smuggled) request was answered on this connection.
  EXPECT_EQ(result.data.find("HTTP/1.1", 1), std::string::npos) << result.data;

  HttpConnection sentinel(proxy->port());
  ASSERT_TRUE(sentinel.send(kSentinel));
  HttpResponse s = sentinel.read_response();
  ASSERT_TRUE(s.ok()) << s.error;
  EXPECT_EQ(s.status, 200);
  std::string seen = backend.received();
  EXPECT_EQ(seen.rfind("GET /sentinel HTTP/1.1\r\n", 0), 0u) << "the backend received:\n" << seen;
  EXPECT_EQ(seen.find("\r\n\r\n"), seen.size() - 4) << "the backend received:\n" << seen;
}

const std::string kPost = "POST /upload HTTP/1.1\r\nHost: localhost\r\n";
const std::string kChunked = kPost + "Transfer-Encoding: chunked\r\n\r\n";

INSTANTIATE_TEST_SUITE_P(
    Requests, Desync,
    ::testing::Values(
        DesyncCase{"BareCrThenSecondRequest",
                   "GET / HTTP/1.1\r\nHost: localhost\r\n\rGET /smuggled HTTP/1.1\r\nHost: "
                   "localhost\r\n\r\n",
                   400},
        DesyncCase{"BareCrBeforeCrlfThenSecondRequest",
                   "GET / HTTP/1.1\r\nHost: localhost\r\nX: b\r\r\n\r\nGET /smuggled HTTP/1.1\r\n"
                   "Host: localhost\r\n\r\n",
                   400},
        DesyncCase{
            "BareLfAfterLastChunk",
            kChunked + "5\r\nhello\r\n0\r\n\nGET /smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n",
            400},
        DesyncCase{"ChunkDataNotFollowedByCrlf",
                   kChunked + "5\r\nhelloGET /smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n", 400},
        DesyncCase{"ChunkSizeOverflow", kChunked + "ffffffffffffffffff\r\nhello\r\n0\r\n\r\n", 400},
        DesyncCase{"ForbiddenTrailer", kChunked + "0\r\nContent-Length: 5\r\n\r\n", 400},
        DesyncCase{"EmptyFieldName", kPost + ": chunked\r\nContent-Length: 0\r\n\r\n", 400},
        DesyncCase{"NoVersion", "GET /\r\nHost: localhost\r\n\r\n", 400},
        DesyncCase{"Http20", "GET / HTTP/2.0\r\nHost: localhost\r\n\r\n", 400, 505},
        DesyncCase{"Http12", "GET / HTTP/1.2\r\nHost: localhost\r\n\r\n", 400, 505},
        DesyncCase{"GzipOnly", kPost + "Transfer-Encoding: gzip\r\n\r\nhello", 400},
        DesyncCase{"GzipThenChunked", kPost + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
                   400, 501},
        DesyncCase{
            "TransferEncodingInHttp10",
            "POST / HTTP/1.0\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            400},
        DesyncCase{"ContentLengthAndTransferEncoding",
                   kPost + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nhello",
                   400},
        DesyncCase{"ContentLengthOverflow",
                   kPost + "Content-Length: 9223372036854775808\r\n\r\nhello", 400},
        DesyncCase{"ContentLengthSign", kPost + "Content-Length: +5\r\n\r\nhello", 400},
        DesyncCase{"ContentLengthDiffering",
                   kPost + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400},
        DesyncCase{"TargetHighByte", "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: localhost\r\n\r\n", 400},
        DesyncCase{"TargetControl", "GET /a\x01z HTTP/1.1\r\nHost: localhost\r\n\r\n", 400},
        DesyncCase{"TargetSpace", "GET /a b HTTP/1.1\r\nHost: localhost\r\n\r\n", 400},
        DesyncCase{"TargetFragment", "GET /public#/../admin HTTP/1.1\r\nHost: localhost\r\n\r\n",
                   400},
        DesyncCase{"ObsFold", "GET / HTTP/1.1\r\nHost: localhost\r\nX: a\r\n b\r\n\r\n", 400},
        DesyncCase{"BareLfInHead", "GET / HTTP/1.1\nHost: localhost\r\n\r\n", 400},
        DesyncCase{"NulInValue", "GET / HTTP/1.1\r\nHost: localhost\r\nX: a\0b\r\n\r\n"s, 400},
        DesyncCase{"SpaceBeforeColon", "GET / HTTP/1.1\r\nHost : localhost\r\n\r\n", 400}),
    [](const ::testing::TestParamInfo<DesyncCase>& info) { return std::string(info.param.name); });

// "Connection: close " (trailing white space) still closes: the response says so and the
// connection ends after it.
TEST(DesyncAccepted, ConnectionCloseWithTrailingWhiteSpaceCloses) {
  RecordingBackend backend;
  auto proxy = proxy_to(backend);
  ASSERT_TRUE(proxy);
  for (const char* value : {"close ", "close\t"}) {
    SCOPED_TRACE(fmt::format("Connection: [{}]", value));
    HttpConnection client(proxy->port());
    ASSERT_TRUE(client.send(
        fmt::format("GET /c HTTP/1.1\r\nHost: localhost\r\nConnection: {}\r\n\r\n", value)));
    auto result = client.read_until_close(5000ms);
    EXPECT_EQ(result.status, IoStatus::kEof) << to_string(result.status);
    RawResponse r = parse_raw_response(result.data);
    ASSERT_TRUE(r.ok) << result.data;
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(find_header(r.headers, "connection"), "close");
  }
}

}  // namespace
}  // namespace sluice::testing
