#pragma once
// Cancels a socket's pending operation when a deadline passes. One Deadline serves one socket at
// a time; re-arming supersedes the previous deadline (a generation number makes a late-firing
// old timer harmless).
#include <chrono>
#include <memory>

#include "sluice/common/asio.h"

namespace sluice {

class Deadline {
 public:
  explicit Deadline(const asio::any_io_executor& ex) : timer_(ex) {}

  // `guard` keeps the owner of `socket` alive until the timer handler has run.
  template <typename Socket>
  void arm(Socket& socket, std::chrono::milliseconds timeout, std::shared_ptr<void> guard) {
    ++generation_;
    expired_ = false;
    if (timeout.count() <= 0) {
      timer_.cancel();
      return;
    }
    timer_.expires_after(timeout);
    timer_.async_wait([this, &socket, gen = generation_, g = std::move(guard)](error_code ec) {
      if (ec || gen != generation_) return;
      expired_ = true;
      error_code ignored;
      socket.cancel(ignored);
    });
  }
  void disarm() {
    ++generation_;
    timer_.cancel();
  }
  bool expired() const { return expired_; }

 private:
  asio::steady_timer timer_;
  uint64_t generation_ = 0;
  bool expired_ = false;
};

}  // namespace sluice
