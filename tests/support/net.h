#pragma once
// Blocking-socket plumbing shared by the test origin and the test clients. Every wait has a
// deadline (poll before each recv/send), so a misbehaving proxy fails an assertion instead of
// hanging the test binary.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::testing {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;
using std::chrono::milliseconds;

inline TimePoint deadline_in(milliseconds d) { return Clock::now() + d; }

enum class IoStatus { kOk, kEof, kTimeout, kError };
const char* to_string(IoStatus s);

class Socket {
 public:
  Socket() = default;
  explicit Socket(int fd) : fd_(fd) {}
  ~Socket() { close(); }
  Socket(Socket&& o) noexcept : fd_(o.fd_), abort_(o.abort_) { o.fd_ = -1; }
  Socket& operator=(Socket&& o) noexcept;
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  // Connects to 127.0.0.1:port. On failure the socket is invalid and `error_errno` is set.
  static Socket connect_local(uint16_t port, int* error_errno = nullptr);

  bool valid() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  // Optional flag polled while waiting: when it becomes true, waits end as errors.
  void set_abort_flag(const std::atomic<bool>* flag) { abort_ = flag; }

  IoStatus send_all(std::string_view data, TimePoint deadline);
  // Appends at most `max` bytes to out; kOk means at least one byte arrived.
  IoStatus read_some(char* out, size_t max, size_t& got, TimePoint deadline);
  void shutdown_write();
  void close();
  // Closes with SO_LINGER 0: the peer gets a TCP reset.
  void reset();
  int last_errno() const { return last_errno_; }

 private:
  // Waits for `events` until the deadline; returns kOk when ready.
  IoStatus wait(short events, TimePoint deadline);
  int fd_ = -1;
  const std::atomic<bool>* abort_ = nullptr;
  int last_errno_ = 0;
};

using Sink = std::function<void(const char*, size_t)>;

// Buffered reads over a Socket, with the framing pieces HTTP/1.1 needs.
class BufferedReader {
 public:
  explicit BufferedReader(Socket& socket, size_t capacity = 256 * 1024);

  // Reads up to and including the blank line ending a head; `head` gets it without the final
  // CRLFCRLF. Fails (kError) if the head would exceed `max_bytes`.
  IoStatus read_head(std::string& head, TimePoint deadline, size_t max_bytes = 1 << 20);
  // One CRLF-terminated line, without the CRLF.
  IoStatus read_line(std::string& line, TimePoint deadline, size_t max_bytes = 64 * 1024);
  IoStatus read_exact(uint64_t n, const Sink& sink, TimePoint deadline);
  // Everything until the peer closes; kOk when the peer closed cleanly.
  IoStatus read_to_eof(const Sink& sink, TimePoint deadline);
  // A chunked body (chunk extensions ignored). `chunk_sizes` collects the size of every chunk
  // seen, and `trailer_lines` the trailer field lines as received, when given.
  IoStatus read_chunked(const Sink& sink, TimePoint deadline,
                        std::vector<uint64_t>* chunk_sizes = nullptr,
                        std::vector<std::string>* trailer_lines = nullptr);

  size_t buffered() const { return end_ - begin_; }
  // Takes everything buffered (used by raw reads after a partial parse).
  std::string take_buffered();
  // Reads more bytes into the buffer.
  IoStatus fill(TimePoint deadline);
  Socket& socket() { return socket_; }
  const std::string& error() const { return error_; }

 private:
  Socket& socket_;
  std::unique_ptr<char[]> data_;
  size_t capacity_;
  size_t begin_ = 0;
  size_t end_ = 0;
  std::string error_;
};

struct Header {
  std::string name;
  std::string value;
};
using Headers = std::vector<Header>;

bool iequals(std::string_view a, std::string_view b);
// First header named `name` (case-insensitive).
std::optional<std::string> find_header(const Headers& headers, std::string_view name);
size_t count_headers(const Headers& headers, std::string_view name);

// Splits a head into its first line and headers. False if a header line has no colon.
bool parse_head(std::string_view head, std::string& first_line, Headers& headers);

}  // namespace sluice::testing
