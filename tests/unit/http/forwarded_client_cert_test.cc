#include "sluice/http/forwarded_client_cert.h"

#include <gtest/gtest.h>

#include <string>

#include "sluice/net/stream.h"

namespace sluice::http {
namespace {

using config::ForwardClientCert;

net::TlsInfo alice() {
  net::TlsInfo t;
  t.version = "TLSv1.3";
  t.peer_certificate = true;
  t.peer_subject = "CN=alice,O=corp";
  t.peer_uri_sans = {"spiffe://corp/ns/prod/sa/alice"};
  t.peer_cert_sha256 = "2bd806c97f0e00af1a1fc3328fa763a9269723c8db8fac4f93af71db186d6e90";
  return t;
}

std::string element(const net::TlsInfo& t) {
  std::string out;
  append_client_cert_element(t, out);
  return out;
}

TEST(ClientCertHeaderDecision, OnlyAnMtlsConnectionKeepsOrGetsTheHeader) {
  const net::TlsInfo mtls = alice();
  net::TlsInfo no_cert;  // TLS, the client sent no certificate (mode: optional)
  no_cert.version = "TLSv1.3";
  for (auto mode : {ForwardClientCert::kSanitize, ForwardClientCert::kForward,
                    ForwardClientCert::kAppend, ForwardClientCert::kSanitizeSet}) {
    EXPECT_EQ(client_cert_header(mode, nullptr), ClientCertHeader::kRemove);
    EXPECT_EQ(client_cert_header(mode, &no_cert), ClientCertHeader::kRemove);
  }
  EXPECT_EQ(client_cert_header(ForwardClientCert::kSanitize, &mtls), ClientCertHeader::kRemove);
  EXPECT_EQ(client_cert_header(ForwardClientCert::kForward, &mtls), ClientCertHeader::kForward);
  EXPECT_EQ(client_cert_header(ForwardClientCert::kAppend, &mtls), ClientCertHeader::kAppend);
  EXPECT_EQ(client_cert_header(ForwardClientCert::kSanitizeSet, &mtls), ClientCertHeader::kSet);
}

TEST(ClientCertElement, EnvoysOrderHashSubjectUriDns) {
  net::TlsInfo t = alice();
  EXPECT_EQ(element(t),
            "Hash=2bd806c97f0e00af1a1fc3328fa763a9269723c8db8fac4f93af71db186d6e90;"
            "Subject=\"CN=alice,O=corp\";URI=spiffe://corp/ns/prod/sa/alice");
  t.peer_uri_sans.push_back("spiffe://corp/other");
  t.peer_dns_sans = {"alice.clients.test", "a.clients.test"};
  EXPECT_EQ(element(t),
            "Hash=2bd806c97f0e00af1a1fc3328fa763a9269723c8db8fac4f93af71db186d6e90;"
            "Subject=\"CN=alice,O=corp\";URI=spiffe://corp/ns/prod/sa/alice;"
            "URI=spiffe://corp/other;DNS=alice.clients.test;DNS=a.clients.test");
}

TEST(ClientCertElement, AnEmptyUriWhenTheCertificateHasNoUriSan) {
  net::TlsInfo bob;
  bob.peer_certificate = true;
  bob.peer_subject = "CN=bob,O=corp";
  bob.peer_dns_sans = {"bob.clients.test"};
  bob.peer_cert_sha256 = "ff";
  EXPECT_EQ(element(bob), "Hash=ff;Subject=\"CN=bob,O=corp\";URI=;DNS=bob.clients.test");
}

TEST(ClientCertElement, QuotesAndBackslashesAreEscaped) {
  net::TlsInfo t = alice();
  t.peer_cert_sha256 = "00";
  // OpenSSL's RFC 2253 form escapes '"' and ',' with '\'; XFCC escapes both '\' and '"' again.
  t.peer_subject = "CN=a\\\"b\\,c,O=corp";
  t.peer_uri_sans = {"urn:x;y=1,z", "urn:\"q\""};
  t.peer_dns_sans = {"plain.test"};
  EXPECT_EQ(element(t),
            "Hash=00;Subject=\"CN=a\\\\\\\"b\\\\,c,O=corp\";URI=\"urn:x;y=1,z\";"
            "URI=\"urn:\\\"q\\\"\";DNS=plain.test");
}

TEST(ClientCertElement, AppendsToWhatIsThere) {
  std::string out = "prefix,";
  append_client_cert_element(alice(), out);
  EXPECT_EQ(out.rfind("prefix,Hash=2bd8", 0), 0u);
}

}  // namespace
}  // namespace sluice::http
