// net::TlsServerContext and TlsClientContext with the test PKI, handshaking in memory (two SSL
// objects joined by BIO pairs, no sockets): what SNI selects, what ALPN agrees, which versions
// and suites the policy offers, and what a bad certificate file is told. The last test runs two
// net::Streams over a loopback socket pair: which session a pooled client connection hands out.
#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <fstream>
#include <memory>
#include <set>

#include "sluice/net/stream.h"
#include "sluice/net/tls_context.h"
#include "sluice/net/tls_policy.h"
#include "support/test_pki.h"

namespace sluice::net {
namespace {

using testing::TestPki;

struct SslCtxHolder {
  SslCtxPtr ctx;
};

// A client SSL_CTX trusting the test CA, limited to [min, max] versions.
SslCtxPtr client_ctx(const std::string& ca, int min_version = TLS1_2_VERSION, int max_version = 0) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  SSL_CTX_set_min_proto_version(ctx.get(), min_version);
  if (max_version) SSL_CTX_set_max_proto_version(ctx.get(), max_version);
  if (!ca.empty()) SSL_CTX_load_verify_file(ctx.get(), ca.c_str());
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  return ctx;
}

// Runs a handshake between `client` and `server` through a BIO pair; true when both finished.
bool handshake(SSL* client, SSL* server) {
  BIO* client_bio = nullptr;
  BIO* server_bio = nullptr;
  BIO_new_bio_pair(&client_bio, 0, &server_bio, 0);
  SSL_set_bio(client, client_bio, client_bio);
  SSL_set_bio(server, server_bio, server_bio);
  SSL_set_connect_state(client);
  SSL_set_accept_state(server);
  bool client_done = false;
  bool server_done = false;
  for (int i = 0; i < 20 && !(client_done && server_done); ++i) {
    if (!client_done) {
      int r = SSL_do_handshake(client);
      if (r == 1) client_done = true;
      else if (SSL_get_error(client, r) != SSL_ERROR_WANT_READ) return false;
    }
    if (!server_done) {
      int r = SSL_do_handshake(server);
      if (r == 1) server_done = true;
      else if (SSL_get_error(server, r) != SSL_ERROR_WANT_READ) return false;
    }
  }
  return client_done && server_done;
}

std::string served_subject(SSL* client) {
  X509* peer = SSL_get0_peer_certificate(client);
  if (!peer) return "";
  char buf[256];
  X509_NAME_oneline(X509_get_subject_name(peer), buf, sizeof(buf));
  return buf;
}

std::string served_serial(SSL* client) {
  X509* peer = SSL_get0_peer_certificate(client);
  if (!peer) return "";
  BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(peer), nullptr);
  char* hex = BN_bn2hex(bn);
  std::string out = hex;
  OPENSSL_free(hex);
  BN_free(bn);
  return out;
}

class TlsContextTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { pki_ = TestPki::create().release(); }
  static void TearDownTestSuite() {
    delete pki_;
    pki_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(pki_, nullptr); }

  // A listener with the RSA app certificate first and the ECDSA api certificate second.
  static config::ListenerTls two_certificates() {
    config::ListenerTls spec;
    auto app = pki_->cert_and_key("app_rsa");
    auto api = pki_->cert_and_key("api_ecdsa");
    spec.certificates = {{app.cert, app.key}, {api.cert, api.key}};
    return spec;
  }

  // A server Stream (two_certificates()) and a client Stream (verifying against the test CA,
  // SNI api.example.test) over a loopback connection on `io`, before their handshakes.
  // `server_ssl` is what the server Stream uses, for tests that look into it.
  struct StreamPair {
    std::shared_ptr<const TlsServerContext> serve;
    std::shared_ptr<const TlsClientContext> connect;
    std::unique_ptr<Stream> server;
    std::unique_ptr<Stream> client;
    SSL* server_ssl = nullptr;
  };
  static StreamPair stream_pair(asio::io_context& io) {
    auto serve = TlsServerContext::create(two_certificates(), "listeners[0].tls");
    config::ClusterTls spec;
    spec.ca = pki_->path("ca_cert");
    auto connect = TlsClientContext::create(spec, "clusters[0].tls");
    EXPECT_TRUE(serve.ok() && connect.ok());
    if (!serve.ok() || !connect.ok()) return {};
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    tcp::socket client_socket(io);
    client_socket.connect(acceptor.local_endpoint());
    StreamPair pair{*serve, *connect};
    SslPtr server_ssl = (*serve)->new_ssl();
    pair.server_ssl = server_ssl.get();
    pair.server = std::make_unique<Stream>(acceptor.accept(), std::move(server_ssl), *serve);
    pair.client = std::make_unique<Stream>(
        std::move(client_socket), (*connect)->new_ssl("api.example.test", nullptr), *connect);
    return pair;
  }

  // Handshakes a client asking for `sni` (empty: none) and returns the served certificate's serial.
  static std::string serial_for(const TlsServerContext& server, const std::string& sni) {
    SslCtxPtr cctx = client_ctx(pki_->path("ca_cert"));
    SslPtr client(SSL_new(cctx.get()));
    if (!sni.empty()) SSL_set_tlsext_host_name(client.get(), sni.c_str());
    SslPtr s = server.new_ssl();
    EXPECT_TRUE(handshake(client.get(), s.get())) << sni;
    return served_serial(client.get());
  }

  static TestPki* pki_;
};

TestPki* TlsContextTest::pki_ = nullptr;

TEST_F(TlsContextTest, SniPicksTheCertificateByExactNameThenWildcardElseTheFirst) {
  auto made = TlsServerContext::create(two_certificates(), "listeners[0].tls");
  ASSERT_TRUE(made.ok()) << made.error().message;
  const TlsServerContext& server = **made;
  ASSERT_EQ(server.certificates().size(), 2u);
  const std::string app = server.certificates()[0].serial;
  const std::string api = server.certificates()[1].serial;
  ASSERT_NE(app, api);
  EXPECT_EQ(serial_for(server, "api.example.test"), api);
  EXPECT_EQ(serial_for(server, "API.Example.Test"), api);  // names are case-insensitive
  EXPECT_EQ(serial_for(server, "app.example.test"), app);
  EXPECT_EQ(serial_for(server, "www.app.example.test"), app);    // *.app.example.test
  EXPECT_EQ(serial_for(server, "a.b.app.example.test"), app);    // no match → the first
  EXPECT_EQ(serial_for(server, "unknown.test"), app);            // no match → the first
  EXPECT_EQ(serial_for(server, ""), app);                        // no SNI → the first
  // select() is what the callback uses; the wildcard covers exactly one label.
  EXPECT_EQ(server.select("x.app.example.test"), 0u);
  EXPECT_EQ(server.select("api.example.test"), 1u);
}

TEST_F(TlsContextTest, DescribesEachCertificate) {
  auto made = TlsServerContext::create(two_certificates(), "listeners[0].tls");
  ASSERT_TRUE(made.ok()) << made.error().message;
  const auto& app = (*made)->certificates()[0];
  EXPECT_EQ(app.key_type, "RSA 2048");
  EXPECT_NE(std::find(app.names.begin(), app.names.end(), "*.app.example.test"), app.names.end());
  EXPECT_GT(app.not_after, app.not_before);
  EXPECT_NE(app.issuer.find("CN="), std::string::npos);
  EXPECT_EQ((*made)->certificates()[1].key_type, "EC prime256v1");
  auto files = (*made)->files();
  EXPECT_EQ(files.size(), 4u);
}

TEST_F(TlsContextTest, OffersOnlyTheIntermediatePolicy) {
  auto made = TlsServerContext::create(two_certificates(), "listeners[0].tls");
  ASSERT_TRUE(made.ok()) << made.error().message;
  SslPtr s = (*made)->new_ssl();
  // Every suite the server would agree on is in the closed set the metrics label by, and the
  // set has nothing the server cannot agree on.
  std::set<std::string> offered;
  STACK_OF(SSL_CIPHER)* ciphers = SSL_get_ciphers(s.get());
  for (int i = 0; i < sk_SSL_CIPHER_num(ciphers); ++i) {
    offered.insert(SSL_CIPHER_get_name(sk_SSL_CIPHER_value(ciphers, i)));
  }
  std::set<std::string> expected(kTlsCipherNames.begin(), kTlsCipherNames.end());
  EXPECT_EQ(offered, expected);

  // TLS 1.1 is refused; 1.2 and 1.3 are agreed.
  for (auto [max, ok] : {std::pair{TLS1_1_VERSION, false}, {TLS1_2_VERSION, true}, {TLS1_3_VERSION, true}}) {
    SslCtxPtr cctx = client_ctx(pki_->path("ca_cert"), TLS1_VERSION, max);
    SSL_CTX_set_security_level(cctx.get(), 0);  // let the client offer TLS 1.1 at all
    SslPtr client(SSL_new(cctx.get()));
    SslPtr server = (*made)->new_ssl();
    EXPECT_EQ(handshake(client.get(), server.get()), ok) << "max version " << max;
    ERR_clear_error();
  }
}

TEST_F(TlsContextTest, MinVersion13RefusesTls12) {
  config::ListenerTls spec = two_certificates();
  spec.min_version = config::TlsVersion::kTls13;
  auto made = TlsServerContext::create(spec, "listeners[0].tls");
  ASSERT_TRUE(made.ok()) << made.error().message;
  SslCtxPtr cctx = client_ctx(pki_->path("ca_cert"), TLS1_2_VERSION, TLS1_2_VERSION);
  SslPtr client(SSL_new(cctx.get()));
  SslPtr server = (*made)->new_ssl();
  EXPECT_FALSE(handshake(client.get(), server.get()));
  ERR_clear_error();
}

TEST_F(TlsContextTest, AlpnAgreesOnHttp11AndRefusesAClientOfferingOnlyH2) {
  auto made = TlsServerContext::create(two_certificates(), "listeners[0].tls");
  ASSERT_TRUE(made.ok()) << made.error().message;
  auto offer = [&](std::string_view wire) {
    SslCtxPtr cctx = client_ctx(pki_->path("ca_cert"));
    SslPtr client(SSL_new(cctx.get()));
    SSL_set_alpn_protos(client.get(), reinterpret_cast<const unsigned char*>(wire.data()),
                        static_cast<unsigned int>(wire.size()));
    SslPtr server = (*made)->new_ssl();
    const bool ok = handshake(client.get(), server.get());
    const unsigned char* proto = nullptr;
    unsigned int len = 0;
    SSL_get0_alpn_selected(client.get(), &proto, &len);
    ERR_clear_error();
    return std::pair{ok, std::string(reinterpret_cast<const char*>(proto), proto ? len : 0)};
  };
  EXPECT_EQ(offer(std::string("\x02h2\x08http/1.1", 12)), (std::pair{true, std::string("http/1.1")}));
  EXPECT_FALSE(offer(std::string("\x02h2", 3)).first);
}

TEST_F(TlsContextTest, MutualTlsRequiredRefusesAClientWithoutACertificate) {
  config::ListenerTls spec = two_certificates();
  spec.client_certificate = config::ClientCertificate{config::ClientCertificate::Mode::kRequired,
                                                      pki_->path("ca_cert"), pki_->path("crl")};
  auto made = TlsServerContext::create(spec, "listeners[0].tls");
  ASSERT_TRUE(made.ok()) << made.error().message;
  auto connect_as = [&](const std::string& who) {
    SslCtxPtr cctx = client_ctx(pki_->path("ca_cert"));
    if (!who.empty()) {
      auto ck = pki_->cert_and_key(who);
      SSL_CTX_use_certificate_chain_file(cctx.get(), ck.cert.c_str());
      SSL_CTX_use_PrivateKey_file(cctx.get(), ck.key.c_str(), SSL_FILETYPE_PEM);
    }
    SslPtr client(SSL_new(cctx.get()));
    SslPtr server = (*made)->new_ssl();
    bool ok = handshake(client.get(), server.get());
    // TLS 1.3: the client finishes before the server has judged its certificate; the server's
    // verdict is what counts.
    ok = ok && SSL_get_verify_result(server.get()) == X509_V_OK && SSL_get0_peer_certificate(server.get());
    ERR_clear_error();
    return ok;
  };
  EXPECT_TRUE(connect_as("alice"));
  EXPECT_FALSE(connect_as(""));         // none
  EXPECT_FALSE(connect_as("mallory"));  // signed by another CA
  EXPECT_FALSE(connect_as("carol"));    // revoked in the CRL
}

TEST_F(TlsContextTest, BadFilesAreRefusedWithTheFileAndTheReason) {
  auto app = pki_->cert_and_key("app_rsa");
  auto api = pki_->cert_and_key("api_ecdsa");
  auto refuse = [&](config::CertificateFiles files) {
    config::ListenerTls spec;
    spec.certificates = {files};
    auto made = TlsServerContext::create(spec, "listeners[2].tls");
    EXPECT_FALSE(made.ok());
    return made.ok() ? std::string() : made.error().message;
  };
  std::string mismatch = refuse({app.cert, api.key});
  EXPECT_NE(mismatch.find("listeners[2].tls.certificates[0].key"), std::string::npos) << mismatch;
  EXPECT_NE(mismatch.find("does not match"), std::string::npos) << mismatch;
  std::string encrypted = refuse({app.cert, pki_->path("encrypted_key")});
  EXPECT_NE(encrypted.find("passphrase"), std::string::npos) << encrypted;
  EXPECT_NE(encrypted.find(pki_->path("encrypted_key")), std::string::npos) << encrypted;
  const std::string not_pem = pki_->dir() + "/not-a-cert.pem";
  std::ofstream(not_pem) << "hello\n";
  std::string bad_cert = refuse({not_pem, app.key});
  EXPECT_NE(bad_cert.find("certificates[0].cert"), std::string::npos) << bad_cert;
  EXPECT_NE(bad_cert.find(not_pem), std::string::npos) << bad_cert;

  config::ListenerTls spec = two_certificates();
  spec.client_certificate = config::ClientCertificate{config::ClientCertificate::Mode::kRequired, not_pem, ""};
  auto made = TlsServerContext::create(spec, "listeners[0].tls");
  ASSERT_FALSE(made.ok());
  EXPECT_NE(made.error().message.find("client_certificate.ca"), std::string::npos) << made.error().message;
}

TEST_F(TlsContextTest, SessionTicketsResumeAcrossContextsOfTheSameListener) {
  // A reload or rotation builds a new context; the process-wide ticket keys still decrypt.
  auto first = TlsServerContext::create(two_certificates(), "listeners[0].tls");
  auto second = TlsServerContext::create(two_certificates(), "listeners[0].tls");
  ASSERT_TRUE(first.ok() && second.ok());
  SslCtxPtr cctx = client_ctx(pki_->path("ca_cert"), TLS1_2_VERSION, TLS1_2_VERSION);
  SSL_CTX_set_session_cache_mode(cctx.get(), SSL_SESS_CACHE_CLIENT);
  SslPtr c1(SSL_new(cctx.get()));
  SslPtr s1 = (*first)->new_ssl();
  ASSERT_TRUE(handshake(c1.get(), s1.get()));
  SslSessionPtr session(SSL_get1_session(c1.get()));
  ASSERT_TRUE(session);
  SslPtr c2(SSL_new(cctx.get()));
  SSL_set_session(c2.get(), session.get());
  SslPtr s2 = (*second)->new_ssl();
  ASSERT_TRUE(handshake(c2.get(), s2.get()));
  EXPECT_EQ(SSL_session_reused(c2.get()), 1);
}

TEST_F(TlsContextTest, Tls13ResumptionIssuesANewTicketSoSingleUseTicketsChain) {
  // A TLS 1.3 client uses each ticket once (RFC 8446 C.4): every resumption must leave it a new
  // one, or its next connection is a full handshake (nginx and HAProxy send one too).
  auto serve = TlsServerContext::create(two_certificates(), "listeners[0].tls");
  ASSERT_TRUE(serve.ok());
  SslCtxPtr cctx = client_ctx(pki_->path("ca_cert"), TLS1_3_VERSION);
  SSL_CTX_set_session_cache_mode(cctx.get(),
                                 SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  static int tickets = 0;
  SSL_CTX_sess_set_new_cb(cctx.get(), [](SSL*, SSL_SESSION*) {
    ++tickets;
    return 0;  // not kept here: the connection's session is the newest
  });
  // One connection (resuming `session` if given); returns its newest session.
  auto connect = [&](SSL_SESSION* session, bool& resumed, int& received) {
    SslPtr client(SSL_new(cctx.get()));
    if (session) SSL_set_session(client.get(), session);
    SslPtr server = (*serve)->new_ssl();
    EXPECT_TRUE(handshake(client.get(), server.get()));
    tickets = 0;
    char byte = 'x';
    EXPECT_EQ(SSL_write(server.get(), &byte, 1), 1);
    EXPECT_EQ(SSL_read(client.get(), &byte, 1), 1);  // the tickets come before the byte
    received = tickets;
    resumed = SSL_session_reused(client.get()) == 1;
    // A copy: freeing an SSL without a close_notify marks its own session not resumable.
    return SslSessionPtr(SSL_SESSION_dup(SSL_get0_session(client.get())));
  };
  bool resumed = false;
  int received = 0;
  SslSessionPtr session = connect(nullptr, resumed, received);
  EXPECT_FALSE(resumed);
  EXPECT_EQ(received, 2);  // OpenSSL's default after a full handshake
  for (int i = 0; i < 3; ++i) {
    session = connect(session.get(), resumed, received);
    EXPECT_TRUE(resumed) << i;
    EXPECT_EQ(received, 1) << i;
  }
}

TEST_F(TlsContextTest, ClientContextVerifiesTheNameAndTheCa) {
  auto serve = TlsServerContext::create(two_certificates(), "listeners[0].tls");
  ASSERT_TRUE(serve.ok());
  auto attempt = [&](config::ClusterTls spec, const std::string& host) {
    auto client = TlsClientContext::create(spec, "clusters[0].tls");
    EXPECT_TRUE(client.ok()) << client.error().message;
    SslPtr c = (*client)->new_ssl(host, nullptr);
    SslPtr s = (*serve)->new_ssl();
    const bool ok = handshake(c.get(), s.get());
    ERR_clear_error();
    return ok;
  };
  config::ClusterTls spec;
  spec.ca = pki_->path("ca_cert");
  EXPECT_TRUE(attempt(spec, "api.example.test"));
  EXPECT_FALSE(attempt(spec, "other.example.test"));  // the served (first) certificate's names differ
  spec.sni = "www.app.example.test";
  EXPECT_TRUE(attempt(spec, "10.0.0.1"));
  spec.ca = pki_->path("wrong_ca_cert");
  EXPECT_FALSE(attempt(spec, "10.0.0.1"));
  spec.verify = false;
  spec.ca.clear();
  EXPECT_TRUE(attempt(spec, "10.0.0.1"));
}

TEST_F(TlsContextTest, ClientStreamHandsOutItsSessionOncePerTicket) {
  // The upstream pool asks a connection for its session after every request; a copy is made
  // only when a ticket changed the session (bench: SSL_SESSION_dup per request before).
  asio::io_context io;
  StreamPair pair = stream_pair(io);
  ASSERT_TRUE(pair.server && pair.client);
  SSL* server_raw = pair.server_ssl;
  Stream& server = *pair.server;
  Stream& client = *pair.client;

  // The server writes one byte and the client reads it (the TLS 1.3 tickets come first).
  auto exchange = [&](bool handshake) {
    error_code server_ec, client_ec;
    char byte = 'x';
    char got = 0;
    asio::co_spawn(
        io,
        [&]() -> awaitable<void> {
          if (handshake)
            co_await server.async_handshake(asio::redirect_error(use_awaitable, server_ec));
          if (!server_ec)
            co_await server.async_write(asio::buffer(&byte, 1),
                                        asio::redirect_error(use_awaitable, server_ec));
        },
        asio::detached);
    asio::co_spawn(
        io,
        [&]() -> awaitable<void> {
          if (handshake)
            co_await client.async_handshake(asio::redirect_error(use_awaitable, client_ec));
          if (!client_ec)
            co_await client.async_read_some(asio::buffer(&got, 1),
                                            asio::redirect_error(use_awaitable, client_ec));
        },
        asio::detached);
    io.restart();
    io.run();
    EXPECT_FALSE(server_ec) << server_ec.message();
    EXPECT_FALSE(client_ec) << client_ec.message();
    EXPECT_EQ(got, 'x');
  };

  exchange(true);
  SslSessionPtr first = client.tls_session();
  ASSERT_TRUE(first);
  EXPECT_EQ(SSL_SESSION_is_resumable(first.get()), 1);
  EXPECT_FALSE(client.tls_session());  // nothing new since
  exchange(false);
  EXPECT_FALSE(client.tls_session());  // data alone changes nothing

  ASSERT_EQ(SSL_new_session_ticket(server_raw), 1);  // a new ticket leaves with the next write
  exchange(false);
  SslSessionPtr second = client.tls_session();
  ASSERT_TRUE(second);
  const unsigned char* ticket1 = nullptr;
  const unsigned char* ticket2 = nullptr;
  size_t len1 = 0, len2 = 0;
  SSL_SESSION_get0_ticket(first.get(), &ticket1, &len1);
  SSL_SESSION_get0_ticket(second.get(), &ticket2, &len2);
  ASSERT_TRUE(len1 > 0 && len2 > 0);
  EXPECT_NE(std::string(reinterpret_cast<const char*>(ticket1), len1),
            std::string(reinterpret_cast<const char*>(ticket2), len2));  // the newer ticket
  EXPECT_EQ(SSL_SESSION_is_resumable(second.get()), 1);
  EXPECT_FALSE(client.tls_session());

  // The copy handed out resumes a new connection.
  SslPtr again = pair.connect->new_ssl("api.example.test", second.get());
  SslPtr s2 = pair.serve->new_ssl();
  ASSERT_TRUE(handshake(again.get(), s2.get()));
  EXPECT_EQ(SSL_session_reused(again.get()), 1);
}

TEST_F(TlsContextTest, ReadAfterADrainStillGetsBytesThatCameOrWaitInOpenSsl) {
  // Stream::async_read_next_message() after a read that drained the socket waits for
  // readiness before SSL_read. Bytes that arrived since, bytes OpenSSL already holds, and bytes
  // that come later must all still be read.
  asio::io_context io;
  StreamPair pair = stream_pair(io);
  ASSERT_TRUE(pair.server && pair.client);
  Stream& server = *pair.server;
  Stream& client = *pair.client;
  error_code server_ec, client_ec;
  asio::co_spawn(io, [&]() -> awaitable<void> {
    co_await server.async_handshake(asio::redirect_error(use_awaitable, server_ec));
  }, asio::detached);
  asio::co_spawn(io, [&]() -> awaitable<void> {
    co_await client.async_handshake(asio::redirect_error(use_awaitable, client_ec));
  }, asio::detached);
  io.run_for(std::chrono::seconds(5));
  ASSERT_FALSE(server_ec || client_ec) << server_ec.message() << client_ec.message();

  auto send = [&](std::string text) {
    io.restart();
    asio::co_spawn(io, [&, text]() -> awaitable<void> {
      co_await client.async_write(asio::buffer(text), asio::redirect_error(use_awaitable, client_ec));
    }, asio::detached);
    io.run_for(std::chrono::seconds(5));
    ASSERT_FALSE(client_ec) << client_ec.message();
  };
  // Reads into `size` bytes, as the first read of a message or not; "" if nothing came in 5 s.
  auto read = [&](size_t size, bool next_message) {
    std::string got(size, '\0');
    size_t n = 0;
    io.restart();
    asio::co_spawn(io, [&]() -> awaitable<void> {
      auto token = asio::redirect_error(use_awaitable, server_ec);
      n = next_message ? co_await server.async_read_next_message(asio::buffer(got), token)
                       : co_await server.async_read_some(asio::buffer(got), token);
    }, asio::detached);
    io.run_for(std::chrono::seconds(5));
    EXPECT_FALSE(server_ec) << server_ec.message();
    got.resize(server_ec ? 0 : n);
    return got;
  };

  send("one");
  std::string first;
  while (first.size() < 3 && !server_ec) first += read(64, false);  // tickets are read first
  EXPECT_EQ(first, "one");  // a short read: the socket is drained
  send("two");              // arrives after the drain, before the read
  EXPECT_EQ(read(64, true), "two");
  send("abc");
  EXPECT_EQ(read(1, false), "a");  // the record's rest stays in OpenSSL
  EXPECT_EQ(read(64, true), "bc");
  // Nothing there when the read starts: it waits, and the bytes sent then complete it.
  std::string later(64, '\0');
  size_t n = 0;
  io.restart();
  asio::co_spawn(io, [&]() -> awaitable<void> {
    n = co_await server.async_read_next_message(asio::buffer(later), asio::redirect_error(use_awaitable, server_ec));
  }, asio::detached);
  io.poll();
  asio::co_spawn(io, [&]() -> awaitable<void> {
    co_await client.async_write(asio::buffer(std::string_view("four")), asio::redirect_error(use_awaitable, client_ec));
  }, asio::detached);
  io.run_for(std::chrono::seconds(5));
  ASSERT_FALSE(server_ec || client_ec) << server_ec.message() << client_ec.message();
  EXPECT_EQ(later.substr(0, n), "four");
}

}  // namespace
}  // namespace sluice::net
