#pragma once
// The HTTP/1.1 upstream session: a stream to one endpoint, the request head and body framing,
// and the parser of its responses. One request at a time; reused from the pool when the
// response ended cleanly.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "sluice/common/byte_buffer.h"
#include "sluice/http/body_encoder.h"
#include "sluice/http/parser.h"
#include "sluice/stats/metrics.h"
#include "sluice/upstream/circuit_breaker.h"
#include "sluice/upstream/session.h"

namespace sluice::upstream {

class Http1Session final : public Session {
 public:
  // Counts itself in the cluster's and endpoint's active-connection gauges and in the worker's
  // circuit breaker for its lifetime.
  Http1Session(const asio::any_io_executor& ex, stats::ClusterStats* cluster_stats,
               stats::EndpointStats* endpoint_stats, std::shared_ptr<CircuitBreaker> breaker);
  ~Http1Session() override;
  Http1Session(const Http1Session&) = delete;
  Http1Session& operator=(const Http1Session&) = delete;

  std::string_view protocol() const override { return "HTTP/1.1"; }
  net::Stream& stream() override { return stream_; }
  void cancel(error_code& ec) override { stream_.cancel(ec); }
  void queue_request_head(const http::UpstreamRequestInput& head, bool head_request) override;
  void queue_request_body(std::span<const std::span<const char>> body, bool last,
                          std::span<const http::HeaderView> trailers) override;
  awaitable<bool> write_request() override;
  bool write_request_now(bool more_follows) override {
    return stream_.write_now(out_, more_follows);
  }
  ResponseStep parse_response() override;
  const ResponseHeadFacts& head_facts() const override { return facts_; }
  std::span<const http::HeaderView> response_fields() const override { return fields_; }
  std::span<const std::span<const char>> body() const override { return parser_.body(); }
  std::span<const http::HeaderView> trailers() const override { return trailers_; }
  void release_body() override;
  awaitable<ReadStatus> read_response() override;
  bool finish_at_eof() override;
  ByteBuffer& leftover() override;
  bool reusable() override;

  // --- For the pool. ---
  stats::ClusterStats* cluster_stats() const { return cluster_stats_; }
  stats::EndpointStats* endpoint_stats() const { return endpoint_stats_; }
  CircuitBreaker* breaker() const { return breaker_.get(); }
  std::chrono::steady_clock::time_point idle_since{};
  uint64_t pool_generation = 0;  // EndpointPool::generation() when it was made

 private:
  stats::ClusterStats* cluster_stats_;
  stats::EndpointStats* endpoint_stats_;
  std::shared_ptr<CircuitBreaker> breaker_;
  net::Stream stream_;
  ByteBuffer in_;
  http::Parser parser_;
  // The request being written.
  http::HeadParts head_parts_;
  std::vector<asio::const_buffer> out_;
  http::Http1BodyEncoder encoder_;
  bool chunked_request_ = false;
  // The response being read.
  bool head_request_ = false;
  bool response_started_ = false;  // bytes of the response to the last request were read
  size_t parse_pos_ = 0;
  // After the parser pauses at the end of a head it must run once more even with no new bytes:
  // that is how a body-less message (204, 304, Content-Length: 0) reaches its end.
  bool step_again_ = false;
  ResponseHeadFacts facts_;
  std::string codings_;
  std::vector<http::HeaderView> fields_;
  std::vector<http::HeaderView> trailers_;
};

}  // namespace sluice::upstream
