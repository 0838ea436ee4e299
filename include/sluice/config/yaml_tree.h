#pragma once
// The YAML front end of the configuration loader: a read-only tree of maps, sequences and
// scalars, each node with its position, parsed within the loader's budget (limits.h).
//
// Why not YAML::Node: yaml-cpp took ~370 ms to build the tree of a 10,000-route file (about
// 5 µs per node) and a second pass of its event parser sized the alias expansion first; libyaml's
// event parser reads the same 958 KB file in ~20 ms (bench/results/2026-12-01-reload.md). The tree
// keeps what the loader asks of a node: its kind, its scalar, its children in order, its mark.
//
// yaml-cpp stays as the second front end for the files libyaml refuses (syntax errors, bytes
// that are not UTF-8, undefined aliases): it builds the same tree from its own events, so such a
// file gets exactly the tree, or the syntax error message and position, it always got. The
// loader also asks it about a file that has errors, for the few syntax errors libyaml lets by.
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::config::yaml {

// 0-based, like yaml-cpp's and libyaml's marks; line -1 when there is no position.
struct Mark {
  int line = -1;
  int column = -1;
  bool is_null() const { return line < 0; }
  static Mark null_mark() { return Mark{}; }
};

struct NodeData;

// A handle to a node of a Document (or to no node: a missing key or index). Cheap to copy; valid
// while its Document lives. The names follow YAML::Node's, so the loader reads the same.
class Node {
 public:
  using Pair = std::pair<Node, Node>;

  Node() = default;
  explicit Node(const NodeData* data) : data_(data) {}

  explicit operator bool() const { return data_ != nullptr; }  // the node exists
  bool is_null() const;  // `~`, `null`, or nothing after a key
  bool is_scalar() const;
  bool is_sequence() const;
  bool is_map() const;
  Mark mark() const;
  const std::string& scalar() const;  // empty unless is_scalar()
  size_t size() const;                // items of a sequence, pairs of a map, else 0

  Node operator[](size_t i) const;              // the i-th item of a sequence
  Node operator[](std::string_view key) const;  // the value of the first such key of a map
  const Pair* begin() const;                    // the pairs of a map, in file order
  const Pair* end() const;

 private:
  const NodeData* data_ = nullptr;
};

struct NodeData {
  enum class Kind : uint8_t { kNull, kScalar, kSequence, kMap };
  Kind kind = Kind::kNull;
  Mark mark;
  std::string scalar;
  std::vector<Node> items;
  std::vector<Node::Pair> pairs;
};

// What stopped a parse: a YAML syntax error or the loader's budget. The message is complete
// ("YAML syntax error: ..." or the budget's sentence).
struct ParseError {
  Mark mark;
  std::string message;
};

class Document {
 public:
  // Parses the first document of `text` (what YAML::Load read). A node reached through an alias
  // is the anchored node itself, as with yaml-cpp. The alias expansion is counted against
  // kMaxYamlNodes, kMaxYamlNodesPerByte and kMaxYamlScalarBytes as the nodes arrive.
  static Document parse(std::string_view text);

  bool ok() const { return error_.message.empty(); }
  const ParseError& error() const { return error_; }
  Node root() const { return root_; }
  // Which front end read it, for the tests that pin the fallback.
  bool read_by_yaml_cpp() const { return by_yaml_cpp_; }

  // The yaml-cpp front end alone (the fallback), for tests comparing the two.
  static Document parse_with_yaml_cpp(std::string_view text);
  // yaml-cpp's syntax error in the first document of `text`, if it finds one. Its parser only,
  // no tree and no budget (aliases are not expanded by events).
  static std::optional<ParseError> yaml_cpp_syntax_error(std::string_view text);

 private:
  friend class TreeBuilder;
  std::deque<NodeData> nodes_;  // stable addresses as the tree grows
  Node root_;
  ParseError error_;
  bool by_yaml_cpp_ = false;
};

// The offset of the first byte of `s` that does not start a valid UTF-8 sequence (overlong forms,
// surrogates and code points beyond U+10FFFF included), or nullopt when all of `s` is UTF-8.
std::optional<size_t> invalid_utf8_at(std::string_view s);

}  // namespace sluice::config::yaml
