// Micro benchmarks of the request path's building blocks: request head parsing, head building
// (both directions), request ids, stats cells, and the snapshot pointer a request copies.
//   build-*/bench/sluice_bench --benchmark_filter='Parse|Build|RequestId|Stats|Snapshot|Routing'
// (Route matching and virtual host lookup are in route_bench.cc; round-robin and Maglev picks in
// balancer_bench.cc and maglev_bench.cc.)
// bench/README.md says what each benchmark measures and how to read it.
#include <benchmark/benchmark.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "bench_configs.h"
#include "sluice/config/loader.h"
#include "sluice/http/head_builder.h"
#include "sluice/http/parser.h"
#include "sluice/server/snapshot.h"
#include "sluice/stats/metrics.h"

namespace {

using sluice::bench::kMix;
using sluice::bench::load_or_die;
using sluice::bench::routes_config;
using sluice::config::Config;

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
// Building the heads Sluice writes, into reused HeadParts as the request path does: the upstream
// request head of the typical request above (forwarded headers, a generated request id) and a
// downstream response head with five fields.

std::vector<sluice::http::HeaderView> typical_request_fields() {
  return {{"Host", "app.example.com"},
          {"User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"},
          {"Accept", "application/json, text/plain, */*"},
          {"Accept-Encoding", "gzip, deflate, br"},
          {"Accept-Language", "en-GB,en;q=0.7"},
          {"Cookie", "session=3f1c2a9b7d6e5f40a1b2c3d4; theme=dark"},
          {"Connection", "keep-alive"}};
}

void BM_BuildUpstreamRequestHead(benchmark::State& state) {
  const auto fields = typical_request_fields();
  sluice::http::UpstreamRequestInput in;
  in.method = "GET";
  in.path = "/api/v1/users/12345/orders";
  in.query = "page=2&sort=desc";
  in.host = in.original_host = "app.example.com";
  in.client_address = "192.0.2.10";
  in.forwarded_proto = "http";
  in.generated_request_id = "d3e47ff0-ddd9-454f-a1f5-b2553a7320a6";
  in.headers = fields;
  sluice::http::HeadParts parts;
  for (auto _ : state) {
    sluice::http::build_upstream_request_head(in, parts);
    benchmark::DoNotOptimize(parts.suffix.data());
  }
}
BENCHMARK(BM_BuildUpstreamRequestHead);

void BM_BuildDownstreamResponseHead(benchmark::State& state) {
  const std::vector<sluice::http::HeaderView> fields = {{"Server", "Jetty(9.4.50)"},
                                                        {"Date", "Tue, 01 Dec 2026 19:50:00 GMT"},
                                                        {"Content-Type", "application/json"},
                                                        {"Content-Length", "1234"},
                                                        {"Cache-Control", "no-store"}};
  sluice::http::DownstreamResponseInput in;
  in.status = 200;
  in.reason = "OK";
  in.request_id = "d3e47ff0-ddd9-454f-a1f5-b2553a7320a6";
  in.headers = fields;
  sluice::http::HeadParts parts;
  for (auto _ : state) {
    sluice::http::build_downstream_response_head(in, parts);
    benchmark::DoNotOptimize(parts.suffix.data());
  }
}
BENCHMARK(BM_BuildDownstreamResponseHead);

void BM_MakeRequestId(benchmark::State& state) {
  for (auto _ : state) {
    std::string id = sluice::http::make_request_id();
    benchmark::DoNotOptimize(id.data());
  }
}
BENCHMARK(BM_MakeRequestId);

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
