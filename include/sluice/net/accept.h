#pragma once
// Taking connections off a listening socket in one system call each: accept4(2) with
// SOCK_NONBLOCK | SOCK_CLOEXEC returns a non-blocking descriptor and the peer's address, as
// nginx and HAProxy accept. Boost.Asio's async_accept makes accept(2), then an ioctl(FIONBIO)
// before the first operation, and the peer's address costs a getpeername(2); its close of an
// adopted descriptor adds an EPOLL_CTL_DEL. Three or four system calls of every connection.
#include "sluice/common/asio.h"
#include "sluice/net/stream.h"

namespace sluice::net {

// Takes one pending connection from `acceptor` without waiting (the listener is made
// non-blocking first if Asio has not made it so): an open socket on the acceptor's executor
// (registered with its reactor, marked non-blocking, so Asio makes neither the ioctl nor the
// EPOLL_CTL_DEL at its close) and the peer's address in `peer`. On failure
// the socket is closed and `ec` says why: asio::error::would_block when no connection is
// pending; ECONNABORTED or EPROTO for a connection that went away while queued (take the next);
// EMFILE, ENFILE, ENOBUFS or ENOMEM when the process or the system is out of something.
tcp::socket accept_now(tcp::acceptor& acceptor, PeerInfo& peer, error_code& ec);

// Whether an accept error is about the one connection (it went away while it waited in the
// backlog), so the next can be taken at once, rather than about the process (back off).
bool accept_error_is_transient(const error_code& ec);

}  // namespace sluice::net
