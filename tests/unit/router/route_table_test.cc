#include "sluice/router/route_table.h"

#include <gtest/gtest.h>

#include <cctype>
#include <chrono>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "sluice/config/loader.h"
#include "sluice/net/stream.h"

namespace sluice::router {
namespace {

using namespace std::chrono_literals;

config::Config load_ok(const std::string& yaml) {
  auto r = config::load_string(yaml, "test.yaml");
  EXPECT_TRUE(r.ok()) << r.error_text();
  return r.config;
}

// Holds the config, the table and the header views of the request being routed.
struct Fixture {
  explicit Fixture(const std::string& yaml) : config(load_ok(yaml)) {
    if (!config.listeners.empty()) {
      table = std::make_unique<RouteTable>(config.listeners[0], config.clusters);
    }
  }
  config::Config config;
  std::unique_ptr<RouteTable> table;
};

struct Request {
  std::string authority = "app.example.com";
  std::string path = "/";
  std::string query;
  std::vector<http::HeaderView> headers;
  const net::TlsInfo* tls = nullptr;
  http::RequestView view() const {
    http::RequestView v;
    v.tls = tls;
    v.method = "GET";
    v.authority = authority;
    v.path = path;
    v.query = query;
    v.headers = headers;
    return v;
  }
};

// --- the example configuration --------------------------------------------------------------

const char* const kExample = R"(admin:
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

// The name of the route `req` goes to, or "<none>".
std::string route_for(const RouteTable& table, const Request& req) {
  const VirtualHost* vh = table.find_virtual_host(req.authority);
  if (!vh) return "<no vhost>";
  const Route* r = vh->match(req.view());
  return r ? r->name() : "<none>";
}

TEST(RouteTableExample, CanaryHeaderSelectsFirstRoute) {
  Fixture f(kExample);
  ASSERT_TRUE(f.table);
  Request req;
  req.path = "/api/x";
  req.headers = {{"Host", "app.example.com"}, {"x-canary", "1"}};
  EXPECT_EQ(route_for(*f.table, req), "api");
  req.headers = {{"Host", "app.example.com"}, {"X-Canary", "1"}};
  EXPECT_EQ(route_for(*f.table, req), "api");
}

TEST(RouteTableExample, WithoutCanaryHeaderFallsThroughToApiDefault) {
  Fixture f(kExample);
  ASSERT_TRUE(f.table);
  Request req;
  req.path = "/api/x";
  req.headers = {{"Host", "app.example.com"}};
  EXPECT_EQ(route_for(*f.table, req), "api_default");
  req.headers = {{"Host", "app.example.com"}, {"x-canary", "0"}};
  EXPECT_EQ(route_for(*f.table, req), "api_default");
}

TEST(RouteTableExample, OtherPaths) {
  Fixture f(kExample);
  ASSERT_TRUE(f.table);
  auto to = [&](const std::string& path, const std::string& query = "") {
    Request req;
    req.path = path;
    req.query = query;
    return route_for(*f.table, req);
  };
  EXPECT_EQ(to("/assets/app.css"), "assets");
  EXPECT_EQ(to("/assets/lib/app.js"), "assets");
  EXPECT_EQ(to("/assets/app.png"), "catch_all");
  EXPECT_EQ(to("/assets/app.cssx"), "catch_all");
  EXPECT_EQ(to("/healthz"), "exact_health");
  EXPECT_EQ(to("/healthz", "verbose=1"), "exact_health");  // the query is not in the path
  EXPECT_EQ(to("/healthz/x"), "catch_all");
  EXPECT_EQ(to("/healthz/"), "catch_all");
  EXPECT_EQ(to("/api"), "catch_all");  // "/api/" is the prefix, not "/api"
  EXPECT_EQ(to("/"), "catch_all");
}

TEST(RouteTableExample, AllDomainsReachTheSameVirtualHost) {
  Fixture f(kExample);
  ASSERT_TRUE(f.table);
  for (const char* host :
       {"app.example.com", "x.app.example.com", "APP.example.com:10000", "other.org", ""}) {
    const VirtualHost* vh = f.table->find_virtual_host(host);
    ASSERT_NE(vh, nullptr) << host;
    EXPECT_EQ(vh->name(), "app") << host;
  }
}

TEST(RouteTableExample, RouteActions) {
  Fixture f(kExample);
  ASSERT_TRUE(f.table);
  const VirtualHost* vh = f.table->find_virtual_host("app.example.com");
  ASSERT_NE(vh, nullptr);

  Request canary;
  canary.path = "/api/x";
  canary.headers = {{"x-canary", "1"}};
  const Route* api = vh->match(canary.view());
  ASSERT_NE(api, nullptr);
  EXPECT_EQ(api->action().cluster_name, "jetty_canary");
  EXPECT_EQ(api->action().cluster_index, 1u);
  EXPECT_EQ(api->action().timeout, 15s);
  EXPECT_FALSE(api->action().prefix_rewrite.has_value());
  EXPECT_FALSE(api->action().host_rewrite.has_value());
  EXPECT_EQ(api->path_matcher().kind(), config::Route::PathKind::kPrefix);
  EXPECT_EQ(api->path_matcher().value(), "/api/");

  Request plain;
  plain.path = "/api/x";
  const Route* def = vh->match(plain.view());
  ASSERT_NE(def, nullptr);
  EXPECT_EQ(def->name(), "api_default");
  EXPECT_EQ(def->action().cluster_name, "jetty");
  EXPECT_EQ(def->action().cluster_index, 0u);
  EXPECT_EQ(def->action().timeout, 15s);
  ASSERT_TRUE(def->action().prefix_rewrite.has_value());
  EXPECT_EQ(*def->action().prefix_rewrite, "/v1/");
}

TEST(RouteTableExample, PrefixRewrite) {
  Fixture f(kExample);
  ASSERT_TRUE(f.table);
  const VirtualHost* vh = f.table->find_virtual_host("app.example.com");
  ASSERT_NE(vh, nullptr);
  Request req;
  req.path = "/api/foo";
  req.query = "a=1";
  const Route* r = vh->match(req.view());
  ASSERT_NE(r, nullptr);
  ASSERT_EQ(r->name(), "api_default");
  EXPECT_EQ(r->rewritten_path("/api/foo"), "/v1/foo");
  EXPECT_EQ(r->rewritten_path("/api/"), "/v1/");
  EXPECT_EQ(r->rewritten_path("/api/a/b/c"), "/v1/a/b/c");
  // rewritten_path takes the path only; the caller appends the query.
  EXPECT_EQ(r->rewritten_path(req.view().path), "/v1/foo");

  // Routes without prefix_rewrite leave the path alone.
  Request asset;
  asset.path = "/assets/app.css";
  const Route* a = vh->match(asset.view());
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->rewritten_path("/assets/app.css"), "/assets/app.css");
}

TEST(RouteTable, PrefixRewriteOfExactPath) {
  Fixture f(R"(listeners:
  - name: l
    address: 127.0.0.1:8000
    virtual_hosts:
      - name: v
        domains: ["*"]
        routes:
          - { name: health, match: { path: /healthz }, cluster: c, prefix_rewrite: /status }
          - { name: root, match: { prefix: / }, cluster: c, prefix_rewrite: /app/ }
clusters:
  - name: c
    endpoints: [ 127.0.0.1:9000 ]
)");
  ASSERT_TRUE(f.table);
  const VirtualHost* vh = f.table->find_virtual_host("x");
  ASSERT_NE(vh, nullptr);
  Request req;
  req.path = "/healthz";
  const Route* health = vh->match(req.view());
  ASSERT_NE(health, nullptr);
  EXPECT_EQ(health->name(), "health");
  EXPECT_EQ(health->rewritten_path("/healthz"), "/status");
  req.path = "/x/y";
  const Route* root = vh->match(req.view());
  ASSERT_NE(root, nullptr);
  EXPECT_EQ(root->name(), "root");
  EXPECT_EQ(root->rewritten_path("/x/y"), "/app/x/y");
}

// --- route order and conditions -------------------------------------------------------------

TEST(RouteTable, FirstMatchWinsEvenWhenALaterRouteIsMoreSpecific) {
  Fixture f(R"(listeners:
  - name: l
    address: 127.0.0.1:8000
    virtual_hosts:
      - name: v
        domains: ["*"]
        routes:
          - { name: broad, match: { prefix: / }, cluster: c }
          - { name: specific, match: { path: /exact }, cluster: c }
clusters:
  - name: c
    endpoints: [ 127.0.0.1:9000 ]
)");
  ASSERT_TRUE(f.table);
  Request req;
  req.path = "/exact";
  EXPECT_EQ(route_for(*f.table, req), "broad");
}

TEST(RouteTable, NoRouteMatches) {
  Fixture f(R"(listeners:
  - name: l
    address: 127.0.0.1:8000
    virtual_hosts:
      - name: v
        domains: ["*"]
        routes:
          - { name: api, match: { prefix: /api/ }, cluster: c }
clusters:
  - name: c
    endpoints: [ 127.0.0.1:9000 ]
)");
  ASSERT_TRUE(f.table);
  Request req;
  req.path = "/other";
  EXPECT_EQ(route_for(*f.table, req), "<none>");
}

TEST(RouteTable, AllConditionsOfARouteMustHold) {
  Fixture f(R"(listeners:
  - name: l
    address: 127.0.0.1:8000
    virtual_hosts:
      - name: v
        domains: ["*"]
        routes:
          - name: all
            match:
              prefix: /a
              headers: [ { name: x-a, exact: "1" }, { name: x-debug, present: false } ]
              query: [ { name: v, exact: "2" }, { name: trace }, { name: off, present: false } ]
            cluster: c
          - { name: rest, match: { prefix: / }, cluster: c }
clusters:
  - name: c
    endpoints: [ 127.0.0.1:9000 ]
)");
  ASSERT_TRUE(f.table);
  Request req;
  req.path = "/a";
  req.query = "v=2&trace";
  req.headers = {{"X-A", "1"}};
  EXPECT_EQ(route_for(*f.table, req), "all");

  Request wrong_path = req;
  wrong_path.path = "/b";
  EXPECT_EQ(route_for(*f.table, wrong_path), "rest");

  Request wrong_header = req;
  wrong_header.headers = {{"X-A", "2"}};
  EXPECT_EQ(route_for(*f.table, wrong_header), "rest");

  Request forbidden_header = req;
  forbidden_header.headers = {{"X-A", "1"}, {"X-Debug", "1"}};
  EXPECT_EQ(route_for(*f.table, forbidden_header), "rest");

  Request wrong_query = req;
  wrong_query.query = "v=3&trace";
  EXPECT_EQ(route_for(*f.table, wrong_query), "rest");

  Request missing_query = req;
  missing_query.query = "v=2";
  EXPECT_EQ(route_for(*f.table, missing_query), "rest");

  Request forbidden_query = req;
  forbidden_query.query = "v=2&trace&off=1";
  EXPECT_EQ(route_for(*f.table, forbidden_query), "rest");
}

// `client_cert` conditions are checked like header conditions, after the path: through the
// route index too (more than kLinearScanMaxRoutes routes), which narrows by path only. The
// conditions are set on the loaded config: the loader would want certificate files for a
// listener with tls.client_certificate, and the table does not look at the listener's TLS.
TEST(RouteTable, ClientCertConditionsWithAndWithoutTheIndex) {
  for (int fillers : {0, 12}) {
    std::string yaml = R"(listeners:
  - name: l
    address: 127.0.0.1:8000
    virtual_hosts:
      - name: v
        domains: ["*"]
        routes:
          - { name: admin, match: { prefix: /admin/ }, cluster: c }
          - { name: admin_denied, match: { prefix: /admin/ }, cluster: c }
          - { name: anonymous, match: { prefix: / }, cluster: c }
)";
    for (int i = 0; i < fillers; ++i) {
      yaml += "          - { name: f" + std::to_string(i) + ", match: { prefix: /f" +
              std::to_string(i) + "/ }, cluster: c }\n";
    }
    yaml += "          - { name: rest, match: { prefix: / }, cluster: c }\n"
            "clusters:\n  - name: c\n    endpoints: [ 127.0.0.1:9000 ]\n";
    config::Config cfg = load_ok(yaml);
    ASSERT_EQ(cfg.listeners.size(), 1u);
    auto& routes = cfg.listeners[0].virtual_hosts[0].routes;
    config::ClientCertMatch spiffe;
    spiffe.uri_san = config::StringMatch{config::StringMatch::Kind::kPrefix, "spiffe://corp/"};
    routes[0].client_cert = spiffe;
    config::ClientCertMatch with_cert;
    with_cert.present = true;
    routes[1].client_cert = with_cert;
    config::ClientCertMatch without_cert;
    without_cert.present = false;
    routes[2].client_cert = without_cert;
    RouteTable table(cfg.listeners[0], cfg.clusters);

    net::TlsInfo alice;
    alice.peer_certificate = true;
    alice.peer_subject = "CN=alice,O=corp";
    alice.peer_uri_sans = {"spiffe://corp/ns/prod/sa/alice"};
    net::TlsInfo bob;
    bob.peer_certificate = true;
    bob.peer_subject = "CN=bob,O=corp";
    bob.peer_dns_sans = {"bob.clients.test"};
    net::TlsInfo nobody;  // TLS, no client certificate

    Request req;
    req.path = "/admin/users";
    req.tls = &alice;
    EXPECT_EQ(route_for(table, req), "admin") << fillers;
    req.tls = &bob;
    EXPECT_EQ(route_for(table, req), "admin_denied") << fillers;
    req.tls = &nobody;
    EXPECT_EQ(route_for(table, req), "anonymous") << fillers;
    req.tls = nullptr;  // plaintext
    EXPECT_EQ(route_for(table, req), "anonymous") << fillers;
    req.path = "/other";
    req.tls = &alice;
    EXPECT_EQ(route_for(table, req), "rest") << fillers;
    req.tls = &nobody;
    EXPECT_EQ(route_for(table, req), "anonymous") << fillers;
  }
}

// --- virtual host selection -----------------------------------------------------------------

// Declared in an order that differs from the precedence, so that the order cannot be what wins.
const char* const kHosts = R"(listeners:
  - name: l
    address: 127.0.0.1:8000
    virtual_hosts:
      - { name: default, domains: ["*"], routes: [ { match: { prefix: / }, cluster: c } ] }
      - { name: prefix_short, domains: ["api.*"], routes: [ { match: { prefix: / }, cluster: c } ] }
      - { name: prefix_long, domains: ["api.v1.*"], routes: [ { match: { prefix: / }, cluster: c } ] }
      - { name: suffix_short, domains: ["*.example.com"], routes: [ { match: { prefix: / }, cluster: c } ] }
      - { name: suffix_long, domains: ["*.api.example.com"], routes: [ { match: { prefix: / }, cluster: c } ] }
      - { name: exact, domains: ["api.example.com", "Mixed.Case.ORG"], routes: [ { match: { prefix: / }, cluster: c } ] }
clusters:
  - name: c
    endpoints: [ 127.0.0.1:9000 ]
)";

std::string vhost_for(const RouteTable& table, std::string_view authority) {
  const VirtualHost* vh = table.find_virtual_host(authority);
  return vh ? vh->name() : "<none>";
}

TEST(VirtualHostLookup, ExactBeatsWildcards) {
  Fixture f(kHosts);
  ASSERT_TRUE(f.table);
  // api.example.com also matches "*.example.com", "api.*" and "*".
  EXPECT_EQ(vhost_for(*f.table, "api.example.com"), "exact");
}

TEST(VirtualHostLookup, LongerSuffixBeatsShorter) {
  Fixture f(kHosts);
  ASSERT_TRUE(f.table);
  EXPECT_EQ(vhost_for(*f.table, "x.api.example.com"), "suffix_long");
  EXPECT_EQ(vhost_for(*f.table, "a.b.api.example.com"), "suffix_long");
  EXPECT_EQ(vhost_for(*f.table, "x.example.com"), "suffix_short");
  EXPECT_EQ(vhost_for(*f.table, "xapi.example.com"), "suffix_short");
}

TEST(VirtualHostLookup, SuffixBeatsPrefix) {
  Fixture f(kHosts);
  ASSERT_TRUE(f.table);
  // Matches both "api.*" and "*.example.com".
  EXPECT_EQ(vhost_for(*f.table, "api.foo.example.com"), "suffix_short");
}

TEST(VirtualHostLookup, PrefixBeatsDefaultAndLongerPrefixWins) {
  Fixture f(kHosts);
  ASSERT_TRUE(f.table);
  EXPECT_EQ(vhost_for(*f.table, "api.example.org"), "prefix_short");
  EXPECT_EQ(vhost_for(*f.table, "api.v1.example.org"), "prefix_long");
  EXPECT_EQ(vhost_for(*f.table, "api."), "default");  // the wildcard must match something
  EXPECT_EQ(vhost_for(*f.table, "apix.org"), "default");
}

TEST(VirtualHostLookup, DefaultCatchesTheRest) {
  Fixture f(kHosts);
  ASSERT_TRUE(f.table);
  EXPECT_EQ(vhost_for(*f.table, "other.org"), "default");
  EXPECT_EQ(vhost_for(*f.table, ""), "default");
  // "*.example.com" does not match the bare domain.
  EXPECT_EQ(vhost_for(*f.table, "example.com"), "default");
  EXPECT_EQ(vhost_for(*f.table, ".example.com"), "default");
}

TEST(VirtualHostLookup, PortIsIgnoredAndCaseDoesNotMatter) {
  Fixture f(kHosts);
  ASSERT_TRUE(f.table);
  EXPECT_EQ(vhost_for(*f.table, "api.example.com:8080"), "exact");
  EXPECT_EQ(vhost_for(*f.table, "API.Example.COM"), "exact");
  EXPECT_EQ(vhost_for(*f.table, "API.EXAMPLE.COM:443"), "exact");
  EXPECT_EQ(vhost_for(*f.table, "mixed.case.org"), "exact");  // config domains lower-cased
  EXPECT_EQ(vhost_for(*f.table, "X.API.EXAMPLE.COM:80"), "suffix_long");
  EXPECT_EQ(vhost_for(*f.table, "API.V1.EXAMPLE.ORG:1"), "prefix_long");
}

TEST(VirtualHostLookup, LongHostNames) {
  // Longer than the 256-byte stack buffer used for lower-casing.
  std::string label(300, 'a');
  Fixture f(std::string(R"(listeners:
  - name: l
    address: 127.0.0.1:8000
    virtual_hosts:
      - { name: long, domains: [")") +
            label + R"(.com"], routes: [ { match: { prefix: / }, cluster: c } ] }
      - { name: suffix, domains: ["*.example.com"], routes: [ { match: { prefix: / }, cluster: c } ] }
clusters:
  - name: c
    endpoints: [ 127.0.0.1:9000 ]
)");
  ASSERT_TRUE(f.table);
  std::string upper(300, 'A');
  EXPECT_EQ(vhost_for(*f.table, upper + ".COM:80"), "long");
  EXPECT_EQ(vhost_for(*f.table, upper + ".EXAMPLE.COM"), "suffix");
  EXPECT_EQ(vhost_for(*f.table, upper + ".org"), "<none>");
}

TEST(VirtualHostLookup, WithoutDefaultUnknownHostsFindNothing) {
  Fixture f(R"(listeners:
  - name: l
    address: 127.0.0.1:8000
    virtual_hosts:
      - { name: a, domains: ["a.com"], routes: [ { match: { prefix: / }, cluster: c } ] }
      - { name: wild, domains: ["*.a.com"], routes: [ { match: { prefix: / }, cluster: c } ] }
clusters:
  - name: c
    endpoints: [ 127.0.0.1:9000 ]
)");
  ASSERT_TRUE(f.table);
  EXPECT_EQ(f.table->find_virtual_host("b.com"), nullptr);
  EXPECT_EQ(f.table->find_virtual_host(""), nullptr);
  EXPECT_EQ(vhost_for(*f.table, "a.com"), "a");
  EXPECT_EQ(vhost_for(*f.table, "x.a.com"), "wild");
  EXPECT_EQ(vhost_for(*f.table, "xa.com"), "<none>");
}

TEST(VirtualHostLookup, WildcardSuffixDoesNotMatchBareDomain) {
  Fixture f(R"(listeners:
  - name: l
    address: 127.0.0.1:8000
    virtual_hosts:
      - { name: wild, domains: ["*.a.com"], routes: [ { match: { prefix: / }, cluster: c } ] }
clusters:
  - name: c
    endpoints: [ 127.0.0.1:9000 ]
)");
  ASSERT_TRUE(f.table);
  EXPECT_EQ(f.table->find_virtual_host("a.com"), nullptr);
  EXPECT_EQ(f.table->find_virtual_host("a.com:80"), nullptr);
  EXPECT_EQ(vhost_for(*f.table, "b.a.com"), "wild");
}

TEST(VirtualHostLookup, Ipv6Authority) {
  Fixture f(R"(listeners:
  - name: l
    address: 127.0.0.1:8000
    virtual_hosts:
      - { name: v6, domains: ["[::1]"], routes: [ { match: { prefix: / }, cluster: c } ] }
clusters:
  - name: c
    endpoints: [ 127.0.0.1:9000 ]
)");
  ASSERT_TRUE(f.table);
  EXPECT_EQ(vhost_for(*f.table, "[::1]:8000"), "v6");
  EXPECT_EQ(vhost_for(*f.table, "[::1]"), "v6");
  EXPECT_EQ(vhost_for(*f.table, "[::2]:8000"), "<none>");
}

// The precedence as a scan of every domain (what find_virtual_host did before its wildcards were
// hashed): exact, the longest "*suffix", the longest "prefix*", then "*"; the first declared wins
// a tie, and a wildcard stands for at least one byte.
std::string vhost_by_scan(const config::Listener& spec, std::string host) {
  for (char& c : host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string best_suffix, best_prefix, fallback = "<none>";
  size_t suffix_len = 0, prefix_len = 0;
  for (const auto& vh : spec.virtual_hosts) {
    for (const auto& d : vh.domains) {
      if (d == host) return vh.name;
      if (d == "*") {
        fallback = vh.name;
      } else if (d.front() == '*') {
        std::string_view suffix = std::string_view(d).substr(1);
        if (host.size() > suffix.size() && host.ends_with(suffix) && suffix.size() > suffix_len) {
          suffix_len = suffix.size();
          best_suffix = vh.name;
        }
      } else if (d.back() == '*') {
        std::string_view prefix = std::string_view(d).substr(0, d.size() - 1);
        if (host.size() > prefix.size() && host.starts_with(prefix) && prefix.size() > prefix_len) {
          prefix_len = prefix.size();
          best_prefix = vh.name;
        }
      }
    }
  }
  if (suffix_len > 0) return best_suffix;
  if (prefix_len > 0) return best_prefix;
  return fallback;
}

TEST(VirtualHostLookup, AgreesWithAScanOnRandomDomainSets) {
  static const char* const kLabels[] = {"a", "b", "api", "x-y", "com", "v1", "y"};
  std::mt19937 rng(7);
  auto pick = [&](int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); };
  auto name = [&](int labels) {
    std::string d = kLabels[pick(7)];
    for (int i = 1; i < labels; ++i) d += std::string(pick(5) == 0 ? "-" : ".") + kLabels[pick(7)];
    return d;
  };
  for (int round = 0; round < 200; ++round) {
    config::Listener spec;
    std::set<std::string> used;
    const int hosts = 1 + pick(30);
    for (int i = 0; i < hosts; ++i) {
      config::VirtualHost vh;
      vh.name = "v" + std::to_string(i);
      for (int j = 0; j < 3; ++j) {
        std::string d = name(1 + pick(3));
        switch (pick(5)) {
          case 0: d = "*." + d; break;
          case 1: d = "*-" + d; break;
          case 2: d += ".*"; break;
          case 3: if (pick(10) == 0) d = "*"; break;
          default: break;
        }
        if (used.insert(d).second) vh.domains.push_back(d);
      }
      spec.virtual_hosts.push_back(vh);
    }
    RouteTable table(spec, {});
    for (int k = 0; k < 200; ++k) {
      std::string host = name(1 + pick(5));
      if (pick(4) == 0) host[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(host[0])));
      if (pick(4) == 0) host += ":8080";
      ASSERT_EQ(vhost_for(table, host), vhost_by_scan(spec, std::string(host_without_port(host))))
          << "round " << round << " host " << host;
    }
  }
}

TEST(HostWithoutPort, Forms) {
  EXPECT_EQ(host_without_port("a.com"), "a.com");
  EXPECT_EQ(host_without_port("a.com:8080"), "a.com");
  EXPECT_EQ(host_without_port("a.com:"), "a.com");
  EXPECT_EQ(host_without_port("[::1]:80"), "[::1]");
  EXPECT_EQ(host_without_port("[::1]"), "[::1]");
  EXPECT_EQ(host_without_port(""), "");
}

}  // namespace
}  // namespace sluice::router
