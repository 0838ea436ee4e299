#pragma once
// What an accept loop does when accept() fails for a reason other than its acceptor closing:
// out of descriptors (EMFILE, ENFILE) or kernel memory (ENOBUFS, ENOMEM). The connection stays in
// the backlog, so the acceptor stays readable and an immediate retry fails again at once: a loop
// that retries without waiting spins a core until descriptors come back. So it waits
// kAcceptRetryDelay between attempts and accepts again as soon as an attempt succeeds. It logs the
// first failure of a streak and the recovery, not every retry.
#include <chrono>
#include <cstdint>
#include <string>
#include <utility>

#include "sluice/common/asio.h"
#include "sluice/common/log.h"

namespace sluice {

inline constexpr auto kAcceptRetryDelay = std::chrono::milliseconds(50);

class AcceptBackoff {
 public:
  // `what` names the acceptor in the log: "listener 'public'", "admin".
  explicit AcceptBackoff(std::string what) : what_(std::move(what)) {}

  // After a failed accept: waits before the caller tries again.
  awaitable<void> after_failure(const error_code& ec) {
    if (failures_++ == 0) {
      log::warn("{}: accept failed: {}; retrying every {}ms", what_, ec.message(),
                kAcceptRetryDelay.count());
    }
    asio::steady_timer pause(co_await asio::this_coro::executor, kAcceptRetryDelay);
    error_code ignored;
    co_await pause.async_wait(asio::redirect_error(use_awaitable, ignored));
  }

  // After a successful accept: ends a streak of failures.
  void after_success() {
    if (failures_ == 0) return;
    log::info("{}: accepting again after {} failed attempt(s)", what_, failures_);
    failures_ = 0;
  }

 private:
  std::string what_;
  uint64_t failures_ = 0;
};

}  // namespace sluice
