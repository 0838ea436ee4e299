#include "support/net.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>

namespace sluice::testing {

const char* to_string(IoStatus s) {
  switch (s) {
    case IoStatus::kOk: return "ok";
    case IoStatus::kEof: return "eof";
    case IoStatus::kTimeout: return "timeout";
    case IoStatus::kError: return "error";
  }
  return "?";
}

Socket& Socket::operator=(Socket&& o) noexcept {
  if (this != &o) {
    close();
    fd_ = o.fd_;
    abort_ = o.abort_;
    o.fd_ = -1;
  }
  return *this;
}

Socket Socket::connect_local(uint16_t port, int* error_errno) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    if (error_errno) *error_errno = errno;
    return Socket();
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (error_errno) *error_errno = errno;
    ::close(fd);
    return Socket();
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (error_errno) *error_errno = 0;
  return Socket(fd);
}

IoStatus Socket::wait(short events, TimePoint deadline) {
  while (true) {
    if (abort_ && abort_->load()) return IoStatus::kError;
    auto now = Clock::now();
    if (now >= deadline) return IoStatus::kTimeout;
    // Slices of at most 100 ms, so the abort flag is noticed promptly.
    auto left = std::chrono::duration_cast<milliseconds>(deadline - now).count() + 1;
    int timeout = static_cast<int>(std::min<int64_t>(left, 100));
    pollfd p{fd_, events, 0};
    int r = ::poll(&p, 1, timeout);
    if (r < 0) {
      if (errno == EINTR) continue;
      last_errno_ = errno;
      return IoStatus::kError;
    }
    if (r > 0) return IoStatus::kOk;  // ready, or an error/hangup the next call will report
  }
}

IoStatus Socket::send_all(std::string_view data, TimePoint deadline) {
  if (fd_ < 0) return IoStatus::kError;
  while (!data.empty()) {
    ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      IoStatus s = wait(POLLOUT, deadline);
      if (s != IoStatus::kOk) return s;
      continue;
    }
    last_errno_ = errno;
    return IoStatus::kError;
  }
  return IoStatus::kOk;
}

IoStatus Socket::read_some(char* out, size_t max, size_t& got, TimePoint deadline) {
  got = 0;
  if (fd_ < 0) return IoStatus::kError;
  while (true) {
    ssize_t n = ::recv(fd_, out, max, MSG_DONTWAIT);
    if (n > 0) {
      got = static_cast<size_t>(n);
      return IoStatus::kOk;
    }
    if (n == 0) return IoStatus::kEof;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      IoStatus s = wait(POLLIN, deadline);
      if (s != IoStatus::kOk) return s;
      continue;
    }
    last_errno_ = errno;
    return IoStatus::kError;
  }
}

void Socket::shutdown_write() {
  if (fd_ >= 0) ::shutdown(fd_, SHUT_WR);
}

void Socket::close() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

void Socket::reset() {
  if (fd_ < 0) return;
  linger l{1, 0};
  ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  close();
}

BufferedReader::BufferedReader(Socket& socket, size_t capacity)
    : socket_(socket), data_(new char[capacity]), capacity_(capacity) {}

IoStatus BufferedReader::fill(TimePoint deadline) {
  if (begin_ == end_) begin_ = end_ = 0;
  if (end_ == capacity_) {
    if (begin_ == 0) {
      error_ = "read buffer full";
      return IoStatus::kError;
    }
    std::memmove(data_.get(), data_.get() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  size_t got = 0;
  IoStatus s = socket_.read_some(data_.get() + end_, capacity_ - end_, got, deadline);
  if (s == IoStatus::kOk) end_ += got;
  if (s == IoStatus::kError) error_ = std::string("recv: ") + std::strerror(socket_.last_errno());
  if (s == IoStatus::kTimeout) error_ = "timed out";
  if (s == IoStatus::kEof) error_ = "connection closed by peer";
  return s;
}

IoStatus BufferedReader::read_head(std::string& head, TimePoint deadline, size_t max_bytes) {
  size_t scanned = 0;
  while (true) {
    std::string_view view(data_.get() + begin_, end_ - begin_);
    size_t from = scanned >= 3 ? scanned - 3 : 0;
    size_t pos = view.find("\r\n\r\n", from);
    if (pos != std::string_view::npos) {
      head.assign(view.substr(0, pos));
      begin_ += pos + 4;
      return IoStatus::kOk;
    }
    scanned = view.size();
    if (view.size() > max_bytes) {
      error_ = "head too large";
      return IoStatus::kError;
    }
    IoStatus s = fill(deadline);
    if (s != IoStatus::kOk) return s;
  }
}

IoStatus BufferedReader::read_line(std::string& line, TimePoint deadline, size_t max_bytes) {
  while (true) {
    std::string_view view(data_.get() + begin_, end_ - begin_);
    size_t pos = view.find("\r\n");
    if (pos != std::string_view::npos) {
      line.assign(view.substr(0, pos));
      begin_ += pos + 2;
      return IoStatus::kOk;
    }
    if (view.size() > max_bytes) {
      error_ = "line too long";
      return IoStatus::kError;
    }
    IoStatus s = fill(deadline);
    if (s != IoStatus::kOk) return s;
  }
}

IoStatus BufferedReader::read_exact(uint64_t n, const Sink& sink, TimePoint deadline) {
  while (n > 0) {
    if (begin_ == end_) {
      IoStatus s = fill(deadline);
      if (s != IoStatus::kOk) return s;
    }
    size_t take = static_cast<size_t>(std::min<uint64_t>(n, end_ - begin_));
    if (sink) sink(data_.get() + begin_, take);
    begin_ += take;
    n -= take;
  }
  return IoStatus::kOk;
}

IoStatus BufferedReader::read_to_eof(const Sink& sink, TimePoint deadline) {
  while (true) {
    if (begin_ < end_) {
      if (sink) sink(data_.get() + begin_, end_ - begin_);
      begin_ = end_;
    }
    IoStatus s = fill(deadline);
    if (s == IoStatus::kEof) return IoStatus::kOk;
    if (s != IoStatus::kOk) return s;
  }
}

IoStatus BufferedReader::read_chunked(const Sink& sink, TimePoint deadline,
                                      std::vector<uint64_t>* chunk_sizes,
                                      std::vector<std::string>* trailer_lines) {
  std::string line;
  while (true) {
    IoStatus s = read_line(line, deadline);
    if (s != IoStatus::kOk) return s;
    std::string_view size_text(line);
    size_text = size_text.substr(0, size_text.find(';'));
    while (!size_text.empty() && (size_text.back() == ' ' || size_text.back() == '\t')) {
      size_text.remove_suffix(1);
    }
    if (size_text.empty() || size_text.size() > 15 ||
        !std::all_of(size_text.begin(), size_text.end(),
                     [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; })) {
      error_ = "invalid chunk size line '" + line + "'";
      return IoStatus::kError;
    }
    uint64_t size = std::stoull(std::string(size_text), nullptr, 16);
    if (chunk_sizes) chunk_sizes->push_back(size);
    if (size == 0) {
      // Trailers, up to the blank line.
      while (true) {
        s = read_line(line, deadline);
        if (s != IoStatus::kOk) return s;
        if (line.empty()) return IoStatus::kOk;
        if (trailer_lines) trailer_lines->push_back(line);
      }
    }
    s = read_exact(size, sink, deadline);
    if (s != IoStatus::kOk) return s;
    s = read_line(line, deadline);
    if (s != IoStatus::kOk) return s;
    if (!line.empty()) {
      error_ = "chunk data not followed by CRLF";
      return IoStatus::kError;
    }
  }
}

std::string BufferedReader::take_buffered() {
  std::string out(data_.get() + begin_, end_ - begin_);
  begin_ = end_ = 0;
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

std::optional<std::string> find_header(const Headers& headers, std::string_view name) {
  for (const auto& h : headers) {
    if (iequals(h.name, name)) return h.value;
  }
  return std::nullopt;
}

size_t count_headers(const Headers& headers, std::string_view name) {
  return static_cast<size_t>(std::count_if(headers.begin(), headers.end(),
                                           [&](const Header& h) { return iequals(h.name, name); }));
}

bool parse_head(std::string_view head, std::string& first_line, Headers& headers) {
  headers.clear();
  size_t eol = head.find("\r\n");
  first_line.assign(head.substr(0, eol));
  if (eol == std::string_view::npos) return true;
  head.remove_prefix(eol + 2);
  while (!head.empty()) {
    eol = head.find("\r\n");
    std::string_view line = head.substr(0, eol);
    head.remove_prefix(eol == std::string_view::npos ? head.size() : eol + 2);
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return false;
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    headers.push_back({std::string(line.substr(0, colon)), std::string(value)});
  }
  return true;
}

}  // namespace sluice::testing
