#pragma once
// TestUpstream: an in-process HTTP/1.1 origin on 127.0.0.1, port 0, one blocking thread per
// connection, with a pluggable handler. It records every request it read (request line, headers,
// body byte count and checksum) and every connection it accepted, so tests can assert on what
// reached the backend and on connection reuse.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "support/net.h"
#include "support/stream_data.h"

namespace sluice::testing {

struct UpstreamRequest {
  std::string request_line;
  std::string method;
  std::string target;
  std::string version;
  Headers headers;
  bool chunked = false;             // arrived with Transfer-Encoding: chunked
  std::optional<uint64_t> content_length;
  uint64_t body_bytes = 0;
  uint64_t body_checksum = 0;       // Checksum of the decoded body
  std::string body;                 // the first kMaxStoredBody bytes of the body
  std::vector<std::string> trailer_lines;  // of a chunked body, as received ("name: value")
  size_t connection = 0;            // accept order of its connection, from 0
  size_t index_on_connection = 0;   // 0 for the first request on a connection
  // For respond_generated(): what was sent.
  uint64_t response_body_bytes = 0;
  uint64_t response_body_checksum = 0;

  static constexpr size_t kMaxStoredBody = 1 << 20;
  std::optional<std::string> header(std::string_view name) const { return find_header(headers, name); }
};

class TestUpstream;

// What a handler sees and does: the request (its body already read and checksummed) and the
// connection to answer on.
class UpstreamExchange {
 public:
  const UpstreamRequest& request() const { return request_; }

  // Raw bytes (for invalid responses and hand-made framing).
  bool send(std::string_view bytes);
  // A response with Content-Length.
  bool respond(int status, std::string_view body, const Headers& extra = {});
  // A chunked response, one chunk per element (empty elements are skipped).
  bool respond_chunked(int status, const std::vector<std::string>& chunks, const Headers& extra = {});
  // A response with neither Content-Length nor chunked framing: the body ends when the
  // connection closes, which this does.
  bool respond_until_close(int status, std::string_view body);
  // `n` pattern bytes generated on the fly (never held in memory), Content-Length or chunked.
  bool respond_generated(uint64_t n, bool chunked);

  // Waits, waking early when the upstream stops. False if it is stopping.
  bool sleep_for(std::chrono::milliseconds d);
  // Close the connection once the handler returns (after the response).
  void close_after_response() { close_after_ = true; }
  // Close now: a FIN (graceful) or a TCP reset.
  void close_now();
  void reset_now();
  bool closed() const { return !socket_.valid(); }

 private:
  friend class TestUpstream;
  UpstreamExchange(TestUpstream& owner, Socket& socket, UpstreamRequest request)
      : owner_(owner), socket_(socket), request_(std::move(request)) {}
  bool send_head(int status, const Headers& extra, std::string_view framing);

  TestUpstream& owner_;
  Socket& socket_;
  UpstreamRequest request_;
  bool close_after_ = false;
};

class TestUpstream {
 public:
  using Handler = std::function<void(UpstreamExchange&)>;
  struct Options {
    // When > 0, a connection with no new request for this long after a response is closed by
    // the upstream (a backend retiring idle keep-alive connections).
    std::chrono::milliseconds idle_close_after{0};
  };

  explicit TestUpstream(Handler handler) : TestUpstream(std::move(handler), Options{}) {}
  TestUpstream(Handler handler, Options options);
  ~TestUpstream();
  TestUpstream(const TestUpstream&) = delete;
  TestUpstream& operator=(const TestUpstream&) = delete;

  uint16_t port() const { return port_; }
  bool listening() const { return listen_fd_ >= 0; }
  // Stops accepting, wakes and closes every connection, joins every thread. Idempotent.
  void stop();

  size_t connections_accepted() const;
  size_t request_count() const;
  std::vector<UpstreamRequest> requests() const;
  // Requests read on each connection, by accept order.
  std::vector<size_t> requests_per_connection() const;
  // Waits until at least `n` requests were read.
  bool wait_for_requests(size_t n, std::chrono::milliseconds timeout) const;

  // A handler answering 200 with the body "ok" (plus an x-upstream-seq header).
  static Handler ok_handler();

 private:
  friend class UpstreamExchange;
  void accept_loop();
  void serve(size_t id, int fd);
  bool read_request(BufferedReader& reader, UpstreamRequest& req);

  Handler handler_;
  Options options_;
  int listen_fd_ = -1;
  int wake_pipe_[2] = {-1, -1};
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;  // requests recorded, stopping
  std::set<int> open_fds_;
  std::vector<std::thread> threads_;
  std::vector<size_t> per_connection_;
  std::vector<UpstreamRequest> requests_;
};

}  // namespace sluice::testing
