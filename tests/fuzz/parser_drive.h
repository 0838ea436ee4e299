#pragma once
// Drives one http::Parser over a byte string the way the connection code does, checks on every
// step what that code relies on, and records what was parsed, so that different ways of feeding
// the same bytes can be compared: one read, two reads, one byte per read must parse alike.
// Shared by the request and response parser targets.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "sluice/http/parser.h"

namespace sluice::fuzz {

struct ParsedMessage {
  std::string head;  // start line, framing and header fields, rendered as text
  std::string body;  // the body bytes the parser reported (chunked framing removed)
  bool operator==(const ParsedMessage&) const = default;
};

struct ParseOutcome {
  std::vector<ParsedMessage> messages;  // complete messages, in order
  bool error = false;                   // the parser rejected the bytes after those messages
  bool operator==(const ParseOutcome&) const = default;
  std::string describe() const;
};

struct DriveOptions {
  http::Parser::Kind kind = http::Parser::Kind::kRequest;
  uint32_t max_headers = 100;  // the listener default (config::Listener::max_request_headers_count)
  // Responses: bit i set means response i answers a HEAD request (Parser::set_skip_body).
  uint32_t head_mask = 0;
  // Call finish() after the last bytes when a head has been parsed, as relay_response does when
  // the upstream closes its side.
  bool finish_at_end = false;
  // Give each arrival its own heap copy of the bytes so far and free the previous one, as the
  // connection's read buffer does when it grows: a pointer the parser kept from an older
  // buffer, or a read past the bytes that have arrived, is then an ASan report.
  bool move_buffer = false;
};

// `arrivals` are the growing ends of the received bytes, increasing, the last one `size`.
// Each arrival is parsed like a read: execute() from the parse position to the arrival, advance
// by `consumed`, and after a head step once more with no new bytes.
ParseOutcome drive(const char* data, size_t size, const std::vector<size_t>& arrivals,
                   const DriveOptions& options);

// Aborts, printing both outcomes, when `other` (parsed with the bytes fed as `how`) differs from
// `reference`.
void expect_same(const ParseOutcome& reference, const ParseOutcome& other, const char* how);

// The three feeds each parser target compares: all at once, split at `split` (with the buffer
// moving between the reads), and one byte per read.
void drive_three_ways(const char* data, size_t size, size_t split, const DriveOptions& options);

}  // namespace sluice::fuzz
