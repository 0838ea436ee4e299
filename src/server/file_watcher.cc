#include "sluice/server/file_watcher.h"

#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <cerrno>
#include <cstring>
#include <deque>
#include <filesystem>
#include <map>
#include <set>
#include <system_error>

#include "sluice/common/log.h"

namespace sluice::server {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// The Kubernetes atomic writer's symlink to the current data directory; renaming it is how a
// Secret or ConfigMap volume changes (every file is reached through it).
constexpr const char* kK8sDataLink = "..data";
// As the kernel's limit on symlinks followed in one lookup (MAXSYMLINKS).
constexpr int kMaxSymlinks = 40;

constexpr uint32_t kDirectoryEvents = IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_CLOSE_WRITE |
                                      IN_DELETE | IN_MODIFY | IN_ATTRIB | IN_DELETE_SELF |
                                      IN_MOVE_SELF | IN_ONLYDIR;

// Directory -> the names in it whose change matters.
using Interests = std::map<std::string, std::set<std::string>>;

std::string join(const std::string& dir, const std::string& name) {
  return dir == "/" ? "/" + name : dir + "/" + name;
}

std::string parent_of(const std::string& dir) {
  auto slash = dir.rfind('/');
  return slash == 0 || slash == std::string::npos ? "/" : dir.substr(0, slash);
}

// Pushes the components of `path` (split at '/') to the front of `todo`, in order.
void push_front_components(const std::string& path, std::deque<std::string>& todo) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    if (end > start) parts.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  todo.insert(todo.begin(), parts.begin(), parts.end());
}

// Resolves `path` as the kernel would, one component at a time, and adds to `out` every
// (directory, name) whose change can change what `path` reads (see the header). Directories in
// `out` are real paths (no symlink in them), so two spellings of one directory share a watch.
void add_interests(const std::string& path, Interests& out) {
  if (path.empty()) return;
  std::error_code ec;
  fs::path absolute = fs::absolute(path, ec);
  if (ec) return;
  std::deque<std::string> todo;
  push_front_components(absolute.string(), todo);
  std::string dir = "/";
  int links = 0;
  while (!todo.empty()) {
    std::string name = std::move(todo.front());
    todo.pop_front();
    if (name == ".") continue;
    if (name == "..") {  // `dir` has no symlink in it, so its textual parent is the real one
      dir = parent_of(dir);
      continue;
    }
    std::string full = join(dir, name);
    struct stat st {};
    if (::lstat(full.c_str(), &st) != 0) {
      out[dir].insert(name);  // missing (or unreadable): watch where it would appear
      return;
    }
    if (S_ISLNK(st.st_mode)) {
      out[dir].insert(name);
      if (++links > kMaxSymlinks) return;
      std::array<char, 4096> target{};
      ssize_t n = ::readlink(full.c_str(), target.data(), target.size() - 1);
      if (n <= 0) return;
      std::string link(target.data(), static_cast<size_t>(n));
      if (link.front() == '/') dir.assign(1, '/');  // not = "/": GCC 12 -Wrestrict false positive
      push_front_components(link, todo);
      continue;
    }
    if (todo.empty() || !S_ISDIR(st.st_mode)) {
      out[dir].insert(name);  // the file itself (or a non-directory where one was expected)
      return;
    }
    dir = std::move(full);
  }
}

}  // namespace

struct FileWatcher::State : std::enable_shared_from_this<State> {
  State(asio::io_context& context, ChangeFn f, std::chrono::milliseconds d)
      : descriptor(context), timer(context), on_change(std::move(f)), debounce(d) {}

  // One inotify watch: the directory it was added for and the names that matter in it.
  struct Watch {
    std::string dir;
    std::set<std::string> names;
  };

  asio::posix::stream_descriptor descriptor;  // the inotify fd, once opened
  asio::steady_timer timer;                   // the debounce
  ChangeFn on_change;
  std::chrono::milliseconds debounce;
  std::vector<std::string> paths;
  std::map<int, Watch> watches;  // by watch descriptor
  bool stopped = false;
  bool init_failed = false;  // inotify_init1 failed: no watching for this watcher's life
  bool warned = false;       // the one "unavailable" warning was logged
  bool reading = false;      // a read is pending on `descriptor`
  bool change_pending = false;
  Clock::time_point first_change;  // of the pending burst
  alignas(struct inotify_event) std::array<char, 16 * 1024> buffer;

  void warn_unavailable(const std::string& why) {
    if (warned) return;
    warned = true;
    log::warn("file watches off ({}): certificate and key changes need a SIGHUP to be loaded", why);
  }

  bool open() {
    if (descriptor.is_open()) return true;
    if (init_failed) return false;
    int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) {
      init_failed = true;
      warn_unavailable(fmt::format("inotify_init1: {}", std::strerror(errno)));
      return false;
    }
    descriptor.assign(fd);
    return true;
  }

  // Drops every watch (the descriptor stays open).
  void clear_watches() {
    for (const auto& [wd, w] : watches) ::inotify_rm_watch(descriptor.native_handle(), wd);
    watches.clear();
  }

  // Resolves `paths` again and makes the watches match: adds the new directories, drops those no
  // longer needed. inotify gives the same watch descriptor for a directory already watched.
  void refresh() {
    if (stopped) return;
    if (paths.empty()) {
      if (descriptor.is_open()) clear_watches();
      return;
    }
    if (!open()) return;
    Interests wanted;
    for (const auto& path : paths) add_interests(path, wanted);
    std::map<int, Watch> next;
    while (!wanted.empty()) {
      auto node = wanted.extract(wanted.begin());
      std::string dir = std::move(node.key());
      std::set<std::string> names = std::move(node.mapped());
      int wd = ::inotify_add_watch(descriptor.native_handle(), dir.c_str(), kDirectoryEvents);
      if (wd < 0 && errno == ENOENT && dir != "/") {
        // Removed since it was resolved: watch for it in its parent, as for any missing name.
        wanted[parent_of(dir)].insert(dir.substr(dir.rfind('/') + 1));
        continue;
      }
      if (wd < 0 && (errno == ENOSPC || errno == ENOMEM)) {
        // A partial set would miss changes silently: watch nothing until the next watch().
        warn_unavailable(fmt::format("inotify_add_watch {}: {} (fs.inotify.max_user_watches)", dir,
                                     std::strerror(errno)));
        for (const auto& [old_wd, w] : next) watches.emplace(old_wd, w);
        clear_watches();
        return;
      }
      if (wd < 0) {
        log::warn("file watch on {} failed: {}; changes there need a SIGHUP", dir,
                  std::strerror(errno));
        continue;
      }
      Watch& w = next[wd];  // two paths may reach one directory (bind mounts): merge
      if (w.dir.empty()) w.dir = dir;
      w.names.insert(names.begin(), names.end());
      w.names.insert(kK8sDataLink);
    }
    for (const auto& [wd, w] : watches) {
      if (!next.count(wd)) ::inotify_rm_watch(descriptor.native_handle(), wd);
    }
    watches = std::move(next);
    read();
  }

  void read() {
    if (reading || stopped || !descriptor.is_open()) return;
    reading = true;
    descriptor.async_read_some(
        asio::buffer(buffer), [self = shared_from_this()](error_code ec, size_t n) {
          self->reading = false;
          if (self->stopped || ec == asio::error::operation_aborted) return;
          if (ec) {  // not expected from inotify; the next watch() opens a new descriptor
            self->warn_unavailable("reading inotify: " + ec.message());
            self->watches.clear();
            error_code ignored;
            self->descriptor.close(ignored);
            return;
          }
          if (self->relevant(n)) {
            self->refresh();  // follow a moved symlink target before the next events
            self->changed();
          }
          self->read();
        });
  }

  // Whether the `n` bytes of events in `buffer` include one that matters.
  bool relevant(size_t n) {
    bool any = false;
    for (size_t at = 0; at + sizeof(struct inotify_event) <= n;) {
      const auto* event = reinterpret_cast<const struct inotify_event*>(buffer.data() + at);
      at += sizeof(struct inotify_event) + event->len;
      if (event->mask & IN_Q_OVERFLOW) {
        log::debug("file watch: inotify queue overflow, assuming a change");
        any = true;
        continue;
      }
      auto it = watches.find(event->wd);
      if (it == watches.end()) continue;  // a watch dropped by refresh(); its last events
      if (event->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT)) {
        // The directory itself went away or moved: resolve again.
        log::debug("file watch: directory {} moved or removed", it->second.dir);
        if (event->mask & IN_IGNORED) watches.erase(it);  // the kernel dropped the watch
        any = true;
        continue;
      }
      std::string name = event->len ? std::string(event->name) : std::string();
      if (!it->second.names.count(name)) continue;
      log::debug("file watch: {} changed (mask {:#x})", join(it->second.dir, name), event->mask);
      any = true;
    }
    return any;
  }

  // A relevant change: (re)arm the debounce timer.
  void changed() {
    auto now = Clock::now();
    if (!change_pending) {
      change_pending = true;
      first_change = now;
    }
    auto due = std::min(now + debounce, first_change + debounce * kMaxDelayFactor);
    timer.expires_at(due);  // cancels the wait armed for the previous event
    timer.async_wait([self = shared_from_this()](error_code ec) {
      if (ec || self->stopped || !self->change_pending) return;
      if (self->timer.expiry() > Clock::now()) return;  // re-armed after this wait completed
      self->change_pending = false;
      ChangeFn call = self->on_change;  // on_change may stop or destroy the watcher
      if (call) call();
    });
  }

  void stop() {
    if (stopped) return;
    stopped = true;
    change_pending = false;
    timer.cancel();
    watches.clear();  // closing the descriptor drops them all
    error_code ignored;
    descriptor.close(ignored);
    on_change = nullptr;  // what it captured may die with its owner
  }
};

FileWatcher::FileWatcher(asio::io_context& context, ChangeFn on_change,
                         std::chrono::milliseconds debounce)
    : state_(std::make_shared<State>(context, std::move(on_change), debounce)) {}

FileWatcher::~FileWatcher() { state_->stop(); }

void FileWatcher::watch(std::vector<std::string> paths) {
  std::sort(paths.begin(), paths.end());
  paths.erase(std::unique(paths.begin(), paths.end()), paths.end());
  state_->paths = std::move(paths);
  state_->refresh();
}

void FileWatcher::stop() { state_->stop(); }

bool FileWatcher::active() const {
  return !state_->stopped && state_->descriptor.is_open() && !state_->watches.empty();
}

size_t FileWatcher::watched_directories() const { return state_->watches.size(); }

}  // namespace sluice::server
