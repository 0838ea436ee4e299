// The route's steps over real sockets: header mutation at three levels, direct_response and
// redirect actions, the circuit breakers' pending queue and the request-body timeouts.
#include <fmt/core.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "support/http_client.h"
#include "support/proxy_harness.h"
#include "support/test_upstream.h"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;

// One listener with header policies at every level, and routes for each action.
std::string steps_yaml(uint16_t upstream_port) {
  return fmt::format(R"(
workers: 1
admin: {{ address: 127.0.0.1:0 }}
listeners:
  - name: main
    address: 127.0.0.1:0
    request_headers: {{ set: {{ x-level: listener, x-listener-only: "yes" }} }}
    response_headers: {{ set: {{ x-resp-level: listener }} }}
    virtual_hosts:
      - name: main
        domains: ["*"]
        request_headers: {{ set: {{ x-level: vhost }} }}
        response_headers: {{ set: {{ x-resp-level: vhost }} }}
        routes:
          - name: direct
            match: {{ path: /teapot }}
            direct_response: {{ status: 418, body: "short and stout\n", content_type: text/x-teapot }}
          - name: to_https
            match: {{ prefix: /secure/ }}
            redirect: {{ scheme: https, code: 308 }}
          - name: moved
            match: {{ prefix: /old/ }}
            redirect: {{ prefix_rewrite: /new/, strip_query: true }}
          - name: mutated
            match: {{ prefix: / }}
            cluster: backend
            request_headers:
              set: {{ x-level: route, x-client: "%DOWNSTREAM_REMOTE_ADDRESS%", x-up: "%UPSTREAM_HOST%",
                     x-rid: "%REQUEST_ID%", x-copy: "%REQ(x-tenant)%" }}
              add: {{ x-multi: two }}
              remove: [ x-secret ]
            response_headers:
              set: {{ x-resp-level: route }}
              remove: [ server ]
clusters:
  - name: backend
    endpoints: [ 127.0.0.1:{} ]
)",
                     upstream_port);
}

TEST(HeaderMutation, MostSpecificLevelWinsAndTemplatesAreFilledIn) {
  TestUpstream upstream([](UpstreamExchange& ex) {
    ex.respond(200, "ok", {{"Server", "test-origin"}, {"x-resp-level", "origin"}});
  });
  auto proxy = RunningProxy::start(steps_yaml(upstream.port()));
  ASSERT_TRUE(proxy);
  HttpResponse r = http_get(proxy->port(), "/thing", {{"x-tenant", "acme"}, {"x-secret", "s3cr3t"},
                                                     {"x-multi", "one"}, {"x-request-id", "rid-42"}});
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("x-resp-level"), "route");
  EXPECT_FALSE(r.header("server"));
  ASSERT_EQ(upstream.request_count(), 1u);
  UpstreamRequest got = upstream.requests()[0];
  EXPECT_EQ(got.header("x-level"), "route");
  EXPECT_EQ(count_headers(got.headers, "x-level"), 1u);
  EXPECT_EQ(got.header("x-listener-only"), "yes");
  EXPECT_EQ(got.header("x-client"), "127.0.0.1");
  EXPECT_EQ(got.header("x-up"), fmt::format("127.0.0.1:{}", upstream.port()));
  EXPECT_EQ(got.header("x-rid"), "rid-42");
  EXPECT_EQ(got.header("x-copy"), "acme");
  EXPECT_FALSE(got.header("x-secret"));
  EXPECT_EQ(count_headers(got.headers, "x-multi"), 2u);
}

TEST(DirectResponse, AnswersWithoutTheUpstreamAndHeadGetsNoBody) {
  TestUpstream upstream(TestUpstream::ok_handler());
  auto proxy = RunningProxy::start(steps_yaml(upstream.port()));
  ASSERT_TRUE(proxy);
  HttpConnection client(proxy->port());
  HttpResponse r = client.request("GET", "/teapot");
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.status, 418);
  EXPECT_EQ(r.body, "short and stout\n");
  EXPECT_EQ(r.header("content-type"), "text/x-teapot");
  EXPECT_EQ(r.header("x-resp-level"), "vhost") << "listener and vhost response headers apply";
  ASSERT_TRUE(client.send(build_request("HEAD", "/teapot")));
  ResponseOptions head_only;
  head_only.head_request = true;
  HttpResponse h = client.read_response(head_only);
  ASSERT_TRUE(h.ok()) << h.error;
  EXPECT_EQ(h.status, 418);
  EXPECT_EQ(h.header("content-length"), "16");
  HttpResponse after = client.request("GET", "/teapot");
  ASSERT_TRUE(after.ok()) << after.error;
  EXPECT_EQ(upstream.request_count(), 0u);
}

TEST(Redirect, SchemeAndPrefixRedirects) {
  TestUpstream upstream(TestUpstream::ok_handler());
  auto proxy = RunningProxy::start(steps_yaml(upstream.port()));
  ASSERT_TRUE(proxy);
  HttpResponse r = http_get(proxy->port(), "/secure/login?next=/home", {{"Host", "app.example.com:10000"}});
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.status, 308);
  EXPECT_EQ(r.header("location"), "https://app.example.com/secure/login?next=/home");
  HttpResponse m = http_get(proxy->port(), "/old/page?x=1", {{"Host", "app.example.com"}});
  ASSERT_TRUE(m.ok()) << m.error;
  EXPECT_EQ(m.status, 301);
  EXPECT_EQ(m.header("location"), "http://app.example.com/new/page");
  EXPECT_EQ(upstream.request_count(), 0u);
}

TEST(CircuitBreakers, RequestsBeyondTheConnectionCapQueueAndOverflowGets503) {
  std::atomic<int> in_handler{0};
  TestUpstream upstream([&](UpstreamExchange& ex) {
    ++in_handler;
    ex.sleep_for(400ms);
    ex.respond(200, "slow");
  });
  std::string yaml = fmt::format(R"(
workers: 1
admin: {{ address: 127.0.0.1:0 }}
listeners:
  - name: main
    address: 127.0.0.1:0
    virtual_hosts:
      - name: main
        domains: ["*"]
        routes: [ {{ name: all, match: {{ prefix: / }}, cluster: backend, timeout: 5s }} ]
clusters:
  - name: backend
    circuit_breakers: {{ max_connections: 1, max_pending_requests: 1 }}
    endpoints: [ 127.0.0.1:{} ]
)",
                                 upstream.port());
  auto proxy = RunningProxy::start(yaml);
  ASSERT_TRUE(proxy);
  // Three clients at once: one gets the only connection, one waits for it, one overflows.
  std::vector<HttpResponse> results(3);
  std::vector<std::thread> clients;
  for (int i = 0; i < 3; ++i) {
    clients.emplace_back([&, i] {
      std::this_thread::sleep_for(std::chrono::milliseconds(50 * i));
      results[i] = http_get(proxy->port(), fmt::format("/c{}", i));
    });
  }
  for (auto& t : clients) t.join();
  int ok = 0, overflow = 0;
  for (const auto& r : results) {
    ASSERT_TRUE(r.ok()) << r.error;
    if (r.status == 200) ++ok;
    if (r.status == 503) {
      ++overflow;
      EXPECT_NE(r.body.find("overflow"), std::string::npos) << r.body;
    }
  }
  EXPECT_EQ(ok, 2) << "the queued request was served on the connection once it came back";
  EXPECT_EQ(overflow, 1);
  EXPECT_EQ(upstream.connections_accepted(), 1u) << "never more than max_connections";
}

TEST(RequestBodyTimeout, ABodyThatStallsGets408) {
  TestUpstream upstream([](UpstreamExchange& ex) { ex.respond(200, "ok"); });
  ProxyConfig c = to_port(upstream.port());
  c.listener_options = "request_body_timeout: 300ms";
  auto proxy = RunningProxy::start(c);
  ASSERT_TRUE(proxy);
  HttpConnection client(proxy->port());
  ASSERT_TRUE(client.send("POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nonly-a-few"));
  HttpConnection::CloseResult res = client.read_until_close(10000ms);
  RawResponse raw = parse_raw_response(res.data);
  ASSERT_TRUE(raw.ok) << res.data;
  EXPECT_EQ(raw.status, 408);
  EXPECT_NE(raw.body.find("request body"), std::string::npos);
}

TEST(RequestBodyTimeout, TheTotalTimeoutCutsABodyThatTricklesIn) {
  TestUpstream upstream([](UpstreamExchange& ex) { ex.respond(200, "ok"); });
  ProxyConfig c = to_port(upstream.port());
  c.listener_options = "request_body_timeout: 5s, request_body_total_timeout: 500ms";
  auto proxy = RunningProxy::start(c);
  ASSERT_TRUE(proxy);
  HttpConnection client(proxy->port());
  ASSERT_TRUE(client.send("POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n"));
  // One byte every 100 ms: never stalls for request_body_timeout, but never ends either.
  std::atomic<bool> stop{false};
  std::thread trickle([&] {
    for (int i = 0; i < 60 && !stop; ++i) {
      if (!client.send("x")) break;
      std::this_thread::sleep_for(100ms);
    }
  });
  HttpConnection::CloseResult res = client.read_until_close(10000ms);
  stop = true;
  trickle.join();
  RawResponse raw = parse_raw_response(res.data);
  ASSERT_TRUE(raw.ok) << res.data;
  EXPECT_EQ(raw.status, 408);
}

}  // namespace
}  // namespace sluice::testing
