// Fuzzes http::Parser in request mode, as DownstreamConnection drives it.
//
// Input: one control byte, then the bytes a client sends on one connection (any number of
// pipelined requests). The control byte chooses where the bytes are split into two reads
// (0 = before the first byte, 255 = after the last). The bytes are parsed in one read, in those
// two reads and one byte per read; the three must agree, and every step must keep the
// invariants checked in parser_drive.cc.
#include <cstddef>
#include <cstdint>

#include "parser_drive.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const char* wire = reinterpret_cast<const char*>(data + 1);
  const size_t n = size - 1;
  sluice::fuzz::DriveOptions options;
  options.kind = sluice::http::Parser::Kind::kRequest;
  sluice::fuzz::drive_three_ways(wire, n, n * data[0] / 255, options);
  return 0;
}
