#include "sluice/router/route_index.h"

#include <gtest/gtest.h>

#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "sluice/net/stream.h"
#include "sluice/router/route_table.h"

namespace sluice::router {
namespace {

using PathKind = config::Route::PathKind;

const std::vector<config::Cluster>& no_clusters() {
  static const std::vector<config::Cluster> clusters;
  return clusters;
}

config::Route route(std::string name, PathKind kind, std::string path) {
  config::Route r;
  r.name = std::move(name);
  r.path_kind = kind;
  r.path = std::move(path);
  return r;
}

config::HeaderMatch header_exact(std::string name, std::string value) {
  config::HeaderMatch h;
  h.name = std::move(name);
  h.kind = config::HeaderMatch::Kind::kExact;
  h.value = std::move(value);
  return h;
}

config::QueryMatch query_present(std::string name, bool present) {
  config::QueryMatch q;
  q.name = std::move(name);
  q.present = present;
  return q;
}

struct Request {
  std::string path;
  std::string query;
  std::vector<http::HeaderView> headers;
  const net::TlsInfo* tls = nullptr;
  http::RequestView view() const { return {"GET", "h", path, query, headers, tls}; }
};

std::string name_of(const Route* r) { return r == nullptr ? "(none)" : r->name(); }

// The index answers exactly what the linear scan answers; a VirtualHost with few routes has no
// index, so these build one over its routes directly.
void expect_agrees(const VirtualHost& vh, const RouteIndex& index, const Request& req) {
  EXPECT_EQ(name_of(index.match(vh.routes(), req.view())), name_of(vh.match_linear(req.view())))
      << "path '" << req.path << "' query '" << req.query << "' headers " << req.headers.size();
}

// A virtual host's routes and an index over them; match() also checks the index against the scan.
struct Indexed {
  explicit Indexed(const config::VirtualHost& spec) : vh(spec, no_clusters()), index(vh.routes()) {}
  std::string match(std::string path, std::string query = "",
                    std::vector<http::HeaderView> headers = {}) const {
    Request req{std::move(path), std::move(query), std::move(headers)};
    expect_agrees(vh, index, req);
    return name_of(index.match(vh.routes(), req.view()));
  }
  VirtualHost vh;
  RouteIndex index;
};

// --- targeted cases ---------------------------------------------------------------------------

TEST(RouteIndex, FirstMatchAcrossKinds) {
  config::VirtualHost spec;
  spec.routes = {route("p_api", PathKind::kPrefix, "/api/"),
                 route("e_health", PathKind::kPath, "/api/health"),
                 route("re_assets", PathKind::kRegex, "/assets/.+\\.css"),
                 route("p_assets", PathKind::kPrefix, "/assets/"),
                 route("e_assets", PathKind::kPath, "/assets/a.css"),
                 route("all", PathKind::kPrefix, "/")};
  const Indexed t(spec);
  EXPECT_EQ(t.match("/api/health"), "p_api");  // the earlier prefix beats the later exact path
  EXPECT_EQ(t.match("/assets/a.css"), "re_assets");
  EXPECT_EQ(t.match("/assets/a.js"), "p_assets");
  EXPECT_EQ(t.match("/assets"), "all");
  EXPECT_EQ(t.match("/"), "all");
  EXPECT_EQ(t.match(""), "(none)");
}

TEST(RouteIndex, LowestPathMatchFailingItsConditionsFallsToTheNext) {
  config::VirtualHost spec;
  spec.routes = {
      route("canary", PathKind::kPrefix, "/api/"), route("exact_canary", PathKind::kPath, "/api/x"),
      route("regex_q", PathKind::kRegex, "/api/.*"), route("api", PathKind::kPrefix, "/api/"),
      route("dup_api", PathKind::kPrefix, "/api/")};
  spec.routes[0].headers.push_back(header_exact("x-canary", "1"));
  spec.routes[1].headers.push_back(header_exact("x-canary", "2"));
  spec.routes[2].query.push_back(query_present("debug", true));
  const Indexed t(spec);
  EXPECT_EQ(t.match("/api/x", "", {{"X-Canary", "1"}}), "canary");
  EXPECT_EQ(t.match("/api/x", "", {{"X-Canary", "2"}}), "exact_canary");
  EXPECT_EQ(t.match("/api/y", "", {{"X-Canary", "2"}}), "api");
  EXPECT_EQ(t.match("/api/x", "debug", {}), "regex_q");
  EXPECT_EQ(t.match("/api/x", "", {}), "api");  // duplicate prefixes: the first of them
}

TEST(RouteIndex, RegexIsAnchoredAtBothEndsLikePathMatcher) {
  config::VirtualHost spec;
  spec.routes = {route("alt", PathKind::kRegex, "/a|/b"), route("mid", PathKind::kRegex, "[a-z]+"),
                 route("anchored", PathKind::kRegex, "^/c/[0-9]+$"),
                 route("nul", PathKind::kRegex, "/n\\x00.*")};
  const Indexed t(spec);
  EXPECT_TRUE(t.index.regex_set_compiled());
  EXPECT_EQ(t.match("/a"), "alt");
  EXPECT_EQ(t.match("/b"), "alt");
  EXPECT_EQ(t.match("/ab"), "(none)");
  EXPECT_EQ(t.match("x/a"), "(none)");
  EXPECT_EQ(t.match("abc"), "mid");
  EXPECT_EQ(t.match("/c/12"), "anchored");
  EXPECT_EQ(t.match("/c/12/"), "(none)");
  EXPECT_EQ(t.match(std::string("/n\0x", 4)), "nul");
  EXPECT_EQ(t.match("/n"), "(none)");
}

TEST(RouteIndex, RegexesAreFoundUnderTheirLiteralPrefixOrThroughTheSet) {
  config::VirtualHost spec;
  spec.routes = {route("ci", PathKind::kRegex, "(?i)/API/v[0-9]"),  // literal prefix "/"
                 route("alt", PathKind::kRegex, "/api/(x|y)"),      // "/api/"
                 route("lit", PathKind::kRegex, "/api/v[0-9]+/z"),  // "/api/v"
                 route("css1", PathKind::kRegex, ".*\\.css"),       // "" (root)
                 route("css2", PathKind::kRegex, ".*/a\\.css"),
                 route("css3", PathKind::kRegex, ".*/b\\.css"),
                 route("css4", PathKind::kRegex, "[a-z/]*c\\.css"),
                 route("pre", PathKind::kPrefix, "/api/")};
  for (size_t i = 3; i < 7; ++i) spec.routes[i].headers.push_back(header_exact("x-css", "1"));
  const Indexed t(spec);
  EXPECT_EQ(t.match("/api/V1"), "ci");  // (?i) must not narrow the literal prefix to "/API/"
  EXPECT_EQ(t.match("/API/v7"), "ci");
  EXPECT_EQ(t.match("/api/y"), "alt");
  EXPECT_EQ(t.match("/api/v12/z"), "lit");
  // Four root-filed regexes come before "pre": more than kRegexScanMax, so the set decides.
  EXPECT_EQ(t.match("/api/c.css", "", {{"x-css", "1"}}), "css1");
  EXPECT_EQ(t.match("/api/c.css"), "pre");
  EXPECT_EQ(t.match("/x/c.css"), "(none)");
}

TEST(RouteIndex, EmptyPrefixMatchesEverything) {
  config::VirtualHost spec;
  spec.routes = {route("e", PathKind::kPath, "/x"), route("any", PathKind::kPrefix, "")};
  const Indexed t(spec);
  EXPECT_EQ(t.match(""), "any");
  EXPECT_EQ(t.match("/"), "any");
  EXPECT_EQ(t.match("/x"), "e");
  EXPECT_EQ(t.match("/xy"), "any");
}

TEST(RouteIndex, VirtualHostUsesTheIndexAboveTheThreshold) {
  config::VirtualHost spec;
  for (size_t i = 0; i <= VirtualHost::kLinearScanMaxRoutes; ++i) {
    spec.routes.push_back(
        route("r" + std::to_string(i), PathKind::kPrefix, "/" + std::to_string(i)));
  }
  spec.routes.push_back(route("last", PathKind::kRegex, "/z.*"));
  VirtualHost vh(spec, no_clusters());
  Request req{"/zz", "", {}};
  EXPECT_EQ(name_of(vh.match(req.view())), "last");
  req.path = "/10";  // "/1" comes first
  EXPECT_EQ(name_of(vh.match(req.view())), "r1");
}

// Many routes branching on digits, as in the micro bench: nodes with kDenseChildren or more
// children use a table, single-child chains are compressed into edge labels; paths that stop
// inside a label, leave it at its last byte or take a byte no child has must all agree.
TEST(RouteIndex, DenseNodesAndCompressedEdgesAgreeWithTheScan) {
  config::VirtualHost spec;
  for (int i = 0; i < 300; ++i) {
    const std::string n = std::to_string(i);
    spec.routes.push_back(route("p" + n, PathKind::kPrefix, "/svc/" + n + "/long/label/"));
    spec.routes.push_back(route("re" + n, PathKind::kRegex, "/svc/" + n + "/[a-z]+/[0-9]+"));
  }
  spec.routes.push_back(route("p_svc", PathKind::kPrefix, "/sv"));
  Indexed ix(spec);
  EXPECT_EQ(ix.match("/svc/299/long/label/x"), "p299");
  EXPECT_EQ(ix.match("/svc/299/item/42"), "re299");
  EXPECT_EQ(ix.match("/svc/7/item/42"), "re7");
  std::mt19937 rng(9);
  const std::string tails[] = {"/long/label/", "/long/lab", "/long/label", "/item/1", "x", "/", ""};
  for (int k = 0; k < 2000; ++k) {
    std::string path = "/svc/" + std::to_string(rng() % 400) + tails[rng() % std::size(tails)];
    if (rng() % 8 == 0) path = path.substr(0, rng() % (path.size() + 1));
    if (!path.empty() && rng() % 8 == 0) path[rng() % path.size()] = static_cast<char>(rng() % 256);
    ix.match(path);
    if (HasFailure()) return;
  }
}

// --- randomized differential test -------------------------------------------------------------

// Paths and patterns from a small alphabet, so that routes overlap, share prefixes and repeat.
class RandomRoutes {
 public:
  explicit RandomRoutes(uint32_t seed) : rng_(seed) {}

  std::string path() {
    static const char* const kSegments[] = {"a", "b", "api", "v1", "x", "ab", "", "A"};
    std::string p;
    int segments = pick(5);
    for (int i = 0; i < segments; ++i) p += "/" + std::string(kSegments[pick(8)]);
    if (pick(4) == 0) p += "/";
    if (pick(20) == 0) p = p.substr(0, static_cast<size_t>(pick(static_cast<int>(p.size()) + 1)));
    return p;
  }

  std::string regex() {
    static const char* const kPatterns[] = {
        "/a/.*",    "/(a|b)/[a-z]+", "/api/v[0-9]+(/.*)?", ".*x.*",        "/a",   "(?i)/a/.*",
        "/ab?",     "[^/]*",         "/api/(v1|x)/.*",     "/.*/b",        "",     "/ab*",
        "/a{2}/.*", "^/api/.*$",     "/a\\.b.*",           "/\xC3\xA9*/a", "/ab+", "/a(?i)B.*"};
    if (pick(4) == 0) return "/" + std::string(pick(2) ? "a" : "api") + ".*";
    return kPatterns[pick(static_cast<int>(std::size(kPatterns)))];
  }

  config::Route route(size_t i) {
    config::Route r;
    r.name = "r" + std::to_string(i);
    switch (pick(3)) {
      case 0:
        r.path_kind = PathKind::kPath;
        r.path = path();
        break;
      case 1:
        r.path_kind = PathKind::kPrefix;
        r.path = path();
        break;
      default:
        r.path_kind = PathKind::kRegex;
        r.path = regex();
        break;
    }
    if (pick(3) == 0) r.headers.push_back(header_exact("x-h", pick(2) ? "1" : "2"));
    if (pick(4) == 0) r.query.push_back(query_present("q", pick(3) != 0));
    if (pick(4) == 0) {
      config::ClientCertMatch c;
      if (pick(2)) c.present = pick(2) != 0;
      if (c.present != false && (!c.present || pick(2))) {
        c.uri_san = config::StringMatch{config::StringMatch::Kind::kPrefix, "spiffe://corp/"};
      }
      r.client_cert = c;
    }
    return r;
  }

  Request request() {
    Request req{path(), "", {}};
    if (pick(5) == 0) req.path = "/api/v" + std::to_string(pick(30)) + "/x";
    if (pick(2)) req.headers.push_back({"X-H", pick(2) ? "1" : "2"});
    if (pick(2)) req.query = pick(2) ? "q=1" : "p=2&q";
    // Plaintext, TLS without a client certificate, a SPIFFE client, another client.
    static const net::TlsInfo kPeers[] = {
        {}, {.peer_certificate = true, .peer_uri_sans = {"spiffe://corp/a"}},
        {.peer_certificate = true, .peer_uri_sans = {"spiffe://other/b"}}};
    const int peer = pick(4);
    req.tls = peer == 0 ? nullptr : &kPeers[peer - 1];
    return req;
  }

  int pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }

 private:
  std::mt19937 rng_;
};

TEST(RouteIndex, AgreesWithTheLinearScanOnRandomRouteSets) {
  for (uint32_t seed = 1; seed <= 200; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    RandomRoutes gen(seed);
    config::VirtualHost spec;
    const int n = 1 + gen.pick(seed % 4 == 0 ? 300 : 40);
    for (int i = 0; i < n; ++i) spec.routes.push_back(gen.route(static_cast<size_t>(i)));
    VirtualHost vh(spec, no_clusters());
    RouteIndex index(vh.routes());
    for (int k = 0; k < 300; ++k) {
      Request req = gen.request();
      expect_agrees(vh, index, req);
      EXPECT_EQ(name_of(vh.match(req.view())), name_of(vh.match_linear(req.view())));
      if (HasFailure()) return;
    }
  }
}

}  // namespace
}  // namespace sluice::router
