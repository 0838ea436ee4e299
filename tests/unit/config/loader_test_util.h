#pragma once
// Helpers shared by the loader's tests: documents whose first lines are fixed, so that the keys
// under test start at a known line and column, and exact expectations on every error.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "sluice/config/loader.h"

namespace sluice::config::testing {

// Drops the newline a raw string literal starts with, so that its first line is line 1.
inline std::string without_leading_newline(std::string text) {
  if (!text.empty() && text.front() == '\n') text.erase(0, 1);
  return text;
}

inline LoadResult load_yaml(const std::string& yaml) {
  return load_string(without_leading_newline(yaml), "test.yaml");
}

// Replaces the first occurrence of `from` in `text` (which must be there) by `to`.
inline std::string replace(std::string text, const std::string& from, const std::string& to) {
  auto pos = text.find(from);
  EXPECT_NE(pos, std::string::npos) << "'" << from << "' not in the document";
  if (pos != std::string::npos) text.replace(pos, from.size(), to);
  return text;
}

// The first lines of a document, up to the keys of its one listener (from line 4, indent 4), of
// its one virtual host (from line 7, indent 8), and of its routes (from line 8, indent 10).
inline const std::string kListenerHead =
    "listeners:\n"
    "  - name: l\n"
    "    address: 127.0.0.1:8000\n";
inline const std::string kVirtualHostHead = kListenerHead +
    "    virtual_hosts:\n"
    "      - name: v\n"
    "        domains: [\"*\"]\n";
inline const std::string kRoutesHead = kVirtualHostHead + "        routes:\n";
inline const std::string kClusters =
    "clusters:\n"
    "  - name: c\n"
    "    endpoints: [ 127.0.0.1:9000 ]\n";

// The smallest valid document: 13 lines, its route "r" on line 8, "clusters:" on line 11.
inline const std::string kMinimal =
    kRoutesHead + "          - name: r\n            match: { prefix: / }\n            cluster: c\n" + kClusters;

inline LoadResult load_listener(const std::string& body) {
  return load_yaml(kListenerHead + without_leading_newline(body) +
                   "    virtual_hosts: [ { name: v, domains: [\"*\"], routes: [ { match: { prefix: / }, cluster: c } ] } ]\n" +
                   kClusters);
}

inline LoadResult load_virtual_host(const std::string& body) {
  return load_yaml(kVirtualHostHead + without_leading_newline(body) +
                   "        routes: [ { match: { prefix: / }, cluster: c } ]\n" + kClusters);
}

// `routes`: the list items of the one virtual host, indented by 10.
inline LoadResult load_routes(const std::string& routes) {
  return load_yaml(kRoutesHead + without_leading_newline(routes) + kClusters);
}

// `body`: keys of the one route "r" (besides its name), indented by 12, from line 9.
inline LoadResult load_route(const std::string& body) {
  return load_routes("          - name: r\n" + without_leading_newline(body));
}

// The only route of a document from load_route() or load_virtual_host(), which must be valid.
inline Route only_route(const LoadResult& r) {
  EXPECT_TRUE(r.ok()) << r.error_text();
  if (r.config.listeners.empty() || r.config.listeners[0].virtual_hosts.empty() ||
      r.config.listeners[0].virtual_hosts[0].routes.empty()) {
    return Route{};
  }
  return r.config.listeners[0].virtual_hosts[0].routes[0];
}

struct ExpectedError {
  int line;
  int column;
  std::string path;
  std::string message;
};

// Exactly these errors, in this order, all in test.yaml.
inline void expect_errors(const LoadResult& r, const std::vector<ExpectedError>& want) {
  ASSERT_EQ(r.errors.size(), want.size()) << r.error_text();
  for (size_t i = 0; i < want.size(); ++i) {
    const LoadError& e = r.errors[i];
    SCOPED_TRACE(e.to_string());
    EXPECT_EQ(e.file, "test.yaml");
    EXPECT_EQ(e.line, want[i].line);
    EXPECT_EQ(e.column, want[i].column);
    EXPECT_EQ(e.path, want[i].path);
    EXPECT_EQ(e.message, want[i].message);
  }
}

inline void expect_error(const LoadResult& r, int line, int column, const std::string& path,
                         const std::string& message) {
  expect_errors(r, {{line, column, path, message}});
}

}  // namespace sluice::config::testing
