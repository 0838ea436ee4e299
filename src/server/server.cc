#include "sluice/server/server.h"

#include <fmt/format.h>
#include <malloc.h>

#include <boost/asio/socket_base.hpp>
#include <future>
#include <thread>

#include "sluice/common/log.h"
#include "sluice/config/loader.h"

namespace sluice::server {

Server::Server() : control_work_(asio::make_work_guard(control_)) {
  control_thread_ = std::thread([this] {
    log::set_thread_name("control");
    control_.run();
  });
  clusters_ = std::make_unique<upstream::ClusterManager>(control_, [this] { publish_clusters(); });
  tls_watcher_ =
      std::make_unique<FileWatcher>(control_, [this] { rotate_tls_on_control_thread(); });
  retirement_->control = &control_;
}

// Why: a reload builds the new routing while the old one serves, so the heap peaks at both (and
// the parse); the old one then dies on whichever worker ends its last request. glibc keeps the
// freed pages, so RSS climbed 86 → 134 → 143 → 155 MB over four reloads of 10,000 routes
// (bench/results/2026-12-01-reload.md). Destroying it on the control thread keeps that cost
// (13-19 ms for 10,000 routes) off the workers' event loops, and malloc_trim(0) there returns the
// free pages of every arena: 38-48 MB flat. The trim takes 2-5 ms and locks each arena in turn,
// so a worker allocating meanwhile may wait that long, once per reload.
std::shared_ptr<const Routing> Server::retired_on_control_thread(
    std::shared_ptr<const Routing> routing) {
  const Routing* raw = routing.get();
  return std::shared_ptr<const Routing>(
      raw, [owner = std::move(routing), retirement = retirement_](const Routing*) mutable {
        std::lock_guard lock(retirement->mu);
        if (!retirement->control) return;  // the server is going: `owner` dies with this deleter
        asio::post(*retirement->control, [owner = std::move(owner)]() mutable {
          owner.reset();
          ::malloc_trim(0);
        });
      });
}

template <typename F>
auto Server::on_control_thread(F&& f) -> decltype(f()) {
  std::packaged_task<decltype(f())()> task(std::forward<F>(f));
  auto result = task.get_future();
  asio::post(control_, [&task] { task(); });
  return result.get();
}

Result<std::unique_ptr<Server>> Server::create(config::Config config, std::string sha256) {
  std::unique_ptr<Server> server(new Server());
  size_t workers = config.workers;
  if (workers == 0) workers = std::max(1u, std::thread::hardware_concurrency());
  server->reload_.path = config.source_path;
  server->reload_.sha256 = std::move(sha256);
  server->reload_.applied_at = std::chrono::system_clock::now();
  Server* s = server.get();
  for (size_t i = 0; i < workers; ++i) {
    server->workers_.push_back(std::make_unique<Worker>(i, workers, server->access_log_.get()));
    server->workers_.back()->set_connect_failure_reporter(
        [s](std::string cluster, std::string endpoint, std::string why) {
          asio::post(s->control_, [s, cluster = std::move(cluster), endpoint = std::move(endpoint),
                                   why = std::move(why)] {
            s->clusters_->report_connect_failure(cluster, endpoint, why);
          });
        });
  }
  // Resolving, reading the cluster views and publishing happen in one control-thread task, so a
  // health transition cannot fall between them (it would find no snapshot to update and be
  // lost). Published before the acceptors are adopted, so no connection is served without one.
  auto applied = s->on_control_thread([&]() -> Result<void> {
    auto tls = net::TlsMaterial::load(config);
    if (!tls) return tls.error();
    s->tls_watcher_->watch((*tls)->files());
    if (auto r = s->clusters_->apply(config.clusters, tls->get()); !r) return r;
    auto snapshot = std::make_shared<Snapshot>();
    snapshot->version = 1;
    snapshot->tls = std::move(*tls);
    snapshot->routing = s->retired_on_control_thread(Routing::build(std::move(config)));
    snapshot->clusters = s->clusters_->infos();
    s->publish(std::move(snapshot));
    return {};
  });
  if (!applied) return applied.error();
  for (const auto& listener : server->snapshot_->listeners()) {
    uint16_t port = 0;
    auto acceptors = server->bind(listener.spec, port, /*reloading=*/false);
    if (!acceptors) return acceptors.error();
    server->ports_[listener.spec.name] = port;
    server->adopt(listener.spec.name, std::move(*acceptors));
  }
  return server;
}

Server::~Server() {
  if (started_ && !joined_) stop(std::chrono::milliseconds(0));
  {
    std::lock_guard lock(retirement_->mu);
    retirement_->control = nullptr;
  }
  // Health checkers, DNS timers and the file watcher live on the control thread; end them there.
  on_control_thread([this] {
    tls_watcher_.reset();
    clusters_.reset();
  });
  control_work_.reset();
  control_.stop();
  control_thread_.join();
}

void Server::publish(SnapshotPtr snapshot) {
  for (auto& w : workers_) w->publish(snapshot);
  std::lock_guard lock(mu_);
  snapshot_ = std::move(snapshot);
}

void Server::publish_clusters() {
  SnapshotPtr current = snapshot();
  if (!current) return;
  auto next = std::make_shared<Snapshot>(*current);
  next->clusters = clusters_->infos();
  publish(std::move(next));
}

void Server::watch_tls_files(const Snapshot& snapshot) {
  tls_watcher_->watch(snapshot.tls ? snapshot.tls->files() : std::vector<std::string>{});
}

namespace {

// "listener 'https' /etc/sluice/tls/app.crt serial 0A1001 (was 0A1000)" for each certificate:
// what an operator greps for to know which certificate a rotation put in service.
std::string describe_rotation(const config::Config& config, const net::TlsMaterial& before,
                              const net::TlsMaterial& after) {
  std::string out;
  auto line = [&](std::string_view kind, const std::string& name, const net::CertificateInfo& now,
                  const net::CertificateInfo* was) {
    fmt::format_to(std::back_inserter(out), "\n  {} '{}' {} serial {}{}", kind, name, now.cert_path,
                   now.serial,
                   was && was->serial != now.serial ? fmt::format(" (was {})", was->serial)
                                                    : std::string(" (unchanged)"));
  };
  for (size_t i = 0; i < after.listeners.size() && i < config.listeners.size(); ++i) {
    if (!after.listeners[i]) continue;
    const auto& certs = after.listeners[i]->certificates();
    for (size_t c = 0; c < certs.size(); ++c) {
      const auto* old = i < before.listeners.size() && before.listeners[i] &&
                                c < before.listeners[i]->certificates().size()
                            ? &before.listeners[i]->certificates()[c]
                            : nullptr;
      line("listener", config.listeners[i].name, certs[c], old);
    }
  }
  for (size_t i = 0; i < after.clusters.size() && i < config.clusters.size(); ++i) {
    const net::CertificateInfo* now =
        after.clusters[i] ? after.clusters[i]->client_certificate() : nullptr;
    if (!now) continue;
    const auto* old = i < before.clusters.size() && before.clusters[i]
                          ? before.clusters[i]->client_certificate()
                          : nullptr;
    line("cluster", config.clusters[i].name, *now, old);
  }
  return out;
}

}  // namespace

void Server::rotate_tls_on_control_thread() {
  SnapshotPtr current = snapshot();
  if (draining_ || !current || !current->tls) return;
  // The running configuration, not the file: a half-edited sluice.yaml must not ride along with
  // a certificate renewal. SIGHUP is how the YAML is re-read.
  auto tls = net::TlsMaterial::load(current->config());
  if (!tls) {
    ++tls_reload_failures_;
    log::error("TLS files changed but the new material is refused; the old keeps serving: {}",
               tls.error().message);
    return;  // the watcher keeps watching the same paths: the next fix is picked up
  }
  // Health checks first, so no probe after the publish still presents the old client certificate.
  clusters_->set_tls(tls->get());
  auto next = std::make_shared<Snapshot>(*current);
  next->tls = std::move(*tls);
  log::info(
      "TLS material reloaded after a file change; new handshakes use it, established "
      "connections keep theirs:{}",
      describe_rotation(current->config(), *current->tls, *next->tls));
  publish(next);
  watch_tls_files(*next);
}

SnapshotPtr Server::snapshot() const {
  std::lock_guard lock(mu_);
  return snapshot_;
}

ReloadState Server::reload_state() const {
  std::lock_guard lock(mu_);
  return reload_;
}

namespace {

// SO_REUSEPORT lets any process of the same user join a port's group, so a second Sluice (or a
// stale one) would silently share the traffic. A plain bind first makes "address in use" an
// error, as operators expect.
error_code check_address_free(const tcp::endpoint& endpoint) {
  asio::io_context scratch;
  tcp::acceptor probe(scratch);
  error_code ec;
  probe.open(endpoint.protocol(), ec);
  if (!ec) probe.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) probe.bind(endpoint, ec);
  return ec;
}

}  // namespace

Result<std::vector<tcp::acceptor>> Server::bind(const config::Listener& listener, uint16_t& port,
                                                 bool reloading) {
  const auto& a = listener.address;
  tcp::endpoint endpoint(asio::ip::make_address(a.ip), a.port);
  std::vector<tcp::acceptor> acceptors;
  // A reload may give a new name to an address this process already listens on.
  bool ours = false;
  if (auto current = snapshot(); current && reloading) {
    for (const auto& l : current->listeners()) ours |= l.spec.address.to_string() == a.to_string();
  }
  if (a.port != 0 && !ours) {
    if (error_code ec = check_address_free(endpoint)) {
      return Error{fmt::format("listener '{}': cannot listen on {}: {}", listener.name,
                               a.to_string(), ec.message())};
    }
  }
  for (size_t i = 0; i < workers_.size(); ++i) {
    // Each worker gets its own SO_REUSEPORT socket, so the kernel spreads new connections
    // across workers and no accept lock is shared (rule 1). It is opened on the control
    // io_context; the worker re-registers it with its own on its own thread (adopt_acceptor()).
    tcp::acceptor acceptor(control_);
    error_code ec;
    acceptor.open(endpoint.protocol(), ec);
    if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) {
      int one = 1;
      if (::setsockopt(acceptor.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
        ec = error_code(errno, boost::system::system_category());
      }
    }
    if (!ec) acceptor.bind(endpoint, ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return Error{fmt::format("listener '{}': cannot listen on {}: {}", listener.name,
                               a.to_string(), ec.message())};
    }
    // Port 0: the first bind picks the port; every other worker binds that same port.
    endpoint.port(acceptor.local_endpoint().port());
    acceptors.push_back(std::move(acceptor));
  }
  port = endpoint.port();
  return acceptors;
}

void Server::adopt(const std::string& name, std::vector<tcp::acceptor> acceptors) {
  for (size_t i = 0; i < workers_.size(); ++i) workers_[i]->adopt_acceptor(name, std::move(acceptors[i]));
}

void Server::start() {
  for (auto& w : workers_) w->start();
  started_ = true;
}

Result<void> Server::reload(const std::string& path) {
  return on_control_thread([&] { return reload_on_control_thread(path); });
}

Result<void> Server::reload_on_control_thread(const std::string& path) {
  auto attempt_at = std::chrono::system_clock::now();
  auto fail = [&](std::string error) -> Result<void> {
    std::lock_guard lock(mu_);
    reload_.last_attempt_at = attempt_at;
    reload_.last_ok = false;
    reload_.last_error = error;
    ++reload_.failed;
    return Error{std::move(error)};
  };
  if (draining_) return fail("the server is draining");
  config::LoadResult loaded = config::load_file(path);
  if (!loaded.ok()) return fail(loaded.error_text());

  SnapshotPtr current_snapshot = snapshot();
  config::Config& next = loaded.config;
  const config::Config& current = current_snapshot->config();
  // Settings fixed at start keep their running value; say so rather than pretend.
  if (next.workers != current.workers && !workers_overridden_) {
    log::warn("reload: 'workers' changes only at restart; keeping {} worker(s)", workers_.size());
  }
  next.workers = current.workers;
  if (next.admin.address.to_string() != current.admin.address.to_string()) {
    log::warn("reload: 'admin.address' changes only at restart; keeping {}", current.admin.address.to_string());
    next.admin = current.admin;
  }

  // Listeners: bind the new ones (and those whose address changed) before anything is published,
  // so a bind failure leaves everything as it was.
  std::map<std::string, std::pair<std::vector<tcp::acceptor>, uint16_t>> added;
  for (const auto& l : next.listeners) {
    const ListenerInfo* old = current_snapshot->find_listener(l.name);
    if (old && old->spec.address.to_string() == l.address.to_string()) continue;
    uint16_t port = 0;
    auto acceptors = bind(l, port, /*reloading=*/true);
    if (!acceptors) return fail(acceptors.error().message);
    added[l.name] = {std::move(*acceptors), port};
  }
  std::vector<std::string> removed;
  for (const auto& l : current.listeners) {
    bool kept = false;
    for (const auto& n : next.listeners) {
      kept |= n.name == l.name && n.address.to_string() == l.address.to_string();
    }
    if (!kept) removed.push_back(l.name);
  }
  // Every certificate, key, CA and CRL is read again: a reload is also how an operator rotates
  // them by hand, and a bad file refuses the whole reload.
  auto tls = net::TlsMaterial::load(next);
  if (!tls) {
    ++tls_reload_failures_;
    return fail(tls.error().message);
  }
  // Clusters last among the fallible steps: DNS names must resolve.
  if (auto applied = clusters_->apply(next.clusters, tls->get()); !applied) return fail(applied.error().message);

  auto snapshot = std::make_shared<Snapshot>();
  snapshot->version = current_snapshot->version + 1;
  snapshot->tls = std::move(*tls);
  snapshot->routing = retired_on_control_thread(Routing::build(std::move(next)));
  snapshot->clusters = clusters_->infos();
  // Order per worker: retire old acceptors, publish, then adopt new ones, so a connection on a
  // new listener always finds it in the snapshot.
  for (const auto& name : removed) {
    for (auto& w : workers_) w->close_acceptor(name);
    std::lock_guard lock(mu_);
    ports_.erase(name);
    log::info("reload: listener '{}' stops accepting; its connections finish their requests", name);
  }
  publish(snapshot);
  watch_tls_files(*snapshot);
  for (auto& [name, entry] : added) {
    {
      std::lock_guard lock(mu_);
      ports_[name] = entry.second;
    }
    adopt(name, std::move(entry.first));
    log::info("reload: listener '{}' listening on port {}", name, entry.second);
  }
  std::lock_guard lock(mu_);
  reload_.last_attempt_at = attempt_at;
  reload_.version = snapshot->version;
  reload_.sha256 = loaded.sha256;
  reload_.applied_at = attempt_at;
  reload_.path = path;
  reload_.last_ok = true;
  reload_.last_error.clear();
  ++reload_.success;
  return {};
}

uint16_t Server::listener_port(const std::string& name) const {
  std::lock_guard lock(mu_);
  auto it = ports_.find(name);
  return it == ports_.end() ? 0 : it->second;
}

std::vector<const stats::Shard*> Server::stats_shards() const {
  std::vector<const stats::Shard*> shards;
  for (const auto& w : workers_) shards.push_back(&w->stats());
  return shards;
}

void Server::begin_drain() {
  if (draining_) return;
  draining_ = true;
  for (auto& w : workers_) w->drain();
}

void Server::join(std::chrono::steady_clock::time_point deadline) {
  if (joined_) return;
  joined_ = true;
  for (auto& w : workers_) w->join(deadline);
}

void Server::stop(std::chrono::milliseconds drain_timeout) {
  begin_drain();
  join(std::chrono::steady_clock::now() + drain_timeout);
}

}  // namespace sluice::server
