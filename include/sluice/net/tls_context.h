#pragma once
// TLS material built on the control thread from the configuration (rule 2): one server context
// per TLS listener (its certificates chosen by SNI, the fixed protocol policy, client
// certificate verification) and one client context per TLS cluster. Workers only make SSL
// objects from them. Everything is immutable once built; rotation builds new contexts and
// publishes them in a new snapshot, so established connections keep the SSL_CTX they started
// with (OpenSSL counts its references) and new handshakes use the new one.
#include <openssl/ssl.h>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "sluice/common/result.h"
#include "sluice/config/config.h"

namespace sluice::net {

struct SslCtxFree {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxFree>;
struct SslFree {
  void operator()(SSL* s) const { SSL_free(s); }
};
using SslPtr = std::unique_ptr<SSL, SslFree>;
struct SslSessionFree {
  void operator()(SSL_SESSION* s) const { SSL_SESSION_free(s); }
};
using SslSessionPtr = std::unique_ptr<SSL_SESSION, SslSessionFree>;

// What is known of a loaded certificate: for /certs, the expiry metric and load-time warnings.
struct CertificateInfo {
  std::string cert_path;
  std::string key_path;
  std::vector<std::string> names;  // DNS SANs (the CN when there are none), lower-case
  std::string subject;             // RFC 2253
  std::string issuer;              // RFC 2253
  std::string serial;              // upper-case hex
  int64_t not_before = 0;          // Unix seconds
  int64_t not_after = 0;           // Unix seconds
  std::string key_type;            // "RSA 2048", "EC prime256v1", ...
};

// The server side of a TLS listener.
class TlsServerContext {
 public:
  // `where` is the key path of the listener's `tls` ("listeners[0].tls") for error messages.
  static Result<std::shared_ptr<const TlsServerContext>> create(const config::ListenerTls& spec,
                                                                const std::string& where);
  ~TlsServerContext();
  TlsServerContext(const TlsServerContext&) = delete;
  TlsServerContext& operator=(const TlsServerContext&) = delete;

  // A server SSL for an accepted connection (the default certificate until SNI picks one).
  SslPtr new_ssl() const;
  const std::vector<CertificateInfo>& certificates() const { return infos_; }
  const config::ListenerTls& spec() const { return spec_; }
  bool requests_client_certificate() const { return spec_.client_certificate.has_value(); }
  // Every file this context was built from (certificates, keys, CA, CRL): what rotation watches.
  std::vector<std::string> files() const;
  // The index in certificates() of the certificate `server_name` selects (SNI rules: an exact
  // name, then the longest matching "*." wildcard, then the first certificate).
  size_t select(std::string_view server_name) const;

 private:
  TlsServerContext() = default;
  static int on_server_name(SSL* ssl, int* alert, void* arg);
  static int on_alpn(SSL* ssl, const unsigned char** out, unsigned char* outlen,
                     const unsigned char* in, unsigned int inlen, void* arg);

  config::ListenerTls spec_;
  std::vector<SslCtxPtr> contexts_;  // by certificate, all with the same policy
  std::vector<CertificateInfo> infos_;
  std::unordered_map<std::string, size_t> exact_names_;     // name → certificate
  std::unordered_map<std::string, size_t> wildcard_names_;  // "example.com" of "*.example.com"
  std::string alpn_wire_;  // the ALPN list in wire format, server preference order
};

// The client side of a TLS cluster.
class TlsClientContext {
 public:
  // `alpn`: the protocols offered (empty: no ALPN, what HTTP/1 clusters send; {"h2"} for
  // `protocol: http2` clusters, which then require the backend to select it).
  static Result<std::shared_ptr<const TlsClientContext>> create(const config::ClusterTls& spec,
                                                                const std::string& where,
                                                                const std::vector<std::string>& alpn = {});
  // A client SSL for a connection to `host` (the endpoint's host name or IP, for SNI and
  // verification when `sni` is not set), resuming `session` when given.
  SslPtr new_ssl(const std::string& host, SSL_SESSION* session) const;
  const config::ClusterTls& spec() const { return spec_; }
  const CertificateInfo* client_certificate() const { return client_cert_ ? &*client_cert_ : nullptr; }
  std::vector<std::string> files() const;

 private:
  TlsClientContext() = default;
  config::ClusterTls spec_;
  SslCtxPtr ctx_;
  std::optional<CertificateInfo> client_cert_;
};

// The TLS state of one snapshot: contexts by listener and by cluster index (null: plaintext).
struct TlsMaterial {
  std::vector<std::shared_ptr<const TlsServerContext>> listeners;  // by Config::listeners index
  std::vector<std::shared_ptr<const TlsClientContext>> clusters;   // by Config::clusters index
  // Loads every file the configuration names; the first problem fails the whole load (a reload
  // then changes nothing). Warns about certificates expired or expiring within 14 days.
  static Result<std::shared_ptr<const TlsMaterial>> load(const config::Config& config);
  std::vector<std::string> files() const;
};

// An X.509 name in RFC 2253 form ("CN=alice,O=corp"); empty for null.
std::string x509_name_text(const X509_NAME* name);

// Reads the certificate (first PEM block of `path`) for the /certs listing and the tests.
Result<CertificateInfo> read_certificate_info(const std::string& path);

}  // namespace sluice::net
