#pragma once
// The test PKI of tests/e2e/pki.py for integration tests: this runs that script (the one source
// of truth for test certificates) into a fresh temp dir and reads the paths it prints. Keys are
// made at test time with the openssl CLI; nothing private is committed.
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace sluice::testing {

struct CertAndKey {
  std::string cert;
  std::string key;
};

class TestPki {
 public:
  // Makes every artefact tests/e2e/pki.py lists (root and wrong CA, app_rsa, api_ecdsa,
  // localhost, expired, alice, bob, carol (revoked in crl), mallory, encrypted_key); records a
  // test failure (naming what openssl or python3 said) and returns null on any error.
  static std::unique_ptr<TestPki> create();
  // Removes the temp dir.
  ~TestPki();
  TestPki(const TestPki&) = delete;
  TestPki& operator=(const TestPki&) = delete;

  const std::string& dir() const { return dir_; }
  // The path (or, for "encrypted_key_passphrase", the value) pki.py prints under `name`, e.g.
  // "ca_cert", "app_rsa_key", "crl"; records a test failure and returns "" for an unknown name.
  const std::string& path(const std::string& name) const;
  CertAndKey cert_and_key(const std::string& name) const {
    return {path(name + "_cert"), path(name + "_key")};
  }
  // A new key and certificate for the names of server `name` ("app_rsa", ...), with a new
  // serial, as dir()/stem.{pem,key}: the "renewed certificate" of a rotation test. Records a
  // test failure and returns nothing on error.
  std::optional<CertAndKey> reissue(const std::string& name, const std::string& stem) const;

 private:
  TestPki() = default;
  std::string dir_;
  std::map<std::string, std::string> paths_;
};

}  // namespace sluice::testing
