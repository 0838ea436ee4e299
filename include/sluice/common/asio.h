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
template <typename T>
using awaitable = boost::asio::awaitable<T>;
}  // namespace sluice
