#include "sluice/server/worker.h"

#include <unistd.h>

#include <utility>

#include <fmt/core.h>

#include "sluice/common/accept_backoff.h"
#include "sluice/common/log.h"
#include "sluice/common/thread_cache.h"
#include "sluice/net/accept.h"
#include "sluice/proxy/downstream_connection.h"
#include "sluice/proxy/http1_state.h"

namespace sluice::server {

namespace {
constexpr auto kSweepInterval = std::chrono::seconds(1);
}

Worker::Worker(size_t index, size_t worker_count, accesslog::Writer* access_log)
    : index_(index),
      worker_count_(worker_count),
      work_(asio::make_work_guard(context_)),
      sweep_timer_(context_),
      access_log_(context_, access_log),
      random_(random_seed() ^ (static_cast<uint64_t>(index) << 32)) {}

Worker::~Worker() {
  if (thread_.joinable()) {
    context_.stop();
    thread_.join();
  }
}

void Worker::start() {
  thread_ = std::thread([this] {
    log::set_thread_name(fmt::format("worker {}", index_));
    thread_cache::enable();  // coroutine frames and handlers of hundreds of requests in flight
    schedule_sweep();
    // A coroutine started with spawn() (common/asio.h) whose exception escapes ends inside
    // run(); its frames are gone by then and the loop goes on, as co_spawn's detached would,
    // but not silently. The data plane throws none (DESIGN.md rule 5): this is a bug's report.
    while (true) {
      try {
        context_.run();
        break;
      } catch (const std::exception& e) {
        log::error("worker {}: a request's coroutine ended with an exception: {}", index_, e.what());
      }
    }
    access_log_.flush();
    finished_.store(true);
  });
}

std::unique_ptr<proxy::Http1State> Worker::take_http1_state() {
  if (spare_http1_states_.empty()) return std::make_unique<proxy::Http1State>(*this, context_.get_executor());
  auto state = std::move(spare_http1_states_.back());
  spare_http1_states_.pop_back();
  return state;
}

void Worker::give_http1_state(std::unique_ptr<proxy::Http1State> state) {
  if (spare_http1_states_.size() >= kMaxSpareHttp1States) return;  // freed here
  // A buffer grown for a large head goes back to the standard size.
  if (state->in.capacity() != proxy::Http1State::kReadBufferSize) {
    state->in = ByteBuffer(proxy::Http1State::kReadBufferSize);
  }
  spare_http1_states_.push_back(std::move(state));
}

void Worker::publish(SnapshotPtr snapshot) {
  asio::post(context_, [this, s = std::move(snapshot)]() mutable { swap_snapshot(std::move(s)); });
}

stats::RouteStats* WorkerView::route_stats(size_t listener_index, const router::VirtualHost* vhost,
                                           const router::Route* route) const {
  const ListenerBinding& l = listeners[listener_index];
  const auto& hosts = snapshot->listeners()[listener_index].routes.virtual_hosts();
  for (size_t v = 0; v < hosts.size(); ++v) {
    if (hosts[v].get() == vhost) return l.routes[v][static_cast<size_t>(route - vhost->routes().data())];
  }
  return l.unrouted;
}

void Worker::swap_snapshot(SnapshotPtr snapshot) {
  auto view = std::make_shared<WorkerView>();
  for (size_t c = 0; c < snapshot->clusters.size(); ++c) {
    const auto& cluster = *snapshot->clusters[c];
    // TlsMaterial is by Config::clusters index, the order Snapshot::clusters keeps.
    std::shared_ptr<const net::TlsClientContext> tls;
    if (snapshot->tls && c < snapshot->tls->clusters.size() &&
        snapshot->config().clusters[c].name == cluster.name()) {
      tls = snapshot->tls->clusters[c];
    }
    auto& state = cluster_states_[cluster.name()];
    if (!state) state = std::make_shared<ClusterState>();
    WorkerView::ClusterBinding binding;
    binding.state = state;
    binding.stats = stats_.cluster(cluster.name());
    for (const auto& ep : cluster.endpoints) {
      auto& pool = state->pools[ep.key];
      if (!pool) {
        pool = std::make_shared<upstream::EndpointPool>(binding.stats,
                                                        stats_.endpoint({cluster.name(), ep.key}));
      }
      pool->use_tls(tls);
      binding.pools.push_back(pool);
    }
    state->balancer = std::make_shared<upstream::LoadBalancer>(cluster, state->balancer.get());
    binding.balancer = state->balancer;
    // Process-wide limits split across workers, rounded up so no worker gets zero.
    const auto& cb = cluster.spec.circuit_breakers;
    auto share = [&](uint32_t total) {
      return static_cast<uint32_t>((total + worker_count_ - 1) / worker_count_);
    };
    state->breaker->set_limits(share(cb.max_connections), share(cb.max_pending_requests));
    binding.breaker = state->breaker;
    view->clusters.push_back(std::move(binding));
  }
  retire_unused_pools(*snapshot);
  for (const auto& listener : snapshot->listeners()) {
    WorkerView::ListenerBinding binding;
    const std::string& name = listener.spec.name;
    binding.stats = stats_.listener(name);
    binding.unrouted = stats_.route({name, kUnroutedLabel, kUnroutedLabel});
    for (const auto& vh : listener.routes.virtual_hosts()) {
      auto& routes = binding.routes.emplace_back();
      for (const auto& r : vh->routes()) routes.push_back(stats_.route({name, vh->name(), r.name()}));
    }
    view->listeners.push_back(std::move(binding));
  }
  // Steps' per-worker state: kept for a slot whose key the previous snapshot had, made fresh
  // otherwise; state of steps that left the configuration goes with the last view using it.
  std::unordered_map<std::string, std::shared_ptr<filters::WorkerState>> states;
  const auto& slots = snapshot->routing->step_slots;
  view->step_states.reserve(slots.size());
  for (const auto& slot : slots) {
    auto it = step_states_.find(slot.key);
    std::shared_ptr<filters::WorkerState> state =
        it != step_states_.end() ? it->second : std::shared_ptr<filters::WorkerState>(slot.step->make_worker_state());
    view->step_states.push_back(state);
    states.emplace(slot.key, std::move(state));
  }
  step_states_ = std::move(states);
  view->snapshot = std::move(snapshot);
  view_ = std::move(view);
}

void Worker::retire_unused_pools(const Snapshot& snapshot) {
  std::unordered_map<std::string_view, std::unordered_set<std::string_view>> live;
  for (const auto& c : snapshot.clusters) {
    auto& keys = live[c->name()];
    for (const auto& e : c->endpoints) keys.insert(e.key);
  }
  for (auto it = cluster_states_.begin(); it != cluster_states_.end();) {
    auto found = live.find(it->first);
    auto& pools = it->second->pools;
    for (auto p = pools.begin(); p != pools.end();) {
      if (found == live.end() || !found->second.count(p->first)) {
        p->second->retire();
        p = pools.erase(p);
      } else {
        ++p;
      }
    }
    it = found == live.end() ? cluster_states_.erase(it) : std::next(it);
  }
}

void Worker::adopt_acceptor(std::string listener_name, tcp::acceptor acceptor) {
  // The worker's io_context runs with BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO (worker.h): its
  // sockets must only be touched on its thread. The listening socket leaves the io_context it
  // was opened on here and is registered with the worker's inside the posted task.
  error_code ec;
  const tcp::endpoint local = acceptor.local_endpoint(ec);
  const int native = ec ? -1 : acceptor.release(ec);
  auto fd = std::shared_ptr<int>(new int(native), [](int* p) {
    if (*p >= 0) ::close(*p);  // the task never ran (the worker stopped first)
    delete p;
  });
  if (ec) {
    log::error("worker {}: listener '{}': cannot hand the socket over: {}", index_, listener_name,
               ec.message());
    return;
  }
  asio::post(context_, [this, name = std::move(listener_name), local, fd]() mutable {
    auto adopted = std::make_unique<tcp::acceptor>(context_);
    error_code ec;
    const int native = std::exchange(*fd, -1);
    adopted->assign(local.protocol(), native, ec);
    if (ec) {
      ::close(native);
      log::error("worker {}: listener '{}': cannot accept: {}", index_, name, ec.message());
      return;
    }
    auto& slot = acceptors_[name];
    if (slot) {
      error_code ignored;
      slot->close(ignored);
      retired_acceptors_.push_back(std::move(slot));
    }
    slot = std::move(adopted);
    asio::co_spawn(context_, accept_loop(name, *slot), asio::detached);
  });
}

bool Worker::over_connection_limit(const std::string& listener_name) {
  if (!view_) return false;
  const ListenerInfo* l = view_->snapshot->find_listener(listener_name);
  if (!l) return false;
  stats::ListenerStats* s =
      view_->listeners[static_cast<size_t>(l - view_->snapshot->listeners().data())].stats;
  // The limit is for the process; SO_REUSEPORT spreads connections evenly, so each worker takes
  // its share (rounded up).
  const int64_t workers = static_cast<int64_t>(worker_count_);
  const int64_t share = (static_cast<int64_t>(l->spec.max_connections) + workers - 1) / workers;
  if (s->connections_active.value() < share) return false;
  s->connections_overflow.add();
  return true;
}

net::Stream Worker::downstream_stream(tcp::socket socket, const std::string& listener_name) const {
  const ListenerInfo* l = view_ ? view_->snapshot->find_listener(listener_name) : nullptr;
  if (!l || !view_->snapshot->tls) return net::Stream(std::move(socket));
  const auto index = static_cast<size_t>(l - view_->snapshot->listeners().data());
  const auto& ctx = view_->snapshot->tls->listeners[index];
  if (!ctx) return net::Stream(std::move(socket));
  return net::Stream(std::move(socket), ctx->new_ssl(), ctx);
}

void Worker::close_acceptor(std::string listener_name) {
  asio::post(context_, [this, name = std::move(listener_name)] {
    auto it = acceptors_.find(name);
    if (it == acceptors_.end()) return;
    error_code ignored;
    it->second->close(ignored);
    // The accept loop still refers to the acceptor until its cancelled accept completes.
    retired_acceptors_.push_back(std::move(it->second));
    acceptors_.erase(it);
    // The listener left the configuration: its idle keep-alive connections close now; those
    // with a request in flight finish it with "connection: close" (see listener_removed()).
    std::vector<proxy::DownstreamConnection*> conns(connections_.begin(), connections_.end());
    for (auto* c : conns) {
      if (c->listener_name() == name) c->drain();
    }
  });
}

awaitable<void> Worker::accept_loop(std::string listener_name, tcp::acceptor& acceptor) {
  AcceptBackoff backoff(fmt::format("listener '{}'", listener_name));
  while (acceptor.is_open()) {
    // One connection per readiness of the listener, as nginx takes them (multi_accept off). The
    // wait re-arms the edge-triggered descriptor (Asio's EPOLL_CTL_MOD), so a connection still
    // in the backlog wakes it again at once, after the worker's other ready sockets had their
    // turn: a busy listener cannot hold the loop, and no accept4 is spent learning that the
    // backlog is empty (a loop until EAGAIN pays one per wake-up, and the one-client
    // measurements of bench/results/2026-12-02-accept4.md had one connection per wake-up).
    error_code ec;
    co_await acceptor.async_wait(tcp::acceptor::wait_read,
                                 asio::redirect_error(use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) break;
      co_await backoff.after_failure(ec);
      continue;
    }
    net::PeerInfo peer;
    tcp::socket socket = net::accept_now(acceptor, peer, ec);
    if (ec) {
      // Nothing pending (another wake-up took it) or a connection that went away while queued.
      if (ec == asio::error::would_block || net::accept_error_is_transient(ec)) continue;
      co_await backoff.after_failure(ec);  // EMFILE and friends
      continue;
    }
    backoff.after_success();
    if (draining_) break;
    if (over_connection_limit(listener_name)) {
      // Like Envoy's listener connection limit: close at once rather than stop accepting, so the
      // kernel backlog never fills with connections nobody will serve.
      error_code ignored;
      socket.close(ignored);
      continue;
    }
    auto conn = std::make_shared<proxy::DownstreamConnection>(
        *this, listener_name, downstream_stream(std::move(socket), listener_name),
        std::move(peer.address));
    conn->start();
  }
}

void Worker::schedule_sweep() {
  sweep_timer_.expires_after(kSweepInterval);
  sweep_timer_.async_wait([this](error_code ec) {
    if (ec || draining_ || !view_) {
      if (!ec && !draining_) schedule_sweep();
      return;
    }
    auto now = upstream::Clock::now();
    for (size_t i = 0; i < view_->clusters.size(); ++i) {
      auto idle_timeout = view_->snapshot->clusters[i]->spec.idle_timeout;
      for (auto& pool : view_->clusters[i].pools) pool->sweep(now, idle_timeout);
    }
    schedule_sweep();
  });
}

void Worker::drain() {
  asio::post(context_, [this] {
    draining_ = true;
    for (auto& [name, acceptor] : acceptors_) {
      error_code ignored;
      acceptor->close(ignored);
    }
    sweep_timer_.cancel();
    for (auto& [name, state] : cluster_states_) {
      for (auto& [key, pool] : state->pools) pool->close_all();
    }
    // Copy: drain() may remove connections from the set.
    std::vector<proxy::DownstreamConnection*> conns(connections_.begin(), connections_.end());
    for (auto* c : conns) c->drain();
    // Without the guard, run() returns once the last connection has finished.
    work_.reset();
  });
}

void Worker::join(std::chrono::steady_clock::time_point deadline) {
  if (!thread_.joinable()) return;
  while (!finished_.load() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (!finished_.load()) {
    log::warn("worker {}: drain timeout reached with requests in flight; closing them", index_);
    context_.stop();
  }
  thread_.join();
}

}  // namespace sluice::server
