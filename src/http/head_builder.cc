#include "sluice/http/head_builder.h"

#include <array>
#include <charconv>

#include "sluice/common/fast_random.h"
#include "sluice/http/status.h"

namespace sluice::http {
namespace {

using namespace std::string_view_literals;

constexpr std::string_view kCrlf = "\r\n";
constexpr std::string_view kColonSpace = ": ";

// Appends header `h` to `middle`, extending the previous view when `h` directly follows it in
// the received bytes and ends with CRLF.
void append_line(std::vector<std::string_view>& middle, const HeaderView& h) {
  const char* line_begin = h.name.data();
  if (!h.value.empty()) {
    const char* value_end = h.value.data() + h.value.size();
    if (value_end[0] == '\r' && value_end[1] == '\n') {
      size_t line_len = static_cast<size_t>(value_end + 2 - line_begin);
      if (!middle.empty() && middle.back().data() + middle.back().size() == line_begin) {
        middle.back() = std::string_view(middle.back().data(), middle.back().size() + line_len);
      } else {
        middle.emplace_back(line_begin, line_len);
      }
      return;
    }
  }
  middle.push_back(h.name);
  middle.push_back(kColonSpace);
  if (!h.value.empty()) middle.push_back(h.value);
  middle.push_back(kCrlf);
}

// "HTTP/1.1 <status> <reason>\r\n" by direct appends: 1.7k fewer instructions per request than
// fmt::format_to through a back_inserter (31,582 -> 29,893, bench/instructions).
void append_status_line(std::string& out, int status, std::string_view reason) {
  char digits[16];
  char* end = std::to_chars(digits, digits + sizeof digits, status).ptr;
  out.append("HTTP/1.1 ").append(digits, end).append(" ").append(reason).append(kCrlf);
}

}  // namespace

std::string HeadParts::flatten() const {
  std::string out = prefix;
  for (auto v : middle) out.append(v);
  out += suffix;
  return out;
}

bool named_by_connection(std::span<const HeaderView> headers, std::string_view name) {
  return detail::any_connection_token(headers, [name](std::string_view token) { return iequals(token, name); });
}

void build_upstream_request_head(const UpstreamRequestInput& in, HeadParts& out) {
  out.clear();
  out.prefix.append(in.method).append(" "sv).append(in.path);
  if (!in.query.empty()) out.prefix.append("?"sv).append(in.query);
  out.prefix.append(" HTTP/1.1\r\nhost: "sv).append(in.host).append(kCrlf);
  // The written fields go into the suffix (owned); the passed ones are views into the head.
  forward_request_fields(
      in, out.scratch, [&out](const HeaderView& h) { append_line(out.middle, h); },
      [&out](const WrittenField& field, std::string_view value) {
        out.suffix.append(field.line_start).append(value).append(kCrlf);
      });
  if (in.chunked_body) out.suffix.append("transfer-encoding: chunked\r\n"sv);
  if (!in.upgrade.empty()) out.suffix.append("connection: upgrade\r\nupgrade: "sv).append(in.upgrade).append(kCrlf);
  out.suffix.append(kCrlf);
}

void build_downstream_response_head(const DownstreamResponseInput& in, HeadParts& out) {
  out.clear();
  // An HTTP/2 backend sends no reason phrase: the standard one stands in, as nginx writes it.
  append_status_line(out.prefix, in.status, in.reason.empty() ? standard_reason(in.status) : in.reason);
  const detail::ConnectionOptions connection = detail::connection_options(in.headers);
  bool has_request_id = false;
  for (const auto& h : in.headers) {
    if (is_hop_by_hop(h.name)) continue;
    if (detail::removed_by_connection(connection, in.headers, h.name)) continue;
    if (iequals(h.name, "x-request-id")) has_request_id = true;
    append_line(out.middle, h);
  }
  if (!has_request_id && !in.request_id.empty()) {
    out.suffix.append("x-request-id: ").append(in.request_id).append(kCrlf);
  }
  if (in.chunked_body) {
    out.suffix.append("transfer-encoding: ");
    if (!in.transfer_codings.empty()) out.suffix.append(in.transfer_codings).append(", ");
    out.suffix.append("chunked\r\n");
  }
  if (!in.upgrade.empty()) out.suffix.append("connection: upgrade\r\nupgrade: ").append(in.upgrade).append(kCrlf);
  else if (in.close) out.suffix.append("connection: close\r\n");
  else if (in.keep_alive_header) out.suffix.append("connection: keep-alive\r\n");
  out.suffix.append(kCrlf);
}

void make_request_id(std::string& id) {
  // One generator per thread, seeded from getrandom(2): no lock, no shared state on the request
  // path. splitmix64 and the hand-written hex below replaced mt19937_64 and fmt::format: 2.3k
  // fewer instructions per request (33,842 -> 31,582, bench/instructions).
  thread_local FastRandom rng{random_seed()};
  uint64_t hi = rng.next();
  uint64_t lo = rng.next();
  hi = (hi & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;  // version 4
  lo = (lo & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;  // RFC 4122 variant
  // Two hex digits per byte from a 512-byte table: 555 fewer instructions per request than a
  // digit-by-digit loop (29,122 -> 28,567, bench/instructions).
  static constexpr std::array<char, 512> kHexPairs = [] {
    std::array<char, 512> t{};
    constexpr char kDigits[] = "0123456789abcdef";
    for (int b = 0; b < 256; ++b) {
      t[2 * b] = kDigits[b >> 4];
      t[2 * b + 1] = kDigits[b & 0xf];
    }
    return t;
  }();
  // 8-4-4-4-12 hex digits, most significant first: bytes 0-3, 4-5, 6-7, 8-9, 10-15.
  id.assign(36, '-');  // in place: a reused exchange keeps the string's buffer
  char* out = id.data();
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) ++out;  // over a dash
    const uint64_t word = i < 8 ? hi : lo;
    const unsigned byte = static_cast<unsigned>(word >> (56 - 8 * (i & 7))) & 0xff;
    out[0] = kHexPairs[2 * byte];
    out[1] = kHexPairs[2 * byte + 1];
    out += 2;
  }
}

std::string make_request_id() {
  std::string id;
  make_request_id(id);
  return id;
}

}  // namespace sluice::http
