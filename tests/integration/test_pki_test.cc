// The C++ twin of the e2e test PKI (support/test_pki.h) hands out usable material: every
// certificate loads with its key into an OpenSSL server context, and a reissued certificate is a
// new one for the same names.
#include "support/test_pki.h"

#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <filesystem>
#include <memory>
#include <string>

namespace sluice::testing {
namespace {

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};

std::unique_ptr<X509, X509Free> read_cert(const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(fopen(path.c_str(), "r"), fclose);
  if (!f) return {nullptr, X509Free()};
  return std::unique_ptr<X509, X509Free>(PEM_read_X509(f.get(), nullptr, nullptr, nullptr));
}

// True if `cert` and `key` load into an OpenSSL context and belong together.
bool loads_with_its_key(const CertAndKey& ck) {
  std::unique_ptr<SSL_CTX, void (*)(SSL_CTX*)> ctx(SSL_CTX_new(TLS_server_method()), SSL_CTX_free);
  return ctx && SSL_CTX_use_certificate_chain_file(ctx.get(), ck.cert.c_str()) == 1 &&
         SSL_CTX_use_PrivateKey_file(ctx.get(), ck.key.c_str(), SSL_FILETYPE_PEM) == 1 &&
         SSL_CTX_check_private_key(ctx.get()) == 1;
}

TEST(TestPki, CertificatesLoadWithTheirKeysAndReissueGivesANewSerial) {
  auto pki = TestPki::create();
  ASSERT_NE(pki, nullptr);
  for (const char* name :
       {"app_rsa", "api_ecdsa", "localhost", "expired", "alice", "bob", "carol", "mallory"}) {
    EXPECT_TRUE(loads_with_its_key(pki->cert_and_key(name))) << name;
  }
  EXPECT_TRUE(std::filesystem::is_regular_file(pki->path("ca_cert")));
  EXPECT_TRUE(std::filesystem::is_regular_file(pki->path("crl")));
  EXPECT_FALSE(pki->path("encrypted_key_passphrase").empty());

  auto renewed = pki->reissue("app_rsa", "app_rsa_renewed");
  ASSERT_TRUE(renewed.has_value());
  EXPECT_TRUE(loads_with_its_key(*renewed));
  auto old_cert = read_cert(pki->path("app_rsa_cert"));
  auto new_cert = read_cert(renewed->cert);
  ASSERT_TRUE(old_cert && new_cert);
  EXPECT_NE(ASN1_INTEGER_cmp(X509_get0_serialNumber(old_cert.get()),
                             X509_get0_serialNumber(new_cert.get())),
            0);
  EXPECT_EQ(
      X509_NAME_cmp(X509_get_subject_name(old_cert.get()), X509_get_subject_name(new_cert.get())),
      0);

  const std::string dir = pki->dir();
  pki.reset();
  EXPECT_FALSE(std::filesystem::exists(dir));  // nothing private left behind
}

}  // namespace
}  // namespace sluice::testing
