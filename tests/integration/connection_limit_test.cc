// A listener's max_connections: connections over the limit are closed at once and counted;
// the ones within it keep working, and a freed slot is usable again.
#include <fmt/core.h>
#include <gtest/gtest.h>

#include <thread>

#include "sluice/stats/exposition.h"
#include "support/http_client.h"
#include "support/proxy_harness.h"
#include "support/test_upstream.h"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;

uint64_t overflow_count(server::Server& server) {
  auto shards = server.stats_shards();
  auto merged = stats::MergedStats::collect(shards);
  auto it = merged.listeners.find("main");  // the harness names its listener "main"
  return it == merged.listeners.end() ? 0 : it->second.connections_overflow;
}

TEST(ConnectionLimit, ConnectionsOverTheLimitAreClosedAndCounted) {
  TestUpstream upstream(TestUpstream::ok_handler());
  ASSERT_TRUE(upstream.listening());
  ProxyConfig config;
  config.endpoint_ports = {upstream.port()};
  config.workers = 1;
  config.listener_options = "max_connections: 2";
  auto proxy = RunningProxy::start(config);
  ASSERT_TRUE(proxy);

  // Two connections within the limit, each proven open and served by a request.
  HttpConnection first(proxy->port());
  HttpConnection second(proxy->port());
  ASSERT_TRUE(first.connected() && second.connected());
  EXPECT_EQ(first.request("GET", "/a").status, 200);
  EXPECT_EQ(second.request("GET", "/b").status, 200);

  // The third is accepted by the kernel, then closed by Sluice without a response.
  HttpConnection third(proxy->port());
  ASSERT_TRUE(third.connected());
  third.send("GET /c HTTP/1.1\r\nhost: x\r\n\r\n");
  auto closed = third.read_until_close(2000ms);
  EXPECT_EQ(closed.data, "");
  EXPECT_NE(closed.status, IoStatus::kTimeout) << "the connection over the limit stayed open";
  EXPECT_EQ(overflow_count(proxy->server()), 1u);

  // The connections within the limit are unaffected.
  EXPECT_EQ(first.request("GET", "/a2").status, 200);

  // Closing one frees its slot for a new connection.
  second.close();
  std::this_thread::sleep_for(200ms);  // Sluice sees the close on its next read
  HttpConnection fourth(proxy->port());
  ASSERT_TRUE(fourth.connected());
  EXPECT_EQ(fourth.request("GET", "/d").status, 200);
  EXPECT_EQ(overflow_count(proxy->server()), 1u);
}

}  // namespace
}  // namespace sluice::testing
