#pragma once
// One matcher type per kind of condition; each is immutable and answers matches() const.
#include <re2/re2.h>

#include <memory>
#include <string>

#include "sluice/config/config.h"
#include "sluice/http/request_view.h"

namespace sluice::router {

class PathMatcher {
 public:
  explicit PathMatcher(const config::Route& route);
  bool matches(std::string_view path) const;
  config::Route::PathKind kind() const { return kind_; }
  const std::string& value() const { return value_; }

 private:
  config::Route::PathKind kind_;
  std::string value_;
  std::shared_ptr<const re2::RE2> regex_;  // full match against the path, without the query
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

}  // namespace sluice::router
