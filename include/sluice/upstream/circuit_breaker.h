#pragma once
// The first circuit breakers of a cluster, in one worker: a cap on open upstream connections and
// a bounded queue of requests waiting for one (Envoy's max_connections and max_pending_requests,
// split evenly across workers so the process-wide totals hold without shared counters, rule 1).
// A request that finds the queue full is refused at once: 503 with reason `overflow`.
#include <chrono>
#include <list>
#include <memory>

#include "sluice/common/asio.h"

namespace sluice::upstream {

class CircuitBreaker {
 public:
  enum class Wait { kReady, kOverflow, kTimeout };

  void set_limits(uint32_t max_connections, uint32_t max_pending) {
    max_connections_ = max_connections;
    max_pending_ = max_pending;
    wake_one();  // a raised cap may let a waiter through
  }
  bool can_open() const { return open_ < max_connections_; }
  uint32_t open() const { return open_; }
  size_t pending() const { return waiters_.size(); }
  void opened() { ++open_; }
  void closed() {
    --open_;
    wake_one();
  }
  // A connection went back to a pool: a waiter may take it.
  void returned() { wake_one(); }

  // Waits until a connection may be opened or reused, for at most `timeout`. kOverflow at once
  // when the queue is full.
  awaitable<Wait> wait(std::chrono::milliseconds timeout) {
    if (waiters_.size() >= max_pending_) co_return Wait::kOverflow;
    Waiter me{asio::steady_timer(co_await asio::this_coro::executor)};
    me.timer.expires_after(timeout);
    auto it = waiters_.insert(waiters_.end(), &me);
    error_code ignored;
    co_await me.timer.async_wait(asio::redirect_error(use_awaitable, ignored));
    // Woken: wake_one() already took the entry out (even if the timer had fired meanwhile).
    if (me.woken) co_return Wait::kReady;
    waiters_.erase(it);
    co_return Wait::kTimeout;
  }

 private:
  struct Waiter {
    asio::steady_timer timer;
    bool woken = false;
  };
  void wake_one() {
    if (waiters_.empty()) return;
    Waiter* w = waiters_.front();
    waiters_.pop_front();
    w->woken = true;
    w->timer.cancel();
  }

  uint32_t max_connections_ = 1024;
  uint32_t max_pending_ = 1024;
  uint32_t open_ = 0;
  std::list<Waiter*> waiters_;
};

}  // namespace sluice::upstream
