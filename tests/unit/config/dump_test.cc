// /config_dump (config::to_json) shows the header policies, route actions, upgrades, body timeouts
// and circuit breakers, with their defaults, as valid JSON.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "loader_test_util.h"
#include "sluice/config/dump.h"

namespace sluice::config {
namespace {

using nlohmann::json;

json dump_of(const char* yaml) {
  LoadResult r = testing::load_yaml(yaml);
  EXPECT_TRUE(r.ok()) << r.error_text();
  return json::parse(to_json(r.config));  // throws, failing the test, unless it is JSON
}

const char* const kEverything = R"(
listeners:
  - name: l
    address: 127.0.0.1:8000
    request_body_timeout: 5s
    request_body_total_timeout: 1m
    request_headers: { set: { x-client: "%DOWNSTREAM_REMOTE_ADDRESS%" }, remove: [ x-debug ] }
    virtual_hosts:
      - name: v
        domains: ["*"]
        upgrades: [ websocket ]
        response_headers: { add: { Via: "1.1 sluice \"edge\"" } }
        routes:
          - name: ws
            match: { prefix: /ws }
            cluster: c
            upgrades: [ websocket ]
            upgrade_idle_timeout: 10m
          - name: ping
            match: { path: /ping }
            direct_response: { status: 200, body: "pong\n" }
            response_headers: { set: { cache-control: no-store } }
          - name: tls
            match: { prefix: /old/ }
            redirect: { scheme: https, port: 8443, prefix_rewrite: /new/, strip_query: true, code: 308 }
clusters:
  - name: c
    circuit_breakers: { max_connections: 10 }
    endpoints: [ 127.0.0.1:9000 ]
)";

TEST(ConfigDump, ListenerKeys) {
  json l = dump_of(kEverything)["listeners"][0];
  EXPECT_EQ(l["request_body_timeout"], "5000ms");
  EXPECT_EQ(l["request_body_total_timeout"], "60000ms");
  EXPECT_EQ(l["request_headers"],
            json::parse(R"({"set":{"x-client":"%DOWNSTREAM_REMOTE_ADDRESS%"},"add":{},"remove":["x-debug"]})"));
  EXPECT_EQ(l["response_headers"], json::parse(R"({"set":{},"add":{},"remove":[]})"));
}

TEST(ConfigDump, VirtualHostKeys) {
  json v = dump_of(kEverything)["listeners"][0]["virtual_hosts"][0];
  EXPECT_EQ(v["upgrades"], json::parse(R"(["websocket"])"));
  EXPECT_EQ(v["response_headers"]["add"], json::parse(R"({"via":"1.1 sluice \"edge\""})"));
  EXPECT_EQ(v["request_headers"], json::parse(R"({"set":{},"add":{},"remove":[]})"));
}

TEST(ConfigDump, RouteActions) {
  json routes = dump_of(kEverything)["listeners"][0]["virtual_hosts"][0]["routes"];
  json ws = routes[0];
  EXPECT_EQ(ws["action"], "cluster");
  EXPECT_EQ(ws["cluster"], "c");
  EXPECT_TRUE(ws["direct_response"].is_null());
  EXPECT_TRUE(ws["redirect"].is_null());
  EXPECT_EQ(ws["upgrades"], json::parse(R"(["websocket"])"));  // set on the route
  EXPECT_EQ(ws["upgrade_idle_timeout"], "600000ms");

  json ping = routes[1];
  EXPECT_EQ(ping["action"], "direct_response");
  EXPECT_TRUE(ping["cluster"].is_null());
  EXPECT_EQ(ping["direct_response"], json::parse(R"({"status":200,"body":"pong\n","content_type":"text/plain"})"));
  EXPECT_TRUE(ping["upgrades"].is_null());  // unset: the virtual host's
  EXPECT_EQ(ping["response_headers"]["set"], json::parse(R"({"cache-control":"no-store"})"));

  json tls = routes[2];
  EXPECT_EQ(tls["action"], "redirect");
  EXPECT_EQ(tls["redirect"], json::parse(R"({"scheme":"https","host":null,"port":8443,"path":null,
                                             "prefix_rewrite":"/new/","strip_query":true,"code":308})"));
}

TEST(ConfigDump, CircuitBreakers) {
  json c = dump_of(kEverything)["clusters"][0];
  EXPECT_EQ(c["circuit_breakers"], json::parse(R"({"max_connections":10,"max_pending_requests":1024})"));
}

}  // namespace
}  // namespace sluice::config
