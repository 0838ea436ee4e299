#pragma once
// The route index of one virtual host: which routes' path conditions hold for a path, found
// without walking every route. Built once with the snapshot (control thread), read by workers.
//
// First match wins exactly as in a linear scan: among the routes whose path condition holds,
// the lowest-index one whose header and query conditions also hold is the answer.
#include <re2/re2.h>
#include <re2/set.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "sluice/http/request_view.h"

namespace sluice::router {

class Route;

class RouteIndex {
 public:
  // RE2's max_mem for the one RE2::Set of a virtual host's regex routes: its program and its
  // lazily built DFA. The per-pattern kRegexMaxMemBytes (1 MiB) for each of 10,000 patterns
  // would be GiBs; the set shares one program and one DFA. A set that does not compile within
  // this, or a match whose DFA runs out of it, falls back to trying the regexes one by one:
  // slower, never wrong.
  static constexpr int64_t kRegexSetMaxMemBytes = 32 * 1024 * 1024;

  // Regex routes are filed in the prefix trie under the literal text every match must start
  // with (its leading plain characters), so a path only meets the regexes whose literal
  // prefix it has. Up to this many such candidates before the first exact or prefix route that
  // matches are tried one by one (FullMatch, about 120 ns each under load); more go through the
  // RE2::Set of all regex routes, whose Match costs 300-430 ns however few patterns it holds
  // (bench/route_bench.cc; bench/results/2026-12-01-route-index.md).
  static constexpr size_t kRegexScanMax = 3;
  // How much of a regex's literal prefix is used; longer prefixes only narrow further.
  static constexpr size_t kRegexPrefixMaxLen = 128;

  // `routes` is the virtual host's route list; the index keeps positions in it, not pointers.
  explicit RouteIndex(const std::vector<Route>& routes);
  RouteIndex(const RouteIndex&) = delete;
  RouteIndex& operator=(const RouteIndex&) = delete;

  // The first route (by position in `routes`, the list the index was built from) that matches.
  const Route* match(const std::vector<Route>& routes, const http::RequestView& request) const;

  // Whether the regex routes are matched through one RE2::Set (false: one by one).
  bool regex_set_compiled() const { return regex_set_ != nullptr; }

 private:
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  // A byte trie of the prefixes, flattened and path-compressed: only the root and the nodes
  // that end a route or branch are kept; a chain of single-child nodes between them becomes
  // the label of the edge into the next kept node (its first byte in edge_bytes_, the rest in
  // labels_[label_start, label_start + label_len), compared at once). Node n's children are
  // edge_bytes_/edge_children_[first_edge, first_edge + edge_count), sorted by byte; a node with
  // kDenseChildren or more children also has a 256-entry table dense_[dense * 256 + byte]
  // giving the child's position among them (checked against edge_bytes_, so no sentinel). The
  // prefix routes ending at node n are node_routes_[first_route, first_route + route_count), in
  // route order; the regex routes whose literal prefix ends there are
  // node_regexes_[first_regex, first_regex + regex_count).
  struct Node {
    uint32_t first_edge = 0;
    uint32_t edge_count = 0;
    uint32_t first_route = 0;
    uint32_t route_count = 0;
    uint32_t first_regex = 0;
    uint32_t regex_count = 0;
    uint32_t label_start = 0;
    uint32_t label_len = 0;
    uint32_t dense = kNoDense;
  };
  static constexpr uint32_t kNoDense = UINT32_MAX;
  // From this many children a node looks its child up in a table (256 bytes) instead of
  // scanning its sorted child bytes: /svc/N/ routes branch 10-11 ways per digit.
  static constexpr uint32_t kDenseChildren = 8;

  // Regex routes go under their literal prefix, or at the root without `literal_prefixes`.
  void build_trie(const std::vector<Route>& routes, bool literal_prefixes);
  // Prefix routes that match `path` into `prefixes`, regex routes whose literal prefix `path`
  // has into `regexes`.
  void walk_trie(std::string_view path, std::vector<uint32_t>& prefixes,
                 std::vector<uint32_t>& regexes) const;
  // Regex routes whose pattern matches `path`, appended to `out` (unsorted); needs regex_set_.
  void add_regex_candidates(const std::vector<Route>& routes, std::string_view path,
                            std::vector<uint32_t>& out) const;

  std::unordered_map<std::string, std::vector<uint32_t>, StringHash, std::equal_to<>> exact_;
  std::vector<Node> nodes_;
  std::vector<unsigned char> edge_bytes_;
  std::vector<uint32_t> edge_children_;
  std::vector<unsigned char> labels_;
  std::vector<unsigned char> dense_;
  std::vector<uint32_t> node_routes_;
  std::vector<uint32_t> node_regexes_;
  std::vector<uint32_t> regex_routes_;  // set index → route index, ascending
  std::unique_ptr<re2::RE2::Set> regex_set_;
};

}  // namespace sluice::router
