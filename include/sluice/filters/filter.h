#pragma once
// A step of a route's filter chain. The chain is built into the snapshot with the route (so a
// step's configuration is immutable and shared by all workers); per-request state lives in the
// Exchange, per-worker mutable state in the worker, bound by the step's `state_slot`.
//
// The request path runs the hooks in chain order:
//   on_request_head    the request is routed; change the head, answer locally, or pause
//   on_upstream_request  an endpoint was chosen (%UPSTREAM_HOST% known); last change to the head
//   on_response_head   the response head (upstream or local) is about to go downstream
// The router step (pick cluster and endpoint, forward) is not in the list: it is the end of the
// chain of every route whose action is `cluster`. Body and trailer hooks join when a step needs
// them (the exchange then streams through them); the first steps do not.
#include <memory>
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

class Filter {
 public:
  virtual ~Filter() = default;
  virtual std::string_view name() const = 0;
  virtual Status on_request_head(proxy::Exchange&) const { return Status::kContinue; }
  virtual void on_upstream_request(proxy::Exchange&) const {}
  virtual void on_response_head(proxy::Exchange&) const {}
  // Called after on_request_head answered kPause; never returns kPause.
  virtual awaitable<Status> resume(proxy::Exchange&) const { co_return Status::kContinue; }
};

using Chain = std::vector<std::shared_ptr<const Filter>>;

}  // namespace sluice::filters
