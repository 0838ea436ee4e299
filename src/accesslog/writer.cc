#include "sluice/accesslog/writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "sluice/common/log.h"

namespace sluice::accesslog {

namespace {
constexpr size_t kBatchBytes = 32 * 1024;
constexpr auto kBatchDelay = std::chrono::milliseconds(100);
}  // namespace

Writer::Writer(size_t max_queued_bytes)
    : max_queued_bytes_(max_queued_bytes), work_(asio::make_work_guard(context_)) {
  thread_ = std::thread([this] {
    log::set_thread_name("access-log");
    context_.run();
  });
}

Writer::~Writer() {
  work_.reset();  // run() returns once every queued batch is written
  thread_.join();
  for (auto& [path, fd] : files_) {
    if (fd > 2) ::close(fd);
  }
}

int Writer::descriptor(const std::string& path) {
  if (path == "stdout") return STDOUT_FILENO;
  if (path == "stderr") return STDERR_FILENO;
  auto it = files_.find(path);
  if (it != files_.end()) return it->second;
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    log::error("access log: cannot open {}: {}", path, std::strerror(errno));
    return -1;  // not cached: the next batch tries again
  }
  files_[path] = fd;
  return fd;
}

void Writer::write(std::string path, std::string batch) {
  const size_t size = batch.size();
  // Reserve first, then check: concurrent callers can never together pass the bound.
  if (queued_bytes_.fetch_add(size, std::memory_order_relaxed) + size > max_queued_bytes_) {
    queued_bytes_.fetch_sub(size, std::memory_order_relaxed);
    auto lines = static_cast<uint64_t>(std::count(batch.begin(), batch.end(), '\n'));
    dropped_lines_.fetch_add(lines, std::memory_order_relaxed);
    if (!dropping_.exchange(true, std::memory_order_relaxed)) {
      log::warn("access log: {} bytes wait for the writer (the limit); dropping lines until it "
                "catches up (counted in sluice_access_log_dropped_lines_total)", max_queued_bytes_);
    }
    return;
  }
  if (dropping_.load(std::memory_order_relaxed) &&
      dropping_.exchange(false, std::memory_order_relaxed)) {
    log::info("access log: writing again; {} line(s) dropped since start", dropped_lines());
  }
  asio::post(context_, [this, path = std::move(path), batch = std::move(batch)] {
    write_now(path, batch);
    queued_bytes_.fetch_sub(batch.size(), std::memory_order_relaxed);
  });
}

void Writer::write_now(const std::string& path, const std::string& batch) {
  int fd = descriptor(path);
  if (fd < 0) return;
  size_t done = 0;
  while (done < batch.size()) {
    ssize_t n = ::write(fd, batch.data() + done, batch.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      log::error("access log: writing {} failed: {}", path, std::strerror(errno));
      return;
    }
    done += static_cast<size_t>(n);
  }
}

void Writer::reopen() {
  asio::post(context_, [this] {
    for (auto& [path, fd] : files_) {
      if (fd > 2) ::close(fd);
    }
    files_.clear();
    log::info("access log: files reopened");
  });
}

void Batcher::committed(const std::string& path) {
  if (pending_[path].size() >= kBatchBytes) {
    flush();
    return;
  }
  if (timer_armed_) return;
  timer_armed_ = true;
  timer_.expires_after(kBatchDelay);
  timer_.async_wait([this](error_code ec) {
    timer_armed_ = false;
    if (!ec) flush();
  });
}

void Batcher::flush() {
  for (auto& [path, batch] : pending_) {
    if (batch.empty()) continue;
    writer_->write(path, std::move(batch));
    batch = std::string();
  }
}

}  // namespace sluice::accesslog
