#pragma once
// Socket reads that spare the system calls Boost.Asio 1.74 makes on every keep-alive turn.
//
// Asio's reactor (epoll, edge-triggered) keeps one flag per socket and direction, "try
// speculatively": while it is set, a new read first calls recv() before waiting for the socket
// to become readable. Asio 1.74 clears the flag only when a recv returns end of stream, so a
// keep-alive connection pays a recv that fails with EAGAIN each time it starts waiting for the
// next request (downstream) or the next response (upstream): two failed recv per proxied HTTP/1
// GET, one per HTTP/2 stream to an HTTP/1 backend (bench/results/2026-12-02-h2c-syscalls.md).
// nginx and HAProxy skip it: they remember that the socket was drained.
//
// Every read here reports a short read (fewer bytes than asked) as draining the socket; Asio's
// reactor then clears the flag under its own lock, and the next readiness event sets it again.
// That is the reactor's own "done_and_exhausted" path, which 1.74 takes only for end of stream.
//
// - async_receive_after_drain() is for the first read of the peer's next message, which it
//   sends only after it got ours. When the last read drained the socket and no event came since,
//   it waits for readiness without a recv first. The price: a FIN that arrived together with the
//   bytes of that last read is seen only at the next event (the peer's RST when the next request
//   reaches a closed backend, or the idle timeout of a client that half-closed after its
//   request), as a short read cannot tell a pending end of stream from an empty socket.
// - async_receive_some() is for every other read: like socket.async_read_some(), it tries a
//   recv at once whatever the flag says, so a pending end of stream (a body delimited by the
//   close, a head cut short) is read at once.
// - async_wait_readable() waits for bytes like socket.async_wait(wait_read), but completes at
//   once without a system call when an event came since its last completion, and otherwise
//   waits without the EPOLL_CTL_MOD that async_wait makes each time (Asio re-arms the descriptor
//   for every non-speculative operation). Its completion counts as a drain: the caller reads
//   until the socket is empty (EAGAIN or a short read) before it waits again, as OpenSSL under a
//   TLS Stream does.
//
// They are built from Asio 1.74's internal operation types (detail::reactor_op, the handler
// allocation and work-tracking helpers) in the shape of its own reactive_socket_recv_op and
// reactive_wait_op, and are used only with exactly that version on epoll; any other Asio takes
// the public calls, which behave the same with the extra system calls.
#include <boost/asio/version.hpp>

#include "sluice/common/asio.h"

#if BOOST_ASIO_VERSION == 101800 && defined(BOOST_ASIO_HAS_EPOLL) && !defined(BOOST_ASIO_HAS_IOCP)
#define SLUICE_REACTOR_OPS 1
#include <boost/asio/detail/buffer_sequence_adapter.hpp>
#include <boost/asio/detail/bind_handler.hpp>
#include <boost/asio/detail/fenced_block.hpp>
#include <boost/asio/detail/handler_alloc_helpers.hpp>
#include <boost/asio/detail/handler_cont_helpers.hpp>
#include <boost/asio/detail/handler_work.hpp>
#include <boost/asio/detail/non_const_lvalue.hpp>
#include <boost/asio/detail/reactor.hpp>
#include <boost/asio/detail/reactor_op.hpp>
#include <boost/asio/detail/socket_ops.hpp>
#else
#define SLUICE_REACTOR_OPS 0
#endif

namespace sluice::net {

#if SLUICE_REACTOR_OPS
namespace reactor_detail {

namespace ad = boost::asio::detail;

// The socket's implementation (descriptor, state, reactor registration) is a protected member
// of basic_socket; a pointer to it formed inside a derived class reaches it on any tcp::socket.
struct SocketInternals : tcp::socket {
  static auto& of(tcp::socket& socket) { return socket.*(&SocketInternals::impl_); }
};

// The reactor an open socket is registered with: the one its descriptor state names
// (reactor_ops.cc). Null for a closed socket.
ad::reactor* registered_reactor(ad::reactor::per_descriptor_data descriptor);

// The socket's reactor (one per io_context). A pointer cached by the context's address would go
// stale when a context is destroyed and another is made at that address (tests do); the
// descriptor state holds the right one for an open socket, and a closed one (rare: an operation
// after close, which fails) looks it up.
inline ad::reactor& reactor_of(tcp::socket& socket) {
  if (ad::reactor* r = registered_reactor(SocketInternals::of(socket).get_implementation().reactor_data_)) {
    return *r;
  }
  return asio::use_service<ad::reactor>(asio::query(socket.get_executor(), asio::execution::context));
}

// The handler (moved out of its op) bound to the op's results, as Asio's binders do.
template <typename Handler>
ad::binder1<Handler, error_code> bind_results(Handler& handler, error_code ec) {
  return ad::binder1<Handler, error_code>(handler, ec);
}
template <typename Handler>
ad::binder2<Handler, error_code, size_t> bind_results(Handler& handler, error_code ec, size_t n) {
  return ad::binder2<Handler, error_code, size_t>(handler, ec, n);
}

// Completes `op` as Asio's own operations do (reactive_socket_recv_op::do_complete): the
// handler and its work leave the op, the op is freed, then the upcall is made with `results`
// (copied before the op's memory goes), only when the reactor is running (not when it is
// destroyed with the op still queued).
template <typename Op, typename Handler, typename IoExecutor, typename... Results>
void finish_op(void* owner, Op* op, Handler& handler_in_op,
               ad::handler_work<Handler, IoExecutor>& work_in_op, Results... results) {
  typename Op::ptr p = {std::addressof(handler_in_op), op, op};
  ad::handler_work<Handler, IoExecutor> work(std::move(work_in_op));
  auto bound = bind_results(handler_in_op, results...);
  p.h = std::addressof(bound.handler_);
  p.reset();
  if (owner) {
    ad::fenced_block b(ad::fenced_block::half);
    work.complete(bound, bound.handler_);
  }
}

template <typename Buffers>
class RecvUntilShortOpBase : public ad::reactor_op {
 public:
  RecvUntilShortOpBase(ad::socket_type socket, const Buffers& buffers, func_type complete)
      : reactor_op(error_code(), &RecvUntilShortOpBase::do_perform, complete),
        socket_(socket),
        buffers_(buffers) {}

  // Set while async_receive_some() starts an op whose recv it has just tried itself: the
  // reactor's speculative try of that op (if its flag is set) is skipped, as the socket was
  // found empty a moment ago. Per thread, because only the starting thread's call is skipped.
  static inline thread_local const reactor_op* skip_try_of = nullptr;

  static status do_perform(reactor_op* base) {
    if (base == skip_try_of) return not_done;
    auto* o = static_cast<RecvUntilShortOpBase*>(base);
    using Adapter = ad::buffer_sequence_adapter<asio::mutable_buffer, Buffers>;
    bool finished;
    size_t asked;
    if constexpr (Adapter::is_single_buffer) {
      const asio::mutable_buffer b = Adapter::first(o->buffers_);
      asked = b.size();
      finished = ad::socket_ops::non_blocking_recv1(o->socket_, b.data(), b.size(), 0, true, o->ec_,
                                                     o->bytes_transferred_);
    } else {
      Adapter bufs(o->buffers_);
      asked = bufs.total_size();
      finished = ad::socket_ops::non_blocking_recv(o->socket_, bufs.buffers(), bufs.count(), 0, true,
                                                    o->ec_, o->bytes_transferred_);
    }
    if (!finished) return not_done;
    // A short read (end of stream included) emptied the receive queue; an error ends the
    // connection, where the flag no longer matters.
    return !o->ec_ && o->bytes_transferred_ == asked ? done : done_and_exhausted;
  }

 private:
  ad::socket_type socket_;
  Buffers buffers_;
};

template <typename Buffers, typename Handler, typename IoExecutor>
class RecvUntilShortOp : public RecvUntilShortOpBase<Buffers> {
 public:
  BOOST_ASIO_DEFINE_HANDLER_PTR(RecvUntilShortOp);

  RecvUntilShortOp(ad::socket_type socket, const Buffers& buffers, Handler& handler,
                   const IoExecutor& io_ex)
      : RecvUntilShortOpBase<Buffers>(socket, buffers, &RecvUntilShortOp::do_complete),
        handler_(std::move(handler)),
        work_(handler_, io_ex) {}

  static void do_complete(void* owner, ad::operation* base, const error_code&, size_t) {
    auto* o = static_cast<RecvUntilShortOp*>(base);
    finish_op(owner, o, o->handler_, o->work_, o->ec_, o->bytes_transferred_);
  }

 private:
  Handler handler_;
  ad::handler_work<Handler, IoExecutor> work_;
};

template <typename Handler, typename IoExecutor>
class ReadableWaitOp : public ad::reactor_op {
 public:
  BOOST_ASIO_DEFINE_HANDLER_PTR(ReadableWaitOp);

  ReadableWaitOp(Handler& handler, const IoExecutor& io_ex)
      : reactor_op(error_code(), &ReadableWaitOp::do_perform, &ReadableWaitOp::do_complete),
        handler_(std::move(handler)),
        work_(handler_, io_ex) {}

  // Readable: no system call here; the caller's reads drain the socket before it waits again.
  static status do_perform(reactor_op*) { return done_and_exhausted; }

  static void do_complete(void* owner, ad::operation* base, const error_code&, size_t) {
    auto* o = static_cast<ReadableWaitOp*>(base);
    finish_op(owner, o, o->handler_, o->work_, o->ec_);
  }

 private:
  Handler handler_;
  ad::handler_work<Handler, IoExecutor> work_;
};

// Makes the socket non-blocking if Asio has not yet (as reactive_socket_service_base::start_op
// does before every operation); false with the op's error set if that failed.
inline bool ensure_non_blocking(tcp::socket& socket, ad::reactor_op* op) {
  auto& impl = SocketInternals::of(socket).get_implementation();
  return (impl.state_ & ad::socket_ops::non_blocking) ||
         ad::socket_ops::set_internal_non_blocking(impl.socket_, impl.state_, true, op->ec_);
}

// Starts `op` as a read: the reactor tries it at once if the socket's flag is set, and queues it
// for the next readiness event otherwise.
inline void start_read(tcp::socket& socket, ad::reactor_op* op, bool is_continuation) {
  ad::reactor& reactor = reactor_of(socket);
  if (!ensure_non_blocking(socket, op)) {
    reactor.post_immediate_completion(op, is_continuation);
    return;
  }
  auto& impl = SocketInternals::of(socket).get_implementation();
  reactor.start_op(ad::reactor::read_op, impl.socket_, impl.reactor_data_, op, is_continuation,
                   /*allow_speculative=*/true);
}

template <bool kTryFirst>
struct InitiateReceive {
  template <typename Handler, typename Buffers>
  void operator()(Handler&& handler, tcp::socket* socket, const Buffers& buffers) const {
    ad::non_const_lvalue<Handler> handler2(handler);
    using Executor = tcp::socket::executor_type;
    using Op = RecvUntilShortOp<Buffers, std::decay_t<Handler>, Executor>;
    const bool is_continuation = boost_asio_handler_cont_helpers::is_continuation(handler2.value);
    typename Op::ptr p = {std::addressof(handler2.value), Op::ptr::allocate(handler2.value), nullptr};
    p.p = new (p.v) Op(socket->native_handle(), buffers, handler2.value, socket->get_executor());
    ad::reactor& reactor = reactor_of(*socket);
    if (ad::buffer_sequence_adapter<asio::mutable_buffer, Buffers>::all_empty(buffers)) {
      reactor.post_immediate_completion(p.p, is_continuation);  // nothing to read
    } else if constexpr (kTryFirst) {
      if (!ensure_non_blocking(*socket, p.p) || Op::do_perform(p.p) != ad::reactor_op::not_done) {
        reactor.post_immediate_completion(p.p, is_continuation);  // as Asio's speculative read
      } else {
        // Found empty (and no end of stream pending): wait for the next readiness event.
        Op::skip_try_of = p.p;
        start_read(*socket, p.p, is_continuation);
        Op::skip_try_of = nullptr;
      }
    } else {
      start_read(*socket, p.p, is_continuation);
    }
    p.v = p.p = nullptr;
  }
};

struct InitiateWaitReadable {
  template <typename Handler>
  void operator()(Handler&& handler, tcp::socket* socket) const {
    ad::non_const_lvalue<Handler> handler2(handler);
    using Executor = tcp::socket::executor_type;
    using Op = ReadableWaitOp<std::decay_t<Handler>, Executor>;
    const bool is_continuation = boost_asio_handler_cont_helpers::is_continuation(handler2.value);
    typename Op::ptr p = {std::addressof(handler2.value), Op::ptr::allocate(handler2.value), nullptr};
    p.p = new (p.v) Op(handler2.value, socket->get_executor());
    start_read(*socket, p.p, is_continuation);
    p.v = p.p = nullptr;
  }
};

}  // namespace reactor_detail

template <typename Buffers, typename Token>
auto async_receive_some(tcp::socket& socket, const Buffers& buffers, Token&& token) {
  return asio::async_initiate<Token, void(error_code, size_t)>(
      reactor_detail::InitiateReceive<true>{}, token, &socket, buffers);
}

template <typename Buffers, typename Token>
auto async_receive_after_drain(tcp::socket& socket, const Buffers& buffers, Token&& token) {
  return asio::async_initiate<Token, void(error_code, size_t)>(
      reactor_detail::InitiateReceive<false>{}, token, &socket, buffers);
}

template <typename Token>
auto async_wait_readable(tcp::socket& socket, Token&& token) {
  return asio::async_initiate<Token, void(error_code)>(reactor_detail::InitiateWaitReadable{}, token,
                                                       &socket);
}

#else  // any other Asio: the public operations

template <typename Buffers, typename Token>
auto async_receive_some(tcp::socket& socket, const Buffers& buffers, Token&& token) {
  return socket.async_read_some(buffers, std::forward<Token>(token));
}

template <typename Buffers, typename Token>
auto async_receive_after_drain(tcp::socket& socket, const Buffers& buffers, Token&& token) {
  return socket.async_read_some(buffers, std::forward<Token>(token));
}

template <typename Token>
auto async_wait_readable(tcp::socket& socket, Token&& token) {
  return socket.async_wait(tcp::socket::wait_read, std::forward<Token>(token));
}

#endif

}  // namespace sluice::net
