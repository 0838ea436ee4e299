#pragma once
// A step of a route's filter chain. The chain is built into the snapshot with the route (so a
// step's configuration is immutable and shared by all workers); per-request state lives in the
// Exchange, per-worker mutable state in the worker's view, bound by the step's state slot.
//
// The exchange runner calls the hooks (docs/ARCHITECTURE.md has the phase chart):
//   on_request_head      the request is routed; change the head, answer locally, or pause
//   on_upstream_request  an endpoint was chosen (%UPSTREAM_HOST% known); last change to the head
//   on_request_body      each part of the request body as it streams upstream (wants_body())
//   on_request_trailers  the request's trailer fields, before they go upstream (wants_body())
//   on_response_head     the response head (upstream or local) is about to go downstream
//   on_response_body     each part of the response body as it streams downstream (wants_body())
//   on_response_trailers the response's trailer fields, before they go downstream (wants_body())
// Request hooks run in chain order, response hooks in reverse order (the step nearest the
// upstream sees the response first). The router step (pick cluster and endpoint, forward) is not
// in the list: it ends the chain of every route whose action is `cluster`.
//
// Body hooks see the bytes in place (views valid only during the call) and may not change their
// length: the framing was chosen from the head. A chain whose steps do not want bodies streams
// them with no per-chunk call at all.
#include <cstddef>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/common/asio.h"

namespace sluice::proxy {
struct Exchange;
}

namespace sluice::filters {

enum class Status {
  kContinue,    // go on with the next step
  kLocalReply,  // the step set exchange.local_reply: answer with it, skip the rest of the chain
  kPause,       // the step started asynchronous work: the runner awaits resume() for the outcome
};

// Part of a message body: the spans of one read, in order.
using BodySpans = std::span<const std::span<const char>>;

// Mutable state a step keeps per worker (a rate limiter's buckets, a cache of keys). The worker
// makes one per step and slot when a snapshot arrives, carries it over a reload that keeps the
// step (same listener, virtual host, route and step name), and hands it to the hooks through the
// exchange (Exchange::step_state). Never shared between workers (rule 1).
class WorkerState {
 public:
  virtual ~WorkerState() = default;
};

class Filter {
 public:
  static constexpr size_t kNoStateSlot = std::numeric_limits<size_t>::max();

  virtual ~Filter() = default;
  virtual std::string_view name() const = 0;
  virtual Status on_request_head(proxy::Exchange&) const { return Status::kContinue; }
  virtual void on_upstream_request(proxy::Exchange&) const {}
  virtual void on_response_head(proxy::Exchange&) const {}
  // Called after on_request_head answered kPause; never returns kPause.
  virtual awaitable<Status> resume(proxy::Exchange&) const { co_return Status::kContinue; }

  // --- Bodies and trailers: called only when wants_body() is true. ---
  // Each may continue, answer locally or pause (the runner then awaits resume(); the part's
  // bytes stay valid and no further part moves in that direction meanwhile: backpressure).
  virtual bool wants_body() const { return false; }
  // kLocalReply stops the upload: the upstream attempt is abandoned (its connection closed) and
  // the local reply sent. `last` is true on the final part (which may be empty).
  virtual Status on_request_body(proxy::Exchange&, BodySpans, bool /*last*/) const {
    return Status::kContinue;
  }
  // The request's trailer fields (exchange.request_trailers), after its last body part.
  virtual Status on_request_trailers(proxy::Exchange&) const { return Status::kContinue; }
  // The response head is chosen by now: kLocalReply cannot replace the response, so it aborts
  // it (the downstream connection is closed, the access log says UC).
  virtual Status on_response_body(proxy::Exchange&, BodySpans, bool /*last*/) const {
    return Status::kContinue;
  }
  virtual Status on_response_trailers(proxy::Exchange&) const { return Status::kContinue; }

  // --- Per-worker state. ---
  // A step with per-worker state returns a fresh one here; the snapshot gives it a slot.
  virtual std::unique_ptr<WorkerState> make_worker_state() const { return nullptr; }
  size_t state_slot() const { return state_slot_; }
  // Snapshot build only (control thread, before publishing).
  void assign_state_slot(size_t slot) { state_slot_ = slot; }

 private:
  size_t state_slot_ = kNoStateSlot;
};

using Chain = std::vector<std::shared_ptr<Filter>>;

// A step with per-worker state, by slot: `key` (listener/virtual host/route/step) lets a worker
// carry the state over a reload that keeps the step.
struct StateSlot {
  std::string key;
  const Filter* step = nullptr;
};

}  // namespace sluice::filters
