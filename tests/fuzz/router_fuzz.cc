// Fuzzes the router: one RouteTable built from a fixed listener with exact, wildcard-suffix,
// wildcard-prefix and default virtual hosts, and routes with exact, prefix and regex paths and
// header and query conditions; the request is what the fuzzer chooses.
//
// Input: text lines separated by '\n': the authority (Host), the request target (path, then '?'
// and the query), then header fields as "name: value". The router's answer is compared with a
// plain reading of the configuration below (the oracle): Host lookup order, first matching route
// wins, conditions as documented in docs/CONFIGURATION.md.
#include <re2/re2.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "sluice/config/loader.h"
#include "sluice/http/request_view.h"
#include "sluice/router/route_table.h"

namespace sluice::fuzz {
namespace {

const char* const kConfig = R"yaml(
listeners:
  - name: fuzz
    address: 127.0.0.1:10000
    virtual_hosts:
      - name: api
        domains: ["api.example.com", "*.api.example.com"]
        routes:
          - name: health
            match: { path: /health }
            cluster: app
          - name: canary
            match: { prefix: /v1/, headers: [{ name: X-Canary, exact: "1" }] }
            cluster: canary
          - name: users
            match: { regex: "/v1/users/[0-9]+", query: [{ name: debug, present: false }] }
            cluster: app
          - name: search
            match: { prefix: /v1/search, query: [{ name: q }, { name: lang, exact: en }] }
            cluster: app
          - name: beta
            match: { prefix: /v1/, headers: [{ name: x-beta, regex: "b[0-9]{1,3}" }] }
            cluster: canary
          - name: anonymous
            match: { prefix: /v1/, headers: [{ name: authorization, present: false }] }
            cluster: app
          - name: v1
            match: { prefix: /v1/ }
            prefix_rewrite: /api/v1/
            cluster: app
          - name: assets
            match: { regex: "/static/.*\\.(css|js|png)" }
            cluster: app
          - name: rest
            match: { prefix: / }
            cluster: app
      - name: www
        domains: ["*.example.com", "www.*"]
        routes:
          - name: home
            match: { path: / }
            cluster: app
          - name: docs
            match: { prefix: /docs/, headers: [{ name: accept, regex: "text/.*" }] }
            prefix_rewrite: /manual/
            cluster: app
      - name: edge
        domains: ["*-edge.example.net", "Exact.Example.NET"]
        routes:
          - name: edge
            match: { prefix: /, headers: [{ name: x-edge, present: true }] }
            cluster: app
      - name: fallback
        domains: ["*"]
        routes:
          - name: tagged
            match: { prefix: /, query: [{ name: route, exact: "" }] }
            cluster: app
clusters:
  - name: app
    endpoints: ["127.0.0.1:8080"]
  - name: canary
    endpoints: ["127.0.0.1:8081"]
)yaml";

struct Fixture {
  Fixture() : config(load()), table(config.listeners.at(0), config.clusters) {}
  static config::Config load() {
    auto loaded = config::load_string(kConfig, "router_fuzz.yaml");
    if (!loaded.ok()) std::fprintf(stderr, "%s", loaded.error_text().c_str());
    FUZZ_CHECK(loaded.ok(), "the router fixture's configuration does not load");
    return std::move(loaded.config);
  }
  config::Config config;
  router::RouteTable table;
  re2::RE2 users{"/v1/users/[0-9]+"};
  re2::RE2 beta{"b[0-9]{1,3}"};
  re2::RE2 assets{"/static/.*\\.(css|js|png)"};
  re2::RE2 text{"text/.*"};
};

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

bool full_match(std::string_view s, const re2::RE2& re) {
  return re2::RE2::FullMatch(re2::StringPiece(s.data(), s.size()), re);
}

// Any field of that name (case-insensitive) whose value satisfies `ok`.
bool any_header(const http::RequestView& r, std::string_view name,
                const std::function<bool(std::string_view)>& ok) {
  for (const auto& h : r.headers) {
    if (http::iequals(h.name, name) && ok(h.value)) return true;
  }
  return false;
}

// Any "name[=value]" parameter of the raw query with that exact name whose value satisfies `ok`.
bool any_param(std::string_view query, std::string_view name,
               const std::function<bool(std::string_view)>& ok) {
  size_t start = 0;
  while (start <= query.size()) {
    size_t amp = query.find('&', start);
    if (amp == std::string_view::npos) amp = query.size();
    std::string_view pair = query.substr(start, amp - start);
    size_t eq = pair.find('=');
    std::string_view value = eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
    if (!pair.empty() && pair.substr(0, eq) == name && ok(value)) return true;
    start = amp + 1;
  }
  return false;
}

const auto kAny = [](std::string_view) { return true; };

// The fixture's configuration read by hand: the virtual host for a Host value...
std::string_view expected_virtual_host(std::string_view authority) {
  std::string host(router::host_without_port(authority));
  for (char& c : host) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  auto ends_with_label = [&](std::string_view suffix) {
    return host.size() > suffix.size() && host.compare(host.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  if (host == "api.example.com") return "api";
  if (host == "exact.example.net") return "edge";
  // Wildcard suffixes, longest first.
  if (ends_with_label("-edge.example.net")) return "edge";
  if (ends_with_label(".api.example.com")) return "api";
  if (ends_with_label(".example.com")) return "www";
  if (host.size() > 4 && starts_with(host, "www.")) return "www";
  return "fallback";
}

// ...and the first route of that virtual host whose conditions all hold ("" for none).
std::string_view expected_route(const Fixture& f, std::string_view vhost, const http::RequestView& r) {
  std::string_view p = r.path;
  if (vhost == "api") {
    if (p == "/health") return "health";
    if (starts_with(p, "/v1/") && any_header(r, "x-canary", [](std::string_view v) { return v == "1"; })) {
      return "canary";
    }
    if (full_match(p, f.users) && !any_param(r.query, "debug", kAny)) return "users";
    if (starts_with(p, "/v1/search") && any_param(r.query, "q", kAny) &&
        any_param(r.query, "lang", [](std::string_view v) { return v == "en"; })) {
      return "search";
    }
    if (starts_with(p, "/v1/") && any_header(r, "x-beta", [&](std::string_view v) { return full_match(v, f.beta); })) {
      return "beta";
    }
    if (starts_with(p, "/v1/") && !any_header(r, "authorization", kAny)) return "anonymous";
    if (starts_with(p, "/v1/")) return "v1";
    if (full_match(p, f.assets)) return "assets";
    if (starts_with(p, "/")) return "rest";
    return "";
  }
  if (vhost == "www") {
    if (p == "/") return "home";
    if (starts_with(p, "/docs/") && any_header(r, "accept", [&](std::string_view v) { return full_match(v, f.text); })) {
      return "docs";
    }
    return "";
  }
  if (vhost == "edge") return starts_with(p, "/") && any_header(r, "x-edge", kAny) ? "edge" : "";
  return starts_with(p, "/") && any_param(r.query, "route", [](std::string_view v) { return v.empty(); }) ? "tagged" : "";
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace
}  // namespace sluice::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sluice;
  static const fuzz::Fixture fixture;

  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> lines;
  for (size_t start = 0; start <= input.size();) {
    size_t nl = input.find('\n', start);
    if (nl == std::string_view::npos) nl = input.size();
    lines.push_back(input.substr(start, nl - start));
    start = nl + 1;
  }
  std::vector<http::HeaderView> headers;
  for (size_t i = 2; i < lines.size() && headers.size() < 100; ++i) {
    size_t colon = lines[i].find(':');
    std::string_view name = lines[i].substr(0, colon);
    std::string_view value = colon == std::string_view::npos ? std::string_view{} : lines[i].substr(colon + 1);
    headers.push_back({name, fuzz::trim(value)});
  }
  http::RequestView request;
  request.method = "GET";
  request.authority = lines[0];
  std::string_view target = lines.size() > 1 ? lines[1] : std::string_view{};
  size_t question = target.find('?');
  request.path = target.substr(0, question);
  request.query = question == std::string_view::npos ? std::string_view{} : target.substr(question + 1);
  request.headers = headers;

  std::string_view host = router::host_without_port(request.authority);
  FUZZ_CHECK(request.authority.substr(0, host.size()) == host, "host_without_port() is not a prefix of the authority");
  FUZZ_CHECK(request.authority.find(':') != std::string_view::npos || request.authority.substr(0, 1) == "[" ||
                 host == request.authority,
             "host_without_port() changed a host name without a port");

  const router::VirtualHost* vhost = fixture.table.find_virtual_host(request.authority);
  FUZZ_CHECK(vhost != nullptr, "no virtual host although there is a '*' default");
  FUZZ_CHECK(vhost->name() == fuzz::expected_virtual_host(request.authority), "wrong virtual host for the Host");

  const router::Route* route = vhost->match(request);
  std::string_view expected = fuzz::expected_route(fixture, vhost->name(), request);
  FUZZ_CHECK((route ? std::string_view(route->name()) : std::string_view{}) == expected,
             "wrong route: not the first route whose conditions hold");
  if (route) {
    std::string rewritten = route->rewritten_path(request.path);
    const auto& rewrite = route->action().prefix_rewrite;
    if (rewrite) {
      FUZZ_CHECK(rewritten == *rewrite + std::string(request.path.substr(route->path_matcher().value().size())),
                 "prefix_rewrite did not replace exactly the matched prefix");
    } else {
      FUZZ_CHECK(rewritten == request.path, "a route without prefix_rewrite changed the path");
    }
  }
  return 0;
}
