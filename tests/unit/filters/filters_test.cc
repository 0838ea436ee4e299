// The first steps of the filter chain: header mutation (value templates, the order of levels)
// and the local actions (direct_response, redirect Location building).
#include <gtest/gtest.h>

#include "sluice/filters/header_mutation.h"
#include "sluice/filters/local_actions.h"
#include "sluice/net/stream.h"
#include "sluice/proxy/exchange.h"

namespace sluice::filters {
namespace {

proxy::Exchange sample_exchange() {
  proxy::Exchange x;
  x.request.method = "GET";
  x.request.authority = "app.example.com:8080";
  x.request.path = "/api/users";
  x.request.query = "a=1";
  x.request.has_query = true;
  x.request.fields.push_back({"Host", "app.example.com:8080"});
  x.request.fields.push_back({"X-Tenant", "acme"});
  x.client_address = "10.1.2.3";
  x.request_id = "rid-1";
  x.upstream_host = "127.0.0.1:8080";
  return x;
}

TEST(ValueTemplate, RendersEveryVariableAndKeepsLiterals) {
  proxy::Exchange x = sample_exchange();
  EXPECT_EQ(ValueTemplate("plain").render(x), "plain");
  EXPECT_TRUE(ValueTemplate("plain").is_literal());
  EXPECT_EQ(ValueTemplate("%DOWNSTREAM_REMOTE_ADDRESS%").render(x), "10.1.2.3");
  EXPECT_EQ(ValueTemplate("up=%UPSTREAM_HOST%;id=%REQUEST_ID%").render(x), "up=127.0.0.1:8080;id=rid-1");
  EXPECT_EQ(ValueTemplate("t-%REQ(x-tenant)%-t").render(x), "t-acme-t");  // case-insensitive name
  EXPECT_EQ(ValueTemplate("%REQ(missing)%").render(x), "");
  EXPECT_EQ(ValueTemplate("100%% sure").render(x), "100% sure");
  EXPECT_EQ(ValueTemplate("").render(x), "");
}

TEST(ValueTemplate, TlsVariables) {
  const char* const kAll =
      "v=%DOWNSTREAM_TLS_VERSION%;c=%DOWNSTREAM_TLS_CIPHER%;sni=%REQUESTED_SERVER_NAME%;"
      "s=%DOWNSTREAM_PEER_SUBJECT%;u=%DOWNSTREAM_PEER_URI_SAN%;d=%DOWNSTREAM_PEER_DNS_SAN%;"
      "h=%DOWNSTREAM_PEER_FINGERPRINT_256%";
  proxy::Exchange x = sample_exchange();
  // Plaintext: every one is empty.
  EXPECT_EQ(ValueTemplate(kAll).render(x), "v=;c=;sni=;s=;u=;d=;h=");

  net::TlsInfo tls;
  tls.version = "TLSv1.3";
  tls.cipher = "TLS_AES_128_GCM_SHA256";
  tls.sni = "app.example.test";
  x.tls = &tls;
  // TLS without a client certificate: the connection's, not the peer's.
  EXPECT_EQ(ValueTemplate(kAll).render(x),
            "v=TLSv1.3;c=TLS_AES_128_GCM_SHA256;sni=app.example.test;s=;u=;d=;h=");

  tls.peer_certificate = true;
  tls.peer_subject = "CN=alice,O=corp";
  tls.peer_uri_sans = {"spiffe://corp/ns/prod/sa/alice", "urn:x"};
  tls.peer_dns_sans = {"alice.clients.test"};
  tls.peer_cert_sha256 = "2bd806c9";
  EXPECT_EQ(ValueTemplate(kAll).render(x),
            "v=TLSv1.3;c=TLS_AES_128_GCM_SHA256;sni=app.example.test;s=CN=alice,O=corp;"
            "u=spiffe://corp/ns/prod/sa/alice,urn:x;d=alice.clients.test;h=2bd806c9");
}

TEST(HeaderMutation, LevelsApplyListenerThenVirtualHostThenRoute) {
  config::HeaderPolicy listener, vhost, route;
  listener.request.set = {{"x-level", "listener"}, {"x-from-listener", "1"}};
  vhost.request.set = {{"x-level", "vhost"}};
  route.request.set = {{"x-level", "route"}};
  route.request.add = {{"x-added", "%REQ(x-tenant)%"}};
  route.request.remove = {"x-tenant"};
  auto f = HeaderMutationFilter::create({&listener, &vhost, &route});
  ASSERT_TRUE(f);
  proxy::Exchange x = sample_exchange();
  f->on_upstream_request(x);
  EXPECT_EQ(x.request.fields.get("x-level"), "route");
  EXPECT_EQ(x.request.fields.get("x-from-listener"), "1");
  EXPECT_FALSE(x.request.fields.get("x-tenant"));
  // Within a level, removals run first and values are rendered after them (Envoy's order), so
  // %REQ(x-tenant)% no longer finds the field the same level removed.
  EXPECT_EQ(x.request.fields.get("x-added"), "");
  size_t levels = 0;
  for (const auto& h : x.request.fields.items()) levels += h.name == "x-level";
  EXPECT_EQ(levels, 1u) << "set replaces, it does not add";
}

TEST(HeaderMutation, AddKeepsExistingFieldsAndResponseSideIsSeparate) {
  config::HeaderPolicy route;
  route.request.add = {{"x-tenant", "other"}};
  route.response.set = {{"x-served-by", "%UPSTREAM_HOST%"}};
  route.response.remove = {"server"};
  auto f = HeaderMutationFilter::create({nullptr, nullptr, &route});
  ASSERT_TRUE(f);
  proxy::Exchange x = sample_exchange();
  f->on_upstream_request(x);
  size_t tenants = 0;
  for (const auto& h : x.request.fields.items()) tenants += http::iequals(h.name, "x-tenant");
  EXPECT_EQ(tenants, 2u);
  x.response.fields.push_back({"Server", "Jetty"});
  f->on_response_head(x);
  EXPECT_FALSE(x.response.fields.get("server"));
  EXPECT_EQ(x.response.fields.get("x-served-by"), "127.0.0.1:8080");
}

TEST(HeaderMutation, NoStepWhenNoLevelMutatesAnything) {
  config::HeaderPolicy empty;
  EXPECT_FALSE(HeaderMutationFilter::create({nullptr, &empty, &empty}));
}

TEST(DirectResponse, AnswersWithItsStatusBodyAndType) {
  config::DirectResponse spec;
  spec.status = 418;
  spec.body = "short and stout\n";
  spec.content_type = "text/teapot";
  DirectResponseFilter f(spec);
  proxy::Exchange x = sample_exchange();
  EXPECT_EQ(f.on_request_head(x), Status::kLocalReply);
  ASSERT_TRUE(x.local_reply);
  EXPECT_EQ(x.local_reply->status, 418);
  EXPECT_EQ(x.local_reply->body, "short and stout\n");
  EXPECT_EQ(x.local_reply->content_type, "text/teapot");
  EXPECT_EQ(x.local_reply->reason, stats::LocalReason::kDirectResponse);
}

TEST(Redirect, HttpsRedirectDropsThePortOfTheOldScheme) {
  config::Redirect spec;
  spec.scheme = "https";
  RedirectFilter f(spec, "/");
  EXPECT_EQ(f.location("http", "app.example.com:8080", "/a/b", "x=1", true),
            "https://app.example.com/a/b?x=1");
  EXPECT_EQ(f.location("http", "app.example.com", "/", "", false), "https://app.example.com/");
  spec.port = 8443;
  RedirectFilter with_port(spec, "/");
  EXPECT_EQ(with_port.location("http", "h:80", "/p", "", false), "https://h:8443/p");
  spec.port = 443;
  RedirectFilter default_port(spec, "/");
  EXPECT_EQ(default_port.location("http", "h", "/p", "", false), "https://h/p");
}

TEST(Redirect, HostPathPrefixAndQuery) {
  config::Redirect host;
  host.host = "new.example.com";
  EXPECT_EQ(RedirectFilter(host, "/").location("http", "old:9000", "/x", "q", true),
            "http://new.example.com:9000/x?q");
  config::Redirect path;
  path.path = "/landing";
  path.strip_query = true;
  EXPECT_EQ(RedirectFilter(path, "/").location("http", "h", "/x", "q", true), "http://h/landing");
  config::Redirect prefix;
  prefix.prefix_rewrite = "/v2/";
  EXPECT_EQ(RedirectFilter(prefix, "/v1/").location("http", "h", "/v1/users", "", true),
            "http://h/v2/users?");
  config::Redirect with_query;
  with_query.path = "/search?q=x";
  EXPECT_EQ(RedirectFilter(with_query, "/").location("http", "h", "/s", "old=1", true),
            "http://h/search?q=x");
  config::Redirect v6;
  v6.scheme = "https";
  EXPECT_EQ(RedirectFilter(v6, "/").location("http", "[::1]:8080", "/", "", false), "https://[::1]/");
}

TEST(Redirect, SetsLocationAndTheConfiguredCode) {
  config::Redirect spec;
  spec.scheme = "https";
  spec.code = 308;
  RedirectFilter f(spec, "/");
  proxy::Exchange x = sample_exchange();
  EXPECT_EQ(f.on_request_head(x), Status::kLocalReply);
  ASSERT_TRUE(x.local_reply);
  EXPECT_EQ(x.local_reply->status, 308);
  EXPECT_EQ(x.local_reply->headers.get("location"), "https://app.example.com/api/users?a=1");
}

}  // namespace
}  // namespace sluice::filters
