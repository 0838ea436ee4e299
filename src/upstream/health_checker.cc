#include "sluice/upstream/health_checker.h"

#include <fmt/format.h>

#include <charconv>

#include "sluice/common/log.h"

namespace sluice::upstream {

namespace {
// Shared by a probe and its deadline handler, which may run after the probe has returned.
struct ProbeState {
  explicit ProbeState(const asio::any_io_executor& ex) : socket(ex) {}
  tcp::socket socket;
  bool timed_out = false;
};
}  // namespace

struct HealthChecker::Target {
  Target(asio::io_context& ctx, std::string k, tcp::endpoint a, bool h)
      : key(std::move(k)), address(a), healthy(h), timer(ctx) {}
  std::string key;
  tcp::endpoint address;
  bool healthy;
  uint32_t successes = 0;  // in a row
  uint32_t failures = 0;   // in a row
  bool stopped = false;
  asio::steady_timer timer;
  std::shared_ptr<ProbeState> probing;  // the probe in flight, to cancel it on stop
};

HealthChecker::HealthChecker(asio::io_context& context, std::string cluster, config::HealthCheck spec,
                             TransitionFn on_transition)
    : context_(context), cluster_(std::move(cluster)), spec_(std::move(spec)), on_transition_(std::move(on_transition)) {}

HealthChecker::~HealthChecker() {
  for (auto& [key, t] : targets_) {
    t->stopped = true;
    t->timer.cancel();
    if (t->probing) {
      error_code ignored;
      t->probing->socket.close(ignored);
    }
  }
}

void HealthChecker::set_endpoints(const std::map<std::string, std::pair<tcp::endpoint, bool>>& endpoints) {
  for (auto it = targets_.begin(); it != targets_.end();) {
    auto found = endpoints.find(it->first);
    if (found == endpoints.end() || found->second.first != it->second->address) {
      it->second->stopped = true;
      it->second->timer.cancel();
      if (it->second->probing) {
        error_code ignored;
        it->second->probing->socket.close(ignored);
      }
      it = targets_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& [key, entry] : endpoints) {
    if (targets_.count(key)) continue;
    auto t = std::make_shared<Target>(context_, key, entry.first, entry.second);
    targets_[key] = t;
    asio::co_spawn(context_, probe_loop(t), asio::detached);
  }
}

awaitable<void> HealthChecker::probe_loop(std::shared_ptr<Target> target) {
  while (!target->stopped) {
    std::string failure = co_await probe(*target);
    if (target->stopped) break;
    record(*target, failure);
    target->timer.expires_after(spec_.interval);
    error_code ec;
    co_await target->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

void HealthChecker::record(Target& t, const std::string& failure) {
  if (failure.empty()) {
    t.failures = 0;
    ++t.successes;
    if (!t.healthy && t.successes >= spec_.healthy_threshold) {
      t.healthy = true;
      on_transition_(t.key, true, fmt::format("{} passing checks", t.successes));
    }
  } else {
    t.successes = 0;
    ++t.failures;
    if (t.healthy && t.failures >= spec_.unhealthy_threshold) {
      t.healthy = false;
      on_transition_(t.key, false, failure);
    }
  }
}

bool HealthChecker::record_passive_failure(const std::string& endpoint_key, const std::string& why) {
  auto it = targets_.find(endpoint_key);
  if (it == targets_.end() || !it->second->healthy) return false;
  Target& t = *it->second;
  // A refused or timed-out connect is as clear a signal as a failed probe: out at once, back
  // after healthy_threshold passing probes.
  t.successes = 0;
  t.failures = spec_.unhealthy_threshold;
  t.healthy = false;
  on_transition_(t.key, false, fmt::format("request could not connect: {}", why));
  return true;
}

awaitable<std::string> HealthChecker::probe(Target& t) {
  auto ex = co_await asio::this_coro::executor;
  auto state = std::make_shared<ProbeState>(ex);
  tcp::socket& socket = state->socket;
  const bool& timed_out = state->timed_out;
  asio::steady_timer deadline(ex);
  deadline.expires_after(spec_.timeout);
  deadline.async_wait([state](error_code ec) {
    if (ec) return;
    state->timed_out = true;
    error_code ignored;
    state->socket.close(ignored);
  });
  t.probing = state;
  auto done = [&](std::string why) {
    t.probing.reset();
    deadline.cancel();
    return why;
  };
  error_code ec;
  co_await socket.async_connect(t.address, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return done(timed_out ? fmt::format("no answer within {}ms", spec_.timeout.count())
                                   : fmt::format("connect: {}", ec.message()));
  std::string host = spec_.host.empty() ? fmt::format("{}", t.key) : spec_.host;
  std::string request = fmt::format(
      "GET {} HTTP/1.1\r\nhost: {}\r\nuser-agent: sluice-health-check\r\nconnection: close\r\n\r\n",
      spec_.path, host);
  co_await asio::async_write(socket, asio::buffer(request), asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return done(timed_out ? fmt::format("no answer within {}ms", spec_.timeout.count())
                                   : fmt::format("send: {}", ec.message()));
  // Only the status line matters: "HTTP/1.1 200 OK\r\n".
  std::array<char, 512> buf;
  size_t have = 0;
  while (have < buf.size()) {
    size_t n = co_await socket.async_read_some(asio::buffer(buf.data() + have, buf.size() - have),
                                               asio::redirect_error(asio::use_awaitable, ec));
    have += n;
    if (ec || std::string_view(buf.data(), have).find("\r\n") != std::string_view::npos) break;
  }
  std::string_view line(buf.data(), have);
  line = line.substr(0, line.find("\r\n"));
  if (line.size() < 12 || line.substr(0, 7) != "HTTP/1.") {
    co_return done(timed_out ? fmt::format("no answer within {}ms", spec_.timeout.count())
                             : fmt::format("no valid HTTP status line{}", ec ? ": " + ec.message() : ""));
  }
  int status = 0;
  std::from_chars(line.data() + 9, line.data() + 12, status);
  for (auto [lo, hi] : spec_.expected_statuses) {
    if (status >= lo && status <= hi) co_return done("");
  }
  co_return done(fmt::format("status {}", status));
}

}  // namespace sluice::upstream
