#include "sluice/stats/exposition.h"

#include <gtest/gtest.h>

#include <sstream>

namespace sluice::stats {
namespace {

std::vector<std::string> lines_with(const std::string& text, std::string_view needle) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.find(needle) != std::string::npos) out.push_back(line);
  }
  return out;
}

TEST(Histogram, ObservationsLandInTheFirstBucketWhoseBoundIsNotBelowThem) {
  Histogram h;
  h.observe_seconds(0.0001);  // below the first bound
  h.observe_seconds(0.0005);  // exactly on the first bound: le="0.0005" includes it
  h.observe_seconds(0.3);     // between 0.25 and 0.5
  h.observe_seconds(120);     // above 60 s: only +Inf
  EXPECT_EQ(h.bucket(0), 2u);
  EXPECT_EQ(h.bucket(9), 1u);  // kLatencyBuckets[9] == 0.5
  EXPECT_EQ(h.bucket(Histogram::kBuckets - 1), 1u);
  EXPECT_EQ(h.count(), 4u);
  EXPECT_NEAR(h.sum_seconds(), 120.3006, 1e-6);
}

TEST(MergedStats, SumsEveryShard) {
  Shard a, b;
  RouteKey key{"public", "app", "api"};
  a.route(key)->requests[1].add(3);
  b.route(key)->requests[1].add(4);
  b.route(key)->requests[4].add();
  a.route(key)->duration.observe_seconds(0.002);
  b.route(key)->duration.observe_seconds(0.002);
  a.cluster("jetty")->connections_active.add(2);
  b.cluster("jetty")->connections_active.add(-1);
  b.listener("public")->requests_total.add(9);
  std::vector<const Shard*> shards{&a, &b};
  MergedStats m = MergedStats::collect(shards);
  ASSERT_EQ(m.routes.size(), 1u);
  EXPECT_EQ(m.routes.at(key).requests[1], 7u);
  EXPECT_EQ(m.routes.at(key).requests[4], 1u);
  EXPECT_EQ(m.routes.at(key).duration.count, 2u);
  EXPECT_EQ(m.clusters.at("jetty").connections_active, 1);
  EXPECT_EQ(m.listeners.at("public").requests_total, 9u);
}

// Workers cache the cells a snapshot's routes get and look them up again after a reload: the
// same names must give the same cell however many routes were added since (the map rehashes),
// names differing in any one part a different cell, and exposition lists them in name order.
TEST(Shard, RouteCellsAreFoundByNamesAndStayPut) {
  Shard s;
  RouteStats* first = s.route({"l", "v", "r0"});
  first->requests[1].add();
  for (int i = 1; i < 5000; ++i) s.route({"l", "v", "r" + std::to_string(i)});
  EXPECT_EQ(s.route({"l", "v", "r0"}), first);
  EXPECT_EQ(s.route({"l", "v", "r0"})->requests[1].value(), 1u);
  EXPECT_NE(s.route({"l", "w", "r0"}), first);
  EXPECT_NE(s.route({"m", "v", "r0"}), first);
  EXPECT_NE(s.route({"l", "vr", "0"}), first);
  std::vector<const Shard*> shards{&s};
  MergedStats m = MergedStats::collect(shards);
  EXPECT_EQ(m.routes.size(), 5003u);
  EXPECT_EQ(m.routes.begin()->first, (RouteKey{"l", "v", "r0"}));
}

TEST(Exposition, HistogramBucketsAreCumulativeAndEndWithCount) {
  Shard s;
  RouteKey key{"public", "app", "api"};
  for (double v : {0.0004, 0.003, 0.003, 0.7, 90.0}) s.route(key)->duration.observe_seconds(v);
  std::vector<const Shard*> shards{&s};
  std::string text = render_prometheus(MergedStats::collect(shards), ServerValues{});
  auto buckets = lines_with(text, "sluice_route_request_duration_seconds_bucket{");
  ASSERT_EQ(buckets.size(), Histogram::kBuckets);
  uint64_t previous = 0;
  for (const auto& line : buckets) {
    uint64_t v = std::stoull(line.substr(line.rfind(' ') + 1));
    EXPECT_GE(v, previous) << line;
    previous = v;
  }
  EXPECT_NE(buckets.front().find("le=\"0.0005\"} 1"), std::string::npos) << buckets.front();
  EXPECT_NE(buckets[3].find("le=\"0.005\"} 3"), std::string::npos) << buckets[3];
  EXPECT_NE(buckets.back().find("le=\"+Inf\"} 5"), std::string::npos) << buckets.back();
  auto count = lines_with(text, "sluice_route_request_duration_seconds_count{");
  ASSERT_EQ(count.size(), 1u);
  EXPECT_EQ(count[0], "sluice_route_request_duration_seconds_count{listener=\"public\",vhost=\"app\",route=\"api\"} 5");
  auto sum = lines_with(text, "sluice_route_request_duration_seconds_sum{");
  ASSERT_EQ(sum.size(), 1u);
  EXPECT_NEAR(std::stod(sum[0].substr(sum[0].rfind(' ') + 1)), 90.7064, 1e-6);
}

TEST(Exposition, EachFamilyHasOneHelpAndOneTypeLine) {
  Shard s;
  s.route({"l", "v", "r"})->requests[1].add();
  s.cluster("c")->connect_failures.add();
  std::vector<const Shard*> shards{&s};
  std::string text = render_prometheus(MergedStats::collect(shards), ServerValues{});
  EXPECT_EQ(lines_with(text, "# TYPE sluice_route_requests_total counter").size(), 1u);
  EXPECT_EQ(lines_with(text, "# HELP sluice_route_requests_total ").size(), 1u);
  EXPECT_EQ(lines_with(text, "# TYPE sluice_route_request_duration_seconds histogram").size(), 1u);
  EXPECT_EQ(lines_with(text, "# TYPE sluice_server_reloads_total counter").size(), 1u);
  // Every code class is present, also those still at zero, so rate() never starts from nothing.
  EXPECT_EQ(lines_with(text, "sluice_route_requests_total{listener=\"l\",vhost=\"v\",route=\"r\",code_class=").size(), 5u);
  EXPECT_EQ(lines_with(text, "sluice_cluster_connect_failures_total{cluster=\"c\"} 1").size(), 1u);
}

// gRPC counts by grpc_code: summed over workers; a route shows all 17 codes (0 included) once it
// has seen a gRPC exchange, and none before (a plain HTTP route gets no idle gRPC series).
TEST(Exposition, GrpcResponsesByCodeOnRoutesThatSawGrpc) {
  Shard a, b;
  RouteKey grpc{"l", "v", "rpc"};
  a.route(grpc)->grpc[0].add(2);
  b.route(grpc)->grpc[0].add();
  b.route(grpc)->grpc[14].add(4);
  a.route({"l", "v", "web"})->requests[1].add();
  std::vector<const Shard*> shards{&a, &b};
  const MergedStats m = MergedStats::collect(shards);
  std::string text = render_prometheus(m, ServerValues{});
  EXPECT_EQ(lines_with(text, "# TYPE sluice_route_grpc_responses_total counter").size(), 1u);
  EXPECT_EQ(lines_with(text, "sluice_route_grpc_responses_total{").size(), 17u) << text;
  const std::string labels =
      "sluice_route_grpc_responses_total{listener=\"l\",vhost=\"v\",route=\"rpc\",";
  EXPECT_EQ(lines_with(text, labels + "grpc_code=\"OK\"} 3").size(), 1u) << text;
  EXPECT_EQ(lines_with(text, labels + "grpc_code=\"UNAVAILABLE\"} 4").size(), 1u) << text;
  EXPECT_EQ(lines_with(text, labels + "grpc_code=\"UNAUTHENTICATED\"} 0").size(), 1u) << text;
  EXPECT_EQ(lines_with(text, "route=\"web\",grpc_code=").size(), 0u) << text;
  const std::string plain = render_text(m, ServerValues{});
  EXPECT_EQ(lines_with(plain, "route.l.v.rpc.grpc.UNAVAILABLE: 4").size(), 1u) << plain;
  EXPECT_EQ(lines_with(plain, ".grpc.DATA_LOSS").size(), 0u) << plain;
  // JSON: the gRPC route carries all 17 codes in order, the plain route none.
  const std::string json = render_json(m, ServerValues{});
  const size_t rpc = json.find("\"route\":\"rpc\"");
  const size_t web = json.find("\"route\":\"web\"");
  ASSERT_NE(rpc, std::string::npos) << json;
  ASSERT_NE(web, std::string::npos) << json;
  const size_t codes = json.find("\"grpc\":{\"OK\":3,\"CANCELLED\":0,", rpc);
  ASSERT_NE(codes, std::string::npos) << json;
  EXPECT_NE(json.find("\"UNAVAILABLE\":4,\"DATA_LOSS\":0,\"UNAUTHENTICATED\":0}}", codes),
            std::string::npos) << json;
  EXPECT_EQ(json.find("\"grpc\"", codes + 1), std::string::npos) << json;
}

TEST(Exposition, LabelValuesAreEscaped) {
  EXPECT_EQ(escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  Shard s;
  s.route({"pub\"lic", "v\\h", "line\nbreak"})->requests[1].add();
  std::vector<const Shard*> shards{&s};
  std::string text = render_prometheus(MergedStats::collect(shards), ServerValues{});
  EXPECT_EQ(lines_with(text, "listener=\"pub\\\"lic\",vhost=\"v\\\\h\",route=\"line\\nbreak\",code_class=\"2xx\"} 1").size(), 1u)
      << text;
}

TEST(Exposition, ServerValuesAppear) {
  ServerValues v;
  v.workers = 3;
  v.reloads_success = 4;
  v.reloads_failed = 2;
  v.config_version = 5;
  v.config_sha256 = "abc";
  v.cluster_endpoints["jetty"] = {2, 1};
  v.access_log_dropped_lines = 7;
  std::string text = render_prometheus(MergedStats{}, v);
  EXPECT_EQ(lines_with(text, "sluice_server_workers 3").size(), 1u);
  EXPECT_EQ(lines_with(text, "sluice_server_reloads_total{result=\"success\"} 4").size(), 1u);
  EXPECT_EQ(lines_with(text, "sluice_server_reloads_total{result=\"failed\"} 2").size(), 1u);
  EXPECT_EQ(lines_with(text, "sluice_server_config_info{version=\"5\",sha256=\"abc\"} 1").size(), 1u);
  EXPECT_EQ(lines_with(text, "sluice_cluster_endpoints{cluster=\"jetty\",state=\"healthy\"} 2").size(), 1u);
  EXPECT_EQ(lines_with(text, "sluice_cluster_endpoints{cluster=\"jetty\",state=\"unhealthy\"} 1").size(), 1u);
  EXPECT_EQ(lines_with(text, "# TYPE sluice_access_log_dropped_lines_total counter").size(), 1u);
  EXPECT_EQ(lines_with(text, "sluice_access_log_dropped_lines_total 7").size(), 1u);
  EXPECT_EQ(lines_with(render_text(MergedStats{}, v), "server.access_log_dropped_lines: 7").size(), 1u);
  EXPECT_NE(render_json(MergedStats{}, v).find("\"access_log_dropped_lines\":7"), std::string::npos);
}

// TLS families: only for the TLS listeners named in ServerValues, summed over shards, every
// failure reason but `none`, every version and cipher present at 0; expiry per certificate.
TEST(Exposition, TlsFamiliesForTlsListenersOnly) {
  Shard a, b;
  a.listener("https")->tls.handshakes.add(3);
  b.listener("https")->tls.handshakes.add(2);
  b.listener("https")->tls.resumptions.add();
  a.listener("https")->tls.failures[static_cast<size_t>(net::TlsFailure::kUnknownCa)].add(2);
  b.listener("https")->tls.versions[1].add(5);
  a.listener("https")->tls.ciphers[0].add(5);
  a.listener("plain")->requests_total.add();
  std::vector<const Shard*> shards{&a, &b};
  ServerValues v;
  v.tls_listeners = {"https", "idle"};  // "idle": TLS, no connection yet
  v.certificates.push_back({false, "https", "/tls/a.pem", 1800000000});
  v.certificates.push_back({true, "pay", "/tls/c\"1.pem", 1700000000});
  v.tls_reload_failures = 4;
  std::string text = render_prometheus(MergedStats::collect(shards), v);
  EXPECT_EQ(lines_with(text, "sluice_tls_handshakes_total{listener=\"https\"} 5").size(), 1u);
  EXPECT_EQ(lines_with(text, "sluice_tls_handshakes_total{listener=\"idle\"} 0").size(), 1u);
  ASSERT_FALSE(lines_with(text, "listener=\"plain\"").empty());  // its listener families
  for (const auto& line : lines_with(text, "listener=\"plain\"")) {
    EXPECT_EQ(line.find("sluice_tls_"), std::string::npos) << line;
  }
  EXPECT_EQ(lines_with(text, "sluice_tls_resumed_handshakes_total{listener=\"https\"} 1").size(),
            1u);
  EXPECT_EQ(
      lines_with(text,
                 "sluice_tls_handshake_failures_total{listener=\"https\",reason=\"unknown_ca\"} 2")
          .size(),
      1u);
  EXPECT_EQ(
      lines_with(text,
                 "sluice_tls_handshake_failures_total{listener=\"https\",reason=\"timeout\"} 0")
          .size(),
      1u);
  EXPECT_TRUE(lines_with(text, "reason=\"none\"").empty());
  EXPECT_EQ(lines_with(text, "sluice_tls_handshake_failures_total{").size(),
            2 * (net::kTlsFailureCount - 1));
  EXPECT_EQ(
      lines_with(text,
                 "sluice_tls_handshakes_by_version_total{listener=\"https\",version=\"TLSv1.3\"} 5")
          .size(),
      1u);
  EXPECT_EQ(
      lines_with(text,
                 "sluice_tls_handshakes_by_version_total{listener=\"https\",version=\"TLSv1.2\"} 0")
          .size(),
      1u);
  EXPECT_EQ(lines_with(text,
                       "sluice_tls_handshakes_by_cipher_total{listener=\"https\",cipher=\"TLS_AES_"
                       "128_GCM_SHA256\"} 5")
                .size(),
            1u);
  EXPECT_EQ(lines_with(text, "sluice_tls_handshakes_by_cipher_total{").size(),
            2 * net::kTlsCipherNames.size());
  EXPECT_EQ(lines_with(text,
                       "sluice_tls_certificate_expiry_timestamp_seconds{listener=\"https\","
                       "certificate=\"/tls/a.pem\"} 1800000000")
                .size(),
            1u);
  EXPECT_EQ(lines_with(text,
                       "sluice_tls_certificate_expiry_timestamp_seconds{cluster=\"pay\","
                       "certificate=\"/tls/c\\\"1.pem\"} 1700000000")
                .size(),
            1u);
  EXPECT_EQ(lines_with(text, "sluice_tls_reload_failures_total 4").size(), 1u);
}

TEST(Exposition, JsonEscapesControlCharacters) {
  EXPECT_EQ(escape_json("a\"b\\c\n\x01"), "a\\\"b\\\\c\\n\\u0001");
}

}  // namespace
}  // namespace sluice::stats
