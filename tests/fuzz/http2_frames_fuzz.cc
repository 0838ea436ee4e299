// Fuzzes the downstream HTTP/2 codec: the input is everything an h2c client sends after the
// connection preface (its SETTINGS first, then any frames), given to a real
// proxy::Http2Connection as the bytes its DownstreamConnection read, so nghttp2's server session
// runs with the codec's own options, callbacks, limits and abuse budgets, and every request
// stream runs its exchange (routes with direct responses: nothing goes upstream).
//
// The connection runs on a worker's io_context polled on this thread, over a loopback TCP pair:
// the test side reads and drops whatever Sluice writes, and once Sluice has nothing left to do
// it half-closes, so the connection ends as it does when a client goes away. The limits are
// small (8 streams, 4 KiB header lists) so the refusal paths are reachable with small inputs.
//
// Invariants: the connection always ends (no coroutine waits forever once the client is gone),
// and ASan/UBSan find nothing along the way.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "fuzz_check.h"
#include "sluice/common/asio.h"
#include "sluice/common/log.h"
#include "sluice/config/loader.h"
#include "sluice/http2/protocol.h"
#include "sluice/net/stream.h"
#include "sluice/proxy/http2_connection.h"
#include "sluice/server/snapshot.h"
#include "sluice/server/worker.h"

namespace sluice::fuzz {
namespace {

const char* const kConfig = R"yaml(
listeners:
  - name: fuzz
    address: 127.0.0.1:0
    http2:
      prior_knowledge: true
      max_concurrent_streams: 8
      initial_stream_window: 65535
      initial_connection_window: 131072
      max_header_list_size: 4096
    max_request_body_size: 100000
    virtual_hosts:
      - name: app
        domains: ["*"]
        routes:
          - name: pong
            match: { prefix: /ping }
            direct_response: { status: 200, body: "pong\n" }
          - name: moved
            match: { prefix: /old/ }
            redirect: { prefix_rewrite: /new/, code: 308 }
          - name: big
            match: { prefix: / }
            direct_response: { status: 404, body: "not found: a body longer than a frame or two would need, so that flow control matters a little\n" }
clusters: []
)yaml";

// The worker (never started: its io_context is polled here), its snapshot, and a listening
// socket for the loopback pairs. One for the process, like a real worker for its connections.
struct Fixture {
  server::Worker worker{0, 1, nullptr};
  tcp::acceptor acceptor{worker.context()};

  Fixture() {
    log::set_level(log::Level::kOff);
    auto loaded = config::load_string(kConfig, "http2_frames_fuzz.yaml");
    if (!loaded.ok()) std::fprintf(stderr, "%s", loaded.error_text().c_str());
    FUZZ_CHECK(loaded.ok(), "the HTTP/2 fixture's configuration does not load");
    auto snapshot = std::make_shared<server::Snapshot>();
    snapshot->version = 1;
    snapshot->routing = server::Routing::build(std::move(loaded.config));
    worker.publish(std::move(snapshot));
    while (!worker.view()) worker.context().run_one();
    acceptor.open(tcp::v4());
    acceptor.bind({asio::ip::make_address_v4("127.0.0.1"), 0});
    acceptor.listen();
  }
};

// Reads and drops what Sluice wrote, without blocking.
void drop_pending(tcp::socket& client) {
  char buf[64 * 1024];
  error_code ec;
  while (client.available(ec) > 0 && !ec) client.read_some(asio::buffer(buf), ec);
}

// A loopback pair: `client` connected to the fixture's acceptor, `accepted` its other end.
// libFuzzer's timeout alarm interrupts blocking calls (EINTR): those are retried, and a
// connection left in the backlog by an interrupted connect is skipped.
void connect_pair(Fixture& f, tcp::socket& client, tcp::socket& accepted) {
  error_code ec;
  do {
    client = tcp::socket(f.worker.context());
    client.connect(f.acceptor.local_endpoint(), ec);
  } while (ec == asio::error::interrupted);
  if (ec) std::fprintf(stderr, "connect: %s\n", ec.message().c_str());
  FUZZ_CHECK(!ec, "the loopback connection failed");
  // Closed with a reset, not a FIN: thousands of inputs a second would otherwise use up the
  // ephemeral ports in TIME_WAIT.
  client.set_option(asio::socket_base::linger(true, 0), ec);
  const auto mine = client.local_endpoint(ec);
  for (;;) {
    accepted = tcp::socket(f.worker.context());
    f.acceptor.accept(accepted, ec);
    if (ec == asio::error::interrupted) continue;
    if (ec) std::fprintf(stderr, "accept: %s\n", ec.message().c_str());
    FUZZ_CHECK(!ec, "the loopback connection was not accepted");
    error_code peer_ec;
    if (accepted.remote_endpoint(peer_ec) == mine && !peer_ec) return;
  }
}

// The connection's whole life; a plain function, not a lambda: GCC 12 emits a coroutine lambda
// in an extern "C" function twice ("symbol already defined").
awaitable<void> serve(std::shared_ptr<proxy::Http2Connection> conn, std::string received, bool& done) {
  co_await conn->run(std::move(received));
  done = true;
}

void one_input(const uint8_t* data, size_t size) {
  static Fixture* f = new Fixture();  // never destroyed: no teardown order to get wrong
  asio::io_context& ctx = f->worker.context();

  error_code ec;
  tcp::socket client(ctx);
  tcp::socket accepted(ctx);
  connect_pair(*f, client, accepted);
  auto stream = std::make_shared<net::Stream>(std::move(accepted));
  const auto& view = f->worker.view();
  auto conn = std::make_shared<proxy::Http2Connection>(f->worker, "fuzz", *stream, stream, "127.0.0.1:1",
                                                       view->listeners.at(0).stats);

  // What a DownstreamConnection hands over: the preface it matched, and what came with it.
  std::string received(http2::kClientPreface);
  received.append(reinterpret_cast<const char*>(data), size);
  bool done = false;
  asio::co_spawn(ctx, serve(conn, std::move(received), done), asio::detached);

  // Let the streams run and the writer flush while the client is still there...
  for (;;) {
    const size_t ran = ctx.poll();
    drop_pending(client);
    if (ran == 0) break;
  }
  // ...then the client goes away: the connection must end.
  client.shutdown(tcp::socket::shutdown_send, ec);
  // Far longer than it takes; libFuzzer's -timeout usually reports a hang first.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!done && std::chrono::steady_clock::now() < give_up) {
    ctx.run_one_for(std::chrono::milliseconds(10));
    drop_pending(client);
  }
  FUZZ_CHECK(done, "the HTTP/2 connection did not end after the client went away");
  client.close(ec);
  conn.reset();
  stream.reset();
  ctx.poll();  // the deadlines' cancelled waits let go of the connection
}

}  // namespace
}  // namespace sluice::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  sluice::fuzz::one_input(data, size);
  return 0;
}
