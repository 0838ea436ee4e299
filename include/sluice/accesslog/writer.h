#pragma once
// Writes access-log batches to stdout, stderr or files on a thread of its own, so a worker never
// waits on a disk. Workers hand over whole batches (see Batcher); SIGUSR1 → reopen() for logrotate.
#include <map>
#include <string>
#include <thread>

#include "sluice/common/asio.h"

namespace sluice::accesslog {

class Writer {
 public:
  Writer();
  ~Writer();  // writes what is queued, then stops
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  // Any thread. `path` is "stdout", "stderr" or a file (opened for append, created 0644).
  void write(std::string path, std::string batch);
  // Any thread: closes the files; the next batch for each reopens it.
  void reopen();

 private:
  int descriptor(const std::string& path);

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
