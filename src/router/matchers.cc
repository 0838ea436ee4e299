#include "sluice/router/matchers.h"

#include <strings.h>

#include <cstring>

#include <mutex>
#include <unordered_map>

#include "sluice/config/limits.h"
#include "sluice/net/stream.h"

namespace sluice::router {

// Text every full match of `pattern` starts with: its leading plain characters, conservatively.
// Written here because RE2 has no public call for it: PossibleMatchRange builds a DFA per
// pattern (82% of building the route index, 345 ms for 10,000 regex routes, and the DFA memory
// stays with each shared RE2), and RE2's RequiredPrefix is not in the installed headers.
// Anything unusual gives a shorter prefix, which is still correct (the empty prefix checks the
// regex for every path): flags ("(?i)...") and any '|' give none, and the scan stops at the
// first metacharacter, escape or non-ASCII byte, dropping a character a '*', '?' or '{' makes
// optional. Each character of the prefix is one character of the pattern (after a leading '^').
std::string regex_literal_prefix(std::string_view pattern) {
  if (pattern.starts_with("(?") || pattern.find('|') != std::string_view::npos) return {};
  if (pattern.starts_with('^')) pattern.remove_prefix(1);
  size_t n = 0;
  while (n < pattern.size()) {
    const auto c = static_cast<unsigned char>(pattern[n]);
    if (c >= 0x80 ||
        std::string_view("\\.[](){}*+?|^$").find(static_cast<char>(c)) != std::string_view::npos) {
      break;
    }
    ++n;
  }
  if (n > 0 && n < pattern.size() &&
      std::string_view("*?{").find(pattern[n]) != std::string_view::npos) {
    --n;
  }
  return std::string(pattern.substr(0, n));
}

namespace {

// Whether `rest` (a pattern's remainder after its literal prefix) may assert something about
// the text before it: '^' outside a class opening, \A, \b, \B. Such a remainder cannot be
// matched on its own against the rest of the path (conservatively: any of them anywhere).
bool looks_behind(std::string_view rest) {
  for (size_t i = 0; i < rest.size(); ++i) {
    if (rest[i] == '^' && (i == 0 || rest[i - 1] != '[' || (i >= 2 && rest[i - 2] == '\\'))) return true;
    if (rest[i] == '\\' && i + 1 < rest.size()) {
      const char e = rest[i + 1];
      if (e == 'A' || e == 'b' || e == 'B') return true;
      ++i;  // an escaped character, whatever it is
    }
  }
  return false;
}

// One compiled RE2 per distinct pattern among the snapshots alive: a few hundred routes with the
// same regex compile it once and share its DFA memory, and a reload reuses the regexes of the
// snapshot still serving. Only snapshot building (the control thread) comes here, never a request.
// The options are the loader's, which validated the pattern, so compiling cannot fail here.
std::shared_ptr<const re2::RE2> shared_regex(const std::string& pattern) {
  static std::mutex mu;
  static std::unordered_map<std::string, std::weak_ptr<const re2::RE2>> compiled;
  static size_t sweep_at = 64;
  std::lock_guard lock(mu);
  if (auto it = compiled.find(pattern); it != compiled.end()) {
    if (auto re = it->second.lock()) return re;
  }
  if (compiled.size() >= sweep_at) {  // forget patterns of dead snapshots, now and then
    std::erase_if(compiled, [](const auto& entry) { return entry.second.expired(); });
    sweep_at = 2 * compiled.size() + 64;
  }
  auto re = std::make_shared<const re2::RE2>(pattern, config::regex_options());
  if (!re->ok()) return nullptr;  // only a split PathMatcher pattern can get here (it falls back)
  compiled[pattern] = re;
  return re;
}

}  // namespace

PathMatcher::PathMatcher(const config::Route& route) : kind_(route.path_kind), value_(route.path) {
  if (kind_ != config::Route::PathKind::kRegex) return;
  // A regex is matched as its literal prefix (compared as bytes) and the rest of the pattern,
  // compiled as ^(?:rest)$ against the rest of the path. Matching "/svc/9999/item/42" against
  // /svc/9999/[a-z]+/[0-9]+ took 1,456 instructions through the whole pattern and RE2's DFA
  // (its cache lock and thread-local lookups); the 7-byte rest of the path goes through RE2's
  // OnePass engine instead (texts of up to 16 bytes, patterns anchored at both ends), and
  // 10,000 such routes share one compiled rest (bench/results/2026-12-02-regex-split.md).
  const auto options = config::regex_options();
  if (options.case_sensitive() && !options.literal()) {
    std::string prefix = regex_literal_prefix(value_);
    const size_t offset = (value_.starts_with('^') ? 1 : 0) + prefix.size();
    // A quantifier after the prefix applies to its last character, which then goes with it.
    if (!prefix.empty() && offset < value_.size() &&
        std::string_view("*+?{").find(value_[offset]) != std::string_view::npos) {
      prefix.pop_back();
    }
    const std::string_view rest = std::string_view(value_).substr(
        (value_.starts_with('^') ? 1 : 0) + prefix.size());
    if (!looks_behind(rest)) {
      if (auto re = shared_regex("^(?:" + std::string(rest) + ")$")) {
        regex_prefix_ = std::move(prefix);
        regex_ = std::move(re);
        return;
      }
    }
  }
  regex_ = shared_regex(value_);
}

bool PathMatcher::matches(std::string_view path) const {
  switch (kind_) {
    case config::Route::PathKind::kPath: return path == value_;
    case config::Route::PathKind::kPrefix: return path.substr(0, value_.size()) == value_;
    case config::Route::PathKind::kRegex:
      // RE2::FullMatch without arguments is this Match call behind FullMatchN and DoMatch, which
      // set up 17 submatch slots first: calling it directly saves ~100 of the ~1,560
      // instructions of matching the last of 10,000 regex routes (callgrind, route_bench.cc).
      if (path.size() < regex_prefix_.size() ||
          std::memcmp(path.data(), regex_prefix_.data(), regex_prefix_.size()) != 0) {
        return false;
      }
      path.remove_prefix(regex_prefix_.size());
      return regex_->Match(re2::StringPiece(path.data(), path.size()), 0, path.size(),
                           re2::RE2::ANCHOR_BOTH, nullptr, 0);
  }
  return false;
}

HeaderMatcher::HeaderMatcher(const config::HeaderMatch& spec) : spec_(spec) {
  if (spec_.kind == config::HeaderMatch::Kind::kRegex) {
    regex_ = shared_regex(spec_.value);
  }
}

bool HeaderMatcher::matches(const http::RequestView& request) const {
  bool seen = false;
  for (const auto& h : request.headers) {
    if (!http::iequals(h.name, spec_.name)) continue;
    seen = true;
    switch (spec_.kind) {
      case config::HeaderMatch::Kind::kPresent:
        return spec_.present;
      case config::HeaderMatch::Kind::kExact:
        if (h.value == spec_.value) return true;
        break;
      case config::HeaderMatch::Kind::kRegex:
        if (re2::RE2::FullMatch(re2::StringPiece(h.value.data(), h.value.size()), *regex_)) return true;
        break;
    }
  }
  return !seen && spec_.kind == config::HeaderMatch::Kind::kPresent && !spec_.present;
}

StringMatcher::StringMatcher(const config::StringMatch& spec) : spec_(spec) {
  if (spec_.kind == config::StringMatch::Kind::kRegex) regex_ = shared_regex(spec_.value);
}

bool StringMatcher::matches(std::string_view s) const {
  switch (spec_.kind) {
    case config::StringMatch::Kind::kExact: return s == spec_.value;
    case config::StringMatch::Kind::kPrefix: return s.starts_with(spec_.value);
    case config::StringMatch::Kind::kSuffix: return s.ends_with(spec_.value);
    case config::StringMatch::Kind::kRegex:
      return regex_->Match(re2::StringPiece(s.data(), s.size()), 0, s.size(), re2::RE2::ANCHOR_BOTH,
                           nullptr, 0);
  }
  return false;
}

ClientCertMatcher::ClientCertMatcher(const config::ClientCertMatch& spec) : present_(spec.present) {
  if (spec.subject) subject_.emplace(*spec.subject);
  if (spec.uri_san) uri_san_.emplace(*spec.uri_san);
  if (spec.dns_san) dns_san_.emplace(*spec.dns_san);
}

bool ClientCertMatcher::matches(const net::TlsInfo* tls) const {
  const bool has_cert = tls && tls->peer_certificate;
  if (present_ && *present_ != has_cert) return false;
  if (!has_cert) return !subject_ && !uri_san_ && !dns_san_;
  auto any_of = [](const StringMatcher& m, const std::vector<std::string>& sans) {
    for (const auto& san : sans) {
      if (m.matches(san)) return true;
    }
    return false;
  };
  if (subject_ && !subject_->matches(tls->peer_subject)) return false;
  if (uri_san_ && !any_of(*uri_san_, tls->peer_uri_sans)) return false;
  if (dns_san_ && !any_of(*dns_san_, tls->peer_dns_sans)) return false;
  return true;
}

bool QueryMatcher::matches(std::string_view query) const {
  bool seen = false;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    size_t eq = pair.find('=');
    std::string_view name = pair.substr(0, eq);
    if (name != spec_.name) continue;
    seen = true;
    std::string_view value = eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
    if (spec_.kind == config::QueryMatch::Kind::kPresent) return spec_.present;
    if (value == spec_.value) return true;
  }
  return !seen && spec_.kind == config::QueryMatch::Kind::kPresent && !spec_.present;
}

}  // namespace sluice::router
