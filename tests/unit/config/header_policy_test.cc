// `request_headers` / `response_headers` on listeners, virtual hosts and routes: header names,
// value templates, and every refusal with its line, column, key path and message.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "loader_test_util.h"
#include "sluice/config/header_template.h"

namespace sluice::config {
namespace {

using testing::expect_error;
using testing::expect_errors;
using testing::load_listener;
using testing::load_route;
using testing::load_virtual_host;
using testing::only_route;
using Pairs = std::vector<std::pair<std::string, std::string>>;
using Names = std::vector<std::string>;
using Kind = TemplatePart::Kind;

// --- names and templates -----------------------------------------------------------------------

TEST(HeaderTemplate, HeaderNamesAreRfc9110Tokens) {
  for (const char* ok : {"x-a", "X_B", "a.b", "!#$%&'*+-.^_`|~", "0"}) EXPECT_TRUE(is_header_name(ok)) << ok;
  for (const char* bad : {"", "x a", ":path", "x:y", "a\"b", "x(y)", "caf\xc3\xa9", "a/b", "a\tb"}) {
    EXPECT_FALSE(is_header_name(bad)) << bad;
  }
}

TEST(HeaderTemplate, FramingAndHopByHopHeaders) {
  for (const char* name : {"content-length", "transfer-encoding", "connection", "upgrade", "te", "trailer",
                           "keep-alive", "proxy-connection"}) {
    EXPECT_TRUE(is_framing_header(name)) << name;
  }
  for (const char* name : {"host", "content-type", "x-forwarded-for", "trailers", "tee"}) {
    EXPECT_FALSE(is_framing_header(name)) << name;
  }
}

TEST(HeaderTemplate, LiteralTextIsOnePart) {
  auto parts = parse_header_template("1.1 sluice");
  ASSERT_TRUE(parts.ok()) << parts.error().message;
  EXPECT_EQ(*parts, (std::vector<TemplatePart>{{Kind::kLiteral, "1.1 sluice"}}));
  auto empty = parse_header_template("");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST(HeaderTemplate, EveryVariable) {
  auto parts = parse_header_template(
      "for=%DOWNSTREAM_REMOTE_ADDRESS%;by=%UPSTREAM_HOST%;id=%REQUEST_ID%;ua=%REQ(User-Agent)%");
  ASSERT_TRUE(parts.ok()) << parts.error().message;
  EXPECT_EQ(*parts, (std::vector<TemplatePart>{{Kind::kLiteral, "for="},
                                               {Kind::kDownstreamRemoteAddress, ""},
                                               {Kind::kLiteral, ";by="},
                                               {Kind::kUpstreamHost, ""},
                                               {Kind::kLiteral, ";id="},
                                               {Kind::kRequestId, ""},
                                               {Kind::kLiteral, ";ua="},
                                               {Kind::kRequestHeader, "user-agent"}}));
}

TEST(HeaderTemplate, DoublePercentIsALiteralPercent) {
  auto parts = parse_header_template("100%% of %%REQ(x)%% and %REQUEST_ID%%%");
  ASSERT_TRUE(parts.ok()) << parts.error().message;
  EXPECT_EQ(*parts, (std::vector<TemplatePart>{{Kind::kLiteral, "100% of %REQ(x)% and "},
                                               {Kind::kRequestId, ""},
                                               {Kind::kLiteral, "%"}}));
}

// Every variable, as the unknown-variable message lists them.
#define SLUICE_KNOWN_VARIABLES                                                                 \
  "(known: %REQ(header-name)%, %DOWNSTREAM_REMOTE_ADDRESS%, %UPSTREAM_HOST%, %REQUEST_ID%, "   \
  "%DOWNSTREAM_TLS_VERSION%, %DOWNSTREAM_TLS_CIPHER%, %REQUESTED_SERVER_NAME%, "               \
  "%DOWNSTREAM_PEER_SUBJECT%, %DOWNSTREAM_PEER_URI_SAN%, %DOWNSTREAM_PEER_DNS_SAN%, "          \
  "%DOWNSTREAM_PEER_FINGERPRINT_256%; write %% for a literal '%')"

TEST(HeaderTemplate, TlsVariables) {
  auto parts = parse_header_template(
      "%DOWNSTREAM_TLS_VERSION%%DOWNSTREAM_TLS_CIPHER%%REQUESTED_SERVER_NAME% "
      "%DOWNSTREAM_PEER_SUBJECT%%DOWNSTREAM_PEER_URI_SAN%%DOWNSTREAM_PEER_DNS_SAN%"
      "%DOWNSTREAM_PEER_FINGERPRINT_256%");
  ASSERT_TRUE(parts.ok()) << parts.error().message;
  EXPECT_EQ(*parts, (std::vector<TemplatePart>{{Kind::kDownstreamTlsVersion, ""},
                                               {Kind::kDownstreamTlsCipher, ""},
                                               {Kind::kRequestedServerName, ""},
                                               {Kind::kLiteral, " "},
                                               {Kind::kDownstreamPeerSubject, ""},
                                               {Kind::kDownstreamPeerUriSan, ""},
                                               {Kind::kDownstreamPeerDnsSan, ""},
                                               {Kind::kDownstreamPeerFingerprint256, ""}}));
}

TEST(HeaderTemplate, Errors) {
  const std::pair<const char*, const char*> cases[] = {
      {"%HOSTNAME%", "unknown variable '%HOSTNAME%' " SLUICE_KNOWN_VARIABLES},
      {"%request_id%", "unknown variable '%request_id%' " SLUICE_KNOWN_VARIABLES},
      {"%REQ(a):10%", "unknown variable '%REQ(a):10%' " SLUICE_KNOWN_VARIABLES},
      // Envoy's names for what Sluice does not offer are unknown too.
      {"%DOWNSTREAM_PEER_ISSUER%", "unknown variable '%DOWNSTREAM_PEER_ISSUER%' " SLUICE_KNOWN_VARIABLES},
      {"50%", "the '%' at byte 3 has no closing '%' (write %% for a literal '%')"},
      {"%REQ(x y)%", "%REQ(x y)%: 'x y' is not a header name"},
      {"%REQ()%", "%REQ()%: '' is not a header name"},
  };
  for (auto [text, message] : cases) {
    auto parts = parse_header_template(text);
    ASSERT_FALSE(parts.ok()) << text;
    EXPECT_EQ(parts.error().message, message) << text;
  }
}

// --- accepted forms at each level --------------------------------------------------------------

TEST(HeaderPolicy, ListenerLevel) {
  LoadResult r = load_listener(R"(
    request_headers:
      set: { X-Forwarded-Proto: https, x-client: "%DOWNSTREAM_REMOTE_ADDRESS%", Host: backend.internal }
      add: { Via: "1.1 sluice", x-trace: "id=%REQUEST_ID%; 100%%" }
      remove: [ X-Internal-Debug, cookie2 ]
    response_headers:
      set: { Server: sluice, x-upstream: "%UPSTREAM_HOST% for %REQ(User-Agent)%", x-empty: "" }
      remove: [ x-powered-by ]
)");
  ASSERT_TRUE(r.ok()) << r.error_text();
  const HeaderPolicy& p = r.config.listeners.at(0).header_policy;
  // Names lower-case, in the order written; values exactly as written.
  EXPECT_EQ(p.request.set, (Pairs{{"x-forwarded-proto", "https"},
                                  {"x-client", "%DOWNSTREAM_REMOTE_ADDRESS%"},
                                  {"host", "backend.internal"}}));
  EXPECT_EQ(p.request.add, (Pairs{{"via", "1.1 sluice"}, {"x-trace", "id=%REQUEST_ID%; 100%%"}}));
  EXPECT_EQ(p.request.remove, (Names{"x-internal-debug", "cookie2"}));
  EXPECT_EQ(p.response.set, (Pairs{{"server", "sluice"},
                                   {"x-upstream", "%UPSTREAM_HOST% for %REQ(User-Agent)%"},
                                   {"x-empty", ""}}));
  EXPECT_TRUE(p.response.add.empty());
  EXPECT_EQ(p.response.remove, (Names{"x-powered-by"}));
}

TEST(HeaderPolicy, NoneByDefault) {
  LoadResult r = load_listener("");
  ASSERT_TRUE(r.ok()) << r.error_text();
  const Listener& l = r.config.listeners.at(0);
  EXPECT_TRUE(l.header_policy.empty());
  EXPECT_TRUE(l.virtual_hosts.at(0).header_policy.empty());
  EXPECT_TRUE(l.virtual_hosts.at(0).routes.at(0).header_policy.empty());
}

TEST(HeaderPolicy, VirtualHostAndRouteLevels) {
  LoadResult vh = load_virtual_host(R"(
        request_headers: { remove: [ X-Forwarded-Host ] }
        response_headers: { add: { Cache-Control: no-store } }
)");
  ASSERT_TRUE(vh.ok()) << vh.error_text();
  const HeaderPolicy& v = vh.config.listeners.at(0).virtual_hosts.at(0).header_policy;
  EXPECT_EQ(v.request.remove, (Names{"x-forwarded-host"}));
  EXPECT_EQ(v.response.add, (Pairs{{"cache-control", "no-store"}}));

  Route route = only_route(load_route(R"(
            match: { prefix: / }
            cluster: c
            request_headers: { set: { x-route: api } }
            response_headers: { remove: [ server ] }
)"));
  EXPECT_EQ(route.header_policy.request.set, (Pairs{{"x-route", "api"}}));
  EXPECT_EQ(route.header_policy.response.remove, (Names{"server"}));
}

TEST(HeaderPolicy, HostMayBeSetButNotAddedOrRemoved) {
  LoadResult r = load_listener(R"(
    request_headers: { add: { Host: a }, remove: [ HOST ] }
    response_headers: { add: { host: b } }
)");
  // A response's "host" is an ordinary field.
  expect_errors(r, {{4, 31, "listeners[0].request_headers.add", "'host' can only be set (a request has exactly one Host)"},
                    {4, 52, "listeners[0].request_headers.remove[0]", "'host' can only be set (a request has exactly one Host)"}});
}

// --- refusals ----------------------------------------------------------------------------------

const std::string kFraming =
    "cannot be changed: Sluice sets the framing and hop-by-hop headers (content-length, "
    "transfer-encoding, connection, keep-alive, proxy-connection, te, trailer, upgrade) itself";
const std::string kKnownVariables = SLUICE_KNOWN_VARIABLES;

TEST(HeaderPolicy, EveryErrorAtOnce) {
  LoadResult r = load_listener(R"(
    request_headers:
      set:
        "x y": a
        ":authority": a
        Content-Length: "10"
        Host: backend
        x-cr: "a\rb"
        x-var: "%HOSTNAME%"
        x-open: "100%"
        x-req: "%REQ(x y)%"
        X-Dup: "1"
      add: { host: b, x-dup: "2", x-list: [a] }
      remove: [ Connection, TE ]
    response_headers:
      set: [ a ]
      append: { a: b }
)");
  const std::string req = "listeners[0].request_headers";
  expect_errors(
      r, {
             {6, 9, req + ".set", "'x y' is not a header name (letters, digits and !#$%&'*+-.^_`|~)"},
             {7, 9, req + ".set", "':authority' is a pseudo-header, not a header field; it cannot be changed here"},
             {8, 9, req + ".set", "'content-length' " + kFraming},
             {10, 15, req + ".set.x-cr", "a header value must not contain CR, LF or NUL"},
             {11, 16, req + ".set.x-var", "unknown variable '%HOSTNAME%' " + kKnownVariables},
             {12, 17, req + ".set.x-open", "the '%' at byte 4 has no closing '%' (write %% for a literal '%')"},
             {13, 16, req + ".set.x-req", "%REQ(x y)%: 'x y' is not a header name"},
             {15, 14, req + ".add", "'host' can only be set (a request has exactly one Host)"},
             {15, 23, req + ".add",
              "'x-dup' is already in 'set' here; a header appears once per direction and level (names are "
              "case-insensitive)"},
             {15, 43, req + ".add.x-list", "expected a string (the header value)"},
             {16, 17, req + ".remove[0]", "'connection' " + kFraming},
             {16, 29, req + ".remove[1]", "'te' " + kFraming},
             {19, 7, "listeners[0].response_headers.append", "unknown key (known keys: set, add, remove)"},
             {18, 12, "listeners[0].response_headers.set", "expected a map of header names to values"},
         });
}

TEST(HeaderPolicy, FramingHeadersAreRefusedInResponsesToo) {
  LoadResult r = load_virtual_host("        response_headers: { set: { Transfer-Encoding: chunked } }\n");
  expect_error(r, 7, 36, "listeners[0].virtual_hosts[0].response_headers.set", "'transfer-encoding' " + kFraming);
}

TEST(HeaderPolicy, NulAndLineFeedInValuesAreRefused) {
  LoadResult r = load_route(R"(
            match: { prefix: / }
            cluster: c
            response_headers: { set: { x-a: "a\0b", x-b: "a\nb" } }
)");
  const std::string path = "listeners[0].virtual_hosts[0].routes[0].response_headers.set";
  expect_errors(r, {{11, 45, path + ".x-a", "a header value must not contain CR, LF or NUL"},
                    {11, 58, path + ".x-b", "a header value must not contain CR, LF or NUL"}});
}

TEST(HeaderPolicy, SameNameTwiceInOneMapDiffersOnlyInCase) {
  LoadResult r = load_listener("    response_headers: { remove: [ x-a, X-A ] }\n");
  expect_error(r, 4, 40, "listeners[0].response_headers.remove[1]",
               "'x-a' is already in 'remove' here; a header appears once per direction and level (names "
               "are case-insensitive)");
}

TEST(HeaderPolicy, TheSameNameAtTwoLevelsOrInTwoDirectionsIsFine) {
  LoadResult r = testing::load_yaml(R"(
listeners:
  - name: l
    address: 127.0.0.1:8000
    request_headers: { set: { x-a: "1" } }
    response_headers: { set: { x-a: "1" } }
    virtual_hosts:
      - name: v
        domains: ["*"]
        request_headers: { remove: [ x-a ] }
        routes: [ { match: { prefix: / }, cluster: c, request_headers: { add: { x-a: "2" } } } ]
clusters: [ { name: c, endpoints: [ 127.0.0.1:9000 ] } ]
)");
  ASSERT_TRUE(r.ok()) << r.error_text();
  const Listener& l = r.config.listeners.at(0);
  EXPECT_EQ(l.header_policy.request.set, (Pairs{{"x-a", "1"}}));
  EXPECT_EQ(l.header_policy.response.set, (Pairs{{"x-a", "1"}}));
  EXPECT_EQ(l.virtual_hosts.at(0).header_policy.request.remove, (Names{"x-a"}));
  EXPECT_EQ(l.virtual_hosts.at(0).routes.at(0).header_policy.request.add, (Pairs{{"x-a", "2"}}));
}

}  // namespace
}  // namespace sluice::config
