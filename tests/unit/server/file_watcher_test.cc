// FileWatcher against the real ways certificate files get replaced: written in place, renamed
// over (certbot, `mv`), and a Kubernetes Secret volume's `..data` symlink swap. Each test works
// in its own temporary directory and runs the io_context on the test thread, so the callback
// count is only read between runs.
#include "sluice/server/file_watcher.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

namespace sluice::server {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr std::chrono::milliseconds kDebounce = 100ms;
// How long a test waits for an expected call before failing: far above the debounce, so a busy
// machine does not fail a test, and only spent when the watcher is broken.
constexpr std::chrono::milliseconds kPatience = 5s;
// How long a test keeps running after the expected calls, to see that no more come.
constexpr std::chrono::milliseconds kQuiet = 4 * kDebounce;

void write_file(const fs::path& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  ASSERT_TRUE(out.good()) << path;
}

void make_symlink(const std::string& target, const fs::path& link) {
  ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0) << link << ": " << std::strerror(errno);
}

// What the kernel holds for this process: inotify descriptors, and watches in all of them (from
// /proc), to check the bounds where they are spent rather than in the watcher's own books.
struct KernelInotify {
  int fds = 0;
  int watches = 0;
};
KernelInotify kernel_inotify() {
  KernelInotify k;
  for (const auto& entry : fs::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    if (fs::read_symlink(entry.path(), ec) != "anon_inode:inotify" || ec) continue;
    ++k.fds;
    std::ifstream info("/proc/self/fdinfo/" + entry.path().filename().string());
    for (std::string line; std::getline(info, line);) {
      if (line.rfind("inotify wd:", 0) == 0) ++k.watches;
    }
  }
  return k;
}

class FileWatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir_template[] = "/tmp/sluice-file-watcher-test-XXXXXX";
    ASSERT_NE(::mkdtemp(dir_template), nullptr);
    dir_ = dir_template;
  }

  void TearDown() override {
    watcher_.reset();
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }

  void start(const std::vector<std::string>& paths,
             std::chrono::milliseconds debounce = kDebounce) {
    watcher_ = std::make_unique<FileWatcher>(
        io_,
        [this] {
          ++calls_;
          callback_thread_ = std::this_thread::get_id();
        },
        debounce);
    watcher_->watch(paths);
    ASSERT_TRUE(watcher_->active());
  }

  void run_for(std::chrono::milliseconds d) {
    io_.restart();
    io_.run_for(d);
  }

  // Runs the loop until the watcher has called back `n` times in all (or kPatience passes), then
  // for kQuiet more, and checks that the count is exactly `n`.
  void expect_calls(int n) {
    auto deadline = std::chrono::steady_clock::now() + kPatience;
    while (calls_ < n && std::chrono::steady_clock::now() < deadline) run_for(10ms);
    run_for(kQuiet);
    EXPECT_EQ(calls_, n);
  }

  // Updates a Kubernetes-style volume the way the kubelet's atomic writer does: a new data
  // directory, a temporary symlink to it renamed over `..data`, then the old directory removed.
  void kubernetes_update(const std::string& old_data, const std::string& new_data,
                         const std::string& content) {
    fs::create_directory(dir_ / new_data);
    write_file(dir_ / new_data / "cert.pem", content);
    make_symlink(new_data, dir_ / "..data_tmp");
    fs::rename(dir_ / "..data_tmp", dir_ / "..data");
    fs::remove_all(dir_ / old_data);
  }

  fs::path dir_;
  asio::io_context io_;
  std::unique_ptr<FileWatcher> watcher_;
  int calls_ = 0;
  std::thread::id callback_thread_;
};

TEST_F(FileWatcherTest, RewriteInPlaceCallsOnce) {
  write_file(dir_ / "cert.pem", "old");
  start({dir_ / "cert.pem"});
  write_file(dir_ / "cert.pem", "new");
  expect_calls(1);
  EXPECT_EQ(callback_thread_, std::this_thread::get_id());  // the io_context's thread
}

TEST_F(FileWatcherTest, AtomicRenameOverTheFileCallsOnce) {
  write_file(dir_ / "cert.pem", "old");
  start({dir_ / "cert.pem"});
  write_file(dir_ / "cert.pem.tmp", "new");
  // Only the temporary file so far: not a change of the watched file.
  run_for(kQuiet);
  EXPECT_EQ(calls_, 0);
  fs::rename(dir_ / "cert.pem.tmp", dir_ / "cert.pem");
  expect_calls(1);
}

TEST_F(FileWatcherTest, KubernetesSecretSwapCallsOncePerUpdate) {
  fs::create_directory(dir_ / "..2026_a");
  write_file(dir_ / "..2026_a" / "cert.pem", "a");
  make_symlink("..2026_a", dir_ / "..data");
  make_symlink("..data/cert.pem", dir_ / "cert.pem");
  start({dir_ / "cert.pem"});
  EXPECT_EQ(watcher_->watched_directories(), 2u);  // the volume and ..2026_a

  kubernetes_update("..2026_a", "..2026_b", "b");
  expect_calls(1);
  // The watch followed the target: the volume and ..2026_b, not the removed ..2026_a.
  EXPECT_EQ(watcher_->watched_directories(), 2u);
  EXPECT_EQ(kernel_inotify().fds, 1);
  EXPECT_EQ(kernel_inotify().watches, 2);

  kubernetes_update("..2026_b", "..2026_c", "c");
  expect_calls(2);

  // A change inside the current target directory is seen only if the watcher re-resolved the
  // symlinks after the swaps (..2026_c did not exist when watch() was called).
  write_file(dir_ / "..2026_c" / "cert.pem", "c2");
  expect_calls(3);
}

TEST_F(FileWatcherTest, UnrelatedFileInTheSameDirectoryIsIgnored) {
  write_file(dir_ / "cert.pem", "cert");
  start({dir_ / "cert.pem"});
  write_file(dir_ / "other.pem", "x");
  fs::rename(dir_ / "other.pem", dir_ / "another.pem");
  fs::remove(dir_ / "another.pem");
  fs::create_directory(dir_ / "sub");
  run_for(kQuiet);
  EXPECT_EQ(calls_, 0);
  // The watch was live all along: the watched file itself is still reported.
  write_file(dir_ / "cert.pem", "cert2");
  expect_calls(1);
}

TEST_F(FileWatcherTest, BurstWithinTheDebounceCallsOnce) {
  write_file(dir_ / "cert.pem", "0");
  start({dir_ / "cert.pem"}, FileWatcher::kDefaultDebounce);
  // Ten writes 20 ms apart, each read by the loop on its own: 200 ms, within the 500 ms debounce.
  for (int i = 1; i <= 10; ++i) {
    write_file(dir_ / "cert.pem", std::to_string(i));
    run_for(20ms);
  }
  EXPECT_EQ(calls_, 0);  // still inside the burst
  expect_calls(1);
}

TEST_F(FileWatcherTest, NewSetStopsReportingTheOldFiles) {
  fs::create_directory(dir_ / "one");
  fs::create_directory(dir_ / "two");
  write_file(dir_ / "one" / "a.pem", "a");
  write_file(dir_ / "two" / "b.pem", "b");
  write_file(dir_ / "two" / "c.pem", "c");
  start({dir_ / "one" / "a.pem", dir_ / "two" / "b.pem"});
  EXPECT_EQ(watcher_->watched_directories(), 2u);

  watcher_->watch({dir_ / "two" / "c.pem"});
  EXPECT_EQ(watcher_->watched_directories(), 1u);  // "one" is no longer watched
  EXPECT_EQ(kernel_inotify().watches, 1);          // and its kernel watch is gone
  write_file(dir_ / "one" / "a.pem", "a2");
  write_file(dir_ / "two" / "b.pem", "b2");  // same directory as c.pem, no longer a watched name
  run_for(kQuiet);
  EXPECT_EQ(calls_, 0);

  write_file(dir_ / "two" / "c.pem", "c2");
  expect_calls(1);
}

TEST_F(FileWatcherTest, FilesInOneDirectoryShareOneWatch) {
  for (const char* name : {"a.crt", "a.key", "ca.pem", "ca.crl"}) write_file(dir_ / name, name);
  start({dir_ / "a.crt", dir_ / "a.key", dir_ / "ca.pem", dir_ / "ca.crl", dir_ / "a.crt"});
  EXPECT_EQ(watcher_->watched_directories(), 1u);
  EXPECT_EQ(kernel_inotify().fds, 1);
  EXPECT_EQ(kernel_inotify().watches, 1);
  write_file(dir_ / "ca.crl", "new crl");
  expect_calls(1);
}

TEST_F(FileWatcherTest, MissingFileIsReportedWhenItAppears) {
  start({dir_ / "later" / "cert.pem"});  // neither the directory nor the file exist yet
  fs::create_directory(dir_ / "later");
  expect_calls(1);
  // The watch moved into the new directory.
  write_file(dir_ / "later" / "cert.pem", "x");
  expect_calls(2);
}

TEST_F(FileWatcherTest, StopCancelsAPendingCallAndEndsTheWork) {
  write_file(dir_ / "cert.pem", "old");
  start({dir_ / "cert.pem"});
  write_file(dir_ / "cert.pem", "new");
  run_for(10ms);  // the event is read; the call waits for the debounce
  watcher_->stop();
  EXPECT_FALSE(watcher_->active());
  EXPECT_EQ(kernel_inotify().fds, 0);  // the descriptor is closed
  write_file(dir_ / "cert.pem", "newer");
  auto before = std::chrono::steady_clock::now();
  run_for(kPatience);
  // Nothing is left for the loop to do, so it returned at once rather than at kPatience.
  EXPECT_LT(std::chrono::steady_clock::now() - before, kPatience / 2);
  EXPECT_EQ(calls_, 0);
}

TEST_F(FileWatcherTest, DestroyedWithAPendingCallNeverCallsIt) {
  write_file(dir_ / "cert.pem", "old");
  start({dir_ / "cert.pem"});
  write_file(dir_ / "cert.pem", "new");
  run_for(10ms);
  watcher_.reset();  // its handlers are still queued in io_; they must not reach the callback
  run_for(kQuiet);
  EXPECT_EQ(calls_, 0);
}

}  // namespace
}  // namespace sluice::server
