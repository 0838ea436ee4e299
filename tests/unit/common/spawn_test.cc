// sluice::spawn and sluice::start_now (common/asio.h): coroutines started without co_spawn's
// entry coroutine. What callers rely on: spawn runs nothing before the running handler returns
// (the HTTP/2 reader calls it inside nghttp2's callbacks), start_now runs at once up to the
// first suspension, the coroutine completes and frees its frame, and an exception is not
// swallowed but leaves io_context::run(), after which run() goes on with the rest.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <vector>

#include "sluice/common/asio.h"

namespace sluice {
namespace {

using namespace std::chrono_literals;

awaitable<void> record(std::vector<int>& steps, std::shared_ptr<int> held) {
  steps.push_back(1);
  asio::steady_timer timer(co_await asio::this_coro::executor, 1ms);
  error_code ec;
  co_await timer.async_wait(asio::redirect_error(use_awaitable, ec));
  steps.push_back(2);
}

awaitable<void> throw_after_a_wait() {
  asio::steady_timer timer(co_await asio::this_coro::executor, 1ms);
  error_code ec;
  co_await timer.async_wait(asio::redirect_error(use_awaitable, ec));
  throw std::runtime_error("boom");
}

TEST(Spawn, StartsOnlyAfterTheRunningHandlerAndRunsToTheEnd) {
  asio::io_context io;
  std::vector<int> steps;
  auto held = std::make_shared<int>(0);
  asio::post(io, [&] {
    spawn(io.get_executor(), record(steps, held));
    steps.push_back(0);  // the spawning handler finishes first
  });
  io.run();
  EXPECT_EQ(steps, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(held.use_count(), 1);  // the frame, with its copy, is gone
}

TEST(Spawn, StartNowRunsAtOnceUntilTheFirstSuspension) {
  asio::io_context io;
  std::vector<int> steps;
  auto held = std::make_shared<int>(0);
  asio::post(io, [&] {
    start_now(io.get_executor(), record(steps, held));
    steps.push_back(0);
  });
  io.run();
  EXPECT_EQ(steps, (std::vector<int>{1, 0, 2}));
  EXPECT_EQ(held.use_count(), 1);
}

TEST(Spawn, AnExceptionLeavesRunAndRunGoesOnAfterIt) {
  asio::io_context io;
  std::vector<int> steps;
  auto held = std::make_shared<int>(0);
  spawn(io.get_executor(), throw_after_a_wait());
  spawn(io.get_executor(), record(steps, held));
  int exceptions = 0;
  // What Worker::start does around run().
  while (true) {
    try {
      io.run();
      break;
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "boom");
      ++exceptions;
    }
  }
  EXPECT_EQ(exceptions, 1);
  EXPECT_EQ(steps, (std::vector<int>{1, 2}));
  EXPECT_EQ(held.use_count(), 1);
}

}  // namespace
}  // namespace sluice
