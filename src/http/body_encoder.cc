#include "sluice/http/body_encoder.h"

#include <fmt/format.h>

#include "sluice/http/head_builder.h"

namespace sluice::http {

namespace {
constexpr std::string_view kCrlf = "\r\n";
constexpr std::string_view kLastChunk = "0\r\n\r\n";
}  // namespace

void Http1BodyEncoder::append(std::vector<asio::const_buffer>& out,
                              std::span<const std::span<const char>> body, bool chunked, bool last,
                              std::span<const HeaderView> trailers) {
  size_t total = 0;
  for (const auto& s : body) total += s.size();
  if (chunked && total > 0) {
    auto r = fmt::format_to_n(chunk_head_.data(), chunk_head_.size(), "{:x}\r\n", total);
    out.emplace_back(chunk_head_.data(), static_cast<size_t>(r.out - chunk_head_.data()));
  }
  for (const auto& s : body) {
    if (!s.empty()) out.emplace_back(s.data(), s.size());
  }
  if (chunked && total > 0) out.emplace_back(kCrlf.data(), kCrlf.size());
  if (!chunked || !last) return;
  if (trailers.empty()) {
    out.emplace_back(kLastChunk.data(), kLastChunk.size());
    return;
  }
  // Trailers travel end to end like the body (RFC 9110 §6.5), except hop-by-hop fields.
  last_chunk_ = "0\r\n";
  for (const auto& t : trailers) {
    if (is_hop_by_hop(t.name)) continue;
    last_chunk_.append(t.name).append(": ").append(t.value).append("\r\n");
  }
  last_chunk_.append("\r\n");
  out.emplace_back(last_chunk_.data(), last_chunk_.size());
}

}  // namespace sluice::http
