// The worker's accept loop (accept4, net/accept.h) out of file descriptors: the failed accept
// backs off and retries, and the connection that waited in the kernel's backlog is served once
// descriptors are free again; the peer's address still reaches the backend.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <thread>
#include <vector>

#include "support/http_client.h"
#include "support/proxy_harness.h"
#include "support/test_upstream.h"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;

int highest_open_fd() {
  int highest = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    highest = std::max(highest, std::stoi(entry.path().filename().string()));
  }
  return highest;
}

TEST(AcceptLoop, OutOfDescriptorsBacksOffThenServesTheWaitingConnection) {
  TestUpstream upstream(TestUpstream::ok_handler());
  ASSERT_TRUE(upstream.listening());
  ProxyConfig config;
  config.endpoint_ports = {upstream.port()};
  config.workers = 1;
  auto proxy = RunningProxy::start(config);
  ASSERT_TRUE(proxy);
  // A first request leaves a pooled upstream connection, so the one under test needs no new
  // descriptor upstream.
  HttpConnection warm(proxy->port());
  ASSERT_EQ(warm.request("GET", "/warm").status, 200);
  warm.close();

  // Every descriptor taken (under a lowered limit, so filling it is quick), then one given back
  // for the client's socket: the proxy's accept4 fails with EMFILE.
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved), 0);
  rlimit lowered = saved;
  lowered.rlim_cur = static_cast<rlim_t>(highest_open_fd() + 64);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &lowered), 0);
  std::vector<int> held;
  for (int fd; (fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;) held.push_back(fd);
  ASSERT_EQ(errno, EMFILE);
  ::close(held.back());
  held.pop_back();

  HttpConnection client(proxy->port());
  const bool connected = client.connected();
  const bool sent = connected && client.send("GET /waited HTTP/1.1\r\nhost: x\r\n\r\n");
  std::this_thread::sleep_for(300ms);  // several failed attempts, 50 ms apart

  for (int fd : held) ::close(fd);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &saved), 0);
  ASSERT_TRUE(connected) << "connect errno " << client.connect_errno();
  ASSERT_TRUE(sent);
  HttpResponse r = client.read_response();
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.status, 200);
  const auto requests = upstream.requests();
  ASSERT_FALSE(requests.empty());
  EXPECT_EQ(requests.back().target, "/waited");
  EXPECT_EQ(requests.back().header("x-forwarded-for").value_or(""), "127.0.0.1");

  // And the listener keeps accepting.
  HttpConnection after(proxy->port());
  EXPECT_EQ(after.request("GET", "/after").status, 200);
}

}  // namespace
}  // namespace sluice::testing
