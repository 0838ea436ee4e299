#include "sluice/net/tls_context.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <ctime>
#include <mutex>

#include "sluice/common/log.h"

namespace sluice::net {

namespace {

// Mozilla's "intermediate" profile (v5.7) without the DHE suites, which need Diffie-Hellman
// parameters and add nothing a client of this decade lacks: TLS 1.2 ECDHE with AES-GCM or
// ChaCha20-Poly1305 only, every TLS 1.3 suite, and the groups X25519, P-256, P-384.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr const char* kTls13Suites =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
constexpr const char* kGroups = "X25519:P-256:P-384";
// Tickets and sessions live two hours; ticket keys rotate every hour and the two previous keys
// still decrypt, so every ticket issued in its lifetime can be used.
constexpr long kSessionLifetimeSeconds = 7200;
constexpr auto kTicketKeyRotation = std::chrono::hours(1);
constexpr size_t kTicketKeysKept = 3;
constexpr int kVerifyDepth = 10;

// OpenSSL's error queue, newest reason first, as one line.
std::string openssl_errors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    const char* reason = ERR_reason_error_string(e);
    if (!out.empty()) out += "; ";
    out += reason ? reason : "unknown error";
  }
  return out.empty() ? "unknown error" : out;
}

Error file_error(const std::string& where, const std::string& path, const std::string& what) {
  return Error{where + ": " + path + ": " + what};
}

// The ticket keys of the whole process: shared by every worker and every snapshot, so a client
// resumes on any worker and across reloads and certificate rotations.
class TicketKeys {
 public:
  struct Key {
    std::array<unsigned char, 16> name;
    std::array<unsigned char, 32> aes;
    std::array<unsigned char, 32> hmac;
  };
  static TicketKeys& instance() {
    static TicketKeys keys;
    return keys;
  }
  // The key to encrypt with (rotated when due), copied so the lock is held briefly.
  bool current(Key& out) {
    std::lock_guard lock(mu_);
    rotate_if_due();
    if (keys_.empty()) return false;
    out = keys_.front();
    return true;
  }
  // The key named `name`; `is_current` tells whether tickets under it should be renewed.
  bool find(const unsigned char* name, Key& out, bool& is_current) {
    std::lock_guard lock(mu_);
    rotate_if_due();
    for (size_t i = 0; i < keys_.size(); ++i) {
      if (std::memcmp(keys_[i].name.data(), name, 16) == 0) {
        out = keys_[i];
        is_current = i == 0;
        return true;
      }
    }
    return false;
  }

 private:
  void rotate_if_due() {
    const auto now = std::chrono::steady_clock::now();
    if (!keys_.empty() && now - rotated_at_ < kTicketKeyRotation) return;
    Key k;
    if (RAND_bytes(k.name.data(), 16) != 1 || RAND_bytes(k.aes.data(), 32) != 1 ||
        RAND_bytes(k.hmac.data(), 32) != 1) {
      return;  // keep the old keys; the next handshake tries again
    }
    keys_.insert(keys_.begin(), k);
    if (keys_.size() > kTicketKeysKept) keys_.resize(kTicketKeysKept);
    rotated_at_ = now;
  }
  std::mutex mu_;
  std::vector<Key> keys_;  // newest first
  std::chrono::steady_clock::time_point rotated_at_;
};

int on_ticket_key(SSL* ssl, unsigned char* key_name, unsigned char* iv, EVP_CIPHER_CTX* cipher,
                  EVP_MAC_CTX* mac, int encrypt) {
  TicketKeys::Key key;
  bool is_current = true;
  if (encrypt) {
    if (!TicketKeys::instance().current(key) || RAND_bytes(iv, 16) != 1) return -1;
    std::memcpy(key_name, key.name.data(), 16);
  } else if (!TicketKeys::instance().find(key_name, key, is_current)) {
    return 0;  // an unknown or expired key: a full handshake
  }
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key.hmac.data(), key.hmac.size()),
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end(),
  };
  if (EVP_MAC_CTX_set_params(mac, params) != 1) return -1;
  // Fetched once: EVP_aes_256_cbc() is a legacy handle that OpenSSL 3 looks up in its provider
  // store on every init (an implicit fetch per ticket). The MAC's digest has no such handle, it
  // is named in the parameters above.
  static EVP_CIPHER* const fetched = EVP_CIPHER_fetch(nullptr, "AES-256-CBC", nullptr);
  const EVP_CIPHER* aes = fetched ? fetched : EVP_aes_256_cbc();
  const int ok = encrypt ? EVP_EncryptInit_ex(cipher, aes, nullptr, key.aes.data(), iv)
                         : EVP_DecryptInit_ex(cipher, aes, nullptr, key.aes.data(), iv);
  if (ok != 1) return -1;
  // 2: valid, and issue a new ticket. Under TLS 1.2 only when the key is no longer the current
  // one (a TLS 1.2 ticket may be used again). A TLS 1.3 client uses each ticket once (RFC 8446
  // C.4), so a resumption that sent none (OpenSSL's answer to 1) left it nothing for its next
  // connection: a full handshake every other time. nginx and HAProxy renew in TLS 1.3 too.
  if (SSL_version(ssl) == TLS1_3_VERSION) return 2;
  return is_current ? 1 : 2;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

}  // namespace

std::string x509_name_text(const X509_NAME* name) {
  std::string out;
  if (!name) return out;
  BIO* bio = BIO_new(BIO_s_mem());
  if (!bio) return out;
  if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) >= 0) {
    char* data = nullptr;
    long len = BIO_get_mem_data(bio, &data);
    if (len > 0) out.assign(data, static_cast<size_t>(len));
  }
  BIO_free(bio);
  return out;
}

namespace {

int64_t asn1_time_seconds(const ASN1_TIME* t) {
  struct tm tm{};
  if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return 0;
  return static_cast<int64_t>(timegm(&tm));
}

CertificateInfo describe(X509* cert, EVP_PKEY* key) {
  CertificateInfo info;
  auto* sans = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans); ++i) {
    const GENERAL_NAME* n = sk_GENERAL_NAME_value(sans, i);
    if (n->type != GEN_DNS) continue;
    info.names.push_back(lower(std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(n->d.dNSName)),
                                           static_cast<size_t>(ASN1_STRING_length(n->d.dNSName)))));
  }
  GENERAL_NAMES_free(sans);
  if (info.names.empty()) {
    // No DNS SAN: the common name, as clients did before SANs (and as nginx still matches).
    char cn[256];
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof(cn)) > 0) {
      info.names.push_back(lower(cn));
    }
  }
  info.subject = x509_name_text(X509_get_subject_name(cert));
  info.issuer = x509_name_text(X509_get_issuer_name(cert));
  if (BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr)) {
    if (char* hex = BN_bn2hex(bn)) {
      info.serial = hex;
      OPENSSL_free(hex);
    }
    BN_free(bn);
  }
  info.not_before = asn1_time_seconds(X509_get0_notBefore(cert));
  info.not_after = asn1_time_seconds(X509_get0_notAfter(cert));
  if (key) {
    const int id = EVP_PKEY_get_base_id(key);
    if (id == EVP_PKEY_RSA) {
      info.key_type = "RSA " + std::to_string(EVP_PKEY_get_bits(key));
    } else if (id == EVP_PKEY_EC) {
      char group[64] = {};
      size_t len = 0;
      EVP_PKEY_get_group_name(key, group, sizeof(group), &len);
      info.key_type = std::string("EC ") + group;
    } else {
      info.key_type = OBJ_nid2sn(id);
    }
  }
  return info;
}

// A passphrase prompt means the key is encrypted: refuse rather than block on a terminal.
int refuse_passphrase(char*, int, int, void* asked) {
  *static_cast<bool*>(asked) = true;
  return -1;
}

// Loads `files` into `ctx` (full chain, matching key) and describes the leaf.
Result<CertificateInfo> use_certificate(SSL_CTX* ctx, const config::CertificateFiles& files,
                                        const std::string& where) {
  ERR_clear_error();
  if (SSL_CTX_use_certificate_chain_file(ctx, files.cert.c_str()) != 1) {
    return file_error(where + ".cert", files.cert, "cannot load the certificate chain: " + openssl_errors());
  }
  BIO* bio = BIO_new_file(files.key.c_str(), "r");
  if (!bio) return file_error(where + ".key", files.key, "cannot read: " + openssl_errors());
  bool asked = false;
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, refuse_passphrase, &asked);
  BIO_free(bio);
  if (!key) {
    ERR_clear_error();
    return file_error(where + ".key", files.key,
                      asked ? "the key is protected by a passphrase, which is not supported "
                              "(decrypt it with `openssl pkey -in KEY -out PLAIN`)"
                            : "not a PEM private key");
  }
  const int used = SSL_CTX_use_PrivateKey(ctx, key);
  if (used != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    ERR_clear_error();
    EVP_PKEY_free(key);
    return file_error(where + ".key", files.key, "the key does not match the certificate " + files.cert);
  }
  CertificateInfo info = describe(SSL_CTX_get0_certificate(ctx), key);
  EVP_PKEY_free(key);
  info.cert_path = files.cert;
  info.key_path = files.key;
  return info;
}

void warn_if_expiring(const CertificateInfo& info, const std::string& where) {
  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch()).count();
  const int64_t left = info.not_after - now;
  if (left <= 0) {
    log::warn("{}: certificate {} (serial {}) has expired", where, info.cert_path, info.serial);
  } else if (left < 14 * 24 * 3600) {
    log::warn("{}: certificate {} (serial {}) expires in {} day(s)", where, info.cert_path, info.serial,
              left / (24 * 3600));
  }
}

// A trust store from a PEM CA bundle, with CRLs checked for the leaf when `crl` is given.
Result<X509_STORE*> load_store(const std::string& ca, const std::string& crl, const std::string& where) {
  X509_STORE* store = X509_STORE_new();
  if (!store) return Error{where + ": out of memory"};
  ERR_clear_error();
  if (X509_STORE_load_file(store, ca.c_str()) != 1) {
    X509_STORE_free(store);
    return file_error(where + ".ca", ca, "cannot load the CA bundle: " + openssl_errors());
  }
  bool has_ca = false;
  STACK_OF(X509_OBJECT)* objects = X509_STORE_get0_objects(store);
  for (int i = 0; i < sk_X509_OBJECT_num(objects); ++i) {
    has_ca |= X509_OBJECT_get_type(sk_X509_OBJECT_value(objects, i)) == X509_LU_X509;
  }
  if (!has_ca) {
    X509_STORE_free(store);
    return file_error(where + ".ca", ca, "holds no certificate");
  }
  if (!crl.empty()) {
    X509_CRL* first = nullptr;
    if (BIO* bio = BIO_new_file(crl.c_str(), "r")) {
      first = PEM_read_bio_X509_CRL(bio, nullptr, nullptr, nullptr);
      BIO_free(bio);
    }
    if (!first) {
      ERR_clear_error();
      X509_STORE_free(store);
      return file_error(where + ".crl", crl, "not a PEM certificate revocation list");
    }
    X509_CRL_free(first);
    if (X509_STORE_load_file(store, crl.c_str()) != 1) {
      X509_STORE_free(store);
      return file_error(where + ".crl", crl, "cannot load: " + openssl_errors());
    }
    X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
  }
  return store;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

TlsServerContext::~TlsServerContext() = default;

Result<std::shared_ptr<const TlsServerContext>> TlsServerContext::create(const config::ListenerTls& spec,
                                                                         const std::string& where) {
  std::shared_ptr<TlsServerContext> self(new TlsServerContext());
  self->spec_ = spec;
  for (const auto& p : spec.alpn) {
    self->alpn_wire_.push_back(static_cast<char>(p.size()));
    self->alpn_wire_ += p;
  }
  // The session id context ties a session to this listener's verification settings: a ticket
  // from another listener (or before a CA change) never resumes here.
  const std::string sid_seed = "sluice:" + where + ":" +
                               (spec.client_certificate ? spec.client_certificate->ca + ":" +
                                                              spec.client_certificate->crl
                                                        : std::string());
  unsigned char sid[32];
  unsigned int sid_len = 0;
  EVP_Digest(sid_seed.data(), sid_seed.size(), sid, &sid_len, EVP_sha256(), nullptr);

  for (size_t i = 0; i < spec.certificates.size(); ++i) {
    const std::string cwhere = where + ".certificates[" + std::to_string(i) + "]";
    SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
    if (!ctx) return Error{cwhere + ": cannot create a TLS context: " + openssl_errors()};
    SSL_CTX* c = ctx.get();
    SSL_CTX_set_min_proto_version(c, spec.min_version == config::TlsVersion::kTls13 ? TLS1_3_VERSION
                                                                                  : TLS1_2_VERSION);
    SSL_CTX_set_options(c, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                               SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_IGNORE_UNEXPECTED_EOF);
    // RELEASE_BUFFERS: an idle connection gives its 34 KiB of record buffers back (nginx does
    // the same); the partial-write modes let a gather write resume where the socket stopped.
    SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                            SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    // Read whole socket contents into the record buffer: one read(2) per request instead of two
    // (a record's 5-byte header, then its body: strace of keep-alive GETs over TLS). Safe here
    // because every read calls SSL_read before waiting on the socket.
    SSL_CTX_set_read_ahead(c, 1);
    if (SSL_CTX_set_cipher_list(c, kTls12Ciphers) != 1 || SSL_CTX_set_ciphersuites(c, kTls13Suites) != 1 ||
        SSL_CTX_set1_groups_list(c, kGroups) != 1) {
      return Error{cwhere + ": the TLS policy was refused by OpenSSL: " + openssl_errors()};
    }
    // Stateless tickets only: no server-side cache to share (or lock) between workers.
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_timeout(c, kSessionLifetimeSeconds);
    SSL_CTX_set_tlsext_ticket_key_evp_cb(c, on_ticket_key);
    SSL_CTX_set_session_id_context(c, sid, sid_len);
    SSL_CTX_set_tlsext_servername_callback(c, on_server_name);
    SSL_CTX_set_tlsext_servername_arg(c, self.get());
    if (!self->alpn_wire_.empty()) SSL_CTX_set_alpn_select_cb(c, on_alpn, self.get());

    if (spec.client_certificate) {
      const auto& cc = *spec.client_certificate;
      const std::string mwhere = where + ".client_certificate";
      auto store = load_store(cc.ca, cc.crl, mwhere);
      if (!store) return store.error();
      SSL_CTX_set1_cert_store(c, *store);
      X509_STORE_free(*store);  // the context holds its own reference
      STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(cc.ca.c_str());
      if (names) SSL_CTX_set_client_CA_list(c, names);  // takes ownership
      ERR_clear_error();
      int mode = SSL_VERIFY_PEER;
      if (cc.mode == config::ClientCertificate::Mode::kRequired) mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
      SSL_CTX_set_verify(c, mode, nullptr);
      SSL_CTX_set_verify_depth(c, kVerifyDepth);
    }

    auto info = use_certificate(c, spec.certificates[i], cwhere);
    if (!info) return info.error();
    for (const auto& name : info->names) {
      if (name.rfind("*.", 0) == 0) {
        self->wildcard_names_.emplace(name.substr(2), i);  // the first certificate keeps a name
      } else {
        self->exact_names_.emplace(name, i);
      }
    }
    warn_if_expiring(*info, cwhere);
    self->infos_.push_back(std::move(*info));
    self->contexts_.push_back(std::move(ctx));
  }
  if (self->contexts_.empty()) return Error{where + ".certificates: needs at least one certificate"};
  return std::shared_ptr<const TlsServerContext>(std::move(self));
}

SslPtr TlsServerContext::new_ssl() const {
  SslPtr ssl(SSL_new(contexts_.front().get()));
  if (ssl) SSL_set_accept_state(ssl.get());
  return ssl;
}

size_t TlsServerContext::select(std::string_view server_name) const {
  if (server_name.empty()) return 0;
  std::string name = lower(std::string(server_name));
  if (auto it = exact_names_.find(name); it != exact_names_.end()) return it->second;
  // A wildcard covers exactly one label ("*.example.com" matches "a.example.com" only).
  if (auto dot = name.find('.'); dot != std::string::npos) {
    if (auto it = wildcard_names_.find(name.substr(dot + 1)); it != wildcard_names_.end()) return it->second;
  }
  return 0;
}

int TlsServerContext::on_server_name(SSL* ssl, int*, void* arg) {
  const auto* self = static_cast<const TlsServerContext*>(arg);
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (!name) return SSL_TLSEXT_ERR_OK;  // no SNI: the first certificate
  SSL_CTX* chosen = self->contexts_[self->select(name)].get();
  if (chosen != SSL_get_SSL_CTX(ssl)) SSL_set_SSL_CTX(ssl, chosen);
  return SSL_TLSEXT_ERR_OK;
}

int TlsServerContext::on_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                              unsigned int inlen, void* arg) {
  const auto* self = static_cast<const TlsServerContext*>(arg);
  unsigned char* chosen = nullptr;
  const int r = SSL_select_next_proto(&chosen, outlen, reinterpret_cast<const unsigned char*>(self->alpn_wire_.data()),
                                      static_cast<unsigned int>(self->alpn_wire_.size()), in, inlen);
  if (r != OPENSSL_NPN_NEGOTIATED) {
    // RFC 7301 §3.2: a client that offers only protocols this listener does not speak gets a
    // no_application_protocol alert rather than a connection in a protocol it did not ask for
    // (nginx does the same since 1.21.4).
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  *out = chosen;
  return SSL_TLSEXT_ERR_OK;
}

std::vector<std::string> TlsServerContext::files() const {
  std::vector<std::string> out;
  for (const auto& c : spec_.certificates) {
    out.push_back(c.cert);
    out.push_back(c.key);
  }
  if (spec_.client_certificate) {
    out.push_back(spec_.client_certificate->ca);
    if (!spec_.client_certificate->crl.empty()) out.push_back(spec_.client_certificate->crl);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

Result<std::shared_ptr<const TlsClientContext>> TlsClientContext::create(const config::ClusterTls& spec,
                                                                         const std::string& where,
                                                                         const std::vector<std::string>& alpn) {
  std::shared_ptr<TlsClientContext> self(new TlsClientContext());
  self->spec_ = spec;
  self->ctx_.reset(SSL_CTX_new(TLS_client_method()));
  SSL_CTX* c = self->ctx_.get();
  if (!c) return Error{where + ": cannot create a TLS context: " + openssl_errors()};
  SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
  SSL_CTX_set_options(c, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
  SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                          SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_read_ahead(c, 1);  // as on the server side
  if (SSL_CTX_set_cipher_list(c, kTls12Ciphers) != 1 || SSL_CTX_set_ciphersuites(c, kTls13Suites) != 1 ||
      SSL_CTX_set1_groups_list(c, kGroups) != 1) {
    return Error{where + ": the TLS policy was refused by OpenSSL: " + openssl_errors()};
  }
  if (!alpn.empty()) {
    std::string wire;
    for (const auto& p : alpn) {
      wire.push_back(static_cast<char>(p.size()));
      wire += p;
    }
    // Returns 0 on success (unlike most of OpenSSL).
    if (SSL_CTX_set_alpn_protos(c, reinterpret_cast<const unsigned char*>(wire.data()),
                                static_cast<unsigned int>(wire.size())) != 0) {
      return Error{where + ": cannot set the ALPN list: " + openssl_errors()};
    }
  }
  // Sessions are kept by each endpoint's pool (no shared cache to lock).
  SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  if (spec.verify) {
    ERR_clear_error();
    if (!spec.ca.empty()) {
      if (SSL_CTX_load_verify_file(c, spec.ca.c_str()) != 1) {
        return file_error(where + ".ca", spec.ca, "cannot load the CA bundle: " + openssl_errors());
      }
    } else if (SSL_CTX_set_default_verify_paths(c) != 1) {
      return Error{where + ".ca: the system trust store cannot be loaded: " + openssl_errors()};
    }
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);
    SSL_CTX_set_verify_depth(c, kVerifyDepth);
  } else {
    SSL_CTX_set_verify(c, SSL_VERIFY_NONE, nullptr);
  }
  if (!spec.cert.empty()) {
    auto info = use_certificate(c, config::CertificateFiles{spec.cert, spec.key}, where);
    if (!info) return info.error();
    warn_if_expiring(*info, where);
    self->client_cert_ = std::move(*info);
  }
  return std::shared_ptr<const TlsClientContext>(std::move(self));
}

SslPtr TlsClientContext::new_ssl(const std::string& host, SSL_SESSION* session) const {
  SslPtr ssl(SSL_new(ctx_.get()));
  if (!ssl) return ssl;
  SSL* s = ssl.get();
  SSL_set_connect_state(s);
  unsigned char ip[16];
  const bool host_is_ip = inet_pton(AF_INET, host.c_str(), ip) == 1 || inet_pton(AF_INET6, host.c_str(), ip) == 1;
  const std::string& sni = !spec_.sni.empty() ? spec_.sni : host;
  // RFC 6066: SNI carries host names only, never an address.
  if (!spec_.sni.empty() || !host_is_ip) SSL_set_tlsext_host_name(s, sni.c_str());
  if (spec_.verify) {
    if (!spec_.sni.empty() || !host_is_ip) {
      SSL_set1_host(s, sni.c_str());
    } else {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s), host.c_str());
    }
  }
  if (session) SSL_set_session(s, session);
  return ssl;
}

std::vector<std::string> TlsClientContext::files() const {
  std::vector<std::string> out;
  if (!spec_.ca.empty()) out.push_back(spec_.ca);
  if (!spec_.cert.empty()) {
    out.push_back(spec_.cert);
    out.push_back(spec_.key);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

Result<std::shared_ptr<const TlsMaterial>> TlsMaterial::load(const config::Config& config) {
  auto material = std::make_shared<TlsMaterial>();
  const std::string prefix = config.source_path.empty() ? std::string() : config.source_path + ": ";
  for (size_t i = 0; i < config.listeners.size(); ++i) {
    std::shared_ptr<const TlsServerContext> ctx;
    if (const auto& tls = config.listeners[i].tls) {
      auto made = TlsServerContext::create(*tls, "listeners[" + std::to_string(i) + "].tls");
      if (!made) return Error{prefix + made.error().message};
      ctx = std::move(*made);
    }
    material->listeners.push_back(std::move(ctx));
  }
  for (size_t i = 0; i < config.clusters.size(); ++i) {
    std::shared_ptr<const TlsClientContext> ctx;
    if (const auto& tls = config.clusters[i].tls) {
      // An HTTP/2 cluster offers h2 only over TLS: a backend that picks nothing fails the
      // connect (router_step.cc), never falls back to HTTP/1.1 on an h2 session.
      std::vector<std::string> alpn;
      if (config.clusters[i].protocol == config::Cluster::Protocol::kHttp2) alpn.push_back("h2");
      auto made = TlsClientContext::create(*tls, "clusters[" + std::to_string(i) + "].tls", alpn);
      if (!made) return Error{prefix + made.error().message};
      ctx = std::move(*made);
    }
    material->clusters.push_back(std::move(ctx));
  }
  return std::shared_ptr<const TlsMaterial>(std::move(material));
}

std::vector<std::string> TlsMaterial::files() const {
  std::vector<std::string> out;
  for (const auto& l : listeners) {
    if (l) for (auto& f : l->files()) out.push_back(std::move(f));
  }
  for (const auto& c : clusters) {
    if (c) for (auto& f : c->files()) out.push_back(std::move(f));
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

Result<CertificateInfo> read_certificate_info(const std::string& path) {
  BIO* bio = BIO_new_file(path.c_str(), "r");
  if (!bio) return Error{path + ": cannot read"};
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (!cert) {
    ERR_clear_error();
    return Error{path + ": not a PEM certificate"};
  }
  CertificateInfo info = describe(cert, X509_get0_pubkey(cert));
  X509_free(cert);
  info.cert_path = path;
  return info;
}

}  // namespace sluice::net
