#pragma once
// Reads sluice.yaml into config::Config. Every problem found is reported, each as
// "FILE:LINE:COLUMN: KEY.PATH: message", and nothing is returned unless all of it is valid.
#include <string>
#include <string_view>
#include <vector>

#include "sluice/common/result.h"
#include "sluice/config/config.h"

namespace sluice::config {

struct LoadError {
  std::string file;
  int line = 0;    // 1-based; 0 when the error has no position (file unreadable)
  int column = 0;  // 1-based
  std::string path;  // key path, e.g. listeners[0].virtual_hosts[0].routes[2].match.regex
  std::string message;
  std::string to_string() const;
};

struct LoadResult {
  Config config;
  std::vector<LoadError> errors;
  std::string sha256;  // of the file's bytes (load_file only), lower-case hex
  bool ok() const { return errors.empty(); }
  std::string error_text() const;  // all errors, one per line
};

LoadResult load_file(const std::string& path);
LoadResult load_string(std::string_view yaml, const std::string& file_name);

// Parsers shared with the CLI and tests.
Result<Duration> parse_duration(std::string_view text);  // "15s", "250ms", "2m", "1h", "0"
Result<uint64_t> parse_size(std::string_view text);      // "64KiB", "10MiB", "1GiB", "512"
Result<Address> parse_address(std::string_view text);    // literal IPv4/IPv6 and port
Result<Endpoint> parse_endpoint(std::string_view text);  // literal address or host.name:port

}  // namespace sluice::config
