#include "sluice/config/yaml_tree.h"

#include <fmt/core.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/parser.h>
#include <yaml.h>

#include <algorithm>
#include <boost/locale/utf.hpp>
#include <cstring>
#include <optional>
#include <sstream>
#include <unordered_map>

#include "sluice/config/limits.h"

namespace sluice::config::yaml {

using Kind = NodeData::Kind;

bool Node::is_null() const { return data_ && data_->kind == Kind::kNull; }
bool Node::is_scalar() const { return data_ && data_->kind == Kind::kScalar; }
bool Node::is_sequence() const { return data_ && data_->kind == Kind::kSequence; }
bool Node::is_map() const { return data_ && data_->kind == Kind::kMap; }
Mark Node::mark() const { return data_ ? data_->mark : Mark::null_mark(); }

const std::string& Node::scalar() const {
  static const std::string empty;
  return is_scalar() ? data_->scalar : empty;
}

size_t Node::size() const {
  if (is_sequence()) return data_->items.size();
  if (is_map()) return data_->pairs.size();
  return 0;
}

Node Node::operator[](size_t i) const {
  return is_sequence() && i < data_->items.size() ? data_->items[i] : Node();
}

Node Node::operator[](std::string_view key) const {
  if (!is_map()) return Node();
  for (const auto& [k, v] : data_->pairs) {
    if (k.is_scalar() && k.scalar() == key) return v;
  }
  return Node();
}

const Node::Pair* Node::begin() const { return is_map() ? data_->pairs.data() : nullptr; }
const Node::Pair* Node::end() const {
  return is_map() ? data_->pairs.data() + data_->pairs.size() : nullptr;
}

// Builds the tree from either parser's events and sizes the document as the loader will walk it,
// with every alias expanded: an anchored node's size is recorded when it ends, an alias adds it.
// Throws Exceeded at the first node beyond kMaxYamlNodes or kMaxYamlScalarBytes, so a
// billion-laughs file costs as much as reading its few hundred bytes (the tree itself shares an
// anchored node with its aliases and stays small).
class TreeBuilder {
 public:
  struct Exceeded {
    Mark mark;
    std::string message;
  };
  // Anchors are numbered 1, 2, ... in the order they are defined (yaml-cpp's anchor_t); 0: none.
  using Anchor = size_t;

  TreeBuilder(Document& doc, uint64_t file_bytes)
      : doc_(doc),
        file_bytes_(file_bytes),
        max_nodes_(
            std::min(kMaxYamlNodes, kMaxYamlNodesPerByte * file_bytes + kYamlNodeAllowance)) {}

  void define_anchor(std::string name) { names_.push_back(std::move(name)); }
  Anchor anchors_defined() const { return names_.size(); }

  void leaf(Mark mark, Anchor anchor, Kind kind, std::string value) {
    Size s{1, value.size()};
    count(mark, s, 0);
    NodeData& d = make(kind, mark);
    d.scalar = std::move(value);
    add_to_parent(Node(&d), s);
    record(anchor, &d, s);
  }
  void open(Mark mark, Anchor anchor, Kind kind) {
    count(mark, Size{1, 0}, 0);
    NodeData& d = make(kind, mark);
    stack_.push_back(Open{anchor, &d, Size{1, 0}, Node()});
    record(anchor, &d, std::nullopt);  // defined, but an alias to it from inside would never end
  }
  void close() {
    Open done = stack_.back();
    stack_.pop_back();
    add_to_parent(Node(done.data), done.size);
    record(done.anchor, done.data, done.size);
  }
  // False when `anchor` was never defined (the caller reports it).
  bool alias(Mark mark, Anchor anchor) {
    if (anchor == 0 || anchor >= anchors_.size() || !anchors_[anchor].data) return false;
    const Anchored& a = anchors_[anchor];
    if (!a.size) {
      throw Exceeded{mark, fmt::format("alias {} refers to a node that contains it; its expansion "
                                       "never ends",
                                       alias_name(anchor))};
    }
    count(mark, *a.size, anchor);
    add_to_parent(Node(a.data), *a.size);
    return true;
  }
  bool done() const { return have_root_ && stack_.empty(); }
  size_t depth() const { return stack_.size(); }

 private:
  struct Size {
    uint64_t nodes = 0;
    uint64_t bytes = 0;
  };
  struct Open {
    Anchor anchor;
    NodeData* data;
    Size size;
    Node key;  // a map's key waiting for its value
  };
  struct Anchored {
    const NodeData* data = nullptr;
    std::optional<Size> size;  // nullopt while the node is open
  };

  NodeData& make(Kind kind, Mark mark) {
    NodeData& d = doc_.nodes_.emplace_back();
    d.kind = kind;
    d.mark = mark;
    return d;
  }
  void add_to_parent(Node node, Size s) {
    if (stack_.empty()) {
      doc_.root_ = node;
      have_root_ = true;
      return;
    }
    Open& parent = stack_.back();
    parent.size.nodes += s.nodes;
    parent.size.bytes += s.bytes;
    if (parent.data->kind == Kind::kSequence) {
      parent.data->items.push_back(node);
    } else if (!parent.key) {
      parent.key = node;
    } else {
      parent.data->pairs.emplace_back(parent.key, node);
      parent.key = Node();
    }
  }
  // Counts `s` (a leaf, a collection's own node, or what an alias expands to) into the whole
  // document; `alias` names the alias that brought it, for the message.
  void count(Mark mark, Size s, Anchor alias) {
    total_.nodes += s.nodes;
    total_.bytes += s.bytes;
    auto via = [&](uint64_t n, const char* unit) {
      return alias != 0 ? fmt::format(" (alias {} here adds {} {})", alias_name(alias), n, unit)
                        : std::string();
    };
    if (total_.nodes > max_nodes_) {
      const std::string per_size = max_nodes_ < kMaxYamlNodes
                                       ? fmt::format(" from a file of {} bytes ({} per byte)",
                                                     file_bytes_, kMaxYamlNodesPerByte)
                                       : std::string();
      throw Exceeded{mark, fmt::format("with its aliases expanded the document has more than {} "
                                       "YAML nodes, the most Sluice reads{}{}",
                                       max_nodes_, per_size, via(s.nodes, "nodes"))};
    }
    if (total_.bytes > kMaxYamlScalarBytes) {
      throw Exceeded{mark,
                     fmt::format("with its aliases expanded the document has more than {} MiB "
                                 "of strings, the most Sluice reads{}",
                                 kMaxYamlScalarBytes / kMiB, via(s.bytes, "bytes"))};
    }
  }
  void record(Anchor anchor, const NodeData* data, std::optional<Size> s) {
    if (anchor == 0) return;
    if (anchors_.size() <= anchor) anchors_.resize(anchor + 1);
    anchors_[anchor] = Anchored{data, s};
  }
  std::string alias_name(Anchor anchor) const;

  Document& doc_;
  std::vector<Open> stack_;
  std::vector<Anchored> anchors_;   // by anchor number
  std::vector<std::string> names_;  // anchor number - 1 → name
  Size total_;
  uint64_t file_bytes_;
  uint64_t max_nodes_;
  bool have_root_ = false;
};

std::optional<size_t> invalid_utf8_at(std::string_view s) {
  using Traits = boost::locale::utf::utf_traits<char>;
  const char* p = s.data();
  const char* const end = p + s.size();
  while (p != end) {
    const char* start = p;
    boost::locale::utf::code_point c = Traits::decode(p, end);
    if (c == boost::locale::utf::illegal || c == boost::locale::utf::incomplete) {
      return static_cast<size_t>(start - s.data());
    }
  }
  return std::nullopt;
}

std::string TreeBuilder::alias_name(Anchor anchor) const {
  if (anchor == 0 || anchor > names_.size() || invalid_utf8_at(names_[anchor - 1])) return "'*'";
  return fmt::format("'*{}'", names_[anchor - 1]);
}

namespace {

// yaml-cpp's events into the builder (the fallback front end).
class YamlCppEvents : public YAML::EventHandler {
 public:
  explicit YamlCppEvents(TreeBuilder& b) : b_(b) {}
  static Mark mark(const YAML::Mark& m) {
    return m.is_null() ? Mark::null_mark() : Mark{m.line, m.column};
  }

  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& m, YAML::anchor_t anchor) override {
    b_.leaf(mark(m), anchor, Kind::kNull, {});
  }
  void OnScalar(const YAML::Mark& m, const std::string&, YAML::anchor_t anchor,
                const std::string& value) override {
    b_.leaf(mark(m), anchor, Kind::kScalar, value);
  }
  void OnSequenceStart(const YAML::Mark& m, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    b_.open(mark(m), anchor, Kind::kSequence);
  }
  void OnMapStart(const YAML::Mark& m, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    b_.open(mark(m), anchor, Kind::kMap);
  }
  void OnSequenceEnd() override { b_.close(); }
  void OnMapEnd() override { b_.close(); }
  // yaml-cpp numbers anchors 1, 2, ... in the order they are defined, one OnAnchor each.
  void OnAnchor(const YAML::Mark&, const std::string& name) override { b_.define_anchor(name); }
  void OnAlias(const YAML::Mark& m, YAML::anchor_t anchor) override {
    // yaml-cpp refuses an undefined alias while scanning; an alias to an open node is ours.
    b_.alias(mark(m), anchor);
  }

 private:
  TreeBuilder& b_;
};

// libyaml counts columns in characters and yaml-cpp in bytes; errors keep yaml-cpp's columns.
// Lines that are all ASCII (nearly every line of a configuration) need no conversion.
class ByteColumns {
 public:
  explicit ByteColumns(std::string_view text) : text_(text) {
    size_t start = 0;
    for (;;) {
      size_t nl = text.find('\n', start);
      size_t end = nl == std::string_view::npos ? text.size() : nl;
      bool ascii = std::all_of(text.begin() + start, text.begin() + end,
                               [](char c) { return static_cast<unsigned char>(c) < 0x80; });
      lines_.push_back(Line{start, ascii});
      if (nl == std::string_view::npos) break;
      start = nl + 1;
    }
  }
  Mark convert(const yaml_mark_t& m) const {
    Mark out{static_cast<int>(m.line), static_cast<int>(m.column)};
    if (m.line >= lines_.size() || lines_[m.line].ascii) return out;
    // Walk `column` characters from the start of the line.
    size_t p = lines_[m.line].start;
    for (size_t chars = 0; chars < m.column && p < text_.size(); ++chars) {
      ++p;
      while (p < text_.size() && (static_cast<unsigned char>(text_[p]) & 0xC0) == 0x80) ++p;
    }
    out.column = static_cast<int>(p - lines_[m.line].start);
    return out;
  }

 private:
  struct Line {
    size_t start;
    bool ascii;
  };
  std::string_view text_;
  std::vector<Line> lines_;
};

// Text libyaml would read differently from yaml-cpp: a byte-order mark or UTF-16 (libyaml
// decodes it, yaml-cpp's columns differ), and the YAML 1.1 line breaks NEL, LS and PS, which
// libyaml counts as new lines and yaml-cpp does not.
bool libyaml_reads_differently(std::string_view text) {
  if (!text.empty()) {
    unsigned char c = static_cast<unsigned char>(text[0]);
    if (c == 0xEF || c == 0xFE || c == 0xFF || c == 0x00) return true;
  }
  return text.find("\xC2\x85") != std::string_view::npos ||
         text.find("\xE2\x80\xA8") != std::string_view::npos ||
         text.find("\xE2\x80\xA9") != std::string_view::npos;
}

// yaml-cpp's rule for a null: a plain, untagged `~`, `null`, `Null`, `NULL` or nothing.
bool is_null_scalar(const yaml_event_t& e) {
  if (e.data.scalar.style != YAML_PLAIN_SCALAR_STYLE || e.data.scalar.tag != nullptr) return false;
  std::string_view v(reinterpret_cast<const char*>(e.data.scalar.value), e.data.scalar.length);
  return v.empty() || v == "~" || v == "null" || v == "Null" || v == "NULL";
}

struct LibyamlParser {
  yaml_parser_t parser;
  LibyamlParser() { yaml_parser_initialize(&parser); }
  ~LibyamlParser() { yaml_parser_delete(&parser); }
};

struct LibyamlEvent {
  yaml_event_t event;
  ~LibyamlEvent() { yaml_event_delete(&event); }
};

// yaml-cpp refuses a document nested deeper than about 500 collections ("bad file"); libyaml
// has no such limit. A configuration nests about 8 deep, so anything beyond this goes to
// yaml-cpp, which keeps its verdict on such files (tests/fuzz/corpus/config_loader/
// deep_flow_nesting).
constexpr size_t kLibyamlMaxDepth = 100;

// Reads the first document with libyaml. False when libyaml refuses the text or reads something
// this builder does not take (an undefined alias): the caller then asks yaml-cpp.
bool read_with_libyaml(std::string_view text, TreeBuilder& b) {
  if (libyaml_reads_differently(text)) return false;
  ByteColumns columns(text);
  LibyamlParser p;
  yaml_parser_set_input_string(&p.parser, reinterpret_cast<const unsigned char*>(text.data()),
                               text.size());
  yaml_parser_set_encoding(&p.parser, YAML_UTF8_ENCODING);
  std::unordered_map<std::string, TreeBuilder::Anchor> anchors;  // name → latest definition
  auto define = [&](const yaml_char_t* name) -> TreeBuilder::Anchor {
    if (!name) return 0;
    b.define_anchor(reinterpret_cast<const char*>(name));
    return anchors[reinterpret_cast<const char*>(name)] = b.anchors_defined();
  };
  for (;;) {
    LibyamlEvent e;
    if (!yaml_parser_parse(&p.parser, &e.event)) return false;
    Mark mark = columns.convert(e.event.start_mark);
    switch (e.event.type) {
      case YAML_STREAM_END_EVENT:
      case YAML_DOCUMENT_END_EVENT:
        return true;  // the first document only, as YAML::Load
      case YAML_ALIAS_EVENT: {
        auto it = anchors.find(reinterpret_cast<const char*>(e.event.data.alias.anchor));
        if (it == anchors.end() || !b.alias(mark, it->second)) return false;
        break;
      }
      case YAML_SCALAR_EVENT: {
        const auto& s = e.event.data.scalar;
        bool null = is_null_scalar(e.event);
        TreeBuilder::Anchor anchor = define(s.anchor);
        // Nothing where a node belongs (`key:` at the end of its line, an empty `-`): libyaml
        // marks it where the indicator before it ends, yaml-cpp where the next token starts.
        // That token is the one libyaml looked at to see the node was empty, still first in
        // its queue (a public member of yaml_parser_t).
        if (null && s.length == 0 && e.event.start_mark.index == e.event.end_mark.index &&
            p.parser.tokens.head != p.parser.tokens.tail) {
          mark = columns.convert(p.parser.tokens.head->start_mark);
        }
        b.leaf(
            mark, anchor, null ? Kind::kNull : Kind::kScalar,
            null ? std::string() : std::string(reinterpret_cast<const char*>(s.value), s.length));
        break;
      }
      case YAML_SEQUENCE_START_EVENT:
        b.open(mark, define(e.event.data.sequence_start.anchor), Kind::kSequence);
        if (b.depth() > kLibyamlMaxDepth) return false;
        break;
      case YAML_MAPPING_START_EVENT:
        b.open(mark, define(e.event.data.mapping_start.anchor), Kind::kMap);
        if (b.depth() > kLibyamlMaxDepth) return false;
        break;
      case YAML_SEQUENCE_END_EVENT:
      case YAML_MAPPING_END_EVENT:
        b.close();
        break;
      default:
        break;
    }
    if (b.done()) return true;
  }
}

}  // namespace

Document Document::parse(std::string_view text) {
  Document doc;
  try {
    TreeBuilder builder(doc, text.size());
    if (read_with_libyaml(text, builder)) return doc;
  } catch (const TreeBuilder::Exceeded& e) {
    doc.error_ = ParseError{e.mark, e.message};
    return doc;
  }
  return parse_with_yaml_cpp(text);
}

Document Document::parse_with_yaml_cpp(std::string_view text) {
  Document doc;
  doc.by_yaml_cpp_ = true;
  try {
    TreeBuilder builder(doc, text.size());
    YamlCppEvents events(builder);
    std::istringstream in{std::string(text)};
    YAML::Parser parser(in);
    parser.HandleNextDocument(events);
  } catch (const YAML::ParserException& e) {
    doc = Document();
    doc.by_yaml_cpp_ = true;
    doc.error_ =
        ParseError{YamlCppEvents::mark(e.mark), fmt::format("YAML syntax error: {}", e.msg)};
  } catch (const TreeBuilder::Exceeded& e) {
    doc = Document();
    doc.by_yaml_cpp_ = true;
    doc.error_ = ParseError{e.mark, e.message};
  }
  return doc;
}

std::optional<ParseError> Document::yaml_cpp_syntax_error(std::string_view text) {
  struct Ignore : YAML::EventHandler {
    void OnDocumentStart(const YAML::Mark&) override {}
    void OnDocumentEnd() override {}
    void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
    void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
    void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  const std::string&) override {}
    void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                         YAML::EmitterStyle::value) override {}
    void OnSequenceEnd() override {}
    void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                    YAML::EmitterStyle::value) override {}
    void OnMapEnd() override {}
  } ignore;
  try {
    std::istringstream in{std::string(text)};
    YAML::Parser parser(in);
    parser.HandleNextDocument(ignore);
  } catch (const YAML::ParserException& e) {
    return ParseError{YamlCppEvents::mark(e.mark), fmt::format("YAML syntax error: {}", e.msg)};
  }
  return std::nullopt;
}

}  // namespace sluice::config::yaml
