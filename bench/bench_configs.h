#pragma once
// Generated configurations the micro benches share (micro_bench.cc, route_bench.cc).
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "sluice/config/loader.h"
#include "sluice/http/request_view.h"

namespace sluice::bench {

// A bench that cannot build its input stops the whole run: a benchmark of nothing is worse than
// no benchmark.
inline config::Config load_or_die(const std::string& yaml, const char* what) {
  config::LoadResult r = config::load_string(yaml, what);
  if (!r.ok()) {
    std::fprintf(stderr, "%s: invalid generated config:\n%s", what, r.error_text().c_str());
    std::abort();
  }
  return std::move(r.config);
}

inline constexpr const char* kHead =
    "listeners:\n"
    "  - name: bench\n"
    "    address: 127.0.0.1:0\n"
    "    virtual_hosts:\n";
inline constexpr const char* kClusters =
    "clusters:\n"
    "  - name: backend\n"
    "    endpoints: [ 127.0.0.1:8080 ]\n";

enum RouteKind : int64_t { kPrefix = 0, kExact = 1, kRegex = 2, kMix = 3 };

// Route i of n: `prefix: /svc/i/`, `path: /svc/i/item/42` or `regex: /svc/i/[a-z]+/[0-9]+`, so
// "/svc/i/item/42" matches route i and no other. In the mix, kinds rotate regex/exact/prefix
// counted from the end, so the last route is always a regex and every kind occurs about n/3 times.
inline config::Route bench_route(size_t i, size_t n, int64_t kind) {
  int64_t k = kind;
  if (kind == kMix) k = (n - 1 - i) % 3 == 0 ? kRegex : ((n - 1 - i) % 3 == 1 ? kExact : kPrefix);
  const std::string id = std::to_string(i);
  config::Route r;
  r.name = "r" + id;
  r.cluster = "backend";
  switch (k) {
    case kPrefix:
      r.path_kind = config::Route::PathKind::kPrefix;
      r.path = "/svc/" + id + "/";
      break;
    case kExact:
      r.path_kind = config::Route::PathKind::kPath;
      r.path = "/svc/" + id + "/item/42";
      break;
    default:
      r.path_kind = config::Route::PathKind::kRegex;
      r.path = "/svc/" + id + "/[a-z]+/[0-9]+";
      break;
  }
  return r;
}

inline std::string route_yaml(size_t i, size_t n, int64_t kind) {
  static const char* const kKeys[] = {"path", "prefix", "regex"};  // by config::Route::PathKind
  const config::Route r = bench_route(i, n, kind);
  return "          - name: " + r.name + "\n            match: { " +
         kKeys[static_cast<int>(r.path_kind)] + ": '" + r.path +
         "' }\n            cluster: " + r.cluster + "\n";
}

// One virtual host ("*") with n routes of one kind.
inline std::string routes_config(size_t n, int64_t kind) {
  std::string y = kHead;
  y += "      - name: app\n        domains: [\"*\"]\n        routes:\n";
  for (size_t i = 0; i < n; ++i) y += route_yaml(i, n, kind);
  return y + kClusters;
}

// Headers a browser-ish client sends; route matchers without header conditions never read them,
// but they make the RequestView realistic.
inline const std::vector<http::HeaderView>& typical_headers() {
  static const std::vector<http::HeaderView> headers = {
      {"Host", "app.example.com"},
      {"User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"},
      {"Accept", "application/json"},
      {"Accept-Encoding", "gzip, deflate, br"},
      {"Accept-Language", "en-GB,en;q=0.7"},
      {"Cookie", "session=3f1c2a9b7d6e5f40; theme=dark"},
      {"X-Request-Id", "d3e47ff0-ddd9-454f-a1f5-b2553a7320a6"},
      {"Connection", "keep-alive"},
  };
  return headers;
}

}  // namespace sluice::bench
