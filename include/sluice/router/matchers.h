#pragma once
// One matcher type per kind of condition; each is immutable and answers matches() const.
#include <re2/re2.h>

#include <memory>
#include <optional>
#include <string>

#include "sluice/config/config.h"
#include "sluice/http/request_view.h"

namespace sluice::router {

// The text every full match of the RE2 `pattern` starts with (conservatively: possibly shorter,
// possibly empty). Pattern syntax is read as RE2's default, case-sensitive options.
std::string regex_literal_prefix(std::string_view pattern);

class PathMatcher {
 public:
  explicit PathMatcher(const config::Route& route);
  bool matches(std::string_view path) const;
  config::Route::PathKind kind() const { return kind_; }
  const std::string& value() const { return value_; }

 private:
  config::Route::PathKind kind_;
  std::string value_;
  // A regex path: the path (without the query) starts with regex_prefix_ and the rest fully
  // matches regex_ (the pattern without that prefix; the whole pattern when it is empty).
  std::string regex_prefix_;
  std::shared_ptr<const re2::RE2> regex_;
};

class HeaderMatcher {
 public:
  explicit HeaderMatcher(const config::HeaderMatch& spec);
  // Holds when any header of that name satisfies the condition (or, for present: false, when
  // no header of that name is present).
  bool matches(const http::RequestView& request) const;

 private:
  config::HeaderMatch spec_;
  std::shared_ptr<const re2::RE2> regex_;
};

class QueryMatcher {
 public:
  explicit QueryMatcher(const config::QueryMatch& spec) : spec_(spec) {}
  // Compares the raw (not percent-decoded) parameter name and value.
  bool matches(std::string_view query) const;

 private:
  config::QueryMatch spec_;
};

// Compares one string from the peer's certificate: exact, prefix, suffix or a full RE2 match.
class StringMatcher {
 public:
  explicit StringMatcher(const config::StringMatch& spec);
  bool matches(std::string_view s) const;

 private:
  config::StringMatch spec_;
  std::shared_ptr<const re2::RE2> regex_;
};

// `match.client_cert`: every condition given holds for the connection's verified client
// certificate; a SAN condition holds when any SAN of its type matches. Without a verified
// certificate (plaintext, or none sent under `mode: optional`) only `present: false` holds.
class ClientCertMatcher {
 public:
  explicit ClientCertMatcher(const config::ClientCertMatch& spec);
  bool matches(const net::TlsInfo* tls) const;

 private:
  std::optional<bool> present_;
  std::optional<StringMatcher> subject_;
  std::optional<StringMatcher> uri_san_;
  std::optional<StringMatcher> dns_san_;
};

}  // namespace sluice::router
