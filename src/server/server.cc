#include "sluice/server/server.h"

#include <boost/asio/socket_base.hpp>
#include <thread>

#include "sluice/common/log.h"

namespace sluice::server {

Result<std::unique_ptr<Server>> Server::create(config::Config config) {
  std::unique_ptr<Server> server(new Server());
  size_t workers = config.workers;
  if (workers == 0) workers = std::max(1u, std::thread::hardware_concurrency());
  server->snapshot_ = Snapshot::build(std::move(config), 1);
  for (size_t i = 0; i < workers; ++i) {
    server->workers_.push_back(std::make_unique<Worker>(i));
    // Posted before the acceptors, so no connection can be served without a snapshot.
    server->workers_.back()->publish(server->snapshot_);
  }
  if (auto r = server->bind_listeners(); !r) return r.error();
  return server;
}

Server::~Server() {
  if (started_ && !stopped_) stop(std::chrono::milliseconds(0));
}

Result<void> Server::bind_listeners() {
  for (const auto& listener : snapshot_->listeners) {
    const auto& a = listener.spec.address;
    tcp::endpoint endpoint(asio::ip::make_address(a.ip), a.port);
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
        return Error{fmt::format("listener '{}': cannot listen on {}: {}", listener.spec.name,
                                 a.to_string(), ec.message())};
      }
      // Port 0: the first bind picks the port; every other worker binds that same port.
      endpoint.port(acceptor.local_endpoint().port());
      worker->adopt_acceptor(listener.spec.name, std::move(acceptor));
    }
    ports_[listener.spec.name] = endpoint.port();
  }
  return {};
}

void Server::start() {
  for (auto& w : workers_) w->start();
  started_ = true;
}

uint16_t Server::listener_port(const std::string& name) const {
  auto it = ports_.find(name);
  return it == ports_.end() ? 0 : it->second;
}

void Server::stop(std::chrono::milliseconds drain_timeout) {
  if (stopped_) return;
  stopped_ = true;
  for (auto& w : workers_) w->drain();
  auto deadline = std::chrono::steady_clock::now() + drain_timeout;
  for (auto& w : workers_) w->join(deadline);
}

}  // namespace sluice::server
