#include "sluice/server/server.h"

#include <boost/asio/socket_base.hpp>
#include <thread>

#include "sluice/common/log.h"
#include "sluice/config/loader.h"

namespace sluice::server {

Result<std::unique_ptr<Server>> Server::create(config::Config config, std::string sha256) {
  std::unique_ptr<Server> server(new Server());
  size_t workers = config.workers;
  if (workers == 0) workers = std::max(1u, std::thread::hardware_concurrency());
  server->reload_.path = config.source_path;
  server->reload_.sha256 = std::move(sha256);
  server->reload_.applied_at = std::chrono::system_clock::now();
  server->snapshot_ = Snapshot::build(std::move(config), 1);
  for (size_t i = 0; i < workers; ++i) {
    server->workers_.push_back(std::make_unique<Worker>(i, server->access_log_.get()));
    // Posted before the acceptors, so no connection can be served without a snapshot.
    server->workers_.back()->publish(server->snapshot_);
  }
  for (const auto& listener : server->snapshot_->listeners) {
    uint16_t port = 0;
    auto acceptors = server->bind(listener.spec, port);
    if (!acceptors) return acceptors.error();
    server->ports_[listener.spec.name] = port;
    server->adopt(listener.spec.name, std::move(*acceptors));
  }
  return server;
}

Server::~Server() {
  if (started_ && !joined_) stop(std::chrono::milliseconds(0));
}

Result<std::vector<tcp::acceptor>> Server::bind(const config::Listener& listener, uint16_t& port) {
  const auto& a = listener.address;
  tcp::endpoint endpoint(asio::ip::make_address(a.ip), a.port);
  std::vector<tcp::acceptor> acceptors;
  for (auto& worker : workers_) {
    // Each worker gets its own SO_REUSEPORT socket, so the kernel spreads new connections
    // across workers and no accept lock is shared (rule 1).
    tcp::acceptor acceptor(worker->context());
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
  reload_.last_attempt_at = std::chrono::system_clock::now();
  auto fail = [&](std::string error) -> Result<void> {
    reload_.last_ok = false;
    reload_.last_error = error;
    ++reload_.failed;
    return Error{std::move(error)};
  };
  if (draining_) return fail("the server is draining");
  config::LoadResult loaded = config::load_file(path);
  if (!loaded.ok()) return fail(loaded.error_text());

  config::Config& next = loaded.config;
  const config::Config& current = snapshot_->config;
  // Settings fixed at start keep their running value; say so rather than pretend.
  uint32_t running_workers = current.workers;
  if (next.workers != running_workers) {
    log::warn("reload: 'workers' changes only at restart; keeping {} worker(s)", workers_.size());
    next.workers = running_workers;
  }
  if (next.admin.address.to_string() != current.admin.address.to_string()) {
    log::warn("reload: 'admin.address' changes only at restart; keeping {}", current.admin.address.to_string());
    next.admin = current.admin;
  }

  // Listeners: bind the new ones (and those whose address changed) before anything is published,
  // so a bind failure leaves everything as it was.
  std::map<std::string, std::pair<std::vector<tcp::acceptor>, uint16_t>> added;
  for (const auto& l : next.listeners) {
    const ListenerInfo* old = snapshot_->find_listener(l.name);
    if (old && old->spec.address.to_string() == l.address.to_string()) continue;
    uint16_t port = 0;
    auto acceptors = bind(l, port);
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

  auto snapshot = Snapshot::build(std::move(next), reload_.version + 1);
  // Order per worker: retire old acceptors, publish, then adopt new ones, so a connection on a
  // new listener always finds it in the snapshot.
  for (const auto& name : removed) {
    for (auto& w : workers_) w->close_acceptor(name);
    ports_.erase(name);
    log::info("reload: listener '{}' stops accepting; its connections finish their requests", name);
  }
  for (auto& w : workers_) w->publish(snapshot);
  for (auto& [name, entry] : added) {
    ports_[name] = entry.second;
    adopt(name, std::move(entry.first));
    log::info("reload: listener '{}' listening on port {}", name, entry.second);
  }
  snapshot_ = std::move(snapshot);
  reload_.version = snapshot_->version;
  reload_.sha256 = loaded.sha256;
  reload_.applied_at = reload_.last_attempt_at;
  reload_.path = path;
  reload_.last_ok = true;
  reload_.last_error.clear();
  ++reload_.success;
  return {};
}

uint16_t Server::listener_port(const std::string& name) const {
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
