// 3. Large bodies stream through the proxy with bounded memory: 1 GiB each way (256 MiB in
// sanitizer builds), checked byte for byte by checksum, while VmRSS of the whole test process
// (proxy, origin and client together) is sampled.
#include <fmt/core.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include "support/http_client.h"
#include "support/proxy_harness.h"
#include "support/stream_data.h"
#include "support/test_upstream.h"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;

constexpr uint64_t kMiB = 1024 * 1024;
constexpr uint64_t kMaxRssGrowth = 64 * kMiB;
constexpr milliseconds kTransferTimeout{100000};

uint64_t transfer_size() { return sanitized_build() ? 256 * kMiB : 1024 * kMiB; }

// Samples VmRSS every 10 ms until destroyed; reports the peak.
class RssSampler {
 public:
  RssSampler() : baseline_(current_rss_bytes()), peak_(baseline_) {
    thread_ = std::thread([this] {
      while (!done_) {
        uint64_t now = current_rss_bytes();
        uint64_t peak = peak_.load();
        while (now > peak && !peak_.compare_exchange_weak(peak, now)) {
        }
        std::this_thread::sleep_for(10ms);
      }
    });
  }
  ~RssSampler() { finish(); }
  void finish() {
    done_ = true;
    if (thread_.joinable()) thread_.join();
    uint64_t now = current_rss_bytes();
    peak_ = std::max(peak_.load(), now);
  }
  uint64_t baseline() const { return baseline_; }
  uint64_t growth() const { return peak_ > baseline_ ? peak_ - baseline_ : 0; }

 private:
  uint64_t baseline_;
  std::atomic<uint64_t> peak_;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

std::string mib(uint64_t bytes) { return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / kMiB); }

TEST(LargeBody, DownloadStreamsWithBoundedMemory) {
  const uint64_t size = transfer_size();
  TestUpstream upstream([&](UpstreamExchange& ex) {
    if (ex.request().target == "/warmup") {
      ex.respond(200, "warm");
    } else {
      ex.respond_generated(size, /*chunked=*/false);
    }
  });
  auto proxy = RunningProxy::start(ProxyConfig{.endpoint_ports = {upstream.port()}});
  ASSERT_TRUE(proxy);

  HttpConnection client(proxy->port());
  HttpResponse warm = client.request("GET", "/warmup");  // buffers and pools exist before measuring
  ASSERT_TRUE(warm.ok()) << warm.error;

  RssSampler rss;
  auto start = Clock::now();
  ASSERT_TRUE(client.send(build_request("GET", "/big")));
  HttpResponse r = client.read_response({.store_body = false, .timeout = kTransferTimeout});
  rss.finish();
  auto seconds = std::chrono::duration<double>(Clock::now() - start).count();
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("content-length"), std::to_string(size));
  EXPECT_EQ(r.body_bytes, size);
  auto requests = upstream.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[1].response_body_bytes, size);
  EXPECT_EQ(r.body_checksum, requests[1].response_body_checksum);
  EXPECT_LT(rss.growth(), kMaxRssGrowth) << "VmRSS grew from " << mib(rss.baseline()) << " by "
                                         << mib(rss.growth());
  std::printf("[   info   ] download %s in %.2f s, VmRSS growth %s\n", mib(size).c_str(), seconds,
              mib(rss.growth()).c_str());
}

TEST(LargeBody, UploadStreamsWithBoundedMemory) {
  const uint64_t size = transfer_size();
  TestUpstream upstream([](UpstreamExchange& ex) {
    ex.respond(200, fmt::format("{} {:x}", ex.request().body_bytes, ex.request().body_checksum));
  });
  auto proxy = RunningProxy::start(ProxyConfig{.endpoint_ports = {upstream.port()}});
  ASSERT_TRUE(proxy);

  HttpConnection client(proxy->port());
  HttpResponse warm = client.request("POST", "/warmup", {}, "warm");
  ASSERT_TRUE(warm.ok()) << warm.error;

  RssSampler rss;
  auto start = Clock::now();
  ASSERT_TRUE(client.send(build_request("POST", "/big", {{"Content-Length", std::to_string(size)}})));
  Checksum sent;
  ASSERT_TRUE(client.send_generated(size, sent, kTransferTimeout));
  HttpResponse r = client.read_response({.timeout = kTransferTimeout});
  rss.finish();
  auto seconds = std::chrono::duration<double>(Clock::now() - start).count();
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, fmt::format("{} {:x}", size, sent.value()));
  auto requests = upstream.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[1].content_length, size);
  EXPECT_EQ(requests[1].body_bytes, size);
  EXPECT_EQ(requests[1].body_checksum, sent.value());
  EXPECT_LT(rss.growth(), kMaxRssGrowth) << "VmRSS grew from " << mib(rss.baseline()) << " by "
                                         << mib(rss.growth());
  std::printf("[   info   ] upload %s in %.2f s, VmRSS growth %s\n", mib(size).c_str(), seconds,
              mib(rss.growth()).c_str());
}

}  // namespace
}  // namespace sluice::testing
