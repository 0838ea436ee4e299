// A desync corpus for the HTTP/1.1 parser, both directions: every case says whether the bytes
// must be refused (and with which reply status) or accepted (and exactly what they parse to:
// target or status, header fields, body bytes, trailer fields, how much was consumed). Most of
// the refused ones reached a backend through a mutation fuzz before the parser was strict;
// nginx or HAProxy answer them 400/501/505.
//
// Every case runs twice: the whole message in one execute() and one byte at a time, so no
// verdict depends on where a read happens to end.
#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "sluice/http/parser.h"

namespace sluice::http {
namespace {

using namespace std::string_literals;
using Kind = Parser::Kind;
using Pairs = std::vector<std::pair<std::string, std::string>>;
constexpr size_t kAll = std::numeric_limits<size_t>::max();

struct Case {
  const char* name;
  Kind kind = Kind::kRequest;
  std::string raw;
  int status = 0;                // 0: accepted; otherwise refused with this Step::reply_status
  const char* reason = nullptr;  // refused: the exact reason, when the case is about it
  // Accepted: what the first message parsed to.
  std::string target = "";  // requests
  int code = 0;             // responses
  Pairs headers = {};
  std::string body = "";
  Pairs trailers = {};
  std::vector<std::string> codings = {};
  int keep_alive = -1;     // -1: not checked
  size_t consumed = kAll;  // bytes of the first message; kAll: all of raw
  bool eof = false;        // the body runs to the end of the stream: finish() after the bytes
  bool head = false;       // a response to HEAD
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

struct Outcome {
  bool error = false;
  int reply_status = 0;
  std::string reason;
  bool complete = false;
  std::string target;
  int code = 0;
  Pairs headers;
  std::string body;
  Pairs trailers;
  std::vector<std::string> codings;
  bool keep_alive = false;
  size_t consumed = 0;
};

// Feeds `raw` `piece` bytes more per call until the first message completes or fails.
Outcome run(const Case& c, size_t piece) {
  const std::string& raw = c.raw;
  Parser p(c.kind, 100);
  p.set_skip_body(c.head);
  Outcome o;
  size_t pos = 0;
  size_t available = 0;
  auto fail = [&](const Parser::Step& st) {
    o.error = true;
    o.reply_status = st.reply_status;
    o.reason = st.reason;
    return o;
  };
  while (true) {
    available = piece >= raw.size() - available ? raw.size() : available + piece;
    auto st = p.execute(raw.data(), pos, available);
    if (st.error) return fail(st);
    if (st.headers_complete) {
      o.target = std::string(p.url().in(raw.data()));
      o.code = p.status_code();
      for (const auto& h : p.headers())
        o.headers.emplace_back(h.name.in(raw.data()), h.value.in(raw.data()));
      for (const auto& t : p.transfer_codings()) o.codings.emplace_back(t.in(raw.data()));
    }
    for (auto s : p.body()) o.body.append(s.data(), s.size());
    pos += st.consumed;
    if (st.message_complete) {
      o.complete = true;
      break;
    }
    if (available == raw.size() && st.consumed == 0 && !st.headers_complete) break;  // wants more
  }
  if (!o.complete && c.eof) {
    auto st = p.finish();
    if (st.error) return fail(st);
    for (auto s : p.body()) o.body.append(s.data(), s.size());
    o.complete = st.message_complete;
  }
  for (const auto& t : p.trailers()) o.trailers.emplace_back(t.name, t.value);
  o.keep_alive = p.keep_alive();
  o.consumed = pos;
  return o;
}

class DesyncCorpus : public ::testing::TestWithParam<Case> {};

TEST_P(DesyncCorpus, Verdict) {
  const Case& c = GetParam();
  for (size_t piece : {kAll, size_t{1}}) {
    SCOPED_TRACE(piece == 1 ? "one byte per call" : "all bytes in one call");
    Outcome o = run(c, piece);
    if (c.status != 0) {
      ASSERT_TRUE(o.error) << "accepted; consumed " << o.consumed << " of " << c.raw.size()
                           << ", complete=" << o.complete;
      EXPECT_EQ(o.reply_status, c.status) << o.reason;
      // With all bytes at once llhttp's own checks run before Sluice's line checks, so the
      // reason may name an earlier problem; byte by byte it names the first one.
      if (c.reason && piece == 1) EXPECT_EQ(o.reason, c.reason);
      continue;
    }
    ASSERT_FALSE(o.error) << o.reason;
    EXPECT_TRUE(o.complete);
    EXPECT_EQ(o.consumed, c.consumed == kAll ? c.raw.size() : c.consumed);
    if (c.kind == Kind::kRequest) EXPECT_EQ(o.target, c.target);
    if (c.kind == Kind::kResponse) EXPECT_EQ(o.code, c.code);
    EXPECT_EQ(o.headers, c.headers);
    EXPECT_EQ(o.body, c.body);
    EXPECT_EQ(o.trailers, c.trailers);
    EXPECT_EQ(o.codings, c.codings);
    if (c.keep_alive >= 0) EXPECT_EQ(o.keep_alive, c.keep_alive == 1);
  }
}

const std::string kPost = "POST /u HTTP/1.1\r\nHost: a\r\n";
const std::string kChunkedPost = kPost + "Transfer-Encoding: chunked\r\n\r\n";
const Pairs kChunkedHeaders = {{"Host", "a"}, {"Transfer-Encoding", "chunked"}};
const std::string kChunkedOk = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";

// --- requests: refused --------------------------------------------------------------------

INSTANTIATE_TEST_SUITE_P(
    RequestLine, DesyncCorpus,
    ::testing::Values(
        Case{.name = "NoVersion",
             .raw = "GET /\r\nHost: a\r\n\r\n",
             .status = 400,
             .reason = "Missing HTTP version in request line"},
        Case{.name = "NoVersionNoHeaders",
             .raw = "GET /\r\n\r\n",
             .status = 400,
             .reason = "Missing HTTP version in request line"},
        Case{.name = "Http20",
             .raw = "GET / HTTP/2.0\r\nHost: a\r\n\r\n",
             .status = 505,
             .reason = "Unsupported HTTP version"},
        Case{.name = "Http09",
             .raw = "GET / HTTP/0.9\r\nHost: a\r\n\r\n",
             .status = 505,
             .reason = "Unsupported HTTP version"},
        Case{.name = "Http12",
             .raw = "GET / HTTP/1.2\r\nHost: a\r\n\r\n",
             .status = 505,
             .reason = "Unsupported HTTP version"},
        Case{.name = "Http31", .raw = "GET / HTTP/3.1\r\nHost: a\r\n\r\n", .status = 505},
        Case{.name = "H2Preface", .raw = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", .status = 505},
        Case{.name = "VersionTwoDigitMajor",
             .raw = "GET / HTTP/11.1\r\nHost: a\r\n\r\n",
             .status = 400},
        Case{.name = "VersionLowerCase", .raw = "GET / http/1.1\r\nHost: a\r\n\r\n", .status = 400},
        Case{.name = "VersionTrailingSpace",
             .raw = "GET / HTTP/1.1 \r\nHost: a\r\n\r\n",
             .status = 400},
        Case{.name = "DoubleSpaceBeforeTarget",
             .raw = "GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
             .status = 400},
        Case{.name = "DoubleSpaceAfterTarget",
             .raw = "GET /  HTTP/1.1\r\nHost: a\r\n\r\n",
             .status = 400,
             .reason = "Extra space in request line"},
        Case{.name = "LowerCaseMethod", .raw = "get / HTTP/1.1\r\nHost: a\r\n\r\n", .status = 400},
        Case{.name = "CrOnlyAfterRequestLine",
             .raw = "GET / HTTP/1.1\rHost: a\r\n\r\n",
             .status = 400},
        Case{.name = "BareLfAfterRequestLine",
             .raw = "GET / HTTP/1.1\nHost: a\r\n\r\n",
             .status = 400,
             .reason = "Bare LF in message head (lines must end with CRLF)"}),
    [](const auto& info) { return std::string(info.param.name); });

INSTANTIATE_TEST_SUITE_P(
    RequestTarget, DesyncCorpus,
    ::testing::Values(
        Case{.name = "HighByte",
             .raw = "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n",
             .status = 400},
        Case{.name = "Control", .raw = "GET /a\x01z HTTP/1.1\r\nHost: a\r\n\r\n", .status = 400},
        Case{.name = "Del", .raw = "GET /a\x7fz HTTP/1.1\r\nHost: a\r\n\r\n", .status = 400},
        Case{.name = "Tab", .raw = "GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n", .status = 400},
        Case{.name = "Space", .raw = "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", .status = 400},
        Case{.name = "SpaceInQuery",
             .raw = "GET /a?b=c d HTTP/1.1\r\nHost: a\r\n\r\n",
             .status = 400},
        Case{.name = "Nul", .raw = "GET /a\0b HTTP/1.1\r\nHost: a\r\n\r\n"s, .status = 400},
        Case{.name = "Fragment",
             .raw = "GET /public#/../admin HTTP/1.1\r\nHost: a\r\n\r\n",
             .status = 400,
             .reason = "Invalid character in request-target"},
        Case{.name = "Pipe",
             .raw = "GET /a|b HTTP/1.1\r\nHost: a\r\n\r\n",
             .status = 400,
             .reason = "Invalid character in request-target"},
        Case{.name = "Brace",
             .raw = "GET /?q={} HTTP/1.1\r\nHost: a\r\n\r\n",
             .status = 400,
             .reason = "Invalid character in request-target"},
        Case{.name = "Backslash",
             .raw = "GET /a\\..\\admin HTTP/1.1\r\nHost: a\r\n\r\n",
             .status = 400,
             .reason = "Invalid character in request-target"},
        Case{.name = "BadPercent",
             .raw = "GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n",
             .status = 400,
             .reason = "Invalid percent-encoding in request-target"},
        Case{.name = "TruncatedPercent",
             .raw = "GET /a%4 HTTP/1.1\r\nHost: a\r\n\r\n",
             .status = 400,
             .reason = "Invalid percent-encoding in request-target"},
        Case{.name = "AsteriskForGet",
             .raw = "GET * HTTP/1.1\r\nHost: a\r\n\r\n",
             .status = 400,
             .reason = "Asterisk-form request-target is only for OPTIONS"},
        Case{
            .name = "RelativeTarget", .raw = "GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", .status = 400}),
    [](const auto& info) { return std::string(info.param.name); });

INSTANTIATE_TEST_SUITE_P(
    RequestFields, DesyncCorpus,
    ::testing::Values(
        Case{.name = "BareCrThenSecondRequest",
             .raw = "GET / HTTP/1.1\r\nHost: a\r\n\rGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
             .status = 400},
        Case{.name = "BareCrBeforeCrlfThenSecondRequest",
             .raw = "GET / HTTP/1.1\r\nHost: a\r\n\r\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
             .status = 400},
        Case{.name = "BareCrInsideValue",
             .raw = "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n",
             .status = 400},
        Case{.name = "BareCrEndsValue",
             .raw = "GET / HTTP/1.1\r\nHost: a\r\nX: b\r\r\n\r\n",
             .status = 400},
        Case{.name = "BareLfEndsHead", .raw = "GET / HTTP/1.1\r\nHost: a\r\n\n", .status = 400},
        Case{.name = "BareLfEndsField",
             .raw = "GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n",
             .status = 400},
        Case{.name = "EmptyFieldName",
             .raw = kPost + ": chunked\r\n\r\n",
             .status = 400,
             .reason = "Empty header name"},
        Case{.name = "EmptyFieldNameAndValue",
             .raw = kPost + ":\r\n\r\n",
             .status = 400,
             .reason = "Empty header name"},
        Case{
            .name = "SpaceBeforeColon", .raw = "GET / HTTP/1.1\r\nHost : a\r\n\r\n", .status = 400},
        Case{.name = "TabBeforeColon", .raw = "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", .status = 400},
        Case{.name = "SpaceBeforeFirstField",
             .raw = "GET / HTTP/1.1\r\n Host: a\r\n\r\n",
             .status = 400},
        Case{.name = "ObsFold",
             .raw = "GET / HTTP/1.1\r\nHost: a\r\nX: one\r\n two\r\n\r\n",
             .status = 400,
             .reason = "Obsolete line folding in message head"},
        Case{.name = "NulInValue",
             .raw = "GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n"s,
             .status = 400},
        Case{.name = "ControlInValue",
             .raw = "GET / HTTP/1.1\r\nHost: a\r\nX: a\x01z\r\n\r\n",
             .status = 400},
        Case{.name = "DelInValue",
             .raw = "GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fz\r\n\r\n",
             .status = 400},
        Case{.name = "HighByteInName",
             .raw = "GET / HTTP/1.1\r\nHost: a\r\nX\x80: b\r\n\r\n",
             .status = 400},
        Case{.name = "NoColon",
             .raw = "GET / HTTP/1.1\r\nHost: a\r\nNoColonHere\r\n\r\n",
             .status = 400}),
    [](const auto& info) { return std::string(info.param.name); });

INSTANTIATE_TEST_SUITE_P(
    RequestFraming, DesyncCorpus,
    ::testing::Values(
        Case{.name = "ContentLengthThenTransferEncoding",
             .raw = kPost + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
             .status = 400},
        Case{.name = "TransferEncodingThenContentLength",
             .raw = kPost + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
             .status = 400},
        Case{.name = "GzipOnly",
             .raw = kPost + "Transfer-Encoding: gzip\r\n\r\nabc",
             .status = 400,
             .reason = "Transfer-Encoding without final chunked"},
        Case{.name = "GzipThenChunked",
             .raw = kPost + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
             .status = 501,
             .reason = "Unsupported transfer coding"},
        Case{
            .name = "GzipThenChunkedOnTwoLines",
            .raw = kPost + "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            .status = 501},
        Case{.name = "ChunkedThenGzip",
             .raw = kPost + "Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
             .status = 400},
        Case{.name = "ChunkedTwice",
             .raw = kPost + "Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
             .status = 400},
        Case{.name = "ChunkedTwiceOnTwoLines",
             .raw = kPost +
                    "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
             .status = 400},
        Case{.name = "Identity",
             .raw = kPost + "Transfer-Encoding: identity\r\n\r\n",
             .status = 400},
        Case{.name = "XChunked",
             .raw = kPost + "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
             .status = 400},
        Case{.name = "ChunkedWithParameter",
             .raw = kPost + "Transfer-Encoding: chunked;q=1\r\n\r\n0\r\n\r\n",
             .status = 400},
        Case{.name = "EmptyTransferEncoding",
             .raw = kPost + "Transfer-Encoding: \r\n\r\n",
             .status = 400,
             .reason = "Empty Transfer-Encoding"},
        Case{.name = "TransferEncodingInHttp10",
             .raw = "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
             .status = 400,
             .reason = "Transfer-Encoding in an HTTP/1.0 message"},
        Case{.name = "ContentLengthOverInt64",
             .raw = kPost + "Content-Length: 9223372036854775808\r\n\r\n",
             .status = 400,
             .reason = "Content-Length overflow"},
        Case{.name = "ContentLengthOverUint64",
             .raw = kPost + "Content-Length: 18446744073709551616\r\n\r\n",
             .status = 400},
        Case{.name = "ContentLengthPlus",
             .raw = kPost + "Content-Length: +5\r\n\r\nhello",
             .status = 400},
        Case{.name = "ContentLengthMinus",
             .raw = kPost + "Content-Length: -5\r\n\r\nhello",
             .status = 400},
        Case{.name = "ContentLengthHex",
             .raw = kPost + "Content-Length: 0x5\r\n\r\nhello",
             .status = 400},
        Case{.name = "ContentLengthTwoNumbers",
             .raw = kPost + "Content-Length: 5 5\r\n\r\nhello",
             .status = 400},
        Case{.name = "ContentLengthList",
             .raw = kPost + "Content-Length: 5,5\r\n\r\nhello",
             .status = 400},
        Case{.name = "ContentLengthEmpty",
             .raw = kPost + "Content-Length: \r\n\r\nhello",
             .status = 400},
        // RFC 9110 §8.6 allows accepting identical duplicates; refusing them is the safer choice
        // (llhttp does; HAProxy merges them, so two proxies in a row would disagree otherwise).
        Case{.name = "ContentLengthDuplicateSame",
             .raw = kPost + "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
             .status = 400,
             .reason = "Duplicate Content-Length"},
        Case{.name = "ContentLengthDuplicateDiffering",
             .raw = kPost + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
             .status = 400}),
    [](const auto& info) { return std::string(info.param.name); });

INSTANTIATE_TEST_SUITE_P(
    RequestChunks, DesyncCorpus,
    ::testing::Values(
        Case{.name = "BareLfAfterLastChunk",
             .raw = kChunkedPost + "5\r\nhello\r\n0\r\n\n",
             .status = 400,
             .reason = "Bare LF in trailer section (lines must end with CRLF)"},
        Case{.name = "BareCrAfterLastChunk",
             .raw = kChunkedPost + "5\r\nhello\r\n0\r\n\r\r\n",
             .status = 400},
        Case{.name = "DataNotFollowedByCrlf",
             .raw = kChunkedPost + "5\r\nhelloXX0\r\n\r\n",
             .status = 400},
        Case{.name = "DataFollowedByBareLf",
             .raw = kChunkedPost + "5\r\nhello\n0\r\n\r\n",
             .status = 400},
        Case{.name = "DataFollowedByBareCr",
             .raw = kChunkedPost + "5\r\nhello\r\r\n0\r\n\r\n",
             .status = 400},
        Case{.name = "DataLongerThanSize",
             .raw = kChunkedPost + "3\r\nhello\r\n0\r\n\r\n",
             .status = 400},
        Case{
            .name = "SizeLineBareLf", .raw = kChunkedPost + "5\nhello\r\n0\r\n\r\n", .status = 400},
        Case{.name = "SizeHexOverflow",
             .raw = kChunkedPost + "ffffffffffffffffff\r\n",
             .status = 400},
        Case{.name = "SizeOverInt64",
             .raw = kChunkedPost + "8000000000000000\r\n",
             .status = 400,
             .reason = "Chunk size overflow"},
        Case{.name = "SizeNegative",
             .raw = kChunkedPost + "-5\r\nhello\r\n0\r\n\r\n",
             .status = 400},
        Case{.name = "Size0x", .raw = kChunkedPost + "0x5\r\nhello\r\n0\r\n\r\n", .status = 400},
        Case{.name = "SizeEmpty", .raw = kChunkedPost + "\r\nhello\r\n0\r\n\r\n", .status = 400},
        // BWS before ';' is allowed by RFC 9112 §7.1.1; llhttp refuses it, which fails closed.
        Case{.name = "SizeTrailingSpace",
             .raw = kChunkedPost + "5 \r\nhello\r\n0\r\n\r\n",
             .status = 400},
        Case{.name = "SizeLeadingSpace",
             .raw = kChunkedPost + " 5\r\nhello\r\n0\r\n\r\n",
             .status = 400},
        Case{.name = "ExtensionControlChar",
             .raw = kChunkedPost + "5;a=\x01\r\nhello\r\n0\r\n\r\n",
             .status = 400},
        Case{.name = "ExtensionEmptyName",
             .raw = kChunkedPost + "5;\r\nhello\r\n0\r\n\r\n",
             .status = 400},
        Case{.name = "ExtensionBareLf",
             .raw = kChunkedPost + "5;a=b\nhello\r\n0\r\n\r\n",
             .status = 400},
        Case{.name = "TrailerContentLength",
             .raw = kChunkedPost + "0\r\nContent-Length: 5\r\n\r\n",
             .status = 400,
             .reason = "Forbidden field in trailer section"},
        Case{.name = "TrailerTransferEncoding",
             .raw = kChunkedPost + "0\r\nTransfer-Encoding: chunked\r\n\r\n",
             .status = 400,
             .reason = "Forbidden field in trailer section"},
        Case{.name = "TrailerObsFold",
             .raw = kChunkedPost + "0\r\nX: a\r\n b\r\n\r\n",
             .status = 400,
             .reason = "Obsolete line folding in trailer section"},
        Case{.name = "TrailerSpaceBeforeColon",
             .raw = kChunkedPost + "0\r\nX : a\r\n\r\n",
             .status = 400},
        Case{.name = "TrailerBareLf", .raw = kChunkedPost + "0\r\nX: t\n\r\n", .status = 400},
        Case{.name = "TrailerEmptyName",
             .raw = kChunkedPost + "0\r\n: t\r\n\r\n",
             .status = 400,
             .reason = "Empty header name"}),
    [](const auto& info) { return std::string(info.param.name); });

// --- requests: accepted -------------------------------------------------------------------

INSTANTIATE_TEST_SUITE_P(
    RequestAccepted, DesyncCorpus,
    ::testing::Values(
        Case{.name = "ContentLengthThenPipelined",
             .raw = kPost + "Content-Length: 5\r\n\r\nhelloGET /next HTTP/1.1\r\nHost: a\r\n\r\n",
             .target = "/u",
             .headers = {{"Host", "a"}, {"Content-Length", "5"}},
             .body = "hello",
             .keep_alive = 1,
             .consumed = kPost.size() + 21 + 5},
        Case{.name = "ContentLengthLeadingZerosAndWhiteSpace",
             .raw = kPost + "Content-Length:  005 \r\n\r\nhello",
             .target = "/u",
             .headers = {{"Host", "a"}, {"Content-Length", "005"}},
             .body = "hello"},
        Case{.name = "ChunkedWithExtensionsAndTrailers",
             .raw =
                 kChunkedPost +
                 "5;a=\"b c\";d=e\r\nhello\r\nA\r\n0123456789\r\n0;last\r\nX-T: t \r\nY: u\r\n\r\n",
             .target = "/u",
             .headers = kChunkedHeaders,
             .body = "hello0123456789",
             .trailers = {{"X-T", "t"}, {"Y", "u"}},
             .codings = {"chunked"}},
        Case{.name = "ChunkSizeLeadingZeros",
             .raw = kChunkedPost + "0005\r\nhello\r\n0\r\n\r\n",
             .target = "/u",
             .headers = kChunkedHeaders,
             .body = "hello",
             .codings = {"chunked"}},
        Case{.name = "ChunkedUpperCaseWithEmptyListElements",
             .raw = kPost + "Transfer-Encoding: , CHUNKED\r\n\r\n0\r\n\r\n",
             .target = "/u",
             .headers = {{"Host", "a"}, {"Transfer-Encoding", ", CHUNKED"}},
             .codings = {"CHUNKED"}},
        Case{.name = "ConnectionCloseTrailingSpace",
             .raw = "GET / HTTP/1.1\r\nHost: a\r\nConnection: close \r\n\r\n",
             .target = "/",
             .headers = {{"Host", "a"}, {"Connection", "close"}},
             .keep_alive = 0},
        Case{.name = "ConnectionCloseTrailingTab",
             .raw = "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\t\r\n\r\n",
             .target = "/",
             .headers = {{"Host", "a"}, {"Connection", "close"}},
             .keep_alive = 0},
        Case{.name = "ConnectionCloseInList",
             .raw = "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive,CLOSE\r\n\r\n",
             .target = "/",
             .headers = {{"Host", "a"}, {"Connection", "keep-alive,CLOSE"}},
             .keep_alive = 0},
        Case{.name = "ConnectionClosedIsNotClose",
             .raw = "GET / HTTP/1.1\r\nHost: a\r\nConnection: closed\r\n\r\n",
             .target = "/",
             .headers = {{"Host", "a"}, {"Connection", "closed"}},
             .keep_alive = 1},
        Case{.name = "Http10KeepAliveTrailingTab",
             .raw = "GET / HTTP/1.0\r\nConnection: keep-alive\t\r\n\r\n",
             .target = "/",
             .headers = {{"Connection", "keep-alive"}},
             .keep_alive = 1},
        Case{.name = "TargetWithEveryAllowedCharacter",
             .raw = "GET /a-._~!$&'()*+,;=:@/b?q=%20%2f&r=/? HTTP/1.1\r\nHost: a\r\n\r\n",
             .target = "/a-._~!$&'()*+,;=:@/b?q=%20%2f&r=/?",
             .headers = {{"Host", "a"}}},
        Case{.name = "AbsoluteForm",
             .raw = "GET http://a:8080/b?c HTTP/1.1\r\nHost: a\r\n\r\n",
             .target = "http://a:8080/b?c",
             .headers = {{"Host", "a"}}},
        Case{.name = "OptionsAsterisk",
             .raw = "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
             .target = "*",
             .headers = {{"Host", "a"}}},
        Case{.name = "EmptyLineBeforeRequest",
             .raw = "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
             .target = "/",
             .headers = {{"Host", "a"}}},
        Case{.name = "ObsTextAndTabInValue",
             .raw = "GET / HTTP/1.1\r\nX: caf\xc3\xa9\tok\r\n\r\n",
             .target = "/",
             .headers = {{"X", "caf\xc3\xa9\tok"}}}),
    [](const auto& info) { return std::string(info.param.name); });

// --- responses ----------------------------------------------------------------------------

INSTANTIATE_TEST_SUITE_P(
    ResponseRefused, DesyncCorpus,
    ::testing::Values(
        Case{.name = "TwoDifferingContentLengths",
             .kind = Kind::kResponse,
             .raw = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
             .status = 502},
        Case{.name = "ContentLengthAndChunked",
             .kind = Kind::kResponse,
             .raw = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: "
                    "chunked\r\n\r\n0\r\n\r\n",
             .status = 502},
        Case{.name = "ContentLengthAndGzip",
             .kind = Kind::kResponse,
             .raw = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 3\r\n\r\nabc",
             .status = 502},
        Case{.name = "ContentLengthOverflow",
             .kind = Kind::kResponse,
             .raw = "HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775808\r\n\r\n",
             .status = 502},
        Case{.name = "TransferEncodingInHttp10",
             .kind = Kind::kResponse,
             .raw = "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
             .status = 502},
        Case{.name = "NoStatusCode",
             .kind = Kind::kResponse,
             .raw = "HTTP/1.1 OK\r\nContent-Length: 0\r\n\r\n",
             .status = 502},
        Case{.name = "NoVersion",
             .kind = Kind::kResponse,
             .raw = "200 OK\r\nContent-Length: 0\r\n\r\n",
             .status = 502},
        Case{.name = "Http20",
             .kind = Kind::kResponse,
             .raw = "HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n",
             .status = 502},
        Case{.name = "Http12",
             .kind = Kind::kResponse,
             .raw = "HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n",
             .status = 502},
        Case{.name = "StatusTwoDigits",
             .kind = Kind::kResponse,
             .raw = "HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n",
             .status = 502,
             .reason = "Status code is not three digits"},
        Case{.name = "StatusFourDigits",
             .kind = Kind::kResponse,
             .raw = "HTTP/1.1 0200 OK\r\nContent-Length: 0\r\n\r\n",
             .status = 502},
        Case{.name = "Status099",
             .kind = Kind::kResponse,
             .raw = "HTTP/1.1 099 OK\r\nContent-Length: 0\r\n\r\n",
             .status = 502,
             .reason = "Invalid status code"},
        Case{.name = "Status600",
             .kind = Kind::kResponse,
             .raw = "HTTP/1.1 600 OK\r\nContent-Length: 0\r\n\r\n",
             .status = 502,
             .reason = "Invalid status code"},
        Case{.name = "Status1000",
             .kind = Kind::kResponse,
             .raw = "HTTP/1.1 1000 OK\r\nContent-Length: 0\r\n\r\n",
             .status = 502},
        Case{.name = "DoubleSpaceBeforeStatus",
             .kind = Kind::kResponse,
             .raw = "HTTP/1.1  200 OK\r\nContent-Length: 0\r\n\r\n",
             .status = 502},
        Case{.name = "ControlInReason",
             .kind = Kind::kResponse,
             .raw = "HTTP/1.1 200 O\x01K\r\nContent-Length: 0\r\n\r\n",
             .status = 502,
             .reason = "Invalid character in reason phrase"},
        Case{.name = "EmptyLineBeforeStatusLine",
             .kind = Kind::kResponse,
             .raw = "\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
             .status = 502,
             .reason = "Empty line before status line"},
        Case{.name = "BareLfAfterStatusLine",
             .kind = Kind::kResponse,
             .raw = "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n",
             .status = 502},
        Case{.name = "ObsFold",
             .kind = Kind::kResponse,
             .raw = "HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n",
             .status = 502},
        Case{.name = "EmptyFieldName",
             .kind = Kind::kResponse,
             .raw = "HTTP/1.1 200 OK\r\n: chunked\r\nContent-Length: 0\r\n\r\n",
             .status = 502},
        Case{.name = "ChunkDataNotFollowedByCrlf",
             .kind = Kind::kResponse,
             .raw = kChunkedOk + "3\r\nabcdef\r\n0\r\n\r\n",
             .status = 502},
        Case{.name = "BareLfAfterLastChunk",
             .kind = Kind::kResponse,
             .raw = kChunkedOk + "0\r\n\n",
             .status = 502},
        Case{.name = "TrailerTransferEncoding",
             .kind = Kind::kResponse,
             .raw = kChunkedOk + "0\r\nTransfer-Encoding: chunked\r\n\r\n",
             .status = 502}),
    [](const auto& info) { return std::string(info.param.name); });

INSTANTIATE_TEST_SUITE_P(
    ResponseAccepted, DesyncCorpus,
    ::testing::Values(
        Case{.name = "ContentLength",
             .kind = Kind::kResponse,
             .raw = "HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\nnope",
             .code = 404,
             .headers = {{"Content-Length", "4"}},
             .body = "nope",
             .keep_alive = 1},
        Case{.name = "NoReasonPhrase",
             .kind = Kind::kResponse,
             .raw = "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
             .code = 200,
             .headers = {{"Content-Length", "0"}}},
        Case{.name = "NoContentWithContentLength",
             .kind = Kind::kResponse,
             .raw = "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello",
             .code = 204,
             .headers = {{"Content-Length", "5"}},
             .consumed = 46},
        Case{.name = "NoContentWithChunked",
             .kind = Kind::kResponse,
             .raw = "HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
             .code = 204,
             .headers = {{"Transfer-Encoding", "chunked"}},
             .codings = {"chunked"},
             .consumed = 55},
        Case{.name = "NotModifiedWithContentLength",
             .kind = Kind::kResponse,
             .raw = "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n",
             .code = 304,
             .headers = {{"Content-Length", "5"}}},
        Case{.name = "ContinueThenFinal",
             .kind = Kind::kResponse,
             .raw = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
             .code = 100,
             .consumed = 25},
        Case{.name = "HeadResponse",
             .kind = Kind::kResponse,
             .raw = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n",
             .code = 200,
             .headers = {{"Content-Length", "10"}},
             .head = true},
        Case{.name = "GzipThenChunked",
             .kind = Kind::kResponse,
             .raw = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip , "
                    "chunked\r\n\r\n3\r\n\x1f\x8b\x08\r\n0\r\n\r\n",
             .code = 200,
             .headers = {{"Transfer-Encoding", "gzip , chunked"}},
             .body = "\x1f\x8b\x08",
             .codings = {"gzip", "chunked"}},
        Case{.name = "GzipUntilEof",
             .kind = Kind::kResponse,
             .raw = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip;level=1\r\n\r\nsome bytes",
             .code = 200,
             .headers = {{"Transfer-Encoding", "gzip;level=1"}},
             .body = "some bytes",
             .codings = {"gzip;level=1"},
             .keep_alive = 0,
             .eof = true},
        Case{.name = "ChunkedWithTrailers",
             .kind = Kind::kResponse,
             .raw = kChunkedOk + "3\r\nabc\r\n0\r\nGrpc-Status: 0\r\nGrpc-Message:\r\n\r\n",
             .code = 200,
             .headers = {{"Transfer-Encoding", "chunked"}},
             .body = "abc",
             .trailers = {{"Grpc-Status", "0"}, {"Grpc-Message", ""}},
             .codings = {"chunked"}},
        Case{.name = "ConnectionCloseTrailingSpace",
             .kind = Kind::kResponse,
             .raw = "HTTP/1.1 200 OK\r\nConnection: close \r\nContent-Length: 0\r\n\r\n",
             .code = 200,
             .headers = {{"Connection", "close"}, {"Content-Length", "0"}},
             .keep_alive = 0}),
    [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace sluice::http
