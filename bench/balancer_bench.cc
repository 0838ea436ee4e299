// LoadBalancer::pick: the per-request cost of choosing an endpoint, per policy and cluster size.
//
//   ninja -C build sluice_bench && build/sluice_bench --benchmark_filter=BM_Lb
//
// The picks run on one worker thread with that worker's FastRandom, as in
// DownstreamConnection::acquire. The least-request "active requests" callback reads a per-endpoint
// counter through a pointer, like the real one (EndpointPool -> endpoint stats -> requests_active).
#include <benchmark/benchmark.h>

#include <memory>
#include <string>
#include <vector>

#include "sluice/upstream/hash.h"
#include "sluice/upstream/load_balancer.h"

namespace {

using sluice::upstream::ClusterInfo;
using sluice::upstream::ClusterInfoPtr;
using sluice::upstream::EndpointInfo;
using sluice::upstream::FastRandom;
using sluice::upstream::LoadBalancer;
using LbPolicy = sluice::config::Cluster::LbPolicy;

enum Weights : int64_t { kEqual = 0, kUnequal = 1 };

ClusterInfoPtr make_cluster(LbPolicy lb, size_t n, Weights weights) {
  sluice::config::Cluster spec;
  spec.name = "bench";
  spec.lb = lb;
  if (lb == LbPolicy::kMaglev) spec.hash_on.kind = sluice::config::HashOn::Kind::kHeader;
  std::vector<EndpointInfo> eps;
  for (size_t i = 0; i < n; ++i) {
    EndpointInfo e;
    std::string ip = "10.1." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1);
    e.key = ip + ":8080";
    e.address = sluice::tcp::endpoint(sluice::asio::ip::make_address(ip), 8080);
    // Unequal: weights 1..10 repeating, the spread of a typical mixed fleet.
    e.weight = weights == kEqual ? 1 : static_cast<uint32_t>(i % 10 + 1);
    eps.push_back(std::move(e));
  }
  return ClusterInfo::build(spec, std::move(eps));
}

struct Counter {
  uint64_t active = 0;
};

void run_picks(benchmark::State& state, LbPolicy lb, Weights weights) {
  const size_t n = static_cast<size_t>(state.range(0));
  auto cluster = make_cluster(lb, n, weights);
  LoadBalancer balancer(*cluster, nullptr);
  FastRandom rng(42);
  // Per-endpoint in-flight counters behind a pointer each; a small, varied load.
  std::vector<std::unique_ptr<Counter>> counters;
  for (size_t i = 0; i < n; ++i) counters.push_back(std::make_unique<Counter>(Counter{i % 4}));
  auto active = [&](uint32_t i) { return counters[i]->active; };
  for (auto _ : state) {
    size_t p = balancer.pick(*cluster, rng, std::nullopt, active);
    benchmark::DoNotOptimize(p);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_LbRoundRobinEqual(benchmark::State& state) { run_picks(state, LbPolicy::kRoundRobin, kEqual); }
void BM_LbRoundRobinWeighted(benchmark::State& state) {
  run_picks(state, LbPolicy::kRoundRobin, kUnequal);
}
void BM_LbLeastRequestEqual(benchmark::State& state) {
  run_picks(state, LbPolicy::kLeastRequest, kEqual);
}
void BM_LbLeastRequestWeighted(benchmark::State& state) {
  run_picks(state, LbPolicy::kLeastRequest, kUnequal);
}
void BM_LbRandomEqual(benchmark::State& state) { run_picks(state, LbPolicy::kRandom, kEqual); }
void BM_LbRandomWeighted(benchmark::State& state) { run_picks(state, LbPolicy::kRandom, kUnequal); }

BENCHMARK(BM_LbRoundRobinEqual)->ArgName("endpoints")->Arg(10)->Arg(100);
BENCHMARK(BM_LbRoundRobinWeighted)->ArgName("endpoints")->Arg(10)->Arg(100);
BENCHMARK(BM_LbLeastRequestEqual)->ArgName("endpoints")->Arg(10)->Arg(100);
BENCHMARK(BM_LbLeastRequestWeighted)->ArgName("endpoints")->Arg(10)->Arg(100);
BENCHMARK(BM_LbRandomEqual)->ArgName("endpoints")->Arg(10)->Arg(100);
BENCHMARK(BM_LbRandomWeighted)->ArgName("endpoints")->Arg(10)->Arg(100);

// Maglev as the exchange uses it: hash the key (a 16-byte header value), then pick.
void BM_LbMaglevKeyed(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  auto cluster = make_cluster(LbPolicy::kMaglev, n, kEqual);
  LoadBalancer balancer(*cluster, nullptr);
  FastRandom rng(42);
  std::vector<std::string> keys;
  for (int i = 0; i < 1024; ++i) keys.push_back("user-" + std::to_string(1000000000 + i) + "x");
  size_t k = 0;
  auto idle = [](uint32_t) { return uint64_t{0}; };
  for (auto _ : state) {
    uint64_t h = sluice::upstream::hash64(keys[k++ & 1023]);
    size_t p = balancer.pick(*cluster, rng, h, idle);
    benchmark::DoNotOptimize(p);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_LbMaglevKeyed)->ArgName("endpoints")->Arg(10)->Arg(100);

// Building the per-worker balancer on a snapshot swap, carrying state over by key.
void BM_LbRebuildFromPrevious(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  auto cluster = make_cluster(LbPolicy::kRoundRobin, n, kUnequal);
  LoadBalancer previous(*cluster, nullptr);
  for (auto _ : state) {
    LoadBalancer next(*cluster, &previous);
    benchmark::DoNotOptimize(&next);
  }
}
BENCHMARK(BM_LbRebuildFromPrevious)->ArgName("endpoints")->Arg(10)->Arg(100)->Unit(benchmark::kMicrosecond);

}  // namespace
