// Fuzzes the server side of a TLS handshake up to the ServerHello: arbitrary bytes (a client's
// first flight: ClientHello records) are fed to a server SSL made by net::TlsServerContext
// through memory BIOs, so OpenSSL's ClientHello parsing and Sluice's SNI and ALPN callbacks run
// without a socket or a full handshake.
//
// The context has two ECDSA certificates made in-process at start (no key is committed):
// "default.example.test" (the first, the default) and "app.example.test" with
// "*.app.example.test", and offers ALPN http/1.1. Invariants once the server answered with a
// handshake record (it accepted the ClientHello):
//   - the certificate in use is the one TlsServerContext::select() picks for the SNI the client
//     sent (the default without SNI);
//   - an ALPN protocol, if one was selected, is http/1.1.
#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>

#include "fuzz_check.h"
#include "sluice/net/tls_context.h"

namespace sluice::fuzz {
namespace {

// Writes a self-signed ECDSA P-256 certificate for `names` (DNS SANs) and its key to
// dir/stem.{pem,key}; aborts on any OpenSSL failure (the harness cannot run without them).
config::CertificateFiles make_certificate(const std::string& dir, const std::string& stem,
                                          const std::string& cn, const std::string& sans,
                                          long serial) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* cert = X509_new();
  FUZZ_CHECK(key && cert, "key and certificate allocated");
  ASN1_INTEGER_set(X509_get_serialNumber(cert), serial);
  X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600L * 24 * 365);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()),
                             -1, -1, 0);
  X509_set_issuer_name(cert, name);
  X509_set_pubkey(cert, key);
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, cert, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, NID_subject_alt_name, sans.c_str());
  FUZZ_CHECK(ext != nullptr, "SAN extension built");
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  FUZZ_CHECK(X509_sign(cert, key, EVP_sha256()) > 0, "certificate signed");

  config::CertificateFiles files{dir + "/" + stem + ".pem", dir + "/" + stem + ".key"};
  FILE* f = std::fopen(files.cert.c_str(), "w");
  FUZZ_CHECK(f && PEM_write_X509(f, cert) == 1, "certificate written");
  std::fclose(f);
  f = std::fopen(files.key.c_str(), "w");
  FUZZ_CHECK(f && PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr) == 1,
             "key written");
  std::fclose(f);
  X509_free(cert);
  EVP_PKEY_free(key);
  return files;
}

std::shared_ptr<const net::TlsServerContext> make_context() {
  char tmpl[] = "/tmp/sluice-tls-fuzz-XXXXXX";
  const char* dir = mkdtemp(tmpl);
  FUZZ_CHECK(dir != nullptr, "temp dir created");
  config::ListenerTls spec;
  spec.certificates.push_back(
      make_certificate(dir, "default", "default.example.test", "DNS:default.example.test", 1));
  spec.certificates.push_back(make_certificate(dir, "app", "app.example.test",
                                               "DNS:app.example.test,DNS:*.app.example.test", 2));
  auto made = net::TlsServerContext::create(spec, "listeners[0].tls");
  if (!made) {
    std::fprintf(stderr, "TlsServerContext::create: %s\n", made.error().message.c_str());
    std::abort();
  }
  // The context has loaded the files; they are not needed any more.
  std::filesystem::remove_all(dir);
  return *made;
}

long serial_of(X509* cert) {
  return cert ? ASN1_INTEGER_get(X509_get0_serialNumber(cert)) : -1;
}

}  // namespace
}  // namespace sluice::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sluice;
  static const std::shared_ptr<const net::TlsServerContext> context = fuzz::make_context();

  net::SslPtr ssl = context->new_ssl();
  FUZZ_CHECK(ssl != nullptr, "SSL created");
  BIO* in = BIO_new_mem_buf(data, static_cast<int>(size));
  BIO* out = BIO_new(BIO_s_mem());
  FUZZ_CHECK(in && out, "BIOs created");
  BIO_set_mem_eof_return(in, -1);  // the end of the input is "no more data yet", not EOF
  SSL_set_bio(ssl.get(), in, out);  // the SSL owns both
  // A few steps: each consumes what it can (a ClientHello split over records, a
  // HelloRetryRequest answered by a second ClientHello in the input).
  for (int i = 0; i < 4; ++i) {
    const int ret = SSL_do_handshake(ssl.get());
    if (ret == 1) break;
    const int err = SSL_get_error(ssl.get(), ret);
    if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) break;
  }
  ERR_clear_error();

  // The server's first byte: 0x16 = a handshake record (a ServerHello or HelloRetryRequest),
  // 0x15 = an alert, nothing = it wants more input.
  char* written = nullptr;
  const long written_len = BIO_get_mem_data(out, &written);
  if (written_len > 0 && written[0] == 0x16) {
    const char* sni = SSL_get_servername(ssl.get(), TLSEXT_NAMETYPE_host_name);
    const size_t chosen = context->select(sni ? sni : "");
    const long want = chosen == 0 ? 1 : 2;
    FUZZ_CHECK(fuzz::serial_of(SSL_get_certificate(ssl.get())) == want,
               "the certificate in use is the one select() picks for the SNI");
    const unsigned char* alpn = nullptr;
    unsigned int alpn_len = 0;
    SSL_get0_alpn_selected(ssl.get(), &alpn, &alpn_len);
    FUZZ_CHECK(alpn_len == 0 || (alpn_len == 8 && std::memcmp(alpn, "http/1.1", 8) == 0),
               "ALPN selects http/1.1 or nothing");
    // SLUICE_FUZZ_VERBOSE=1: what each seed reached, to see that the corpus exercises the checks.
    static const bool verbose = std::getenv("SLUICE_FUZZ_VERBOSE") != nullptr;
    if (verbose) {
      std::fprintf(stderr, "  answered: sni=%s certificate=%zu alpn=%.*s\n", sni ? sni : "(none)",
                   chosen, static_cast<int>(alpn_len), alpn ? reinterpret_cast<const char*>(alpn) : "");
    }
  }
  return 0;
}
