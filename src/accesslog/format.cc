#include "sluice/accesslog/format.h"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "sluice/net/stream.h"
#include "sluice/stats/exposition.h"

namespace sluice::accesslog {

std::string rfc3339_ms(std::chrono::system_clock::time_point t) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count() % 1000;
  return fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:03}Z", fmt::gmtime(std::chrono::system_clock::to_time_t(t)), ms);
}

namespace {

// `"key":"value"`, or `"key":null` when the value is empty.
void append_json_string_or_null(std::string& out, std::string_view key, std::string_view value) {
  out.append(",\"").append(key).append("\":");
  if (value.empty()) out += "null";
  else out.append("\"").append(stats::escape_json(value)).append("\"");
}

void append_json_tls(std::string& out, const net::TlsInfo& tls) {
  append_json_string_or_null(out, "tls_version", tls.version);
  append_json_string_or_null(out, "tls_cipher", tls.cipher);
  append_json_string_or_null(out, "sni", tls.sni);
  // Null without a verified client certificate; the URI SANs joined by ",".
  append_json_string_or_null(out, "peer_subject", tls.peer_certificate ? tls.peer_subject : "");
  std::string uris;
  if (tls.peer_certificate) uris = fmt::format("{}", fmt::join(tls.peer_uri_sans, ","));
  append_json_string_or_null(out, "peer_uri_san", uris);
}

}  // namespace

void append_json(std::string& out, const Entry& e) {
  using stats::escape_json;
  auto o = std::back_inserter(out);
  fmt::format_to(o,
                 "{{\"start_time\":\"{}\",\"request_id\":\"{}\",\"client_address\":\"{}\","
                 "\"method\":\"{}\",\"authority\":\"{}\",\"path\":\"{}\",\"protocol\":\"{}\","
                 "\"status\":{},\"bytes_received\":{},\"bytes_sent\":{},\"duration_ms\":{:.3f},",
                 rfc3339_ms(e.start), escape_json(e.request_id), escape_json(e.client_address),
                 escape_json(e.method), escape_json(e.authority), escape_json(e.path),
                 escape_json(e.protocol), e.status, e.received_bytes, e.sent_bytes, e.duration_ms);
  if (e.upstream_endpoint.empty()) out += "\"upstream\":null,";
  else fmt::format_to(o, "\"upstream\":\"{}\",", escape_json(e.upstream_endpoint));
  if (e.upstream_ms) fmt::format_to(o, "\"upstream_time_ms\":{:.3f},", *e.upstream_ms);
  else out += "\"upstream_time_ms\":null,";
  fmt::format_to(o, "\"route\":\"{}\",", escape_json(e.route));
  if (e.cluster.empty()) out += "\"cluster\":null,";
  else fmt::format_to(o, "\"cluster\":\"{}\",", escape_json(e.cluster));
  fmt::format_to(o, "\"flags\":\"{}\"", escape_json(e.flags));
  if (e.grpc_status) fmt::format_to(o, ",\"grpc_status\":{}", *e.grpc_status);
  if (e.tls) append_json_tls(out, *e.tls);
  out += "}\n";
}

void append_text(std::string& out, const Entry& e) {
  auto dash = [](std::string_view s) { return s.empty() ? std::string_view("-") : s; };
  // Control characters would let a client forge lines; the JSON format escapes them, the text
  // format replaces them.
  auto clean = [](std::string_view s) {
    std::string r(s);
    for (char& c : r) {
      if (static_cast<unsigned char>(c) <= 0x20 || c == '"') c = '?';
    }
    return r;
  };
  fmt::format_to(std::back_inserter(out),
                 "{} {} \"{} {} {}\" {} {} {} {} {:.3f} {} {} {} {} \"{}\" {}\n", rfc3339_ms(e.start),
                 dash(e.client_address), clean(dash(e.method)), clean(dash(e.path)), dash(e.protocol),
                 e.status, dash(e.flags), e.received_bytes, e.sent_bytes, e.duration_ms,
                 e.upstream_ms ? fmt::format("{:.3f}", *e.upstream_ms) : std::string("-"),
                 dash(e.route), dash(e.cluster), dash(e.upstream_endpoint), clean(dash(e.authority)),
                 clean(dash(e.request_id)));
}

}  // namespace sluice::accesslog
