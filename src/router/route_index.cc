#include "sluice/router/route_index.h"

#include <algorithm>
#include <cstring>
#include <map>

#include "sluice/config/limits.h"
#include "sluice/router/route_table.h"

namespace sluice::router {

namespace {

using PathKind = config::Route::PathKind;

// Per-worker scratch for the candidate lists: a worker is one thread, and reusing the capacity
// keeps the request path free of allocations (RE2::Set::Match itself still allocates its
// result set when it runs).
struct Scratch {
  std::vector<uint32_t> routes;
  std::vector<uint32_t> regexes;
};
Scratch& scratch() {
  thread_local Scratch s;
  s.routes.clear();
  s.regexes.clear();
  return s;
}

}  // namespace

RouteIndex::RouteIndex(const std::vector<Route>& routes) {
  // The same options the loader validated each pattern with and PathMatcher compiles it with;
  // only max_mem differs (one budget for the whole set). ANCHOR_BOTH is PathMatcher's FullMatch.
  re2::RE2::Options options = config::regex_options();
  options.set_max_mem(kRegexSetMaxMemBytes);
  auto set = std::make_unique<re2::RE2::Set>(options, re2::RE2::ANCHOR_BOTH);
  bool set_ok = true;
  // literal_prefix() reads patterns as case-sensitive regex syntax.
  const bool literal_prefixes = options.case_sensitive() && !options.literal();
  for (uint32_t i = 0; i < routes.size(); ++i) {
    const PathMatcher& path = routes[i].path_matcher();
    switch (path.kind()) {
      case PathKind::kPath:
        exact_[path.value()].push_back(i);
        break;
      case PathKind::kPrefix:
        break;  // build_trie
      case PathKind::kRegex:
        regex_routes_.push_back(i);
        set_ok =
            set_ok && set->Add(path.value(), nullptr) == static_cast<int>(regex_routes_.size() - 1);
        break;
    }
  }
  if (!regex_routes_.empty() && set_ok && set->Compile()) regex_set_ = std::move(set);
  build_trie(routes, literal_prefixes);
}

void RouteIndex::build_trie(const std::vector<Route>& routes, bool literal_prefixes) {
  // Built with maps, then flattened into arrays the lookup walks without chasing pointers.
  std::vector<std::map<unsigned char, uint32_t>> children(1);
  std::vector<std::vector<uint32_t>> ending(1);
  std::vector<std::vector<uint32_t>> ending_regex(1);
  for (uint32_t i = 0; i < routes.size(); ++i) {
    const PathMatcher& path = routes[i].path_matcher();
    if (path.kind() == PathKind::kPath) continue;
    std::string key = path.kind() == PathKind::kPrefix ? path.value()
                      : literal_prefixes               ? regex_literal_prefix(path.value())
                                                       : std::string();
    if (path.kind() == PathKind::kRegex) key.resize(std::min(key.size(), kRegexPrefixMaxLen));
    uint32_t node = 0;
    for (char c : key) {
      auto [it, added] = children[node].try_emplace(static_cast<unsigned char>(c),
                                                    static_cast<uint32_t>(children.size()));
      if (added) {
        children.emplace_back();
        ending.emplace_back();
        ending_regex.emplace_back();
      }
      node = it->second;
    }
    (path.kind() == PathKind::kPrefix ? ending : ending_regex)[node].push_back(i);
  }
  // Flattened breadth first; a kept node's edges are written together, so they are contiguous.
  const auto ends_nothing = [&](uint32_t t) {
    return ending[t].empty() && ending_regex[t].empty() && children[t].size() == 1;
  };
  std::vector<std::pair<uint32_t, uint32_t>> pending{{0, 0}};  // (trie node, flat node)
  nodes_.emplace_back();
  for (size_t next = 0; next < pending.size(); ++next) {
    const auto [t, f] = pending[next];
    nodes_[f].first_route = static_cast<uint32_t>(node_routes_.size());
    nodes_[f].route_count = static_cast<uint32_t>(ending[t].size());
    node_routes_.insert(node_routes_.end(), ending[t].begin(), ending[t].end());
    nodes_[f].first_regex = static_cast<uint32_t>(node_regexes_.size());
    nodes_[f].regex_count = static_cast<uint32_t>(ending_regex[t].size());
    node_regexes_.insert(node_regexes_.end(), ending_regex[t].begin(), ending_regex[t].end());
    nodes_[f].first_edge = static_cast<uint32_t>(edge_bytes_.size());
    nodes_[f].edge_count = static_cast<uint32_t>(children[t].size());
    for (const auto& [byte, child] : children[t]) {
      Node kept;
      kept.label_start = static_cast<uint32_t>(labels_.size());
      uint32_t c = child;
      while (ends_nothing(c)) {
        labels_.push_back(children[c].begin()->first);
        c = children[c].begin()->second;
      }
      kept.label_len = static_cast<uint32_t>(labels_.size()) - kept.label_start;
      edge_bytes_.push_back(byte);
      edge_children_.push_back(static_cast<uint32_t>(nodes_.size()));
      pending.emplace_back(c, static_cast<uint32_t>(nodes_.size()));
      nodes_.push_back(kept);
    }
    if (nodes_[f].edge_count >= kDenseChildren) {
      nodes_[f].dense = static_cast<uint32_t>(dense_.size() / 256);
      dense_.resize(dense_.size() + 256, 0);
      for (uint32_t e = 0; e < nodes_[f].edge_count; ++e) {
        dense_[nodes_[f].dense * 256 + edge_bytes_[nodes_[f].first_edge + e]] =
            static_cast<unsigned char>(e);
      }
    }
  }
}

void RouteIndex::walk_trie(std::string_view path, std::vector<uint32_t>& prefixes,
                           std::vector<uint32_t>& regexes) const {
  // Most nodes end no route: testing the counts before inserting took a 10,000-prefix-route
  // match from 877 to 782 instructions (callgrind, BM_RouteMatch/prefix/last/routes:10000).
  // Path compression and the dense child tables took walking "/svc/9999/" (10,000 regex routes)
  // from 595 to 271 instructions: 7 kept nodes instead of 11, no binary search.
  const auto* bytes = reinterpret_cast<const unsigned char*>(path.data());
  uint32_t node = 0;
  size_t depth = 0;
  for (;;) {
    const Node& n = nodes_[node];
    if (n.route_count != 0) {
      prefixes.insert(prefixes.end(), node_routes_.begin() + n.first_route,
                      node_routes_.begin() + n.first_route + n.route_count);
    }
    if (n.regex_count != 0) {
      regexes.insert(regexes.end(), node_regexes_.begin() + n.first_regex,
                     node_regexes_.begin() + n.first_regex + n.regex_count);
    }
    if (depth == path.size() || n.edge_count == 0) return;
    const unsigned char byte = bytes[depth];
    uint32_t edge;
    if (n.dense != kNoDense) {
      edge = n.first_edge + dense_[static_cast<size_t>(n.dense) * 256 + byte];
      if (edge_bytes_[edge] != byte) return;
    } else {
      edge = n.first_edge;
      const uint32_t last = n.first_edge + n.edge_count;
      while (edge != last && edge_bytes_[edge] != byte) ++edge;
      if (edge == last) return;
    }
    node = edge_children_[edge];
    ++depth;
    const Node& child = nodes_[node];
    if (child.label_len != 0) {
      if (path.size() - depth < child.label_len ||
          std::memcmp(bytes + depth, labels_.data() + child.label_start, child.label_len) != 0) {
        return;
      }
      depth += child.label_len;
    }
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
  Scratch& candidates = scratch();
  if (!exact_.empty()) {
    if (auto it = exact_.find(request.path); it != exact_.end()) {
      candidates.routes.insert(candidates.routes.end(), it->second.begin(), it->second.end());
    }
  }
  walk_trie(request.path, candidates.routes, candidates.regexes);
  std::sort(candidates.routes.begin(), candidates.routes.end());
  // The first exact or prefix route that matches; only a regex route before it can still win.
  uint32_t best = static_cast<uint32_t>(routes.size());
  for (uint32_t c : candidates.routes) {
    if (routes[c].conditions_match(request)) {
      best = c;
      break;
    }
  }
  std::vector<uint32_t>& regexes = candidates.regexes;
  std::sort(regexes.begin(), regexes.end());
  const auto regex_end = std::lower_bound(regexes.begin(), regexes.end(), best);
  const size_t regexes_before = static_cast<size_t>(regex_end - regexes.begin());
  if (regexes_before <= kRegexScanMax || !regex_set_) {
    for (auto it = regexes.begin(); it != regex_end; ++it) {
      if (routes[*it].matches(request)) return &routes[*it];
    }
  } else {
    regexes.clear();
    add_regex_candidates(routes, request.path, regexes);
    std::sort(regexes.begin(), regexes.end());
    for (uint32_t c : regexes) {
      if (c >= best) break;
      if (routes[c].conditions_match(request)) return &routes[c];
    }
  }
  return best < routes.size() ? &routes[best] : nullptr;
}

}  // namespace sluice::router
