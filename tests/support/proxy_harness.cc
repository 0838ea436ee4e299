#include "support/proxy_harness.h"

#include <arpa/inet.h>
#include <fmt/core.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>

#include "sluice/common/log.h"
#include "sluice/config/loader.h"

namespace sluice::testing {

namespace {

// SLUICE_TEST_LOG=debug (or trace, info, ...) shows the proxy's own log lines; default: warn.
void set_log_level_once() {
  static const bool done = [] {
    const char* env = std::getenv("SLUICE_TEST_LOG");
    auto level = env ? log::parse_level(env) : std::nullopt;
    log::set_level(level.value_or(log::Level::kWarn));
    return true;
  }();
  (void)done;
}

}  // namespace

std::string make_yaml(const ProxyConfig& c) {
  std::string endpoints;
  for (uint16_t p : c.endpoint_ports) {
    endpoints += fmt::format("{}\"127.0.0.1:{}\"", endpoints.empty() ? "" : ", ", p);
  }
  std::string routes;
  for (const auto& r : c.routes) routes += fmt::format("{}{}", routes.empty() ? "" : ", ", r);
  auto extra = [](const std::string& s) { return s.empty() ? std::string() : ", " + s; };
  return fmt::format(
      "workers: {}\n"
      "listeners:\n"
      "  - {{name: main, address: \"127.0.0.1:0\"{},\n"
      "     virtual_hosts: [{{name: main, domains: {}, routes: [{}]}}]}}\n"
      "clusters:\n"
      "  - {{name: backend, endpoints: [{}]{}}}\n",
      c.workers, extra(c.listener_options), c.domains, routes, endpoints, extra(c.cluster_options));
}

std::unique_ptr<RunningProxy> RunningProxy::start(const std::string& yaml) {
  set_log_level_once();
  auto loaded = config::load_string(yaml, "test.yaml");
  if (!loaded.ok()) {
    ADD_FAILURE() << "config rejected:\n" << loaded.error_text() << "YAML:\n" << yaml;
    return nullptr;
  }
  auto created = server::Server::create(std::move(loaded.config));
  if (!created.ok()) {
    ADD_FAILURE() << "Server::create failed: " << created.error().message;
    return nullptr;
  }
  std::unique_ptr<RunningProxy> proxy(new RunningProxy());
  proxy->server_ = std::move(created.value());
  proxy->port_ = proxy->server_->listener_port("main");
  if (proxy->port_ == 0) {
    ADD_FAILURE() << "listener 'main' has no port";
    return nullptr;
  }
  proxy->server_->start();
  return proxy;
}

RunningProxy::~RunningProxy() { stop(); }

void RunningProxy::stop(std::chrono::milliseconds drain) {
  if (stopped_ || !server_) return;
  stopped_ = true;
  server_->stop(drain);
}

ClosedPort::ClosedPort() {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (fd_ >= 0 && ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port_ = ntohs(addr.sin_port);
  }
}

ClosedPort::~ClosedPort() {
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace sluice::testing
