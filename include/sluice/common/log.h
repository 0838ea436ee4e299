#pragma once
// One-line log records on stderr, formatted with fmt. The level is process-wide.
#include <fmt/core.h>

#include <optional>
#include <string_view>

namespace sluice::log {

enum class Level { kTrace = 0, kDebug, kInfo, kWarn, kError, kOff };

void set_level(Level level);
Level level();
std::optional<Level> parse_level(std::string_view text);
// Names the calling thread in its log lines ("main", "worker 3", ...).
void set_thread_name(std::string_view name);
void write(Level level, std::string_view message);

inline bool enabled(Level l) { return l >= level(); }

template <typename... Args>
void trace(fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::kTrace)) write(Level::kTrace, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void debug(fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::kDebug)) write(Level::kDebug, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void info(fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::kInfo)) write(Level::kInfo, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void warn(fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::kWarn)) write(Level::kWarn, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void error(fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::kError)) write(Level::kError, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace sluice::log
