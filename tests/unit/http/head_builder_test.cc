#include "sluice/http/head_builder.h"

#include <gtest/gtest.h>

#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "sluice/http/parser.h"
#include "sluice/http/status.h"

namespace sluice::http {
namespace {

using namespace std::string_literals;

// A received head parsed by the real parser, so that every HeaderView points into a buffer that
// ends with CRLFCRLF (the builder looks at the bytes after a value).
class ParsedHead {
 public:
  ParsedHead(std::string raw, Parser::Kind kind) : raw_(std::move(raw)), parser_(kind, 100) {
    auto st = parser_.execute(raw_.data(), 0, raw_.size());
    EXPECT_FALSE(st.error) << st.reason;
    EXPECT_TRUE(st.headers_complete);
    EXPECT_EQ(st.consumed, raw_.size());
    for (const auto& h : parser_.headers()) {
      headers_.push_back({h.name.in(raw_.data()), h.value.in(raw_.data())});
    }
  }
  std::span<const HeaderView> headers() const { return headers_; }
  const std::string& raw() const { return raw_; }

 private:
  std::string raw_;
  Parser parser_;
  std::vector<HeaderView> headers_;
};

ParsedHead request(const std::string& header_lines) {
  return ParsedHead("GET /api/foo?a=1 HTTP/1.1\r\n" + header_lines + "\r\n",
                    Parser::Kind::kRequest);
}

ParsedHead response(const std::string& header_lines) {
  return ParsedHead("HTTP/1.1 200 OK\r\n" + header_lines + "\r\n", Parser::Kind::kResponse);
}

UpstreamRequestInput upstream_input(const ParsedHead& head) {
  UpstreamRequestInput in;
  in.method = "GET";
  in.path = "/v1/foo";
  in.query = "a=1";
  in.host = "backend:8080";
  in.original_host = "app.example.com";
  in.client_address = "10.0.0.7";
  in.forwarded_proto = "http";
  in.headers = head.headers();
  return in;
}

std::string build_upstream(const UpstreamRequestInput& in) {
  HeadParts out;
  build_upstream_request_head(in, out);
  return out.flatten();
}

std::string build_downstream(const DownstreamResponseInput& in) {
  HeadParts out;
  build_downstream_response_head(in, out);
  return out.flatten();
}

const std::string kForwarded =
    "x-forwarded-for: 10.0.0.7\r\n"
    "x-forwarded-proto: http\r\n"
    "x-forwarded-host: app.example.com\r\n";

// --- request head ----------------------------------------------------------------------------

TEST(UpstreamRequestHead, PlainRequest) {
  auto head = request(
      "Host: app.example.com\r\n"
      "User-Agent: curl/8.1.2\r\n"
      "Accept: */*\r\n");
  EXPECT_EQ(build_upstream(upstream_input(head)),
            "GET /v1/foo?a=1 HTTP/1.1\r\n"
            "host: backend:8080\r\n"
            "User-Agent: curl/8.1.2\r\n"
            "Accept: */*\r\n" +
                kForwarded + "\r\n");
}

TEST(UpstreamRequestHead, NoQueryMeansNoQuestionMark) {
  auto head = request("Host: app.example.com\r\n");
  auto in = upstream_input(head);
  in.query = "";
  in.method = "DELETE";
  in.path = "/items/7";
  EXPECT_EQ(build_upstream(in),
            "DELETE /items/7 HTTP/1.1\r\nhost: backend:8080\r\n" + kForwarded + "\r\n");
}

TEST(UpstreamRequestHead, HopByHopHeadersAreRemoved) {
  auto head = request(
      "Host: app.example.com\r\n"
      "Connection: keep-alive\r\n"
      "Keep-Alive: timeout=5\r\n"
      "Proxy-Connection: keep-alive\r\n"
      "TE: trailers\r\n"
      "Trailer: X-Checksum\r\n"
      "Upgrade: h2c\r\n"
      "Accept: */*\r\n");
  EXPECT_EQ(
      build_upstream(upstream_input(head)),
      "GET /v1/foo?a=1 HTTP/1.1\r\nhost: backend:8080\r\nAccept: */*\r\n" + kForwarded + "\r\n");
}

TEST(UpstreamRequestHead, HeadersNamedByConnectionAreRemoved) {
  auto head = request(
      "Host: app.example.com\r\n"
      "Connection: keep-alive, X-Secret ,\tx-other\r\n"
      "X-Secret: s\r\n"
      "X-Kept: k\r\n"
      "connection: X-Third\r\n"
      "X-OTHER: o\r\n"
      "x-third: t\r\n"
      "X-Secretive: kept\r\n");
  EXPECT_EQ(build_upstream(upstream_input(head)),
            "GET /v1/foo?a=1 HTTP/1.1\r\nhost: backend:8080\r\n"
            "X-Kept: k\r\n"
            "X-Secretive: kept\r\n" +
                kForwarded + "\r\n");
}

// Connection that only says close (or keep-alive) takes the short path in the builder; it must
// remove the same fields as the full check.
TEST(UpstreamRequestHead, ConnectionCloseRemovesAFieldNamedClose) {
  auto head = request(
      "Host: app.example.com\r\n"
      "Connection: Keep-Alive , CLOSE\r\n"
      "Close: c\r\n"
      "X-Kept: k\r\n");
  EXPECT_EQ(build_upstream(upstream_input(head)),
            "GET /v1/foo?a=1 HTTP/1.1\r\nhost: backend:8080\r\nX-Kept: k\r\n" + kForwarded + "\r\n");
}

TEST(UpstreamRequestHead, TransferEncodingReplacedWhenChunked) {
  ParsedHead head(
      "POST /upload HTTP/1.1\r\n"
      "Host: app.example.com\r\n"
      "Transfer-Encoding: chunked\r\n"
      "Content-Type: text/plain\r\n"
      "\r\n",
      Parser::Kind::kRequest);
  auto in = upstream_input(head);
  in.method = "POST";
  in.path = "/upload";
  in.query = "";
  in.chunked_body = true;
  EXPECT_EQ(build_upstream(in),
            "POST /upload HTTP/1.1\r\nhost: backend:8080\r\nContent-Type: text/plain\r\n" +
                kForwarded + "transfer-encoding: chunked\r\n\r\n");
  in.chunked_body = false;
  EXPECT_EQ(build_upstream(in),
            "POST /upload HTTP/1.1\r\nhost: backend:8080\r\nContent-Type: text/plain\r\n" +
                kForwarded + "\r\n");
}

TEST(UpstreamRequestHead, ContentLengthPassesThrough) {
  ParsedHead head("POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n",
                  Parser::Kind::kRequest);
  auto in = upstream_input(head);
  in.method = "POST";
  in.path = "/upload";
  in.query = "";
  EXPECT_EQ(build_upstream(in),
            "POST /upload HTTP/1.1\r\nhost: backend:8080\r\nContent-Length: 11\r\n" + kForwarded +
                "\r\n");
}

TEST(UpstreamRequestHead, HostIsReplacedNotDuplicated) {
  auto head = request("HOST: app.example.com\r\nAccept: */*\r\n");
  auto in = upstream_input(head);
  in.host = "rewritten.internal";
  std::string out = build_upstream(in);
  EXPECT_EQ(out, "GET /v1/foo?a=1 HTTP/1.1\r\nhost: rewritten.internal\r\nAccept: */*\r\n" +
                     kForwarded + "\r\n");
}

TEST(UpstreamRequestHead, ExpectIsDropped) {
  auto head = request("Host: a\r\nExpect: 100-continue\r\nAccept: */*\r\n");
  EXPECT_EQ(
      build_upstream(upstream_input(head)),
      "GET /v1/foo?a=1 HTTP/1.1\r\nhost: backend:8080\r\nAccept: */*\r\n" + kForwarded + "\r\n");
}

TEST(UpstreamRequestHead, ForwardedForIsMergedInOrderThenClientAppended) {
  auto head = request(
      "Host: a\r\n"
      "X-Forwarded-For: 1.1.1.1, 2.2.2.2\r\n"
      "Accept: */*\r\n"
      "x-forwarded-for: 3.3.3.3\r\n");
  EXPECT_EQ(build_upstream(upstream_input(head)),
            "GET /v1/foo?a=1 HTTP/1.1\r\nhost: backend:8080\r\nAccept: */*\r\n"
            "x-forwarded-for: 1.1.1.1, 2.2.2.2, 3.3.3.3, 10.0.0.7\r\n"
            "x-forwarded-proto: http\r\n"
            "x-forwarded-host: app.example.com\r\n"
            "\r\n");
}

TEST(UpstreamRequestHead, ForwardedProtoAndHostAreOverwritten) {
  auto head = request(
      "Host: a\r\n"
      "X-Forwarded-Proto: https\r\n"
      "X-Forwarded-Host: evil.example\r\n"
      "x-forwarded-host: evil2.example\r\n"
      "Accept: */*\r\n");
  std::string out = build_upstream(upstream_input(head));
  EXPECT_EQ(out, "GET /v1/foo?a=1 HTTP/1.1\r\nhost: backend:8080\r\nAccept: */*\r\n" + kForwarded +
                     "\r\n");
  EXPECT_EQ(out.find("evil"), std::string::npos);
}

TEST(UpstreamRequestHead, NoForwardedHostWithoutOriginalHost) {
  auto head = request("Accept: */*\r\nX-Forwarded-Host: evil.example\r\n");
  auto in = upstream_input(head);
  in.original_host = "";
  EXPECT_EQ(build_upstream(in),
            "GET /v1/foo?a=1 HTTP/1.1\r\nhost: backend:8080\r\nAccept: */*\r\n"
            "x-forwarded-for: 10.0.0.7\r\nx-forwarded-proto: http\r\n\r\n");
}

TEST(UpstreamRequestHead, RequestIdOnlyWhenGenerated) {
  auto head = request("Host: a\r\n");
  auto in = upstream_input(head);
  EXPECT_EQ(build_upstream(in).find("x-request-id"), std::string::npos);

  in.generated_request_id = "4b0c8a84-5c1e-4b8e-9d8e-2f1a3c5d7e9f";
  EXPECT_EQ(build_upstream(in), "GET /v1/foo?a=1 HTTP/1.1\r\nhost: backend:8080\r\n" + kForwarded +
                                    "x-request-id: 4b0c8a84-5c1e-4b8e-9d8e-2f1a3c5d7e9f\r\n\r\n");
}

TEST(UpstreamRequestHead, ExistingRequestIdPassesThrough) {
  auto head = request("Host: a\r\nX-Request-Id: client-chosen\r\n");
  EXPECT_EQ(build_upstream(upstream_input(head)),
            "GET /v1/foo?a=1 HTTP/1.1\r\nhost: backend:8080\r\nX-Request-Id: client-chosen\r\n" +
                kForwarded + "\r\n");
}

TEST(UpstreamRequestHead, TraceContextPassesThroughByteExact) {
  const std::string traceparent =
      "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n";
  const std::string tracestate = "tracestate: congo=t61rcWkgMzE,rojo=00f067aa0ba902b7\r\n";
  auto head = request("Host: a\r\n" + traceparent + tracestate + "Accept: */*\r\n");
  std::string out = build_upstream(upstream_input(head));
  EXPECT_EQ(out, "GET /v1/foo?a=1 HTTP/1.1\r\nhost: backend:8080\r\n" + traceparent + tracestate +
                     "Accept: */*\r\n" + kForwarded + "\r\n");
}

TEST(UpstreamRequestHead, EmptyAndPaddedValues) {
  auto head = request("Host: a\r\nX-Empty:\r\nX-Pad:  v  \r\nAccept: */*\r\n");
  EXPECT_EQ(build_upstream(upstream_input(head)),
            "GET /v1/foo?a=1 HTTP/1.1\r\nhost: backend:8080\r\n"
            "X-Empty: \r\n"
            "X-Pad: v\r\n"
            "Accept: */*\r\n" +
                kForwarded + "\r\n");
}

TEST(UpstreamRequestHead, PassThroughLinesAreViewsIntoTheReceivedHead) {
  auto head = request(
      "Host: a\r\n"
      "A: 1\r\n"
      "B: 2\r\n"
      "Connection: close\r\n"
      "C: 3\r\n");
  HeadParts out;
  build_upstream_request_head(upstream_input(head), out);
  // Adjacent lines are coalesced into one view; the removed Connection line splits them.
  ASSERT_EQ(out.middle.size(), 2u);
  EXPECT_EQ(out.middle[0], "A: 1\r\nB: 2\r\n");
  EXPECT_EQ(out.middle[1], "C: 3\r\n");
  const char* begin = head.raw().data();
  const char* end = begin + head.raw().size();
  for (auto v : out.middle) {
    EXPECT_GE(v.data(), begin);
    EXPECT_LE(v.data() + v.size(), end);
  }
  EXPECT_EQ(out.prefix, "GET /v1/foo?a=1 HTTP/1.1\r\nhost: backend:8080\r\n");
  EXPECT_EQ(out.suffix, kForwarded + "\r\n");
}

TEST(UpstreamRequestHead, BuildingTwiceIntoOnePartsStartsFresh) {
  auto head = request("Host: a\r\nA: 1\r\n");
  HeadParts out;
  build_upstream_request_head(upstream_input(head), out);
  std::string first = out.flatten();
  build_upstream_request_head(upstream_input(head), out);
  EXPECT_EQ(out.flatten(), first);
}

// --- x-forwarded-client-cert -----------------------------------------------------------------

const std::string kElement = "Hash=ab12;Subject=\"CN=edge,O=corp\";DNS=edge.corp.internal";

// Two XFCC fields from the client (any case), between other fields.
ParsedHead with_client_xfcc() {
  return request(
      "Host: app.example.com\r\n"
      "X-Forwarded-Client-Cert: Hash=11;Subject=\"CN=a\";URI=spiffe://corp/a\r\n"
      "Accept: */*\r\n"
      "x-forwarded-client-cert: Hash=22;Subject=\"CN=b\";URI=\r\n"
      "X-Other: 1\r\n");
}

TEST(UpstreamRequestHead, ClientCertRemoveIsTheDefault) {
  auto head = with_client_xfcc();
  auto in = upstream_input(head);
  in.client_cert_element = kElement;  // ignored: kRemove writes none
  EXPECT_EQ(build_upstream(in),
            "GET /v1/foo?a=1 HTTP/1.1\r\nhost: backend:8080\r\nAccept: */*\r\nX-Other: 1\r\n"s +
                kForwarded + "\r\n");
}

TEST(UpstreamRequestHead, ClientCertSetReplacesTheClients) {
  auto head = with_client_xfcc();
  auto in = upstream_input(head);
  in.client_cert = ClientCertHeader::kSet;
  in.client_cert_element = kElement;
  EXPECT_EQ(build_upstream(in),
            "GET /v1/foo?a=1 HTTP/1.1\r\nhost: backend:8080\r\nAccept: */*\r\nX-Other: 1\r\n"s +
                "x-forwarded-client-cert: " + kElement + "\r\n" + kForwarded + "\r\n");
  // Without a client header too.
  auto plain = request("Host: app.example.com\r\n");
  auto in2 = upstream_input(plain);
  in2.client_cert = ClientCertHeader::kSet;
  in2.client_cert_element = kElement;
  EXPECT_EQ(build_upstream(in2), "GET /v1/foo?a=1 HTTP/1.1\r\nhost: backend:8080\r\n"
                                     "x-forwarded-client-cert: " + kElement + "\r\n" + kForwarded + "\r\n");
}

TEST(UpstreamRequestHead, ClientCertForwardKeepsTheClientsAsReceived) {
  auto head = with_client_xfcc();
  auto in = upstream_input(head);
  in.client_cert = ClientCertHeader::kForward;
  in.client_cert_element = kElement;  // not added
  EXPECT_EQ(build_upstream(in),
            "GET /v1/foo?a=1 HTTP/1.1\r\nhost: backend:8080\r\n"
            "X-Forwarded-Client-Cert: Hash=11;Subject=\"CN=a\";URI=spiffe://corp/a\r\n"
            "Accept: */*\r\n"
            "x-forwarded-client-cert: Hash=22;Subject=\"CN=b\";URI=\r\n"
            "X-Other: 1\r\n" +
                kForwarded + "\r\n");
}

TEST(UpstreamRequestHead, ClientCertAppendJoinsTheClientsThenThisConnections) {
  auto head = with_client_xfcc();
  auto in = upstream_input(head);
  in.client_cert = ClientCertHeader::kAppend;
  in.client_cert_element = kElement;
  EXPECT_EQ(build_upstream(in),
            "GET /v1/foo?a=1 HTTP/1.1\r\nhost: backend:8080\r\nAccept: */*\r\nX-Other: 1\r\n"s +
                "x-forwarded-client-cert: Hash=11;Subject=\"CN=a\";URI=spiffe://corp/a,"
                "Hash=22;Subject=\"CN=b\";URI=," + kElement + "\r\n" + kForwarded + "\r\n");
  // Nothing (or an empty value) from the client: this connection's element alone.
  auto empty = request("Host: app.example.com\r\nX-Forwarded-Client-Cert: \r\n");
  auto in2 = upstream_input(empty);
  in2.client_cert = ClientCertHeader::kAppend;
  in2.client_cert_element = kElement;
  EXPECT_EQ(build_upstream(in2), "GET /v1/foo?a=1 HTTP/1.1\r\nhost: backend:8080\r\n"
                                     "x-forwarded-client-cert: " + kElement + "\r\n" + kForwarded + "\r\n");
}

TEST(UpstreamRequestHead, OtherXFieldsPassUntouched) {
  // The fields Sluice handles all start with "x-"; fields that merely look alike pass.
  auto head = request(
      "Host: app.example.com\r\n"
      "X-Forwarded-Client-Certs: 1\r\n"
      "x-forwarded-client-cer: 2\r\n"
      "X: 3\r\n");
  auto in = upstream_input(head);
  in.client_cert = ClientCertHeader::kSet;
  in.client_cert_element = kElement;
  EXPECT_EQ(build_upstream(in),
            "GET /v1/foo?a=1 HTTP/1.1\r\nhost: backend:8080\r\n"
            "X-Forwarded-Client-Certs: 1\r\nx-forwarded-client-cer: 2\r\nX: 3\r\n"s +
                "x-forwarded-client-cert: " + kElement + "\r\n" + kForwarded + "\r\n");
}

// --- the protocol-neutral field decisions (HTTP/2 upstream uses them too) -----------------------

TEST(ForwardRequestFields, PassesThenAddsWhatTheHttp1BuilderWrites) {
  auto head = request(
      "Host: app.example.com\r\n"
      "Connection: keep-alive, X-Hop\r\n"
      "X-Hop: 1\r\n"
      "TE: trailers\r\n"
      "Expect: 100-continue\r\n"
      "X-Forwarded-For: 192.0.2.1\r\n"
      "X-Forwarded-Client-Cert: Hash=11\r\n"
      "Cookie: a=1; b=2\r\n"
      "User-Agent: t\r\n");
  auto in = upstream_input(head);
  in.client_cert = ClientCertHeader::kAppend;
  in.client_cert_element = "Hash=22";
  in.generated_request_id = "id-1";
  std::vector<std::string> seen;
  ForwardScratch scratch;
  forward_request_fields(
      in, scratch, [&](const HeaderView& h) { seen.push_back("pass " + std::string(h.name)); },
      [&](const WrittenField& f, std::string_view v) {
        EXPECT_EQ(f.line_start, std::string(f.name) + ": ");
        seen.push_back(std::string(f.name) + "=" + std::string(v));
      });
  EXPECT_EQ(seen, (std::vector<std::string>{
                      "pass Cookie", "pass User-Agent", "x-forwarded-client-cert=Hash=11,Hash=22",
                      "x-forwarded-for=192.0.2.1, 10.0.0.7", "x-forwarded-proto=http",
                      "x-forwarded-host=app.example.com", "x-request-id=id-1"}));
  // The scratch is reused: a second call starts fresh.
  seen.clear();
  in.client_cert = ClientCertHeader::kRemove;
  forward_request_fields(
      in, scratch, [&](const HeaderView&) {},
      [&](const WrittenField& f, std::string_view v) {
        EXPECT_EQ(f.line_start, std::string(f.name) + ": ");
        seen.push_back(std::string(f.name) + "=" + std::string(v));
      });
  EXPECT_EQ(seen[0], "x-forwarded-for=192.0.2.1, 10.0.0.7");
}

// --- response head ---------------------------------------------------------------------------

DownstreamResponseInput downstream_input(const ParsedHead& head) {
  DownstreamResponseInput in;
  in.status = 200;
  in.reason = "OK";
  in.headers = head.headers();
  return in;
}

TEST(DownstreamResponseHead, PlainResponseGetsRequestId) {
  auto head = response("Content-Type: text/plain\r\nContent-Length: 5\r\n");
  auto in = downstream_input(head);
  in.request_id = "rid-1";
  EXPECT_EQ(build_downstream(in),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n"
            "x-request-id: rid-1\r\n\r\n");
}

TEST(DownstreamResponseHead, ExistingRequestIdIsKept) {
  auto head = response("X-Request-ID: from-upstream\r\nContent-Length: 0\r\n");
  auto in = downstream_input(head);
  in.request_id = "rid-1";
  EXPECT_EQ(build_downstream(in),
            "HTTP/1.1 200 OK\r\nX-Request-ID: from-upstream\r\nContent-Length: 0\r\n\r\n");
}

TEST(DownstreamResponseHead, NoRequestIdWhenNoneGiven) {
  auto head = response("Content-Length: 0\r\n");
  EXPECT_EQ(build_downstream(downstream_input(head)),
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
}

// An HTTP/2 backend's response has no reason phrase: the standard one is written; one the
// backend sent stays as it was, and a code RFC 9110 does not name gets an empty phrase.
TEST(DownstreamResponseHead, MissingReasonPhraseGetsTheStandardOne) {
  auto head = response("Content-Length: 0\r\n");
  auto in = downstream_input(head);
  in.reason = "";
  in.status = 404;
  EXPECT_EQ(build_downstream(in), "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
  in.reason = "Nothing Here";
  EXPECT_EQ(build_downstream(in), "HTTP/1.1 404 Nothing Here\r\nContent-Length: 0\r\n\r\n");
  in.reason = "";
  in.status = 299;
  EXPECT_EQ(build_downstream(in), "HTTP/1.1 299 \r\nContent-Length: 0\r\n\r\n");
}

TEST(StandardReason, NamesTheCodesOfRfc9110) {
  EXPECT_EQ(standard_reason(200), "OK");
  EXPECT_EQ(standard_reason(413), "Content Too Large");
  EXPECT_EQ(standard_reason(422), "Unprocessable Content");
  EXPECT_EQ(standard_reason(429), "Too Many Requests");
  EXPECT_EQ(standard_reason(504), "Gateway Timeout");
  EXPECT_EQ(standard_reason(418), "");
  EXPECT_EQ(standard_reason(0), "");
}

TEST(DownstreamResponseHead, HopByHopRemovedAndChunkedReframed) {
  auto head = response(
      "Content-Type: text/plain\r\n"
      "Connection: keep-alive, X-Hop\r\n"
      "Keep-Alive: timeout=5\r\n"
      "X-Hop: h\r\n"
      "Transfer-Encoding: chunked\r\n"
      "Trailer: X-Sum\r\n"
      "Upgrade: h2c\r\n"
      "Proxy-Connection: close\r\n"
      "TE: trailers\r\n"
      "Server: jetty\r\n");
  auto in = downstream_input(head);
  in.status = 201;
  in.reason = "Created";
  in.chunked_body = true;
  EXPECT_EQ(build_downstream(in),
            "HTTP/1.1 201 Created\r\nContent-Type: text/plain\r\nServer: jetty\r\n"
            "transfer-encoding: chunked\r\n\r\n");
}

TEST(DownstreamResponseHead, TokenInALaterConnectionHeaderStillRemovesItsField) {
  auto head = response(
      "Connection: keep-alive\r\n"
      "X-Late: l\r\n"
      "Close: c\r\n"
      "connection: close, x-late\r\n"
      "Server: jetty\r\n");
  EXPECT_EQ(build_downstream(downstream_input(head)), "HTTP/1.1 200 OK\r\nServer: jetty\r\n\r\n");
}

TEST(DownstreamResponseHead, ConnectionCloseWhenClosing) {
  auto head = response("Content-Length: 0\r\nConnection: keep-alive\r\n");
  auto in = downstream_input(head);
  in.close = true;
  in.request_id = "rid-2";
  in.chunked_body = true;
  EXPECT_EQ(build_downstream(in),
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"
            "x-request-id: rid-2\r\n"
            "transfer-encoding: chunked\r\n"
            "connection: close\r\n\r\n");
  in.close = false;
  in.chunked_body = false;
  EXPECT_EQ(build_downstream(in),
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nx-request-id: rid-2\r\n\r\n");
}

TEST(DownstreamResponseHead, StatusLine) {
  auto head = response("Content-Length: 0\r\n");
  auto in = downstream_input(head);
  in.status = 503;
  in.reason = "Service Unavailable";
  EXPECT_EQ(build_downstream(in), "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
}

// --- helpers ---------------------------------------------------------------------------------

TEST(HopByHop, Names) {
  for (const char* name : {"Connection", "connection", "KEEP-ALIVE", "Proxy-Connection", "TE", "te",
                           "Trailer", "Upgrade", "Transfer-Encoding"}) {
    EXPECT_TRUE(is_hop_by_hop(name)) << name;
  }
  for (const char* name : {"Trailers", "X-Forwarded-For", "Content-Length", "Host", "t", "",
                           "Connections", "Proxy-Authorization", "Expect"}) {
    EXPECT_FALSE(is_hop_by_hop(name)) << name;
  }
}

TEST(NamedByConnection, TokensAcrossHeaders) {
  std::vector<HeaderView> headers = {
      {"Connection", " close ,X-A,, \tx-b\t"}, {"Accept", "X-C"}, {"CONNECTION", "x-d"}};
  EXPECT_TRUE(named_by_connection(headers, "x-a"));
  EXPECT_TRUE(named_by_connection(headers, "X-B"));
  EXPECT_TRUE(named_by_connection(headers, "close"));
  EXPECT_TRUE(named_by_connection(headers, "X-D"));
  EXPECT_FALSE(named_by_connection(headers, "x-c"));  // listed in Accept, not Connection
  EXPECT_FALSE(named_by_connection(headers, "x"));
  EXPECT_FALSE(named_by_connection(headers, "x-a,x-b"));
  EXPECT_FALSE(named_by_connection({}, "x-a"));
}

TEST(Iequals, AsciiCaseOnly) {
  EXPECT_TRUE(iequals("Connection", "connection"));
  EXPECT_TRUE(iequals("X-REQUEST-ID", "x-request-id"));
  EXPECT_TRUE(iequals("", ""));
  EXPECT_TRUE(iequals("-a", "-A"));
  EXPECT_FALSE(iequals("connection", "user-agent"));  // same length, first bytes differ
  EXPECT_FALSE(iequals("connection", "connectioN2"));
  EXPECT_FALSE(iequals("@a", "`a"));  // differ in bit 0x20 only, but they are not letters
  EXPECT_FALSE(iequals("a[", "a{"));
  EXPECT_FALSE(iequals("keep-alive", "keep_alive"));
}

TEST(RequestId, IsAVersion4Uuid) {
  const std::regex uuid("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string id = make_request_id();
    ASSERT_EQ(id.size(), 36u) << id;
    ASSERT_TRUE(std::regex_match(id, uuid)) << id;
    EXPECT_EQ(id[14], '4') << id;                                          // version nibble
    EXPECT_NE(std::string("89ab").find(id[19]), std::string::npos) << id;  // RFC 4122 variant
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 1000u);
  EXPECT_NE(make_request_id(), make_request_id());
}

TEST(RequestId, ThreadsDoNotRepeatEachOther) {
  std::vector<std::string> a;
  std::vector<std::string> b;
  std::thread ta([&] {
    for (int i = 0; i < 200; ++i) a.push_back(make_request_id());
  });
  std::thread tb([&] {
    for (int i = 0; i < 200; ++i) b.push_back(make_request_id());
  });
  ta.join();
  tb.join();
  std::set<std::string> all(a.begin(), a.end());
  all.insert(b.begin(), b.end());
  EXPECT_EQ(all.size(), 400u);
}

}  // namespace
}  // namespace sluice::http
