// sluice: wiring only — command line, configuration, signals, start and stop.
#include <fmt/core.h>

#include <boost/asio/signal_set.hpp>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "sluice/admin/admin_server.h"
#include "sluice/common/asio.h"
#include "sluice/common/log.h"
#include "sluice/config/loader.h"
#include "sluice/net/tls_context.h"
#include "sluice/server/server.h"

namespace {

constexpr std::string_view kUsage =
    "usage: sluice --config FILE [--workers N] [--log-level LEVEL]\n"
    "       sluice --validate --config FILE\n"
    "       sluice --version | --help\n"
    "\n"
    "  -c, --config FILE     the YAML configuration (see config/sluice.yaml)\n"
    "  -w, --workers N       worker threads, overriding 'workers:' in the file (default: one per core)\n"
    "  -l, --log-level LEVEL trace | debug | info | warn | error (default: info)\n"
    "  -t, --validate        check the configuration, print 'configuration OK' or the errors, and exit\n"
    "  -v, --version         print the version and exit\n"
    "  -h, --help            print this help and exit\n";

struct Options {
  std::string config_path;
  std::optional<uint32_t> workers;
  sluice::log::Level level = sluice::log::Level::kInfo;
  bool validate = false;
};

[[noreturn]] void usage_error(const std::string& message) {
  fmt::print(stderr, "sluice: {}\n\n{}", message, kUsage);
  std::exit(2);
}

Options parse_args(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    std::string_view value;
    std::string inline_value;
    if (auto eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string_view::npos) {
      inline_value = std::string(arg.substr(eq + 1));
      arg = arg.substr(0, eq);
    }
    auto need_value = [&]() -> std::string_view {
      if (!inline_value.empty()) return inline_value;
      if (i + 1 >= argc) usage_error(fmt::format("{} needs a value", arg));
      return argv[++i];
    };
    if (arg == "-h" || arg == "--help") {
      fmt::print("{}", kUsage);
      std::exit(0);
    } else if (arg == "-v" || arg == "--version") {
      fmt::print("sluice {}\n", SLUICE_VERSION);
      std::exit(0);
    } else if (arg == "-c" || arg == "--config") {
      o.config_path = std::string(need_value());
    } else if (arg == "-t" || arg == "--validate") {
      o.validate = true;
    } else if (arg == "-w" || arg == "--workers") {
      value = need_value();
      char* end = nullptr;
      std::string v(value);
      unsigned long n = std::strtoul(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || n < 1 || n > 1024) {
        usage_error(fmt::format("--workers takes a number from 1 to 1024, not '{}'", value));
      }
      o.workers = static_cast<uint32_t>(n);
    } else if (arg == "-l" || arg == "--log-level") {
      value = need_value();
      auto level = sluice::log::parse_level(value);
      if (!level) usage_error(fmt::format("unknown log level '{}'", value));
      o.level = *level;
    } else {
      usage_error(fmt::format("unknown argument '{}'", arg));
    }
  }
  if (o.config_path.empty()) usage_error("--config FILE is required");
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace sluice;
  Options options = parse_args(argc, argv);
  log::set_level(options.level);

  config::LoadResult loaded = config::load_file(options.config_path);
  if (options.validate) {
    if (!loaded.ok()) {
      fmt::print(stderr, "{}", loaded.error_text());
      fmt::print(stderr, "configuration invalid: {} error(s)\n", loaded.errors.size());
      return 1;
    }
    // The TLS files too: an operator runs --validate before a restart or reload to catch a
    // key that does not match its certificate, not only a typo in the YAML.
    if (auto tls = net::TlsMaterial::load(loaded.config); !tls) {
      fmt::print(stderr, "{}\n", tls.error().message);
      fmt::print(stderr, "configuration invalid: 1 error(s)\n");
      return 1;
    }
    fmt::print("configuration OK\n");
    return 0;
  }
  if (!loaded.ok()) {
    for (const auto& e : loaded.errors) log::error("{}", e.to_string());
    log::error("not starting: the configuration has {} error(s)", loaded.errors.size());
    return 1;
  }
  if (options.workers) loaded.config.workers = *options.workers;
  const std::string config_path = options.config_path;
  auto drain_timeout = loaded.config.drain_timeout;
  auto admin_address = loaded.config.admin.address;

  auto created = server::Server::create(std::move(loaded.config), loaded.sha256);
  if (!created) {
    log::error("{}", created.error().message);
    return 1;
  }
  auto& srv = *created;
  if (options.workers) srv->set_workers_overridden();

  asio::io_context control;
  auto admin = admin::AdminServer::create(control, *srv, admin_address);
  if (!admin) {
    log::error("{}", admin.error().message);
    return 1;
  }
  srv->start();
  (*admin)->start();

  std::string listeners;
  for (const auto& l : srv->snapshot()->listeners()) {
    if (!listeners.empty()) listeners += ", ";
    auto a = l.spec.address;
    a.port = srv->listener_port(l.spec.name);
    listeners += fmt::format("{}={}", l.spec.name, a.to_string());
  }
  auto admin_shown = admin_address;
  admin_shown.port = (*admin)->port();
  log::info("sluice {} started: {} worker(s), listeners: {}, admin: {}, config version 1 ({})",
            SLUICE_VERSION, srv->worker_count(), listeners, admin_shown.to_string(), config_path);

  // The control thread handles signals; the data path never sees them.
  asio::signal_set stop_signals(control, SIGTERM, SIGINT);
  std::thread drain_waiter;
  stop_signals.async_wait([&](error_code ec, int signal) {
    if (ec) return;
    // The drain timeout of the configuration now serving (a reload may have changed it).
    drain_timeout = srv->snapshot()->config().drain_timeout;
    log::info("received {}; draining for up to {}ms", signal == SIGTERM ? "SIGTERM" : "SIGINT",
              drain_timeout.count());
    // Workers drain while the admin server keeps answering (/ready says 503 "draining").
    srv->begin_drain();
    drain_waiter = std::thread([&] {
      srv->join(std::chrono::steady_clock::now() + drain_timeout);
      control.stop();
    });
  });

  asio::signal_set reload_signal(control, SIGHUP);
  std::function<void(error_code, int)> on_hup = [&](error_code ec, int) {
    if (ec) return;
    auto result = srv->reload(config_path);
    if (result) {
      log::info("reload: configuration version {} applied ({})", srv->reload_state().version,
                srv->reload_state().sha256);
    } else {
      std::string_view text = result.error().message;
      while (!text.empty() && text.back() == '\n') text.remove_suffix(1);
      log::error("reload failed; still serving configuration version {}:\n{}",
                 srv->reload_state().version, text);
    }
    reload_signal.async_wait(on_hup);
  };
  reload_signal.async_wait(on_hup);

  asio::signal_set reopen_signal(control, SIGUSR1);
  std::function<void(error_code, int)> on_usr1 = [&](error_code ec, int) {
    if (ec) return;
    srv->reopen_access_logs();
    reopen_signal.async_wait(on_usr1);
  };
  reopen_signal.async_wait(on_usr1);

  control.run();
  if (drain_waiter.joinable()) drain_waiter.join();
  srv->stop(std::chrono::milliseconds(0));  // no-op after a drain; ends the workers otherwise
  log::info("stopped");
  return 0;
}
