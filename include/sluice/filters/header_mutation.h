#pragma once
// The header mutation step: `request_headers` / `response_headers` of the listener, the virtual
// host and the route, applied in that order so the most specific level acts last and wins.
// Request fields change when the endpoint is known (on_upstream_request), so %UPSTREAM_HOST%
// has a value; response fields change on the way out, also on the route's direct responses and
// redirects (like Envoy's response_headers_to_add).
#include <string>
#include <vector>

#include "sluice/config/config.h"
#include "sluice/config/header_template.h"
#include "sluice/filters/filter.h"
#include "sluice/http/fields.h"

namespace sluice::filters {

// A header value with %VARIABLES% compiled at snapshot build into literal and variable parts
// (config::parse_header_template, the loader's own parser, so both agree on the syntax).
class ValueTemplate {
 public:
  // A template the loader refused cannot reach here; if one did, it would be sent literally.
  explicit ValueTemplate(std::string_view text);
  // %REQ(h)% gives the first value of h, or nothing when absent; an empty result still sets
  // the field (an empty value), like Envoy.
  std::string render(const proxy::Exchange& exchange) const;
  bool is_literal() const {
    return parts_.empty() || (parts_.size() == 1 && parts_[0].kind == config::TemplatePart::Kind::kLiteral);
  }

 private:
  std::vector<config::TemplatePart> parts_;
};

// One level's mutation of one direction, compiled.
class CompiledMutation {
 public:
  explicit CompiledMutation(const config::HeaderMutation& spec);
  void apply(http::FieldList& fields, const proxy::Exchange& exchange) const;

 private:
  struct Entry {
    std::string name;
    ValueTemplate value;
  };
  std::vector<std::string> remove_;
  std::vector<Entry> set_;
  std::vector<Entry> add_;
};

class HeaderMutationFilter final : public Filter {
 public:
  // The policies in order of application (listener, virtual host, route); empty ones skipped.
  explicit HeaderMutationFilter(const std::vector<const config::HeaderPolicy*>& levels);
  // Null when no level mutates anything: the chain then has no step for it.
  static std::shared_ptr<Filter> create(const std::vector<const config::HeaderPolicy*>& levels);

  std::string_view name() const override { return "header_mutation"; }
  void on_upstream_request(proxy::Exchange& exchange) const override;
  void on_response_head(proxy::Exchange& exchange) const override;

 private:
  std::vector<CompiledMutation> request_;
  std::vector<CompiledMutation> response_;
};

}  // namespace sluice::filters
