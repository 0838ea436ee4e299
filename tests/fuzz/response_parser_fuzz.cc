// Fuzzes http::Parser in response mode, as relay_response drives it: chunked decoding, bodies
// delimited by the end of the stream (finish()), 1xx/204/304, and responses to HEAD
// (set_skip_body), over a keep-alive connection that carries several responses.
//
// Input: two control bytes, then the bytes an upstream sends on one connection. The first
// control byte chooses where the bytes are split into two reads (0 = before the first byte,
// 255 = after the last); the low four bits of the second say which of the first four responses
// answer a HEAD request (bit i for response i, so '0' none, '1' the first, '3' the first two).
// The bytes are parsed in one read, in those two reads and one byte per read, each followed by
// the upstream closing; the three must agree, and every step must keep the invariants checked
// in parser_drive.cc.
#include <cstddef>
#include <cstdint>

#include "parser_drive.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const char* wire = reinterpret_cast<const char*>(data + 2);
  const size_t n = size - 2;
  sluice::fuzz::DriveOptions options;
  options.kind = sluice::http::Parser::Kind::kResponse;
  options.max_headers = 1000;  // what the upstream connection pool uses
  options.head_mask = data[1] & 0x0f;
  options.finish_at_end = true;
  sluice::fuzz::drive_three_ways(wire, n, n * data[0] / 255, options);
  return 0;
}
