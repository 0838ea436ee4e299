#include "sluice/common/log.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>

namespace sluice::log {
namespace {
std::atomic<Level> g_level{Level::kInfo};
thread_local std::string t_thread_name = "main";

const char* level_name(Level l) {
  switch (l) {
    case Level::kTrace: return "trace";
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarn: return "warn";
    case Level::kError: return "error";
    case Level::kOff: return "off";
  }
  return "?";
}
}  // namespace

void set_level(Level l) { g_level.store(l, std::memory_order_relaxed); }
Level level() { return g_level.load(std::memory_order_relaxed); }

std::optional<Level> parse_level(std::string_view t) {
  if (t == "trace") return Level::kTrace;
  if (t == "debug") return Level::kDebug;
  if (t == "info") return Level::kInfo;
  if (t == "warn") return Level::kWarn;
  if (t == "error") return Level::kError;
  return std::nullopt;
}

void set_thread_name(std::string_view name) { t_thread_name = std::string(name); }

void write(Level l, std::string_view message) {
  using namespace std::chrono;
  auto now = system_clock::now();
  std::time_t secs = system_clock::to_time_t(now);
  auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  // One fwrite per record so lines from different threads never interleave.
  std::string line = fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z [{}] [{}] {}\n",
                                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                                 tm.tm_min, tm.tm_sec, ms, level_name(l), t_thread_name, message);
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace sluice::log
