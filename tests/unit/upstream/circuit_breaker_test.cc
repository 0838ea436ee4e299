#include "sluice/upstream/circuit_breaker.h"

#include <gtest/gtest.h>

#include <vector>

namespace sluice::upstream {
namespace {

using Wait = CircuitBreaker::Wait;
using namespace std::chrono_literals;

// Runs `body` as a coroutine on a fresh io_context until everything is done.
template <typename F>
void run(F body) {
  asio::io_context io;
  asio::co_spawn(io, body(), asio::detached);
  io.run();
}

TEST(CircuitBreaker, CapsConnectionsAndQueuesWaitersInOrder) {
  CircuitBreaker cb;
  cb.set_limits(1, 2);
  EXPECT_TRUE(cb.can_open());
  cb.opened();
  EXPECT_FALSE(cb.can_open());
  std::vector<std::pair<int, Wait>> outcomes;
  asio::io_context io;
  for (int i = 0; i < 3; ++i) {
    asio::co_spawn(io, [&, i]() -> awaitable<void> {
      outcomes.emplace_back(i, co_await cb.wait(5s));
    }, asio::detached);
  }
  // The third finds the queue (2) full and is refused at once.
  io.run_for(50ms);
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes[0], std::make_pair(2, Wait::kOverflow));
  EXPECT_EQ(cb.pending(), 2u);
  cb.returned();  // a connection back in the pool wakes the first waiter
  io.run_for(50ms);
  ASSERT_EQ(outcomes.size(), 2u);
  EXPECT_EQ(outcomes[1], std::make_pair(0, Wait::kReady));
  cb.closed();  // a closed connection wakes the next
  io.run_for(50ms);
  ASSERT_EQ(outcomes.size(), 3u);
  EXPECT_EQ(outcomes[2], std::make_pair(1, Wait::kReady));
  EXPECT_EQ(cb.pending(), 0u);
  EXPECT_TRUE(cb.can_open());
}

TEST(CircuitBreaker, AWaiterTimesOutAndLeavesTheQueue) {
  CircuitBreaker cb;
  cb.set_limits(1, 1);
  cb.opened();
  Wait outcome = Wait::kReady;
  run([&]() -> awaitable<void> { outcome = co_await cb.wait(20ms); });
  EXPECT_EQ(outcome, Wait::kTimeout);
  EXPECT_EQ(cb.pending(), 0u);
  cb.closed();  // nobody is woken, nothing breaks
  EXPECT_TRUE(cb.can_open());
}

}  // namespace
}  // namespace sluice::upstream
