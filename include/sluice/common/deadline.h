#pragma once
// Cancels a socket's pending operation when a deadline passes. One Deadline serves one socket
// at a time (arm() names it).
//
// It is a lazy watchdog: arm() and disarm() only record the deadline; the timer keeps one wait
// pending and, when it fires early (the deadline moved later) or while disarmed, re-waits or
// stops. A timer operation happens only when a deadline moves earlier than the pending wait or
// when a wait ends, not on every socket operation, which matters because the data path arms
// a deadline around nearly every read and write.
#include <chrono>
#include <memory>

#include "sluice/common/asio.h"

namespace sluice {

class Deadline {
 public:
  using Clock = std::chrono::steady_clock;

  explicit Deadline(const asio::any_io_executor& ex) : timer_(ex) {}

  // `guard` (a shared_ptr) keeps the owner of `socket` alive while a wait is pending; call
  // cancel() when the owner is done so it is not kept longer than that. It is copied only when
  // a wait starts, and the cancel target is a plain function pointer, not a std::function: arm()
  // runs around nearly every socket operation (83 fewer instructions per small GET,
  // bench/instructions).
  template <typename Socket, typename Guard>
  void arm(Socket& socket, std::chrono::milliseconds timeout, const Guard& guard) {
    expired_ = false;
    if (timeout.count() <= 0) {
      armed_ = false;
      return;
    }
    armed_ = true;
    deadline_ = Clock::now() + timeout;
    target_ = &socket;
    cancel_target_ = [](void* target) {
      error_code ignored;
      static_cast<Socket*>(target)->cancel(ignored);
    };
    if (waiting_ && wait_until_ <= deadline_) return;  // the pending wait fires first: enough
    wait(std::shared_ptr<void>(guard));
  }
  void disarm() { armed_ = false; }
  // Ends any pending wait now (the owner is going away).
  void cancel() {
    armed_ = false;
    if (waiting_) timer_.cancel();
  }
  bool expired() const { return expired_; }
  // A wait is pending: its handler holds a copy of the guard until it runs. An owner reused
  // for one operation after another may leave the wait pending between them (disarm(), not
  // cancel()), saving a timer cancel and a new wait each time; it then counts this reference.
  bool waiting() const { return waiting_; }
  // Ends the armed operation now, as if its deadline had passed (an HTTP/2 client reset the
  // stream the operation works for). Nothing happens when disarmed.
  void expire_now() {
    if (!armed_) return;
    armed_ = false;
    expired_ = true;
    cancel_target_(target_);
  }

 private:
  void wait(std::shared_ptr<void> guard) {
    ++generation_;
    waiting_ = true;
    wait_until_ = deadline_;
    timer_.expires_at(deadline_);
    timer_.async_wait([this, gen = generation_, g = std::move(guard)](error_code ec) mutable {
      if (gen != generation_) return;  // superseded by a sooner wait
      waiting_ = false;
      if (ec || !armed_) return;
      if (Clock::now() < deadline_) {
        wait(std::move(g));  // the deadline moved later since this wait began
        return;
      }
      armed_ = false;
      expired_ = true;
      cancel_target_(target_);
    });
  }

  asio::steady_timer timer_;
  void* target_ = nullptr;
  void (*cancel_target_)(void*) = nullptr;
  Clock::time_point deadline_{};
  Clock::time_point wait_until_{};
  uint64_t generation_ = 0;
  bool armed_ = false;
  bool waiting_ = false;
  bool expired_ = false;
};

}  // namespace sluice
