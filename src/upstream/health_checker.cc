#include "sluice/upstream/health_checker.h"

#include <fmt/format.h>

#include <charconv>

#include "sluice/common/log.h"
#include "sluice/net/stream.h"

namespace sluice::upstream {

namespace {
// Shared by a probe and its deadline handler, which may run after the probe has returned.
struct ProbeState {
  explicit ProbeState(const asio::any_io_executor& ex) : stream(tcp::socket(ex)) {}
  net::Stream stream;
  bool timed_out = false;
};
}  // namespace

// One probed endpoint. Owned by the checker and by its probe coroutine, which may outlive the
// checker (see the header).
struct HealthChecker::Target {
  Target(HealthChecker* o, std::shared_ptr<const config::HealthCheck> s, std::string k,
         tcp::endpoint a, bool h)
      : owner(o), spec(std::move(s)), key(std::move(k)), address(a), healthy(h),
        timer(o->context_) {}
  HealthChecker* owner;  // null once stopped: the checker may be gone
  std::shared_ptr<const config::HealthCheck> spec;
  std::string key;
  tcp::endpoint address;
  bool healthy;
  uint32_t successes = 0;  // in a row
  uint32_t failures = 0;   // in a row
  asio::steady_timer timer;
  std::shared_ptr<ProbeState> probing;  // the probe in flight, to cancel it on stop
};

HealthChecker::HealthChecker(asio::io_context& context, std::string cluster, config::HealthCheck spec,
                             TransitionFn on_transition)
    : context_(context),
      cluster_(std::move(cluster)),
      spec_(std::make_shared<const config::HealthCheck>(std::move(spec))),
      on_transition_(std::move(on_transition)) {}

HealthChecker::~HealthChecker() {
  for (auto& [key, t] : targets_) stop(*t);
}

void HealthChecker::stop(Target& t) {
  t.owner = nullptr;
  t.timer.cancel();
  if (t.probing) {
    error_code ignored;
    t.probing->stream.close();
  }
}

void HealthChecker::set_endpoints(const std::map<std::string, std::pair<tcp::endpoint, bool>>& endpoints) {
  for (auto it = targets_.begin(); it != targets_.end();) {
    auto found = endpoints.find(it->first);
    if (found == endpoints.end() || found->second.first != it->second->address) {
      stop(*it->second);
      it = targets_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& [key, entry] : endpoints) {
    if (targets_.count(key)) continue;
    auto t = std::make_shared<Target>(this, spec_, key, entry.first, entry.second);
    targets_[key] = t;
    asio::co_spawn(context_, probe_loop(t), asio::detached);
  }
}

awaitable<void> HealthChecker::probe_loop(std::shared_ptr<Target> target) {
  while (target->owner) {
    std::string failure = co_await probe(*target);
    // A cancelled wait is not enough to know the checker is gone: its completion may have been
    // queued before the stop. The owner pointer is.
    if (!target->owner) break;
    target->owner->record(*target, failure);
    if (!target->owner) break;  // the transition stopped this target
    target->timer.expires_after(target->spec->interval);
    error_code ec;
    co_await target->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

void HealthChecker::record(Target& t, const std::string& failure) {
  if (failure.empty()) {
    t.failures = 0;
    ++t.successes;
    if (!t.healthy && t.successes >= spec_->healthy_threshold) {
      t.healthy = true;
      on_transition_(t.key, true, fmt::format("{} passing checks", t.successes));
    }
  } else {
    t.successes = 0;
    ++t.failures;
    if (t.healthy && t.failures >= spec_->unhealthy_threshold) {
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
  t.failures = spec_->unhealthy_threshold;
  t.healthy = false;
  on_transition_(t.key, false, fmt::format("request could not connect: {}", why));
  return true;
}

awaitable<std::string> HealthChecker::probe(Target& t) {
  const config::HealthCheck& spec = *t.spec;  // kept alive by the Target, not the checker
  auto ex = co_await asio::this_coro::executor;
  auto state = std::make_shared<ProbeState>(ex);
  net::Stream& stream = state->stream;
  std::shared_ptr<const net::TlsClientContext> tls = t.owner ? t.owner->tls_ : nullptr;
  const bool& timed_out = state->timed_out;
  asio::steady_timer deadline(ex);
  deadline.expires_after(spec.timeout);
  deadline.async_wait([state](error_code ec) {
    if (ec) return;
    state->timed_out = true;
    state->stream.close();
  });
  t.probing = state;
  auto done = [&](std::string why) {
    t.probing.reset();
    deadline.cancel();
    return why;
  };
  error_code ec;
  co_await stream.lowest_layer().async_connect(t.address, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return done(timed_out ? fmt::format("no answer within {}ms", spec.timeout.count())
                                   : fmt::format("connect: {}", ec.message()));
  if (tls) {
    const std::string name = !spec.host.empty() ? spec.host : t.address.address().to_string();
    stream = net::Stream(std::move(stream.lowest_layer()), tls->new_ssl(name, nullptr), tls);
    co_await stream.async_handshake(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return done(timed_out ? fmt::format("no answer within {}ms", spec.timeout.count())
                                     : fmt::format("TLS: {}", stream.tls_error()));
  }
  std::string host = spec.host.empty() ? fmt::format("{}", t.key) : spec.host;
  std::string request = fmt::format(
      "GET {} HTTP/1.1\r\nhost: {}\r\nuser-agent: sluice-health-check\r\nconnection: close\r\n\r\n",
      spec.path, host);
  co_await stream.async_write(asio::buffer(request), asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return done(timed_out ? fmt::format("no answer within {}ms", spec.timeout.count())
                                   : fmt::format("send: {}", ec.message()));
  // Only the status line matters: "HTTP/1.1 200 OK\r\n".
  std::array<char, 512> buf;
  size_t have = 0;
  while (have < buf.size()) {
    size_t n = co_await stream.async_read_some(asio::buffer(buf.data() + have, buf.size() - have),
                                               asio::redirect_error(asio::use_awaitable, ec));
    have += n;
    if (ec || std::string_view(buf.data(), have).find("\r\n") != std::string_view::npos) break;
  }
  std::string_view line(buf.data(), have);
  line = line.substr(0, line.find("\r\n"));
  if (line.size() < 12 || line.substr(0, 7) != "HTTP/1.") {
    co_return done(timed_out ? fmt::format("no answer within {}ms", spec.timeout.count())
                             : fmt::format("no valid HTTP status line{}", ec ? ": " + ec.message() : ""));
  }
  int status = 0;
  std::from_chars(line.data() + 9, line.data() + 12, status);
  for (auto [lo, hi] : spec.expected_statuses) {
    if (status >= lo && status <= hi) co_return done("");
  }
  co_return done(fmt::format("status {}", status));
}

}  // namespace sluice::upstream
