#include "support/http_client.h"

#include <fmt/core.h>

#include <charconv>

namespace sluice::testing {

std::string build_request(std::string_view method, std::string_view target, const Headers& headers,
                          std::string_view body) {
  std::string out = fmt::format("{} {} HTTP/1.1\r\n", method, target);
  if (!find_header(headers, "host")) out += "Host: localhost\r\n";
  for (const auto& h : headers) out += fmt::format("{}: {}\r\n", h.name, h.value);
  if (!body.empty() && !find_header(headers, "content-length") && !find_header(headers, "transfer-encoding")) {
    out += fmt::format("Content-Length: {}\r\n", body.size());
  }
  out += "\r\n";
  out.append(body);
  return out;
}

HttpConnection::HttpConnection(uint16_t port)
    : socket_(Socket::connect_local(port, &connect_errno_)), reader_(socket_) {}

bool HttpConnection::send(std::string_view raw, milliseconds timeout) {
  return socket_.send_all(raw, deadline_in(timeout)) == IoStatus::kOk;
}

bool HttpConnection::send_generated(uint64_t n, Checksum& sum, milliseconds timeout) {
  auto deadline = deadline_in(timeout);
  std::string buf(256 * 1024, '\0');
  PatternStream stream(n);
  while (stream.remaining() > 0) {
    size_t got = stream.next(buf.data(), buf.size());
    sum.update(buf.data(), got);
    if (socket_.send_all(std::string_view(buf.data(), got), deadline) != IoStatus::kOk) return false;
  }
  return true;
}

HttpResponse HttpConnection::read_response(const ResponseOptions& options) {
  HttpResponse r;
  auto deadline = deadline_in(options.timeout);
  std::string head;
  IoStatus s = reader_.read_head(head, deadline);
  if (s != IoStatus::kOk) {
    r.error = fmt::format("reading the response head: {} ({})", to_string(s), reader_.error());
    return r;
  }
  if (!parse_head(head, r.status_line, r.headers)) {
    r.error = "malformed response head: " + head;
    return r;
  }
  // "HTTP/1.1 200 OK"
  size_t sp1 = r.status_line.find(' ');
  if (sp1 == std::string::npos || r.status_line.size() < sp1 + 4) {
    r.error = "malformed status line: " + r.status_line;
    return r;
  }
  r.version = r.status_line.substr(0, sp1);
  auto [p, ec] = std::from_chars(r.status_line.data() + sp1 + 1, r.status_line.data() + sp1 + 4, r.status);
  if (ec != std::errc()) {
    r.error = "malformed status line: " + r.status_line;
    return r;
  }
  r.reason = sp1 + 5 <= r.status_line.size() ? r.status_line.substr(sp1 + 5) : "";

  Checksum sum;
  Sink sink = [&](const char* data, size_t n) {
    sum.update(data, n);
    if (options.store_body) r.body.append(data, n);
  };
  auto te = r.header("transfer-encoding");
  auto cl = r.header("content-length");
  if (options.head_request || r.status / 100 == 1 || r.status == 204 || r.status == 304) {
    r.framing = HttpResponse::Framing::kNone;
  } else if (te) {
    r.framing = HttpResponse::Framing::kChunked;
    if (!iequals(*te, "chunked")) {
      r.error = "unexpected transfer-encoding: " + *te;
      return r;
    }
    s = reader_.read_chunked(sink, deadline, &r.chunk_sizes, &r.trailer_lines);
  } else if (cl) {
    r.framing = HttpResponse::Framing::kContentLength;
    s = reader_.read_exact(std::stoull(*cl), sink, deadline);
  } else {
    r.framing = HttpResponse::Framing::kUntilClose;
    s = reader_.read_to_eof(sink, deadline);
  }
  r.body_bytes = sum.bytes();
  r.body_checksum = sum.value();
  if (s != IoStatus::kOk) {
    r.error = fmt::format("reading the response body after {} bytes: {} ({})", r.body_bytes, to_string(s),
                          reader_.error());
  }
  return r;
}

HttpResponse HttpConnection::request(std::string_view method, std::string_view target,
                                     const Headers& headers, std::string_view body, milliseconds timeout) {
  if (!send(build_request(method, target, headers, body), timeout)) {
    HttpResponse r;
    r.error = fmt::format("sending the request failed (connected: {}, errno {})", connected(),
                          connected() ? socket_.last_errno() : connect_errno_);
    return r;
  }
  ResponseOptions options;
  options.head_request = method == "HEAD";
  options.timeout = timeout;
  return read_response(options);
}

HttpConnection::CloseResult HttpConnection::read_until_close(milliseconds timeout) {
  CloseResult result;
  result.data = reader_.take_buffered();
  auto deadline = deadline_in(timeout);
  char buf[16 * 1024];
  while (true) {
    size_t got = 0;
    IoStatus s = socket_.read_some(buf, sizeof buf, got, deadline);
    if (s == IoStatus::kOk) {
      result.data.append(buf, got);
      continue;
    }
    result.status = s;
    return result;
  }
}

HttpResponse http_get(uint16_t port, std::string_view target, const Headers& headers) {
  HttpConnection c(port);
  if (!c.connected()) {
    HttpResponse r;
    r.error = fmt::format("connect to port {} failed (errno {})", port, c.connect_errno());
    return r;
  }
  return c.request("GET", target, headers);
}

RawResponse parse_raw_response(std::string_view bytes) {
  RawResponse r;
  size_t end = bytes.find("\r\n\r\n");
  if (end == std::string_view::npos) return r;
  std::string first;
  if (!parse_head(bytes.substr(0, end), first, r.headers)) return r;
  if (first.size() < 12 || first.rfind("HTTP/1.", 0) != 0) return r;
  auto [p, ec] = std::from_chars(first.data() + 9, first.data() + 12, r.status);
  if (ec != std::errc()) return r;
  r.body.assign(bytes.substr(end + 4));
  r.ok = true;
  return r;
}

}  // namespace sluice::testing
