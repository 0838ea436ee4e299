#include "sluice/http/forwarded_client_cert.h"

#include "sluice/net/stream.h"

namespace sluice::http {
namespace {

void append_quoted(std::string& out, std::string_view value) {
  out.push_back('"');
  for (char c : value) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
}

// Envoy's header grammar: a value holding a separator is quoted.
void append_value(std::string& out, std::string_view value) {
  if (value.find_first_of(",;=\"\\") == std::string_view::npos) {
    out.append(value);
  } else {
    append_quoted(out, value);
  }
}

}  // namespace

ClientCertHeader client_cert_header(config::ForwardClientCert mode, const net::TlsInfo* tls) {
  if (!tls || !tls->peer_certificate) return ClientCertHeader::kRemove;
  switch (mode) {
    case config::ForwardClientCert::kSanitize: return ClientCertHeader::kRemove;
    case config::ForwardClientCert::kForward: return ClientCertHeader::kForward;
    case config::ForwardClientCert::kAppend: return ClientCertHeader::kAppend;
    case config::ForwardClientCert::kSanitizeSet: return ClientCertHeader::kSet;
  }
  return ClientCertHeader::kRemove;
}

void append_client_cert_element(const net::TlsInfo& tls, std::string& out) {
  out.append("Hash=").append(tls.peer_cert_sha256).append(";Subject=");
  append_quoted(out, tls.peer_subject);
  if (tls.peer_uri_sans.empty()) out.append(";URI=");
  for (const auto& uri : tls.peer_uri_sans) {
    out.append(";URI=");
    append_value(out, uri);
  }
  for (const auto& dns : tls.peer_dns_sans) {
    out.append(";DNS=");
    append_value(out, dns);
  }
}

}  // namespace sluice::http
