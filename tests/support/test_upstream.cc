#include "support/test_upstream.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/core.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace sluice::testing {

namespace {

// Generous: the proxy under test may be slow under sanitizers; stop() interrupts waits anyway.
constexpr milliseconds kIoTimeout{30000};

const char* reason_for(int status) {
  switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 500: return "Internal Server Error";
    default: return "Status";
  }
}

std::string head_line(int status) { return fmt::format("HTTP/1.1 {} {}\r\n", status, reason_for(status)); }

bool split_request_line(const std::string& line, UpstreamRequest& req) {
  size_t a = line.find(' ');
  if (a == std::string::npos) return false;
  size_t b = line.find(' ', a + 1);
  if (b == std::string::npos) return false;
  req.method = line.substr(0, a);
  req.target = line.substr(a + 1, b - a - 1);
  req.version = line.substr(b + 1);
  return !req.method.empty() && !req.target.empty() && req.version.rfind("HTTP/", 0) == 0;
}

bool has_token(std::string_view value, std::string_view token) {
  while (!value.empty()) {
    size_t comma = value.find(',');
    std::string_view t = value.substr(0, comma);
    while (!t.empty() && t.front() == ' ') t.remove_prefix(1);
    while (!t.empty() && t.back() == ' ') t.remove_suffix(1);
    if (iequals(t, token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// UpstreamExchange

bool UpstreamExchange::send(std::string_view bytes) {
  if (!socket_.valid()) return false;
  return socket_.send_all(bytes, deadline_in(kIoTimeout)) == IoStatus::kOk;
}

bool UpstreamExchange::send_head(int status, const Headers& extra, std::string_view framing) {
  std::string head = head_line(status);
  for (const auto& h : extra) head += fmt::format("{}: {}\r\n", h.name, h.value);
  head.append(framing);
  head += "\r\n";
  return send(head);
}

bool UpstreamExchange::respond(int status, std::string_view body, const Headers& extra) {
  std::string msg = head_line(status);
  for (const auto& h : extra) msg += fmt::format("{}: {}\r\n", h.name, h.value);
  msg += fmt::format("content-length: {}\r\n\r\n", body.size());
  msg.append(body);
  return send(msg);
}

bool UpstreamExchange::respond_chunked(int status, const std::vector<std::string>& chunks,
                                       const Headers& extra) {
  if (!send_head(status, extra, "transfer-encoding: chunked\r\n")) return false;
  for (const auto& c : chunks) {
    if (c.empty()) continue;
    // Each chunk in its own send, so the proxy sees them arrive separately.
    if (!send(fmt::format("{:x}\r\n{}\r\n", c.size(), c))) return false;
  }
  return send("0\r\n\r\n");
}

bool UpstreamExchange::respond_until_close(int status, std::string_view body) {
  if (!send_head(status, {}, "") || !send(body)) return false;
  close_now();
  return true;
}

bool UpstreamExchange::respond_generated(uint64_t n, bool chunked) {
  if (!send_head(200, {}, chunked ? std::string("transfer-encoding: chunked\r\n")
                                  : fmt::format("content-length: {}\r\n", n))) {
    return false;
  }
  constexpr size_t kPiece = 64 * 1024;
  std::string buf(kPiece + 32, '\0');
  PatternStream stream(n);
  Checksum sum;
  while (stream.remaining() > 0) {
    size_t prefix = 0;
    if (chunked) {
      // The size line is written in front of the data so each chunk is one send.
      std::string size_line = fmt::format("{:x}\r\n", std::min<uint64_t>(kPiece, stream.remaining()));
      prefix = size_line.size();
      std::memcpy(buf.data(), size_line.data(), prefix);
    }
    size_t got = stream.next(buf.data() + prefix, kPiece);
    sum.update(buf.data() + prefix, got);
    size_t len = prefix + got;
    if (chunked) {
      buf[len++] = '\r';
      buf[len++] = '\n';
    }
    if (!send(std::string_view(buf.data(), len))) return false;
    request_.response_body_bytes = sum.bytes();
    request_.response_body_checksum = sum.value();
  }
  request_.response_body_bytes = sum.bytes();
  request_.response_body_checksum = sum.value();
  return !chunked || send("0\r\n\r\n");
}

bool UpstreamExchange::sleep_for(std::chrono::milliseconds d) {
  std::unique_lock lock(owner_.mu_);
  return !owner_.cv_.wait_for(lock, d, [&] { return owner_.stopping_.load(); });
}

void UpstreamExchange::close_now() {
  std::lock_guard lock(owner_.mu_);
  owner_.open_fds_.erase(socket_.fd());
  socket_.close();
}

void UpstreamExchange::reset_now() {
  std::lock_guard lock(owner_.mu_);
  owner_.open_fds_.erase(socket_.fd());
  socket_.reset();
}

// ---------------------------------------------------------------------------------------------
// TestUpstream

TestUpstream::TestUpstream(Handler handler, Options options)
    : handler_(std::move(handler)), options_(options) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd_, 128) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0 ||
      ::pipe2(wake_pipe_, O_CLOEXEC) != 0) {
    ::close(listen_fd_);
    listen_fd_ = -1;
    return;
  }
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { accept_loop(); });
}

TestUpstream::~TestUpstream() { stop(); }

void TestUpstream::stop() {
  if (stopping_.exchange(true)) return;
  if (wake_pipe_[1] >= 0) {
    char b = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_pipe_[1], &b, 1);
  }
  if (acceptor_.joinable()) acceptor_.join();
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mu_);
    // Wakes reads and writes blocked on these sockets; the threads close them.
    for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
    threads.swap(threads_);
  }
  cv_.notify_all();
  for (auto& t : threads) t.join();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  for (int& fd : wake_pipe_) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
  listen_fd_ = -1;
}

void TestUpstream::accept_loop() {
  while (!stopping_) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_pipe_[0], POLLIN, 0}};
    int r = ::poll(fds, 2, -1);
    if (r < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents != 0 || stopping_) return;
    if ((fds[0].revents & POLLIN) == 0) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    std::lock_guard lock(mu_);
    if (stopping_) {
      ::close(fd);
      return;
    }
    size_t id = per_connection_.size();
    per_connection_.push_back(0);
    open_fds_.insert(fd);
    threads_.emplace_back([this, id, fd] { serve(id, fd); });
  }
}

bool TestUpstream::read_request(BufferedReader& reader, UpstreamRequest& req) {
  std::string head;
  if (reader.read_head(head, deadline_in(kIoTimeout)) != IoStatus::kOk) return false;
  if (!parse_head(head, req.request_line, req.headers)) return false;
  if (!split_request_line(req.request_line, req)) return false;
  Checksum sum;
  auto sink = [&](const char* p, size_t n) {
    sum.update(p, n);
    size_t room = UpstreamRequest::kMaxStoredBody - std::min(req.body.size(), UpstreamRequest::kMaxStoredBody);
    req.body.append(p, std::min(n, room));
  };
  auto te = req.header("transfer-encoding");
  auto cl = req.header("content-length");
  if (cl) req.content_length = std::stoull(*cl);
  if (te && has_token(*te, "chunked")) {
    req.chunked = true;
    if (reader.read_chunked(sink, deadline_in(kIoTimeout), nullptr, &req.trailer_lines) != IoStatus::kOk) {
      return false;
    }
  } else if (cl) {
    if (reader.read_exact(*req.content_length, sink, deadline_in(kIoTimeout)) != IoStatus::kOk) return false;
  }
  req.body_bytes = sum.bytes();
  req.body_checksum = sum.value();
  return true;
}

void TestUpstream::serve(size_t id, int fd) {
  Socket socket(fd);
  socket.set_abort_flag(&stopping_);
  BufferedReader reader(socket);
  for (size_t index = 0; !stopping_; ++index) {
    if (index > 0 && options_.idle_close_after.count() > 0 && reader.buffered() == 0) {
      pollfd p{fd, POLLIN, 0};
      int r = ::poll(&p, 1, static_cast<int>(options_.idle_close_after.count()));
      if (r == 0) break;  // idle long enough: retire the connection
    }
    UpstreamRequest req;
    if (!read_request(reader, req)) break;
    req.connection = id;
    req.index_on_connection = index;
    bool client_close = req.header("connection") && has_token(*req.header("connection"), "close");
    size_t slot;
    {
      std::lock_guard lock(mu_);
      slot = requests_.size();
      requests_.push_back(req);
      ++per_connection_[id];
    }
    cv_.notify_all();
    UpstreamExchange exchange(*this, socket, std::move(req));
    if (handler_) handler_(exchange);
    {
      std::lock_guard lock(mu_);
      requests_[slot].response_body_bytes = exchange.request_.response_body_bytes;
      requests_[slot].response_body_checksum = exchange.request_.response_body_checksum;
    }
    if (exchange.closed() || exchange.close_after_ || client_close) break;
  }
  std::lock_guard lock(mu_);
  if (socket.valid()) {  // else close_now()/reset_now() already closed it (and the fd may be reused)
    open_fds_.erase(fd);
    socket.close();
  }
}

size_t TestUpstream::connections_accepted() const {
  std::lock_guard lock(mu_);
  return per_connection_.size();
}

size_t TestUpstream::request_count() const {
  std::lock_guard lock(mu_);
  return requests_.size();
}

std::vector<UpstreamRequest> TestUpstream::requests() const {
  std::lock_guard lock(mu_);
  return requests_;
}

std::vector<size_t> TestUpstream::requests_per_connection() const {
  std::lock_guard lock(mu_);
  return per_connection_;
}

bool TestUpstream::wait_for_requests(size_t n, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return requests_.size() >= n; });
}

TestUpstream::Handler TestUpstream::ok_handler() {
  return [](UpstreamExchange& ex) {
    ex.respond(200, "ok",
               {{"x-upstream-seq", fmt::format("{}/{}", ex.request().connection,
                                               ex.request().index_on_connection)}});
  };
}

}  // namespace sluice::testing
