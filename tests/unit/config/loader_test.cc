#include "sluice/config/loader.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "loader_test_util.h"

namespace sluice::config {
namespace {

using namespace std::chrono_literals;

// Raw string literals below start with a newline so that the YAML lines up in the source; drop
// it so that line 1 of the document is the first line after R"(.
std::string doc(std::string s) {
  if (!s.empty() && s.front() == '\n') s.erase(0, 1);
  return s;
}

// The example from the README / DESIGN brief, byte for byte.
const char* const kExample = R"(
admin:
  address: 127.0.0.1:9901
workers: auto                    # one per core, or a number
listeners:
  - name: public
    address: 0.0.0.0:10000
    virtual_hosts:
      - name: app
        domains: ["app.example.com", "*.app.example.com", "*"]
        routes:
          - name: api
            match: { prefix: /api/, headers: [ { name: x-canary, exact: "1" } ] }
            cluster: jetty_canary
          - name: api_default
            match: { prefix: /api/ }
            cluster: jetty
            timeout: 15s
            prefix_rewrite: /v1/
          - name: assets
            match: { regex: "^/assets/.+\\.(css|js)$" }
            cluster: jetty
          - name: exact_health
            match: { path: /healthz }
            cluster: jetty
          - name: catch_all
            match: { prefix: / }
            cluster: jetty
clusters:
  - name: jetty
    lb: round_robin
    connect_timeout: 1s
    endpoints: [ 127.0.0.1:8080 ]
  - name: jetty_canary
    endpoints: [ { address: 127.0.0.1:8081, weight: 1 } ]
)";

// Expects exactly one error and returns it (a copy, so a failed expectation cannot dangle).
LoadError single_error(const LoadResult& r) {
  EXPECT_EQ(r.errors.size(), 1u) << r.error_text();
  if (r.errors.empty()) return LoadError{"<none>", -1, -1, "<none>", "<no error reported>"};
  return r.errors.front();
}

void expect_error(const LoadError& e, int line, int column, const std::string& path,
                  const std::string& message) {
  EXPECT_EQ(e.file, "test.yaml");
  EXPECT_EQ(e.line, line) << e.to_string();
  EXPECT_EQ(e.column, column) << e.to_string();
  EXPECT_EQ(e.path, path) << e.to_string();
  EXPECT_EQ(e.message, message) << e.to_string();
}

LoadResult load(const std::string& yaml) { return load_string(yaml, "test.yaml"); }

// ---------------------------------------------------------------------------------------------
// The example means what it says.

TEST(LoaderExample, LoadsWithoutErrors) {
  LoadResult r = load(doc(kExample));
  ASSERT_TRUE(r.ok()) << r.error_text();
  EXPECT_EQ(r.error_text(), "");
  EXPECT_EQ(r.config.source_path, "test.yaml");
}

TEST(LoaderExample, TopLevel) {
  LoadResult r = load(doc(kExample));
  ASSERT_TRUE(r.ok()) << r.error_text();
  const Config& c = r.config;
  EXPECT_EQ(c.admin.address.ip, "127.0.0.1");
  EXPECT_EQ(c.admin.address.port, 9901);
  EXPECT_EQ(c.workers, 0u);         // auto
  EXPECT_EQ(c.drain_timeout, 15s);  // default
  ASSERT_EQ(c.listeners.size(), 1u);
  ASSERT_EQ(c.clusters.size(), 2u);
}

TEST(LoaderExample, Listener) {
  LoadResult r = load(doc(kExample));
  ASSERT_TRUE(r.ok()) << r.error_text();
  ASSERT_EQ(r.config.listeners.size(), 1u);
  const Listener& l = r.config.listeners[0];
  EXPECT_EQ(l.name, "public");
  EXPECT_EQ(l.address.ip, "0.0.0.0");
  EXPECT_EQ(l.address.port, 10000);
  EXPECT_EQ(l.address.to_string(), "0.0.0.0:10000");
  // Defaults.
  EXPECT_EQ(l.max_request_headers_bytes, 60u * 1024);
  EXPECT_EQ(l.max_request_headers_count, 100u);
  EXPECT_EQ(l.max_request_body_bytes, 0u);
  EXPECT_EQ(l.request_headers_timeout, 10s);
  EXPECT_EQ(l.idle_timeout, 60s);
  ASSERT_EQ(l.virtual_hosts.size(), 1u);
  const VirtualHost& vh = l.virtual_hosts[0];
  EXPECT_EQ(vh.name, "app");
  EXPECT_EQ(vh.domains, (std::vector<std::string>{"app.example.com", "*.app.example.com", "*"}));
  ASSERT_EQ(vh.routes.size(), 5u);
}

TEST(LoaderExample, Routes) {
  LoadResult r = load(doc(kExample));
  ASSERT_TRUE(r.ok()) << r.error_text();
  const auto& routes = r.config.listeners.at(0).virtual_hosts.at(0).routes;
  ASSERT_EQ(routes.size(), 5u);

  const Route& api = routes[0];
  EXPECT_EQ(api.name, "api");
  EXPECT_EQ(api.path_kind, Route::PathKind::kPrefix);
  EXPECT_EQ(api.path, "/api/");
  ASSERT_EQ(api.headers.size(), 1u);
  EXPECT_EQ(api.headers[0].name, "x-canary");
  EXPECT_EQ(api.headers[0].kind, HeaderMatch::Kind::kExact);
  EXPECT_EQ(api.headers[0].value, "1");
  EXPECT_TRUE(api.query.empty());
  EXPECT_EQ(api.cluster, "jetty_canary");
  EXPECT_EQ(api.timeout, 15s);
  EXPECT_FALSE(api.prefix_rewrite.has_value());
  EXPECT_FALSE(api.host_rewrite.has_value());

  const Route& api_default = routes[1];
  EXPECT_EQ(api_default.name, "api_default");
  EXPECT_EQ(api_default.path_kind, Route::PathKind::kPrefix);
  EXPECT_EQ(api_default.path, "/api/");
  EXPECT_TRUE(api_default.headers.empty());
  EXPECT_EQ(api_default.cluster, "jetty");
  EXPECT_EQ(api_default.timeout, 15s);
  ASSERT_TRUE(api_default.prefix_rewrite.has_value());
  EXPECT_EQ(*api_default.prefix_rewrite, "/v1/");

  const Route& assets = routes[2];
  EXPECT_EQ(assets.name, "assets");
  EXPECT_EQ(assets.path_kind, Route::PathKind::kRegex);
  // YAML "\\." in a double-quoted scalar is one backslash for RE2.
  EXPECT_EQ(assets.path, "^/assets/.+\\.(css|js)$");
  EXPECT_TRUE(assets.headers.empty());
  EXPECT_EQ(assets.cluster, "jetty");
  EXPECT_EQ(assets.timeout, 15s);
  EXPECT_FALSE(assets.prefix_rewrite.has_value());

  const Route& health = routes[3];
  EXPECT_EQ(health.name, "exact_health");
  EXPECT_EQ(health.path_kind, Route::PathKind::kPath);
  EXPECT_EQ(health.path, "/healthz");
  EXPECT_EQ(health.cluster, "jetty");
  EXPECT_EQ(health.timeout, 15s);
  EXPECT_FALSE(health.prefix_rewrite.has_value());

  const Route& catch_all = routes[4];
  EXPECT_EQ(catch_all.name, "catch_all");
  EXPECT_EQ(catch_all.path_kind, Route::PathKind::kPrefix);
  EXPECT_EQ(catch_all.path, "/");
  EXPECT_EQ(catch_all.cluster, "jetty");
  EXPECT_EQ(catch_all.timeout, 15s);
  EXPECT_FALSE(catch_all.prefix_rewrite.has_value());
}

TEST(LoaderExample, Clusters) {
  LoadResult r = load(doc(kExample));
  ASSERT_TRUE(r.ok()) << r.error_text();
  ASSERT_EQ(r.config.clusters.size(), 2u);

  const Cluster& jetty = r.config.clusters[0];
  EXPECT_EQ(jetty.name, "jetty");
  EXPECT_EQ(jetty.lb, Cluster::LbPolicy::kRoundRobin);
  EXPECT_EQ(jetty.connect_timeout, 1s);
  EXPECT_EQ(jetty.idle_timeout, 20s);          // default
  EXPECT_EQ(jetty.max_idle_connections, 64u);  // default
  ASSERT_EQ(jetty.endpoints.size(), 1u);
  EXPECT_EQ(jetty.endpoints[0].address.ip, "127.0.0.1");
  EXPECT_EQ(jetty.endpoints[0].address.port, 8080);
  EXPECT_EQ(jetty.endpoints[0].weight, 1u);

  const Cluster& canary = r.config.clusters[1];
  EXPECT_EQ(canary.name, "jetty_canary");
  EXPECT_EQ(canary.lb, Cluster::LbPolicy::kRoundRobin);
  EXPECT_EQ(canary.connect_timeout, 1s);  // default
  ASSERT_EQ(canary.endpoints.size(), 1u);
  EXPECT_EQ(canary.endpoints[0].address.ip, "127.0.0.1");
  EXPECT_EQ(canary.endpoints[0].address.port, 8081);
  EXPECT_EQ(canary.endpoints[0].weight, 1u);
}

// ---------------------------------------------------------------------------------------------
// Optional keys that the example does not use.

TEST(Loader, OptionalKeysAreRead) {
  LoadResult r = load(doc(R"(
workers: 4
drain_timeout: 1h
listeners:
  - name: l
    address: "[::1]:8000"
    max_request_headers_size: 32KiB
    max_request_headers_count: 50
    max_request_body_size: 10MiB
    request_headers_timeout: 250ms
    idle_timeout: 2m
    virtual_hosts:
      - name: v
        domains: ["API.Example.com"]
        routes:
          - match:
              path: /a
              headers:
                - { name: X-Debug, present: false }
                - { name: X-Present }
                - { name: User-Agent, regex: "curl/.*" }
              query:
                - { name: v, exact: "2" }
                - { name: debug, present: true }
                - { name: off, present: false }
            cluster: c
            timeout: 0
            prefix_rewrite: /b
            host_rewrite: backend.internal
          - match: { prefix: / }
            cluster: c
clusters:
  - name: c
    connect_timeout: 250ms
    idle_timeout: 5s
    max_idle_connections: 0
    endpoints:
      - 10.0.0.1:80
      - { address: "[2001:db8::1]:8080", weight: 7 }
)"));
  ASSERT_TRUE(r.ok()) << r.error_text();
  const Config& c = r.config;
  EXPECT_EQ(c.workers, 4u);
  EXPECT_EQ(c.drain_timeout, 1h);
  EXPECT_EQ(c.admin.address.ip, "127.0.0.1");  // default
  EXPECT_EQ(c.admin.address.port, 9901);

  const Listener& l = c.listeners.at(0);
  EXPECT_EQ(l.address.ip, "::1");
  EXPECT_EQ(l.address.port, 8000);
  EXPECT_EQ(l.address.to_string(), "[::1]:8000");
  EXPECT_EQ(l.max_request_headers_bytes, 32u * 1024);
  EXPECT_EQ(l.max_request_headers_count, 50u);
  EXPECT_EQ(l.max_request_body_bytes, 10u * 1024 * 1024);
  EXPECT_EQ(l.request_headers_timeout, 250ms);
  EXPECT_EQ(l.idle_timeout, 2min);

  const VirtualHost& vh = l.virtual_hosts.at(0);
  EXPECT_EQ(vh.domains, std::vector<std::string>{"api.example.com"});  // lower-cased
  ASSERT_EQ(vh.routes.size(), 2u);
  const Route& r0 = vh.routes[0];
  EXPECT_EQ(r0.name, "route_0");  // unnamed routes get their position
  EXPECT_EQ(vh.routes[1].name, "route_1");
  EXPECT_EQ(r0.path_kind, Route::PathKind::kPath);
  EXPECT_EQ(r0.path, "/a");
  ASSERT_EQ(r0.headers.size(), 3u);
  EXPECT_EQ(r0.headers[0].name, "x-debug");  // lower-cased
  EXPECT_EQ(r0.headers[0].kind, HeaderMatch::Kind::kPresent);
  EXPECT_FALSE(r0.headers[0].present);
  EXPECT_EQ(r0.headers[1].name, "x-present");
  EXPECT_EQ(r0.headers[1].kind, HeaderMatch::Kind::kPresent);
  EXPECT_TRUE(r0.headers[1].present);
  EXPECT_EQ(r0.headers[2].name, "user-agent");
  EXPECT_EQ(r0.headers[2].kind, HeaderMatch::Kind::kRegex);
  EXPECT_EQ(r0.headers[2].value, "curl/.*");
  ASSERT_EQ(r0.query.size(), 3u);
  EXPECT_EQ(r0.query[0].name, "v");
  EXPECT_EQ(r0.query[0].kind, QueryMatch::Kind::kExact);
  EXPECT_EQ(r0.query[0].value, "2");
  EXPECT_EQ(r0.query[1].name, "debug");
  EXPECT_EQ(r0.query[1].kind, QueryMatch::Kind::kPresent);
  EXPECT_TRUE(r0.query[1].present);
  EXPECT_EQ(r0.query[2].name, "off");
  EXPECT_EQ(r0.query[2].kind, QueryMatch::Kind::kPresent);
  EXPECT_FALSE(r0.query[2].present);
  EXPECT_EQ(r0.timeout, 0ms);
  EXPECT_EQ(r0.prefix_rewrite, std::optional<std::string>("/b"));
  EXPECT_EQ(r0.host_rewrite, std::optional<std::string>("backend.internal"));

  const Cluster& cl = c.clusters.at(0);
  EXPECT_EQ(cl.connect_timeout, 250ms);
  EXPECT_EQ(cl.idle_timeout, 5s);
  EXPECT_EQ(cl.max_idle_connections, 0u);
  ASSERT_EQ(cl.endpoints.size(), 2u);
  EXPECT_EQ(cl.endpoints[0].address.to_string(), "10.0.0.1:80");
  EXPECT_EQ(cl.endpoints[0].weight, 1u);
  EXPECT_EQ(cl.endpoints[1].address.ip, "2001:db8::1");
  EXPECT_EQ(cl.endpoints[1].address.port, 8080);
  EXPECT_EQ(cl.endpoints[1].weight, 7u);
}

// ---------------------------------------------------------------------------------------------
// Validation errors: one kind per test, with exact position, key path and message.

// A valid document to break one line at a time. Line numbers:
//  1 listeners:
//  2   - name: l
//  3     address: 127.0.0.1:8000
//  4     virtual_hosts:
//  5       - name: v
//  6         domains: ["*"]
//  7         routes:
//  8           - name: r
//  9             match: { prefix: / }
// 10             cluster: c
// 11 clusters:
// 12   - name: c
// 13     endpoints: [ 127.0.0.1:9000 ]
using testing::kMinimal;  // this document, from loader_test_util.h
using testing::replace;

TEST(LoaderErrors, MinimalDocumentIsValid) {
  LoadResult r = load(doc(kMinimal));
  ASSERT_TRUE(r.ok()) << r.error_text();
  EXPECT_EQ(r.config.listeners.at(0).virtual_hosts.at(0).routes.at(0).cluster, "c");
}

TEST(LoaderErrors, UnknownTopLevelKey) {
  LoadResult r = load("bogus: 1\n" + doc(kMinimal));
  LoadError e = single_error(r);
  expect_error(e, 1, 1, "bogus",
               "unknown key (known keys: admin, workers, drain_timeout, listeners, clusters)");
  EXPECT_EQ(e.to_string(),
            "test.yaml:1:1: bogus: unknown key (known keys: admin, workers, drain_timeout, "
            "listeners, clusters)");
}

TEST(LoaderErrors, UnknownNestedKey) {
  // Line 10 becomes "            cluster: c\n            retries: 3".
  LoadResult r =
      load(replace(doc(kMinimal), "cluster: c\n", "cluster: c\n            retries: 3\n"));
  expect_error(single_error(r), 11, 13, "listeners[0].virtual_hosts[0].routes[0].retries",
               "unknown key (known keys: name, match, cluster, direct_response, redirect, timeout, "
               "prefix_rewrite, host_rewrite, request_headers, response_headers, upgrades, "
               "upgrade_idle_timeout, grpc_timeout_header)");
}

TEST(LoaderErrors, UnknownKeyInsideFlowMap) {
  // "            match: { prefix: /, exact: / }": 'exact' is at column 33.
  LoadResult r = load(replace(doc(kMinimal), "{ prefix: / }", "{ prefix: /, exact: / }"));
  expect_error(single_error(r), 9, 33, "listeners[0].virtual_hosts[0].routes[0].match.exact",
               "unknown key (known keys: path, prefix, regex, headers, query, client_cert)");
}

TEST(LoaderErrors, UnknownAdminKey) {
  LoadResult r = load("admin:\n  address: 127.0.0.1:9901\n  port: 9901\n" + doc(kMinimal));
  expect_error(single_error(r), 3, 3, "admin.port", "unknown key (known keys: address)");
}

TEST(LoaderErrors, MapWhereListExpected) {
  // "    endpoints: { address: 127.0.0.1:9000 }": the map starts at column 16.
  LoadResult r = load(replace(doc(kMinimal), "[ 127.0.0.1:9000 ]", "{ address: 127.0.0.1:9000 }"));
  expect_error(single_error(r), 13, 16, "clusters[0].endpoints", "expected a list");
}

TEST(LoaderErrors, MapWhereListExpectedAtTopLevel) {
  LoadResult r = load(replace(doc(kMinimal), "  - name: c\n    endpoints: [ 127.0.0.1:9000 ]\n",
                              "  c: { endpoints: [ 127.0.0.1:9000 ] }\n"));
  // Nothing is read from the clusters map, so the route's cluster is undefined as well.
  ASSERT_EQ(r.errors.size(), 2u) << r.error_text();
  expect_error(r.errors[0], 12, 3, "clusters", "expected a list");
  expect_error(r.errors[1], 10, 22, "listeners[0].virtual_hosts[0].routes[0].cluster",
               "no cluster named 'c' is defined");
}

TEST(LoaderErrors, StringWhereNumberExpected) {
  LoadResult r = load(replace(doc(kMinimal), "    virtual_hosts:\n",
                              "    max_request_headers_count: lots\n    virtual_hosts:\n"));
  expect_error(single_error(r), 4, 32, "listeners[0].max_request_headers_count",
               "'lots' is not a whole number");
}

TEST(LoaderErrors, ListWhereNumberExpected) {
  LoadResult r = load(
      replace(doc(kMinimal), "[ 127.0.0.1:9000 ]", "[ { address: 127.0.0.1:9000, weight: [1] } ]"));
  // "    endpoints: [ { address: 127.0.0.1:9000, weight: [1] } ]": '[1]' at column 53.
  expect_error(single_error(r), 13, 53, "clusters[0].endpoints[0].weight",
               "expected a whole number");
}

TEST(LoaderErrors, ListWhereStringExpected) {
  LoadResult r = load(replace(doc(kMinimal), "cluster: c\n", "cluster: [c]\n"));
  expect_error(single_error(r), 10, 22, "listeners[0].virtual_hosts[0].routes[0].cluster",
               "expected a string");
}

TEST(LoaderErrors, WorkersNotANumber) {
  LoadResult r = load("workers: many\n" + doc(kMinimal));
  expect_error(single_error(r), 1, 10, "workers", "'many' is not a whole number");
}

TEST(LoaderErrors, WorkersOutOfRange) {
  LoadResult r = load("workers: 0\n" + doc(kMinimal));
  expect_error(single_error(r), 1, 10, "workers", "0 is out of range (1-1024)");
}

TEST(LoaderErrors, RouteNamesMissingCluster) {
  LoadResult r = load(replace(doc(kMinimal), "cluster: c\n", "cluster: nope\n"));
  LoadError e = single_error(r);
  expect_error(e, 10, 22, "listeners[0].virtual_hosts[0].routes[0].cluster",
               "no cluster named 'nope' is defined");
  EXPECT_EQ(e.to_string(),
            "test.yaml:10:22: listeners[0].virtual_hosts[0].routes[0].cluster: no cluster named "
            "'nope' is defined");
}

TEST(LoaderErrors, BadRegexInPathMatch) {
  // "            match: { regex: "(" }": the scalar starts at column 29.
  LoadResult r = load(replace(doc(kMinimal), "{ prefix: / }", "{ regex: \"(\" }"));
  expect_error(single_error(r), 9, 29, "listeners[0].virtual_hosts[0].routes[0].match.regex",
               "invalid regex '(': missing ): (");
}

TEST(LoaderErrors, BadRegexInHeaderMatch) {
  LoadResult r = load(replace(doc(kMinimal), "{ prefix: / }",
                              "{ prefix: /, headers: [ { name: a, regex: \"[z-a]\" } ] }"));
  // '"[z-a]"' starts at column 62.
  expect_error(single_error(r), 9, 62,
               "listeners[0].virtual_hosts[0].routes[0].match.headers[0].regex",
               "invalid regex '[z-a]': invalid character class range: z-a");
}

TEST(LoaderErrors, AddressWithoutPort) {
  LoadResult r = load(replace(doc(kMinimal), "address: 127.0.0.1:8000", "address: 127.0.0.1"));
  expect_error(single_error(r), 3, 14, "listeners[0].address",
               "'127.0.0.1' is not an address (expected IP:port, e.g. 127.0.0.1:8080)");
}

TEST(LoaderErrors, AddressWithBadIp) {
  LoadResult r = load(replace(doc(kMinimal), "[ 127.0.0.1:9000 ]", "[ 127.0.0.256:9000 ]"));
  expect_error(single_error(r), 13, 18, "clusters[0].endpoints[0]", "'127.0.0.256' is not an IP address");
}

TEST(LoaderErrors, AddressWithHostName) {
  LoadResult r = load(replace(doc(kMinimal), "address: 127.0.0.1:8000", "address: localhost:8000"));
  // Listeners bind, so they take IP addresses only (endpoints may be host names).
  expect_error(single_error(r), 3, 14, "listeners[0].address",
               "'localhost' is not an IP address (write a literal IPv4 or [IPv6] address)");
}

TEST(LoaderErrors, AddressWithPortOutOfRange) {
  LoadResult r = load(replace(doc(kMinimal), "[ 127.0.0.1:9000 ]", "[ 127.0.0.1:65536 ]"));
  expect_error(single_error(r), 13, 18, "clusters[0].endpoints[0]",
               "'127.0.0.1:65536' has an invalid port (expected 1-65535)");
}

TEST(LoaderErrors, AdminAddressChecked) {
  LoadResult r = load("admin: { address: \"[::1]\" }\n" + doc(kMinimal));
  expect_error(single_error(r), 1, 19, "admin.address",
               "'[::1]' is not an address (expected [IPv6]:port)");
}

TEST(LoaderErrors, DuplicateListenerName) {
  std::string yaml = replace(
      doc(kMinimal), "clusters:\n",
      "  - name: l\n"
      "    address: 127.0.0.1:8001\n"
      "    virtual_hosts:\n"
      "      - { name: v, domains: [\"*\"], routes: [ { match: { prefix: / }, cluster: c } ] }\n"
      "clusters:\n");
  LoadResult r = load(yaml);
  expect_error(single_error(r), 11, 11, "listeners[1].name", "duplicate listener name 'l'");
}

TEST(LoaderErrors, DuplicateListenerAddress) {
  std::string yaml = replace(
      doc(kMinimal), "clusters:\n",
      "  - name: l2\n"
      "    address: 127.0.0.1:8000\n"
      "    virtual_hosts:\n"
      "      - { name: v, domains: [\"*\"], routes: [ { match: { prefix: / }, cluster: c } ] }\n"
      "clusters:\n");
  LoadResult r = load(yaml);
  expect_error(single_error(r), 12, 14, "listeners[1].address",
               "address 127.0.0.1:8000 is already used by another listener");
}

TEST(LoaderErrors, DuplicateClusterName) {
  LoadResult r = load(doc(kMinimal) + "  - name: c\n    endpoints: [ 127.0.0.1:9001 ]\n");
  expect_error(single_error(r), 14, 11, "clusters[1].name", "duplicate cluster name 'c'");
}

TEST(LoaderErrors, DuplicateRouteNameWithinVirtualHost) {
  LoadResult r = load(replace(doc(kMinimal), "clusters:\n",
                              "          - name: r\n"
                              "            match: { prefix: /x }\n"
                              "            cluster: c\n"
                              "clusters:\n"));
  expect_error(single_error(r), 11, 19, "listeners[0].virtual_hosts[0].routes[1].name",
               "duplicate route name 'r'");
}

TEST(LoaderErrors, SameRouteNameInTwoVirtualHostsIsFine) {
  LoadResult r = load(replace(doc(kMinimal), "clusters:\n",
                              "      - name: w\n"
                              "        domains: [\"w.com\"]\n"
                              "        routes: [ { name: r, match: { prefix: / }, cluster: c } ]\n"
                              "clusters:\n"));
  EXPECT_TRUE(r.ok()) << r.error_text();
}

TEST(LoaderErrors, DuplicateVirtualHostName) {
  LoadResult r = load(replace(doc(kMinimal), "clusters:\n",
                              "      - name: v\n"
                              "        domains: [\"w.com\"]\n"
                              "        routes: [ { match: { prefix: / }, cluster: c } ]\n"
                              "clusters:\n"));
  expect_error(single_error(r), 11, 15, "listeners[0].virtual_hosts[1].name",
               "duplicate virtual host name 'v'");
}

TEST(LoaderErrors, DuplicateDomainAcrossVirtualHostsOfOneListener) {
  // Domains are compared lower-cased.
  std::string yaml = replace(doc(kMinimal), "[\"*\"]", "[\"a.com\", \"*\"]");
  yaml = replace(yaml, "clusters:\n",
                 "      - name: w\n"
                 "        domains: [\"b.com\", \"A.com\"]\n"
                 "        routes: [ { match: { prefix: / }, cluster: c } ]\n"
                 "clusters:\n");
  LoadResult r = load(yaml);
  expect_error(single_error(r), 12, 28, "listeners[0].virtual_hosts[1].domains[1]",
               "domain 'a.com' is already used in this listener");
}

TEST(LoaderErrors, DuplicateDomainWithinOneVirtualHost) {
  LoadResult r = load(replace(doc(kMinimal), "[\"*\"]", "[\"*\", \"*\"]"));
  expect_error(single_error(r), 6, 24, "listeners[0].virtual_hosts[0].domains[1]",
               "domain '*' is already used in this listener");
}

TEST(LoaderErrors, SameDomainInTwoListenersIsFine) {
  std::string yaml = replace(
      doc(kMinimal), "clusters:\n",
      "  - name: l2\n"
      "    address: 127.0.0.1:8001\n"
      "    virtual_hosts:\n"
      "      - { name: v, domains: [\"*\"], routes: [ { match: { prefix: / }, cluster: c } ] }\n"
      "clusters:\n");
  LoadResult r = load(yaml);
  EXPECT_TRUE(r.ok()) << r.error_text();
}

TEST(LoaderErrors, BadDomainsAreReportedOnce) {
  // Entries that are not strings, or empty, are reported once each; they are not also
  // "already used" by each other.
  LoadResult r = load(replace(doc(kMinimal), "[\"*\"]", "[ [x], \"\", \"*\", {a: b} ]"));
  ASSERT_EQ(r.errors.size(), 3u) << r.error_text();
  expect_error(r.errors[0], 6, 20, "listeners[0].virtual_hosts[0].domains[0]", "expected a string");
  expect_error(r.errors[1], 6, 25, "listeners[0].virtual_hosts[0].domains[1]", "must not be empty");
  expect_error(r.errors[2], 6, 34, "listeners[0].virtual_hosts[0].domains[3]", "expected a string");
}

TEST(LoaderErrors, BadWildcardDomain) {
  LoadResult r = load(replace(doc(kMinimal), "[\"*\"]", "[\"a.*.com\"]"));
  expect_error(single_error(r), 6, 19, "listeners[0].virtual_hosts[0].domains[0]",
               "domain 'a.*.com': a wildcard may only be '*', a '*.' prefix or a '.*' suffix");
}

TEST(LoaderErrors, EmptyEndpointList) {
  LoadResult r = load(replace(doc(kMinimal), "[ 127.0.0.1:9000 ]", "[]"));
  expect_error(single_error(r), 13, 16, "clusters[0].endpoints", "needs at least one endpoint");
}

TEST(LoaderErrors, DurationWithoutUnit) {
  LoadResult r =
      load(replace(doc(kMinimal), "cluster: c\n", "cluster: c\n            timeout: 15\n"));
  expect_error(single_error(r), 11, 22, "listeners[0].virtual_hosts[0].routes[0].timeout",
               "duration '15' has no unit (write e.g. 15s or 15ms)");
}

TEST(LoaderErrors, DurationWithUnknownUnit) {
  LoadResult r =
      load(replace(doc(kMinimal), "cluster: c\n", "cluster: c\n            timeout: 3d\n"));
  expect_error(single_error(r), 11, 22, "listeners[0].virtual_hosts[0].routes[0].timeout",
               "duration '3d' has an unknown unit 'd' (use ms, s, m or h)");
}

TEST(LoaderErrors, DurationNotANumber) {
  LoadResult r =
      load(replace(doc(kMinimal), "    endpoints:", "    connect_timeout: fast\n    endpoints:"));
  expect_error(single_error(r), 13, 22, "clusters[0].connect_timeout",
               "'fast' is not a duration (expected e.g. 250ms, 15s, 2m, 1h)");
}

TEST(LoaderErrors, ZeroConnectTimeout) {
  LoadResult r =
      load(replace(doc(kMinimal), "    endpoints:", "    connect_timeout: 0\n    endpoints:"));
  expect_error(single_error(r), 13, 22, "clusters[0].connect_timeout", "must be greater than 0");
}

TEST(LoaderErrors, UnknownLoadBalancer) {
  LoadResult r = load(replace(doc(kMinimal), "    endpoints:", "    lb: fastest\n    endpoints:"));
  expect_error(single_error(r), 13, 9, "clusters[0].lb",
               "unknown load balancer 'fastest' (round_robin, least_request, random, maglev)");
}

TEST(LoaderErrors, HeaderSizeTooSmall) {
  LoadResult r = load(replace(doc(kMinimal), "    virtual_hosts:\n",
                              "    max_request_headers_size: 512\n    virtual_hosts:\n"));
  expect_error(single_error(r), 4, 31, "listeners[0].max_request_headers_size",
               "must be at least 1KiB");
}

TEST(LoaderErrors, YamlSyntaxError) {
  // An unclosed flow sequence.
  LoadResult r = load("listeners: [ a, b\nclusters: []\n");
  LoadError e = single_error(r);
  expect_error(e, 2, 9, "", "YAML syntax error: end of sequence flow not found");
  EXPECT_EQ(e.to_string(), "test.yaml:2:9: YAML syntax error: end of sequence flow not found");
}

TEST(LoaderErrors, YamlSyntaxErrorBadIndentation) {
  LoadResult r = load("listeners:\n  - name: a\n   bad: [\n");
  LoadError e = single_error(r);
  EXPECT_EQ(e.line, 3);
  EXPECT_EQ(e.path, "");
  EXPECT_EQ(e.message.rfind("YAML syntax error: ", 0), 0u) << e.message;
}

TEST(LoaderErrors, EmptyFile) {
  LoadResult r = load("");
  LoadError e = single_error(r);
  expect_error(e, 0, 0, "", "the file is empty; it needs at least 'listeners' and 'clusters'");
  EXPECT_EQ(e.to_string(),
            "test.yaml: the file is empty; it needs at least 'listeners' and 'clusters'");
}

TEST(LoaderErrors, TopLevelNotAMap) {
  LoadResult r = load("- a\n- b\n");
  expect_error(single_error(r), 1, 1, "", "the top level must be a map of keys");
}

TEST(LoaderErrors, MissingTopLevelKeys) {
  LoadResult r = load("workers: 2\n");
  ASSERT_EQ(r.errors.size(), 2u) << r.error_text();
  expect_error(r.errors[0], 1, 1, "listeners", "missing required key");
  expect_error(r.errors[1], 1, 1, "clusters", "missing required key");
}

TEST(LoaderErrors, MissingListenerKeys) {
  // A listener with only a name: address and virtual_hosts are missing; reported at the map.
  LoadResult r = load("listeners:\n  - name: l\nclusters: []\n");
  ASSERT_EQ(r.errors.size(), 2u) << r.error_text();
  expect_error(r.errors[0], 2, 5, "listeners[0].address", "missing required key");
  expect_error(r.errors[1], 2, 5, "listeners[0].virtual_hosts", "missing required key");
}

TEST(LoaderErrors, MissingRouteKeys) {
  LoadResult r = load(
      replace(doc(kMinimal), "            match: { prefix: / }\n            cluster: c\n", ""));
  ASSERT_EQ(r.errors.size(), 2u) << r.error_text();
  expect_error(r.errors[0], 8, 13, "listeners[0].virtual_hosts[0].routes[0].match",
               "missing required key");
  expect_error(r.errors[1], 8, 13, "listeners[0].virtual_hosts[0].routes[0]",
               "needs one of 'cluster', 'direct_response' or 'redirect'");
}

TEST(LoaderErrors, MissingNamesAndEndpoints) {
  LoadResult r =
      load(replace(replace(doc(kMinimal), "      - name: v\n        domains", "      - domains"),
                   "  - name: c\n    endpoints: [ 127.0.0.1:9000 ]\n", "  - name: c\n"));
  // The vhost now starts at line 5 with "domains" (column 9); the cluster map at line 11.
  ASSERT_EQ(r.errors.size(), 2u) << r.error_text();
  expect_error(r.errors[0], 5, 9, "listeners[0].virtual_hosts[0].name", "missing required key");
  expect_error(r.errors[1], 11, 5, "clusters[0].endpoints", "missing required key");
}

TEST(LoaderErrors, MatchWithoutPathKind) {
  LoadResult r = load(replace(doc(kMinimal), "{ prefix: / }", "{ headers: [ { name: a } ] }"));
  expect_error(single_error(r), 9, 20, "listeners[0].virtual_hosts[0].routes[0].match",
               "needs one of 'path', 'prefix' or 'regex'");
}

TEST(LoaderErrors, PrefixRewriteWithRegexMatch) {
  LoadResult r = load(
      replace(doc(kMinimal), "{ prefix: / }\n            cluster: c\n",
              "{ regex: \"/a.*\" }\n            cluster: c\n            prefix_rewrite: /b/\n"));
  expect_error(single_error(r), 11, 29, "listeners[0].virtual_hosts[0].routes[0].prefix_rewrite",
               "needs a 'prefix' or 'path' match, not 'regex'");
}

TEST(LoaderErrors, PrefixRewriteMustStartWithSlash) {
  LoadResult r =
      load(replace(doc(kMinimal), "cluster: c\n", "cluster: c\n            prefix_rewrite: v1\n"));
  expect_error(single_error(r), 11, 29, "listeners[0].virtual_hosts[0].routes[0].prefix_rewrite",
               "must start with '/'");
}

TEST(LoaderErrors, PrefixAndPathInOneMatch) {
  LoadResult r = load(replace(doc(kMinimal), "{ prefix: / }", "{ prefix: /, path: /a }"));
  expect_error(single_error(r), 9, 20, "listeners[0].virtual_hosts[0].routes[0].match",
               "takes only one of 'path', 'prefix' or 'regex'");
}

TEST(LoaderErrors, PathMustStartWithSlash) {
  LoadResult r = load(replace(doc(kMinimal), "{ prefix: / }", "{ path: healthz }"));
  expect_error(single_error(r), 9, 28, "listeners[0].virtual_hosts[0].routes[0].match.path",
               "must start with '/'");
}

TEST(LoaderErrors, HeaderConditionWithTwoKinds) {
  LoadResult r = load(replace(doc(kMinimal), "{ prefix: / }",
                              "{ prefix: /, headers: [ { name: a, exact: b, present: true } ] }"));
  // The condition map starts at column 44.
  expect_error(single_error(r), 9, 44, "listeners[0].virtual_hosts[0].routes[0].match.headers[0]",
               "takes only one of 'exact', 'present' or 'regex'");
}

TEST(LoaderErrors, PresentMustBeBoolean) {
  LoadResult r = load(replace(doc(kMinimal), "{ prefix: / }",
                              "{ prefix: /, query: [ { name: a, present: maybe } ] }"));
  expect_error(single_error(r), 9, 62,
               "listeners[0].virtual_hosts[0].routes[0].match.query[0].present",
               "expected true or false, got 'maybe'");
}

TEST(LoaderErrors, QueryConditionHasNoRegex) {
  LoadResult r = load(
      replace(doc(kMinimal), "{ prefix: / }", "{ prefix: /, query: [ { name: a, regex: b } ] }"));
  expect_error(single_error(r), 9, 53,
               "listeners[0].virtual_hosts[0].routes[0].match.query[0].regex",
               "unknown key (known keys: name, exact, present)");
}

TEST(LoaderErrors, DuplicateKey) {
  LoadResult r = load("workers: 2\nworkers: 3\n" + doc(kMinimal));
  expect_error(single_error(r), 2, 1, "workers", "duplicate key");
}

TEST(LoaderErrors, EntriesThatAreNotMapsAreReportedNotThrown) {
  // A scalar where a listener, virtual host or route map belongs. yaml-cpp throws on operator[]
  // of a scalar; the loader must report instead.
  {
    LoadResult r;
    ASSERT_NO_THROW(r = load("listeners: [ oops ]\nclusters: []\n"));
    expect_error(single_error(r), 1, 14, "listeners[0]", "expected a map");
  }
  {
    LoadResult r;
    ASSERT_NO_THROW(r = load("listeners: [ ~, [1] ]\nclusters: [ ~, x ]\n"));
    ASSERT_EQ(r.errors.size(), 4u) << r.error_text();
    expect_error(r.errors[0], 1, 14, "listeners[0]", "expected a map");
    expect_error(r.errors[1], 1, 17, "listeners[1]", "expected a map");
    expect_error(r.errors[2], 2, 13, "clusters[0]", "expected a map");
    expect_error(r.errors[3], 2, 16, "clusters[1]", "expected a map");
  }
  {
    LoadResult r;
    ASSERT_NO_THROW(r = load(replace(doc(kMinimal),
                                     "      - name: v\n        domains: [\"*\"]\n        routes:\n"
                                     "          - name: r\n            match: { prefix: / }\n"
                                     "            cluster: c\n",
                                     "      - oops\n")));
    expect_error(single_error(r), 5, 9, "listeners[0].virtual_hosts[0]", "expected a map");
  }
  {
    LoadResult r;
    ASSERT_NO_THROW(r = load(replace(doc(kMinimal),
                                     "          - name: r\n            match: { prefix: / }\n"
                                     "            cluster: c\n",
                                     "          - oops\n")));
    expect_error(single_error(r), 8, 13, "listeners[0].virtual_hosts[0].routes[0]",
                 "expected a map");
  }
}

TEST(LoaderErrors, EveryErrorInAFileIsReported) {
  LoadResult r = load(doc(R"(
bogus: 1
workers: many
listeners:
  - name: l
    address: 127.0.0.1
    virtual_hosts:
      - name: v
        domains: ["*"]
        routes:
          - name: a
            match: { prefix: /, path: /x }
            cluster: nope
            timeout: 15
          - name: b
            match: { regex: "(" }
            cluster: c
            prefix_rewrite: /v1/
clusters:
  - name: c
    endpoints: []
  - name: c
    connect_timeout: 1y
    endpoints: [ "1.2.3.4:99999" ]
)"));
  // In the order the loader walks the file; the cluster cross-check comes last.
  std::vector<std::string> expected = {
      "test.yaml:1:1: bogus: unknown key (known keys: admin, workers, drain_timeout, listeners, "
      "clusters)",
      "test.yaml:2:10: workers: 'many' is not a whole number",
      "test.yaml:5:14: listeners[0].address: '127.0.0.1' is not an address (expected IP:port, e.g. "
      "127.0.0.1:8080)",
      "test.yaml:11:20: listeners[0].virtual_hosts[0].routes[0].match: takes only one of 'path', "
      "'prefix' or 'regex'",
      "test.yaml:13:22: listeners[0].virtual_hosts[0].routes[0].timeout: duration '15' has no unit "
      "(write e.g. 15s or 15ms)",
      "test.yaml:15:29: listeners[0].virtual_hosts[0].routes[1].match.regex: invalid regex '(': "
      "missing ): (",
      "test.yaml:17:29: listeners[0].virtual_hosts[0].routes[1].prefix_rewrite: needs a 'prefix' "
      "or "
      "'path' match, not 'regex'",
      "test.yaml:20:16: clusters[0].endpoints: needs at least one endpoint",
      "test.yaml:22:22: clusters[1].connect_timeout: duration '1y' has an unknown unit 'y' (use "
      "ms, "
      "s, m or h)",
      "test.yaml:23:18: clusters[1].endpoints[0]: '1.2.3.4:99999' has an invalid port (expected "
      "1-65535)",
      "test.yaml:21:11: clusters[1].name: duplicate cluster name 'c'",
      "test.yaml:12:22: listeners[0].virtual_hosts[0].routes[0].cluster: no cluster named 'nope' "
      "is "
      "defined",
  };
  ASSERT_EQ(r.errors.size(), expected.size()) << r.error_text();
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_EQ(r.errors[i].to_string(), expected[i]) << i;
  std::string all;
  for (const auto& line : expected) all += line + "\n";
  EXPECT_EQ(r.error_text(), all);
}

// ---------------------------------------------------------------------------------------------
// load_file

TEST(LoadFile, MissingFileIsOneErrorNamingTheFile) {
  const std::string path = "/nonexistent-sluice-dir/sluice.yaml";
  LoadResult r = load_file(path);
  ASSERT_EQ(r.errors.size(), 1u) << r.error_text();
  const LoadError& e = r.errors[0];
  EXPECT_EQ(e.file, path);
  EXPECT_EQ(e.line, 0);
  EXPECT_EQ(e.column, 0);
  EXPECT_EQ(e.path, "");
  EXPECT_EQ(e.message, "cannot read the file");
  EXPECT_EQ(e.to_string(), path + ": cannot read the file");
  EXPECT_FALSE(r.ok());
}

TEST(LoadFile, ReadsAFileAndNamesItInErrors) {
  auto dir = std::filesystem::temp_directory_path();
  auto path = (dir / ("sluice_loader_test_" + std::to_string(::getpid()) + ".yaml")).string();
  {
    std::ofstream out(path, std::ios::binary);
    out << doc(kMinimal);
  }
  LoadResult ok = load_file(path);
  EXPECT_TRUE(ok.ok()) << ok.error_text();
  EXPECT_EQ(ok.config.source_path, path);
  EXPECT_EQ(ok.config.listeners.at(0).name, "l");
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << "workers: x\n" << doc(kMinimal);
  }
  LoadResult bad = load_file(path);
  std::remove(path.c_str());
  ASSERT_EQ(bad.errors.size(), 1u) << bad.error_text();
  EXPECT_EQ(bad.errors[0].to_string(), path + ":1:10: workers: 'x' is not a whole number");
}

// ---------------------------------------------------------------------------------------------
// The scalar parsers.

TEST(ParseDuration, Valid) {
  EXPECT_EQ(parse_duration("0").value(), 0ms);
  EXPECT_EQ(parse_duration("0s").value(), 0ms);
  EXPECT_EQ(parse_duration("250ms").value(), 250ms);
  EXPECT_EQ(parse_duration("15s").value(), 15s);
  EXPECT_EQ(parse_duration("2m").value(), 2min);
  EXPECT_EQ(parse_duration("1h").value(), 1h);
  EXPECT_EQ(parse_duration("1h").value().count(), 3'600'000);
}

TEST(ParseDuration, Invalid) {
  auto no_unit = parse_duration("15");
  ASSERT_FALSE(no_unit.ok());
  EXPECT_EQ(no_unit.error().message, "duration '15' has no unit (write e.g. 15s or 15ms)");

  auto bad_unit = parse_duration("5x");
  ASSERT_FALSE(bad_unit.ok());
  EXPECT_EQ(bad_unit.error().message, "duration '5x' has an unknown unit 'x' (use ms, s, m or h)");

  auto upper = parse_duration("5S");
  ASSERT_FALSE(upper.ok());
  EXPECT_EQ(upper.error().message, "duration '5S' has an unknown unit 'S' (use ms, s, m or h)");

  for (const char* text : {"", "s", "-1s", " 1s", "abc"}) {
    auto r = parse_duration(text);
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_EQ(r.error().message,
              std::string("'") + text + "' is not a duration (expected e.g. 250ms, 15s, 2m, 1h)");
  }
  for (const char* text : {"1.5s", "1s ", "10 s"}) {
    EXPECT_FALSE(parse_duration(text).ok()) << text;
  }
  auto huge = parse_duration("99999999999999h");
  ASSERT_FALSE(huge.ok());
  EXPECT_EQ(huge.error().message, "duration '99999999999999h' is too large");
  auto overflow = parse_duration("999999999999999999999999s");
  EXPECT_FALSE(overflow.ok());
}

TEST(ParseSize, Valid) {
  EXPECT_EQ(parse_size("0").value(), 0u);
  EXPECT_EQ(parse_size("512").value(), 512u);
  EXPECT_EQ(parse_size("512B").value(), 512u);
  EXPECT_EQ(parse_size("64KiB").value(), 65536u);
  EXPECT_EQ(parse_size("10MiB").value(), 10u * 1024 * 1024);
  EXPECT_EQ(parse_size("1GiB").value(), 1024ull * 1024 * 1024);
}

TEST(ParseSize, Invalid) {
  auto kb = parse_size("64KB");
  ASSERT_FALSE(kb.ok());
  EXPECT_EQ(kb.error().message, "size '64KB' has an unknown unit (use B, KiB, MiB or GiB)");
  auto empty = parse_size("");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().message, "'' is not a size (expected e.g. 512, 64KiB, 10MiB, 1GiB)");
  EXPECT_FALSE(parse_size("KiB").ok());
  EXPECT_FALSE(parse_size("-1").ok());
  EXPECT_FALSE(parse_size("1.5MiB").ok());
  EXPECT_FALSE(parse_size("64kib").ok());
  auto huge = parse_size("2000000GiB");
  ASSERT_FALSE(huge.ok());
  EXPECT_EQ(huge.error().message, "size '2000000GiB' is too large");
}

TEST(ParseAddress, Valid) {
  auto v4 = parse_address("127.0.0.1:8080");
  ASSERT_TRUE(v4.ok()) << v4.error().message;
  EXPECT_EQ(v4.value().ip, "127.0.0.1");
  EXPECT_EQ(v4.value().port, 8080);
  EXPECT_EQ(v4.value().to_string(), "127.0.0.1:8080");

  auto v6 = parse_address("[::1]:80");
  ASSERT_TRUE(v6.ok()) << v6.error().message;
  EXPECT_EQ(v6.value().ip, "::1");
  EXPECT_EQ(v6.value().port, 80);
  EXPECT_EQ(v6.value().to_string(), "[::1]:80");

  auto any = parse_address("0.0.0.0:0");
  ASSERT_TRUE(any.ok());
  EXPECT_EQ(any.value().port, 0);

  auto max = parse_address("[2001:DB8::1]:65535");
  ASSERT_TRUE(max.ok());
  EXPECT_EQ(max.value().ip, "2001:db8::1");  // normalised
  EXPECT_EQ(max.value().port, 65535);
}

TEST(ParseAddress, Invalid) {
  struct Case {
    const char* text;
    const char* message;
  };
  const Case cases[] = {
      {"127.0.0.1", "'127.0.0.1' is not an address (expected IP:port, e.g. 127.0.0.1:8080)"},
      {"127.0.0.1:", "'127.0.0.1:' has an invalid port (expected 0-65535)"},
      {"127.0.0.1:65536", "'127.0.0.1:65536' has an invalid port (expected 0-65535)"},
      {"127.0.0.1:-1", "'127.0.0.1:-1' has an invalid port (expected 0-65535)"},
      {"127.0.0.1:80x", "'127.0.0.1:80x' has an invalid port (expected 0-65535)"},
      {"1.2.3:80",
       "'1.2.3' is not an IP address (write a literal IPv4 or [IPv6] address)"},
      {"example.com:80",
       "'example.com' is not an IP address (write a literal IPv4 or [IPv6] address)"},
      {":80",
       "'' is not an IP address (write a literal IPv4 or [IPv6] address)"},
      {"[::1]", "'[::1]' is not an address (expected [IPv6]:port)"},
      {"[::1]80", "'[::1]80' is not an address (expected [IPv6]:port)"},
      {"[::1", "'[::1' is not an address (expected [IPv6]:port)"},
      {"[::1]:", "'[::1]:' has an invalid port (expected 0-65535)"},
      {"[::1]:70000", "'[::1]:70000' has an invalid port (expected 0-65535)"},
      // Without brackets an IPv6 address and a port cannot be told apart: ::1:80 is itself a
      // valid IPv6 address.
      {"::1:80", "'::1:80' is not an address (write an IPv6 address in brackets, e.g. [::1]:80)"},
      {"::1", "'::1' is not an address (write an IPv6 address in brackets, e.g. [::1]:80)"},
      {"", "'' is not an address (expected IP:port, e.g. 127.0.0.1:8080)"},
  };
  for (const auto& c : cases) {
    auto r = parse_address(c.text);
    ASSERT_FALSE(r.ok()) << c.text << " parsed as " << r.value().to_string();
    EXPECT_EQ(r.error().message, c.message) << c.text;
  }
}

}  // namespace
}  // namespace sluice::config
