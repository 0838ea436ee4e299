// The TLS keys of issue 10: listener `tls` and `tls_handshake_timeout`, cluster `tls`, and the
// route match `client_cert`. Every key parsed, every default, and every refusal with its line,
// column, key path and message. The files the keys name live in a temporary directory; the
// loader only checks that they can be read (they hold no PEM here: parsing is not its job).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "loader_test_util.h"
#include "sluice/config/dump.h"
#include "sluice/config/loader.h"

namespace sluice::config {
namespace {

using namespace std::chrono_literals;
using testing::expect_error;
using testing::expect_errors;
using testing::without_leading_newline;

class TlsConfig : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string templ = (std::filesystem::temp_directory_path() / "sluice-tls-config-XXXXXX").string();
    ASSERT_NE(::mkdtemp(templ.data()), nullptr);
    dir_ = templ;
    for (const char* name : {"cert.pem", "key.pem", "cert2.pem", "key2.pem", "ca.pem", "crl.pem"}) {
      std::ofstream(dir_ + "/" + name) << "not PEM: the loader does not read it\n";
    }
  }
  static void TearDownTestSuite() { std::filesystem::remove_all(dir_); }

  // `text` with every "$D" replaced by the temporary directory.
  static std::string sub(std::string text) {
    for (size_t at = text.find("$D"); at != std::string::npos; at = text.find("$D", at + dir_.size())) {
      text.replace(at, 2, dir_);
    }
    return text;
  }
  static std::string file(const std::string& name) { return dir_ + "/" + name; }

  // `body`: keys of the one listener, indented by 4, from line 4.
  static LoadResult listener(const std::string& body) { return testing::load_listener(sub(body)); }

  static Listener only_listener(const LoadResult& r) {
    EXPECT_TRUE(r.ok()) << r.error_text();
    if (r.config.listeners.empty()) return Listener{};
    return r.config.listeners[0];
  }

  // `body`: keys of the one cluster "c", indented by 4, from line 13.
  static LoadResult cluster(const std::string& body) {
    return load_string(std::string("listeners:\n"                        // 1
                                   "  - name: l\n"                       // 2
                                   "    address: 127.0.0.1:8000\n"       // 3
                                   "    virtual_hosts:\n"                // 4
                                   "      - name: v\n"                   // 5
                                   "        domains: [\"*\"]\n"          // 6
                                   "        routes:\n"                   // 7
                                   "          - name: r\n"               // 8
                                   "            match: { prefix: / }\n"  // 9
                                   "            cluster: c\n"            // 10
                                   "clusters:\n"                         // 11
                                   "  - name: c\n") +                    // 12
                           sub(without_leading_newline(body)),
                       "test.yaml");
  }

  static Cluster only_cluster(const LoadResult& r) {
    EXPECT_TRUE(r.ok()) << r.error_text();
    if (r.config.clusters.empty()) return Cluster{};
    return r.config.clusters[0];
  }

  // A listener "l" with TLS (and, with `ask`, a client_certificate) and one route "r" whose
  // `match.client_cert` holds `body`, indented by 16: from line 18 with `ask`, else from line 16.
  static LoadResult client_cert_route(const std::string& body, bool ask = true) {
    std::string yaml =
        "listeners:\n"                             // 1
        "  - name: l\n"                            // 2
        "    address: 127.0.0.1:8000\n"            // 3
        "    tls:\n"                               // 4
        "      certificates:\n"                    // 5
        "        - cert: $D/cert.pem\n"            // 6
        "          key: $D/key.pem\n";             // 7
    if (ask) {
      yaml += "      client_certificate:\n"        // 8
              "        ca: $D/ca.pem\n";           // 9
    }
    yaml += "    virtual_hosts:\n"                 // 10 (8 without `ask`)
            "      - name: v\n"                    // 11
            "        domains: [\"*\"]\n"           // 12
            "        routes:\n"                    // 13
            "          - name: r\n"                // 14
            "            match:\n"                 // 15
            "              prefix: /\n"            // 16
            "              client_cert:\n" +       // 17
            without_leading_newline(body) +        // 18
            "            cluster: c\n" + testing::kClusters;
    return load_string(sub(yaml), "test.yaml");
  }

  static ClientCertMatch only_client_cert(const LoadResult& r) {
    Route route = testing::only_route(r);
    EXPECT_TRUE(route.client_cert.has_value());
    return route.client_cert.value_or(ClientCertMatch{});
  }

  static inline std::string dir_;
};

const std::string kTls = "listeners[0].tls";
const std::string kClusterTls = "clusters[0].tls";
const std::string kClientCert = "listeners[0].virtual_hosts[0].routes[0].match.client_cert";

// A listener `tls` with one certificate and `extra` (keys of `tls`, indented by 6) from line 8.
std::string tls_with(const std::string& extra) {
  return "    tls:\n"                                   // 4
         "      certificates:\n"                        // 5
         "        - cert: $D/cert.pem\n"                // 6
         "          key: $D/key.pem\n" +                // 7
         without_leading_newline(extra);
}

// --- listener tls: parsed keys and defaults ------------------------------------------------------

TEST_F(TlsConfig, ListenerWithoutTlsIsPlaintext) {
  Listener l = only_listener(listener(""));
  EXPECT_FALSE(l.tls.has_value());
  EXPECT_EQ(l.tls_handshake_timeout, 10s);
}

TEST_F(TlsConfig, ListenerTlsDefaults) {
  Listener l = only_listener(listener(tls_with("")));
  ASSERT_TRUE(l.tls.has_value());
  ASSERT_EQ(l.tls->certificates.size(), 1u);
  EXPECT_EQ(l.tls->certificates[0].cert, file("cert.pem"));
  EXPECT_EQ(l.tls->certificates[0].key, file("key.pem"));
  EXPECT_EQ(l.tls->min_version, TlsVersion::kTls12);
  EXPECT_EQ(l.tls->alpn, std::vector<std::string>{"http/1.1"});
  EXPECT_FALSE(l.tls->client_certificate.has_value());
  EXPECT_EQ(l.tls->forward_client_cert, ForwardClientCert::kSanitizeSet);
  EXPECT_EQ(l.tls_handshake_timeout, 10s);
}

TEST_F(TlsConfig, EveryListenerTlsKey) {
  Listener l = only_listener(listener(R"(
    tls:
      certificates:
        - cert: $D/cert.pem
          key: $D/key.pem
        - { cert: $D/cert2.pem, key: $D/key2.pem }
      min_version: "1.3"
      alpn: [ http/1.1 ]
      client_certificate:
        mode: optional
        ca: $D/ca.pem
        crl: $D/crl.pem
      forward_client_cert: append
    tls_handshake_timeout: 3s
)"));
  ASSERT_TRUE(l.tls.has_value());
  ASSERT_EQ(l.tls->certificates.size(), 2u);
  EXPECT_EQ(l.tls->certificates[1].cert, file("cert2.pem"));
  EXPECT_EQ(l.tls->certificates[1].key, file("key2.pem"));
  EXPECT_EQ(l.tls->min_version, TlsVersion::kTls13);
  EXPECT_EQ(l.tls->alpn, std::vector<std::string>{"http/1.1"});
  ASSERT_TRUE(l.tls->client_certificate.has_value());
  EXPECT_EQ(l.tls->client_certificate->mode, ClientCertificate::Mode::kOptional);
  EXPECT_EQ(l.tls->client_certificate->ca, file("ca.pem"));
  EXPECT_EQ(l.tls->client_certificate->crl, file("crl.pem"));
  EXPECT_EQ(l.tls->forward_client_cert, ForwardClientCert::kAppend);
  EXPECT_EQ(l.tls_handshake_timeout, 3s);
}

TEST_F(TlsConfig, MinVersionUnquoted) {
  // `1.2` unquoted is a YAML float, but the loader reads the scalar as written.
  EXPECT_EQ(only_listener(listener(tls_with("      min_version: 1.2\n"))).tls->min_version, TlsVersion::kTls12);
  EXPECT_EQ(only_listener(listener(tls_with("      min_version: 1.3\n"))).tls->min_version, TlsVersion::kTls13);
}

TEST_F(TlsConfig, ClientCertificateDefaults) {
  Listener l = only_listener(listener(tls_with("      client_certificate: { ca: $D/ca.pem }\n")));
  ASSERT_TRUE(l.tls && l.tls->client_certificate);
  EXPECT_EQ(l.tls->client_certificate->mode, ClientCertificate::Mode::kRequired);
  EXPECT_EQ(l.tls->client_certificate->ca, file("ca.pem"));
  EXPECT_EQ(l.tls->client_certificate->crl, "");
  l = only_listener(listener(tls_with("      client_certificate: { mode: required, ca: $D/ca.pem }\n")));
  EXPECT_EQ(l.tls->client_certificate->mode, ClientCertificate::Mode::kRequired);
}

TEST_F(TlsConfig, EveryForwardClientCertMode) {
  const std::pair<const char*, ForwardClientCert> cases[] = {
      {"sanitize", ForwardClientCert::kSanitize},
      {"forward", ForwardClientCert::kForward},
      {"append", ForwardClientCert::kAppend},
      {"sanitize_set", ForwardClientCert::kSanitizeSet}};
  for (auto [name, mode] : cases) {
    Listener l = only_listener(listener(tls_with(std::string("      forward_client_cert: ") + name + "\n")));
    ASSERT_TRUE(l.tls.has_value()) << name;
    EXPECT_EQ(l.tls->forward_client_cert, mode) << name;
  }
}

// --- listener tls: refusals ----------------------------------------------------------------------

TEST_F(TlsConfig, UnreadableCertificateFiles) {
  LoadResult r = listener(R"(
    tls:
      certificates:
        - cert: $D/missing.pem
          key: $D
)");
  expect_errors(r, {{6, 17, kTls + ".certificates[0].cert",
                     "cannot read " + file("missing.pem") + ": No such file or directory"},
                    {7, 16, kTls + ".certificates[0].key", "cannot read " + dir_ + ": Is a directory"}});
}

TEST_F(TlsConfig, UnreadableClientCaAndCrl) {
  LoadResult r = listener(tls_with(R"(
      client_certificate:
        ca: $D/no-ca.pem
        crl: $D/no-crl.pem
)"));
  expect_errors(r, {{9, 13, kTls + ".client_certificate.ca",
                     "cannot read " + file("no-ca.pem") + ": No such file or directory"},
                    {10, 14, kTls + ".client_certificate.crl",
                     "cannot read " + file("no-crl.pem") + ": No such file or directory"}});
}

TEST_F(TlsConfig, FileWithoutReadPermission) {
  std::string locked = file("locked.pem");
  std::ofstream(locked) << "x";
  std::filesystem::permissions(locked, std::filesystem::perms::none);
  if (::geteuid() != 0) {
    LoadResult r = listener(tls_with("      client_certificate: { ca: $D/locked.pem }\n"));
    std::filesystem::remove(locked);
    expect_error(r, 8, 33, kTls + ".client_certificate.ca", "cannot read " + locked + ": Permission denied");
    return;
  }
  // Root reads every file: load as nobody in a child process (the directory must be searchable
  // by nobody, so the refusal is the file's own permission, not the directory's).
  std::filesystem::permissions(dir_, std::filesystem::perms::owner_all | std::filesystem::perms::group_exec |
                                         std::filesystem::perms::others_exec);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(2);
    LoadResult r = listener(tls_with("      client_certificate: { ca: $D/locked.pem }\n"));
    const std::string want = "cannot read " + locked + ": Permission denied";
    ::_exit(r.error_text().find(want) != std::string::npos ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  std::filesystem::remove(locked);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "as nobody the loader did not report 'Permission denied' at the key";
}

TEST_F(TlsConfig, SpecialFileIsRefused) {
  // Opened without blocking, and refused: a certificate is read again at every reload.
  std::string fifo = file("fifo.pem");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  LoadResult r = listener(tls_with("      client_certificate: { ca: $D/fifo.pem }\n"));
  std::filesystem::remove(fifo);
  expect_error(r, 8, 33, kTls + ".client_certificate.ca", "cannot read " + fifo + ": not a regular file");
}

TEST_F(TlsConfig, CertificatesAreRequiredAndNotEmpty) {
  expect_error(listener("    tls: { min_version: \"1.2\" }\n"), 4, 10, kTls + ".certificates",
               "missing required key (a list of { cert, key })");
  expect_error(listener("    tls: { certificates: [] }\n"), 4, 26, kTls + ".certificates",
               "needs at least one certificate");
  expect_error(listener("    tls: { certificates: { cert: a, key: b } }\n"), 4, 26, kTls + ".certificates",
               "expected a list");
}

TEST_F(TlsConfig, CertificateNeedsCertAndKey) {
  LoadResult r = listener(R"(
    tls:
      certificates:
        - cert: $D/cert.pem
        - key: $D/key.pem
        - { cert: $D/cert2.pem, key: $D/key2.pem, password: x }
)");
  expect_errors(r, {{6, 11, kTls + ".certificates[0].key", "missing required key (the PEM private key of 'cert')"},
                    {7, 11, kTls + ".certificates[1].cert",
                     "missing required key (the PEM certificate chain, leaf first)"},
                    {8, static_cast<int>(47 + 2 * dir_.size()), kTls + ".certificates[2].password",
                     "unknown key (known keys: cert, key)"}});
}

TEST_F(TlsConfig, SameCertificateTwice) {
  LoadResult r = listener(R"(
    tls:
      certificates:
        - cert: $D/cert.pem
          key: $D/key.pem
        - cert: $D/cert.pem
          key: $D/key2.pem
)");
  expect_error(r, 8, 17, kTls + ".certificates[1].cert", file("cert.pem") + " is already listed in 'certificates'");
}

TEST_F(TlsConfig, MinVersionRefusals) {
  expect_error(listener(tls_with("      min_version: \"1.0\"\n")), 8, 20, kTls + ".min_version",
               "TLS 1.0 is refused: TLS 1.0 and 1.1 are never offered (use 1.2 or 1.3)");
  expect_error(listener(tls_with("      min_version: 1.1\n")), 8, 20, kTls + ".min_version",
               "TLS 1.1 is refused: TLS 1.0 and 1.1 are never offered (use 1.2 or 1.3)");
  expect_error(listener(tls_with("      min_version: TLSv1.2\n")), 8, 20, kTls + ".min_version",
               "unknown TLS version 'TLSv1.2' (1.2 or 1.3)");
  expect_error(listener(tls_with("      min_version: [ \"1.2\" ]\n")), 8, 20, kTls + ".min_version",
               "expected a TLS version (\"1.2\" or \"1.3\")");
}

TEST_F(TlsConfig, AlpnRefusals) {
  expect_error(listener(tls_with("      alpn: [ http/1.1, spdy/3 ]\n")), 8, 25, kTls + ".alpn[1]",
               "unknown ALPN protocol 'spdy/3' (h2 or http/1.1)");
  // ALPN protocol ids are compared byte for byte (RFC 7301 §3.1).
  expect_error(listener(tls_with("      alpn: [ HTTP/1.1 ]\n")), 8, 15, kTls + ".alpn[0]",
               "unknown ALPN protocol 'HTTP/1.1' (h2 or http/1.1)");
  expect_error(listener(tls_with("      alpn: [ http/1.1, http/1.1 ]\n")), 8, 25, kTls + ".alpn[1]",
               "http/1.1 is listed twice");
  expect_error(listener(tls_with("      alpn: []\n")), 8, 13, kTls + ".alpn",
               "needs at least one protocol (h2, http/1.1)");
  expect_error(listener(tls_with("      alpn: http/1.1\n")), 8, 13, kTls + ".alpn", "expected a list");
}

TEST_F(TlsConfig, ClientCertificateRefusals) {
  expect_error(listener(tls_with("      client_certificate: { mode: request, ca: $D/ca.pem }\n")), 8, 35,
               kTls + ".client_certificate.mode", "unknown mode 'request' (required or optional)");
  expect_error(listener(tls_with("      client_certificate: { mode: optional }\n")), 8, 27,
               kTls + ".client_certificate.ca",
               "missing required key (the PEM bundle of the CA(s) client certificates must lead to)");
  expect_error(listener(tls_with("      client_certificate: true\n")), 8, 27, kTls + ".client_certificate",
               "expected a map");
}

TEST_F(TlsConfig, ForwardClientCertRefusal) {
  expect_error(listener(tls_with("      forward_client_cert: always_forward_only\n")), 8, 28,
               kTls + ".forward_client_cert",
               "unknown mode 'always_forward_only' (sanitize, forward, append or sanitize_set)");
}

TEST_F(TlsConfig, UnknownTlsKey) {
  expect_error(listener(tls_with("      ciphers: HIGH\n")), 8, 7, kTls + ".ciphers",
               "unknown key (known keys: certificates, min_version, alpn, client_certificate, "
               "forward_client_cert)");
}

TEST_F(TlsConfig, HandshakeTimeoutRefusals) {
  expect_error(listener(tls_with("    tls_handshake_timeout: 0\n")), 8, 28, "listeners[0].tls_handshake_timeout",
               "must be greater than 0");
  expect_error(listener(tls_with("    tls_handshake_timeout: 10\n")), 8, 28, "listeners[0].tls_handshake_timeout",
               "duration '10' has no unit (write e.g. 10s or 10ms)");
  expect_error(listener("    tls_handshake_timeout: 5s\n"), 4, 28, "listeners[0].tls_handshake_timeout",
               "only used on a listener with 'tls'");
}

// --- cluster tls ---------------------------------------------------------------------------------

TEST_F(TlsConfig, ClusterWithoutTlsIsPlaintext) {
  EXPECT_FALSE(only_cluster(cluster("    endpoints: [ 127.0.0.1:9000 ]\n")).tls.has_value());
}

TEST_F(TlsConfig, ClusterTlsDefaults) {
  Cluster c = only_cluster(cluster("    tls: {}\n    endpoints: [ app.internal:443 ]\n"));
  ASSERT_TRUE(c.tls.has_value());
  EXPECT_EQ(c.tls->sni, "");
  EXPECT_EQ(c.tls->ca, "");
  EXPECT_TRUE(c.tls->verify);
  EXPECT_EQ(c.tls->cert, "");
  EXPECT_EQ(c.tls->key, "");
}

TEST_F(TlsConfig, EveryClusterTlsKey) {
  Cluster c = only_cluster(cluster(R"(
    tls:
      sni: Backend.Example.COM
      ca: $D/ca.pem
      verify: true
      cert: $D/cert.pem
      key: $D/key.pem
    endpoints: [ 10.0.0.1:8443 ]
)"));
  ASSERT_TRUE(c.tls.has_value());
  EXPECT_EQ(c.tls->sni, "backend.example.com");
  EXPECT_EQ(c.tls->ca, file("ca.pem"));
  EXPECT_TRUE(c.tls->verify);
  EXPECT_EQ(c.tls->cert, file("cert.pem"));
  EXPECT_EQ(c.tls->key, file("key.pem"));
}

TEST_F(TlsConfig, ClusterVerifyFalse) {
  Cluster c = only_cluster(cluster("    tls: { verify: false }\n    endpoints: [ 10.0.0.1:8443 ]\n"));
  ASSERT_TRUE(c.tls.has_value());
  EXPECT_FALSE(c.tls->verify);
}

TEST_F(TlsConfig, ClusterCertWithoutKey) {
  LoadResult r = cluster(R"(
    tls:
      cert: $D/cert.pem
    endpoints: [ 10.0.0.1:8443 ]
)");
  expect_error(r, 14, 13, kClusterTls + ".cert", "needs 'key' too (the PEM private key of this certificate)");
  r = cluster(R"(
    tls:
      key: $D/key.pem
    endpoints: [ 10.0.0.1:8443 ]
)");
  expect_error(r, 14, 12, kClusterTls + ".key", "needs 'cert' too (the PEM certificate chain of this key)");
}

TEST_F(TlsConfig, ClusterUnreadableFiles) {
  LoadResult r = cluster(R"(
    tls:
      ca: $D/none-ca.pem
      cert: $D/none-cert.pem
      key: $D/none-key.pem
    endpoints: [ 10.0.0.1:8443 ]
)");
  expect_errors(r, {{14, 11, kClusterTls + ".ca", "cannot read " + file("none-ca.pem") + ": No such file or directory"},
                    {15, 13, kClusterTls + ".cert",
                     "cannot read " + file("none-cert.pem") + ": No such file or directory"},
                    {16, 12, kClusterTls + ".key",
                     "cannot read " + file("none-key.pem") + ": No such file or directory"}});
}

TEST_F(TlsConfig, ClusterTlsRefusals) {
  expect_error(cluster("    tls: { sni: 10.0.0.1 }\n    endpoints: [ 10.0.0.1:8443 ]\n"), 13, 17,
               kClusterTls + ".sni", "'10.0.0.1' is not a host name (SNI carries a DNS name, never an IP address)");
  expect_error(cluster("    tls: { sni: \"a b\" }\n    endpoints: [ 10.0.0.1:8443 ]\n"), 13, 17,
               kClusterTls + ".sni", "'a b' is not a host name (SNI carries a DNS name, never an IP address)");
  expect_error(cluster("    tls: { sni: \"\" }\n    endpoints: [ 10.0.0.1:8443 ]\n"), 13, 17,
               kClusterTls + ".sni", "must not be empty");
  expect_error(cluster("    tls: { verify: no }\n    endpoints: [ 10.0.0.1:8443 ]\n"), 13, 20,
               kClusterTls + ".verify", "expected true or false, got 'no'");
  expect_error(cluster("    tls: { verify: false, ca: $D/ca.pem }\n    endpoints: [ 10.0.0.1:8443 ]\n"), 13, 31,
               kClusterTls + ".ca", "only used with 'verify: true' (nothing is verified)");
  expect_error(cluster("    tls: { alpn: [ h2 ] }\n    endpoints: [ 10.0.0.1:8443 ]\n"), 13, 12,
               kClusterTls + ".alpn", "unknown key (known keys: sni, ca, verify, cert, key)");
}

// --- route match client_cert ---------------------------------------------------------------------

TEST_F(TlsConfig, RouteWithoutClientCert) {
  EXPECT_FALSE(testing::only_route(testing::load_route("            match: { prefix: / }\n            cluster: c\n"))
                   .client_cert.has_value());
}

TEST_F(TlsConfig, EveryClientCertCondition) {
  ClientCertMatch c = only_client_cert(client_cert_route(R"(
                present: true
                subject: { exact: "CN=alice,O=corp" }
                uri_san: { prefix: "spiffe://corp/" }
                dns_san: { suffix: .corp.internal }
)"));
  EXPECT_EQ(c.present, std::optional<bool>(true));
  ASSERT_TRUE(c.subject && c.uri_san && c.dns_san);
  EXPECT_EQ(c.subject->kind, StringMatch::Kind::kExact);
  EXPECT_EQ(c.subject->value, "CN=alice,O=corp");
  EXPECT_EQ(c.uri_san->kind, StringMatch::Kind::kPrefix);
  EXPECT_EQ(c.uri_san->value, "spiffe://corp/");
  EXPECT_EQ(c.dns_san->kind, StringMatch::Kind::kSuffix);
  EXPECT_EQ(c.dns_san->value, ".corp.internal");

  c = only_client_cert(client_cert_route("                subject: { regex: \"CN=[a-z]+,O=corp\" }\n"));
  EXPECT_FALSE(c.present.has_value());
  ASSERT_TRUE(c.subject.has_value());
  EXPECT_EQ(c.subject->kind, StringMatch::Kind::kRegex);
  EXPECT_EQ(c.subject->value, "CN=[a-z]+,O=corp");
  EXPECT_FALSE(c.uri_san.has_value());
  EXPECT_FALSE(c.dns_san.has_value());

  c = only_client_cert(client_cert_route("                present: false\n"));
  EXPECT_EQ(c.present, std::optional<bool>(false));
}

TEST_F(TlsConfig, ClientCertBadRegex) {
  expect_error(client_cert_route("                uri_san: { regex: \"spiffe://(corp\" }\n"), 18, 35,
               kClientCert + ".uri_san.regex", "invalid regex 'spiffe://(corp': missing ): spiffe://(corp");
}

TEST_F(TlsConfig, ClientCertStringMatchRefusals) {
  expect_error(client_cert_route("                subject: { exact: a, prefix: b }\n"), 18, 26,
               kClientCert + ".subject", "takes exactly one of 'exact', 'prefix', 'suffix' or 'regex'");
  expect_error(client_cert_route("                subject: {}\n"), 18, 26, kClientCert + ".subject",
               "takes exactly one of 'exact', 'prefix', 'suffix' or 'regex'");
  expect_error(client_cert_route("                subject: { contains: alice }\n"), 18, 28,
               kClientCert + ".subject.contains", "unknown key (known keys: exact, prefix, suffix, regex)");
  expect_error(client_cert_route("                dns_san: alice.corp\n"), 18, 26, kClientCert + ".dns_san",
               "expected a map with one of 'exact', 'prefix', 'suffix' or 'regex'");
  expect_error(client_cert_route("                dns_san: { suffix: \"\" }\n"), 18, 36,
               kClientCert + ".dns_san.suffix", "must not be empty");
}

TEST_F(TlsConfig, ClientCertRefusals) {
  expect_error(client_cert_route("                present: yes\n"), 18, 26, kClientCert + ".present",
               "expected true or false, got 'yes'");
  expect_error(client_cert_route("                issuer: { exact: x }\n"), 18, 17, kClientCert + ".issuer",
               "unknown key (known keys: present, subject, uri_san, dns_san)");
  LoadResult r = client_cert_route(R"(
                present: false
                uri_san: { exact: "spiffe://corp/a" }
)");
  expect_error(r, 19, 26, kClientCert + ".uri_san",
               "never holds with 'present: false' (a connection without a certificate has no uri_san)");
}

TEST_F(TlsConfig, EmptyClientCert) {
  // `client_cert: {}` on line 17 itself.
  std::string yaml = sub(
      "listeners:\n  - name: l\n    address: 127.0.0.1:8000\n"
      "    tls: { certificates: [ { cert: $D/cert.pem, key: $D/key.pem } ], client_certificate: { ca: $D/ca.pem } }\n"
      "    virtual_hosts:\n      - name: v\n        domains: [\"*\"]\n        routes:\n"
      "          - name: r\n            match: { prefix: /, client_cert: {} }\n            cluster: c\n") +
                     testing::kClusters;
  expect_error(load_string(yaml, "test.yaml"), 10, 46, kClientCert,
               "needs at least one of 'present', 'subject', 'uri_san' or 'dns_san'");
}

TEST_F(TlsConfig, ClientCertNeedsAListenerThatAsksForOne) {
  // TLS without client_certificate: the route (from line 16) cannot match anything but present: false.
  expect_error(client_cert_route("                present: true\n", /*ask=*/false), 16, 17, kClientCert,
               "route 'r' matches on the client certificate, but listener 'l' does not ask for one: add "
               "tls.client_certificate");
  // No TLS at all.
  LoadResult r = testing::load_routes(R"(
          - name: first
            match: { prefix: /a }
            cluster: c
          - name: mtls
            match:
              prefix: /
              client_cert: { subject: { exact: "CN=alice" } }
            cluster: c
)");
  expect_error(r, 14, 28, "listeners[0].virtual_hosts[0].routes[1].match.client_cert",
               "route 'mtls' matches on the client certificate, but listener 'l' does not ask for one: add "
               "tls.client_certificate");
}

TEST_F(TlsConfig, ABrokenTlsDoesNotAlsoBlameTheRoutes) {
  // `tls` is not a map: one error, not a second one for the route.
  std::string yaml = "listeners:\n  - name: l\n    address: 127.0.0.1:8000\n    tls: on\n"
                     "    virtual_hosts:\n      - name: v\n        domains: [\"*\"]\n        routes:\n"
                     "          - name: r\n            match: { prefix: /, client_cert: { present: true } }\n"
                     "            cluster: c\n" +
                     testing::kClusters;
  expect_error(load_string(yaml, "test.yaml"), 4, 10, kTls, "expected a map");
}

// --- dump ----------------------------------------------------------------------------------------

TEST_F(TlsConfig, DumpShowsPathsAndDefaults) {
  std::string yaml = sub(R"(
listeners:
  - name: l
    address: 127.0.0.1:8000
    tls:
      certificates: [ { cert: $D/cert.pem, key: $D/key.pem } ]
      client_certificate: { mode: optional, ca: $D/ca.pem }
    virtual_hosts:
      - name: v
        domains: ["*"]
        routes:
          - name: r
            match:
              prefix: /
              client_cert: { present: true, uri_san: { prefix: "spiffe://corp/" } }
            cluster: c
          - name: plain
            match: { prefix: / }
            cluster: c
  - name: plaintext
    address: 127.0.0.1:8001
    virtual_hosts: [ { name: v, domains: ["*"], routes: [ { match: { prefix: / }, cluster: c } ] } ]
clusters:
  - name: c
    tls: { sni: backend.internal, verify: false }
    endpoints: [ 127.0.0.1:9000 ]
  - name: d
    endpoints: [ 127.0.0.1:9001 ]
)");
  LoadResult r = testing::load_yaml(yaml);
  ASSERT_TRUE(r.ok()) << r.error_text();
  nlohmann::json dump = nlohmann::json::parse(to_json(r.config));
  const nlohmann::json& l = dump["listeners"][0];
  EXPECT_EQ(l["tls"], nlohmann::json::parse(sub(R"({
      "certificates": [ { "cert": "$D/cert.pem", "key": "$D/key.pem" } ],
      "min_version": "1.2", "alpn": [ "http/1.1" ],
      "client_certificate": { "mode": "optional", "ca": "$D/ca.pem", "crl": null },
      "forward_client_cert": "sanitize_set" })")));
  EXPECT_EQ(l["tls_handshake_timeout"], "10000ms");
  EXPECT_EQ(l["virtual_hosts"][0]["routes"][0]["match"]["client_cert"],
            nlohmann::json::parse(R"({ "present": true, "subject": null,
                                       "uri_san": { "prefix": "spiffe://corp/" }, "dns_san": null })"));
  EXPECT_TRUE(l["virtual_hosts"][0]["routes"][1]["match"]["client_cert"].is_null());
  EXPECT_TRUE(dump["listeners"][1]["tls"].is_null());
  EXPECT_EQ(dump["clusters"][0]["tls"],
            nlohmann::json::parse(R"({ "sni": "backend.internal", "ca": null, "verify": false,
                                       "cert": null, "key": null })"));
  EXPECT_TRUE(dump["clusters"][1]["tls"].is_null());
  // Paths only: nothing of what the files hold.
  EXPECT_EQ(to_json(r.config).find("not PEM"), std::string::npos);
}

}  // namespace
}  // namespace sluice::config
