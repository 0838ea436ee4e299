// SIGHUP reloads (Server::reload): a request in flight finishes on the snapshot it started with,
// new requests see the new configuration whole, and an old snapshot dies with its last request
// (rule 3), so reloads do not accumulate snapshots.
#include <fmt/core.h>
#include <gtest/gtest.h>

#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <future>
#include <memory>
#include <mutex>
#include <thread>

#include "support/http_client.h"
#include "support/proxy_harness.h"
#include "support/test_upstream.h"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;

// A configuration whose /probe route answers `tag` itself and whose other paths go upstream.
ProxyConfig tagged(uint16_t upstream_port, const std::string& tag) {
  ProxyConfig c = to_port(upstream_port);
  c.routes = {fmt::format("{{name: probe, match: {{path: /probe}}, direct_response: {{status: 200, "
                          "body: {}}}}}",
                          tag),
              "{name: all, match: {prefix: /}, cluster: backend}"};
  return c;
}

class ConfigFile {
 public:
  ConfigFile() {
    char name[] = "/tmp/sluice-reload-test-XXXXXX";
    int fd = ::mkstemp(name);
    EXPECT_GE(fd, 0);
    ::close(fd);
    path_ = name;
  }
  ~ConfigFile() { std::remove(path_.c_str()); }
  const std::string& write(const std::string& yaml) {
    std::ofstream(path_, std::ios::trunc) << yaml;
    return path_;
  }

 private:
  std::string path_;
};

// Polls `done` for up to 10 s: a bound on a hang, not a speed assertion.
template <typename F>
bool eventually(F&& done) {
  for (auto end = std::chrono::steady_clock::now() + 10s; std::chrono::steady_clock::now() < end;) {
    if (done()) return true;
    std::this_thread::sleep_for(2ms);
  }
  return done();
}

std::string probe(uint16_t port) {
  HttpConnection c(port);
  HttpResponse r = c.request("GET", "/probe", {{"connection", "close"}});
  return r.ok() ? r.body : "error: " + r.error;
}

// Holds each upstream request until released.
class Gate {
 public:
  void wait() {
    std::unique_lock lock(mu_);
    ++waiting_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return open_; });
  }
  void open() {
    std::lock_guard lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  bool someone_waiting() {
    std::lock_guard lock(mu_);
    return waiting_ > 0;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
  int waiting_ = 0;
};

TEST(Reload, ARequestInFlightKeepsItsSnapshotWhichDiesWhenItEnds) {
  Gate gate;
  TestUpstream upstream([&](UpstreamExchange& ex) {
    gate.wait();
    ex.respond(200, "slow");
  });
  ASSERT_TRUE(upstream.listening());
  ConfigFile file;
  auto proxy = RunningProxy::start(make_yaml(tagged(upstream.port(), "v1")));
  ASSERT_TRUE(proxy);
  EXPECT_EQ(probe(proxy->port()), "v1");
  std::weak_ptr<const server::Snapshot> first = proxy->server().snapshot();

  auto slow = std::async(std::launch::async, [&] {
    HttpConnection c(proxy->port());
    return c.request("GET", "/slow", {{"connection", "close"}});
  });
  ASSERT_TRUE(eventually([&] { return gate.someone_waiting(); }));

  auto reloaded = proxy->server().reload(file.write(make_yaml(tagged(upstream.port(), "v2"))));
  ASSERT_TRUE(reloaded) << reloaded.error().message;
  ASSERT_TRUE(eventually([&] { return probe(proxy->port()) == "v2"; }));
  // One worker: once it answers with the new configuration, it never answers with the old one.
  for (int i = 0; i < 20; ++i) EXPECT_EQ(probe(proxy->port()), "v2");
  // Only the request in flight still holds the first snapshot.
  EXPECT_FALSE(first.expired()) << "the snapshot of a request in flight died before the request";

  gate.open();
  HttpResponse r = slow.get();
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.body, "slow");
  EXPECT_TRUE(eventually([&] { return first.expired(); }))
      << "the first snapshot outlived its last request: " << first.use_count() << " owner(s) left";
}

TEST(Reload, ReloadsDoNotAccumulateSnapshots) {
  TestUpstream upstream(TestUpstream::ok_handler());
  ASSERT_TRUE(upstream.listening());
  ConfigFile file;
  ProxyConfig config = tagged(upstream.port(), "v0");
  config.workers = 2;
  auto proxy = RunningProxy::start(make_yaml(config));
  ASSERT_TRUE(proxy);
  std::vector<std::weak_ptr<const server::Snapshot>> old;
  for (int i = 1; i <= 5; ++i) {
    old.push_back(proxy->server().snapshot());
    // Requests between reloads, on connections that stay open across the next reload.
    HttpConnection keep(proxy->port());
    EXPECT_EQ(keep.request("GET", "/x").status, 200);
    config = tagged(upstream.port(), fmt::format("v{}", i));
    config.workers = 2;
    auto reloaded = proxy->server().reload(file.write(make_yaml(config)));
    ASSERT_TRUE(reloaded) << reloaded.error().message;
    EXPECT_EQ(keep.request("GET", "/probe").body, fmt::format("v{}", i))
        << "a keep-alive connection's next request after a reload sees the new configuration";
  }
  for (size_t i = 0; i < old.size(); ++i) {
    EXPECT_TRUE(eventually([&] { return old[i].expired(); }))
        << "snapshot " << i + 1 << " is still alive after " << old.size() - i << " reload(s)";
  }
  EXPECT_EQ(proxy->server().snapshot()->version, 6u);
}

}  // namespace
}  // namespace sluice::testing
