#pragma once
// Tells the control thread that a file it loaded (certificate, key, CA bundle, CRL) may have
// changed, so certificate rotation needs no SIGHUP (issue 10, "rotation without dropping
// anything"). Linux inotify, read through an asio::posix::stream_descriptor on the given
// io_context: no thread of its own, no polling.
//
// What is watched: directories, never the files themselves. A file watch would miss the usual
// ways a file is replaced: an atomic rename (`mv new cert.pem`, certbot, cert-manager) puts a new
// inode under the name, and a Kubernetes Secret volume holds `cert.pem -> ..data/cert.pem` and
// `..data -> ..2026_12_01_xx`, updated by writing a new `..2026_...` directory and renaming a
// fresh symlink over `..data`. So each path is resolved one component at a time, like the
// kernel does, and every (directory, name) pair met on the way that can change what the path
// reads is an interest: each symlink (cert.pem in its directory, ..data in its directory) and
// the final file in the directory it really lives in. If a component does not exist, the interest
// is that name in the nearest existing directory, where it will appear. Each directory of an
// interest gets one watch (deduplicated); `..data` is an interest in every watched directory.
// An event whose name is not an interest of its directory is ignored, so a busy /etc/ssl causes
// no reloads. After every relevant batch of events the paths are resolved again and the watches
// moved: the target directory of a Kubernetes volume changes on every update.
//
// What is reported: one call of `on_change` per burst. The call comes `debounce` after the last
// relevant event (a file written in many write() calls, a volume update of many renames, gives
// one call), and at the latest `debounce` x kMaxDelayFactor after the first, so a file rewritten
// without pause still triggers reloads. The watched directory itself moving or being deleted,
// and a kernel queue overflow (IN_Q_OVERFLOW: events were lost), count as relevant changes.
//
// Bounds: one inotify descriptor per watcher, created at the first non-empty watch(); one watch
// per distinct directory. If inotify is unavailable (inotify_init1 fails, or the per-user watch
// limit is reached) a warning is logged once and the watcher reports nothing: SIGHUP still
// reloads. After the watch limit was hit, the next watch() tries again (quietly).
//
// Threads: watch(), stop() and the destructor run on the io_context's thread (or before it
// runs); `on_change` is called on it. Lifetime: the destructor (or stop()) cancels everything;
// handlers still queued in the io_context hold the watcher's state, not the watcher, and return
// without calling `on_change`. `on_change` may call watch() (a reload does).
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "sluice/common/asio.h"

namespace sluice::server {

class FileWatcher {
 public:
  using ChangeFn = std::function<void()>;
  static constexpr std::chrono::milliseconds kDefaultDebounce{500};
  static constexpr int kMaxDelayFactor = 10;

  FileWatcher(asio::io_context& context, ChangeFn on_change,
              std::chrono::milliseconds debounce = kDefaultDebounce);
  ~FileWatcher();
  FileWatcher(const FileWatcher&) = delete;
  FileWatcher& operator=(const FileWatcher&) = delete;

  // Watches exactly these files from now on (replacing the previous set); relative paths are
  // taken from the current directory. Called after every successful config load or reload with
  // every certificate, key, CA and CRL path. A change already waiting for its debounce is still
  // reported.
  void watch(std::vector<std::string> paths);
  // Stops watching and reporting for good (shutdown). The destructor calls it.
  void stop();

  // Whether anything is watched: false before watch(), with no paths, when inotify could not be
  // used (see above) and after stop().
  bool active() const;
  // How many directories are watched now (the bound: one watch per distinct directory).
  size_t watched_directories() const;

 private:
  struct State;
  std::shared_ptr<State> state_;  // shared with the pending handlers, which may outlive us
};

}  // namespace sluice::server
