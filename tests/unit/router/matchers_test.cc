#include "sluice/router/matchers.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sluice::router {
namespace {

using config::HeaderMatch;
using config::QueryMatch;
using PathKind = config::Route::PathKind;

PathMatcher path_matcher(PathKind kind, std::string value) {
  config::Route r;
  r.path_kind = kind;
  r.path = std::move(value);
  return PathMatcher(r);
}

HeaderMatch header(std::string name, HeaderMatch::Kind kind, std::string value = "",
                   bool present = true) {
  HeaderMatch h;
  h.name = std::move(name);
  h.kind = kind;
  h.value = std::move(value);
  h.present = present;
  return h;
}

QueryMatch query(std::string name, QueryMatch::Kind kind, std::string value = "",
                 bool present = true) {
  QueryMatch q;
  q.name = std::move(name);
  q.kind = kind;
  q.value = std::move(value);
  q.present = present;
  return q;
}

// A request holding only headers (the header matcher looks at nothing else).
struct Headers {
  std::vector<http::HeaderView> list;
  http::RequestView view() const {
    http::RequestView v;
    v.method = "GET";
    v.path = "/";
    v.headers = list;
    return v;
  }
};

// --- path ------------------------------------------------------------------------------------

TEST(PathMatcher, ExactPath) {
  auto m = path_matcher(PathKind::kPath, "/healthz");
  EXPECT_EQ(m.kind(), PathKind::kPath);
  EXPECT_EQ(m.value(), "/healthz");
  EXPECT_TRUE(m.matches("/healthz"));
  EXPECT_FALSE(m.matches("/healthz/"));  // not a prefix match
  EXPECT_FALSE(m.matches("/healthz/x"));
  EXPECT_FALSE(m.matches("/healthzz"));
  EXPECT_FALSE(m.matches("/health"));
  EXPECT_FALSE(m.matches("/HEALTHZ"));      // paths are case-sensitive
  EXPECT_FALSE(m.matches("/healthz?x=1"));  // the query is never part of the path
  EXPECT_FALSE(m.matches(""));
}

TEST(PathMatcher, Prefix) {
  auto m = path_matcher(PathKind::kPrefix, "/api/");
  EXPECT_EQ(m.kind(), PathKind::kPrefix);
  EXPECT_TRUE(m.matches("/api/"));
  EXPECT_TRUE(m.matches("/api/x"));
  EXPECT_TRUE(m.matches("/api/x/y"));
  EXPECT_FALSE(m.matches("/api"));
  EXPECT_FALSE(m.matches("/apix"));
  EXPECT_FALSE(m.matches("/API/x"));
  EXPECT_FALSE(m.matches("/v1/api/"));
  EXPECT_FALSE(m.matches(""));

  auto root = path_matcher(PathKind::kPrefix, "/");
  EXPECT_TRUE(root.matches("/"));
  EXPECT_TRUE(root.matches("/anything"));
  EXPECT_FALSE(root.matches(""));
  EXPECT_FALSE(root.matches("*"));
}

TEST(PathMatcher, RegexIsAFullMatch) {
  auto m = path_matcher(PathKind::kRegex, "/assets/.+\\.(css|js)");
  EXPECT_EQ(m.kind(), PathKind::kRegex);
  EXPECT_TRUE(m.matches("/assets/app.css"));
  EXPECT_TRUE(m.matches("/assets/a/b.js"));
  EXPECT_FALSE(m.matches("/assets/app.cssx"));  // a partial match must not count
  EXPECT_FALSE(m.matches("/x/assets/app.css"));
  EXPECT_FALSE(m.matches("/assets/app.png"));
  EXPECT_FALSE(m.matches("/assets/.css"));

  auto partial = path_matcher(PathKind::kRegex, "/a");
  EXPECT_TRUE(partial.matches("/a"));
  EXPECT_FALSE(partial.matches("/ab"));
  EXPECT_FALSE(partial.matches("/b/a"));
}

TEST(PathMatcher, RegexWithAnchorsAndEmbeddedNul) {
  auto m = path_matcher(PathKind::kRegex, "^/assets/.+\\.(css|js)$");
  EXPECT_TRUE(m.matches("/assets/app.css"));
  EXPECT_FALSE(m.matches("/assets/app.png"));
  // The path is a view, not a C string: bytes after a NUL still count.
  using namespace std::string_view_literals;
  EXPECT_FALSE(m.matches("/assets/app.css\0.png"sv));
}

// --- headers ---------------------------------------------------------------------------------

TEST(HeaderMatcher, ExactValue) {
  HeaderMatcher m(header("x-canary", HeaderMatch::Kind::kExact, "1"));
  EXPECT_TRUE(m.matches(Headers{{{"x-canary", "1"}}}.view()));
  EXPECT_TRUE(m.matches(Headers{{{"X-Canary", "1"}}}.view()));  // names case-insensitive
  EXPECT_TRUE(m.matches(Headers{{{"X-CANARY", "1"}}}.view()));
  EXPECT_FALSE(m.matches(Headers{{{"x-canary", "2"}}}.view()));
  EXPECT_FALSE(m.matches(Headers{{{"x-canary", "10"}}}.view()));
  EXPECT_FALSE(m.matches(Headers{{{"x-canary", ""}}}.view()));
  EXPECT_FALSE(m.matches(Headers{{{"x-canar", "1"}}}.view()));
  EXPECT_FALSE(m.matches(Headers{{{"x-canaryy", "1"}}}.view()));
  EXPECT_FALSE(m.matches(Headers{}.view()));
}

TEST(HeaderMatcher, ExactValueIsCaseSensitive) {
  HeaderMatcher m(header("x-env", HeaderMatch::Kind::kExact, "Prod"));
  EXPECT_TRUE(m.matches(Headers{{{"x-env", "Prod"}}}.view()));
  EXPECT_FALSE(m.matches(Headers{{{"x-env", "prod"}}}.view()));
}

TEST(HeaderMatcher, ExactAnyOfSeveralInstances) {
  HeaderMatcher m(header("x-canary", HeaderMatch::Kind::kExact, "1"));
  Headers h{{{"Host", "a"}, {"x-canary", "0"}, {"Accept", "*/*"}, {"X-Canary", "1"}}};
  EXPECT_TRUE(m.matches(h.view()));
  Headers none{{{"x-canary", "0"}, {"x-canary", "2"}}};
  EXPECT_FALSE(m.matches(none.view()));
}

TEST(HeaderMatcher, Present) {
  HeaderMatcher m(header("x-debug", HeaderMatch::Kind::kPresent));
  EXPECT_TRUE(m.matches(Headers{{{"X-Debug", ""}}}.view()));  // an empty value is present
  EXPECT_TRUE(m.matches(Headers{{{"a", "b"}, {"x-debug", "yes"}}}.view()));
  EXPECT_FALSE(m.matches(Headers{{{"a", "b"}}}.view()));
  EXPECT_FALSE(m.matches(Headers{}.view()));
}

TEST(HeaderMatcher, PresentFalseMeansAbsent) {
  HeaderMatcher m(header("x-debug", HeaderMatch::Kind::kPresent, "", /*present=*/false));
  EXPECT_TRUE(m.matches(Headers{}.view()));
  EXPECT_TRUE(m.matches(Headers{{{"x-debugger", "1"}}}.view()));
  EXPECT_FALSE(m.matches(Headers{{{"x-debug", "1"}}}.view()));
  EXPECT_FALSE(m.matches(Headers{{{"a", "b"}, {"X-DEBUG", ""}}}.view()));
}

TEST(HeaderMatcher, RegexIsAFullMatchOnAnyInstance) {
  HeaderMatcher m(header("user-agent", HeaderMatch::Kind::kRegex, "curl/[0-9.]+"));
  EXPECT_TRUE(m.matches(Headers{{{"User-Agent", "curl/8.1.2"}}}.view()));
  EXPECT_FALSE(m.matches(Headers{{{"User-Agent", "curl/8.1.2 extra"}}}.view()));  // partial
  EXPECT_FALSE(m.matches(Headers{{{"User-Agent", "xcurl/8"}}}.view()));
  EXPECT_TRUE(m.matches(Headers{{{"user-agent", "wget"}, {"USER-AGENT", "curl/7"}}}.view()));
  EXPECT_FALSE(m.matches(Headers{{{"x-user-agent", "curl/7"}}}.view()));
  EXPECT_FALSE(m.matches(Headers{}.view()));
}

TEST(HeaderMatcher, UpperCaseNameInSpecStillMatches) {
  // The loader lower-cases names; a hand-built spec must still compare case-insensitively.
  HeaderMatcher m(header("X-Canary", HeaderMatch::Kind::kExact, "1"));
  EXPECT_TRUE(m.matches(Headers{{{"x-canary", "1"}}}.view()));
}

// --- query -----------------------------------------------------------------------------------

TEST(QueryMatcher, Exact) {
  QueryMatcher m(query("v", QueryMatch::Kind::kExact, "2"));
  EXPECT_TRUE(m.matches("v=2"));
  EXPECT_TRUE(m.matches("a=1&v=2"));
  EXPECT_TRUE(m.matches("v=1&v=2"));  // any instance
  EXPECT_TRUE(m.matches("a=1&v=2&b=3"));
  EXPECT_FALSE(m.matches("v=3"));
  EXPECT_FALSE(m.matches("v=22"));
  EXPECT_FALSE(m.matches("vv=2"));
  EXPECT_FALSE(m.matches("xv=2"));
  EXPECT_FALSE(m.matches("V=2"));  // names are case-sensitive
  EXPECT_FALSE(m.matches("v"));
  EXPECT_FALSE(m.matches(""));
  EXPECT_FALSE(m.matches("a=v=2"));
}

TEST(QueryMatcher, ExactComparesRawValues) {
  QueryMatcher m(query("q", QueryMatch::Kind::kExact, "a b"));
  EXPECT_FALSE(m.matches("q=a%20b"));  // not percent-decoded
  QueryMatcher raw(query("q", QueryMatch::Kind::kExact, "a%20b"));
  EXPECT_TRUE(raw.matches("q=a%20b"));
}

TEST(QueryMatcher, ExactEmptyValue) {
  QueryMatcher m(query("flag", QueryMatch::Kind::kExact, ""));
  EXPECT_TRUE(m.matches("flag="));
  EXPECT_TRUE(m.matches("flag"));
  EXPECT_FALSE(m.matches("flag=1"));
}

TEST(QueryMatcher, Present) {
  QueryMatcher m(query("debug", QueryMatch::Kind::kPresent));
  EXPECT_TRUE(m.matches("debug"));
  EXPECT_TRUE(m.matches("debug="));
  EXPECT_TRUE(m.matches("debug=0"));
  EXPECT_TRUE(m.matches("a=1&debug"));
  EXPECT_TRUE(m.matches("a=1&&debug=1&"));
  EXPECT_FALSE(m.matches("debugger=1"));
  EXPECT_FALSE(m.matches("a=debug"));
  EXPECT_FALSE(m.matches(""));
}

TEST(QueryMatcher, Absent) {
  QueryMatcher m(query("debug", QueryMatch::Kind::kPresent, "", /*present=*/false));
  EXPECT_TRUE(m.matches(""));
  EXPECT_TRUE(m.matches("a=1"));
  EXPECT_TRUE(m.matches("debugger=1"));
  EXPECT_TRUE(m.matches("a=debug"));
  EXPECT_FALSE(m.matches("debug"));
  EXPECT_FALSE(m.matches("a=1&debug=0"));
}

}  // namespace
}  // namespace sluice::router
