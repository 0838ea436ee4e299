#pragma once
// What an HTTP/1 connection needs only while a request is in progress: the read buffer, the
// parser, the exchange runner and the output buffers. An idle keep-alive connection hands it
// back to its worker and takes one again when the next request's first bytes arrive, so 10,000
// idle connections cost a few hundred bytes each instead of ~7 KiB (bench/compare idle). A state
// is handed back only at that idle point, where the parser stands between two messages exactly
// as it would for the connection's own next request.
#include <string>
#include <vector>

#include "sluice/common/asio.h"
#include "sluice/common/byte_buffer.h"
#include "sluice/http/body_encoder.h"
#include "sluice/http/head_builder.h"
#include "sluice/http/parser.h"
#include "sluice/proxy/exchange_runner.h"

namespace sluice::proxy {

struct Http1State {
  static constexpr size_t kReadBufferSize = 32 * 1024;
  static constexpr uint32_t kMaxRequestHeaders = 100;  // set per request from the listener

  Http1State(server::Worker& worker, const asio::any_io_executor& ex)
      : in(kReadBufferSize), parser(http::Parser::Kind::kRequest, kMaxRequestHeaders), runner(worker, ex) {
    out.reserve(16);
  }

  ByteBuffer in;
  http::Parser parser;
  ExchangeRunner runner;
  http::HeadParts head_parts;
  http::Http1BodyEncoder encoder;
  std::vector<asio::const_buffer> out;
  std::string local_head;  // the head (and body) of a local reply
};

}  // namespace sluice::proxy
