// Integration tests: the real Server on 127.0.0.1:0, a real in-process origin (TestUpstream) and
// real client sockets. Each test starts and stops its own servers.
#include <fmt/core.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <functional>
#include <regex>
#include <thread>

#include "support/http_client.h"
#include "support/proxy_harness.h"
#include "support/stream_data.h"
#include "support/test_upstream.h"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;

ProxyConfig to(const TestUpstream& upstream) { return to_port(upstream.port()); }

// The body a counting handler answers with: "<bytes> <checksum in hex>".
std::string count_line(uint64_t bytes, uint64_t checksum) { return fmt::format("{} {:x}", bytes, checksum); }

void count_handler(UpstreamExchange& ex) {
  ex.respond(200, count_line(ex.request().body_bytes, ex.request().body_checksum));
}

bool looks_like_uuid(const std::string& s) {
  static const std::regex re("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
  return std::regex_match(s, re);
}

// ---------------------------------------------------------------------------------------------
// 1. Upstream connection reuse

TEST(ConnectionReuse, SequentialRequestsOnOneDownstreamConnectionUseOneUpstreamConnection) {
  TestUpstream upstream(TestUpstream::ok_handler());
  ASSERT_TRUE(upstream.listening());
  auto proxy = RunningProxy::start(to(upstream));
  ASSERT_TRUE(proxy);

  HttpConnection client(proxy->port());
  ASSERT_TRUE(client.connected());
  for (int i = 0; i < 20; ++i) {
    HttpResponse r = client.request("GET", fmt::format("/reuse/{}", i));
    ASSERT_TRUE(r.ok()) << "request " << i << ": " << r.error;
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "ok");
    EXPECT_EQ(r.header("x-upstream-seq"), fmt::format("0/{}", i));
  }
  EXPECT_EQ(upstream.connections_accepted(), 1u);
  EXPECT_EQ(upstream.requests_per_connection(), std::vector<size_t>{20});
  auto requests = upstream.requests();
  ASSERT_EQ(requests.size(), 20u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(requests[i].target, fmt::format("/reuse/{}", i));
}

TEST(ConnectionReuse, RequestsOnSeparateDownstreamConnectionsUseOneUpstreamConnection) {
  TestUpstream upstream(TestUpstream::ok_handler());
  ASSERT_TRUE(upstream.listening());
  auto proxy = RunningProxy::start(to(upstream));
  ASSERT_TRUE(proxy);

  for (int i = 0; i < 20; ++i) {
    HttpConnection client(proxy->port());
    ASSERT_TRUE(client.connected());
    HttpResponse r = client.request("GET", fmt::format("/separate/{}", i));
    ASSERT_TRUE(r.ok()) << "request " << i << ": " << r.error;
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.header("x-upstream-seq"), fmt::format("0/{}", i));
  }
  EXPECT_EQ(upstream.connections_accepted(), 1u);
  EXPECT_EQ(upstream.requests_per_connection(), std::vector<size_t>{20});
}

// ---------------------------------------------------------------------------------------------
// 2. Content-Length and chunked bodies, both directions

TEST(Streaming, ContentLengthRequestBodyArrivesByteExact) {
  TestUpstream upstream(count_handler);
  auto proxy = RunningProxy::start(to(upstream));
  ASSERT_TRUE(proxy);

  const std::string body = pattern_bytes(300 * 1024 + 7, 11);  // several proxy reads
  HttpConnection client(proxy->port());
  HttpResponse r = client.request("POST", "/upload", {{"Content-Type", "application/octet-stream"}}, body);
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, count_line(body.size(), checksum_of(body)));

  auto requests = upstream.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_FALSE(requests[0].chunked);
  EXPECT_EQ(requests[0].content_length, body.size());
  EXPECT_EQ(requests[0].body_bytes, body.size());
  EXPECT_EQ(requests[0].body_checksum, checksum_of(body));
  EXPECT_TRUE(requests[0].body == body);
}

// The parts of a sized body leave with MSG_MORE while more is due, so the kernel may hold a
// small part until the next one: a body that trickles in small pieces with pauses must still
// arrive whole, its last part at once (no wait for a timeout), and the pooled upstream
// connection carry the next request.
TEST(Streaming, ContentLengthRequestBodyInPausedPiecesArrivesWhole) {
  TestUpstream upstream(count_handler);
  auto proxy = RunningProxy::start(to(upstream));
  ASSERT_TRUE(proxy);

  const std::vector<size_t> sizes = {1, 100, 16384, 70000, 3, 7};
  std::string body;
  for (size_t size : sizes) body += pattern_bytes(size, body.size());
  HttpConnection client(proxy->port());
  ASSERT_TRUE(client.send(build_request("POST", "/upload",
                                        {{"Content-Length", std::to_string(body.size())}})));
  size_t offset = 0;
  for (size_t size : sizes) {
    std::this_thread::sleep_for(30ms);
    ASSERT_TRUE(client.send(std::string_view(body).substr(offset, size)));
    offset += size;
  }
  HttpResponse r = client.read_response();
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, count_line(body.size(), checksum_of(body)));

  HttpResponse again = client.request("GET", "/after");
  ASSERT_TRUE(again.ok()) << again.error;
  EXPECT_EQ(again.body, count_line(0, checksum_of("")));

  auto requests = upstream.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].content_length, body.size());
  EXPECT_TRUE(requests[0].body == body);
  EXPECT_EQ(upstream.requests_per_connection(), std::vector<size_t>{2});
}

TEST(Streaming, ChunkedRequestBodyArrivesByteExact) {
  TestUpstream upstream(count_handler);
  auto proxy = RunningProxy::start(to(upstream));
  ASSERT_TRUE(proxy);

  HttpConnection client(proxy->port());
  ASSERT_TRUE(client.send(build_request("POST", "/upload", {{"Transfer-Encoding", "chunked"}})));
  std::string expected;
  uint64_t offset = 0;
  for (size_t size : {1u, 100u, 16384u, 70000u, 3u, 40000u}) {
    std::string chunk = pattern_bytes(size, offset);
    offset += size;
    expected += chunk;
    // One send per chunk, and a chunk split across two sends, so the proxy sees partial chunks.
    std::string framed = fmt::format("{:x}\r\n{}\r\n", size, chunk);
    size_t half = framed.size() / 2;
    ASSERT_TRUE(client.send(framed.substr(0, half)));
    std::this_thread::sleep_for(2ms);
    ASSERT_TRUE(client.send(framed.substr(half)));
  }
  ASSERT_TRUE(client.send("0\r\n\r\n"));
  HttpResponse r = client.read_response();
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, count_line(expected.size(), checksum_of(expected)));

  auto requests = upstream.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_TRUE(requests[0].chunked);
  EXPECT_EQ(requests[0].content_length, std::nullopt);
  EXPECT_EQ(requests[0].body_bytes, expected.size());
  EXPECT_EQ(requests[0].body_checksum, checksum_of(expected));
  EXPECT_TRUE(requests[0].body == expected);

  // The connection stays usable after a chunked request.
  HttpResponse again = client.request("GET", "/after");
  ASSERT_TRUE(again.ok()) << again.error;
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(again.body, count_line(0, checksum_of("")));
}

TEST(Streaming, ContentLengthResponseBodyArrivesByteExact) {
  const std::string body = pattern_bytes(200 * 1024 + 3, 5);
  TestUpstream upstream([&](UpstreamExchange& ex) { ex.respond(200, body, {{"x-kind", "sized"}}); });
  auto proxy = RunningProxy::start(to(upstream));
  ASSERT_TRUE(proxy);

  HttpConnection client(proxy->port());
  HttpResponse r = client.request("GET", "/sized");
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.framing, HttpResponse::Framing::kContentLength);
  EXPECT_EQ(r.header("content-length"), std::to_string(body.size()));
  EXPECT_EQ(r.header("x-kind"), "sized");
  EXPECT_EQ(r.body_bytes, body.size());
  EXPECT_EQ(r.body_checksum, checksum_of(body));
  EXPECT_TRUE(r.body == body);
}

TEST(Streaming, ChunkedResponseReachesHttp11ClientChunkedAndByteExact) {
  std::vector<std::string> chunks;
  std::string expected;
  uint64_t offset = 0;
  for (size_t size : {5u, 40000u, 1u, 70000u, 17u}) {
    chunks.push_back(pattern_bytes(size, offset));
    offset += size;
    expected += chunks.back();
  }
  TestUpstream upstream([&](UpstreamExchange& ex) { ex.respond_chunked(200, chunks); });
  auto proxy = RunningProxy::start(to(upstream));
  ASSERT_TRUE(proxy);

  HttpConnection client(proxy->port());
  HttpResponse r = client.request("GET", "/chunked");
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.framing, HttpResponse::Framing::kChunked);
  EXPECT_EQ(r.header("transfer-encoding"), "chunked");
  EXPECT_EQ(r.header("content-length"), std::nullopt);
  EXPECT_EQ(r.body_bytes, expected.size());
  EXPECT_EQ(r.body_checksum, checksum_of(expected));
  EXPECT_TRUE(r.body == expected);
  ASSERT_FALSE(r.chunk_sizes.empty());
  EXPECT_EQ(r.chunk_sizes.back(), 0u);

  // Keep-alive survives a chunked response.
  HttpResponse again = client.request("GET", "/chunked");
  ASSERT_TRUE(again.ok()) << again.error;
  EXPECT_TRUE(again.body == expected);
}

TEST(Streaming, CloseDelimitedResponseReachesHttp11ClientByteExact) {
  const std::string body = pattern_bytes(100 * 1024 + 1, 9);
  TestUpstream upstream([&](UpstreamExchange& ex) { ex.respond_until_close(200, body); });
  auto proxy = RunningProxy::start(to(upstream));
  ASSERT_TRUE(proxy);

  HttpConnection client(proxy->port());
  HttpResponse r = client.request("GET", "/until-close");
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.status, 200);
  // An HTTP/1.1 client gets the unsized body re-framed as chunked, so its connection survives.
  EXPECT_EQ(r.framing, HttpResponse::Framing::kChunked);
  EXPECT_EQ(r.body_bytes, body.size());
  EXPECT_EQ(r.body_checksum, checksum_of(body));
  EXPECT_TRUE(r.body == body);

  HttpResponse again = client.request("GET", "/until-close");
  ASSERT_TRUE(again.ok()) << again.error;
  EXPECT_TRUE(again.body == body);
  EXPECT_EQ(upstream.connections_accepted(), 2u);  // a close-delimited response ends its connection
}

TEST(Streaming, CloseDelimitedResponseReachesHttp10ClientByteExact) {
  const std::string body = pattern_bytes(100 * 1024 + 1, 13);
  TestUpstream upstream([&](UpstreamExchange& ex) { ex.respond_until_close(200, body); });
  auto proxy = RunningProxy::start(to(upstream));
  ASSERT_TRUE(proxy);

  HttpConnection client(proxy->port());
  ASSERT_TRUE(client.send("GET /until-close HTTP/1.0\r\nHost: localhost\r\n\r\n"));
  HttpResponse r = client.read_response();
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.framing, HttpResponse::Framing::kUntilClose);
  EXPECT_EQ(r.body_bytes, body.size());
  EXPECT_EQ(r.body_checksum, checksum_of(body));
}

TEST(Streaming, Http10RequestWithoutHostReachesTheBackendWithTheEndpointAsHost) {
  TestUpstream upstream(TestUpstream::ok_handler());
  auto proxy = RunningProxy::start(to(upstream));
  ASSERT_TRUE(proxy);

  HttpConnection client(proxy->port());
  ASSERT_TRUE(client.send("GET /no-host HTTP/1.0\r\n\r\n"));
  HttpResponse r = client.read_response();
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.status, 200);
  auto requests = upstream.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].header("host"), fmt::format("127.0.0.1:{}", upstream.port()));
  EXPECT_EQ(requests[0].header("x-forwarded-host"), std::nullopt);  // no authority to report
}

// ---------------------------------------------------------------------------------------------
// 4. Pipelining

TEST(Pipelining, ResponsesComeBackInRequestOrder) {
  constexpr int kRequests = 5;
  TestUpstream upstream([](UpstreamExchange& ex) {
    int marker = std::stoi(ex.request().header("x-marker").value_or("-1"));
    // The first request waits longest: a proxy answering out of order would show it.
    ex.sleep_for(std::chrono::milliseconds((kRequests - marker) * 60));
    ex.respond(200, fmt::format("marker={}", marker), {{"x-marker-echo", std::to_string(marker)}});
  });
  auto proxy = RunningProxy::start(to(upstream));
  ASSERT_TRUE(proxy);

  std::string all;
  for (int i = 0; i < kRequests; ++i) {
    all += build_request("GET", fmt::format("/pipe/{}", i), {{"X-Marker", std::to_string(i)}});
  }
  HttpConnection client(proxy->port());
  ASSERT_TRUE(client.send(all));  // one send: all five requests arrive together
  for (int i = 0; i < kRequests; ++i) {
    HttpResponse r = client.read_response();
    ASSERT_TRUE(r.ok()) << "response " << i << ": " << r.error;
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.header("x-marker-echo"), std::to_string(i));
    EXPECT_EQ(r.body, fmt::format("marker={}", i));
  }
  auto requests = upstream.requests();
  ASSERT_EQ(requests.size(), static_cast<size_t>(kRequests));
  for (int i = 0; i < kRequests; ++i) EXPECT_EQ(requests[i].target, fmt::format("/pipe/{}", i));
}

// ---------------------------------------------------------------------------------------------
// 5. Upstream down

TEST(LocalReplies, UpstreamDownGives503ConnectError) {
  ClosedPort nobody;
  ASSERT_NE(nobody.port(), 0);
  ProxyConfig config;
  config.endpoint_ports = {nobody.port()};
  auto proxy = RunningProxy::start(config);
  ASSERT_TRUE(proxy);

  HttpResponse r = http_get(proxy->port(), "/down");
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.header("content-type"), "text/plain");
  EXPECT_EQ(r.body.rfind("upstream connect error", 0), 0u) << r.body;
  ASSERT_TRUE(r.header("x-request-id"));
  EXPECT_TRUE(looks_like_uuid(*r.header("x-request-id"))) << *r.header("x-request-id");
}

// ---------------------------------------------------------------------------------------------
// 6. Route timeout

TEST(LocalReplies, SlowUpstreamGives504AfterRouteTimeout) {
  TestUpstream upstream([](UpstreamExchange& ex) {
    if (ex.sleep_for(3s)) ex.respond(200, "too late");
  });
  ProxyConfig config = to(upstream);
  config.routes = {"{name: slow, match: {prefix: /slow}, cluster: backend, timeout: 300ms}"};
  auto proxy = RunningProxy::start(config);
  ASSERT_TRUE(proxy);

  auto start = Clock::now();
  HttpResponse r = http_get(proxy->port(), "/slow");
  auto elapsed = std::chrono::duration_cast<milliseconds>(Clock::now() - start);
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.status, 504);
  EXPECT_EQ(r.body, "upstream request timeout\n");
  EXPECT_EQ(r.header("content-type"), "text/plain");
  EXPECT_TRUE(r.header("x-request-id"));
  // Not a speed assertion: only that the answer did not wait for the 3 s upstream.
  EXPECT_LT(elapsed, 2500ms);
  EXPECT_EQ(upstream.request_count(), 1u);
}

// ---------------------------------------------------------------------------------------------
// Broken upstream responses: 502 before the head, an aborted connection after it

struct BrokenUpstreamCase {
  const char* name;
  std::function<void(UpstreamExchange&)> misbehave;
};

void PrintTo(const BrokenUpstreamCase& c, std::ostream* os) { *os << c.name; }

class BrokenUpstream : public ::testing::TestWithParam<BrokenUpstreamCase> {};

TEST_P(BrokenUpstream, Gets502AndTheConnectionStaysUsable) {
  const auto& misbehave = GetParam().misbehave;
  TestUpstream upstream([&](UpstreamExchange& ex) {
    if (ex.request().target == "/broken") {
      misbehave(ex);
    } else {
      ex.respond(200, "fine");
    }
  });
  auto proxy = RunningProxy::start(to(upstream));
  ASSERT_TRUE(proxy);

  HttpConnection client(proxy->port());
  HttpResponse r = client.request("GET", "/broken");
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.status, 502) << r.body;
  EXPECT_EQ(r.header("content-type"), "text/plain");
  EXPECT_FALSE(r.body.empty());
  EXPECT_TRUE(r.header("x-request-id"));
  // Tried once: a request that may have reached the backend is not replayed after a failure
  // on a fresh connection.
  EXPECT_EQ(upstream.request_count(), 1u);

  HttpResponse next = client.request("GET", "/fine");
  ASSERT_TRUE(next.ok()) << next.error;
  EXPECT_EQ(next.status, 200);
  EXPECT_EQ(next.body, "fine");
}

INSTANTIATE_TEST_SUITE_P(
    Upstream, BrokenUpstream,
    ::testing::Values(
        BrokenUpstreamCase{"InvalidStatusLine", [](UpstreamExchange& ex) { ex.send("HTTP/1.1 abc\r\n\r\n"); }},
        BrokenUpstreamCase{"NotHttpAtAll",
                           [](UpstreamExchange& ex) { ex.send("SSH-2.0-OpenSSH_9.2\r\n\r\n"); }},
        BrokenUpstreamCase{"CloseBeforeResponse", [](UpstreamExchange& ex) { ex.close_now(); }},
        BrokenUpstreamCase{"ResetBeforeResponse", [](UpstreamExchange& ex) { ex.reset_now(); }},
        BrokenUpstreamCase{"CloseInsideHead", [](UpstreamExchange& ex) {
                             ex.send("HTTP/1.1 200 OK\r\ncontent-le");
                             ex.close_now();
                           }}),
    [](const ::testing::TestParamInfo<BrokenUpstreamCase>& info) { return std::string(info.param.name); });

TEST(BrokenUpstreamMidBody, TruncatedResponseAbortsTheDownstreamConnection) {
  TestUpstream upstream([](UpstreamExchange& ex) {
    ex.send("HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n" + std::string(1000, 'x'));
    ex.sleep_for(50ms);
    ex.reset_now();
  });
  auto proxy = RunningProxy::start(to(upstream));
  ASSERT_TRUE(proxy);

  HttpConnection client(proxy->port());
  HttpResponse r = client.request("GET", "/truncated");
  // The head already went out, so the only honest signal left is closing the connection before
  // the promised 100000 bytes: the client must see an incomplete body, never a complete one.
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status, 200);
  EXPECT_LT(r.body_bytes, 100000u);
  auto rest = client.read_until_close(3000ms);
  EXPECT_NE(rest.status, IoStatus::kTimeout) << "the downstream connection was left open";
}

// ---------------------------------------------------------------------------------------------
// 7. Malformed requests: 400, then the connection is closed

struct MalformedCase {
  const char* name;
  std::string bytes;
  std::string body_prefix;
};

void PrintTo(const MalformedCase& c, std::ostream* os) { *os << c.name; }

class Malformed : public ::testing::TestWithParam<MalformedCase> {};

TEST_P(Malformed, Gets400AndConnectionClosed) {
  const MalformedCase& c = GetParam();
  TestUpstream upstream(TestUpstream::ok_handler());
  auto proxy = RunningProxy::start(to(upstream));
  ASSERT_TRUE(proxy);

  HttpConnection client(proxy->port());
  ASSERT_TRUE(client.send(c.bytes));
  auto result = client.read_until_close(5000ms);
  EXPECT_EQ(result.status, IoStatus::kEof) << "connection not closed cleanly: " << to_string(result.status)
                                          << ", received: " << result.data;
  RawResponse r = parse_raw_response(result.data);
  ASSERT_TRUE(r.ok) << "no response; received: " << result.data;
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(find_header(r.headers, "content-type"), "text/plain");
  EXPECT_EQ(find_header(r.headers, "connection"), "close");
  EXPECT_EQ(r.body.rfind(c.body_prefix, 0), 0u) << "body: " << r.body;
  EXPECT_EQ(find_header(r.headers, "content-length"), std::to_string(r.body.size()));
  // Nothing malformed reaches the backend as a complete request.
  EXPECT_EQ(upstream.request_count(), 0u);
}

INSTANTIATE_TEST_SUITE_P(
    Requests, Malformed,
    ::testing::Values(
        MalformedCase{"BadRequestLine", "NOT-HTTP\r\n\r\n", "malformed request\n"},
        MalformedCase{"TrailingJunkInRequestLine", "GET / HTTP/1.1 junk\r\nHost: localhost\r\n\r\n",
                      "malformed request\n"},
        MalformedCase{"BadMethodToken", "G(T / HTTP/1.1\r\nHost: localhost\r\n\r\n", "malformed request\n"},
        MalformedCase{"HeaderWithoutColon", "GET / HTTP/1.1\r\nHost: localhost\r\nNoColonHere\r\n\r\n",
                      "malformed request\n"},
        MalformedCase{"ContentLengthAndTransferEncoding",
                      "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n"
                      "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                      "malformed request\n"},
        // The head is valid, so this one fails while the body streams: the body text says so.
        MalformedCase{"InvalidChunkSize",
                      "POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "zz\r\nhello\r\n0\r\n\r\n",
                      "malformed request"},
        MalformedCase{"MissingHost", "GET / HTTP/1.1\r\n\r\n", "missing Host header\n"}),
    [](const ::testing::TestParamInfo<MalformedCase>& info) { return std::string(info.param.name); });

// ---------------------------------------------------------------------------------------------
// 8. Oversize headers: 431

class HeaderLimits : public ::testing::Test {
 protected:
  void SetUp() override {
    ProxyConfig config = to(upstream_);
    config.listener_options = "max_request_headers_size: 8KiB, max_request_headers_count: 10";
    proxy_ = RunningProxy::start(config);
    ASSERT_TRUE(proxy_);
  }
  void TearDown() override {
    if (proxy_) proxy_->stop();
    upstream_.stop();
  }

  void expect_431(const std::string& request) {
    HttpConnection client(proxy_->port());
    ASSERT_TRUE(client.send(request));
    auto result = client.read_until_close(5000ms);
    EXPECT_EQ(result.status, IoStatus::kEof) << to_string(result.status);
    RawResponse r = parse_raw_response(result.data);
    ASSERT_TRUE(r.ok) << "no response; received: " << result.data.substr(0, 200);
    EXPECT_EQ(r.status, 431);
    EXPECT_EQ(r.body, "request headers too large\n");
    EXPECT_EQ(upstream_.request_count(), 0u);
  }

  TestUpstream upstream_{TestUpstream::ok_handler()};
  std::unique_ptr<RunningProxy> proxy_;
};

TEST_F(HeaderLimits, OneHeaderLargerThanTheLimitGets431) {
  expect_431(build_request("GET", "/", {{"X-Big", std::string(9000, 'a')}}));
}

TEST_F(HeaderLimits, HeaderJustUnderTheSizeLimitPasses) {
  HttpResponse r = HttpConnection(proxy_->port()).request("GET", "/", {{"X-Big", std::string(7000, 'a')}});
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.status, 200);
  ASSERT_EQ(upstream_.request_count(), 1u);
  EXPECT_EQ(upstream_.requests()[0].header("x-big"), std::string(7000, 'a'));
}

TEST_F(HeaderLimits, MoreHeadersThanTheCountLimitGets431) {
  Headers headers;  // plus Host: 11 headers
  for (int i = 0; i < 10; ++i) headers.push_back({fmt::format("X-H{}", i), "v"});
  expect_431(build_request("GET", "/", headers));
}

TEST_F(HeaderLimits, ExactlyTheCountLimitPasses) {
  Headers headers;  // plus Host: 10 headers
  for (int i = 0; i < 9; ++i) headers.push_back({fmt::format("X-H{}", i), "v"});
  HttpResponse r = HttpConnection(proxy_->port()).request("GET", "/", headers);
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.status, 200);
}

// ---------------------------------------------------------------------------------------------
// 9. Idle upstream connections closed by the backend

TEST(BackendClose, IdleConnectionClosedByBackendIsNotReused) {
  TestUpstream::Options options;
  options.idle_close_after = 100ms;
  TestUpstream upstream(TestUpstream::ok_handler(), options);
  auto proxy = RunningProxy::start(to(upstream));
  ASSERT_TRUE(proxy);

  HttpConnection client(proxy->port());
  HttpResponse first = client.request("GET", "/one");
  ASSERT_TRUE(first.ok()) << first.error;
  EXPECT_EQ(first.status, 200);
  std::this_thread::sleep_for(500ms);  // the backend closes its side after 100 ms
  HttpResponse second = client.request("GET", "/two");
  ASSERT_TRUE(second.ok()) << second.error;
  EXPECT_EQ(second.status, 200);
  EXPECT_EQ(second.body, "ok");
  EXPECT_EQ(upstream.connections_accepted(), 2u);
  EXPECT_EQ(upstream.request_count(), 2u);
}

TEST(BackendClose, BackendClosingRightAfterEachResponseNeverFailsARequest) {
  // Keep-alive responses, then an immediate close: the proxy pools a connection the backend is
  // closing, and must never hand a request to it (or must retry it).
  TestUpstream upstream([](UpstreamExchange& ex) {
    ex.respond(200, "ok");
    ex.close_now();
  });
  auto proxy = RunningProxy::start(to(upstream));
  ASSERT_TRUE(proxy);

  HttpConnection client(proxy->port());
  for (int i = 0; i < 50; ++i) {
    HttpResponse r = client.request("GET", fmt::format("/race/{}", i));
    ASSERT_TRUE(r.ok()) << "request " << i << ": " << r.error;
    ASSERT_EQ(r.status, 200) << "request " << i << ": " << r.body;
    EXPECT_EQ(r.body, "ok");
  }
  // Each request was read exactly once, each on its own connection.
  EXPECT_EQ(upstream.request_count(), 50u);
  EXPECT_EQ(upstream.requests_per_connection(), std::vector<size_t>(50, 1));
}

// ---------------------------------------------------------------------------------------------
// 10. No route; request ids

TEST(LocalReplies, NoMatchingRouteGives404NamingTheVirtualHost) {
  TestUpstream upstream(TestUpstream::ok_handler());
  ProxyConfig config = to(upstream);
  config.routes = {"{name: api, match: {prefix: /api}, cluster: backend}"};
  auto proxy = RunningProxy::start(config);
  ASSERT_TRUE(proxy);

  HttpConnection client(proxy->port());
  HttpResponse r = client.request("GET", "/other");
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.header("content-type"), "text/plain");
  EXPECT_NE(r.body.find("'main'"), std::string::npos) << r.body;
  EXPECT_EQ(r.body, "no route matches the request in virtual host 'main'\n");
  ASSERT_TRUE(r.header("x-request-id"));
  EXPECT_TRUE(looks_like_uuid(*r.header("x-request-id"))) << *r.header("x-request-id");
  EXPECT_EQ(upstream.request_count(), 0u);

  // One request, one response: nothing else may arrive on the connection.
  auto extra = client.read_until_close(300ms);
  EXPECT_EQ(extra.status, IoStatus::kTimeout) << "connection closed: " << to_string(extra.status);
  EXPECT_EQ(extra.data.size(), 0u) << "unsolicited bytes after the 404 (first 300 shown): "
                                   << extra.data.substr(0, 300);

  // A 404 to a body-less request keeps the connection; the next request is routed on its own.
  HttpResponse api = client.request("GET", "/api/x");
  ASSERT_TRUE(api.ok()) << api.error;
  EXPECT_EQ(api.status, 200);
  EXPECT_EQ(api.body, "ok");
  ASSERT_EQ(upstream.request_count(), 1u);
  EXPECT_EQ(upstream.requests()[0].target, "/api/x");
}

TEST(LocalReplies, ConnectionStaysUsableAfter503) {
  TestUpstream upstream(TestUpstream::ok_handler());
  ClosedPort nobody;
  const std::string yaml = fmt::format(
      "workers: 1\n"
      "listeners:\n"
      "  - name: main\n"
      "    address: 127.0.0.1:0\n"
      "    virtual_hosts:\n"
      "      - name: main\n"
      "        domains: ['*']\n"
      "        routes:\n"
      "          - {{name: dead, match: {{prefix: /dead}}, cluster: dead}}\n"
      "          - {{name: live, match: {{prefix: /}}, cluster: backend}}\n"
      "clusters:\n"
      "  - {{name: backend, endpoints: [\"127.0.0.1:{}\"]}}\n"
      "  - {{name: dead, endpoints: [\"127.0.0.1:{}\"]}}\n",
      upstream.port(), nobody.port());
  auto proxy = RunningProxy::start(yaml);
  ASSERT_TRUE(proxy);

  HttpConnection client(proxy->port());
  HttpResponse down = client.request("GET", "/dead/x");
  ASSERT_TRUE(down.ok()) << down.error;
  EXPECT_EQ(down.status, 503);
  EXPECT_EQ(down.body.rfind("upstream connect error", 0), 0u) << down.body;
  // A body-less request leaves the framing intact, so the connection is kept.
  EXPECT_EQ(down.header("connection"), std::nullopt);

  HttpResponse live = client.request("GET", "/live");
  ASSERT_TRUE(live.ok()) << live.error;
  EXPECT_EQ(live.status, 200) << live.body;
  EXPECT_EQ(live.body, "ok");
  ASSERT_EQ(upstream.request_count(), 1u);
  EXPECT_EQ(upstream.requests()[0].target, "/live");
}

TEST(RequestId, GeneratedWhenAbsentAndSentUpstream) {
  TestUpstream upstream(TestUpstream::ok_handler());
  auto proxy = RunningProxy::start(to(upstream));
  ASSERT_TRUE(proxy);

  HttpConnection client(proxy->port());
  HttpResponse a = client.request("GET", "/a");
  HttpResponse b = client.request("GET", "/b");
  ASSERT_TRUE(a.ok()) << a.error;
  ASSERT_TRUE(b.ok()) << b.error;
  ASSERT_TRUE(a.header("x-request-id"));
  ASSERT_TRUE(b.header("x-request-id"));
  EXPECT_TRUE(looks_like_uuid(*a.header("x-request-id"))) << *a.header("x-request-id");
  EXPECT_TRUE(looks_like_uuid(*b.header("x-request-id"))) << *b.header("x-request-id");
  EXPECT_NE(*a.header("x-request-id"), *b.header("x-request-id"));
  EXPECT_EQ(count_headers(a.headers, "x-request-id"), 1u);

  auto requests = upstream.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(count_headers(requests[0].headers, "x-request-id"), 1u);
  EXPECT_EQ(requests[0].header("x-request-id"), a.header("x-request-id"));
  EXPECT_EQ(requests[1].header("x-request-id"), b.header("x-request-id"));
}

TEST(RequestId, PassedThroughUnchangedWhenPresent) {
  TestUpstream upstream(TestUpstream::ok_handler());
  auto proxy = RunningProxy::start(to(upstream));
  ASSERT_TRUE(proxy);

  const std::string id = "client-chosen-ID_42";
  HttpResponse r = HttpConnection(proxy->port()).request("GET", "/", {{"X-Request-Id", id}});
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("x-request-id"), id);
  EXPECT_EQ(count_headers(r.headers, "x-request-id"), 1u);
  auto requests = upstream.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].header("x-request-id"), id);
  EXPECT_EQ(count_headers(requests[0].headers, "x-request-id"), 1u);
}

// ---------------------------------------------------------------------------------------------
// 11. Graceful stop

TEST(GracefulStop, InFlightRequestCompletesAndNewConnectionsAreRefused) {
  TestUpstream upstream([](UpstreamExchange& ex) {
    if (ex.sleep_for(1s)) ex.respond(200, "slow done");
  });
  auto proxy = RunningProxy::start(to(upstream));
  ASSERT_TRUE(proxy);
  const uint16_t port = proxy->port();

  HttpConnection client(port);
  ASSERT_TRUE(client.send(build_request("GET", "/slow")));
  ASSERT_TRUE(upstream.wait_for_requests(1, 5s)) << "the request never reached the upstream";

  std::atomic<bool> stop_returned{false};
  std::thread stopper([&] {
    proxy->stop(5000ms);
    stop_returned = true;
  });

  // While the request is in flight, the listener goes away: connecting is refused.
  bool refused = false;
  int last_errno = 0;
  for (auto until = deadline_in(800ms); !refused && Clock::now() < until;) {
    Socket s = Socket::connect_local(port, &last_errno);
    refused = !s.valid() && last_errno == ECONNREFUSED;
    if (!refused) std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(refused) << "connections still accepted while draining (errno " << last_errno << ")";
  EXPECT_FALSE(stop_returned.load()) << "stop() returned before the in-flight request finished";

  HttpResponse r = client.read_response({.timeout = 8000ms});
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "slow done");
  EXPECT_EQ(r.header("connection"), "close");
  auto rest = client.read_until_close(3000ms);
  EXPECT_EQ(rest.status, IoStatus::kEof);
  EXPECT_EQ(rest.data, "");

  stopper.join();
  EXPECT_TRUE(stop_returned.load());
  int err = 0;
  Socket after = Socket::connect_local(port, &err);
  EXPECT_FALSE(after.valid());
  EXPECT_EQ(err, ECONNREFUSED);
}

}  // namespace
}  // namespace sluice::testing
