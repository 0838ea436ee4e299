// The writer's queue bound: a destination that stops taking bytes (here a FIFO whose reader does
// not read) must cost bounded memory, and every line must be either written or counted dropped.
#include "sluice/accesslog/writer.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <cstdlib>
#include <string>
#include <thread>

namespace sluice::accesslog {
namespace {

constexpr size_t kLineBytes = 64;
constexpr size_t kLinesPerBatch = 512;
constexpr size_t kBatchBytes = kLineBytes * kLinesPerBatch;  // 32 KiB, the Batcher's size

// Batch `n`: kLinesPerBatch lines "batch N line M ....\n", each exactly kLineBytes long.
std::string batch(size_t n) {
  std::string out;
  for (size_t m = 0; m < kLinesPerBatch; ++m) {
    std::string line = "batch " + std::to_string(n) + " line " + std::to_string(m) + " ";
    line.resize(kLineBytes - 1, 'x');
    out += line + '\n';
  }
  return out;
}

class BlockedWriter : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir_template[] = "/tmp/sluice-writer-test-XXXXXX";
    ASSERT_NE(::mkdtemp(dir_template), nullptr);
    dir_ = dir_template;
    fifo_ = dir_ + "/access.log";
    ASSERT_EQ(::mkfifo(fifo_.c_str(), 0600), 0) << std::strerror(errno);
    // The reader end exists (so the writer's open() does not wait) but reads nothing yet.
    reader_ = ::open(fifo_.c_str(), O_RDONLY | O_NONBLOCK);
    ASSERT_GE(reader_, 0);
    // Fill the pipe from a second write end, so the writer thread's first write() blocks
    // before it writes a byte: from then on nothing leaves the queue until the test reads.
    int filler = ::open(fifo_.c_str(), O_WRONLY | O_NONBLOCK);
    ASSERT_GE(filler, 0);
    std::string junk(4096, '#');
    while (true) {
      ssize_t n = ::write(filler, junk.data(), junk.size());
      if (n < 0) {
        ASSERT_EQ(errno, EAGAIN);
        break;
      }
      prefilled_ += static_cast<size_t>(n);
    }
    ::close(filler);
  }

  void TearDown() override {
    if (drainer_.joinable()) drainer_.join();
    if (reader_ >= 0) ::close(reader_);
    ::unlink(fifo_.c_str());
    ::rmdir(dir_.c_str());
  }

  // Reads exactly `n` bytes from the FIFO (waiting for the writer thread as needed).
  std::string read_exactly(size_t n) {
    std::string out;
    char buf[65536];
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (out.size() < n && std::chrono::steady_clock::now() < deadline) {
      ssize_t r = ::read(reader_, buf, std::min(sizeof buf, n - out.size()));
      if (r > 0) {
        out.append(buf, static_cast<size_t>(r));
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
    return out;
  }

  // Declared right after a Writer, its destructor runs first: it reads the FIFO until every
  // write end is closed, so the Writer's destructor (which writes what is queued) cannot hang on
  // a full pipe, whatever the test asserted before.
  struct DrainOnExit {
    BlockedWriter* test;
    ~DrainOnExit() {
      test->drainer_ = std::thread([fd = test->reader_] {
        char buf[65536];
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        while (std::chrono::steady_clock::now() < deadline) {
          ssize_t r = ::read(fd, buf, sizeof buf);
          if (r == 0) return;  // no write end left: the Writer is gone
          if (r < 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
      });
    }
  };

  std::string dir_, fifo_;
  int reader_ = -1;
  std::thread drainer_;
  size_t prefilled_ = 0;
};

TEST_F(BlockedWriter, DropsAndCountsWhatDoesNotFitThenWritesAgain) {
  constexpr size_t kLimitBatches = 8;
  constexpr size_t kSent = 20;
  Writer writer(kLimitBatches * kBatchBytes);
  DrainOnExit drain{this};
  for (size_t n = 0; n < kSent; ++n) writer.write(fifo_, batch(n));

  // The first kLimitBatches fit exactly; every line of the others is dropped and counted.
  EXPECT_EQ(writer.queued_bytes(), kLimitBatches * kBatchBytes);
  EXPECT_EQ(writer.dropped_lines(), (kSent - kLimitBatches) * kLinesPerBatch);

  // Unblock: what was accepted arrives whole and in order, after the test's own filler.
  std::string got = read_exactly(prefilled_ + kLimitBatches * kBatchBytes);
  ASSERT_EQ(got.size(), prefilled_ + kLimitBatches * kBatchBytes);
  std::string expected;
  for (size_t n = 0; n < kLimitBatches; ++n) expected += batch(n);
  EXPECT_EQ(got.substr(prefilled_), expected);

  // Written bytes leave the queue, and the next batch is taken again.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (writer.queued_bytes() != 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(writer.queued_bytes(), 0u);
  writer.write(fifo_, batch(kSent));
  EXPECT_EQ(read_exactly(kBatchBytes), batch(kSent));
  EXPECT_EQ(writer.dropped_lines(), (kSent - kLimitBatches) * kLinesPerBatch);
}

TEST_F(BlockedWriter, ABatchLargerThanTheWholeBoundIsDropped) {
  Writer writer(kBatchBytes - 1);
  DrainOnExit drain{this};
  writer.write(fifo_, batch(0));
  EXPECT_EQ(writer.queued_bytes(), 0u);
  EXPECT_EQ(writer.dropped_lines(), kLinesPerBatch);
}

TEST(Writer, DefaultBoundIs16MiB) {
  EXPECT_EQ(kMaxQueuedBytes, 16u * 1024 * 1024);
}

}  // namespace
}  // namespace sluice::accesslog
