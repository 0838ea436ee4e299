#include "sluice/config/loader.h"

#include <fmt/core.h>
#include <openssl/evp.h>
#include <re2/re2.h>

#include "sluice/config/header_template.h"
#include "sluice/config/limits.h"
#include "sluice/config/yaml_tree.h"
#include "sluice/upstream/maglev.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <boost/asio/ip/address.hpp>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <system_error>
#include <unordered_map>
#include <unordered_set>

namespace sluice::config {

std::string Address::to_string() const {
  if (ip.find(':') != std::string::npos) return fmt::format("[{}]:{}", ip, port);
  return fmt::format("{}:{}", ip, port);
}

std::string LoadError::to_string() const {
  std::string where = line > 0 ? fmt::format("{}:{}:{}", file, line, column) : file;
  if (path.empty()) return fmt::format("{}: {}", where, message);
  return fmt::format("{}: {}: {}", where, path, message);
}

std::string LoadResult::error_text() const {
  std::string out;
  for (const auto& e : errors) {
    out += e.to_string();
    out += '\n';
  }
  return out;
}

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool parse_uint(std::string_view s, uint64_t& out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

// RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens.
bool is_host_name(std::string_view host) {
  bool valid = !host.empty() && host.size() <= 253;
  size_t label = 0;
  for (size_t i = 0; valid && i <= host.size(); ++i) {
    char c = i < host.size() ? host[i] : '.';
    if (c == '.') {
      valid = label > 0 && label <= 63 && host[i - 1] != '-';
      label = 0;
    } else if (std::isalnum(static_cast<unsigned char>(c)) || (c == '-' && label > 0)) {
      ++label;
    } else {
      valid = false;
    }
  }
  return valid;
}

}  // namespace

Result<Duration> parse_duration(std::string_view text) {
  if (text == "0") return Duration{0};
  size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
  uint64_t n = 0;
  if (digits == 0 || !parse_uint(text.substr(0, digits), n)) {
    return Error{fmt::format("'{}' is not a duration (expected e.g. 250ms, 15s, 2m, 1h)", text)};
  }
  std::string_view unit = text.substr(digits);
  uint64_t ms_per_unit = 0;
  if (unit == "ms") ms_per_unit = 1;
  else if (unit == "s") ms_per_unit = 1000;
  else if (unit == "m") ms_per_unit = 60'000;
  else if (unit == "h") ms_per_unit = 3'600'000;
  if (unit.empty()) {
    return Error{fmt::format("duration '{}' has no unit (write e.g. {}s or {}ms)", text, n, n)};
  }
  if (ms_per_unit == 0) {
    return Error{fmt::format("duration '{}' has an unknown unit '{}' (use ms, s, m or h)", text,
                             unit)};
  }
  if (n > (uint64_t{1} << 40) / ms_per_unit) return Error{fmt::format("duration '{}' is too large", text)};
  return Duration{static_cast<int64_t>(n * ms_per_unit)};
}

Result<uint64_t> parse_size(std::string_view text) {
  size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
  uint64_t n = 0;
  if (digits == 0 || !parse_uint(text.substr(0, digits), n)) {
    return Error{fmt::format("'{}' is not a size (expected e.g. 512, 64KiB, 10MiB, 1GiB)", text)};
  }
  std::string_view unit = text.substr(digits);
  uint64_t mult = 0;
  if (unit.empty() || unit == "B") mult = 1;
  else if (unit == "KiB") mult = 1024;
  else if (unit == "MiB") mult = 1024 * 1024;
  else if (unit == "GiB") mult = 1024ull * 1024 * 1024;
  if (mult == 0) return Error{fmt::format("size '{}' has an unknown unit (use B, KiB, MiB or GiB)", text)};
  if (n > (uint64_t{1} << 50) / mult) return Error{fmt::format("size '{}' is too large", text)};
  return n * mult;
}

Result<Address> parse_address(std::string_view text) {
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return Error{fmt::format("'{}' is not an address (expected [IPv6]:port)", text)};
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return Error{fmt::format("'{}' is not an address (expected IP:port, e.g. 127.0.0.1:8080)", text)};
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    // "::1:80" could be the address ::1:80 or ::1 port 80; only the bracketed form is unambiguous.
    if (host.find(':') != std::string_view::npos) {
      return Error{fmt::format("'{}' is not an address (write an IPv6 address in brackets, e.g. "
                               "[::1]:80)", text)};
    }
  }
  uint64_t p = 0;
  if (!parse_uint(port, p) || p > 65535) {
    return Error{fmt::format("'{}' has an invalid port (expected 0-65535)", text)};
  }
  boost::system::error_code ec;
  auto ip = boost::asio::ip::make_address(std::string(host), ec);
  if (ec) {
    return Error{fmt::format("'{}' is not an IP address (write a literal IPv4 or [IPv6] address)", host)};
  }
  return Address{ip.to_string(), static_cast<uint16_t>(p)};
}

std::string Endpoint::to_string() const {
  if (hostname.empty()) return address.to_string();
  return fmt::format("{}:{}", hostname, address.port);
}

Result<Endpoint> parse_endpoint(std::string_view text) {
  Endpoint ep;
  auto literal = parse_address(text);
  if (literal) {
    if (literal->port == 0) return Error{fmt::format("'{}': an endpoint needs a port (1-65535)", text)};
    ep.address = *literal;
    return ep;
  }
  // Not a literal address: maybe "host.name:port".
  auto colon = text.rfind(':');
  if (colon == std::string_view::npos || text.front() == '[') return literal.error();
  std::string_view host = text.substr(0, colon);
  uint64_t port = 0;
  if (!parse_uint(text.substr(colon + 1), port) || port == 0 || port > 65535) {
    return Error{fmt::format("'{}' has an invalid port (expected 1-65535)", text)};
  }
  bool valid = is_host_name(host);
  // All-numeric labels ("127.0.0.256") are a mistyped IP address, not a host name (RFC 1123 §2.1).
  if (valid && host.find_first_not_of("0123456789.") == std::string_view::npos) {
    return Error{fmt::format("'{}' is not an IP address", host)};
  }
  if (!valid) {
    return Error{fmt::format("'{}' is neither an IP address nor a host name with a port", text)};
  }
  ep.hostname = lower(host);
  ep.address.port = static_cast<uint16_t>(port);
  return ep;
}

namespace {

using yaml::invalid_utf8_at;

// `what`: "value" or "key".
std::string utf8_error(std::string_view s, size_t at, std::string_view what) {
  return fmt::format("not valid UTF-8 (byte {} of the {} is 0x{:02x}); the file must be UTF-8", at + 1,
                     what, static_cast<unsigned char>(s[at]));
}

struct RegexVerdict {
  std::string error;  // empty: accepted
  int64_t cost = 0;   // against kMaxTotalRegexProgramSize
};

// The regex verdicts of the last load, by pattern. A verdict depends only on the pattern (the
// options are fixed), so a reload takes it instead of compiling again: compiling the 3,333
// patterns of a 10,000-route file was 86 M of the 0.51 G instructions of loading it (callgrind,
// bench/results/2026-12-01-reload.md). It holds one file's patterns, replaced by each load.
class RegexMemo {
 public:
  using Map = std::unordered_map<std::string, RegexVerdict>;
  // Two loads at once (tests) each find what is left; a verdict is never wrong, only missing.
  static Map take() {
    std::lock_guard lock(mu_);
    return std::exchange(last_, {});
  }
  static void keep(Map verdicts) {
    std::lock_guard lock(mu_);
    last_ = std::move(verdicts);
  }

 private:
  static inline std::mutex mu_;
  static inline Map last_;
};

// Walks the YAML tree, collecting every error with its position and key path.
class Loader {
 public:
  explicit Loader(std::string file) : file_(std::move(file)) {}

  LoadResult run(std::string_view text) {
    LoadResult out;
    out.config.source_path = file_;
    if (text.size() > kMaxConfigFileBytes) {
      add(yaml::Mark::null_mark(), "", too_large_message());
      out.errors = std::move(errors_);
      RegexMemo::keep(std::move(previous_regexes_));  // nothing compiled: keep the last verdicts
      return out;
    }
    // The tree and the alias-expansion budget in one pass of libyaml's events (yaml_tree.h).
    const yaml::Document doc = yaml::Document::parse(text);
    if (!doc.ok()) {
      add(doc.error().mark, "", doc.error().message);
      out.errors = std::move(errors_);
      RegexMemo::keep(std::move(previous_regexes_));
      return out;
    }
    const yaml::Node root = doc.root();
    if (!root || root.is_null()) {
      add(yaml::Mark::null_mark(), "", "the file is empty; it needs at least 'listeners' and 'clusters'");
    } else if (!root.is_map()) {
      add(root.mark(), "", "the top level must be a map of keys");
    } else {
      read_root(root, out.config);
      cross_check(root, out.config);
    }
    // libyaml accepts a few things yaml-cpp refuses ("?" alone, a key on two lines); a file
    // that has errors anyway is read again by yaml-cpp's parser, and its syntax error, when it
    // finds one, is what the file always got. Files without errors never pay for this (a 10k
    // route file with one error: ~0.3 s more; bench/results/2026-12-01-reload.md).
    if (!errors_.empty() && !doc.read_by_yaml_cpp()) {
      if (auto syntax = yaml::Document::yaml_cpp_syntax_error(text)) {
        errors_.clear();
        unreported_ = 0;
        add(syntax->mark, "", syntax->message);
      }
    }
    if (unreported_ > 0) {
      errors_.push_back(LoadError{file_, 0, 0, "",
                                  fmt::format("{} more error(s) not shown (Sluice reports the first {})",
                                              unreported_, kMaxReportedErrors)});
    }
    out.errors = std::move(errors_);
    RegexMemo::keep(std::move(regexes_));
    return out;
  }

  static std::string too_large_message() {
    return fmt::format("the file is larger than {} MiB, the largest configuration Sluice reads",
                       kMaxConfigFileBytes / kMiB);
  }

 private:
  void add(const yaml::Mark& mark, const std::string& path, std::string message) {
    if (errors_.size() >= kMaxReportedErrors) {
      ++unreported_;
      return;
    }
    LoadError e;
    e.file = file_;
    if (!mark.is_null()) {
      e.line = mark.line + 1;
      e.column = mark.column + 1;
    }
    e.path = path;
    e.message = std::move(message);
    errors_.push_back(std::move(e));
  }

  // Every key and item gets its path whether or not it has an error; appending costs a third of
  // fmt::format here (the 10,000-route file builds ~70,000 paths).
  static std::string join(const std::string& path, std::string_view key) {
    std::string out;
    out.reserve(path.size() + 1 + key.size());
    if (!path.empty()) {
      out += path;
      out += '.';
    }
    out += key;
    return out;
  }
  static std::string index(const std::string& path, size_t i) {
    char digits[24];
    char* end = std::to_chars(digits, digits + sizeof digits, i).ptr;
    std::string out;
    out.reserve(path.size() + 2 + static_cast<size_t>(end - digits));
    out += path;
    out += '[';
    out.append(digits, end);
    out += ']';
    return out;
  }

  // Checks `node` is a map whose keys are all in `known`; reports unknown and duplicate keys.
  bool expect_map(const yaml::Node& node, const std::string& path,
                  std::initializer_list<std::string_view> known) {
    if (!node.is_map()) {
      add(node.mark(), path, "expected a map");
      return false;
    }
    // The keys live in the tree; a set is worth building only for a large map.
    std::unordered_set<std::string_view> seen;
    const bool use_set = node.size() > 16;
    for (auto it = node.begin(); it != node.end(); ++it) {
      if (!it->first.is_scalar()) {
        add(it->first.mark(), path, "keys must be plain strings");
        continue;
      }
      const std::string& key = it->first.scalar();
      if (auto bad = invalid_utf8_at(key)) {
        add(it->first.mark(), path, "a key is " + utf8_error(key, *bad, "key"));
        continue;
      }
      bool duplicate = false;
      if (use_set) {
        duplicate = !seen.insert(key).second;
      } else {
        for (auto before = node.begin(); before != it && !duplicate; ++before) {
          duplicate = before->first.is_scalar() && before->first.scalar() == key;
        }
      }
      if (duplicate) add(it->first.mark(), join(path, key), "duplicate key");
      if (std::find(known.begin(), known.end(), key) == known.end()) {
        std::string list;
        for (auto k : known) list += (list.empty() ? "" : ", ") + std::string(k);
        add(it->first.mark(), join(path, key), fmt::format("unknown key (known keys: {})", list));
      }
    }
    return true;
  }

  bool scalar(const yaml::Node& n, const std::string& path, std::string& out, const char* what = "a string") {
    if (!n.is_scalar()) {
      add(n.mark(), path, fmt::format("expected {}", what));
      return false;
    }
    if (auto bad = invalid_utf8_at(n.scalar())) {
      add(n.mark(), path, utf8_error(n.scalar(), *bad, "value"));
      return false;
    }
    out = n.scalar();
    return true;
  }

  bool non_empty_string(const yaml::Node& n, const std::string& path, std::string& out) {
    if (!scalar(n, path, out)) return false;
    if (out.empty()) {
      add(n.mark(), path, "must not be empty");
      return false;
    }
    return true;
  }

  template <typename T>
  void uint_field(const yaml::Node& n, const std::string& path, T& out, uint64_t min, uint64_t max) {
    std::string s;
    if (!scalar(n, path, s, "a whole number")) return;
    uint64_t v = 0;
    if (!parse_uint(s, v)) return add(n.mark(), path, fmt::format("'{}' is not a whole number", s));
    if (v < min || v > max) {
      return add(n.mark(), path, fmt::format("{} is out of range ({}-{})", v, min, max));
    }
    out = static_cast<T>(v);
  }

  bool bool_field(const yaml::Node& n, const std::string& path, bool& out) {
    std::string s;
    if (!scalar(n, path, s, "true or false")) return false;
    if (s != "true" && s != "false") {
      add(n.mark(), path, fmt::format("expected true or false, got '{}'", s));
      return false;
    }
    out = s == "true";
    return true;
  }

  void duration_field(const yaml::Node& n, const std::string& path, Duration& out) {
    std::string s;
    if (!scalar(n, path, s, "a duration")) return;
    auto d = parse_duration(s);
    if (!d) return add(n.mark(), path, d.error().message);
    out = *d;
  }

  template <typename T>
  void size_field(const yaml::Node& n, const std::string& path, T& out, uint64_t max) {
    std::string s;
    if (!scalar(n, path, s, "a size")) return;
    auto v = parse_size(s);
    if (!v) return add(n.mark(), path, v.error().message);
    if (*v > max) return add(n.mark(), path, fmt::format("{} is larger than the maximum {}", s, max));
    out = static_cast<T>(*v);
  }

  // The HTTP/2 flow-control windows of a listener's or a cluster's `http2` map. RFC 9113 §6.5.2:
  // between 64 KiB - 1 (the protocol's initial value; smaller would only slow the peer down) and
  // 2^31 - 1.
  void window_fields(const yaml::Node& n, const std::string& path, uint32_t& stream_window,
                     uint32_t& connection_window) {
    constexpr uint64_t kMaxWindow = (uint64_t{1} << 31) - 1;
    for (auto [key, out] : {std::pair<const char*, uint32_t*>{"initial_stream_window", &stream_window},
                            {"initial_connection_window", &connection_window}}) {
      auto v = n[key];
      if (!v) continue;
      std::string p = join(path, key);
      size_field(v, p, *out, kMaxWindow);
      if (*out < 65535) add(v.mark(), p, "must be at least 65535 (64KiB - 1)");
    }
  }

  void address_field(const yaml::Node& n, const std::string& path, Address& out) {
    std::string s;
    if (!scalar(n, path, s, "an address (IP:port)")) return;
    auto a = parse_address(s);
    if (!a) return add(n.mark(), path, a.error().message);
    out = *a;
  }

  // Compiles each distinct pattern once, with the router's options, within the regex budget
  // (limits.h); every place that uses a refused pattern gets its own error.
  bool check_regex(const yaml::Node& n, const std::string& path, const std::string& pattern) {
    if (pattern.size() > kMaxRegexLength) {
      add(n.mark(), path, fmt::format("the regex is {} bytes long, more than the limit of {}",
                                      pattern.size(), kMaxRegexLength));
      return false;
    }
    auto it = regexes_.find(pattern);
    if (it == regexes_.end()) {
      if (regex_cost_ > kMaxTotalRegexProgramSize) return false;  // reported once, where it happened
      auto known = previous_regexes_.find(pattern);
      it = regexes_.emplace(pattern, known != previous_regexes_.end() ? std::move(known->second)
                                                                     : compile_regex(pattern))
               .first;
      regex_cost_ += it->second.cost;
      if (regex_cost_ > kMaxTotalRegexProgramSize) {
        add(n.mark(), path, fmt::format("the regexes of this file need more than {} RE2 instructions "
                                        "together, the most Sluice compiles for one file (identical "
                                        "patterns count once); later regexes were not checked",
                                        kMaxTotalRegexProgramSize));
        return false;
      }
    }
    if (!it->second.error.empty()) add(n.mark(), path, it->second.error);
    return it->second.error.empty();
  }


  static RegexVerdict compile_regex(const std::string& pattern) {
    re2::RE2 re(pattern, regex_options());
    if (re.error_code() == re2::RE2::ErrorPatternTooLarge) {
      return {fmt::format("regex '{}' is too costly: RE2 cannot compile it within {} MiB (the most one "
                          "regex may use; avoid large counted repetitions such as {{1000}})",
                          pattern, kRegexMaxMemBytes / kMiB),
              kRegexTooLargeCost};
    }
    if (!re.ok()) return {fmt::format("invalid regex '{}': {}", pattern, re.error()), 0};
    if (re.ProgramSize() > kMaxRegexProgramSize) {
      return {fmt::format("regex '{}' is too costly: its RE2 program has {} instructions, more than the "
                          "limit of {} (avoid large counted repetitions such as {{1000}})",
                          pattern, re.ProgramSize(), kMaxRegexProgramSize),
              re.ProgramSize()};
    }
    return {"", re.ProgramSize()};
  }

  template <typename F>
  void sequence(const yaml::Node& n, const std::string& path, F&& each) {
    if (!n.is_sequence()) return add(n.mark(), path, "expected a list");
    for (size_t i = 0; i < n.size(); ++i) each(n[i], index(path, i));
  }

  void read_root(const yaml::Node& root, Config& c) {
    expect_map(root, "", {"admin", "workers", "drain_timeout", "listeners", "clusters"});
    if (auto n = root["admin"]) {
      if (expect_map(n, "admin", {"address"}) && n["address"]) {
        address_field(n["address"], "admin.address", c.admin.address);
      }
    }
    if (auto n = root["workers"]) {
      std::string s;
      if (scalar(n, "workers", s, "'auto' or a number") && s != "auto") {
        uint_field(n, "workers", c.workers, 1, 1024);
      }
    }
    if (auto n = root["drain_timeout"]) duration_field(n, "drain_timeout", c.drain_timeout);
    if (auto n = root["listeners"]) {
      sequence(n, "listeners", [&](const yaml::Node& l, const std::string& p) {
        c.listeners.push_back(read_listener(l, p));
      });
      if (n.is_sequence() && n.size() == 0) add(n.mark(), "listeners", "needs at least one listener");
    } else {
      add(root.mark(), "listeners", "missing required key");
    }
    if (auto n = root["clusters"]) {
      sequence(n, "clusters", [&](const yaml::Node& cl, const std::string& p) {
        c.clusters.push_back(read_cluster(cl, p));
      });
    } else {
      add(root.mark(), "clusters", "missing required key");
    }
  }

  Listener read_listener(const yaml::Node& n, const std::string& path) {
    Listener l;
    if (!expect_map(n, path, {"name", "address", "virtual_hosts", "max_request_headers_size",
                              "max_request_headers_count", "max_request_body_size",
                              "request_headers_timeout", "idle_timeout", "request_body_timeout",
                              "request_body_total_timeout", "access_log", "max_connections",
                              "request_headers", "response_headers", "tls", "tls_handshake_timeout",
                              "http2"})) {
      return l;
    }
    if (n["name"]) non_empty_string(n["name"], join(path, "name"), l.name);
    else add(n.mark(), join(path, "name"), "missing required key");
    if (n["address"]) address_field(n["address"], join(path, "address"), l.address);
    else add(n.mark(), join(path, "address"), "missing required key");
    if (auto v = n["max_request_headers_size"]) {
      size_field(v, join(path, "max_request_headers_size"), l.max_request_headers_bytes, 1024 * 1024);
      if (l.max_request_headers_bytes < 1024) {
        add(v.mark(), join(path, "max_request_headers_size"), "must be at least 1KiB");
      }
    }
    if (auto v = n["max_request_headers_count"]) {
      uint_field(v, join(path, "max_request_headers_count"), l.max_request_headers_count, 1, 10000);
    }
    if (auto v = n["max_request_body_size"]) {
      size_field(v, join(path, "max_request_body_size"), l.max_request_body_bytes, uint64_t{1} << 50);
    }
    if (auto v = n["request_headers_timeout"]) {
      duration_field(v, join(path, "request_headers_timeout"), l.request_headers_timeout);
    }
    if (auto v = n["idle_timeout"]) duration_field(v, join(path, "idle_timeout"), l.idle_timeout);
    if (auto v = n["request_body_timeout"]) {
      duration_field(v, join(path, "request_body_timeout"), l.request_body_timeout);
    }
    if (auto v = n["request_body_total_timeout"]) {
      duration_field(v, join(path, "request_body_total_timeout"), l.request_body_total_timeout);
    }
    read_header_policy(n, path, l.header_policy);
    if (auto v = n["access_log"]) l.access_log = read_access_log(v, join(path, "access_log"));
    if (auto v = n["max_connections"]) {
      uint_field(v, join(path, "max_connections"), l.max_connections, 1, 10'000'000);
    }
    if (auto v = n["tls"]) l.tls = read_listener_tls(v, join(path, "tls"));
    if (auto v = n["tls_handshake_timeout"]) {
      std::string p = join(path, "tls_handshake_timeout");
      duration_field(v, p, l.tls_handshake_timeout);
      if (l.tls_handshake_timeout.count() == 0) add(v.mark(), p, "must be greater than 0");
      if (!n["tls"]) add(v.mark(), p, "only used on a listener with 'tls'");
    }
    if (auto v = n["http2"]) {
      read_listener_http2(v, join(path, "http2"), l);
      // A TLS block with errors of its own (reported already) says nothing about ALPN.
      if (!l.serves_http2() && (!n["tls"] || l.tls)) {
        add(v.mark(), join(path, "http2"),
            l.tls ? "HTTP/2 is not offered on this listener: add h2 to 'tls.alpn'"
                  : "HTTP/2 is not served on this listener: add 'prior_knowledge: true' (h2c)");
      }
    }
    std::string vpath = join(path, "virtual_hosts");
    if (auto v = n["virtual_hosts"]) {
      sequence(v, vpath, [&](const yaml::Node& vh, const std::string& p) {
        l.virtual_hosts.push_back(read_virtual_host(vh, p));
      });
      if (v.is_sequence() && v.size() == 0) add(v.mark(), vpath, "needs at least one virtual host");
    } else {
      add(n.mark(), vpath, "missing required key");
    }
    // Domain uniqueness within the listener, and the shape of each domain pattern.
    std::set<std::string> domains;
    if (auto v = n["virtual_hosts"]; v && v.is_sequence()) {
      for (size_t i = 0; i < v.size() && i < l.virtual_hosts.size(); ++i) {
        if (!v[i].is_map()) continue;  // reported by read_virtual_host; a scalar has no keys
        auto dn = v[i]["domains"];
        if (!dn || !dn.is_sequence()) continue;
        for (size_t j = 0; j < dn.size() && j < l.virtual_hosts[i].domains.size(); ++j) {
          const std::string& d = l.virtual_hosts[i].domains[j];
          if (d.empty()) continue;  // not a string, or empty: reported already, nothing to compare
          std::string dp = index(join(index(vpath, i), "domains"), j);
          if (!domains.insert(d).second) {
            add(dn[j].mark(), dp, fmt::format("domain '{}' is already used in this listener", d));
          }
          size_t stars = std::count(d.begin(), d.end(), '*');
          bool shape_ok = d == "*" || stars == 0 ||
                          (stars == 1 && (d.rfind("*.", 0) == 0 || d.rfind("*-", 0) == 0 ||
                                          (d.size() > 2 && d.compare(d.size() - 2, 2, ".*") == 0)));
          if (!shape_ok) {
            add(dn[j].mark(), dp, fmt::format("domain '{}': a wildcard may only be '*', a '*.' prefix "
                                              "or a '.*' suffix", d));
          }
        }
      }
    }
    check_unique_names(n["virtual_hosts"], vpath, l.virtual_hosts, "virtual host");
    check_client_cert_routes(n, path, l);
    return l;
  }

  // A route that matches on the client certificate needs a listener that asks for one. Decided on
  // the YAML, so that a `tls` with errors of its own (reported already) adds no second error here.
  void check_client_cert_routes(const yaml::Node& n, const std::string& path, const Listener& l) {
    auto tls = n["tls"];
    if (tls && (!tls.is_map() || tls["client_certificate"])) return;
    auto vhs = n["virtual_hosts"];
    if (!vhs || !vhs.is_sequence()) return;
    for (size_t i = 0; i < vhs.size() && i < l.virtual_hosts.size(); ++i) {
      auto routes = vhs[i]["routes"];
      if (!routes || !routes.is_sequence()) continue;
      const auto& vh = l.virtual_hosts[i];
      for (size_t j = 0; j < routes.size() && j < vh.routes.size(); ++j) {
        auto cc = routes[j]["match"]["client_cert"];  // a null node when any of them is missing
        if (!cc) continue;
        add(cc.mark(), fmt::format("{}.virtual_hosts[{}].routes[{}].match.client_cert", path, i, j),
            fmt::format("route '{}' matches on the client certificate, but listener '{}' does not ask for "
                        "one: add tls.client_certificate",
                        vh.routes[j].name, l.name));
      }
    }
  }

  // `listeners[].http2`: h2c prior knowledge and the HTTP/2 limits.
  void read_listener_http2(const yaml::Node& n, const std::string& path, Listener& l) {
    if (!expect_map(n, path, {"prior_knowledge", "max_concurrent_streams", "initial_stream_window",
                              "initial_connection_window", "max_header_list_size",
                              "max_control_frames", "control_frames_per_second",
                              "max_empty_data_frames", "empty_data_frames_per_second",
                              "max_premature_resets", "max_oversized_header_blocks"})) {
      return;
    }
    ListenerHttp2& h = l.http2;
    if (auto v = n["prior_knowledge"]) {
      bool_field(v, join(path, "prior_knowledge"), h.prior_knowledge);
      if (h.prior_knowledge && l.tls) {
        add(v.mark(), join(path, "prior_knowledge"),
            "for plaintext listeners (h2c); a TLS listener offers HTTP/2 with 'tls.alpn: [h2, http/1.1]'");
      }
    }
    if (auto v = n["max_concurrent_streams"]) {
      uint_field(v, join(path, "max_concurrent_streams"), h.max_concurrent_streams, 1, 10000);
    }
    window_fields(n, path, h.initial_stream_window, h.initial_connection_window);
    if (auto v = n["max_header_list_size"]) {
      std::string p = join(path, "max_header_list_size");
      size_field(v, p, h.max_header_list_size, 1024 * 1024);
      if (h.max_header_list_size < 1024) add(v.mark(), p, "must be at least 1KiB");
    }
    for (auto [key, field] : {std::pair{"max_control_frames", &h.max_control_frames},
                              {"control_frames_per_second", &h.control_frames_per_second},
                              {"max_empty_data_frames", &h.max_empty_data_frames},
                              {"empty_data_frames_per_second", &h.empty_data_frames_per_second},
                              {"max_premature_resets", &h.max_premature_resets},
                              {"max_oversized_header_blocks", &h.max_oversized_header_blocks}}) {
      if (auto v = n[key]) uint_field(v, join(path, key), *field, 1, 1'000'000);
    }
  }

  // `listeners[].tls`: certificates, versions, ALPN, client certificates and XFCC.
  std::optional<ListenerTls> read_listener_tls(const yaml::Node& n, const std::string& path) {
    if (!expect_map(n, path, {"certificates", "min_version", "alpn", "client_certificate",
                              "forward_client_cert"})) {
      return std::nullopt;
    }
    ListenerTls t;
    std::string cpath = join(path, "certificates");
    if (auto v = n["certificates"]) {
      std::set<std::string> certs;
      sequence(v, cpath, [&](const yaml::Node& cn, const std::string& p) {
        if (!expect_map(cn, p, {"cert", "key"})) return;
        CertificateFiles files;
        bool ok = true;
        for (auto [key, out] : {std::pair{"cert", &files.cert}, std::pair{"key", &files.key}}) {
          if (!cn[key]) {
            add(cn.mark(), join(p, key), key == std::string_view("cert")
                                             ? "missing required key (the PEM certificate chain, leaf first)"
                                             : "missing required key (the PEM private key of 'cert')");
            ok = false;
          } else {
            ok = readable_file(cn[key], join(p, key), *out) && ok;
          }
        }
        if (!files.cert.empty() && !certs.insert(files.cert).second) {
          add(cn["cert"].mark(), join(p, "cert"), fmt::format("{} is already listed in 'certificates'", files.cert));
          ok = false;
        }
        if (ok) t.certificates.push_back(std::move(files));
      });
      if (v.is_sequence() && v.size() == 0) add(v.mark(), cpath, "needs at least one certificate");
    } else {
      add(n.mark(), cpath, "missing required key (a list of { cert, key })");
    }
    if (auto v = n["min_version"]) {
      std::string p = join(path, "min_version");
      std::string s;
      if (scalar(v, p, s, "a TLS version (\"1.2\" or \"1.3\")")) {
        if (s == "1.2") t.min_version = TlsVersion::kTls12;
        else if (s == "1.3") t.min_version = TlsVersion::kTls13;
        else if (s == "1.0" || s == "1.1") {
          add(v.mark(), p, fmt::format("TLS {} is refused: TLS 1.0 and 1.1 are never offered (use 1.2 or 1.3)", s));
        } else {
          add(v.mark(), p, fmt::format("unknown TLS version '{}' (1.2 or 1.3)", s));
        }
      }
    }
    if (auto v = n["alpn"]) {
      std::string p = join(path, "alpn");
      t.alpn.clear();
      sequence(v, p, [&](const yaml::Node& an, const std::string& ap) {
        std::string s;
        if (!non_empty_string(an, ap, s)) return;
        if (s != "h2" && s != "http/1.1") {
          add(an.mark(), ap, fmt::format("unknown ALPN protocol '{}' (h2 or http/1.1)", s));
        } else if (std::find(t.alpn.begin(), t.alpn.end(), s) != t.alpn.end()) {
          add(an.mark(), ap, fmt::format("{} is listed twice", s));
        } else {
          t.alpn.push_back(s);
        }
      });
      if (v.is_sequence() && v.size() == 0) add(v.mark(), p, "needs at least one protocol (h2, http/1.1)");
    }
    if (auto v = n["client_certificate"]) {
      t.client_certificate = read_client_certificate(v, join(path, "client_certificate"));
    }
    if (auto v = n["forward_client_cert"]) {
      std::string p = join(path, "forward_client_cert");
      std::string s;
      if (scalar(v, p, s)) {
        if (s == "sanitize") t.forward_client_cert = ForwardClientCert::kSanitize;
        else if (s == "forward") t.forward_client_cert = ForwardClientCert::kForward;
        else if (s == "append") t.forward_client_cert = ForwardClientCert::kAppend;
        else if (s == "sanitize_set") t.forward_client_cert = ForwardClientCert::kSanitizeSet;
        else {
          add(v.mark(), p, fmt::format("unknown mode '{}' (sanitize, forward, append or sanitize_set)", s));
        }
      }
    }
    return t;
  }

  std::optional<ClientCertificate> read_client_certificate(const yaml::Node& n, const std::string& path) {
    if (!expect_map(n, path, {"mode", "ca", "crl"})) return std::nullopt;
    ClientCertificate c;
    if (auto v = n["mode"]) {
      std::string s;
      if (scalar(v, join(path, "mode"), s)) {
        if (s == "required") c.mode = ClientCertificate::Mode::kRequired;
        else if (s == "optional") c.mode = ClientCertificate::Mode::kOptional;
        else add(v.mark(), join(path, "mode"), fmt::format("unknown mode '{}' (required or optional)", s));
      }
    }
    if (auto v = n["ca"]) readable_file(v, join(path, "ca"), c.ca);
    else add(n.mark(), join(path, "ca"), "missing required key (the PEM bundle of the CA(s) client certificates must lead to)");
    if (auto v = n["crl"]) readable_file(v, join(path, "crl"), c.crl);
    return c;
  }

  // A file that the TLS code reads (certificate, key, CA bundle, CRL): it must exist, be a regular
  // file and be readable now, so that a typo is an error at its key. Its contents are checked by
  // the TLS context builder, which reports PEM problems; the loader never reads them.
  // A relative path is relative to the directory of the configuration file (as nginx resolves
  // its includes), so a config and its certificates move together (config/sluice.yaml names
  // tls/example.crt; the container image has them under /etc/sluice).
  bool readable_file(const yaml::Node& n, const std::string& path, std::string& out) {
    if (!non_empty_string(n, path, out)) return false;
    if (out.front() != '/') {
      const std::filesystem::path dir = std::filesystem::path(file_).parent_path();
      if (!dir.empty()) out = (dir / out).string();
    }
    if (out.find('\0') != std::string::npos) {
      add(n.mark(), path, "a file path must not contain NUL");
      return false;
    }
    // O_NONBLOCK: opening a FIFO must not wait for a writer.
    int fd = ::open(out.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    int err = fd < 0 ? errno : 0;
    bool regular = true;
    if (fd >= 0) {
      struct stat st {};
      if (::fstat(fd, &st) != 0) err = errno;
      else if (S_ISDIR(st.st_mode)) err = EISDIR;
      else regular = S_ISREG(st.st_mode);
      ::close(fd);
    }
    if (err != 0) {
      add(n.mark(), path, fmt::format("cannot read {}: {}", out, std::generic_category().message(err)));
      return false;
    }
    if (!regular) {
      add(n.mark(), path, fmt::format("cannot read {}: not a regular file", out));
      return false;
    }
    return true;
  }

  std::optional<AccessLog> read_access_log(const yaml::Node& n, const std::string& path) {
    if (!expect_map(n, path, {"path", "format"})) return std::nullopt;
    AccessLog log;
    if (!n["path"]) {
      add(n.mark(), join(path, "path"), "missing required key (stdout, stderr or a file path)");
      return std::nullopt;
    }
    if (!non_empty_string(n["path"], join(path, "path"), log.path)) return std::nullopt;
    if (auto f = n["format"]) {
      std::string s;
      if (!scalar(f, join(path, "format"), s)) return std::nullopt;
      if (s == "json") log.format = AccessLog::Format::kJson;
      else if (s == "text") log.format = AccessLog::Format::kText;
      else {
        add(f.mark(), join(path, "format"), fmt::format("unknown format '{}' (json or text)", s));
        return std::nullopt;
      }
    }
    return log;
  }

  template <typename T>
  void check_unique_names(const yaml::Node& seq, const std::string& path, const std::vector<T>& items,
                          const char* what) {
    if (!seq || !seq.is_sequence()) return;
    std::set<std::string> names;
    for (size_t i = 0; i < items.size() && i < seq.size(); ++i) {
      if (items[i].name.empty()) continue;
      if (!names.insert(items[i].name).second) {
        yaml::Node at = seq[i].is_map() && seq[i]["name"] ? seq[i]["name"] : seq[i];
        add(at.mark(), join(index(path, i), "name"),
            fmt::format("duplicate {} name '{}'", what, items[i].name));
      }
    }
  }

  VirtualHost read_virtual_host(const yaml::Node& n, const std::string& path) {
    VirtualHost vh;
    if (!expect_map(n, path, {"name", "domains", "routes", "request_headers", "response_headers", "upgrades"})) {
      return vh;
    }
    if (n["name"]) non_empty_string(n["name"], join(path, "name"), vh.name);
    else add(n.mark(), join(path, "name"), "missing required key");
    if (auto d = n["domains"]) {
      sequence(d, join(path, "domains"), [&](const yaml::Node& dn, const std::string& p) {
        std::string s;
        if (non_empty_string(dn, p, s)) vh.domains.push_back(lower(s));
        else vh.domains.emplace_back();
      });
      if (d.is_sequence() && d.size() == 0) add(d.mark(), join(path, "domains"), "needs at least one domain");
    } else {
      add(n.mark(), join(path, "domains"), "missing required key");
    }
    read_header_policy(n, path, vh.header_policy);
    if (auto u = n["upgrades"]) vh.upgrades = read_upgrades(u, join(path, "upgrades"));
    if (auto r = n["routes"]) {
      sequence(r, join(path, "routes"), [&](const yaml::Node& rn, const std::string& p) {
        vh.routes.push_back(read_route(rn, p, vh.routes.size(), vh.upgrades));
      });
      if (r.is_sequence() && r.size() == 0) add(r.mark(), join(path, "routes"), "needs at least one route");
      check_unique_names(r, join(path, "routes"), vh.routes, "route");
    } else {
      add(n.mark(), join(path, "routes"), "missing required key");
    }
    return vh;
  }

  // `vhost_upgrades`: the virtual host's `upgrades`, the default of its routes.
  Route read_route(const yaml::Node& n, const std::string& path, size_t position,
                   const std::vector<std::string>& vhost_upgrades) {
    Route r;
    r.name = fmt::format("route_{}", position);
    if (!expect_map(n, path, {"name", "match", "cluster", "direct_response", "redirect", "timeout",
                              "prefix_rewrite", "host_rewrite", "request_headers", "response_headers",
                              "upgrades", "upgrade_idle_timeout", "grpc_timeout_header"})) {
      return r;
    }
    if (n["name"]) non_empty_string(n["name"], join(path, "name"), r.name);
    std::string mpath = join(path, "match");
    if (auto m = n["match"]) {
      read_match(m, mpath, r);
    } else {
      add(n.mark(), mpath, "missing required key");
    }
    read_response_headers_and_action(n, path, r);
    // The keys below act on the request sent to a cluster.
    const char* local = r.action == Route::ActionKind::kDirectResponse ? "direct_response"
                        : r.action == Route::ActionKind::kRedirect   ? "redirect"
                                                                     : nullptr;
    for (const char* key : {"timeout", "prefix_rewrite", "host_rewrite", "request_headers", "upgrades",
                            "upgrade_idle_timeout", "grpc_timeout_header"}) {
      if (local && n[key]) {
        add(n[key].mark(), join(path, key),
            fmt::format("only used with 'cluster' (this route answers itself with '{}')", local));
      }
    }
    if (local) return r;
    if (auto v = n["timeout"]) duration_field(v, join(path, "timeout"), r.timeout);
    if (auto v = n["grpc_timeout_header"]) bool_field(v, join(path, "grpc_timeout_header"), r.grpc_timeout_header);
    if (auto v = n["prefix_rewrite"]) {
      std::string s;
      if (scalar(v, join(path, "prefix_rewrite"), s)) {
        if (r.path_kind == Route::PathKind::kRegex) {
          add(v.mark(), join(path, "prefix_rewrite"), "needs a 'prefix' or 'path' match, not 'regex'");
        } else if (s.empty() || s.front() != '/') {
          add(v.mark(), join(path, "prefix_rewrite"), "must start with '/'");
        } else {
          r.prefix_rewrite = s;
        }
      }
    }
    if (auto v = n["host_rewrite"]) {
      std::string s;
      if (non_empty_string(v, join(path, "host_rewrite"), s)) {
        if (s.find_first_of(" \t\r\n") != std::string::npos) {
          add(v.mark(), join(path, "host_rewrite"), "must not contain white space");
        } else {
          r.host_rewrite = s;
        }
      }
    }
    if (auto v = n["request_headers"]) {
      read_header_mutation(v, join(path, "request_headers"), /*request=*/true, r.header_policy.request);
    }
    if (auto v = n["upgrades"]) r.upgrades = read_upgrades(v, join(path, "upgrades"));
    if (auto v = n["upgrade_idle_timeout"]) {
      std::string p = join(path, "upgrade_idle_timeout");
      duration_field(v, p, r.upgrade_idle_timeout);
      if (r.upgrade_idle_timeout.count() == 0) add(v.mark(), p, "must be greater than 0");
      if (r.upgrades.value_or(vhost_upgrades).empty()) {
        add(v.mark(), p, "only used on a route that tunnels upgrades ('upgrades' on the route or its "
                         "virtual host)");
      }
    }
    return r;
  }

  // `response_headers`, and the one action: `cluster`, `direct_response` or `redirect`.
  void read_response_headers_and_action(const yaml::Node& n, const std::string& path, Route& r) {
    if (auto v = n["response_headers"]) {
      read_header_mutation(v, join(path, "response_headers"), /*request=*/false, r.header_policy.response);
    }
    int actions = (n["cluster"] ? 1 : 0) + (n["direct_response"] ? 1 : 0) + (n["redirect"] ? 1 : 0);
    if (actions != 1) {
      add(n.mark(), path, actions == 0 ? "needs one of 'cluster', 'direct_response' or 'redirect'"
                                       : "takes only one of 'cluster', 'direct_response' or 'redirect'");
    }
    if (auto v = n["redirect"]) {
      r.action = Route::ActionKind::kRedirect;
      r.redirect = read_redirect(v, join(path, "redirect"), r.path_kind);
    }
    if (auto v = n["direct_response"]) {
      r.action = Route::ActionKind::kDirectResponse;
      r.direct_response = read_direct_response(v, join(path, "direct_response"));
    }
    if (auto v = n["cluster"]) {
      r.action = Route::ActionKind::kCluster;
      non_empty_string(v, join(path, "cluster"), r.cluster);
    }
  }

  std::optional<DirectResponse> read_direct_response(const yaml::Node& n, const std::string& path) {
    if (!expect_map(n, path, {"status", "body", "content_type"})) return std::nullopt;
    DirectResponse d;
    if (auto v = n["status"]) uint_field(v, join(path, "status"), d.status, 200, 599);
    if (auto v = n["body"]) {
      if (scalar(v, join(path, "body"), d.body) && d.body.size() > kMaxDirectResponseBodyBytes) {
        add(v.mark(), join(path, "body"), fmt::format("the body is {} bytes, more than the limit of {} (64 KiB)",
                                                      d.body.size(), kMaxDirectResponseBodyBytes));
      }
      if ((d.status == 204 || d.status == 304) && !d.body.empty()) {
        add(v.mark(), join(path, "body"), fmt::format("a {} response has no body", d.status));
      }
    }
    if (auto v = n["content_type"]) {
      std::string p = join(path, "content_type");
      if (non_empty_string(v, p, d.content_type)) field_value(v, p, d.content_type);
    }
    return d;
  }

  std::optional<Redirect> read_redirect(const yaml::Node& n, const std::string& path, Route::PathKind match) {
    if (!expect_map(n, path, {"scheme", "host", "port", "path", "prefix_rewrite", "strip_query", "code"})) {
      return std::nullopt;
    }
    Redirect d;
    if (auto v = n["scheme"]) {
      std::string s;
      if (scalar(v, join(path, "scheme"), s)) {
        s = lower(s);
        if (s == "http" || s == "https") d.scheme = s;
        else add(v.mark(), join(path, "scheme"), fmt::format("unknown scheme '{}' (http or https)", s));
      }
    }
    if (auto v = n["host"]) {
      std::string s;
      if (non_empty_string(v, join(path, "host"), s)) {
        boost::system::error_code v4, v6{boost::asio::error::invalid_argument};
        boost::asio::ip::make_address_v4(s, v4);
        if (s.size() > 2 && s.front() == '[' && s.back() == ']') {
          boost::asio::ip::make_address_v6(s.substr(1, s.size() - 2), v6);
        }
        bool ipv4 = !v4, ipv6 = !v6;
        if (ipv4 || ipv6 || is_host_name(s)) {
          d.host = lower(s);
        } else {
          add(v.mark(), join(path, "host"),
              fmt::format("'{}' is not a host name or an IP address ([IPv6] in brackets; the port goes "
                          "in 'port')", s));
        }
      }
    }
    if (auto v = n["port"]) {
      uint16_t port = 0;
      uint_field(v, join(path, "port"), port, 1, 65535);
      if (port != 0) d.port = port;
    }
    for (auto [key, out] : {std::pair{"path", &d.path}, std::pair{"prefix_rewrite", &d.prefix_rewrite}}) {
      auto v = n[key];
      std::string s;
      if (!v || !scalar(v, join(path, key), s)) continue;
      if (s.empty() || s.front() != '/') {
        add(v.mark(), join(path, key), "must start with '/'");
      } else if (std::any_of(s.begin(), s.end(), [](char c) {
                   return std::iscntrl(static_cast<unsigned char>(c)) || c == ' ';
                 })) {
        add(v.mark(), join(path, key), "must not contain white space or control characters");
      } else {
        *out = s;
      }
    }
    if (n["path"] && n["prefix_rewrite"]) {
      add(n.mark(), path, "takes only one of 'path' and 'prefix_rewrite'");
    } else if (auto v = n["prefix_rewrite"]; v && match != Route::PathKind::kPrefix) {
      add(v.mark(), join(path, "prefix_rewrite"), "needs a 'prefix' match (the part it replaces)");
    }
    if (auto v = n["strip_query"]) bool_field(v, join(path, "strip_query"), d.strip_query);
    if (auto v = n["code"]) {
      int code = -1;  // stays so when uint_field reported an error
      uint_field(v, join(path, "code"), code, 0, 999);
      if (code == 301 || code == 302 || code == 303 || code == 307 || code == 308) {
        d.code = code;
      } else if (code != -1) {
        add(v.mark(), join(path, "code"), fmt::format("{} is not a redirect code (301, 302, 303, 307 or 308)", code));
      }
    }
    // Without a new scheme, host, port or path the redirect points at the URL it came from.
    if (!n["scheme"] && !n["host"] && !n["port"] && !n["path"] && !n["prefix_rewrite"]) {
      add(n.mark(), path, fmt::format("{}: set 'scheme', 'host', 'port', 'path' or 'prefix_rewrite' (a "
                                      "redirect to the same URL loops)",
                                      n["strip_query"] ? "changes nothing but the query" : "changes nothing"));
    }
    return d;
  }

  // A list of upgrade protocols to tunnel (`upgrades` of a virtual host or route).
  std::vector<std::string> read_upgrades(const yaml::Node& n, const std::string& path) {
    std::vector<std::string> out;
    sequence(n, path, [&](const yaml::Node& u, const std::string& p) {
      std::string s;
      if (!non_empty_string(u, p, s)) return;
      s = lower(s);
      if (s == "h2c") {
        add(u.mark(), p, "h2c is not a tunnel protocol; HTTP/2 comes with the listener's http2 settings");
      } else if (s != "websocket") {
        add(u.mark(), p, fmt::format("unknown upgrade protocol '{}' (only websocket is tunnelled)", s));
      } else if (std::find(out.begin(), out.end(), s) != out.end()) {
        add(u.mark(), p, fmt::format("{} is listed twice", s));
      } else {
        out.push_back(s);
      }
    });
    return out;
  }

  // `request_headers` and `response_headers` of a listener or virtual host.
  void read_header_policy(const yaml::Node& n, const std::string& path, HeaderPolicy& out) {
    if (auto v = n["request_headers"]) {
      read_header_mutation(v, join(path, "request_headers"), /*request=*/true, out.request);
    }
    if (auto v = n["response_headers"]) {
      read_header_mutation(v, join(path, "response_headers"), /*request=*/false, out.response);
    }
  }

  // { set: {name: value}, add: {name: value}, remove: [name] }. A name appears once per mutation.
  void read_header_mutation(const yaml::Node& n, const std::string& path, bool request, HeaderMutation& out) {
    if (!expect_map(n, path, {"set", "add", "remove"})) return;
    std::map<std::string, std::string> seen;  // lower-case name → the key that has it
    for (auto [op, list] : {std::pair{"set", &out.set}, std::pair{"add", &out.add}}) {
      auto m = n[op];
      if (!m) continue;
      std::string opath = join(path, op);
      if (!m.is_map()) {
        add(m.mark(), opath, "expected a map of header names to values");
        continue;
      }
      for (auto it = m.begin(); it != m.end(); ++it) {
        std::string name, value;
        if (!header_name(it->first, opath, op, request, seen, name)) continue;
        std::string p = join(opath, name);
        if (scalar(it->second, p, value, "a string (the header value)") && header_value(it->second, p, value)) {
          list->emplace_back(name, value);
        }
      }
    }
    if (auto r = n["remove"]) {
      std::string rpath = join(path, "remove");
      sequence(r, rpath, [&](const yaml::Node& item, const std::string& p) {
        std::string name;
        if (header_name(item, p, "remove", request, seen, name)) out.remove.push_back(name);
      });
    }
  }

  // Reads a header name that `op` ("set", "add" or "remove") may change, lower-cased into `name`.
  bool header_name(const yaml::Node& n, const std::string& path, const std::string& op, bool request,
                   std::map<std::string, std::string>& seen, std::string& name) {
    std::string raw;
    if (!scalar(n, path, raw, "a header name")) return false;
    name = lower(raw);
    std::string error;
    if (!raw.empty() && raw.front() == ':') {
      error = fmt::format("'{}' is a pseudo-header, not a header field; it cannot be changed here", raw);
    } else if (!is_header_name(raw)) {
      error = fmt::format("'{}' is not a header name (letters, digits and !#$%&'*+-.^_`|~)", raw);
    } else if (is_framing_header(name)) {
      error = fmt::format("'{}' cannot be changed: Sluice sets the framing and hop-by-hop headers "
                          "(content-length, transfer-encoding, connection, keep-alive, proxy-connection, "
                          "te, trailer, upgrade) itself", name);
    } else if (request && name == "host" && op != "set") {
      error = "'host' can only be set (a request has exactly one Host)";
    } else if (auto [it, fresh] = seen.emplace(name, op); !fresh) {
      error = fmt::format("'{}' is already in '{}' here; a header appears once per direction and level "
                          "(names are case-insensitive)", name, it->second);
    }
    if (error.empty()) return true;
    add(n.mark(), path, error);
    return false;
  }

  // RFC 9110 §5.5: CR, LF and NUL are what make a field value dangerous.
  bool field_value(const yaml::Node& n, const std::string& path, const std::string& value) {
    if (value.find_first_of(std::string_view("\r\n\0", 3)) == std::string::npos) return true;
    add(n.mark(), path, "a header value must not contain CR, LF or NUL");
    return false;
  }

  // A header value template: a field value with only known %VARIABLES%.
  bool header_value(const yaml::Node& n, const std::string& path, const std::string& value) {
    if (!field_value(n, path, value)) return false;
    auto parts = parse_header_template(value);
    if (!parts) add(n.mark(), path, parts.error().message);
    return parts.ok();
  }

  void read_match(const yaml::Node& m, const std::string& path, Route& r) {
    if (!expect_map(m, path, {"path", "prefix", "regex", "headers", "query", "client_cert"})) return;
    int kinds = 0;
    for (auto [key, kind] : {std::pair{"path", Route::PathKind::kPath},
                             std::pair{"prefix", Route::PathKind::kPrefix},
                             std::pair{"regex", Route::PathKind::kRegex}}) {
      auto v = m[key];
      if (!v) continue;
      ++kinds;
      r.path_kind = kind;
      std::string s;
      if (!scalar(v, join(path, key), s)) continue;
      if (kind == Route::PathKind::kRegex) {
        check_regex(v, join(path, key), s);
      } else if (s.empty() || s.front() != '/') {
        add(v.mark(), join(path, key), "must start with '/'");
      }
      r.path = s;
    }
    if (kinds != 1) {
      add(m.mark(), path, kinds == 0 ? "needs one of 'path', 'prefix' or 'regex'"
                                     : "takes only one of 'path', 'prefix' or 'regex'");
    }
    if (auto h = m["headers"]) {
      sequence(h, join(path, "headers"), [&](const yaml::Node& hn, const std::string& p) {
        HeaderMatch hm;
        if (read_condition(hn, p, hm.name, hm.value, hm.present, /*allow_regex=*/true, hm.kind)) {
          hm.name = lower(hm.name);
          r.headers.push_back(std::move(hm));
        }
      });
    }
    if (auto q = m["query"]) {
      sequence(q, join(path, "query"), [&](const yaml::Node& qn, const std::string& p) {
        QueryMatch qm;
        HeaderMatch::Kind kind{};
        if (read_condition(qn, p, qm.name, qm.value, qm.present, /*allow_regex=*/false, kind)) {
          qm.kind = kind == HeaderMatch::Kind::kExact ? QueryMatch::Kind::kExact : QueryMatch::Kind::kPresent;
          r.query.push_back(std::move(qm));
        }
      });
    }
    if (auto c = m["client_cert"]) r.client_cert = read_client_cert_match(c, join(path, "client_cert"));
  }

  // `match.client_cert`: conditions on the peer's TLS client certificate.
  std::optional<ClientCertMatch> read_client_cert_match(const yaml::Node& n, const std::string& path) {
    if (!expect_map(n, path, {"present", "subject", "uri_san", "dns_san"})) return std::nullopt;
    ClientCertMatch c;
    if (n.size() == 0) {
      add(n.mark(), path, "needs at least one of 'present', 'subject', 'uri_san' or 'dns_san'");
      return std::nullopt;
    }
    if (auto v = n["present"]) {
      bool present = true;
      if (bool_field(v, join(path, "present"), present)) c.present = present;
    }
    for (auto [key, out] : {std::pair{"subject", &c.subject}, std::pair{"uri_san", &c.uri_san},
                            std::pair{"dns_san", &c.dns_san}}) {
      if (auto v = n[key]) {
        *out = read_string_match(v, join(path, key));
        if (c.present == false) {
          add(v.mark(), join(path, key),
              "never holds with 'present: false' (a connection without a certificate has no " +
                  std::string(key) + ")");
        }
      }
    }
    return c;
  }

  // { exact | prefix | suffix | regex: STRING }; a regex must match the whole string.
  std::optional<StringMatch> read_string_match(const yaml::Node& n, const std::string& path) {
    if (!n.is_map()) {
      add(n.mark(), path, "expected a map with one of 'exact', 'prefix', 'suffix' or 'regex'");
      return std::nullopt;
    }
    if (!expect_map(n, path, {"exact", "prefix", "suffix", "regex"})) return std::nullopt;
    int kinds = (n["exact"] ? 1 : 0) + (n["prefix"] ? 1 : 0) + (n["suffix"] ? 1 : 0) + (n["regex"] ? 1 : 0);
    // An unknown key alone was reported by expect_map.
    if (kinds > 1 || (kinds == 0 && n.size() == 0)) {
      add(n.mark(), path, "takes exactly one of 'exact', 'prefix', 'suffix' or 'regex'");
      return std::nullopt;
    }
    for (auto [key, kind] : {std::pair{"exact", StringMatch::Kind::kExact}, std::pair{"prefix", StringMatch::Kind::kPrefix},
                             std::pair{"suffix", StringMatch::Kind::kSuffix}, std::pair{"regex", StringMatch::Kind::kRegex}}) {
      auto v = n[key];
      if (!v) continue;
      StringMatch m;
      m.kind = kind;
      if (!non_empty_string(v, join(path, key), m.value)) return std::nullopt;
      if (kind == StringMatch::Kind::kRegex && !check_regex(v, join(path, key), m.value)) return std::nullopt;
      return m;
    }
    return std::nullopt;
  }

  // A header or query condition: { name, exact | present | regex }.
  bool read_condition(const yaml::Node& n, const std::string& path, std::string& name,
                      std::string& value, bool& present, bool allow_regex, HeaderMatch::Kind& kind) {
    bool ok = allow_regex ? expect_map(n, path, {"name", "exact", "present", "regex"})
                          : expect_map(n, path, {"name", "exact", "present"});
    if (!ok) return false;
    if (!n["name"]) {
      add(n.mark(), join(path, "name"), "missing required key");
      return false;
    }
    if (!non_empty_string(n["name"], join(path, "name"), name)) return false;
    int kinds = (n["exact"] ? 1 : 0) + (n["present"] ? 1 : 0) + (allow_regex && n["regex"] ? 1 : 0);
    if (kinds > 1) {
      add(n.mark(), path, "takes only one of 'exact', 'present'" + std::string(allow_regex ? " or 'regex'" : ""));
      return false;
    }
    kind = HeaderMatch::Kind::kPresent;
    present = true;
    if (auto v = n["exact"]) {
      kind = HeaderMatch::Kind::kExact;
      return scalar(v, join(path, "exact"), value);
    }
    if (auto v = n["regex"]) {
      kind = HeaderMatch::Kind::kRegex;
      return scalar(v, join(path, "regex"), value) && check_regex(v, join(path, "regex"), value);
    }
    if (auto v = n["present"]) return bool_field(v, join(path, "present"), present);
    return true;
  }

  Cluster read_cluster(const yaml::Node& n, const std::string& path) {
    Cluster c;
    if (!expect_map(n, path, {"name", "lb", "hash_on", "maglev_table_size", "connect_timeout",
                              "idle_timeout", "max_idle_connections", "endpoints", "dns_refresh",
                              "health_check", "panic_threshold", "circuit_breakers", "tls",
                              "protocol", "http2"})) {
      return c;
    }
    if (n["name"]) non_empty_string(n["name"], join(path, "name"), c.name);
    else add(n.mark(), join(path, "name"), "missing required key");
    if (auto v = n["lb"]) {
      std::string s;
      if (scalar(v, join(path, "lb"), s)) {
        if (s == "round_robin") c.lb = Cluster::LbPolicy::kRoundRobin;
        else if (s == "least_request") c.lb = Cluster::LbPolicy::kLeastRequest;
        else if (s == "random") c.lb = Cluster::LbPolicy::kRandom;
        else if (s == "maglev") c.lb = Cluster::LbPolicy::kMaglev;
        else {
          add(v.mark(), join(path, "lb"),
              fmt::format("unknown load balancer '{}' (round_robin, least_request, random, maglev)", s));
        }
      }
    }
    if (auto v = n["hash_on"]) {
      read_hash_on(v, join(path, "hash_on"), c.hash_on);
      if (c.lb != Cluster::LbPolicy::kMaglev && c.hash_on.kind != HashOn::Kind::kNone) {
        add(v.mark(), join(path, "hash_on"), "only used with 'lb: maglev'");
      }
    } else if (c.lb == Cluster::LbPolicy::kMaglev && n["lb"]) {
      add(n["lb"].mark(), join(path, "hash_on"),
          "'lb: maglev' needs 'hash_on' (header, cookie, source_ip or path)");
    }
    if (auto v = n["maglev_table_size"]) {
      uint_field(v, join(path, "maglev_table_size"), c.maglev_table_size, 1, 5000011);
      if (!upstream::is_prime(c.maglev_table_size)) {
        add(v.mark(), join(path, "maglev_table_size"),
            fmt::format("{} is not a prime number (e.g. 65537, 131071, 5000011)", c.maglev_table_size));
      }
    }
    if (auto v = n["connect_timeout"]) {
      duration_field(v, join(path, "connect_timeout"), c.connect_timeout);
      if (c.connect_timeout.count() == 0) add(v.mark(), join(path, "connect_timeout"), "must be greater than 0");
    }
    if (auto v = n["idle_timeout"]) duration_field(v, join(path, "idle_timeout"), c.idle_timeout);
    if (auto v = n["max_idle_connections"]) {
      uint_field(v, join(path, "max_idle_connections"), c.max_idle_connections, 0, 100000);
    }
    if (auto v = n["dns_refresh"]) {
      duration_field(v, join(path, "dns_refresh"), c.dns_refresh);
      if (c.dns_refresh.count() < 1000) add(v.mark(), join(path, "dns_refresh"), "must be at least 1s");
    }
    if (auto v = n["panic_threshold"]) uint_field(v, join(path, "panic_threshold"), c.panic_threshold, 0, 100);
    if (auto v = n["health_check"]) c.health_check = read_health_check(v, join(path, "health_check"));
    if (auto v = n["circuit_breakers"]; v && expect_map(v, join(path, "circuit_breakers"),
                                                       {"max_connections", "max_pending_requests"})) {
      std::string p = join(path, "circuit_breakers");
      if (auto m = v["max_connections"]) {
        uint_field(m, join(p, "max_connections"), c.circuit_breakers.max_connections, 1, 10'000'000);
      }
      if (auto m = v["max_pending_requests"]) {
        uint_field(m, join(p, "max_pending_requests"), c.circuit_breakers.max_pending_requests, 1, 10'000'000);
      }
    }
    if (auto v = n["tls"]) c.tls = read_cluster_tls(v, join(path, "tls"));
    if (auto v = n["protocol"]) {
      std::string s;
      if (scalar(v, join(path, "protocol"), s)) {
        if (s == "http1") c.protocol = Cluster::Protocol::kHttp1;
        else if (s == "http2") c.protocol = Cluster::Protocol::kHttp2;
        else add(v.mark(), join(path, "protocol"), fmt::format("unknown protocol '{}' (http1 or http2)", s));
      }
    }
    if (auto v = n["http2"]) read_cluster_http2(v, join(path, "http2"), c);
    if (c.health_check && c.health_check->grpc && c.protocol != Cluster::Protocol::kHttp2) {
      add(n["health_check"]["grpc"].mark(), join(join(path, "health_check"), "grpc"),
          "gRPC health checks need 'protocol: http2' on the cluster");
    }
    std::string epath = join(path, "endpoints");
    if (auto e = n["endpoints"]) {
      sequence(e, epath, [&](const yaml::Node& en, const std::string& p) {
        Endpoint ep;
        if (en.is_scalar()) {
          endpoint_field(en, p, ep);
        } else if (expect_map(en, p, {"address", "weight"})) {
          if (en["address"]) endpoint_field(en["address"], join(p, "address"), ep);
          else add(en.mark(), join(p, "address"), "missing required key");
          if (en["weight"]) uint_field(en["weight"], join(p, "weight"), ep.weight, 1, 1000);
        }
        c.endpoints.push_back(ep);
      });
      if (e.is_sequence() && e.size() == 0) add(e.mark(), epath, "needs at least one endpoint");
      // The same endpoint twice would double its share silently; say so.
      std::set<std::string> seen;
      for (size_t i = 0; e.is_sequence() && i < c.endpoints.size() && i < e.size(); ++i) {
        std::string key = c.endpoints[i].to_string();
        if (key != ":0" && !seen.insert(key).second) {
          add(e[i].mark(), index(epath, i), fmt::format("endpoint {} is listed twice (use weight instead)", key));
        }
      }
      if (c.lb == Cluster::LbPolicy::kMaglev && n["maglev_table_size"] && e.is_sequence() &&
          c.maglev_table_size < c.endpoints.size()) {
        add(n["maglev_table_size"].mark(), join(path, "maglev_table_size"),
            fmt::format("{} is smaller than the {} endpoints", c.maglev_table_size, c.endpoints.size()));
      }
    } else {
      add(n.mark(), epath, "missing required key");
    }
    return c;
  }

  // `clusters[].tls`: TLS to the endpoints.
  std::optional<ClusterTls> read_cluster_tls(const yaml::Node& n, const std::string& path) {
    if (!expect_map(n, path, {"sni", "ca", "verify", "cert", "key"})) return std::nullopt;
    ClusterTls t;
    if (auto v = n["sni"]) {
      std::string s;
      if (non_empty_string(v, join(path, "sni"), s)) {
        // RFC 6066 §3: the server name is a DNS host name; an IP address is never sent.
        if (!is_host_name(s) || s.find_first_not_of("0123456789.") == std::string::npos) {
          add(v.mark(), join(path, "sni"),
              fmt::format("'{}' is not a host name (SNI carries a DNS name, never an IP address)", s));
        } else {
          t.sni = lower(s);
        }
      }
    }
    if (auto v = n["verify"]) bool_field(v, join(path, "verify"), t.verify);
    if (auto v = n["ca"]) {
      readable_file(v, join(path, "ca"), t.ca);
      if (!t.verify) add(v.mark(), join(path, "ca"), "only used with 'verify: true' (nothing is verified)");
    }
    if (auto v = n["cert"]) readable_file(v, join(path, "cert"), t.cert);
    if (auto v = n["key"]) readable_file(v, join(path, "key"), t.key);
    if (n["cert"] && !n["key"]) {
      add(n["cert"].mark(), join(path, "cert"), "needs 'key' too (the PEM private key of this certificate)");
    } else if (n["key"] && !n["cert"]) {
      add(n["key"].mark(), join(path, "key"), "needs 'cert' too (the PEM certificate chain of this key)");
    }
    return t;
  }

  void endpoint_field(const yaml::Node& n, const std::string& path, Endpoint& out) {
    std::string s;
    if (!scalar(n, path, s, "an endpoint (IP:port or host:port)")) return;
    auto ep = parse_endpoint(s);
    if (!ep) return add(n.mark(), path, ep.error().message);
    ep->weight = out.weight;
    out = *ep;
  }

  void read_hash_on(const yaml::Node& n, const std::string& path, HashOn& out) {
    if (!expect_map(n, path, {"header", "cookie", "source_ip", "path"})) return;
    // An unknown key was reported by expect_map; none of the branches below may look it up.
    if (!n["header"] && !n["cookie"] && !n["source_ip"] && !n["path"]) {
      if (n.size() == 0) add(n.mark(), path, "takes exactly one of 'header', 'cookie', 'source_ip' or 'path'");
      return;
    }
    if (n.size() != 1) {
      add(n.mark(), path, "takes exactly one of 'header', 'cookie', 'source_ip' or 'path'");
      return;
    }
    if (auto v = n["header"]) {
      if (non_empty_string(v, join(path, "header"), out.name)) {
        out.kind = HashOn::Kind::kHeader;
        out.name = lower(out.name);
      }
    } else if (auto v = n["cookie"]) {
      if (non_empty_string(v, join(path, "cookie"), out.name)) out.kind = HashOn::Kind::kCookie;
    } else {
      const char* key = n["source_ip"] ? "source_ip" : "path";
      std::string s;
      if (!scalar(n[key], join(path, key), s, "true")) return;
      if (s != "true") return add(n[key].mark(), join(path, key), "must be true");
      out.kind = n["source_ip"] ? HashOn::Kind::kSourceIp : HashOn::Kind::kPath;
    }
  }

  // `clusters[].http2`: the upstream HTTP/2 connection's limits and keepalive.
  void read_cluster_http2(const yaml::Node& n, const std::string& path, Cluster& c) {
    if (!expect_map(n, path, {"max_concurrent_streams", "ping_interval", "ping_timeout",
                              "initial_stream_window", "initial_connection_window"})) {
      return;
    }
    if (c.protocol != Cluster::Protocol::kHttp2) add(n.mark(), path, "only used with 'protocol: http2'");
    ClusterHttp2& h = c.http2;
    if (auto v = n["max_concurrent_streams"]) {
      uint_field(v, join(path, "max_concurrent_streams"), h.max_concurrent_streams, 1, 10000);
    }
    if (auto v = n["ping_interval"]) duration_field(v, join(path, "ping_interval"), h.ping_interval);
    if (auto v = n["ping_timeout"]) {
      duration_field(v, join(path, "ping_timeout"), h.ping_timeout);
      if (h.ping_timeout.count() == 0) add(v.mark(), join(path, "ping_timeout"), "must be greater than 0");
    }
    window_fields(n, path, h.initial_stream_window, h.initial_connection_window);
  }

  std::optional<HealthCheck> read_health_check(const yaml::Node& n, const std::string& path) {
    if (!expect_map(n, path, {"path", "interval", "timeout", "healthy_threshold", "unhealthy_threshold",
                              "expected_statuses", "host", "grpc"})) {
      return std::nullopt;
    }
    HealthCheck h;
    if (auto v = n["grpc"]; v && expect_map(v, join(path, "grpc"), {"service"})) {
      h.grpc = true;
      if (auto sv = v["service"]) scalar(sv, join(join(path, "grpc"), "service"), h.grpc_service);
      if (n["path"]) add(n["path"].mark(), join(path, "path"), "not used with 'grpc' (the probe is grpc.health.v1.Health/Check)");
    }
    if (auto v = n["path"]) {
      if (scalar(v, join(path, "path"), h.path) && (h.path.empty() || h.path.front() != '/' ||
                                                    h.path.find_first_of(" \r\n") != std::string::npos)) {
        add(v.mark(), join(path, "path"), "must start with '/' and contain no white space");
      }
    }
    if (auto v = n["interval"]) {
      duration_field(v, join(path, "interval"), h.interval);
      if (h.interval.count() < 100) add(v.mark(), join(path, "interval"), "must be at least 100ms");
    }
    if (auto v = n["timeout"]) {
      duration_field(v, join(path, "timeout"), h.timeout);
      if (h.timeout.count() == 0) add(v.mark(), join(path, "timeout"), "must be greater than 0");
    }
    if (auto v = n["healthy_threshold"]) uint_field(v, join(path, "healthy_threshold"), h.healthy_threshold, 1, 100);
    if (auto v = n["unhealthy_threshold"]) uint_field(v, join(path, "unhealthy_threshold"), h.unhealthy_threshold, 1, 100);
    if (auto v = n["host"]) {
      if (non_empty_string(v, join(path, "host"), h.host) && h.host.find_first_of(" \r\n") != std::string::npos) {
        add(v.mark(), join(path, "host"), "must not contain white space");
      }
    }
    if (auto v = n["expected_statuses"]) {
      h.expected_statuses.clear();
      sequence(v, join(path, "expected_statuses"), [&](const yaml::Node& sn, const std::string& p) {
        std::string s;
        if (!scalar(sn, p, s, "a status or a range like 200-399")) return;
        auto dash = s.find('-');
        uint64_t lo = 0, hi = 0;
        bool ok = dash == std::string::npos ? parse_uint(s, lo) && (hi = lo, true)
                                            : parse_uint(s.substr(0, dash), lo) && parse_uint(s.substr(dash + 1), hi);
        if (!ok || lo < 100 || hi > 599 || lo > hi) {
          return add(sn.mark(), p, fmt::format("'{}' is not a status (100-599) or a range like 200-399", s));
        }
        h.expected_statuses.emplace_back(static_cast<int>(lo), static_cast<int>(hi));
      });
      if (v.is_sequence() && v.size() == 0) add(v.mark(), join(path, "expected_statuses"), "needs at least one status");
    }
    return h;
  }

  void cross_check(const yaml::Node& root, const Config& c) {
    check_unique_names(root["listeners"], "listeners", c.listeners, "listener");
    check_unique_names(root["clusters"], "clusters", c.clusters, "cluster");
    std::unordered_set<std::string> clusters;
    for (const auto& cl : c.clusters) clusters.insert(cl.name);
    auto ls = root["listeners"];
    if (!ls || !ls.is_sequence()) return;
    for (size_t i = 0; i < c.listeners.size() && i < ls.size(); ++i) {
      // Entries that are not maps were reported already, and operator[] on a scalar throws.
      if (!ls[i].is_map()) continue;
      auto vhs = ls[i]["virtual_hosts"];
      for (size_t j = 0; j < c.listeners[i].virtual_hosts.size(); ++j) {
        if (!vhs[j].is_map()) continue;
        auto routes = vhs[j]["routes"];
        const auto& vh = c.listeners[i].virtual_hosts[j];
        for (size_t k = 0; k < vh.routes.size(); ++k) {
          const auto& r = vh.routes[k];
          if (r.action != Route::ActionKind::kCluster || r.cluster.empty() || clusters.count(r.cluster)) continue;
          auto at = routes[k]["cluster"];
          add(at.mark(),
              fmt::format("listeners[{}].virtual_hosts[{}].routes[{}].cluster", i, j, k),
              fmt::format("no cluster named '{}' is defined", r.cluster));
        }
      }
    }
    std::set<std::string> addresses;
    for (size_t i = 0; i < c.listeners.size() && i < ls.size(); ++i) {
      const auto& a = c.listeners[i].address;
      if (a.port != 0 && !addresses.insert(a.to_string()).second) {
        add(ls[i]["address"].mark(), fmt::format("listeners[{}].address", i),
            fmt::format("address {} is already used by another listener", a.to_string()));
      }
    }
  }

  std::string file_;
  std::vector<LoadError> errors_;
  size_t unreported_ = 0;  // errors beyond kMaxReportedErrors
  std::unordered_map<std::string, RegexVerdict> regexes_;  // by pattern
  // The verdicts of the previous load (RegexMemo), taken for this one.
  std::unordered_map<std::string, RegexVerdict> previous_regexes_ = RegexMemo::take();
  int64_t regex_cost_ = 0;  // RE2 instructions compiled for this file
};

}  // namespace

LoadResult load_string(std::string_view yaml, const std::string& file_name) {
  return Loader(file_name).run(yaml);
}

LoadResult load_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  // Reads at most one byte more than the limit: enough to refuse a file that is larger (or a
  // pipe that never ends) without holding all of it.
  std::string text;
  char chunk[64 * 1024];
  while (in && text.size() <= kMaxConfigFileBytes) {
    in.read(chunk, sizeof chunk);
    text.append(chunk, static_cast<size_t>(in.gcount()));
  }
  if (!in.is_open() || in.bad()) {
    LoadResult r;
    r.errors.push_back(LoadError{path, 0, 0, "", "cannot read the file"});
    return r;
  }
  LoadResult result = load_string(text, path);
  if (!result.ok()) return result;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(text.data(), text.size(), digest, &length, EVP_sha256(), nullptr) == 1) {
    for (unsigned int i = 0; i < length; ++i) result.sha256 += fmt::format("{:02x}", digest[i]);
  }
  return result;
}

}  // namespace sluice::config
