// The loader's budget (include/sluice/config/limits.h): file size, alias expansion, number of
// errors, UTF-8, and the cost of regexes. Each limit is hit by a small document and refused with
// one clear error at the right place; documents just inside each limit still load.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "loader_test_util.h"
#include "sluice/config/limits.h"
#include "sluice/config/loader.h"

namespace sluice::config {
namespace {

using testing::expect_error;
using testing::expect_errors;
using testing::load_route;
using testing::load_yaml;

using testing::kMinimal;
using testing::load_routes;
using testing::replace;

// Exactly one error, on `line`, with this message.
void expect_refused(const LoadResult& r, int line, const std::string& message) {
  ASSERT_EQ(r.errors.size(), 1u) << r.error_text();
  EXPECT_EQ(r.errors[0].line, line) << r.error_text();
  EXPECT_EQ(r.errors[0].message, message);
}

// --- file size -------------------------------------------------------------------------------

// kMinimal followed by a comment that brings the document to exactly `size` bytes.
std::string padded_to(size_t size) {
  std::string text = kMinimal;
  text += "#";
  text.append(size - text.size() - 1, 'x');
  text += "\n";
  return text;
}

TEST(LoaderBudget, DocumentAtTheSizeLimitLoads) {
  LoadResult r = load_string(padded_to(kMaxConfigFileBytes), "test.yaml");
  EXPECT_TRUE(r.ok()) << r.error_text();
}

TEST(LoaderBudget, DocumentOneByteOverTheSizeLimitIsRefusedUnparsed) {
  // Not even YAML: nothing of it is parsed.
  std::string text = padded_to(kMaxConfigFileBytes) + "[";
  LoadResult r = load_string(text, "test.yaml");
  ASSERT_EQ(r.errors.size(), 1u) << r.error_text();
  EXPECT_EQ(r.errors[0].to_string(),
            "test.yaml: the file is larger than 4 MiB, the largest configuration Sluice reads");
}

TEST(LoaderBudget, HugeFileIsRefusedNamingTheFile) {
  auto path = (std::filesystem::temp_directory_path() /
               ("sluice_budget_test_" + std::to_string(::getpid()) + ".yaml")).string();
  {
    std::ofstream out(path, std::ios::binary);
    out << padded_to(kMaxConfigFileBytes);
    out << std::string(3 * kMiB, '#');  // 7 MiB in all
  }
  LoadResult r = load_file(path);
  std::remove(path.c_str());
  ASSERT_EQ(r.errors.size(), 1u) << r.error_text();
  EXPECT_EQ(r.errors[0].to_string(),
            path + ": the file is larger than 4 MiB, the largest configuration Sluice reads");
  EXPECT_EQ(r.sha256, "");
}

// --- alias expansion -------------------------------------------------------------------------

TEST(LoaderBudget, BillionLaughsIsRefusedBeforeAnyTreeIsBuilt) {
  // 9^9 (387 million) strings in 400 bytes. The top-level key `lol` is unknown: had the loader
  // walked a tree, it would report it too.
  std::string yaml = "lol:\n  - &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
  for (int i = 1; i <= 8; ++i) {
    yaml += fmt::format("  - &a{} [", i);
    for (int j = 0; j < 9; ++j) yaml += fmt::format("{}*a{}", j ? ", " : "", i - 1);
    yaml += "]\n";
  }
  yaml += kMinimal;
  LoadResult r = load_string(yaml, "test.yaml");
  // The map, `lol` and its list are 3 nodes; a0..a3 expand to 10, 91, 820 and 7381 nodes. A
  // file of its size may expand to 16 nodes per byte (+256): a4's first *a3, on line 6, passes
  // that. (Without the per-byte bound, line 8 would pass the million-node cap.)
  const uint64_t cap = kMaxYamlNodesPerByte * yaml.size() + kYamlNodeAllowance;
  expect_error(r, 6, 10, "",
               fmt::format("with its aliases expanded the document has more than {} YAML nodes, the "
                           "most Sluice reads from a file of {} bytes (16 per byte) (alias '*a3' here "
                           "adds 7381 nodes)",
                           cap, yaml.size()));
}

TEST(LoaderBudget, AliasBombOfValidRoutesIsRefused) {
  // Every level is valid configuration: 30 listeners of 30 virtual hosts of 30 routes of 30
  // header conditions, 4 million nodes. Walked, it took 16 s and 100 MB and said the names
  // repeat; refused, it is one error at the alias that crosses the limit.
  auto thirty = [](const char* alias) {
    std::string s = "[";
    for (int i = 0; i < 30; ++i) s += fmt::format("{}*{}", i ? "," : "", alias);
    return s + "]";
  };
  std::string yaml = fmt::format(
      "defs:\n"
      "  - &h {{name: x-a, exact: \"1\"}}\n"
      "  - &hs {}\n"
      "  - &r {{match: {{prefix: /, headers: *hs}}, cluster: c}}\n"
      "  - &rs {}\n"
      "  - &v {{name: v, domains: [\"*\"], routes: *rs}}\n"
      "  - &vs {}\n"
      "  - &l {{name: l, address: 127.0.0.1:8000, virtual_hosts: *vs}}\n"
      "listeners: {}\n"
      "clusters: [ {{name: c, endpoints: [127.0.0.1:9000]}} ]\n",
      thirty("h"), thirty("r"), thirty("v"), thirty("l"));
  LoadResult r = load_string(yaml, "test.yaml");
  ASSERT_EQ(r.errors.size(), 1u) << r.error_text();
  // Refused by the per-byte bound already in the list of virtual hosts (line 7); without it, the
  // million-node cap would stop it in the list of listeners (line 9).
  EXPECT_EQ(r.errors[0].line, 7) << r.error_text();
  EXPECT_EQ(r.errors[0].message.rfind(fmt::format("with its aliases expanded the document has more than {} "
                                                  "YAML nodes, the most Sluice reads from a file of {} bytes "
                                                  "(16 per byte) (alias '*v' here adds ",
                                                  kMaxYamlNodesPerByte * yaml.size() + kYamlNodeAllowance,
                                                  yaml.size()),
                                      0),
            0u)
      << r.error_text();
}

TEST(LoaderBudget, AliasesWithinTheBudgetAreRead) {
  // Aliases are ordinary YAML: one list of header conditions shared by two routes.
  LoadResult r = load_routes(R"(
          - name: a
            match: { prefix: /a, headers: &canary [ { name: x-canary, exact: "1" } ] }
            cluster: c
          - name: b
            match: { prefix: /b, headers: *canary }
            cluster: c
)");
  ASSERT_TRUE(r.ok()) << r.error_text();
  const auto& routes = r.config.listeners.at(0).virtual_hosts.at(0).routes;
  ASSERT_EQ(routes.size(), 2u);
  ASSERT_EQ(routes[1].headers.size(), 1u);
  EXPECT_EQ(routes[1].headers[0].name, "x-canary");
  EXPECT_EQ(routes[1].headers[0].value, "1");
}

TEST(LoaderBudget, RecursiveAliasIsRefused) {
  LoadResult r = load_yaml(std::string("loop: &a [ x, *a ]\n") + kMinimal);
  expect_error(r, 1, 15, "", "alias '*a' refers to a node that contains it; its expansion never ends");
}

TEST(LoaderBudget, MillionNodesWithoutAliasesAreRefused) {
  // 2 MB of flow list: within the file size, over the node count.
  std::string yaml = "lol: [";
  for (uint64_t i = 0; i < kMaxYamlNodes; ++i) yaml += "a,";
  yaml += "a]\n";
  expect_refused(load_string(yaml + kMinimal, "test.yaml"), 1,
                 "with its aliases expanded the document has more than 1000000 YAML nodes, the most "
                 "Sluice reads");
}

TEST(LoaderBudget, ASmallAliasBombIsRefusedByItsAmplification) {
  // 16 wide and 4 deep: 65,536 header conditions from about 500 bytes, far below kMaxYamlNodes
  // but far beyond what a file of that size can hold without aliases (found by fuzzing).
  std::string yaml = "a: &a [{name: x, present: true}, {name: x, present: true}, {name: x, present: true},"
                     " {name: x, present: true}, {name: x, present: true}, {name: x, present: true},"
                     " {name: x, present: true}, {name: x, present: true}, {name: x, present: true},"
                     " {name: x, present: true}, {name: x, present: true}, {name: x, present: true},"
                     " {name: x, present: true}, {name: x, present: true}, {name: x, present: true},"
                     " {name: x, present: true}]\n"
                     "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                     "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                     "d: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n";
  LoadResult r = load_string(yaml + kMinimal, "test.yaml");
  ASSERT_FALSE(r.errors.empty());
  EXPECT_NE(r.errors[0].message.find("per byte"), std::string::npos) << r.errors[0].message;
}

TEST(LoaderBudget, OneLongStringRepeatedByAliasesIsRefused) {
  // 100 KiB, repeated 200 times: 20 MB of strings for the loader to copy, from a 101 KiB file.
  std::string yaml = "big: &big " + std::string(100 * 1024, 'x') + "\nmany: [";
  for (int i = 0; i < 200; ++i) yaml += "*big, ";
  yaml += "end]\n";
  expect_refused(load_string(yaml + kMinimal, "test.yaml"), 2,
                 "with its aliases expanded the document has more than 16 MiB of strings, the most Sluice "
                 "reads (alias '*big' here adds 102400 bytes)");
}

// --- number of errors ------------------------------------------------------------------------

TEST(LoaderBudget, ErrorsBeyondAHundredAreCountedNotListed) {
  std::string yaml;
  for (int i = 0; i < 150; ++i) yaml += fmt::format("unknown_{}: 1\n", i);
  LoadResult r = load_string(yaml, "test.yaml");
  // 150 unknown keys, and 'listeners' and 'clusters' are missing.
  ASSERT_EQ(r.errors.size(), kMaxReportedErrors + 1) << r.error_text();
  EXPECT_EQ(r.errors[99].path, "unknown_99");
  EXPECT_EQ(r.errors[100].to_string(), "test.yaml: 52 more error(s) not shown (Sluice reports the first 100)");
}

// --- UTF-8 -----------------------------------------------------------------------------------

TEST(LoaderBudget, InvalidUtf8InANameIsRefusedWithItsPlace) {
  LoadResult r = load_yaml(replace(kMinimal, "name: v", "name: caf\xe9"));  // Latin-1 é
  expect_error(r, 5, 15, "listeners[0].virtual_hosts[0].name",
               "not valid UTF-8 (byte 4 of the value is 0xe9); the file must be UTF-8");
}

TEST(LoaderBudget, ValidUtf8IsKept) {
  LoadResult r = load_yaml(replace(kMinimal, "name: r", "name: caf\xc3\xa9-\xf0\x9f\x8c\x8a"));
  ASSERT_TRUE(r.ok()) << r.error_text();
  EXPECT_EQ(r.config.listeners[0].virtual_hosts[0].routes[0].name, "caf\xc3\xa9-\xf0\x9f\x8c\x8a");
}

TEST(LoaderBudget, EveryKindOfInvalidUtf8IsRefused) {
  const char* const bad[] = {
      "\xc0\xaf",          // overlong '/'
      "\xed\xa0\x80",      // a surrogate (U+D800) encoded directly
      "\xf4\x90\x80\x80",  // beyond U+10FFFF
      "\xe2\x82",          // truncated sequence
      "\x80",              // a lone continuation byte
  };
  for (const char* b : bad) {
    LoadResult r = load_yaml(replace(kMinimal, "\"*\"", std::string("\"x") + b + "\""));
    ASSERT_EQ(r.errors.size(), 1u) << r.error_text();
    EXPECT_EQ(r.errors[0].path, "listeners[0].virtual_hosts[0].domains[0]");
    EXPECT_EQ(r.errors[0].line, 6);
    EXPECT_EQ(r.errors[0].column, 19);
    EXPECT_EQ(r.errors[0].message.rfind("not valid UTF-8 (byte 2 of the value is 0x", 0), 0u)
        << r.errors[0].message;
  }
}

TEST(LoaderBudget, InvalidUtf8InAKeyIsRefused) {
  LoadResult r = load_yaml(std::string("caf\xe9: 1\n") + kMinimal);
  expect_error(r, 1, 1, "", "a key is not valid UTF-8 (byte 4 of the key is 0xe9); the file must be UTF-8");
}

// --- regexes ---------------------------------------------------------------------------------

const char* const kRegexPath = "listeners[0].virtual_hosts[0].routes[0].match.regex";

TEST(LoaderBudget, RegexLongerThanTheLimitIsRefused) {
  std::string pattern(kMaxRegexLength + 1, 'a');
  LoadResult r = load_route("            match: { regex: " + pattern + " }\n            cluster: c\n");
  expect_error(r, 9, 29, kRegexPath, "the regex is 1025 bytes long, more than the limit of 1024");
  // At the limit, it is compiled.
  EXPECT_TRUE(load_route("            match: { regex: " + pattern.substr(1) + " }\n            cluster: c\n").ok());
}

TEST(LoaderBudget, RegexWithTooLargeAProgramIsRefused) {
  // 6,004 instructions (each letter of (?i) is a two-way choice).
  LoadResult r = load_route("            match: { regex: \"(?i)[a-z]{1000}\" }\n            cluster: c\n");
  expect_error(r, 9, 29, kRegexPath,
               "regex '(?i)[a-z]{1000}' is too costly: its RE2 program has 6004 instructions, more "
               "than the limit of 5000 (avoid large counted repetitions such as {1000})");
}

TEST(LoaderBudget, RegexBeyondRe2MemoryIsRefused) {
  // 119,304 instructions with RE2's default 8 MiB, half a second to compile each time.
  LoadResult r = load_route("            match: { regex: \"\\\\pL{100}\" }\n            cluster: c\n");
  expect_error(r, 9, 29, kRegexPath,
               "regex '\\pL{100}' is too costly: RE2 cannot compile it within 1 MiB (the most one regex "
               "may use; avoid large counted repetitions such as {1000})");
}

TEST(LoaderBudget, UnicodeClassesFitTheBudget) {
  auto r = load_route("            match: { regex: \"^/wiki/[\\\\pL\\\\pN_.~%-]+$\" }\n            cluster: c\n");
  EXPECT_TRUE(r.ok()) << r.error_text();
}

// `count` routes, route i matching the regex pattern_of(i).
template <typename F>
LoadResult load_regex_routes(int count, F pattern_of) {
  std::string routes;
  for (int i = 0; i < count; ++i) {
    routes += fmt::format("          - match: {{ regex: \"{}\" }}\n            cluster: c\n", pattern_of(i));
  }
  return load_routes(routes);
}

TEST(LoaderBudget, IdenticalRegexesCountOnce) {
  // 4,805 instructions each: 50 of them compiled one by one would be 240,250, over the total.
  LoadResult r = load_regex_routes(50, [](int) { return "/.{600}"; });
  EXPECT_TRUE(r.ok()) << r.error_text();
  EXPECT_EQ(r.config.listeners[0].virtual_hosts[0].routes.size(), 50u);
}

TEST(LoaderBudget, DistinctRegexesShareOneTotal) {
  // 20 distinct patterns of ~4,800 instructions fit in 100,000; the 21st does not.
  LoadResult r = load_regex_routes(22, [](int i) { return fmt::format("/{}.{{600}}", i); });
  ASSERT_EQ(r.errors.size(), 1u) << r.error_text();
  const LoadError& e = r.errors[0];
  EXPECT_EQ(e.path, "listeners[0].virtual_hosts[0].routes[20].match.regex");
  EXPECT_EQ(e.line, 8 + 2 * 20);
  EXPECT_EQ(e.message,
            "the regexes of this file need more than 100000 RE2 instructions together, the most Sluice "
            "compiles for one file (identical patterns count once); later regexes were not checked");
}

TEST(LoaderBudget, RefusedRegexesCountAgainstTheTotal) {
  // Each refused pattern cost RE2 about as much as 20,000 instructions before it gave up; five
  // of them use the whole budget, and the sixth goes over it.
  LoadResult r = load_regex_routes(6, [](int i) { return fmt::format("\\\\pL{{{}}}", 100 + i); });
  ASSERT_EQ(r.errors.size(), 6u) << r.error_text();
  for (int i = 0; i < 5; ++i) {
    EXPECT_NE(r.errors[i].message.find("is too costly: RE2 cannot compile it within 1 MiB"), std::string::npos)
        << r.errors[i].message;
  }
  EXPECT_EQ(r.errors[5].path, "listeners[0].virtual_hosts[0].routes[5].match.regex");
  EXPECT_EQ(r.errors[5].message.rfind("the regexes of this file need more than 100000 RE2 instructions", 0), 0u);
}

TEST(LoaderBudget, AReloadReusesVerdictsAndKeepsTheBudget) {
  // The second load of the same patterns takes the first load's verdicts instead of compiling
  // (what a SIGHUP of an unchanged file does): the same errors, and the same total.
  auto patterns = [](int i) { return i == 3 ? std::string("/(") : fmt::format("/{}.{{600}}", i); };
  LoadResult first = load_regex_routes(22, patterns);
  LoadResult second = load_regex_routes(22, patterns);
  ASSERT_EQ(first.errors.size(), 2u) << first.error_text();
  EXPECT_EQ(second.error_text(), first.error_text());
  EXPECT_EQ(second.errors[0].path, "listeners[0].virtual_hosts[0].routes[3].match.regex");
  EXPECT_EQ(second.errors[1].path, "listeners[0].virtual_hosts[0].routes[21].match.regex");
}

TEST(LoaderBudget, HeaderRegexesShareTheBudget) {
  LoadResult r = load_route(
      "            match: { prefix: /, headers: [ { name: x-a, regex: \"(?i)[a-z]{1000}\" } ] }\n"
      "            cluster: c\n");
  ASSERT_EQ(r.errors.size(), 1u) << r.error_text();
  EXPECT_EQ(r.errors[0].path, "listeners[0].virtual_hosts[0].routes[0].match.headers[0].regex");
  EXPECT_EQ(r.errors[0].message.rfind("regex '(?i)[a-z]{1000}' is too costly", 0), 0u);
}

}  // namespace
}  // namespace sluice::config
