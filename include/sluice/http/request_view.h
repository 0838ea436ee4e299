#pragma once
// A parsed request head as the router sees it: views into the connection's read buffer.
#include <span>
#include <string_view>

namespace sluice::http {

struct HeaderView {
  std::string_view name;  // as received (compare case-insensitively)
  std::string_view value;
};

struct RequestView {
  std::string_view method;
  std::string_view authority;  // Host header (or absolute-form authority), port included
  std::string_view path;       // without the query string
  std::string_view query;      // after '?', may be empty
  std::span<const HeaderView> headers;
};

bool iequals(std::string_view a, std::string_view b);

}  // namespace sluice::http
