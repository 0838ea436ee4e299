// The loader's YAML front end (yaml_tree.h): libyaml builds the tree yaml-cpp's events build,
// with the same kinds, scalars and marks, and files libyaml refuses go to yaml-cpp.
#include "sluice/config/yaml_tree.h"

#include "sluice/config/loader.h"

#include <fmt/core.h>
#include <gtest/gtest.h>

#include <string>

namespace sluice::config::yaml {
namespace {

// Both trees, as text: kind, mark and scalar of every node, children indented.
std::string dump(Node n, int depth = 0) {
  std::string pad(depth * 2, ' ');
  if (!n) return pad + "undefined\n";
  std::string where = fmt::format("{}:{}", n.mark().line, n.mark().column);
  if (n.is_null()) return fmt::format("{}null @{}\n", pad, where);
  if (n.is_scalar()) return fmt::format("{}'{}' @{}\n", pad, n.scalar(), where);
  std::string out;
  if (n.is_sequence()) {
    out = fmt::format("{}seq @{}\n", pad, where);
    for (size_t i = 0; i < n.size(); ++i) out += dump(n[i], depth + 1);
  } else {
    out = fmt::format("{}map @{}\n", pad, where);
    for (const auto& [k, v] : n) out += dump(k, depth + 1) + dump(v, depth + 2);
  }
  return out;
}

void expect_same_as_yaml_cpp(const std::string& text) {
  Document fast = Document::parse(text);
  Document slow = Document::parse_with_yaml_cpp(text);
  EXPECT_FALSE(fast.read_by_yaml_cpp()) << text;
  ASSERT_TRUE(fast.ok()) << text << fast.error().message;
  ASSERT_TRUE(slow.ok()) << text << slow.error().message;
  EXPECT_EQ(dump(fast.root()), dump(slow.root())) << text;
}

TEST(YamlTree, BlockAndFlowCollectionsAreReadAsYamlCppReadsThem) {
  expect_same_as_yaml_cpp("a: 1\nb: [x, 'y', \"z\"]\nc: { d: e, f: [g] }\n");
  expect_same_as_yaml_cpp(
      "listeners:\n  - name: l\n    address: 127.0.0.1:8000\n"
      "    virtual_hosts: [ { name: v, domains: [\"*\"] } ]\n");
  expect_same_as_yaml_cpp("- a\n- - b\n  - c\n- d: e\n  f: g\n");
  expect_same_as_yaml_cpp("k:\n- indentless\n- sequence\n");
  expect_same_as_yaml_cpp("text: |\n  two\n  lines\nfolded: >\n  one\n  line\n");
  expect_same_as_yaml_cpp("# comment\n\nkey: value # trailing\n");
  expect_same_as_yaml_cpp("escapes: \"a\\tb\\u00e9\"\nsingle: 'it''s'\n");
}

TEST(YamlTree, NullsAndTheirMarksAreYamlCpps) {
  expect_same_as_yaml_cpp("a:\nb: ~\nc: null\nd: Null\ne: NULL\nf: 'null'\ng: !!str\n");
  expect_same_as_yaml_cpp("outer:\n  inner:\nnext: 1\n");
  expect_same_as_yaml_cpp("last:\n");
  expect_same_as_yaml_cpp("list:\n  -\n  - x\n");
  expect_same_as_yaml_cpp("flow: { a, b: }\n");
  Document d = Document::parse("a:\nb: ~\n");
  EXPECT_TRUE(d.root()["a"].is_null());
  EXPECT_TRUE(d.root()["b"].is_null());
  EXPECT_FALSE(d.root()["c"]);  // a missing key is no node at all
}

TEST(YamlTree, ColumnsCountBytesAsYamlCppDoes) {
  // libyaml counts characters; errors keep yaml-cpp's byte columns.
  expect_same_as_yaml_cpp("é: { ü: [ ß, x ] }\n");
  Document d = Document::parse("é: { ü: [ ß, x ] }\n");
  EXPECT_EQ(d.root()["é"]["ü"][1].mark().column, 16);  // é, ü and ß are two bytes each
}

TEST(YamlTree, AnAliasIsTheAnchoredNode) {
  expect_same_as_yaml_cpp("a: &x { k: v }\nb: *x\nc: &x [1]\nd: *x\n");
  Document d = Document::parse("a: &x { k: v }\nb: *x\n");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d.root()["b"]["k"].scalar(), "v");
  EXPECT_EQ(d.root()["b"].mark().line, 0);  // the anchor's node, where it was written
}

TEST(YamlTree, OnlyTheFirstDocumentIsRead) {
  expect_same_as_yaml_cpp("a: 1\n---\nb: 2\n");
  Document d = Document::parse("---\na: 1\n...\n---\nb: 2\n");
  EXPECT_TRUE(d.root()["a"]);
  EXPECT_FALSE(d.root()["b"]);
}

TEST(YamlTree, DuplicateKeysAreKeptInOrderAndTheFirstIsFound) {
  Document d = Document::parse("a: 1\na: 2\n");
  ASSERT_EQ(d.root().size(), 2u);
  EXPECT_EQ(d.root()["a"].scalar(), "1");
}

TEST(YamlTree, WhatLibyamlRefusesGetsYamlCppsVerdict) {
  // A syntax error: yaml-cpp's message and position, as the loader always reported them.
  Document bad = Document::parse("listeners: [ a, b\nclusters: []\n");
  EXPECT_TRUE(bad.read_by_yaml_cpp());
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, "YAML syntax error: end of sequence flow not found");
  EXPECT_EQ(bad.error().mark.line, 1);
  EXPECT_EQ(bad.error().mark.column, 8);
  // Bytes that are not UTF-8: libyaml refuses the file, yaml-cpp reads it and the loader names
  // the key that holds them.
  Document latin1 = Document::parse("name: caf\xe9\n");
  EXPECT_TRUE(latin1.read_by_yaml_cpp());
  ASSERT_TRUE(latin1.ok());
  EXPECT_EQ(latin1.root()["name"].scalar(), "caf\xe9");
  // An alias to an anchor never defined.
  Document undefined = Document::parse("a: *nowhere\n");
  EXPECT_TRUE(undefined.read_by_yaml_cpp());
  EXPECT_FALSE(undefined.ok());
}

TEST(YamlTree, AFileWithErrorsGetsYamlCppsSyntaxError) {
  // libyaml reads both as documents (a lone explicit key; a key spread over two lines) where
  // yaml-cpp finds syntax errors; the loader reports yaml-cpp's, as before libyaml.
  LoadResult lone = load_string("?", "test.yaml");
  ASSERT_EQ(lone.errors.size(), 1u) << lone.error_text();
  EXPECT_EQ(lone.errors[0].to_string(), "test.yaml:1:1: YAML syntax error: unknown token");
  LoadResult split = load_string("listeners\n      127:\n  - name: x\n", "test.yaml");
  ASSERT_EQ(split.errors.size(), 1u) << split.error_text();
  EXPECT_EQ(split.errors[0].to_string(), "test.yaml:2:10: YAML syntax error: illegal map value");
}

TEST(YamlTree, DeepNestingGetsYamlCppsVerdict) {
  std::string deep = "listeners: " + std::string(600, '[') + std::string(600, ']') + "\n";
  Document d = Document::parse(deep);
  EXPECT_TRUE(d.read_by_yaml_cpp());
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().message, "YAML syntax error: bad file");
  expect_same_as_yaml_cpp("a: " + std::string(50, '[') + std::string(50, ']') + "\n");
}

TEST(YamlTree, EscapesAreDecodedAsUtf8) {
  // The one place the trees differ on purpose: yaml-cpp 0.7 writes \N (U+0085) and \_ (U+00A0)
  // as the single bytes 0x85 and 0xa0, which are not UTF-8; libyaml encodes them (found by
  // replaying tests/fuzz/corpus/config_loader/quoted_escapes through both).
  Document d = Document::parse("a: \"\\N\\_\\x41\\u00e9\"\n");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d.root()["a"].scalar(),
            "\xc2\x85\xc2\xa0"
            "A"
            "\xc3\xa9");
}

TEST(YamlTree, TheAliasBudgetStopsTheParse) {
  Document d = Document::parse("loop: &a [ x, *a ]\n");
  EXPECT_FALSE(d.read_by_yaml_cpp());
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().message,
            "alias '*a' refers to a node that contains it; its expansion never ends");
  EXPECT_EQ(d.error().mark.line, 0);
  EXPECT_EQ(d.error().mark.column, 14);
}

}  // namespace
}  // namespace sluice::config::yaml
