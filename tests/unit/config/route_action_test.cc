// Route actions (`cluster`, `direct_response`, `redirect`), `upgrades` on virtual hosts and routes,
// and the listener's request body timeouts: accepted forms, defaults, and every refusal with its
// line, column, key path and message.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "loader_test_util.h"
#include "sluice/config/limits.h"

namespace sluice::config {
namespace {

using namespace std::chrono_literals;
using testing::expect_error;
using testing::expect_errors;
using testing::load_listener;
using testing::load_route;
using testing::load_virtual_host;
using testing::load_yaml;
using testing::only_route;
using Action = Route::ActionKind;

const std::string kRoute = "listeners[0].virtual_hosts[0].routes[0]";

// --- cluster -------------------------------------------------------------------------------------

TEST(RouteAction, ClusterIsAnAction) {
  Route r = only_route(load_route("            match: { prefix: / }\n            cluster: c\n"));
  EXPECT_EQ(r.action, Action::kCluster);
  EXPECT_EQ(r.cluster, "c");
  EXPECT_FALSE(r.direct_response.has_value());
  EXPECT_FALSE(r.redirect.has_value());
}

TEST(RouteAction, RouteWithoutAnAction) {
  expect_error(load_route("            match: { prefix: / }\n"), 8, 13, kRoute,
               "needs one of 'cluster', 'direct_response' or 'redirect'");
}

TEST(RouteAction, RouteWithTwoActions) {
  LoadResult r = load_route(R"(
            match: { prefix: / }
            cluster: c
            redirect: { scheme: https }
)");
  expect_error(r, 8, 13, kRoute, "takes only one of 'cluster', 'direct_response' or 'redirect'");
}

TEST(RouteAction, KeysOfClusterRoutesAreRefusedOnLocalAnswers) {
  LoadResult r = load_route(R"(
            match: { prefix: / }
            direct_response: { status: 404 }
            timeout: 5s
            prefix_rewrite: /x
            host_rewrite: h
            request_headers: { set: { a: b } }
            upgrades: [ websocket ]
            upgrade_idle_timeout: 5m
            response_headers: { set: { x-served-by: sluice } }
)");
  const std::string m = "only used with 'cluster' (this route answers itself with 'direct_response')";
  expect_errors(r, {{11, 22, kRoute + ".timeout", m},
                    {12, 29, kRoute + ".prefix_rewrite", m},
                    {13, 27, kRoute + ".host_rewrite", m},
                    {14, 30, kRoute + ".request_headers", m},
                    {15, 23, kRoute + ".upgrades", m},
                    {16, 35, kRoute + ".upgrade_idle_timeout", m}});
}

TEST(RouteAction, RoutesThatAnswerThemselves) {
  LoadResult r = testing::load_routes(R"(
          - { name: ping, match: { path: /ping }, direct_response: { body: pong } }
          - { name: tls, match: { prefix: / }, redirect: { scheme: https } }
)");
  ASSERT_TRUE(r.ok()) << r.error_text();
  const auto& routes = r.config.listeners.at(0).virtual_hosts.at(0).routes;
  ASSERT_EQ(routes.size(), 2u);
  EXPECT_EQ(routes[0].action, Action::kDirectResponse);
  EXPECT_EQ(routes[1].action, Action::kRedirect);
  EXPECT_EQ(routes[1].cluster, "");
}

// --- direct_response -----------------------------------------------------------------------------

TEST(DirectResponse, Defaults) {
  Route r = only_route(load_route(R"(
            match: { path: /ping }
            direct_response: { body: "pong\n" }
)"));
  EXPECT_EQ(r.action, Action::kDirectResponse);
  EXPECT_EQ(r.cluster, "");
  ASSERT_TRUE(r.direct_response.has_value());
  EXPECT_EQ(r.direct_response->status, 200);
  EXPECT_EQ(r.direct_response->body, "pong\n");
  EXPECT_EQ(r.direct_response->content_type, "text/plain");
  EXPECT_FALSE(r.redirect.has_value());
}

TEST(DirectResponse, EveryKey) {
  Route r = only_route(load_route(R"(
            match: { prefix: / }
            direct_response:
              status: 503
              body: '{"error":"maintenance"}'
              content_type: application/json; charset=utf-8
)"));
  ASSERT_TRUE(r.direct_response.has_value());
  EXPECT_EQ(r.direct_response->status, 503);
  EXPECT_EQ(r.direct_response->body, "{\"error\":\"maintenance\"}");
  EXPECT_EQ(r.direct_response->content_type, "application/json; charset=utf-8");
}

TEST(DirectResponse, StatusWithoutBody) {
  Route r = only_route(load_route("            match: { prefix: / }\n            direct_response: { status: 204 }\n"));
  ASSERT_TRUE(r.direct_response.has_value());
  EXPECT_EQ(r.direct_response->status, 204);
  EXPECT_EQ(r.direct_response->body, "");
}

TEST(DirectResponse, Errors) {
  LoadResult r = load_route(R"(
            match: { prefix: / }
            direct_response:
              status: 199
              content_type: "text/html\r\nx-injected: 1"
              extra: 1
)");
  const std::string p = kRoute + ".direct_response";
  expect_errors(r, {{13, 15, p + ".extra", "unknown key (known keys: status, body, content_type)"},
                    {11, 23, p + ".status", "199 is out of range (200-599)"},
                    {12, 29, p + ".content_type", "a header value must not contain CR, LF or NUL"}});
  expect_error(load_route("            match: { prefix: / }\n            direct_response: { status: 600 }\n"), 10,
               40, p + ".status", "600 is out of range (200-599)");
}

TEST(DirectResponse, BodyUpTo64KiB) {
  auto with_body = [](size_t size) {
    return load_route("            match: { prefix: / }\n            direct_response: { body: " +
                      std::string(size, 'x') + " }\n");
  };
  LoadResult at_limit = with_body(kMaxDirectResponseBodyBytes);
  ASSERT_TRUE(at_limit.ok()) << at_limit.error_text();
  EXPECT_EQ(only_route(at_limit).direct_response->body.size(), 65536u);
  expect_error(with_body(kMaxDirectResponseBodyBytes + 1), 10, 38, kRoute + ".direct_response.body",
               "the body is 65537 bytes, more than the limit of 65536 (64 KiB)");
}

TEST(DirectResponse, NoBodyWith204Or304) {
  for (int status : {204, 304}) {
    LoadResult r = load_route("            match: { prefix: / }\n            direct_response: { status: " +
                              std::to_string(status) + ", body: x }\n");
    expect_error(r, 10, 51, kRoute + ".direct_response.body",
                 "a " + std::to_string(status) + " response has no body");
  }
}

// --- redirect ------------------------------------------------------------------------------------

TEST(Redirect, EveryKey) {
  Route r = only_route(load_route(R"(
            match: { prefix: /old/ }
            redirect: { scheme: HTTPS, host: WWW.Example.com, port: 8443, prefix_rewrite: /new/,
                        strip_query: true, code: 308 }
)"));
  EXPECT_EQ(r.action, Action::kRedirect);
  ASSERT_TRUE(r.redirect.has_value());
  const Redirect& d = *r.redirect;
  EXPECT_EQ(d.scheme, "https");
  EXPECT_EQ(d.host, "www.example.com");
  EXPECT_EQ(d.port, 8443);
  EXPECT_FALSE(d.path.has_value());
  EXPECT_EQ(d.prefix_rewrite, "/new/");
  EXPECT_TRUE(d.strip_query);
  EXPECT_EQ(d.code, 308);
}

TEST(Redirect, Defaults) {
  Route r = only_route(load_route("            match: { path: /a }\n            redirect: { path: /b }\n"));
  ASSERT_TRUE(r.redirect.has_value());
  EXPECT_FALSE(r.redirect->scheme.has_value());
  EXPECT_FALSE(r.redirect->host.has_value());
  EXPECT_FALSE(r.redirect->port.has_value());
  EXPECT_EQ(r.redirect->path, "/b");
  EXPECT_FALSE(r.redirect->prefix_rewrite.has_value());
  EXPECT_FALSE(r.redirect->strip_query);
  EXPECT_EQ(r.redirect->code, 301);
}

TEST(Redirect, EveryCode) {
  for (int code : {301, 302, 303, 307, 308}) {
    Route r = only_route(load_route("            match: { prefix: / }\n            redirect: { scheme: https, code: " +
                                    std::to_string(code) + " }\n"));
    ASSERT_TRUE(r.redirect.has_value());
    EXPECT_EQ(r.redirect->code, code);
  }
  for (int code : {0, 300, 304, 305, 306, 309, 200}) {
    LoadResult r = load_route("            match: { prefix: / }\n            redirect: { scheme: https, code: " +
                              std::to_string(code) + " }\n");
    expect_error(r, 10, 46, kRoute + ".redirect.code",
                 std::to_string(code) + " is not a redirect code (301, 302, 303, 307 or 308)");
  }
}

TEST(Redirect, Hosts) {
  for (const char* host : {"example.com", "10.0.0.1", "\"[::1]\"", "localhost"}) {
    LoadResult r = load_route(std::string("            match: { prefix: / }\n            redirect: { host: ") +
                              host + " }\n");
    EXPECT_TRUE(r.ok()) << host << ": " << r.error_text();
  }
  for (const char* host : {"a b", "host:80", "\"[zz]\"", "exa_mple.com", "-a.com"}) {
    LoadResult r = load_route(std::string("            match: { prefix: / }\n            redirect: { host: ") +
                              host + " }\n");
    ASSERT_EQ(r.errors.size(), 1u) << host << ": " << r.error_text();
    EXPECT_EQ(r.errors[0].path, kRoute + ".redirect.host");
    EXPECT_NE(r.errors[0].message.find("is not a host name or an IP address ([IPv6] in brackets; the port goes in "
                                       "'port')"),
              std::string::npos)
        << r.errors[0].message;
  }
}

TEST(Redirect, Errors) {
  LoadResult r = load_route(R"(
            match: { path: /a }
            redirect:
              scheme: ftp
              port: 0
              path: new
              strip_query: yes
)");
  const std::string p = kRoute + ".redirect";
  expect_errors(r, {{11, 23, p + ".scheme", "unknown scheme 'ftp' (http or https)"},
                    {12, 21, p + ".port", "0 is out of range (1-65535)"},
                    {13, 21, p + ".path", "must start with '/'"},
                    {14, 28, p + ".strip_query", "expected true or false, got 'yes'"}});
}

TEST(Redirect, PathMustBeAPath) {
  expect_error(load_route("            match: { prefix: / }\n            redirect: { path: \"/a b\" }\n"), 10, 31,
               kRoute + ".redirect.path", "must not contain white space or control characters");
}

TEST(Redirect, PathOrPrefixRewrite) {
  expect_error(load_route("            match: { prefix: /a }\n            redirect: { path: /b, prefix_rewrite: /c }\n"),
               10, 23, kRoute + ".redirect", "takes only one of 'path' and 'prefix_rewrite'");
}

TEST(Redirect, PrefixRewriteNeedsAPrefixMatch) {
  for (const char* match : {"path: /a", "regex: \"/a.*\""}) {
    LoadResult r = load_route(std::string("            match: { ") + match +
                              " }\n            redirect: { prefix_rewrite: /b }\n");
    expect_error(r, 10, 41, kRoute + ".redirect.prefix_rewrite", "needs a 'prefix' match (the part it replaces)");
  }
}

TEST(Redirect, ToTheSameUrlIsRefused) {
  expect_error(load_route("            match: { prefix: / }\n            redirect: {}\n"), 10, 23, kRoute + ".redirect",
               "changes nothing: set 'scheme', 'host', 'port', 'path' or 'prefix_rewrite' (a redirect to the "
               "same URL loops)");
  expect_error(load_route("            match: { prefix: / }\n            redirect: { strip_query: true, code: 302 }\n"),
               10, 23, kRoute + ".redirect",
               "changes nothing but the query: set 'scheme', 'host', 'port', 'path' or 'prefix_rewrite' (a "
               "redirect to the same URL loops)");
}

// --- upgrades ------------------------------------------------------------------------------------

TEST(Upgrades, VirtualHostDefaultAndRouteOverride) {
  LoadResult r = load_yaml(R"(
listeners:
  - name: l
    address: 127.0.0.1:8000
    virtual_hosts:
      - name: v
        domains: ["*"]
        upgrades: [ WebSocket ]
        routes:
          - { name: inherit, match: { prefix: /ws }, cluster: c }
          - { name: none, match: { prefix: /plain }, cluster: c, upgrades: [] }
          - { name: own, match: { prefix: / }, cluster: c, upgrades: [ websocket ], upgrade_idle_timeout: 10m }
      - name: w
        domains: ["w.example"]
        routes: [ { match: { prefix: / }, cluster: c } ]
clusters: [ { name: c, endpoints: [ 127.0.0.1:9000 ] } ]
)");
  ASSERT_TRUE(r.ok()) << r.error_text();
  const VirtualHost& v = r.config.listeners.at(0).virtual_hosts.at(0);
  EXPECT_EQ(v.upgrades, std::vector<std::string>{"websocket"});
  ASSERT_EQ(v.routes.size(), 3u);
  EXPECT_FALSE(v.routes[0].upgrades.has_value());  // the virtual host's list
  EXPECT_EQ(v.routes[0].upgrade_idle_timeout, 1h);
  ASSERT_TRUE(v.routes[1].upgrades.has_value());
  EXPECT_TRUE(v.routes[1].upgrades->empty());
  EXPECT_EQ(v.routes[2].upgrades, std::vector<std::string>{"websocket"});
  EXPECT_EQ(v.routes[2].upgrade_idle_timeout, 10min);
  EXPECT_TRUE(r.config.listeners.at(0).virtual_hosts.at(1).upgrades.empty());
}

TEST(Upgrades, OnlyWebSocket) {
  LoadResult r = load_virtual_host("        upgrades: [ h2c, spdy, websocket, WEBSOCKET ]\n");
  const std::string p = "listeners[0].virtual_hosts[0].upgrades";
  expect_errors(r, {{7, 21, p + "[0]", "h2c is not a tunnel protocol; HTTP/2 comes with the listener's http2 settings"},
                    {7, 26, p + "[1]", "unknown upgrade protocol 'spdy' (only websocket is tunnelled)"},
                    {7, 43, p + "[3]", "websocket is listed twice"}});
  expect_error(load_virtual_host("        upgrades: websocket\n"), 7, 19, p, "expected a list");
}

TEST(Upgrades, IdleTimeout) {
  LoadResult zero = load_route(R"(
            match: { prefix: / }
            cluster: c
            upgrades: [ websocket ]
            upgrade_idle_timeout: 0
)");
  expect_error(zero, 12, 35, kRoute + ".upgrade_idle_timeout", "must be greater than 0");
  LoadResult without = load_route(R"(
            match: { prefix: / }
            cluster: c
            upgrade_idle_timeout: 30m
)");
  expect_error(without, 11, 35, kRoute + ".upgrade_idle_timeout",
               "only used on a route that tunnels upgrades ('upgrades' on the route or its virtual host)");
}

// --- listener body timeouts ----------------------------------------------------------------------

TEST(ListenerBodyTimeouts, Defaults) {
  LoadResult r = load_listener("");
  ASSERT_TRUE(r.ok()) << r.error_text();
  EXPECT_EQ(r.config.listeners.at(0).request_body_timeout, 60s);
  EXPECT_EQ(r.config.listeners.at(0).request_body_total_timeout, 0s);
}

TEST(ListenerBodyTimeouts, Set) {
  LoadResult r = load_listener("    request_body_timeout: 0\n    request_body_total_timeout: 2m\n");
  ASSERT_TRUE(r.ok()) << r.error_text();
  EXPECT_EQ(r.config.listeners.at(0).request_body_timeout, 0s);
  EXPECT_EQ(r.config.listeners.at(0).request_body_total_timeout, 2min);
}

TEST(ListenerBodyTimeouts, Errors) {
  LoadResult r = load_listener("    request_body_timeout: 5\n    request_body_total_timeout: soon\n");
  expect_errors(r, {{4, 27, "listeners[0].request_body_timeout", "duration '5' has no unit (write e.g. 5s or 5ms)"},
                    {5, 33, "listeners[0].request_body_total_timeout",
                     "'soon' is not a duration (expected e.g. 250ms, 15s, 2m, 1h)"}});
}

}  // namespace
}  // namespace sluice::config
