// The filter chain's body and trailer hooks and per-worker step state, over real sockets. A
// recording step joins chains through the step registry (filters/registry.h), like any
// compiled-in step without a configuration key.
#include <fmt/core.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <mutex>

#include "sluice/filters/registry.h"
#include "sluice/proxy/exchange.h"
#include "support/http_client.h"
#include "support/proxy_harness.h"
#include "support/test_upstream.h"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;

// What the recording step saw, written on the worker thread and read by the test.
struct Seen {
  std::mutex mu;
  uint64_t request_body_bytes = 0;
  uint64_t response_body_bytes = 0;
  int request_last_parts = 0;   // calls with last = true
  int response_last_parts = 0;
  int resumed = 0;              // pauses the runner resumed
  std::vector<std::string> request_trailers;
  std::vector<std::string> response_trailers;
};

struct RequestCounter : filters::WorkerState {
  int requests = 0;
};

// Counts bodies both ways, adds a trailer each way, refuses a request body containing
// "REJECT", and numbers the requests it saw on its worker in x-worker-count.
class RecordingStep : public filters::Filter {
 public:
  explicit RecordingStep(Seen& seen) : seen_(seen) {}
  std::string_view name() const override { return "recording"; }
  bool wants_body() const override { return true; }
  std::unique_ptr<filters::WorkerState> make_worker_state() const override {
    return std::make_unique<RequestCounter>();
  }
  filters::Status on_request_head(proxy::Exchange& ex) const override {
    auto* counter = ex.step_state<RequestCounter>(*this);
    if (!counter) {
      ex.reply_locally(500, stats::LocalReason::kDirectResponse, "no worker state\n");
      return filters::Status::kLocalReply;
    }
    ex.request.fields.set("x-worker-count", std::to_string(++counter->requests));
    return filters::Status::kContinue;
  }
  filters::Status on_request_body(proxy::Exchange& ex, filters::BodySpans body, bool last) const override {
    if (pause_requested(ex) && last) return filters::Status::kPause;
    std::lock_guard lock(seen_.mu);
    for (const auto& s : body) {
      seen_.request_body_bytes += s.size();
      if (std::string_view(s.data(), s.size()).find("REJECT") != std::string_view::npos) {
        ex.reply_locally(403, stats::LocalReason::kDirectResponse, "refused by a body step\n");
        return filters::Status::kLocalReply;
      }
    }
    if (last) ++seen_.request_last_parts;
    return filters::Status::kContinue;
  }
  filters::Status on_request_trailers(proxy::Exchange& ex) const override {
    std::lock_guard lock(seen_.mu);
    for (const auto& t : ex.request_trailers.items()) seen_.request_trailers.push_back(std::string(t.name));
    ex.request_trailers.add("x-step", "request");
    return filters::Status::kContinue;
  }
  filters::Status on_response_body(proxy::Exchange& ex, filters::BodySpans body, bool last) const override {
    if (pause_requested(ex) && !body.empty()) return filters::Status::kPause;
    if (ex.request.fields.get("x-abort") && !body.empty()) {
      ex.reply_locally(500, stats::LocalReason::kDirectResponse, "too late to answer\n");
      return filters::Status::kLocalReply;
    }
    std::lock_guard lock(seen_.mu);
    for (const auto& s : body) seen_.response_body_bytes += s.size();
    if (last) ++seen_.response_last_parts;
    return filters::Status::kContinue;
  }
  filters::Status on_response_trailers(proxy::Exchange& ex) const override {
    std::lock_guard lock(seen_.mu);
    for (const auto& t : ex.response_trailers.items()) seen_.response_trailers.push_back(std::string(t.name));
    ex.response_trailers.add("x-step", "response");
    return filters::Status::kContinue;
  }
  // A pause: some asynchronous work (here a 20 ms timer), then go on.
  awaitable<filters::Status> resume(proxy::Exchange&) const override {
    asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::milliseconds(20));
    error_code ignored;
    co_await timer.async_wait(asio::redirect_error(use_awaitable, ignored));
    std::lock_guard lock(seen_.mu);
    ++seen_.resumed;
    co_return filters::Status::kContinue;
  }

 private:
  static bool pause_requested(const proxy::Exchange& ex) {
    return ex.request.fields.get("x-pause").has_value();
  }
  Seen& seen_;
};

// Registers the recording step on routes whose name starts with "observed" for one test.
class StepHooks : public ::testing::Test {
 protected:
  void SetUp() override {
    filters::register_step_factory([this](const config::Route& route) -> std::shared_ptr<filters::Filter> {
      if (route.name.rfind("observed", 0) != 0) return nullptr;
      return std::make_shared<RecordingStep>(seen_);
    });
  }
  void TearDown() override { filters::clear_step_factories(); }

  std::string yaml(uint16_t port, std::string_view route_name) {
    ProxyConfig c = to_port(port);
    c.routes = {fmt::format("{{name: {}, match: {{prefix: /}}, cluster: backend, "
                            "response_headers: {{set: {{x-tenant-echo: '%REQ(x-tenant)%'}}}}}}",
                            route_name)};
    return make_yaml(c);
  }

  Seen seen_;
};

TEST_F(StepHooks, BodyAndTrailerHooksSeeBothDirectionsAndMayAddTrailers) {
  TestUpstream upstream([](UpstreamExchange& ex) {
    ex.send("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
            "5\r\nhello\r\n6\r\n world\r\n0\r\nx-checksum: abc\r\n\r\n");
  });
  auto proxy = RunningProxy::start(yaml(upstream.port(), "observed"));
  ASSERT_TRUE(proxy);
  HttpConnection client(proxy->port());
  ASSERT_TRUE(client.send("POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                          "3\r\nabc\r\n4\r\ndefg\r\n0\r\nx-digest: xyz\r\n\r\n"));
  HttpResponse r = client.read_response();
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.body, "hello world");
  EXPECT_EQ(r.trailer_lines, (std::vector<std::string>{"x-checksum: abc", "x-step: response"}));
  ASSERT_EQ(upstream.request_count(), 1u);
  const UpstreamRequest got = upstream.requests()[0];
  EXPECT_EQ(got.body, "abcdefg");
  EXPECT_EQ(got.trailer_lines, (std::vector<std::string>{"x-digest: xyz", "x-step: request"}));
  std::lock_guard lock(seen_.mu);
  EXPECT_EQ(seen_.request_body_bytes, 7u);
  EXPECT_EQ(seen_.response_body_bytes, 11u);
  EXPECT_EQ(seen_.request_last_parts, 1);
  EXPECT_EQ(seen_.response_last_parts, 1);
  EXPECT_EQ(seen_.request_trailers, std::vector<std::string>{"x-digest"});
  EXPECT_EQ(seen_.response_trailers, std::vector<std::string>{"x-checksum"});
}

TEST_F(StepHooks, BodyStepsThatPauseAreResumedAndTheBodiesArriveWhole) {
  TestUpstream upstream([](UpstreamExchange& ex) { ex.respond(200, "echo:" + ex.request().body); });
  auto proxy = RunningProxy::start(yaml(upstream.port(), "observed"));
  ASSERT_TRUE(proxy);
  HttpConnection client(proxy->port());
  HttpResponse r = client.request("POST", "/up", {{"x-pause", "yes"}}, "paused body");
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "echo:paused body");
  ASSERT_EQ(upstream.request_count(), 1u);
  EXPECT_EQ(upstream.requests()[0].body, "paused body");
  std::lock_guard lock(seen_.mu);
  // One pause on the request's last part, one on each non-empty response part.
  EXPECT_GE(seen_.resumed, 2);
}

TEST_F(StepHooks, AResponseBodyStepThatAnswersAbortsTheResponse) {
  TestUpstream upstream([](UpstreamExchange& ex) { ex.respond(200, "a body the step refuses"); });
  auto proxy = RunningProxy::start(yaml(upstream.port(), "observed"));
  ASSERT_TRUE(proxy);
  HttpConnection client(proxy->port());
  ASSERT_TRUE(client.send(build_request("GET", "/", {{"x-abort", "yes"}})));
  // The head was chosen already: no local reply replaces it, the connection just ends.
  auto rest = client.read_until_close(5s);
  EXPECT_EQ(rest.status, IoStatus::kEof);
  EXPECT_EQ(rest.data.find("too late to answer"), std::string::npos) << rest.data;
  EXPECT_EQ(rest.data.find("a body the step refuses"), std::string::npos) << rest.data;
}

TEST_F(StepHooks, ARequestBodyStepCanAnswerLocally) {
  TestUpstream upstream([](UpstreamExchange& ex) { ex.respond(200, "should not be reached"); });
  auto proxy = RunningProxy::start(yaml(upstream.port(), "observed"));
  ASSERT_TRUE(proxy);
  HttpConnection client(proxy->port());
  HttpResponse r = client.request("POST", "/up", {}, "please REJECT this");
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.body, "refused by a body step\n");
  // The connection closes after a refused upload (the rest of the body may still be coming).
  EXPECT_EQ(r.header("connection"), "close");
  EXPECT_EQ(upstream.request_count(), 0u);
}

TEST_F(StepHooks, LargeUploadKeepsTheRequestHeadForResponseSteps) {
  // A body over several reads makes the codec reuse its buffer; %REQ()% in a response step must
  // still read the request's own field afterwards.
  TestUpstream upstream([](UpstreamExchange& ex) { ex.respond(200, std::to_string(ex.request().body_bytes)); });
  auto proxy = RunningProxy::start(yaml(upstream.port(), "plain"));
  ASSERT_TRUE(proxy);
  const std::string body(600 * 1024, 'b');
  HttpConnection client(proxy->port());
  HttpResponse r = client.request("POST", "/up", {{"x-tenant", "acme-corp"}}, body);
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.body, std::to_string(body.size()));
  EXPECT_EQ(r.header("x-tenant-echo"), "acme-corp");
}

TEST_F(StepHooks, PerWorkerStateLastsAcrossRequestsAndReloadsThatKeepTheStep) {
  TestUpstream upstream([](UpstreamExchange& ex) {
    ex.respond(200, ex.request().header("x-worker-count").value_or("none"));
  });
  const std::string path = ::testing::TempDir() + "step_hooks_reload.yaml";
  auto write = [&](std::string_view route_name) {
    std::ofstream(path) << yaml(upstream.port(), route_name);
  };
  write("observed");
  auto proxy = RunningProxy::start(yaml(upstream.port(), "observed"));
  ASSERT_TRUE(proxy);
  EXPECT_EQ(http_get(proxy->port(), "/").body, "1");
  EXPECT_EQ(http_get(proxy->port(), "/").body, "2");
  // A reload that keeps the route (and so the step) keeps the worker's state.
  ASSERT_TRUE(proxy->server().reload(path));
  EXPECT_EQ(http_get(proxy->port(), "/").body, "3");
  // A renamed route is a new step: fresh state.
  write("observed-renamed");
  ASSERT_TRUE(proxy->server().reload(path));
  EXPECT_EQ(http_get(proxy->port(), "/").body, "1");
  std::remove(path.c_str());
}

}  // namespace
}  // namespace sluice::testing
