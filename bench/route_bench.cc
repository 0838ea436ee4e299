// Route matching and virtual host lookup, through the route index (VirtualHost::match) and the
// linear scan it replaced (VirtualHost::match_linear), at 10 to 10,000 routes or virtual hosts.
//   build-*/bench/sluice_bench --benchmark_filter='Route|Vhost'
// bench/README.md says what each benchmark measures; results/2026-12-01-route-index.md has a run.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "bench_configs.h"
#include "sluice/router/route_table.h"

namespace {

using namespace sluice::bench;
using sluice::config::Config;
using sluice::http::RequestView;
using sluice::router::Route;
using sluice::router::VirtualHost;

struct RouteFixture {
  Config config;
  std::unique_ptr<sluice::router::RouteTable> table;
};

// Google Benchmark calls a benchmark function several times while it sizes the run; building
// 10,000 RE2 routes once per (n, kind) keeps set-up time out of the way.
// The routes are put into the loaded config directly, not through YAML: the loader refuses
// regexes above 100,000 RE2 instructions per file (config::kMaxTotalRegexProgramSize), which
// about 5,300 of these patterns reach, and the router's cost at 10,000 is what is measured here.
RouteFixture& route_fixture(size_t n, int64_t kind) {
  static std::map<std::pair<size_t, int64_t>, std::unique_ptr<RouteFixture>> cache;
  auto& slot = cache[{n, kind}];
  if (!slot) {
    slot = std::make_unique<RouteFixture>();
    slot->config = load_or_die(routes_config(1, kPrefix), "routes.yaml");
    auto& routes = slot->config.listeners[0].virtual_hosts[0].routes;
    routes.clear();
    for (size_t i = 0; i < n; ++i) routes.push_back(bench_route(i, n, kind));
    slot->table = std::make_unique<sluice::router::RouteTable>(slot->config.listeners[0],
                                                               slot->config.clusters);
  }
  return *slot;
}

enum Which : int64_t { kFirst = 0, kLast = 1 };
enum How : int64_t { kIndex = 0, kLinear = 1 };

// One virtual host with N routes of one kind; the request matches only the first or only the
// last route (the worst case of first-match-wins for a scan). The request carries 8 typical
// headers.
void BM_RouteMatch(benchmark::State& state, int64_t kind, Which which, How how) {
  const size_t n = static_cast<size_t>(state.range(0));
  RouteFixture& f = route_fixture(n, kind);
  const VirtualHost* vhost = f.table->find_virtual_host("app.example.com");
  const size_t target = which == kFirst ? 0 : n - 1;
  const std::string path = "/svc/" + std::to_string(target) + "/item/42";
  const RequestView req{"GET", "app.example.com", path, "", typical_headers()};
  auto match = [&] { return how == kIndex ? vhost->match(req) : vhost->match_linear(req); };
  const Route* route = match();
  if (route == nullptr || route->name() != "r" + std::to_string(target)) {
    state.SkipWithError("the request does not match the expected route");
    return;
  }
  for (auto _ : state) {
    route = match();
    benchmark::DoNotOptimize(route);
  }
}
#define ROUTE_SIZES ArgName("routes")->RangeMultiplier(10)->Range(10, 10000)
// The benchmark names are stringified: clang-format would make "prefix/first" "prefix / first".
// clang-format off
#define ROUTE_BENCH(kind_name, kind)                                                            \
  BENCHMARK_CAPTURE(BM_RouteMatch, kind_name/first, kind, kFirst, kIndex)->ROUTE_SIZES;         \
  BENCHMARK_CAPTURE(BM_RouteMatch, kind_name/last, kind, kLast, kIndex)->ROUTE_SIZES;           \
  BENCHMARK_CAPTURE(BM_RouteMatch, kind_name/first/linear, kind, kFirst, kLinear)->ROUTE_SIZES; \
  BENCHMARK_CAPTURE(BM_RouteMatch, kind_name/last/linear, kind, kLast, kLinear)->ROUTE_SIZES
// clang-format on
ROUTE_BENCH(prefix, kPrefix);
ROUTE_BENCH(exact, kExact);
ROUTE_BENCH(regex, kRegex);
ROUTE_BENCH(mix, kMix);
#undef ROUTE_BENCH
#undef ROUTE_SIZES

// What the index adds to building a snapshot (control thread, once per reload): RouteIndex
// over the N routes of one kind already compiled (regex routes: the RE2::Set compile and the
// literal prefixes).
void BM_RouteIndexBuild(benchmark::State& state, int64_t kind) {
  RouteFixture& f = route_fixture(static_cast<size_t>(state.range(0)), kind);
  const VirtualHost* vhost = f.table->find_virtual_host("app.example.com");
  for (auto _ : state) {
    sluice::router::RouteIndex index(vhost->routes());
    benchmark::DoNotOptimize(&index);
  }
}
#define BUILD_SIZES ArgName("routes")->Arg(1000)->Arg(10000)->Unit(benchmark::kMillisecond)
BENCHMARK_CAPTURE(BM_RouteIndexBuild, prefix, kPrefix)->BUILD_SIZES;
BENCHMARK_CAPTURE(BM_RouteIndexBuild, exact, kExact)->BUILD_SIZES;
BENCHMARK_CAPTURE(BM_RouteIndexBuild, regex, kRegex)->BUILD_SIZES;
BENCHMARK_CAPTURE(BM_RouteIndexBuild, mix, kMix)->BUILD_SIZES;
#undef BUILD_SIZES

// ---------------------------------------------------------------------------------------------
// Virtual host lookup with N virtual hosts, each with an exact name, a "*.name" and a "name.*"
// wildcard (zero-padded so every wildcard of a kind has the same length and the last one listed
// is found last by a scan), plus a "*" default.

std::string vhost_name(size_t i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "h%06zu.example.com", i);
  return buf;
}

struct VhostFixture {
  Config config;
  std::unique_ptr<sluice::router::RouteTable> table;
};

VhostFixture& vhost_fixture(size_t n) {
  static std::map<size_t, std::unique_ptr<VhostFixture>> cache;
  auto& slot = cache[n];
  if (!slot) {
    std::string y = kHead;
    for (size_t i = 0; i < n; ++i) {
      const std::string d = vhost_name(i);
      y += "      - name: v" + std::to_string(i) + "\n        domains: [\"" + d + "\", \"*." + d +
           "\", \"" + d +
           ".*\"]\n        routes:\n          - match: { prefix: / }\n"
           "            cluster: backend\n";
    }
    y += "      - name: fallback\n        domains: [\"*\"]\n        routes:\n"
         "          - match: { prefix: / }\n            cluster: backend\n";
    y += kClusters;
    slot = std::make_unique<VhostFixture>();
    slot->config = load_or_die(y, "vhosts.yaml");
    slot->table = std::make_unique<sluice::router::RouteTable>(slot->config.listeners[0],
                                                               slot->config.clusters);
  }
  return *slot;
}

// exact:    "h…N-1.example.com:10000" (hash lookup after stripping the port)
// wildcard: "api.h…N-1.example.com" (the last of N equal-length "*.suffix" patterns)
// prefix:   "h…N-1.example.com.internal" (the last "prefix.*", after every suffix is ruled out)
// default:  no domain matches, falls through to "*" after every wildcard is ruled out
void BM_VhostLookup(benchmark::State& state, int mode) {
  const size_t n = static_cast<size_t>(state.range(0));
  VhostFixture& f = vhost_fixture(n);
  std::string host;
  std::string want = "v" + std::to_string(n - 1);
  switch (mode) {
    case 0:
      host = vhost_name(n - 1) + ":10000";
      break;
    case 1:
      host = "api." + vhost_name(n - 1);
      break;
    case 2:
      host = vhost_name(n - 1) + ".internal";
      break;
    default:
      host = "unknown.example.org";
      want = "fallback";
      break;
  }
  const auto* vh = f.table->find_virtual_host(host);
  if (vh == nullptr || vh->name() != want) {
    state.SkipWithError("the lookup did not find the expected virtual host");
    return;
  }
  for (auto _ : state) {
    vh = f.table->find_virtual_host(host);
    benchmark::DoNotOptimize(vh);
  }
}
#define VHOST_SIZES ArgName("vhosts")->RangeMultiplier(10)->Range(10, 10000)
BENCHMARK_CAPTURE(BM_VhostLookup, exact, 0)->VHOST_SIZES;
BENCHMARK_CAPTURE(BM_VhostLookup, wildcard, 1)->VHOST_SIZES;
BENCHMARK_CAPTURE(BM_VhostLookup, prefix, 2)->VHOST_SIZES;
BENCHMARK_CAPTURE(BM_VhostLookup, default, 3)->VHOST_SIZES;
#undef VHOST_SIZES

}  // namespace
