#include "sluice/accesslog/format.h"

#include <gtest/gtest.h>

#include "sluice/net/stream.h"

namespace sluice::accesslog {
namespace {

Entry sample() {
  Entry e;
  // 2026-11-22T10:45:41.399Z
  e.start = std::chrono::system_clock::time_point(std::chrono::milliseconds(1795344341399LL));
  e.request_id = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9";
  e.client_address = "127.0.0.1";
  e.method = "GET";
  e.authority = "app.example.com";
  e.path = "/api/x?y=1";
  e.protocol = "HTTP/1.1";
  e.status = 200;
  e.received_bytes = 5;
  e.sent_bytes = 1234;
  e.duration_ms = 3.25;
  e.upstream_endpoint = "127.0.0.1:8080";
  e.upstream_ms = 2.5;
  e.route = "api";
  e.cluster = "jetty";
  e.flags = "-";
  return e;
}

TEST(AccessLogFormat, Rfc3339WithMilliseconds) {
  EXPECT_EQ(rfc3339_ms(sample().start), "2026-11-22T10:45:41.399Z");
}

TEST(AccessLogFormat, JsonLineHasEveryField) {
  std::string out;
  append_json(out, sample());
  EXPECT_EQ(out,
            "{\"start_time\":\"2026-11-22T10:45:41.399Z\",\"request_id\":\"0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9\","
            "\"client_address\":\"127.0.0.1\",\"method\":\"GET\",\"authority\":\"app.example.com\","
            "\"path\":\"/api/x?y=1\",\"protocol\":\"HTTP/1.1\",\"status\":200,\"bytes_received\":5,"
            "\"bytes_sent\":1234,\"duration_ms\":3.250,\"upstream\":\"127.0.0.1:8080\","
            "\"upstream_time_ms\":2.500,\"route\":\"api\",\"cluster\":\"jetty\",\"flags\":\"-\"}\n");
}

// A gRPC exchange's line carries its grpc-status as a number after `flags` (and before the TLS
// fields); other lines have no `grpc_status` key at all (JsonLineHasEveryField above).
TEST(AccessLogFormat, JsonLineOfAGrpcExchangeHasItsStatus) {
  Entry e = sample();
  e.status = 200;
  e.flags = "NR";
  e.grpc_status = 12;
  std::string out;
  append_json(out, e);
  EXPECT_NE(out.find(",\"flags\":\"NR\",\"grpc_status\":12}\n"), std::string::npos) << out;
  net::TlsInfo tls;
  tls.version = "TLSv1.3";
  e.tls = &tls;
  e.grpc_status = 0;
  out.clear();
  append_json(out, e);
  EXPECT_NE(out.find(",\"grpc_status\":0,\"tls_version\":\"TLSv1.3\""), std::string::npos) << out;
}

TEST(AccessLogFormat, JsonLineOfATlsConnectionEndsWithItsFields) {
  net::TlsInfo tls;
  tls.version = "TLSv1.3";
  tls.cipher = "TLS_AES_128_GCM_SHA256";
  Entry e = sample();
  e.tls = &tls;
  std::string out;
  append_json(out, e);
  // No SNI, no client certificate: null.
  EXPECT_NE(out.find("\"flags\":\"-\",\"tls_version\":\"TLSv1.3\",\"tls_cipher\":"
                     "\"TLS_AES_128_GCM_SHA256\",\"sni\":null,\"peer_subject\":null,"
                     "\"peer_uri_san\":null}\n"),
            std::string::npos)
      << out;

  tls.sni = "app.example.test";
  tls.peer_certificate = true;
  tls.peer_subject = "CN=a\\\"b,O=corp";
  tls.peer_uri_sans = {"spiffe://corp/ns/prod/sa/alice", "urn:x"};
  out.clear();
  append_json(out, e);
  EXPECT_NE(out.find("\"sni\":\"app.example.test\",\"peer_subject\":\"CN=a\\\\\\\"b,O=corp\","
                     "\"peer_uri_san\":\"spiffe://corp/ns/prod/sa/alice,urn:x\"}\n"),
            std::string::npos)
      << out;

  // A certificate without URI SANs.
  tls.peer_uri_sans.clear();
  out.clear();
  append_json(out, e);
  EXPECT_NE(out.find("\"peer_uri_san\":null}\n"), std::string::npos) << out;

  // The text format is unchanged by TLS.
  std::string text, plain_text;
  append_text(text, e);
  e.tls = nullptr;
  append_text(plain_text, e);
  EXPECT_EQ(text, plain_text);
}

TEST(AccessLogFormat, JsonUsesNullWithoutUpstreamAndEscapesInput) {
  Entry e = sample();
  e.upstream_endpoint = {};
  e.upstream_ms.reset();
  e.cluster = {};
  e.route = "-";
  e.status = 404;
  e.flags = "NR";
  e.path = "/a\"b\n";
  std::string out;
  append_json(out, e);
  EXPECT_NE(out.find("\"path\":\"/a\\\"b\\n\""), std::string::npos) << out;
  EXPECT_NE(out.find("\"upstream\":null,\"upstream_time_ms\":null,\"route\":\"-\",\"cluster\":null,\"flags\":\"NR\"}"),
            std::string::npos)
      << out;
  EXPECT_EQ(out.back(), '\n');
  EXPECT_EQ(out.find('\n'), out.size() - 1);  // one line, whatever the input held
}

TEST(AccessLogFormat, TextLineColumnsAndNoForgedLines) {
  Entry e = sample();
  std::string out;
  append_text(out, e);
  EXPECT_EQ(out,
            "2026-11-22T10:45:41.399Z 127.0.0.1 \"GET /api/x?y=1 HTTP/1.1\" 200 - 5 1234 3.250 2.500 "
            "api jetty 127.0.0.1:8080 \"app.example.com\" 0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9\n");
  e.path = "/x\nforged";
  out.clear();
  append_text(out, e);
  EXPECT_EQ(out.find('\n'), out.size() - 1) << out;
}

}  // namespace
}  // namespace sluice::accesslog
