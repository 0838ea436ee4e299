#include "sluice/http/parser.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <string>
#include <utility>
#include <vector>

namespace sluice::http {
namespace {

using Kind = Parser::Kind;

std::vector<std::pair<std::string, std::string>> headers_of(const Parser& p, const char* base) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& h : p.headers()) out.emplace_back(h.name.in(base), h.value.in(base));
  return out;
}

using Pairs = std::vector<std::pair<std::string, std::string>>;

std::string body_of(const Parser& p) {
  std::string out;
  for (auto s : p.body()) out.append(s.data(), s.size());
  return out;
}

// Feeds all of `raw` in one call and expects a clean head.
Parser::Step feed_all(Parser& p, const std::string& raw) {
  return p.execute(raw.data(), 0, raw.size());
}

// Expects `raw` to be rejected, at once or after a few execute() calls.
void expect_rejected(const std::string& raw, const std::string& reason) {
  Parser p(Kind::kRequest, 100);
  size_t pos = 0;
  for (int i = 0; i < 4; ++i) {
    auto st = p.execute(raw.data(), pos, raw.size());
    if (st.error) {
      EXPECT_EQ(std::string(st.reason), reason) << raw;
      EXPECT_FALSE(st.headers_complete) << raw;
      EXPECT_FALSE(st.message_complete) << raw;
      return;
    }
    pos += st.consumed;
  }
  ADD_FAILURE() << "accepted: " << raw;
}

const std::string kHead =
    "GET /search?q=sluice&page=2 HTTP/1.1\r\n"
    "Host: app.example.com:8080\r\n"
    "User-Agent: curl/8.1.2\r\n"
    "Accept: */*\r\n"
    "X-Multi: a\r\n"
    "X-Multi: b\r\n"
    "\r\n";

const Pairs kHeadHeaders = {{"Host", "app.example.com:8080"},
                            {"User-Agent", "curl/8.1.2"},
                            {"Accept", "*/*"},
                            {"X-Multi", "a"},
                            {"X-Multi", "b"}};

TEST(Parser, RequestHeadInOneCall) {
  Parser p(Kind::kRequest, 100);
  auto st = feed_all(p, kHead);
  ASSERT_FALSE(st.error) << st.reason;
  EXPECT_TRUE(st.headers_complete);
  EXPECT_FALSE(st.message_complete);  // paused after the head, before the (empty) body
  EXPECT_EQ(st.consumed, kHead.size());
  EXPECT_EQ(p.url().in(kHead.data()), "/search?q=sluice&page=2");
  EXPECT_EQ(p.method(), HTTP_GET);
  EXPECT_EQ(p.http_major(), 1);
  EXPECT_EQ(p.http_minor(), 1);
  EXPECT_TRUE(p.keep_alive());
  EXPECT_FALSE(p.chunked());
  EXPECT_FALSE(p.has_content_length());
  EXPECT_EQ(headers_of(p, kHead.data()), kHeadHeaders);

  // Stepping on completes the body-less message without consuming anything.
  auto end = p.execute(kHead.data(), kHead.size(), kHead.size());
  ASSERT_FALSE(end.error) << end.reason;
  EXPECT_TRUE(end.message_complete);
  EXPECT_FALSE(end.headers_complete);
  EXPECT_EQ(end.consumed, 0u);
}

TEST(Parser, RequestHeadByteByByte) {
  Parser p(Kind::kRequest, 100);
  size_t pos = 0;
  size_t completed_at = 0;
  for (size_t end = 1; end <= kHead.size(); ++end) {
    auto st = p.execute(kHead.data(), pos, end);
    ASSERT_FALSE(st.error) << "at byte " << end << ": " << st.reason;
    EXPECT_EQ(st.consumed, 1u) << "at byte " << end;
    pos += st.consumed;
    if (st.headers_complete) {
      completed_at = end;
      break;
    }
  }
  EXPECT_EQ(completed_at, kHead.size());
  EXPECT_EQ(p.url().in(kHead.data()), "/search?q=sluice&page=2");
  EXPECT_EQ(headers_of(p, kHead.data()), kHeadHeaders);
}

TEST(Parser, BufferMayMoveBetweenCalls) {
  // Each call sees a fresh copy of the bytes so far, at a different address: spans are offsets.
  Parser p(Kind::kRequest, 100);
  size_t pos = 0;
  std::string buffer;
  bool complete = false;
  for (size_t end = 1; end <= kHead.size() && !complete; ++end) {
    std::string moved = kHead.substr(0, end);
    moved.reserve(1024 + end);  // a new allocation every time
    buffer.swap(moved);
    auto st = p.execute(buffer.data(), pos, end);
    ASSERT_FALSE(st.error) << st.reason;
    pos += st.consumed;
    complete = st.headers_complete;
  }
  ASSERT_TRUE(complete);
  EXPECT_EQ(p.url().in(buffer.data()), "/search?q=sluice&page=2");
  EXPECT_EQ(headers_of(p, buffer.data()), kHeadHeaders);
}

TEST(Parser, EverySplitPointInTwoCalls) {
  const std::string raw =
      "POST /upload HTTP/1.1\r\n"
      "Host: a\r\n"
      "Content-Length: 11\r\n"
      "X-Long-Header-Name: some longer value\r\n"
      "\r\n"
      "hello world";
  const size_t head_len = raw.find("\r\n\r\n") + 4;
  for (size_t split = 1; split < raw.size(); ++split) {
    SCOPED_TRACE("split at " + std::to_string(split));
    Parser p(Kind::kRequest, 100);
    size_t pos = 0;
    bool head = false;
    bool done = false;
    std::string body;
    for (size_t limit : {split, raw.size(), raw.size(), raw.size()}) {
      if (pos > limit) continue;
      auto st = p.execute(raw.data(), pos, limit);
      ASSERT_FALSE(st.error) << st.reason;
      if (st.headers_complete) {
        head = true;
        EXPECT_EQ(pos + st.consumed, head_len);
        EXPECT_EQ(p.url().in(raw.data()), "/upload");
        EXPECT_EQ(headers_of(p, raw.data()), (Pairs{{"Host", "a"},
                                                    {"Content-Length", "11"},
                                                    {"X-Long-Header-Name", "some longer value"}}));
        EXPECT_TRUE(p.has_content_length());
        EXPECT_EQ(p.content_length(), 11u);
      }
      body += body_of(p);
      pos += st.consumed;
      if (st.message_complete) {
        done = true;
        break;
      }
    }
    EXPECT_TRUE(head);
    EXPECT_TRUE(done);
    EXPECT_EQ(body, "hello world");
    EXPECT_EQ(pos, raw.size());
  }
}

TEST(Parser, ChunkedBodyAcrossCalls) {
  const std::string raw =
      "POST /u HTTP/1.1\r\n"
      "Host: a\r\n"
      "Transfer-Encoding: chunked\r\n"
      "\r\n"
      "5\r\nhello\r\n"
      "6;ext=1\r\n world\r\n"
      "a\r\n0123456789\r\n"
      "0\r\n"
      "X-Trailer: t\r\n"
      "\r\n";
  for (size_t piece : {1u, 2u, 3u, 7u, 1000u}) {
    SCOPED_TRACE("pieces of " + std::to_string(piece));
    Parser p(Kind::kRequest, 100);
    size_t pos = 0;
    std::string body;
    bool head = false;
    bool done = false;
    size_t available = 0;
    while (!done) {
      available = std::min(raw.size(), available + piece);
      auto st = p.execute(raw.data(), pos, available);
      ASSERT_FALSE(st.error) << st.reason;
      if (st.headers_complete) {
        head = true;
        EXPECT_TRUE(p.chunked());
        EXPECT_FALSE(p.body_until_eof());
        // Trailers are not added to the head's headers.
        EXPECT_EQ(headers_of(p, raw.data()),
                  (Pairs{{"Host", "a"}, {"Transfer-Encoding", "chunked"}}));
      }
      body += body_of(p);
      pos += st.consumed;
      done = st.message_complete;
      if (!done && st.consumed == 0 && available == raw.size() && !st.headers_complete) break;
    }
    EXPECT_TRUE(head);
    EXPECT_TRUE(done);
    EXPECT_EQ(body, "hello world0123456789");
    EXPECT_EQ(pos, raw.size());
    EXPECT_EQ(headers_of(p, raw.data()).size(), 2u);
    EXPECT_EQ(p.trailers(), (std::vector<OwnedField>{{"X-Trailer", "t"}}));
  }
}

// --- trailers --------------------------------------------------------------------------------

// Feeds `parts` one after another, each in a buffer of its own that is overwritten as soon as
// the parser is done with it (as the proxy recycles body buffers).
struct Fed {
  bool error = false;
  Parser::Step last;
  std::string body;
  bool complete = false;
};

Fed feed_recycled(Parser& p, const std::vector<std::string>& parts) {
  Fed out;
  std::string pending;
  for (const auto& part : parts) {
    std::string buffer = pending + part;
    size_t pos = 0;
    while (true) {
      auto st = p.execute(buffer.data(), pos, buffer.size());
      out.last = st;
      if (st.error) {
        out.error = true;
        return out;
      }
      out.body += body_of(p);
      pos += st.consumed;
      if (st.message_complete) {
        out.complete = true;
        return out;
      }
      if (st.consumed == 0 && !st.headers_complete) break;
    }
    pending = buffer.substr(pos);
    std::fill(buffer.begin(), buffer.end(), '#');
  }
  return out;
}

TEST(ParserTrailers, OwnedAcrossRecycledBuffers) {
  const std::string head = "POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
  Parser p(Kind::kRequest, 100);
  auto h = feed_all(p, head);
  ASSERT_TRUE(h.headers_complete);
  auto fed =
      feed_recycled(p, {"3\r\nabc\r\n0\r\nX-Che", "cksum: 12", "34 \r\nX-", "B:\r\n", "\r\n"});
  ASSERT_FALSE(fed.error) << fed.last.reason;
  EXPECT_TRUE(fed.complete);
  EXPECT_EQ(fed.body, "abc");
  EXPECT_EQ(p.trailers(), (std::vector<OwnedField>{{"X-Checksum", "1234"}, {"X-B", ""}}));
  // The head's fields are untouched by the trailer section.
  EXPECT_EQ(headers_of(p, head.data()), (Pairs{{"Host", "a"}, {"Transfer-Encoding", "chunked"}}));
}

TEST(ParserTrailers, ClearedWhenTheNextMessageStarts) {
  const std::string raw =
      "POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: 1\r\n\r\n"
      "GET /next HTTP/1.1\r\nHost: a\r\n\r\n";
  Parser p(Kind::kRequest, 100);
  auto h = feed_all(p, raw);
  ASSERT_TRUE(h.headers_complete);
  auto m = p.execute(raw.data(), h.consumed, raw.size());
  ASSERT_TRUE(m.message_complete) << m.reason;
  EXPECT_EQ(p.trailers().size(), 1u);
  auto next = p.execute(raw.data(), h.consumed + m.consumed, raw.size());
  ASSERT_TRUE(next.headers_complete) << next.reason;
  EXPECT_EQ(p.url().in(raw.data()), "/next");
  EXPECT_TRUE(p.trailers().empty());
}

TEST(ParserTrailers, CountLimitIsTheHeaderLimit) {
  const std::string head = "POST /u HTTP/1.1\r\nA: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int trailers : {3, 4}) {
    std::string raw = head + "0\r\n";
    for (int i = 0; i < trailers; ++i) raw += "T" + std::to_string(i) + ": v\r\n";
    raw += "\r\n";
    Parser p(Kind::kRequest, 3);
    auto h = feed_all(p, raw);
    ASSERT_TRUE(h.headers_complete) << h.reason;
    auto m = p.execute(raw.data(), h.consumed, raw.size());
    if (trailers == 3) {
      ASSERT_FALSE(m.error) << m.reason;
      EXPECT_TRUE(m.message_complete);
      EXPECT_EQ(p.trailers().size(), 3u);
    } else {
      EXPECT_TRUE(m.error);
      EXPECT_TRUE(m.too_many_headers);
      EXPECT_EQ(m.reply_status, 431);
      EXPECT_FALSE(m.message_complete);
    }
  }
}

TEST(ParserTrailers, ByteLimit) {
  const std::string raw =
      "POST /u HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-Big: " + std::string(100, 'v') +
      "\r\n\r\n";
  for (uint32_t limit : {105u, 104u}) {  // "X-Big" + 100 bytes of value
    Parser p(Kind::kRequest, 100);
    p.set_max_trailer_bytes(limit);
    auto h = feed_all(p, raw);
    ASSERT_TRUE(h.headers_complete);
    auto m = p.execute(raw.data(), h.consumed, raw.size());
    EXPECT_EQ(m.error, limit == 104u) << m.reason;
    EXPECT_EQ(m.too_many_headers, limit == 104u);
  }
}

TEST(ParserTrailers, ResponseTrailersAfterBodyBytes) {
  const std::string raw =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: grpc-status\r\n\r\n"
      "5\r\nhello\r\n0\r\ngrpc-status: 0\r\n\r\n";
  Parser p(Kind::kResponse, 100);
  size_t pos = 0;
  std::string body;
  bool done = false;
  for (size_t end = 1; end <= raw.size() && !done; ++end) {  // one byte more each time
    while (true) {
      auto st = p.execute(raw.data(), pos, end);
      ASSERT_FALSE(st.error) << st.reason;
      body += body_of(p);
      pos += st.consumed;
      done = st.message_complete;
      if (done || !st.headers_complete) break;
    }
  }
  EXPECT_TRUE(done);
  EXPECT_EQ(body, "hello");
  EXPECT_EQ(p.trailers(), (std::vector<OwnedField>{{"grpc-status", "0"}}));
}

// --- what the proxy needs to pick its reply ------------------------------------------------

TEST(ParserReply, UnsupportedVersionIs505) {
  for (std::string version : {"HTTP/2.0", "HTTP/0.9", "HTTP/1.2", "HTTP/9.9"}) {
    const std::string raw = "GET / " + version + "\r\nHost: a\r\n\r\n";
    Parser p(Kind::kRequest, 100);
    auto st = feed_all(p, raw);
    EXPECT_TRUE(st.error) << version;
    EXPECT_EQ(st.reply_status, 505) << version;
    EXPECT_TRUE(p.unsupported_version()) << version;
  }
  // A malformed version is a bad request, not an unsupported one.
  for (std::string version : {"HTTP/1.1x", "HTTP/11.1", "HTTP/1.", "HTTP/A.1", "HTTP/1"}) {
    const std::string raw = "GET / " + version + "\r\nHost: a\r\n\r\n";
    Parser p(Kind::kRequest, 100);
    auto st = feed_all(p, raw);
    EXPECT_TRUE(st.error) << version;
    EXPECT_EQ(st.reply_status, 400) << version << ": " << st.reason;
    EXPECT_FALSE(p.unsupported_version()) << version;
  }
  Parser ok(Kind::kRequest, 100);
  ASSERT_TRUE(feed_all(ok, "GET / HTTP/1.0\r\n\r\n").headers_complete);
  EXPECT_FALSE(ok.unsupported_version());
}

TEST(ParserReply, OtherTransferCodingInARequestIs501) {
  const std::string raw =
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n";
  Parser p(Kind::kRequest, 100);
  auto st = feed_all(p, raw);
  EXPECT_TRUE(st.error);
  EXPECT_FALSE(st.headers_complete);
  EXPECT_EQ(st.reply_status, 501);
  EXPECT_STREQ(st.reason, "Unsupported transfer coding");
  EXPECT_TRUE(p.has_other_transfer_coding());

  // Without chunked last the request's length is unknown: 400 (RFC 9112 §6.3), not 501.
  Parser q(Kind::kRequest, 100);
  auto bad = feed_all(q, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n");
  EXPECT_TRUE(bad.error);
  EXPECT_EQ(bad.reply_status, 400);
  EXPECT_TRUE(q.has_other_transfer_coding());

  Parser r(Kind::kRequest, 100);
  ASSERT_TRUE(feed_all(r, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
                  .headers_complete);
  EXPECT_FALSE(r.has_other_transfer_coding());
  ASSERT_EQ(r.transfer_codings().size(), 1u);
}

TEST(ParserReply, ResponseKeepsItsTransferCodings) {
  const std::string raw =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
  Parser p(Kind::kResponse, 100);
  auto st = feed_all(p, raw);
  ASSERT_FALSE(st.error) << st.reason;
  ASSERT_TRUE(st.headers_complete);
  EXPECT_TRUE(p.has_other_transfer_coding());
  EXPECT_TRUE(p.chunked());
  std::vector<std::string> codings;
  for (auto c : p.transfer_codings()) codings.emplace_back(c.in(raw.data()));
  EXPECT_EQ(codings, (std::vector<std::string>{"gzip", "chunked"}));
}

TEST(ParserReply, StatusesByKind) {
  Parser req(Kind::kRequest, 100);
  EXPECT_EQ(feed_all(req, "GET /a b HTTP/1.1\r\n\r\n").reply_status, 400);
  Parser many(Kind::kRequest, 1);
  EXPECT_EQ(feed_all(many, "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n").reply_status, 431);
  // Whatever the upstream got wrong, the client gets a 502.
  Parser resp(Kind::kResponse, 100);
  EXPECT_EQ(feed_all(resp, "HTTP/2.0 200 OK\r\n\r\n").reply_status, 502);
  // The error is sticky, with the same status.
  const std::string good = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
  auto again = resp.execute(good.data(), 0, good.size());
  EXPECT_TRUE(again.error);
  EXPECT_EQ(again.reply_status, 502);
  EXPECT_EQ(resp.finish().reply_status, 502);
}

TEST(Parser, ContentLengthWithTransferEncodingIsAnError) {
  expect_rejected(
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
      "Content-Length can't be present with Transfer-Encoding");
  expect_rejected(
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
      "Content-Length can't be present with Transfer-Encoding");
}

TEST(Parser, DuplicateContentLengthIsAnError) {
  expect_rejected("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                  "Duplicate Content-Length");
}

TEST(Parser, ObsoleteLineFoldingIsAnError) {
  expect_rejected("GET / HTTP/1.1\r\nHost: a\r\nX-A: one\r\n two\r\n\r\n",
                  "Obsolete line folding in message head");
  expect_rejected("GET / HTTP/1.1\r\nHost: a\r\nX-A: one\r\n\ttwo\r\n\r\n",
                  "Obsolete line folding in message head");
  // After an empty value, where llhttp would otherwise take the folded line as the value.
  expect_rejected("GET / HTTP/1.1\r\nHost: a\r\nX-A:\r\n two\r\n\r\n",
                  "Obsolete line folding in message head");
}

TEST(Parser, BareLfIsAnError) {
  const std::string reason = "Bare LF in message head (lines must end with CRLF)";
  expect_rejected("GET / HTTP/1.1\nHost: a\r\n\r\n", reason);  // after the request line
  expect_rejected("GET / HTTP/1.1\r\nHost: a\r\n\n", reason);  // as the end of the head
  expect_rejected("GET / HTTP/1.1\r\n\n", reason);
  expect_rejected("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", reason);  // as an empty line before
  // llhttp's own message when the LF ends a header line.
  expect_rejected("GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", "Invalid header value char");
}

TEST(Parser, BareLfSplitAcrossCallsIsAnError) {
  const std::string raw = "GET / HTTP/1.1\r\nHost: a\r\n\n";
  Parser p(Kind::kRequest, 100);
  auto first = p.execute(raw.data(), 0, raw.size() - 1);
  ASSERT_FALSE(first.error) << first.reason;
  EXPECT_FALSE(first.headers_complete);
  auto second = p.execute(raw.data(), first.consumed, raw.size());
  EXPECT_TRUE(second.error);
  EXPECT_FALSE(second.headers_complete);
  EXPECT_STREQ(second.reason, "Bare LF in message head (lines must end with CRLF)");
}

TEST(Parser, CrlfSplitAcrossCallsIsFine) {
  const std::string raw = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
  Parser p(Kind::kRequest, 100);
  size_t pos = 0;
  for (size_t cut : {15u, 24u, 26u}) {  // each cut falls between a CR and its LF
    ASSERT_EQ(raw[cut - 1], '\r');
    auto st = p.execute(raw.data(), pos, cut);
    ASSERT_FALSE(st.error) << st.reason;
    pos += st.consumed;
  }
  auto last = p.execute(raw.data(), pos, raw.size());
  ASSERT_FALSE(last.error) << last.reason;
  EXPECT_TRUE(last.headers_complete);
}

TEST(Parser, ErrorsAreSticky) {
  const std::string bad = "GET / HTTP/1.1\nHost: a\r\n\r\n";
  Parser p(Kind::kRequest, 100);
  auto st = feed_all(p, bad);
  ASSERT_TRUE(st.error);
  const std::string good = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
  auto again = p.execute(good.data(), 0, good.size());
  EXPECT_TRUE(again.error);
  EXPECT_FALSE(again.headers_complete);
}

// Sluice leaves the field-name check to strict llhttp: every byte that is not a tchar is refused
// wherever it stands in a name, in a head or a trailer section, also after a partial match of a
// name llhttp knows.
TEST(Parser, EveryNonTcharInAFieldNameIsRefused) {
  const std::string tchars = "!#$%&'*+-.^_`|~";
  for (int b = 0; b < 256; ++b) {
    const char c = static_cast<char>(b);
    const bool tchar = std::isalnum(b) || (b != 0 && tchars.find(c) != std::string::npos);
    if (tchar || c == ':') continue;
    for (std::string prefix : {"", "X", "Content-Lengt", "Content-Length", "Connectio", "Connection",
                               "Transfer-Encodin", "Upgrad", "Proxy-Connectio", "Keep-Aliv"}) {
      for (std::string after : {"z: v", ": v"}) {
        const std::string name = prefix + c + after;
        if (prefix.empty() && (c == '\r' || c == '\n')) continue;  // the end of the head, not a name
        const std::string head = "GET / HTTP/1.1\r\nHost: a\r\n" + name + "\r\n\r\n";
        Parser p(Kind::kRequest, 100);
        EXPECT_TRUE(p.execute(head.data(), 0, head.size()).error) << "byte " << b << " after '" << prefix << "'";
        const std::string trailer =
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n" + name + "\r\n\r\n";
        Parser t(Kind::kRequest, 100);
        bool refused = false;
        for (size_t pos = 0, i = 0; i < 4 && !refused; ++i) {  // the parser pauses after the head
          const Parser::Step st = t.execute(trailer.data(), pos, trailer.size());
          refused = st.error;
          pos += st.consumed;
        }
        EXPECT_TRUE(refused) << "trailer: byte " << b << " after '" << prefix << "'";
      }
    }
  }
}

TEST(Parser, InvalidHeaderCharactersAreErrors) {
  expect_rejected("GET / HTTP/1.1\r\nHost : a\r\n\r\n", "Invalid header token");  // RFC 9112 §5.1
  expect_rejected("GET / HTTP/1.1\r\nHo st: a\r\n\r\n", "Invalid header token");
  expect_rejected("GET / HTTP/1.1\r\nHo\"st: a\r\n\r\n", "Invalid header token");
  expect_rejected("GET / HTTP/1.1\r\nX-A\x01: a\r\n\r\n", "Invalid header token");
  expect_rejected(std::string("GET / HTTP/1.1\r\nX-A: a\x01z\r\n\r\n"),
                  "Invalid header value char");
  using namespace std::string_literals;
  expect_rejected("GET / HTTP/1.1\r\nX-A: a\0z\r\n\r\n"s, "Invalid header value char");
  expect_rejected("GET / HTTP/1.1\r\nX-A: a\rz\r\n\r\n", "Missing expected LF after header value");
  expect_rejected("GET / HTTP/1.1\r\n Host: a\r\n\r\n", "Unexpected space after start line");
}

TEST(Parser, TokenCharactersAndObsTextAreAccepted) {
  const std::string raw =
      "GET / HTTP/1.1\r\n"
      "X-!#$%&'*+-.^_`|~09az: v\r\n"
      "X-Tab: a\tb\r\n"
      "X-Obs: caf\xc3\xa9\r\n"
      "\r\n";
  Parser p(Kind::kRequest, 100);
  auto st = feed_all(p, raw);
  ASSERT_FALSE(st.error) << st.reason;
  EXPECT_TRUE(st.headers_complete);
  EXPECT_EQ(headers_of(p, raw.data()),
            (Pairs{{"X-!#$%&'*+-.^_`|~09az", "v"}, {"X-Tab", "a\tb"}, {"X-Obs", "caf\xc3\xa9"}}));
}

TEST(Parser, ValuesHaveNoSurroundingWhiteSpace) {
  const std::string raw =
      "GET / HTTP/1.1\r\n"
      "X-Canary:   1 \t \r\n"
      "X-Inner: a  b\r\n"
      "X-Empty:\r\n"
      "X-Blank:    \r\n"
      "\r\n";
  Parser p(Kind::kRequest, 100);
  auto st = feed_all(p, raw);
  ASSERT_FALSE(st.error) << st.reason;
  EXPECT_EQ(headers_of(p, raw.data()),
            (Pairs{{"X-Canary", "1"}, {"X-Inner", "a  b"}, {"X-Empty", ""}, {"X-Blank", ""}}));
}

TEST(Parser, TooManyHeaders) {
  const std::string four = "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n";
  Parser p(Kind::kRequest, 3);
  auto st = feed_all(p, four);
  EXPECT_TRUE(st.error);
  EXPECT_TRUE(st.too_many_headers);
  EXPECT_FALSE(st.headers_complete);

  const std::string three = "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
  Parser q(Kind::kRequest, 3);
  auto ok = feed_all(q, three);
  ASSERT_FALSE(ok.error) << ok.reason;
  EXPECT_FALSE(ok.too_many_headers);
  EXPECT_TRUE(ok.headers_complete);
  EXPECT_EQ(q.headers().size(), 3u);

  // Other errors do not claim to be about the header count.
  Parser r(Kind::kRequest, 3);
  const std::string bad = "GET / HTTP/1.1\r\nHo st: a\r\n\r\n";
  auto other = feed_all(r, bad);
  EXPECT_TRUE(other.error);
  EXPECT_FALSE(other.too_many_headers);
}

TEST(Parser, PipelinedRequestsPauseAtTheEndOfEachMessage) {
  const std::string first = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string second = "GET /b HTTP/1.1\r\nHost: y\r\nX-Second: 2\r\n\r\n";
  const std::string raw = first + second;
  Parser p(Kind::kRequest, 100);

  auto h1 = p.execute(raw.data(), 0, raw.size());
  ASSERT_FALSE(h1.error) << h1.reason;
  EXPECT_TRUE(h1.headers_complete);
  EXPECT_FALSE(h1.message_complete);
  EXPECT_EQ(h1.consumed, first.size());
  EXPECT_EQ(p.url().in(raw.data()), "/a");
  EXPECT_EQ(headers_of(p, raw.data()), (Pairs{{"Host", "x"}}));

  auto m1 = p.execute(raw.data(), first.size(), raw.size());
  ASSERT_FALSE(m1.error) << m1.reason;
  EXPECT_TRUE(m1.message_complete);
  EXPECT_FALSE(m1.headers_complete);
  EXPECT_EQ(m1.consumed, 0u);  // not a byte of the second request

  auto h2 = p.execute(raw.data(), first.size(), raw.size());
  ASSERT_FALSE(h2.error) << h2.reason;
  EXPECT_TRUE(h2.headers_complete);
  EXPECT_EQ(h2.consumed, second.size());
  EXPECT_EQ(p.url().in(raw.data()), "/b");
  EXPECT_EQ(headers_of(p, raw.data()), (Pairs{{"Host", "y"}, {"X-Second", "2"}}));

  auto m2 = p.execute(raw.data(), raw.size(), raw.size());
  ASSERT_FALSE(m2.error) << m2.reason;
  EXPECT_TRUE(m2.message_complete);
}

TEST(Parser, PipelinedRequestWithBodyStopsAtItsEnd) {
  const std::string first = "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
  const std::string second = "GET /b HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string raw = first + second;
  Parser p(Kind::kRequest, 100);
  auto h1 = p.execute(raw.data(), 0, raw.size());
  ASSERT_TRUE(h1.headers_complete);
  EXPECT_EQ(h1.consumed, first.size() - 5);
  EXPECT_TRUE(p.body().empty());  // the body waits until the caller has routed

  auto b1 = p.execute(raw.data(), h1.consumed, raw.size());
  ASSERT_FALSE(b1.error) << b1.reason;
  EXPECT_TRUE(b1.message_complete);
  EXPECT_EQ(b1.consumed, 5u);
  EXPECT_EQ(body_of(p), "hello");

  auto h2 = p.execute(raw.data(), first.size(), raw.size());
  ASSERT_FALSE(h2.error) << h2.reason;
  EXPECT_TRUE(h2.headers_complete);
  EXPECT_EQ(p.url().in(raw.data()), "/b");
  EXPECT_TRUE(p.body().empty());
}

TEST(Parser, BareLfInSecondPipelinedRequest) {
  const std::string raw = "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\nHost: y\r\n\r\n";
  Parser p(Kind::kRequest, 100);
  auto h1 = p.execute(raw.data(), 0, raw.size());
  ASSERT_TRUE(h1.headers_complete);
  size_t pos = h1.consumed;
  auto m1 = p.execute(raw.data(), pos, raw.size());
  ASSERT_TRUE(m1.message_complete);
  auto h2 = p.execute(raw.data(), pos + m1.consumed, raw.size());
  EXPECT_TRUE(h2.error);
  EXPECT_FALSE(h2.headers_complete);
}

TEST(Parser, LeadingEmptyLineBeforeRequestIsTolerated) {
  const std::string raw = "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
  Parser p(Kind::kRequest, 100);
  auto st = feed_all(p, raw);
  ASSERT_FALSE(st.error) << st.reason;
  EXPECT_TRUE(st.headers_complete);
  EXPECT_EQ(p.url().in(raw.data()), "/");
}

TEST(Parser, Http10KeepAlive) {
  const std::string close = "GET / HTTP/1.0\r\nHost: a\r\n\r\n";
  Parser p(Kind::kRequest, 100);
  ASSERT_TRUE(feed_all(p, close).headers_complete);
  EXPECT_EQ(p.http_minor(), 0);
  EXPECT_FALSE(p.keep_alive());

  const std::string keep = "GET / HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n";
  Parser q(Kind::kRequest, 100);
  ASSERT_TRUE(feed_all(q, keep).headers_complete);
  EXPECT_TRUE(q.keep_alive());

  const std::string closing = "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
  Parser r(Kind::kRequest, 100);
  ASSERT_TRUE(feed_all(r, closing).headers_complete);
  EXPECT_FALSE(r.keep_alive());
}

// --- responses -------------------------------------------------------------------------------

TEST(Parser, ResponseWithContentLength) {
  const std::string raw =
      "HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\nServer: jetty\r\n\r\nnope";
  Parser p(Kind::kResponse, 100);
  auto h = feed_all(p, raw);
  ASSERT_FALSE(h.error) << h.reason;
  EXPECT_TRUE(h.headers_complete);
  EXPECT_EQ(h.consumed, raw.size() - 4);
  EXPECT_EQ(p.status_code(), 404);
  EXPECT_EQ(p.status_text().in(raw.data()), "Not Found");
  EXPECT_EQ(p.content_length(), 4u);
  EXPECT_FALSE(p.body_until_eof());
  EXPECT_EQ(headers_of(p, raw.data()), (Pairs{{"Content-Length", "4"}, {"Server", "jetty"}}));

  auto b = p.execute(raw.data(), h.consumed, raw.size());
  ASSERT_FALSE(b.error) << b.reason;
  EXPECT_TRUE(b.message_complete);
  EXPECT_EQ(body_of(p), "nope");
}

TEST(Parser, ResponseToHeadHasNoBody) {
  const std::string raw = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n";
  Parser p(Kind::kResponse, 100);
  p.set_skip_body(true);
  auto st = feed_all(p, raw);
  ASSERT_FALSE(st.error) << st.reason;
  EXPECT_TRUE(st.headers_complete);
  EXPECT_TRUE(st.message_complete);
  EXPECT_EQ(st.consumed, raw.size());
  EXPECT_TRUE(p.body().empty());
}

TEST(Parser, ResponseBodyUntilEof) {
  const std::string raw = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nsome bytes";
  Parser p(Kind::kResponse, 100);
  auto h = feed_all(p, raw);
  ASSERT_TRUE(h.headers_complete);
  EXPECT_TRUE(p.body_until_eof());
  auto b = p.execute(raw.data(), h.consumed, raw.size());
  ASSERT_FALSE(b.error) << b.reason;
  EXPECT_FALSE(b.message_complete);
  EXPECT_EQ(body_of(p), "some bytes");
  auto f = p.finish();
  EXPECT_FALSE(f.error);
  EXPECT_TRUE(f.message_complete);
}

TEST(Parser, TruncatedChunkedResponseIsAnErrorAtFinish) {
  const std::string raw = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel";
  Parser p(Kind::kResponse, 100);
  auto h = feed_all(p, raw);
  ASSERT_TRUE(h.headers_complete);
  auto b = p.execute(raw.data(), h.consumed, raw.size());
  ASSERT_FALSE(b.error);
  EXPECT_EQ(body_of(p), "hel");
  auto f = p.finish();
  EXPECT_TRUE(f.error);
  EXPECT_FALSE(f.message_complete);
}

TEST(Parser, ResponseWithBareLfIsAnError) {
  const std::string raw = "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n";
  Parser p(Kind::kResponse, 100);
  auto st = feed_all(p, raw);
  EXPECT_TRUE(st.error);
  EXPECT_FALSE(st.headers_complete);
}

}  // namespace
}  // namespace sluice::http
