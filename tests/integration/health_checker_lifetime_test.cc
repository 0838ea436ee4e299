// A HealthChecker destroyed while its probes are in flight (what a reload that changes
// `health_check`, or removes the cluster, does) must not be touched afterwards. The io_context is
// driven one handler at a time and the checker destroyed after k handlers, for every k over a few
// probe cycles, so every point of a probe's life is hit: connecting, writing, waiting for the
// answer, the answer (or the deadline) having fired with its completion still queued, the pause
// between probes. Run under AddressSanitizer (scripts/test does) a use after free fails here; in
// every build the transition callback must stay silent after the destruction, and the probes
// must end by themselves.
#include <gtest/gtest.h>

#include <cctype>
#include <memory>
#include <string>

#include "sluice/upstream/health_checker.h"
#include "support/test_upstream.h"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;

struct Scenario {
  const char* name;
  std::chrono::milliseconds answer_after;  // how long the endpoint takes to answer
  int status;
  std::chrono::milliseconds probe_timeout;
  bool refused = false;  // nothing listens: the probe fails at connect
};

class HealthCheckerLifetime : public ::testing::TestWithParam<Scenario> {};

TEST_P(HealthCheckerLifetime, DestroyedAtEveryStepOfAProbe) {
  const Scenario& sc = GetParam();
  TestUpstream upstream([&](UpstreamExchange& ex) {
    if (sc.answer_after.count() > 0 && !ex.sleep_for(sc.answer_after)) return;
    ex.respond(sc.status, "health\n");
    ex.close_after_response();
  });
  ASSERT_TRUE(upstream.listening());
  const tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), upstream.port());
  if (sc.refused) upstream.stop();

  config::HealthCheck spec;
  spec.path = "/health";
  spec.interval = 1ms;  // probes back to back, so k handlers span several of them
  spec.timeout = sc.probe_timeout;
  spec.healthy_threshold = 1;
  spec.unhealthy_threshold = 1;

  constexpr int kMaxSteps = 60;
  size_t probes_answered_while_alive = 0;
  for (int k = 0; k <= kMaxSteps; ++k) {
    SCOPED_TRACE(::testing::Message() << sc.name << ": destroyed after " << k << " handler(s)");
    asio::io_context context;
    bool destroyed = false;
    int calls_after_destruction = 0;
    auto checker = std::make_unique<upstream::HealthChecker>(
        context, "c", spec, [&](const std::string&, bool, const std::string&) {
          if (destroyed) ++calls_after_destruction;
        });
    // Start unhealthy when probes pass and healthy when they fail, so the first probe makes a
    // transition: the callback runs in the middle of the probe loop too.
    checker->set_endpoints({{"127.0.0.1:1", {endpoint, sc.status >= 400}}});
    const size_t before = upstream.request_count();
    for (int i = 0; i < k; ++i) {
      if (context.run_one_for(5s) == 0) break;
    }
    probes_answered_while_alive += upstream.request_count() - before;
    checker.reset();
    destroyed = true;
    // What is left (cancelled waits, completions queued before the destruction) runs now, and
    // then nothing may remain: a stopped probe neither waits nor starts another.
    context.run_for(10s);
    EXPECT_TRUE(context.stopped()) << "probes still running after their checker was destroyed";
    EXPECT_EQ(calls_after_destruction, 0);
  }
  // The steps did reach probes in flight, not just the start-up.
  if (!sc.refused) EXPECT_GT(probes_answered_while_alive, 0u);
}

INSTANTIATE_TEST_SUITE_P(
    Probes, HealthCheckerLifetime,
    ::testing::Values(Scenario{"passing", 0ms, 200, 2000ms},
                      Scenario{"failing status", 0ms, 503, 2000ms},
                      Scenario{"slow answer within the timeout", 20ms, 200, 2000ms},
                      Scenario{"answer after the timeout", 200ms, 200, 30ms},
                      Scenario{"connection refused", 0ms, 503, 2000ms, true}),
    [](const ::testing::TestParamInfo<Scenario>& info) {
      std::string name;
      for (const char* c = info.param.name; *c; ++c) name += std::isalnum(static_cast<unsigned char>(*c)) ? *c : '_';
      return name;
    });

}  // namespace
}  // namespace sluice::testing
