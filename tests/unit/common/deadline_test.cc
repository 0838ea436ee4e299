// Deadline: the lazy watchdog around socket operations (common/deadline.h), and the pending
// wait an owner may keep between operations (an HTTP/2 stream keeps it between the requests it
// serves, and counts the guard that wait holds).
#include "sluice/common/deadline.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>

namespace sluice {
namespace {

using namespace std::chrono_literals;

// Stands in for a socket: Deadline only calls cancel(ec) on it.
struct CountingSocket {
  int cancels = 0;
  void cancel(error_code&) { ++cancels; }
};

// Runs `io` until `done()` or two seconds pass.
template <typename Done>
void run_until(asio::io_context& io, Done done) {
  const auto give_up = std::chrono::steady_clock::now() + 2s;
  while (!done() && std::chrono::steady_clock::now() < give_up) {
    io.run_for(5ms);
    io.restart();
  }
}

// One deadline on its own io_context, a socket stand-in and a guard whose use count shows
// whether a wait holds a copy.
class DeadlineTest : public ::testing::Test {
 protected:
  asio::io_context io;
  Deadline deadline{io.get_executor()};
  CountingSocket socket;
  std::shared_ptr<int> guard = std::make_shared<int>(0);
};

TEST_F(DeadlineTest, ExpiryCancelsTheArmedOperation) {
  deadline.arm(socket, 20ms, guard);
  EXPECT_TRUE(deadline.waiting());
  run_until(io, [&] { return socket.cancels > 0; });
  EXPECT_EQ(socket.cancels, 1);
  EXPECT_TRUE(deadline.expired());
  EXPECT_FALSE(deadline.waiting());
  EXPECT_EQ(guard.use_count(), 1);  // the wait let its copy go
}

TEST_F(DeadlineTest, DisarmedWaitStaysPendingHoldingTheGuardAndNeverCancels) {
  deadline.arm(socket, 50ms, guard);
  deadline.disarm();
  io.poll();
  EXPECT_TRUE(deadline.waiting());
  EXPECT_EQ(guard.use_count(), 2);  // this reference is what a reused owner counts
  run_until(io, [&] { return !deadline.waiting(); });
  EXPECT_FALSE(deadline.waiting());
  EXPECT_FALSE(deadline.expired());
  EXPECT_EQ(socket.cancels, 0);
  EXPECT_EQ(guard.use_count(), 1);
}

TEST_F(DeadlineTest, ArmingAgainWhileTheWaitIsPendingUsesThatWait) {
  CountingSocket& first = socket;
  CountingSocket second;
  deadline.arm(first, 30ms, guard);
  deadline.disarm();
  // The next operation, on another socket, with a later deadline: no new wait (the guard is
  // not copied again); when the pending one fires early it waits on for the rest.
  deadline.arm(second, 60ms, guard);
  EXPECT_EQ(guard.use_count(), 2);
  run_until(io, [&] { return second.cancels > 0; });
  EXPECT_EQ(first.cancels, 0);
  EXPECT_EQ(second.cancels, 1);
  EXPECT_TRUE(deadline.expired());
}

TEST_F(DeadlineTest, ArmingAfterAnExpiryStartsFresh) {
  deadline.arm(socket, 10ms, guard);
  run_until(io, [&] { return deadline.expired(); });
  ASSERT_TRUE(deadline.expired());
  deadline.arm(socket, 1h, guard);
  EXPECT_FALSE(deadline.expired());
  deadline.disarm();
  deadline.cancel();
  run_until(io, [&] { return !deadline.waiting(); });
  EXPECT_EQ(socket.cancels, 1);
}

TEST_F(DeadlineTest, CancelEndsThePendingWaitAndReleasesTheGuard) {
  deadline.arm(socket, 1h, guard);
  deadline.disarm();
  deadline.cancel();
  // The cancelled wait's handler still has to run before it lets the guard go.
  EXPECT_TRUE(deadline.waiting());
  io.poll();
  EXPECT_FALSE(deadline.waiting());
  EXPECT_EQ(guard.use_count(), 1);
  EXPECT_EQ(socket.cancels, 0);
  EXPECT_FALSE(deadline.expired());
}

TEST_F(DeadlineTest, ExpireNowEndsOnlyAnArmedOperation) {
  deadline.arm(socket, 1h, guard);
  deadline.disarm();
  deadline.expire_now();  // nothing armed: nothing happens
  EXPECT_EQ(socket.cancels, 0);
  deadline.arm(socket, 1h, guard);
  deadline.expire_now();
  EXPECT_EQ(socket.cancels, 1);
  EXPECT_TRUE(deadline.expired());
  deadline.cancel();
  io.poll();
  EXPECT_EQ(guard.use_count(), 1);
}

}  // namespace
}  // namespace sluice
