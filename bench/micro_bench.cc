// Micro benchmarks of the request path's building blocks: route matching, virtual host lookup,
// request head parsing, stats cells, and the snapshot pointer a request copies.
//   build-*/bench/sluice_bench --benchmark_filter='Route|Vhost|Parse|Stats|Snapshot|Routing'
// (Round-robin and Maglev picks are in balancer_bench.cc and maglev_bench.cc.)
// bench/README.md says what each benchmark measures and how to read it.
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "sluice/config/loader.h"
#include "sluice/http/parser.h"
#include "sluice/http/request_view.h"
#include "sluice/router/route_table.h"
#include "sluice/server/snapshot.h"
#include "sluice/stats/metrics.h"

namespace {

using sluice::config::Config;
using sluice::http::HeaderView;
using sluice::http::RequestView;

// A bench that cannot build its input stops the whole run: a benchmark of nothing is worse than
// no benchmark.
Config load_or_die(const std::string& yaml, const char* what) {
  sluice::config::LoadResult r = sluice::config::load_string(yaml, what);
  if (!r.ok()) {
    std::fprintf(stderr, "%s: invalid generated config:\n%s", what, r.error_text().c_str());
    std::abort();
  }
  return std::move(r.config);
}

constexpr const char* kHead =
    "listeners:\n"
    "  - name: bench\n"
    "    address: 127.0.0.1:0\n"
    "    virtual_hosts:\n";
constexpr const char* kClusters =
    "clusters:\n"
    "  - name: backend\n"
    "    endpoints: [ 127.0.0.1:8080 ]\n";

// ---------------------------------------------------------------------------------------------
// Route matching: one virtual host with N routes, and a request that only the LAST route
// matches, so VirtualHost::match walks every route (the worst case of first-match-wins).

enum RouteKind : int64_t { kPrefix = 0, kExact = 1, kRegex = 2, kMix = 3 };

// Route i of n. In the mix, kinds rotate regex/exact/prefix counted from the end, so the last
// (matching) route is always a regex and every kind occurs about n/3 times.
std::string route_yaml(size_t i, size_t n, int64_t kind) {
  int64_t k = kind;
  if (kind == kMix) k = (n - 1 - i) % 3 == 0 ? kRegex : ((n - 1 - i) % 3 == 1 ? kExact : kPrefix);
  std::string id = std::to_string(i);
  std::string match;
  switch (k) {
    case kPrefix: match = "{ prefix: /svc/" + id + "/ }"; break;
    case kExact: match = "{ path: /svc/" + id + "/item/42 }"; break;
    default: match = "{ regex: '/svc/" + id + "/[a-z]+/[0-9]+' }"; break;
  }
  return "          - name: r" + id + "\n            match: " + match +
         "\n            cluster: backend\n";
}

std::string routes_config(size_t n, int64_t kind) {
  std::string y = kHead;
  y += "      - name: app\n        domains: [\"*\"]\n        routes:\n";
  for (size_t i = 0; i < n; ++i) y += route_yaml(i, n, kind);
  return y + kClusters;
}

// Headers a browser-ish client sends; route matchers without header conditions never read them,
// but they make the RequestView realistic.
const std::vector<HeaderView>& typical_headers() {
  static const std::vector<HeaderView> headers = {
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

struct RouteFixture {
  Config config;
  std::unique_ptr<sluice::router::RouteTable> table;
  std::string path;
};

// Google Benchmark calls a benchmark function several times while it sizes the run; building
// 10 000 RE2 routes once per (n, kind) keeps set-up time out of the way.
RouteFixture& route_fixture(size_t n, int64_t kind) {
  static std::map<std::pair<size_t, int64_t>, std::unique_ptr<RouteFixture>> cache;
  auto& slot = cache[{n, kind}];
  if (!slot) {
    slot = std::make_unique<RouteFixture>();
    slot->config = load_or_die(routes_config(n, kind), "routes.yaml");
    slot->table = std::make_unique<sluice::router::RouteTable>(slot->config.listeners[0],
                                                               slot->config.clusters);
    slot->path = "/svc/" + std::to_string(n - 1) + "/item/42";
  }
  return *slot;
}

void BM_RouteMatchLast(benchmark::State& state, int64_t kind) {
  const size_t n = static_cast<size_t>(state.range(0));
  RouteFixture& f = route_fixture(n, kind);
  const sluice::router::VirtualHost* vhost = f.table->find_virtual_host("app.example.com");
  RequestView req;
  req.method = "GET";
  req.authority = "app.example.com";
  req.path = f.path;
  req.query = "";
  req.headers = typical_headers();
  const std::string want = "r" + std::to_string(n - 1);
  const sluice::router::Route* route = vhost->match(req);
  if (route == nullptr || route->name() != want) {
    state.SkipWithError("the request does not match the last route");
    return;
  }
  for (auto _ : state) {
    route = vhost->match(req);
    benchmark::DoNotOptimize(route);
  }
  state.counters["ns_per_route"] = benchmark::Counter(
      static_cast<double>(n) * static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
#define ROUTE_SIZES ArgName("routes")->RangeMultiplier(10)->Range(10, 10000)
BENCHMARK_CAPTURE(BM_RouteMatchLast, prefix, kPrefix)->ROUTE_SIZES;
BENCHMARK_CAPTURE(BM_RouteMatchLast, exact, kExact)->ROUTE_SIZES;
BENCHMARK_CAPTURE(BM_RouteMatchLast, regex, kRegex)->ROUTE_SIZES;
BENCHMARK_CAPTURE(BM_RouteMatchLast, mix, kMix)->ROUTE_SIZES;
#undef ROUTE_SIZES

// The first route matches: the best case, and what a short config with a hot route costs.
void BM_RouteMatchFirst(benchmark::State& state) {
  RouteFixture& f = route_fixture(static_cast<size_t>(state.range(0)), kMix);
  const auto* vhost = f.table->find_virtual_host("app.example.com");
  RequestView req{"GET", "app.example.com", "/svc/0/item/42", "", typical_headers()};
  if (vhost->match(req) == nullptr) {
    state.SkipWithError("no match");
    return;
  }
  for (auto _ : state) benchmark::DoNotOptimize(vhost->match(req));
}
BENCHMARK(BM_RouteMatchFirst)->ArgName("routes")->Arg(1000);

// ---------------------------------------------------------------------------------------------
// Virtual host lookup with N virtual hosts, each with an exact and a "*.domain" wildcard name
// (zero-padded so every wildcard has the same length and the last one listed is found last).

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
           "\"]\n        routes:\n          - match: { prefix: / }\n            cluster: backend\n";
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
// default:  no domain matches, falls through to "*" after trying every wildcard
void BM_VhostLookup(benchmark::State& state, int mode) {
  const size_t n = static_cast<size_t>(state.range(0));
  VhostFixture& f = vhost_fixture(n);
  std::string host;
  std::string want;
  switch (mode) {
    case 0: host = vhost_name(n - 1) + ":10000"; want = "v" + std::to_string(n - 1); break;
    case 1: host = "api." + vhost_name(n - 1); want = "v" + std::to_string(n - 1); break;
    default: host = "unknown.example.org"; want = "fallback"; break;
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
BENCHMARK_CAPTURE(BM_VhostLookup, default, 2)->VHOST_SIZES;
#undef VHOST_SIZES

// ---------------------------------------------------------------------------------------------
// Parsing a typical request head: 8 headers, 400 bytes or so, on a reused keep-alive parser,
// exactly as DownstreamConnection drives it (execute to the end of the head, then an empty
// execute to step over the end of a body-less message).

const std::string& typical_request() {
  static const std::string head =
      "GET /api/v1/users/12345/orders?page=2&sort=desc HTTP/1.1\r\n"
      "Host: app.example.com\r\n"
      "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n"
      "Accept: application/json, text/plain, */*\r\n"
      "Accept-Encoding: gzip, deflate, br\r\n"
      "Accept-Language: en-GB,en;q=0.7\r\n"
      "Cookie: session=3f1c2a9b7d6e5f40a1b2c3d4; theme=dark\r\n"
      "X-Request-Id: d3e47ff0-ddd9-454f-a1f5-b2553a7320a6\r\n"
      "Connection: keep-alive\r\n"
      "\r\n";
  return head;
}

void BM_ParseRequestHead(benchmark::State& state) {
  const std::string& head = typical_request();
  sluice::http::Parser parser(sluice::http::Parser::Kind::kRequest, 100);
  for (auto _ : state) {
    auto step = parser.execute(head.data(), 0, head.size());
    if (!step.headers_complete || step.consumed != head.size()) {
      state.SkipWithError("head not parsed");
      break;
    }
    step = parser.execute(head.data(), head.size(), head.size());
    if (!step.message_complete) {
      state.SkipWithError("message not complete");
      break;
    }
    benchmark::DoNotOptimize(parser.headers().data());
  }
  if (parser.headers().size() != 8) state.SkipWithError("expected 8 headers");
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * head.size()));
  state.SetLabel(std::to_string(head.size()) + " bytes, 8 headers");
}
BENCHMARK(BM_ParseRequestHead);

// ---------------------------------------------------------------------------------------------
// Stats cells: one writer per cell (its worker), relaxed load + store, no locked instruction.

void BM_StatsCounterAdd(benchmark::State& state) {
  sluice::stats::Counter c;
  for (auto _ : state) c.add();
  benchmark::DoNotOptimize(c.value());
}
BENCHMARK(BM_StatsCounterAdd);

void BM_StatsHistogramObserve(benchmark::State& state) {
  sluice::stats::Histogram h;
  // A spread of latencies across the buckets, so the branch predictor cannot learn one bucket.
  const double samples[8] = {0.0003, 0.0012, 0.004, 0.02, 0.0007, 0.15, 0.002, 1.7};
  size_t i = 0;
  for (auto _ : state) {
    h.observe_seconds(samples[i++ & 7]);
  }
  benchmark::DoNotOptimize(h.count());
}
BENCHMARK(BM_StatsHistogramObserve);

// ---------------------------------------------------------------------------------------------
// Snapshot swap. The worker's WorkerView is internal to server::Worker, so these measure the
// parts a swap and a request are made of:
//  - SnapshotCopy: copying shared_ptr<const Snapshot> (what a request does when it is routed:
//    one atomic increment and, when the copy dies, one decrement);
//  - SnapshotAtomicLoad: std::atomic_load of a shared_ptr shared with another thread (what a
//    lock-free "read the current snapshot" costs in libstdc++, which guards it with a spinlock
//    pool), for comparison with posting the pointer to each worker;
//  - RoutingBuild: Routing::build for a 100-route config (routes compiled, RE2 included), which
//    the control thread does once per reload; RoutingBuildConfigCopy is the config copy that
//    RoutingBuild's timing includes, to subtract.

// libstdc++ skips the atomic instructions of shared_ptr reference counts while glibc reports the
// process as single-threaded (__libc_single_threaded), which a lone benchmark thread is and Sluice
// never is. Starting one thread clears that flag for good, so the copies below pay what a worker
// pays.
void become_multithreaded() {
  static const bool once = [] {
    std::thread([] {}).join();
    return true;
  }();
  (void)once;
}

sluice::server::SnapshotPtr make_snapshot(size_t routes) {
  become_multithreaded();
  auto s = std::make_shared<sluice::server::Snapshot>();
  s->version = 1;
  s->routing = sluice::server::Routing::build(load_or_die(routes_config(routes, kMix), "snap.yaml"));
  return s;
}

void BM_SnapshotCopy(benchmark::State& state) {
  const sluice::server::SnapshotPtr current = make_snapshot(100);
  for (auto _ : state) {
    sluice::server::SnapshotPtr mine = current;
    benchmark::DoNotOptimize(mine.get());
  }
}
BENCHMARK(BM_SnapshotCopy);

void BM_SnapshotAtomicLoad(benchmark::State& state) {
  static sluice::server::SnapshotPtr current = make_snapshot(100);
  for (auto _ : state) {
    sluice::server::SnapshotPtr mine = std::atomic_load(&current);
    benchmark::DoNotOptimize(mine.get());
  }
}
BENCHMARK(BM_SnapshotAtomicLoad);

void BM_RoutingBuild(benchmark::State& state) {
  const Config config = load_or_die(routes_config(static_cast<size_t>(state.range(0)), kMix), "r.yaml");
  for (auto _ : state) {
    auto routing = sluice::server::Routing::build(config);
    benchmark::DoNotOptimize(routing.get());
  }
}
BENCHMARK(BM_RoutingBuild)->ArgName("routes")->Arg(100)->Unit(benchmark::kMicrosecond);

void BM_RoutingBuildConfigCopy(benchmark::State& state) {
  const Config config = load_or_die(routes_config(static_cast<size_t>(state.range(0)), kMix), "r.yaml");
  for (auto _ : state) {
    Config copy = config;
    benchmark::DoNotOptimize(copy.listeners.data());
  }
}
BENCHMARK(BM_RoutingBuildConfigCopy)->ArgName("routes")->Arg(100)->Unit(benchmark::kMicrosecond);

}  // namespace
