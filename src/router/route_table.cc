#include "sluice/router/route_table.h"

#include <algorithm>
#include <array>
#include <cctype>

#include "sluice/filters/header_mutation.h"
#include "sluice/filters/local_actions.h"
#include "sluice/filters/registry.h"

namespace sluice::router {

Route::Route(const config::Route& spec, size_t cluster_index, const config::VirtualHost& vhost,
             const std::vector<const config::HeaderPolicy*>& levels)
    : name_(spec.name), path_(spec) {
  for (const auto& h : spec.headers) headers_.emplace_back(h);
  for (const auto& q : spec.query) query_.emplace_back(q);
  if (spec.client_cert) client_cert_.emplace(*spec.client_cert);
  action_.kind = spec.action;
  action_.cluster_index = cluster_index;
  action_.cluster_name = spec.cluster;
  action_.timeout = spec.timeout;
  action_.prefix_rewrite = spec.prefix_rewrite;
  action_.host_rewrite = spec.host_rewrite;
  const auto& upgrades = spec.upgrades ? *spec.upgrades : vhost.upgrades;
  action_.websocket = std::find(upgrades.begin(), upgrades.end(), "websocket") != upgrades.end();
  action_.upgrade_idle_timeout = spec.upgrade_idle_timeout;
  action_.grpc_timeout_header = spec.grpc_timeout_header;

  // The chain: header mutation (all levels in one step), registered compiled-in steps, then
  // the local action if any.
  std::vector<const config::HeaderPolicy*> all = levels;
  all.push_back(&spec.header_policy);
  if (auto f = filters::HeaderMutationFilter::create(all)) chain_.push_back(std::move(f));
  for (const auto& factory : filters::step_factories()) {
    if (auto f = factory(spec)) chain_.push_back(std::move(f));
  }
  if (spec.action == config::Route::ActionKind::kDirectResponse && spec.direct_response) {
    chain_.push_back(std::make_shared<filters::DirectResponseFilter>(*spec.direct_response));
  } else if (spec.action == config::Route::ActionKind::kRedirect && spec.redirect) {
    std::string prefix = spec.path_kind == config::Route::PathKind::kRegex ? "" : spec.path;
    chain_.push_back(std::make_shared<filters::RedirectFilter>(*spec.redirect, std::move(prefix)));
  }
  for (const auto& step : chain_) chain_wants_body_ = chain_wants_body_ || step->wants_body();
}

void Route::assign_state_slots(std::string_view prefix, std::vector<filters::StateSlot>& slots) {
  for (const auto& step : chain_) {
    if (!step->make_worker_state()) continue;
    step->assign_state_slot(slots.size());
    slots.push_back({std::string(prefix) + "/" + name_ + "/" + std::string(step->name()), step.get()});
  }
}

void VirtualHost::assign_state_slots(std::string_view prefix, std::vector<filters::StateSlot>& slots) {
  const std::string here = std::string(prefix) + "/" + name_;
  for (auto& r : routes_) r.assign_state_slots(here, slots);
}

void RouteTable::assign_state_slots(std::string_view listener, std::vector<filters::StateSlot>& slots) {
  for (auto& vh : hosts_) vh->assign_state_slots(listener, slots);
}

bool Route::matches(const http::RequestView& request) const {
  return path_.matches(request.path) && conditions_match(request);
}

bool Route::conditions_match(const http::RequestView& request) const {
  for (const auto& h : headers_) {
    if (!h.matches(request)) return false;
  }
  for (const auto& q : query_) {
    if (!q.matches(request.query)) return false;
  }
  return !client_cert_ || client_cert_->matches(request.tls);
}

std::string Route::rewritten_path(std::string_view path) const {
  if (!action_.prefix_rewrite) return std::string(path);
  // A prefix or exact-path match: the matched part is path_.value().
  std::string out = *action_.prefix_rewrite;
  out.append(path.substr(std::min(path.size(), path_.value().size())));
  return out;
}

VirtualHost::VirtualHost(const config::VirtualHost& spec, const std::vector<config::Cluster>& clusters,
                         const config::HeaderPolicy* listener_policy)
    : name_(spec.name) {
  const std::vector<const config::HeaderPolicy*> levels = {listener_policy, &spec.header_policy};
  routes_.reserve(spec.routes.size());
  for (const auto& r : spec.routes) {
    size_t idx = 0;
    for (; idx < clusters.size(); ++idx) {
      if (clusters[idx].name == r.cluster) break;
    }
    routes_.emplace_back(r, idx, spec, levels);
  }
  if (routes_.size() > kLinearScanMaxRoutes) index_ = std::make_unique<const RouteIndex>(routes_);
}

const Route* VirtualHost::match(const http::RequestView& request) const {
  return index_ ? index_->match(routes_, request) : match_linear(request);
}

const Route* VirtualHost::match_linear(const http::RequestView& request) const {
  for (const auto& r : routes_) {
    if (r.matches(request)) return &r;
  }
  return nullptr;
}

std::string_view host_without_port(std::string_view authority) {
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    return close == std::string_view::npos ? authority : authority.substr(0, close + 1);
  }
  auto colon = authority.rfind(':');
  return colon == std::string_view::npos ? authority : authority.substr(0, colon);
}

RouteTable::RouteTable(const config::Listener& spec, const std::vector<config::Cluster>& clusters) {
  for (const auto& vh_spec : spec.virtual_hosts) {
    hosts_.push_back(std::make_unique<VirtualHost>(vh_spec, clusters, &spec.header_policy));
    const VirtualHost* vh = hosts_.back().get();
    for (const auto& d : vh_spec.domains) {
      if (d == "*") {
        default_ = vh;
      } else if (d.rfind("*", 0) == 0) {
        suffixes_.emplace(d.substr(1), vh);
        suffix_starts_.set(static_cast<unsigned char>(d[1]));
        suffix_lengths_.set(std::min(d.size() - 1, kMaxBitmapLength));
      } else if (d.size() > 1 && d.back() == '*') {
        prefixes_.emplace(d.substr(0, d.size() - 1), vh);
        prefix_ends_.set(static_cast<unsigned char>(d[d.size() - 2]));
        prefix_lengths_.set(std::min(d.size() - 1, kMaxBitmapLength));
      } else {
        exact_.emplace(d, vh);
      }
    }
  }
}

const VirtualHost* RouteTable::find_virtual_host(std::string_view authority) const {
  std::string_view host = host_without_port(authority);
  // Lower-case into a stack buffer: no allocation for any sane host name.
  std::array<char, 256> buf;
  std::string heap;
  std::string_view lowered;
  if (host.size() <= buf.size()) {
    for (size_t i = 0; i < host.size(); ++i) {
      buf[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(host[i])));
    }
    lowered = std::string_view(buf.data(), host.size());
  } else {
    heap.assign(host);
    for (char& c : heap) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    lowered = heap;
  }
  if (auto it = exact_.find(lowered); it != exact_.end()) return it->second;
  // A wildcard matches at least one byte, so a suffix starts after position 0 and a prefix ends
  // before the last byte. Longest first: suffixes from the left, prefixes from the right.
  if (!suffixes_.empty()) {
    for (size_t i = 1; i < lowered.size(); ++i) {
      if (!suffix_starts_[static_cast<unsigned char>(lowered[i])] ||
          !suffix_lengths_[std::min(lowered.size() - i, kMaxBitmapLength)]) {
        continue;
      }
      if (auto it = suffixes_.find(lowered.substr(i)); it != suffixes_.end()) return it->second;
    }
  }
  if (!prefixes_.empty()) {
    for (size_t len = lowered.size(); len-- > 1;) {  // len: size - 1 down to 1
      if (!prefix_ends_[static_cast<unsigned char>(lowered[len - 1])] ||
          !prefix_lengths_[std::min(len, kMaxBitmapLength)]) {
        continue;
      }
      if (auto it = prefixes_.find(lowered.substr(0, len)); it != prefixes_.end()) {
        return it->second;
      }
    }
  }
  return default_;
}

}  // namespace sluice::router
