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
}  // namespace sluice
