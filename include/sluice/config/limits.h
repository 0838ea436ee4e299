#pragma once
// The budget of the configuration loader: every bound on what one sluice.yaml may cost to read,
// in one place. docs/CONFIGURATION.md ("Limits of the loader") lists them for operators; each
// error that enforces one names the file and the limit.
//
// Why: a 1 KB file of nested YAML aliases ("billion laughs") took 86 s and 1.1 GiB in
// `sluice --validate`, and a few hundred routes sharing one costly regex (`\pL{100}`, a 119,304
// instruction RE2 program, ~0.5 s per compile) took over a minute. The loader runs on the control
// thread of a live proxy at every SIGHUP, so a bad file must fail fast and small.
#include <re2/re2.h>

#include <cstddef>
#include <cstdint>

namespace sluice::config {

inline constexpr uint64_t kMiB = 1024 * 1024;

// The file itself, checked before anything is parsed. The default config is 2 KiB; 4 MiB holds
// tens of thousands of routes.
inline constexpr uint64_t kMaxConfigFileBytes = 4 * kMiB;

// The document as the loader would walk it, with every alias expanded. The tree shares the node
// of an anchor with each alias, so it stays small while walking it explodes. yaml::Document
// counts this from the parser's events as the tree is built (an anchor's size is known when its
// node ends, an alias adds it), so a bomb is refused in milliseconds. Without aliases a file
// of kMaxConfigFileBytes has at most about this many nodes ("- a\n" is 4 bytes).
inline constexpr uint64_t kMaxYamlNodes = 1'000'000;
// And at most this many nodes per byte of the file (plus kYamlNodeAllowance): without aliases a
// node takes at least two bytes ("[a,b]"), so only aliases can go beyond it. It stops a small
// alias bomb well below kMaxYamlNodes (514 bytes expanding to 65,536 route conditions, found by
// tests/fuzz/config_loader) while leaving every file without aliases untouched.
inline constexpr uint64_t kMaxYamlNodesPerByte = 16;
inline constexpr uint64_t kYamlNodeAllowance = 256;
// Bytes of all scalars with aliases expanded: one large anchored string repeated by aliases is
// copied by every key that reads it. Without aliases this is at most the file size.
inline constexpr uint64_t kMaxYamlScalarBytes = 4 * kMaxConfigFileBytes;

// Errors reported for one file; beyond this the loader says how many more it found. A file of
// kMaxYamlNodes bad nodes would otherwise make a message of hundreds of MB (stderr, /server_info).
inline constexpr size_t kMaxReportedErrors = 100;

// Regexes (route `match.regex` and header `regex` conditions), compiled with RE2.
// A pattern longer than this is refused before RE2 parses it: RE2 expands counted repetitions
// while parsing, so a long pattern of `a{1000}` pieces costs before any size check can run.
inline constexpr size_t kMaxRegexLength = 1024;
// Instructions of one compiled RE2 program (RE2::ProgramSize()); compile time grows with it.
// `^/assets/.+\.(css|js)$` has 21, a UUID 72, `\pL+` 1,198, `(?i)[a-z]{1000}` 6,004 (refused).
inline constexpr int kMaxRegexProgramSize = 5'000;
// Instructions of all distinct patterns of one file together (identical patterns count once:
// they are compiled once). About 0.5 s of compiling on this project's 2-core machine.
inline constexpr int64_t kMaxTotalRegexProgramSize = 100'000;
// What a pattern RE2 refuses as too large counts against kMaxTotalRegexProgramSize: about the
// number of instructions RE2 builds within kRegexMaxMemBytes before it gives up (the compile
// costs that much time, and refusing it must not be a way around the total).
inline constexpr int64_t kRegexTooLargeCost = 20'000;
// RE2's max_mem for each regex: its program plus its lazily built DFA cache. RE2's default is
// 8 MiB; route patterns need far less, and a few hundred regex routes must not grow GiBs of DFA.
inline constexpr int64_t kRegexMaxMemBytes = 1 * kMiB;

// The options every configured regex is compiled with, by the loader (validation) and by the
// router (matching) alike, so that a pattern the loader accepts compiles the same way there.
inline re2::RE2::Options regex_options() {
  re2::RE2::Options options;
  options.set_log_errors(false);
  options.set_max_mem(kRegexMaxMemBytes);
  return options;
}

// Route `direct_response.body`.
inline constexpr size_t kMaxDirectResponseBodyBytes = 64 * 1024;

}  // namespace sluice::config
