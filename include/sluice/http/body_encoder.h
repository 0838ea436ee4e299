#pragma once
// HTTP/1.1 body framing for a message Sluice writes, both directions: the bytes as they are
// when the length was declared, else one chunk per call, and at the end the last chunk with the
// trailer fields (hop-by-hop ones removed). Scatter-gather: body bytes are referenced in place.
#include <array>
#include <span>
#include <string>
#include <vector>

#include "sluice/common/asio.h"
#include "sluice/http/request_view.h"

namespace sluice::http {

class Http1BodyEncoder {
 public:
  // Appends the framing of `body` to `out`; views stay valid until the next call.
  void append(std::vector<asio::const_buffer>& out, std::span<const std::span<const char>> body,
              bool chunked, bool last, std::span<const HeaderView> trailers);

 private:
  std::array<char, 24> chunk_head_{};  // one chunk per call: all spans of a read merged
  std::string last_chunk_;             // "0\r\n", trailer fields, "\r\n"
};

}  // namespace sluice::http
