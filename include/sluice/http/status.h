// Reason phrases for HTTP/1.1 status lines.
#pragma once

#include <string_view>

namespace sluice::http {

// The reason phrase RFC 9110 §15 gives `status` ("Not Found" for 404), or "" for a code it does
// not define: an empty reason phrase is valid HTTP/1.1 (RFC 9112 §4). Used where no phrase came
// with the status: Sluice's own replies, and responses from HTTP/2 backends (HTTP/2 has none).
std::string_view standard_reason(int status);

}  // namespace sluice::http
