#pragma once
// The one place Sluice includes Boost.Asio, with the aliases used across modules.
#include <utility>  // Boost 1.74's awaitable.hpp needs std::exchange (DESIGN.md §4)

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace sluice {
namespace asio = boost::asio;
using tcp = boost::asio::ip::tcp;
using error_code = boost::system::error_code;

// Every coroutine runs on an io_context (a worker's, the control thread's, a test's), so its
// executor type is io_context's own, not the type-erased any_io_executor that
// boost::asio::awaitable<T> and use_awaitable default to. Each suspension copies, tracks and
// destroys the coroutine's executor, and each resumption dispatches through it; on the erased
// type every one of those is an indirect call (1.8 % of a worker's samples at h2c -c50 -m10,
// perf record). I/O objects keep any_io_executor: only the coroutines' type changes.
using Executor = boost::asio::io_context::executor_type;
template <typename T>
using awaitable = boost::asio::awaitable<T, Executor>;
// The completion token of an operation awaited in one of these coroutines.
inline constexpr boost::asio::use_awaitable_t<Executor> use_awaitable{};

// The io_context executor under an I/O object's executor, to co_spawn a coroutine on it.
inline Executor executor_of(const boost::asio::any_io_executor& ex) {
  return static_cast<boost::asio::io_context&>(boost::asio::query(ex, boost::asio::execution::context))
      .get_executor();
}

// Runs coroutine `a` on `ex` as a thread of its own, starting once the running handler has
// returned: what co_spawn(ex, a, detached) does, without co_spawn's entry coroutine around `a`
// (per spawn: a frame, a post awaited through an initiation frame, two work guards and a final
// dispatch). For what is spawned per request or stream. It launches the coroutine the way
// co_spawn does (Asio 1.74's awaitable_handler; asio.h is the one place that knows).
// Unlike detached, an exception escaping `a` is not swallowed: it leaves io_context::run(),
// where the worker logs it and runs on (server/worker.cc); the data plane throws none (rule 5).
inline void spawn(Executor ex, awaitable<void> a) {
  boost::asio::post(ex, [a = std::move(a), ex]() mutable {
    boost::asio::detail::awaitable_handler<Executor, void>(std::move(a), ex).launch();
  });
}
// The same, but `a` runs at once until it first suspends. Only from a completion handler: never
// from inside a coroutine or a callback (nghttp2's) that must not be re-entered.
inline void start_now(Executor ex, awaitable<void> a) {
  boost::asio::detail::awaitable_handler<Executor, void>(std::move(a), ex).launch();
}
}  // namespace sluice
