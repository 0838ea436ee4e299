#pragma once
// Writes access-log batches to stdout, stderr or files on a thread of its own, so a worker never
// waits on a disk. Workers hand over whole batches (see Batcher); SIGUSR1 → reopen() for logrotate.
// The batches waiting for the writer thread are bounded in bytes: when a destination is slower
// than the traffic (a full disk, a stuck pipe), lines are dropped and counted, never queued
// without end (rule 7).
#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <thread>

#include "sluice/common/asio.h"

namespace sluice::accesslog {

// Bytes of access-log batches that may wait for the writer thread, all destinations together.
// At about 200 bytes a line this is some 80,000 lines: seconds of a busy edge proxy's traffic, so
// a short stall (a slow disk flush, logrotate) loses nothing. Not configurable.
inline constexpr size_t kMaxQueuedBytes = 16 * 1024 * 1024;

class Writer {
 public:
  explicit Writer(size_t max_queued_bytes = kMaxQueuedBytes);
  ~Writer();  // writes what is queued, then stops
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  // Any thread. `path` is "stdout", "stderr" or a file (opened for append, created 0644).
  // When the batch does not fit under the queue bound, its lines are dropped and counted.
  void write(std::string path, std::string batch);
  // Any thread: closes the files; the next batch for each reopens it.
  void reopen();

  // Any thread: lines dropped because the queue was full, since start.
  uint64_t dropped_lines() const { return dropped_lines_.load(std::memory_order_relaxed); }
  // Any thread: bytes handed over and not yet written.
  size_t queued_bytes() const { return queued_bytes_.load(std::memory_order_relaxed); }

 private:
  int descriptor(const std::string& path);
  void write_now(const std::string& path, const std::string& batch);  // writer thread

  const size_t max_queued_bytes_;
  // One update per batch (32 KiB or 100 ms of a worker's lines), not per request.
  std::atomic<size_t> queued_bytes_{0};
  std::atomic<uint64_t> dropped_lines_{0};
  std::atomic<bool> dropping_{false};  // for one log line when dropping starts and one when it ends
  asio::io_context context_{1};
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::map<std::string, int> files_;  // writer thread only
  std::thread thread_;
};

// One worker's pending lines per destination. Flushed when a batch passes 32 KiB or 100 ms after
// its first line, whichever comes first; the handover is one post per batch, not per request.
class Batcher {
 public:
  Batcher(asio::io_context& context, Writer* writer) : timer_(context), writer_(writer) {}
  // The buffer to append one line to; call committed() after appending.
  std::string& buffer(const std::string& path) { return pending_[path]; }
  void committed(const std::string& path);
  void flush();

 private:
  asio::steady_timer timer_;
  Writer* writer_;
  std::map<std::string, std::string> pending_;
  bool timer_armed_ = false;
};

}  // namespace sluice::accesslog
