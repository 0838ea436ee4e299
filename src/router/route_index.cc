#include "sluice/router/route_index.h"

#include <algorithm>
#include <map>

#include "sluice/config/limits.h"
#include "sluice/router/route_table.h"

namespace sluice::router {

namespace {

using PathKind = config::Route::PathKind;

// Per-worker scratch for the candidate lists: a worker is one thread, and reusing the capacity
// keeps the request path free of allocations (RE2::Set::Match itself still allocates its
// result set when the regex phase runs).
std::vector<uint32_t>& candidate_scratch() {
  thread_local std::vector<uint32_t> candidates;
  candidates.clear();
  return candidates;
}

}  // namespace

RouteIndex::RouteIndex(const std::vector<Route>& routes) {
  // The same options the loader validated each pattern with and PathMatcher compiles it with;
  // only max_mem differs (one budget for the whole set). ANCHOR_BOTH is PathMatcher's FullMatch.
  re2::RE2::Options options = config::regex_options();
  options.set_max_mem(kRegexSetMaxMemBytes);
  auto set = std::make_unique<re2::RE2::Set>(options, re2::RE2::ANCHOR_BOTH);
  bool set_ok = true;
  for (uint32_t i = 0; i < routes.size(); ++i) {
    const PathMatcher& path = routes[i].path_matcher();
    switch (path.kind()) {
      case PathKind::kPath: exact_[path.value()].push_back(i); break;
      case PathKind::kPrefix: break;  // build_trie
      case PathKind::kRegex:
        regex_routes_.push_back(i);
        set_ok = set_ok && set->Add(path.value(), nullptr) == static_cast<int>(regex_routes_.size() - 1);
        break;
    }
  }
  if (!regex_routes_.empty() && set_ok && set->Compile()) regex_set_ = std::move(set);
  build_trie(routes);
}

void RouteIndex::build_trie(const std::vector<Route>& routes) {
  // Built with maps, then flattened into arrays the lookup walks without chasing pointers.
  std::vector<std::map<unsigned char, uint32_t>> children(1);
  std::vector<std::vector<uint32_t>> ending(1);
  for (uint32_t i = 0; i < routes.size(); ++i) {
    const PathMatcher& path = routes[i].path_matcher();
    if (path.kind() != PathKind::kPrefix) continue;
    uint32_t node = 0;
    for (char c : path.value()) {
      auto [it, added] = children[node].try_emplace(static_cast<unsigned char>(c),
                                                    static_cast<uint32_t>(children.size()));
      if (added) {
        children.emplace_back();
        ending.emplace_back();
      }
      node = it->second;
    }
    ending[node].push_back(i);
  }
  nodes_.resize(children.size());
  for (size_t n = 0; n < children.size(); ++n) {
    nodes_[n].first_edge = static_cast<uint32_t>(edge_bytes_.size());
    nodes_[n].edge_count = static_cast<uint32_t>(children[n].size());
    for (const auto& [byte, child] : children[n]) {
      edge_bytes_.push_back(byte);
      edge_children_.push_back(child);
    }
    nodes_[n].first_route = static_cast<uint32_t>(node_routes_.size());
    nodes_[n].route_count = static_cast<uint32_t>(ending[n].size());
    node_routes_.insert(node_routes_.end(), ending[n].begin(), ending[n].end());
  }
}

void RouteIndex::add_prefix_candidates(std::string_view path, std::vector<uint32_t>& out) const {
  uint32_t node = 0;
  for (size_t depth = 0;; ++depth) {
    const Node& n = nodes_[node];
    out.insert(out.end(), node_routes_.begin() + n.first_route,
               node_routes_.begin() + n.first_route + n.route_count);
    if (depth == path.size() || n.edge_count == 0) return;
    const unsigned char* first = edge_bytes_.data() + n.first_edge;
    const unsigned char* last = first + n.edge_count;
    const unsigned char* it = std::lower_bound(first, last, static_cast<unsigned char>(path[depth]));
    if (it == last || *it != static_cast<unsigned char>(path[depth])) return;
    node = edge_children_[n.first_edge + static_cast<uint32_t>(it - first)];
  }
}

void RouteIndex::add_regex_candidates(const std::vector<Route>& routes, std::string_view path,
                                      std::vector<uint32_t>& out) const {
  thread_local std::vector<int> hits;
  re2::RE2::Set::ErrorInfo error{re2::RE2::Set::kNoError};
  regex_set_->Match(re2::StringPiece(path.data(), path.size()), &hits, &error);
  if (error.kind == re2::RE2::Set::kNoError) {
    for (int h : hits) out.push_back(regex_routes_[static_cast<size_t>(h)]);
    return;
  }
  // The set's DFA ran out of memory (an adversarial mix of paths): one by one this time.
  for (uint32_t r : regex_routes_) {
    if (routes[r].path_matcher().matches(path)) out.push_back(r);
  }
}

const Route* RouteIndex::match(const std::vector<Route>& routes,
                               const http::RequestView& request) const {
  std::vector<uint32_t>& candidates = candidate_scratch();
  if (!exact_.empty()) {
    if (auto it = exact_.find(request.path); it != exact_.end()) {
      candidates.insert(candidates.end(), it->second.begin(), it->second.end());
    }
  }
  add_prefix_candidates(request.path, candidates);
  std::sort(candidates.begin(), candidates.end());
  // The first exact or prefix route that matches; only a regex route before it can still win.
  uint32_t best = static_cast<uint32_t>(routes.size());
  for (uint32_t c : candidates) {
    if (routes[c].conditions_match(request)) {
      best = c;
      break;
    }
  }
  const auto regex_end = std::lower_bound(regex_routes_.begin(), regex_routes_.end(), best);
  const size_t regexes_before = static_cast<size_t>(regex_end - regex_routes_.begin());
  if (regexes_before == 0) return best < routes.size() ? &routes[best] : nullptr;
  if (regexes_before <= kRegexScanMax || !regex_set_) {
    for (auto it = regex_routes_.begin(); it != regex_end; ++it) {
      if (routes[*it].matches(request)) return &routes[*it];
    }
  } else {
    candidates.clear();
    add_regex_candidates(routes, request.path, candidates);
    std::sort(candidates.begin(), candidates.end());
    for (uint32_t c : candidates) {
      if (c >= best) break;
      if (routes[c].conditions_match(request)) return &routes[c];
    }
  }
  return best < routes.size() ? &routes[best] : nullptr;
}

}  // namespace sluice::router
