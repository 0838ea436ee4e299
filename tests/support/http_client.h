#pragma once
// Test clients: one HTTP/1.1 connection that writes raw bytes or whole requests and reads
// responses (Content-Length, chunked or close-delimited), byte-exact, with deadlines. Pipelined
// responses are read one by one from the same buffer.
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "support/net.h"
#include "support/stream_data.h"

namespace sluice::testing {

inline constexpr milliseconds kDefaultTimeout{10000};

struct HttpResponse {
  enum class Framing { kNone, kContentLength, kChunked, kUntilClose };

  std::string error;  // empty when a complete response was read
  bool ok() const { return error.empty(); }
  std::string status_line;
  std::string version;
  int status = 0;
  std::string reason;
  Headers headers;
  Framing framing = Framing::kNone;
  std::vector<uint64_t> chunk_sizes;  // when chunked, as framed on the wire
  std::vector<std::string> trailer_lines;  // when chunked, as received ("name: value")
  std::string body;                   // unless ResponseOptions::store_body is false
  uint64_t body_bytes = 0;
  uint64_t body_checksum = 0;

  std::optional<std::string> header(std::string_view name) const { return find_header(headers, name); }
};

struct ResponseOptions {
  bool head_request = false;  // the response has no body whatever its headers say
  bool store_body = true;
  milliseconds timeout = kDefaultTimeout;
};

// Serialises a request. Adds "Host: localhost" unless `headers` has a Host, and Content-Length
// when there is a body and no Content-Length/Transfer-Encoding header.
std::string build_request(std::string_view method, std::string_view target, const Headers& headers = {},
                          std::string_view body = {});

class HttpConnection {
 public:
  explicit HttpConnection(uint16_t port);

  bool connected() const { return socket_.valid(); }
  int connect_errno() const { return connect_errno_; }

  bool send(std::string_view raw, milliseconds timeout = kDefaultTimeout);
  // Streams `n` pattern bytes (raw, no framing), adding them to `sum`.
  bool send_generated(uint64_t n, Checksum& sum, milliseconds timeout);
  HttpResponse read_response(const ResponseOptions& options = {});
  HttpResponse request(std::string_view method, std::string_view target, const Headers& headers = {},
                       std::string_view body = {}, milliseconds timeout = kDefaultTimeout);

  struct CloseResult {
    std::string data;  // everything received (including what was buffered) until EOF or timeout
    IoStatus status = IoStatus::kOk;  // kEof: the peer closed; kTimeout: still open at the deadline
  };
  // Reads until the peer closes the connection.
  CloseResult read_until_close(milliseconds timeout = kDefaultTimeout);

  void shutdown_write() { socket_.shutdown_write(); }
  void close() { socket_.close(); }
  Socket& socket() { return socket_; }
  BufferedReader& reader() { return reader_; }

 private:
  Socket socket_;
  int connect_errno_ = 0;
  BufferedReader reader_;
};

// One request on a fresh connection.
HttpResponse http_get(uint16_t port, std::string_view target, const Headers& headers = {});

// A raw response split in head and body, for local replies read with read_until_close().
struct RawResponse {
  bool ok = false;
  int status = 0;
  Headers headers;
  std::string body;
};
RawResponse parse_raw_response(std::string_view bytes);

}  // namespace sluice::testing
