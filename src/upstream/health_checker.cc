#include "sluice/upstream/health_checker.h"

#include <fmt/format.h>

#include <charconv>

#include "sluice/common/log.h"
#include "sluice/net/stream.h"
#include "sluice/upstream/http2_stream_session.h"

namespace sluice::upstream {

namespace {
constexpr std::string_view kGrpcHealthPath = "/grpc.health.v1.Health/Check";

// grpc.health.v1.HealthCheckRequest{service} as a gRPC message: the 5-byte prefix (not
// compressed, big-endian length), then field 1 (string) by hand: no protobuf library for one
// field.
std::string grpc_health_request(std::string_view service) {
  std::string msg;
  if (!service.empty()) {
    msg.push_back(0x0a);  // field 1, length-delimited
    for (size_t n = service.size();; n >>= 7) {  // varint length
      if (n < 0x80) {
        msg.push_back(static_cast<char>(n));
        break;
      }
      msg.push_back(static_cast<char>((n & 0x7f) | 0x80));
    }
    msg.append(service);
  }
  std::string out(5, '\0');
  const uint32_t len = static_cast<uint32_t>(msg.size());
  out[1] = static_cast<char>(len >> 24);
  out[2] = static_cast<char>(len >> 16);
  out[3] = static_cast<char>(len >> 8);
  out[4] = static_cast<char>(len);
  return out + msg;
}

// The `status` (field 1, varint) of a grpc.health.v1.HealthCheckResponse in gRPC framing; -1
// when the bytes are not one such message. 0 (UNKNOWN) when the field is absent (proto3).
int grpc_health_status(std::string_view body) {
  if (body.size() < 5 || body[0] != 0) return -1;  // compressed or short
  const uint32_t len = (uint32_t{static_cast<uint8_t>(body[1])} << 24) |
                       (uint32_t{static_cast<uint8_t>(body[2])} << 16) |
                       (uint32_t{static_cast<uint8_t>(body[3])} << 8) | static_cast<uint8_t>(body[4]);
  if (body.size() != 5 + size_t{len}) return -1;
  std::string_view m = body.substr(5);
  int status = 0;
  size_t i = 0;
  auto varint = [&](uint64_t& v) {
    v = 0;
    for (int shift = 0; i < m.size() && shift < 64; shift += 7) {
      const uint8_t b = static_cast<uint8_t>(m[i++]);
      v |= uint64_t{b & 0x7fu} << shift;
      if (!(b & 0x80)) return true;
    }
    return false;
  };
  while (i < m.size()) {
    uint64_t key = 0, v = 0;
    if (!varint(key)) return -1;
    switch (key & 7) {
      case 0:
        if (!varint(v)) return -1;
        if (key >> 3 == 1) status = static_cast<int>(v);
        break;
      case 2:
        if (!varint(v) || v > m.size() - i) return -1;
        i += v;
        break;
      default:
        return -1;  // the message has no other wire types
    }
  }
  return status;
}
}  // namespace

// Shared by a probe and its deadline handler, which may run after the probe has returned.
struct HealthChecker::ProbeState {
  explicit ProbeState(const asio::any_io_executor& ex) : own(tcp::socket(ex)) {}
  net::Stream& stream() { return h2 ? h2->stream() : own; }
  net::Stream own;                       // HTTP/1 probes
  std::shared_ptr<Http2Connection> h2;   // HTTP/2 probes: closing its stream fails the probe
  bool timed_out = false;
};

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
  if (t.probing) t.probing->stream().close();
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
    co_await target->timer.async_wait(asio::redirect_error(use_awaitable, ec));
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
  std::optional<config::ClusterHttp2> http2 = t.owner ? t.owner->http2_ : std::nullopt;
  if (http2) state->h2 = std::make_shared<Http2Connection>(ex, *http2, nullptr, nullptr, nullptr);
  net::Stream& stream = state->stream();
  std::shared_ptr<const net::TlsClientContext> tls = t.owner ? t.owner->tls_ : nullptr;
  const bool& timed_out = state->timed_out;
  asio::steady_timer deadline(ex);
  deadline.expires_after(spec.timeout);
  deadline.async_wait([state](error_code ec) {
    if (ec) return;
    state->timed_out = true;
    state->stream().close();
  });
  t.probing = state;
  auto done = [&](std::string why) {
    t.probing.reset();
    deadline.cancel();
    return why;
  };
  error_code ec;
  co_await stream.lowest_layer().async_connect(t.address, asio::redirect_error(use_awaitable, ec));
  if (ec) co_return done(timed_out ? fmt::format("no answer within {}ms", spec.timeout.count())
                                   : fmt::format("connect: {}", ec.message()));
  if (tls) {
    const std::string name = !spec.host.empty() ? spec.host : t.address.address().to_string();
    stream = net::Stream(std::move(stream.lowest_layer()), tls->new_ssl(name, nullptr), tls);
    co_await stream.async_handshake(asio::redirect_error(use_awaitable, ec));
    if (ec) co_return done(timed_out ? fmt::format("no answer within {}ms", spec.timeout.count())
                                     : fmt::format("TLS: {}", stream.tls_error()));
  }
  std::string host = spec.host.empty() ? fmt::format("{}", t.key) : spec.host;
  if (state->h2) {
    std::string why = co_await probe_h2(*state, spec, host);
    if (!why.empty() && timed_out) why = fmt::format("no answer within {}ms", spec.timeout.count());
    state->h2->close("probe done");
    co_return done(why);
  }
  std::string request = fmt::format(
      "GET {} HTTP/1.1\r\nhost: {}\r\nuser-agent: sluice-health-check\r\nconnection: close\r\n\r\n",
      spec.path, host);
  co_await stream.async_write(asio::buffer(request), asio::redirect_error(use_awaitable, ec));
  if (ec) co_return done(timed_out ? fmt::format("no answer within {}ms", spec.timeout.count())
                                   : fmt::format("send: {}", ec.message()));
  // Only the status line matters: "HTTP/1.1 200 OK\r\n".
  std::array<char, 512> buf;
  size_t have = 0;
  while (have < buf.size()) {
    size_t n = co_await stream.async_read_some(asio::buffer(buf.data() + have, buf.size() - have),
                                               asio::redirect_error(use_awaitable, ec));
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

awaitable<std::string> HealthChecker::probe_h2(ProbeState& state, const config::HealthCheck& spec,
                                               const std::string& host) {
  Http2Connection& conn = *state.h2;
  if (conn.stream().is_tls() && conn.stream().tls_info()->alpn != "h2") {
    co_return "TLS: backend did not agree to h2 (ALPN)";
  }
  if (!conn.start()) co_return "HTTP/2 session could not start";
  std::unique_ptr<Http2StreamSession> s = conn.new_stream();
  http::UpstreamRequestInput in;
  std::vector<http::HeaderView> fields{{"user-agent", "sluice-health-check"}};
  std::string body;
  if (spec.grpc) {
    // te: trailers goes with every gRPC request (Http2StreamSession adds it).
    fields.push_back({"content-type", "application/grpc"});
    body = grpc_health_request(spec.grpc_service);
  }
  in.method = spec.grpc ? "POST" : "GET";
  in.path = spec.grpc ? kGrpcHealthPath : std::string_view(spec.path);
  in.host = host;
  in.forwarded_proto = conn.scheme();
  in.has_body = spec.grpc;
  in.headers = fields;
  s->queue_request_head(in, false);
  if (spec.grpc) {
    const std::span<const char> part(body.data(), body.size());
    s->queue_request_body({&part, 1}, true, {});
  }
  if (!co_await s->write_request()) co_return "HTTP/2: the request could not be sent";
  std::string received;  // the response body, kept for gRPC only (a few bytes)
  int status = 0;
  while (true) {
    const ResponseStep step = s->parse_response();
    if (step.need_input) {
      if (co_await s->read_response() != Session::ReadStatus::kOk) co_return "HTTP/2: stream failed";
      continue;
    }
    if (step.head) status = s->head_facts().status;
    for (const auto& part : s->body()) {
      if (spec.grpc && received.size() < 4096) received.append(part.data(), part.size());
    }
    s->release_body();
    if (step.complete) break;
  }
  if (!spec.grpc) {
    for (auto [lo, hi] : spec.expected_statuses) {
      if (status >= lo && status <= hi) co_return "";
    }
    co_return fmt::format("status {}", status);
  }
  if (status != 200) co_return fmt::format("gRPC: HTTP status {}", status);
  // grpc-status in the trailers, or in the head of a trailers-only response.
  std::string_view grpc_status;
  for (const auto& f : s->response_fields()) {
    if (f.name == "grpc-status") grpc_status = f.value;
  }
  for (const auto& f : s->trailers()) {
    if (f.name == "grpc-status") grpc_status = f.value;
  }
  if (grpc_status != "0") co_return fmt::format("gRPC: grpc-status {}", grpc_status.empty() ? "missing" : grpc_status);
  const int serving = grpc_health_status(received);
  if (serving != 1) {
    co_return serving < 0 ? std::string("gRPC: not a HealthCheckResponse")
                          : fmt::format("gRPC: serving status {} (SERVING is 1)", serving);
  }
  co_return "";
}

}  // namespace sluice::upstream
