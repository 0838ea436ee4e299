#pragma once
// Route actions that answer without an upstream: `direct_response` and `redirect`. Each is the
// last step of its route's chain and always answers locally.
#include <string>

#include "sluice/config/config.h"
#include "sluice/filters/filter.h"

namespace sluice::filters {

class DirectResponseFilter final : public Filter {
 public:
  explicit DirectResponseFilter(config::DirectResponse spec) : spec_(std::move(spec)) {}
  std::string_view name() const override { return "direct_response"; }
  Status on_request_head(proxy::Exchange& exchange) const override;

 private:
  config::DirectResponse spec_;
};

class RedirectFilter final : public Filter {
 public:
  // `route_prefix`: what the route's prefix match matched, replaced by prefix_rewrite.
  RedirectFilter(config::Redirect spec, std::string route_prefix)
      : spec_(std::move(spec)), route_prefix_(std::move(route_prefix)) {}
  std::string_view name() const override { return "redirect"; }
  Status on_request_head(proxy::Exchange& exchange) const override;
  // The Location for a request (exposed for unit tests).
  std::string location(std::string_view scheme, std::string_view authority, std::string_view path,
                       std::string_view query, bool has_query) const;

 private:
  config::Redirect spec_;
  std::string route_prefix_;
};

}  // namespace sluice::filters
