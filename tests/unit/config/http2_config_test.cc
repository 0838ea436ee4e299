// The HTTP/2 and gRPC keys of issue 11: listener `http2` (h2c and the limits), ALPN `h2`,
// cluster `protocol` and `http2`, route `grpc_timeout_header`, health check `grpc`. Every
// default, accepted values, and refusals with line, column, key path and message.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "loader_test_util.h"
#include "sluice/config/loader.h"

namespace sluice::config {
namespace {

using namespace std::chrono_literals;
using testing::expect_error;
using testing::load_listener;
using testing::load_route;
using testing::only_route;

Listener only_listener(const LoadResult& r) {
  EXPECT_TRUE(r.ok()) << r.error_text();
  if (r.config.listeners.empty()) return Listener{};
  return r.config.listeners[0];
}

// `body`: keys of the one cluster "c" besides its name and endpoints, indented by 4, from line 8.
LoadResult load_cluster(const std::string& body) {
  return testing::load_yaml(testing::kListenerHead +
                            "    virtual_hosts: [ { name: v, domains: [\"*\"], routes: [ { match: { prefix: / }, cluster: c } ] } ]\n"
                            "clusters:\n"
                            "  - name: c\n"
                            "    endpoints: [ 127.0.0.1:9000 ]\n" +
                            testing::without_leading_newline(body));
}

Cluster only_cluster(const LoadResult& r) {
  EXPECT_TRUE(r.ok()) << r.error_text();
  if (r.config.clusters.empty()) return Cluster{};
  return r.config.clusters[0];
}

TEST(Http2Config, ListenerDefaultsServeNoHttp2) {
  const Listener l = only_listener(load_listener(""));
  EXPECT_FALSE(l.serves_http2());
  EXPECT_FALSE(l.http2.prior_knowledge);
  EXPECT_EQ(l.http2.max_concurrent_streams, 100u);
  EXPECT_EQ(l.http2.initial_stream_window, 1024u * 1024);
  EXPECT_EQ(l.http2.initial_connection_window, 4u * 1024 * 1024);
  EXPECT_EQ(l.http2.max_header_list_size, 60u * 1024);
  EXPECT_EQ(l.http2.max_control_frames, 1000u);
  EXPECT_EQ(l.http2.control_frames_per_second, 200u);
  EXPECT_EQ(l.http2.max_empty_data_frames, 100u);
  EXPECT_EQ(l.http2.empty_data_frames_per_second, 10u);
  EXPECT_EQ(l.http2.max_premature_resets, 100u);
  EXPECT_EQ(l.http2.max_oversized_header_blocks, 100u);
}

TEST(Http2Config, PriorKnowledgeAndLimits) {
  const Listener l = only_listener(load_listener(R"(
    http2: { prior_knowledge: true, max_concurrent_streams: 250, initial_stream_window: 256KiB,
             initial_connection_window: 16MiB, max_header_list_size: 32KiB, max_control_frames: 50,
             control_frames_per_second: 5, max_empty_data_frames: 7, empty_data_frames_per_second: 1,
             max_premature_resets: 20, max_oversized_header_blocks: 3 }
)"));
  EXPECT_TRUE(l.serves_http2());
  EXPECT_TRUE(l.http2.prior_knowledge);
  EXPECT_EQ(l.http2.max_concurrent_streams, 250u);
  EXPECT_EQ(l.http2.initial_stream_window, 256u * 1024);
  EXPECT_EQ(l.http2.initial_connection_window, 16u * 1024 * 1024);
  EXPECT_EQ(l.http2.max_header_list_size, 32u * 1024);
  EXPECT_EQ(l.http2.max_control_frames, 50u);
  EXPECT_EQ(l.http2.control_frames_per_second, 5u);
  EXPECT_EQ(l.http2.max_empty_data_frames, 7u);
  EXPECT_EQ(l.http2.empty_data_frames_per_second, 1u);
  EXPECT_EQ(l.http2.max_premature_resets, 20u);
  EXPECT_EQ(l.http2.max_oversized_header_blocks, 3u);
}

TEST(Http2Config, Refusals) {
  expect_error(load_listener("    http2: { max_concurrent_streams: 10 }\n"), 4, 12, "listeners[0].http2",
               "HTTP/2 is not served on this listener: add 'prior_knowledge: true' (h2c)");
  expect_error(load_listener("    http2: { prior_knowledge: true, initial_stream_window: 1000 }\n"), 4, 60,
               "listeners[0].http2.initial_stream_window", "must be at least 65535 (64KiB - 1)");
  expect_error(load_listener("    http2: { prior_knowledge: true, initial_connection_window: 4GiB }\n"), 4, 64,
               "listeners[0].http2.initial_connection_window",
               "4GiB is larger than the maximum 2147483647");
  expect_error(load_listener("    http2: { prior_knowledge: true, max_header_list_size: 100 }\n"), 4, 59,
               "listeners[0].http2.max_header_list_size", "must be at least 1KiB");
  expect_error(load_listener("    http2: { prior_knowledge: true, max_concurrent_streams: 0 }\n"), 4, 61,
               "listeners[0].http2.max_concurrent_streams", "0 is out of range (1-10000)");
  expect_error(load_listener("    http2: { prior_knowledge: true, max_premature_resets: 0 }\n"), 4, 59,
               "listeners[0].http2.max_premature_resets", "0 is out of range (1-1000000)");
  // A refused value leaves HTTP/2 off, which the map then also says.
  testing::expect_errors(load_listener("    http2: { prior_knowledge: yes }\n"),
                         {{4, 31, "listeners[0].http2.prior_knowledge", "expected true or false, got 'yes'"},
                          {4, 12, "listeners[0].http2",
                           "HTTP/2 is not served on this listener: add 'prior_knowledge: true' (h2c)"}});
}

TEST(Http2Config, ClusterProtocolAndHttp2) {
  EXPECT_EQ(only_cluster(load_cluster("")).protocol, Cluster::Protocol::kHttp1);
  const Cluster c = only_cluster(load_cluster(R"(
    protocol: http2
    http2: { max_concurrent_streams: 50, ping_interval: 5s, ping_timeout: 2s, initial_stream_window: 2MiB }
)"));
  EXPECT_EQ(c.protocol, Cluster::Protocol::kHttp2);
  EXPECT_EQ(c.http2.max_concurrent_streams, 50u);
  EXPECT_EQ(c.http2.ping_interval, 5s);
  EXPECT_EQ(c.http2.ping_timeout, 2s);
  EXPECT_EQ(c.http2.initial_stream_window, 2u * 1024 * 1024);
  const Cluster defaults = only_cluster(load_cluster("    protocol: http2\n"));
  EXPECT_EQ(defaults.http2.max_concurrent_streams, 100u);
  EXPECT_EQ(defaults.http2.ping_interval, 30s);
  EXPECT_EQ(defaults.http2.ping_timeout, 10s);

  expect_error(load_cluster("    protocol: h2\n"), 8, 15, "clusters[0].protocol",
               "unknown protocol 'h2' (http1 or http2)");
  expect_error(load_cluster("    http2: { max_concurrent_streams: 5 }\n"), 8, 12, "clusters[0].http2",
               "only used with 'protocol: http2'");
  expect_error(load_cluster("    protocol: http2\n    http2: { ping_timeout: 0 }\n"), 9, 28,
               "clusters[0].http2.ping_timeout", "must be greater than 0");
  // The windows are checked as a listener's are (the same loader function).
  EXPECT_EQ(only_cluster(load_cluster("    protocol: http2\n    http2: { initial_connection_window: 8MiB }\n"))
                .http2.initial_connection_window,
            8u * 1024 * 1024);
  expect_error(load_cluster("    protocol: http2\n    http2: { initial_connection_window: 1KiB }\n"), 9, 41,
               "clusters[0].http2.initial_connection_window", "must be at least 65535 (64KiB - 1)");
  expect_error(load_cluster("    protocol: http2\n    http2: { initial_stream_window: 4GiB }\n"), 9, 37,
               "clusters[0].http2.initial_stream_window", "4GiB is larger than the maximum 2147483647");
}

TEST(Http2Config, GrpcKeys) {
  EXPECT_TRUE(only_route(load_route("            match: { prefix: / }\n            cluster: c\n")).grpc_timeout_header);
  EXPECT_FALSE(only_route(load_route("            match: { prefix: / }\n            cluster: c\n"
                                     "            grpc_timeout_header: false\n"))
                   .grpc_timeout_header);
  const Cluster c = only_cluster(load_cluster(
      "    protocol: http2\n    health_check: { grpc: { service: \"pkg.Svc\" }, interval: 1s }\n"));
  ASSERT_TRUE(c.health_check);
  EXPECT_TRUE(c.health_check->grpc);
  EXPECT_EQ(c.health_check->grpc_service, "pkg.Svc");
  expect_error(load_cluster("    health_check: { grpc: { service: \"\" } }\n"), 8, 27,
               "clusters[0].health_check.grpc", "gRPC health checks need 'protocol: http2' on the cluster");
}

}  // namespace
}  // namespace sluice::config
