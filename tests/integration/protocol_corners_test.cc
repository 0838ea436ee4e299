// HTTP/1.1 protocol corners, each judged by what the far side receives: 204/304/HEAD framing,
// local replies to HEAD, upgrade offers on routes that do not tunnel, 101 without an upgrade,
// replayed POSTs, transfer codings, oversized upstream heads, the header timeout from accept.
#include <fmt/core.h>
#include <gtest/gtest.h>

#include <thread>

#include "support/http_client.h"
#include "support/proxy_harness.h"
#include "support/test_upstream.h"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;

ProxyConfig to(const TestUpstream& upstream) { return to_port(upstream.port()); }

// Answers /304 and /204 with a Content-Length and no body (what Jetty does for a conditional
// GET of a static file), anything else with "ok".
void status_handler(UpstreamExchange& ex) {
  const std::string& t = ex.request().target;
  if (t == "/304") {
    ex.send("HTTP/1.1 304 Not Modified\r\ncontent-length: 1234\r\netag: \"v1\"\r\n\r\n");
  } else if (t == "/204") {
    ex.send("HTTP/1.1 204 No Content\r\ncontent-length: 10\r\n\r\n");
  } else {
    ex.respond(200, "ok");
  }
}

TEST(ResponseFraming, NotModifiedWithContentLengthEndsAtItsHeadAndTheConnectionIsReused) {
  TestUpstream upstream(status_handler);
  auto proxy = RunningProxy::start(to(upstream));
  ASSERT_TRUE(proxy);
  HttpConnection client(proxy->port());
  for (const char* path : {"/304", "/204"}) {
    ASSERT_TRUE(client.send(build_request("GET", path)));
    ResponseOptions head_only;
    head_only.head_request = true;  // read the head only: no body may follow
    head_only.timeout = 3000ms;
    HttpResponse r = client.read_response(head_only);
    ASSERT_TRUE(r.ok()) << path << ": " << r.error;
    EXPECT_EQ(r.status, path == std::string("/304") ? 304 : 204);
    EXPECT_FALSE(r.header("transfer-encoding")) << "a body-less response must not be chunked";
    // The next request on the same connection is answered at once (it used to stall until the
    // route timeout because Sluice waited for the 1234 body bytes that never come).
    HttpResponse next = client.request("GET", "/after", {}, {}, 3000ms);
    ASSERT_TRUE(next.ok()) << "after " << path << ": " << next.error;
    EXPECT_EQ(next.status, 200);
    EXPECT_EQ(next.body, "ok");
  }
  EXPECT_EQ(upstream.connections_accepted(), 1u) << "the upstream connection was reused";
}

TEST(ResponseFraming, HeadResponsesCarryNoBodyAndKeepTheConnectionInSync) {
  TestUpstream upstream([](UpstreamExchange& ex) {
    // A sized and a chunked answer to HEAD: the backend writes only the head.
    if (ex.request().target == "/chunked") {
      ex.send("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n");
    } else {
      ex.send("HTTP/1.1 200 OK\r\ncontent-length: 5000\r\n\r\n");
    }
  });
  auto proxy = RunningProxy::start(to(upstream));
  ASSERT_TRUE(proxy);
  HttpConnection client(proxy->port());
  ResponseOptions head_only;
  head_only.head_request = true;
  for (const char* path : {"/sized", "/chunked", "/sized"}) {
    ASSERT_TRUE(client.send(build_request("HEAD", path)));
    HttpResponse r = client.read_response(head_only);
    ASSERT_TRUE(r.ok()) << path << ": " << r.error;
    EXPECT_EQ(r.status, 200);
  }
  // Nothing else arrives: a stray body byte would be read as the start of the next response.
  HttpConnection::CloseResult rest = client.read_until_close(300ms);
  EXPECT_EQ(rest.status, IoStatus::kTimeout);
  EXPECT_EQ(rest.data, "");
}

TEST(LocalReplies, RepliesToHeadCarryHeadersOnly) {
  TestUpstream upstream(TestUpstream::ok_handler());
  ProxyConfig c = to(upstream);
  c.routes = {"{name: api, match: {prefix: /api/}, cluster: backend}"};
  auto proxy = RunningProxy::start(c);
  ASSERT_TRUE(proxy);
  HttpConnection client(proxy->port());
  ResponseOptions head_only;
  head_only.head_request = true;
  ASSERT_TRUE(client.send(build_request("HEAD", "/nowhere")));
  HttpResponse r = client.read_response(head_only);
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.status, 404);
  EXPECT_TRUE(r.header("content-length")) << "HEAD gets the length a GET would have";
  // The connection stays in sync: the next response starts right where the head ended.
  HttpResponse next = client.request("GET", "/api/x");
  ASSERT_TRUE(next.ok()) << next.error;
  EXPECT_EQ(next.status, 200);
  EXPECT_EQ(next.body, "ok");
}

TEST(Upgrade, OfferOnARouteWithoutUpgradesIsServedAsPlainHttp) {
  TestUpstream upstream(TestUpstream::ok_handler());
  auto proxy = RunningProxy::start(to(upstream));
  ASSERT_TRUE(proxy);
  HttpConnection client(proxy->port());
  // What `curl --http2 http://...` sends: an h2c upgrade offer.
  HttpResponse r = client.request("GET", "/h2c", {{"Connection", "Upgrade, HTTP2-Settings"},
                                                 {"Upgrade", "h2c"},
                                                 {"HTTP2-Settings", "AAMAAABkAAQCAAAAAAIAAAAA"}});
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.status, 200);
  // The connection is still usable (the second request used to get a 400).
  for (int i = 0; i < 3; ++i) {
    HttpResponse next = client.request("GET", fmt::format("/next/{}", i));
    ASSERT_TRUE(next.ok()) << next.error;
    EXPECT_EQ(next.status, 200);
  }
  auto reqs = upstream.requests();
  ASSERT_EQ(reqs.size(), 4u);
  EXPECT_FALSE(reqs[0].header("upgrade"));
  EXPECT_FALSE(reqs[0].header("http2-settings"));
  auto conn = reqs[0].header("connection");
  EXPECT_TRUE(!conn || conn->find("pgrade") == std::string::npos) << *conn;
}

TEST(Upgrade, A101WithoutAnUpgradeIsAnInvalidResponse) {
  TestUpstream upstream([](UpstreamExchange& ex) {
    ex.send("HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n");
    ex.close_after_response();
  });
  auto proxy = RunningProxy::start(to(upstream));
  ASSERT_TRUE(proxy);
  HttpResponse r = http_get(proxy->port(), "/surprise");
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.status, 502);
}

TEST(Retry, APostIsNeverSentTwiceEvenOnAReusedConnection) {
  // The first request primes a pooled connection; on it, the backend reads the next request and
  // closes without a response byte: exactly the case a GET may be retried for.
  TestUpstream upstream([](UpstreamExchange& ex) {
    if (ex.request().index_on_connection == 1) {
      ex.close_now();
      return;
    }
    ex.respond(200, "ok");
  });
  auto proxy = RunningProxy::start(to(upstream));
  ASSERT_TRUE(proxy);
  HttpConnection client(proxy->port());
  HttpResponse first = client.request("GET", "/prime");
  ASSERT_TRUE(first.ok()) << first.error;
  HttpResponse post = client.request("POST", "/pay", {{"Content-Length", "0"}});
  ASSERT_TRUE(post.ok()) << post.error;
  EXPECT_EQ(post.status, 502);
  size_t posts = 0;
  for (const auto& r : upstream.requests()) posts += r.method == "POST";
  EXPECT_EQ(posts, 1u) << "the backend saw the POST exactly once";

  // The same failure on a GET is retried once on a fresh connection and succeeds.
  HttpConnection again(proxy->port());
  ASSERT_TRUE(again.request("GET", "/prime2").ok());
  HttpResponse get = again.request("GET", "/idempotent");
  ASSERT_TRUE(get.ok()) << get.error;
  EXPECT_EQ(get.status, 200);
}

TEST(TransferCodings, RequestCodingsOtherThanChunkedGet501AndNothingReachesTheBackend) {
  TestUpstream upstream(TestUpstream::ok_handler());
  auto proxy = RunningProxy::start(to(upstream));
  ASSERT_TRUE(proxy);
  HttpConnection client(proxy->port());
  ASSERT_TRUE(client.send("POST /gz HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
                          "5\r\nhello\r\n0\r\n\r\n"));
  HttpConnection::CloseResult res = client.read_until_close(5000ms);
  RawResponse raw = parse_raw_response(res.data);
  ASSERT_TRUE(raw.ok) << res.data;
  EXPECT_EQ(raw.status, 501);
  EXPECT_EQ(upstream.request_count(), 0u);
}

TEST(TransferCodings, ResponseCodingsAreForwardedIntact) {
  TestUpstream upstream([](UpstreamExchange& ex) {
    ex.send("HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n4\r\nGZIP\r\n0\r\n\r\n");
  });
  auto proxy = RunningProxy::start(to(upstream));
  ASSERT_TRUE(proxy);
  // Read raw: the test client does not decode codings other than chunked.
  HttpConnection client(proxy->port());
  ASSERT_TRUE(client.send(build_request("GET", "/coded", {{"Connection", "close"}})));
  HttpConnection::CloseResult res = client.read_until_close(5000ms);
  EXPECT_NE(res.data.find("\r\ntransfer-encoding: gzip, chunked\r\n"), std::string::npos) << res.data;
  EXPECT_NE(res.data.find("\r\n\r\n4\r\nGZIP\r\n0\r\n\r\n"), std::string::npos) << res.data;
}

TEST(MemorySafety, AnOversizedUpstreamHeadGets502AndNoTimerTouchesTheClosedConnection) {
  TestUpstream upstream([](UpstreamExchange& ex) {
    std::string head = "HTTP/1.1 200 OK\r\n";
    while (head.size() < 130 * 1024) head += "x-filler: " + std::string(1000, 'a') + "\r\n";
    ex.send(head);  // never ends: more than the 96 KiB Sluice accepts for a response head
    ex.sleep_for(2000ms);
  });
  ProxyConfig c = to(upstream);
  c.routes = {"{name: all, match: {prefix: /}, cluster: backend, timeout: 300ms}"};
  auto proxy = RunningProxy::start(c);
  ASSERT_TRUE(proxy);
  for (int round = 0; round < 3; ++round) {
    HttpConnection client(proxy->port());
    HttpResponse r = client.request("GET", "/big-head");
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.status, 502);
    // Keep the client connection open past the route timeout: the timer of the failed upstream
    // request must not fire on its freed socket (ASan reported a use-after-free here).
    std::this_thread::sleep_for(500ms);
  }
  HttpResponse alive = http_get(proxy->port(), "/big-head");
  ASSERT_TRUE(alive.ok()) << alive.error;
  EXPECT_EQ(alive.status, 502);
}

TEST(Timeouts, ASilentNewConnectionIsClosedAfterTheHeaderTimeoutNotTheIdleTimeout) {
  TestUpstream upstream(TestUpstream::ok_handler());
  ProxyConfig c = to(upstream);
  c.listener_options = "request_headers_timeout: 300ms, idle_timeout: 60s";
  auto proxy = RunningProxy::start(c);
  ASSERT_TRUE(proxy);
  HttpConnection silent(proxy->port());
  ASSERT_TRUE(silent.connected());
  // Closed by Sluice long before the 60 s idle timeout (nothing was sent, so no 408 either).
  HttpConnection::CloseResult res = silent.read_until_close(10000ms);
  EXPECT_EQ(res.status, IoStatus::kEof);
  EXPECT_EQ(res.data, "");
}

// A keep-alive connection quiet for longer than its park time (200 ms) leaves its coroutine and
// waits with a plain read (DownstreamConnection::park): its next requests are still answered on
// the same connection, pipelined ones too, and the idle timeout still closes it.
TEST(Timeouts, AParkedKeepAliveConnectionServesItsNextRequestsAndStillTimesOut) {
  TestUpstream upstream([](UpstreamExchange& ex) { ex.respond(200, ex.request().target); });
  ProxyConfig c = to(upstream);
  c.listener_options = "idle_timeout: 1500ms";
  auto proxy = RunningProxy::start(c);
  ASSERT_TRUE(proxy);
  HttpConnection client(proxy->port());
  for (int i = 0; i < 3; ++i) {
    HttpResponse r = client.request("GET", "/round-" + std::to_string(i));
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.body, "/round-" + std::to_string(i));
    std::this_thread::sleep_for(500ms);  // parked after 200 ms
  }
  ASSERT_TRUE(client.send(build_request("GET", "/pipelined-1") + build_request("GET", "/pipelined-2")));
  for (const char* target : {"/pipelined-1", "/pipelined-2"}) {
    HttpResponse r = client.read_response();
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.body, target);
  }
  EXPECT_EQ(upstream.request_count(), 5u);
  // Then nothing more: closed at the idle timeout, without a reply.
  HttpConnection::CloseResult res = client.read_until_close(10000ms);
  EXPECT_EQ(res.status, IoStatus::kEof);
  EXPECT_EQ(res.data, "");
}

// A graceful stop closes a parked keep-alive connection at once (drain cancels its read).
TEST(Timeouts, AGracefulStopClosesAParkedConnection) {
  TestUpstream upstream(TestUpstream::ok_handler());
  ProxyConfig c = to(upstream);
  c.listener_options = "idle_timeout: 60s";
  auto proxy = RunningProxy::start(c);
  ASSERT_TRUE(proxy);
  HttpConnection client(proxy->port());
  HttpResponse r = client.request("GET", "/");
  ASSERT_TRUE(r.ok()) << r.error;
  std::this_thread::sleep_for(500ms);
  std::thread stopper([&] { proxy->stop(20000ms); });
  HttpConnection::CloseResult res = client.read_until_close(10000ms);
  stopper.join();
  EXPECT_EQ(res.status, IoStatus::kEof);
  EXPECT_EQ(res.data, "");
}

// A request that starts arriving just as its connection parks (its first bytes, then the rest
// after the park time) is read whole.
TEST(Timeouts, ARequestSplitAcrossTheParkTimeIsReadWhole) {
  TestUpstream upstream([](UpstreamExchange& ex) { ex.respond(200, ex.request().target); });
  ProxyConfig c = to(upstream);
  c.listener_options = "idle_timeout: 60s";
  auto proxy = RunningProxy::start(c);
  ASSERT_TRUE(proxy);
  HttpConnection client(proxy->port());
  HttpResponse first = client.request("GET", "/first");
  ASSERT_TRUE(first.ok()) << first.error;
  std::this_thread::sleep_for(400ms);
  const std::string request = build_request("GET", "/second");
  ASSERT_TRUE(client.send(request.substr(0, 5)));
  std::this_thread::sleep_for(400ms);
  ASSERT_TRUE(client.send(request.substr(5)));
  HttpResponse second = client.read_response();
  ASSERT_TRUE(second.ok()) << second.error;
  EXPECT_EQ(second.status, 200);
  EXPECT_EQ(second.body, "/second");
}

}  // namespace
}  // namespace sluice::testing

namespace sluice::testing {
namespace {

TEST(Trailers, ResponseTrailersReachTheClientWithoutHopByHopFields) {
  TestUpstream upstream([](UpstreamExchange& ex) {
    ex.send("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntrailer: x-checksum\r\n\r\n"
            "5\r\nhello\r\n0\r\nx-checksum: abc123\r\nkeep-alive: timeout=5\r\n\r\n");
  });
  auto proxy = RunningProxy::start(to(upstream));
  ASSERT_TRUE(proxy);
  HttpConnection client(proxy->port());
  for (int i = 0; i < 2; ++i) {  // and the connection stays in sync afterwards
    HttpResponse r = client.request("GET", "/with-trailers");
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.body, "hello");
    EXPECT_EQ(r.trailer_lines, std::vector<std::string>{"x-checksum: abc123"});
  }
}

TEST(Trailers, RequestTrailersReachTheBackend) {
  TestUpstream upstream([](UpstreamExchange& ex) { ex.respond(200, ex.request().body); });
  auto proxy = RunningProxy::start(to(upstream));
  ASSERT_TRUE(proxy);
  HttpConnection client(proxy->port());
  ASSERT_TRUE(client.send("POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                          "3\r\nabc\r\n0\r\nx-digest: sha-256=xyz\r\nte: trailers\r\n\r\n"));
  HttpResponse r = client.read_response();
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.body, "abc");
  ASSERT_EQ(upstream.request_count(), 1u);
  EXPECT_EQ(upstream.requests()[0].trailer_lines, std::vector<std::string>{"x-digest: sha-256=xyz"});
}

}  // namespace
}  // namespace sluice::testing

namespace sluice::testing {
namespace {

TEST(Timeouts, TheRouteTimeoutCutsADownloadWhoseClientStopsReading) {
  TestUpstream upstream([](UpstreamExchange& ex) { ex.respond_generated(256ull << 20, false); });
  ProxyConfig c = to(upstream);
  c.listener_options = "idle_timeout: 60s";
  c.routes = {"{name: all, match: {prefix: /}, cluster: backend, timeout: 1s}"};
  auto proxy = RunningProxy::start(c);
  ASSERT_TRUE(proxy);
  HttpConnection client(proxy->port());
  ASSERT_TRUE(client.send(build_request("GET", "/big")));
  // Read nothing for a while: socket buffers fill and Sluice's writes stall.
  std::this_thread::sleep_for(3000ms);
  // Sluice gave up at the route timeout (1 s), not the 60 s idle timeout: draining what was
  // buffered ends in EOF long before the 256 MiB could have arrived.
  // (With the idle timeout in charge the connection would still be open at the 20 s deadline.)
  HttpConnection::CloseResult res = client.read_until_close(20000ms);
  EXPECT_EQ(res.status, IoStatus::kEof);
  EXPECT_LT(res.data.size(), 64u << 20);
}

}  // namespace
}  // namespace sluice::testing
