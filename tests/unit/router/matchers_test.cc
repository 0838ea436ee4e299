#include "sluice/router/matchers.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "sluice/config/limits.h"
#include "sluice/net/stream.h"

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

// A regex path is matched as its literal prefix and the rest of the pattern on the rest of the
// path: it must agree with RE2's full match of the whole pattern on every path, including
// quantifiers right after the prefix and assertions about the text before the rest.
TEST(PathMatcher, SplitRegexAgreesWithTheWholePattern) {
  const char* const patterns[] = {
      "/svc/1/[a-z]+/[0-9]+", "/ab+c",    "/ab*c",     "/ab?c",      "/ab{2}c",    "/ab+?",
      "^/x/.*",               "/x$",      "/a\\bb",    "/a\\Bb",     "/a\\b",      "/a[^/]+",
      "/a\\[^b",              "/a(?i)B",  "/api/v1",   "/a.b",       "/a\\.b",     "/x(/y)?",
      "/\xc3\xa9+",           "/a\\d+",   "/a^b",      "/a(^b|c)",   "/a(?m)^b",   "/a\\Ab",
      "/a[b^]c",              "/a(?:b)+", "/a|/b",     "(?i)/A",     "/a\\z",      "/a$b",
  };
  const char* const paths[] = {
      "/svc/1/item/42", "/svc/1/item/", "/svc/1/Item/4", "/abc", "/abbc", "/ac", "/abbbc", "/ab",
      "/abb", "/x/", "/x/y", "/x", "/ab", "/a b", "/a", "/a/", "/axy", "/a[b", "/a^b", "/aB",
      "/ab", "/api/v1", "/api/v12", "/a.b", "/aXb", "/x/y", "/\xc3\xa9\xc3\xa9", "/a123", "/ac",
      "/b", "/A", "/a", "/abc", "/a^c", "",
  };
  for (const char* pattern : patterns) {
    re2::RE2 whole(pattern, config::regex_options());
    ASSERT_TRUE(whole.ok()) << pattern;
    auto m = path_matcher(PathKind::kRegex, pattern);
    for (const char* path : paths) {
      EXPECT_EQ(m.matches(path), re2::RE2::FullMatch(path, whole)) << pattern << " on " << path;
    }
  }
}

TEST(PathMatcher, RegexLiteralPrefix) {
  EXPECT_EQ(regex_literal_prefix("/svc/1/[a-z]+"), "/svc/1/");
  EXPECT_EQ(regex_literal_prefix("^/api/v1"), "/api/v1");
  EXPECT_EQ(regex_literal_prefix("/ab*c"), "/a");    // b is optional
  EXPECT_EQ(regex_literal_prefix("/ab+c"), "/ab");   // b is required
  EXPECT_EQ(regex_literal_prefix("/a|/b"), "");      // alternatives: none
  EXPECT_EQ(regex_literal_prefix("(?i)/a"), "");     // flags: none
  EXPECT_EQ(regex_literal_prefix("/a\\.b"), "/a");   // stops at an escape
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

// --- client certificate ----------------------------------------------------------------------

config::StringMatch string_match(config::StringMatch::Kind kind, std::string value) {
  config::StringMatch m;
  m.kind = kind;
  m.value = std::move(value);
  return m;
}

using SKind = config::StringMatch::Kind;

TEST(StringMatcher, Kinds) {
  StringMatcher exact(string_match(SKind::kExact, "CN=alice,O=corp"));
  EXPECT_TRUE(exact.matches("CN=alice,O=corp"));
  EXPECT_FALSE(exact.matches("CN=alice,O=corp2"));
  EXPECT_FALSE(exact.matches("cn=alice,o=corp"));  // case-sensitive
  EXPECT_FALSE(exact.matches(""));

  StringMatcher prefix(string_match(SKind::kPrefix, "spiffe://corp/"));
  EXPECT_TRUE(prefix.matches("spiffe://corp/"));
  EXPECT_TRUE(prefix.matches("spiffe://corp/ns/prod/sa/alice"));
  EXPECT_FALSE(prefix.matches("spiffe://corp"));
  EXPECT_FALSE(prefix.matches("spiffe://corporate/x"));

  StringMatcher suffix(string_match(SKind::kSuffix, ".clients.test"));
  EXPECT_TRUE(suffix.matches("bob.clients.test"));
  EXPECT_FALSE(suffix.matches("bob.clients.test.evil"));
  EXPECT_FALSE(suffix.matches("clients.test"));

  // A regex must match the whole string.
  StringMatcher regex(string_match(SKind::kRegex, "CN=[a-z]+,O=corp"));
  EXPECT_TRUE(regex.matches("CN=alice,O=corp"));
  EXPECT_FALSE(regex.matches("CN=alice,O=corp,C=XX"));
  EXPECT_FALSE(regex.matches("X,CN=alice,O=corp"));
  EXPECT_FALSE(regex.matches("CN=Alice,O=corp"));
}

net::TlsInfo alice() {
  net::TlsInfo t;
  t.version = "TLSv1.3";
  t.peer_certificate = true;
  t.peer_subject = "CN=alice,O=corp";
  t.peer_uri_sans = {"urn:example:other", "spiffe://corp/ns/prod/sa/alice"};
  t.peer_dns_sans = {"alice.clients.test"};
  return t;
}

// A TLS connection whose client sent no certificate (mode: optional).
net::TlsInfo anonymous() {
  net::TlsInfo t;
  t.version = "TLSv1.3";
  return t;
}

TEST(ClientCertMatcher, PresentTrue) {
  config::ClientCertMatch spec;
  spec.present = true;
  ClientCertMatcher m(spec);
  const net::TlsInfo a = alice(), none = anonymous();
  EXPECT_TRUE(m.matches(&a));
  EXPECT_FALSE(m.matches(&none));
  EXPECT_FALSE(m.matches(nullptr));  // plaintext
}

TEST(ClientCertMatcher, PresentFalseHoldsOnlyWithoutAVerifiedCertificate) {
  config::ClientCertMatch spec;
  spec.present = false;
  ClientCertMatcher m(spec);
  const net::TlsInfo a = alice(), none = anonymous();
  EXPECT_FALSE(m.matches(&a));
  EXPECT_TRUE(m.matches(&none));
  EXPECT_TRUE(m.matches(nullptr));
}

TEST(ClientCertMatcher, SubjectAndSanConditionsNeverHoldWithoutACertificate) {
  const net::TlsInfo none = anonymous();
  for (auto make : {+[](config::ClientCertMatch& s) { s.subject = string_match(SKind::kRegex, ".*"); },
                    +[](config::ClientCertMatch& s) { s.uri_san = string_match(SKind::kRegex, ".*"); },
                    +[](config::ClientCertMatch& s) { s.dns_san = string_match(SKind::kRegex, ".*"); }}) {
    config::ClientCertMatch spec;
    make(spec);
    ClientCertMatcher m(spec);
    EXPECT_FALSE(m.matches(&none));
    EXPECT_FALSE(m.matches(nullptr));
    // The same condition with `present: true` changes nothing.
    spec.present = true;
    EXPECT_FALSE(ClientCertMatcher(spec).matches(&none));
  }
}

TEST(ClientCertMatcher, AnySanOfTheTypeMatches) {
  const net::TlsInfo a = alice();
  config::ClientCertMatch second;
  second.uri_san = string_match(SKind::kPrefix, "spiffe://corp/");  // the second URI SAN
  EXPECT_TRUE(ClientCertMatcher(second).matches(&a));

  config::ClientCertMatch none_matches;
  none_matches.uri_san = string_match(SKind::kPrefix, "spiffe://other/");
  EXPECT_FALSE(ClientCertMatcher(none_matches).matches(&a));

  // A DNS condition looks at the DNS SANs only, not at the URI SANs, nor the subject.
  config::ClientCertMatch dns;
  dns.dns_san = string_match(SKind::kPrefix, "spiffe://corp/");
  EXPECT_FALSE(ClientCertMatcher(dns).matches(&a));
  dns.dns_san = string_match(SKind::kSuffix, ".clients.test");
  EXPECT_TRUE(ClientCertMatcher(dns).matches(&a));

  // A certificate without SANs of the type matches no SAN condition.
  net::TlsInfo bob = a;
  bob.peer_uri_sans.clear();
  EXPECT_FALSE(ClientCertMatcher(second).matches(&bob));
}

TEST(ClientCertMatcher, EveryConditionGivenMustHold) {
  config::ClientCertMatch spec;
  spec.present = true;
  spec.subject = string_match(SKind::kRegex, "CN=[a-z]+,O=corp");
  spec.uri_san = string_match(SKind::kPrefix, "spiffe://corp/ns/prod/");
  spec.dns_san = string_match(SKind::kExact, "alice.clients.test");
  ClientCertMatcher m(spec);
  const net::TlsInfo a = alice();
  EXPECT_TRUE(m.matches(&a));

  net::TlsInfo other_subject = a;
  other_subject.peer_subject = "CN=alice,O=evil";
  EXPECT_FALSE(m.matches(&other_subject));

  net::TlsInfo other_uri = a;
  other_uri.peer_uri_sans = {"spiffe://corp/ns/dev/sa/alice"};
  EXPECT_FALSE(m.matches(&other_uri));

  net::TlsInfo other_dns = a;
  other_dns.peer_dns_sans = {"mallory.clients.test"};
  EXPECT_FALSE(m.matches(&other_dns));
}

}  // namespace
}  // namespace sluice::router
