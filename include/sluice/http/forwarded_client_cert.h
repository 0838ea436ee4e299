#pragma once
// x-forwarded-client-cert (XFCC): what the request sent upstream says about the client
// certificate of the downstream connection, in Envoy's format and with Envoy's four modes
// (listener `tls.forward_client_cert`). The head builder applies the decision; this file makes it.
#include <string>

#include "sluice/config/config.h"
#include "sluice/http/head_builder.h"

namespace sluice::net {
struct TlsInfo;
}

namespace sluice::http {

// The decision for one request. Only a connection with a verified client certificate (mTLS) may
// keep or get the header: on plaintext, or without a certificate, every mode removes the
// client's header and writes none, so nothing from outside is ever trusted.
ClientCertHeader client_cert_header(config::ForwardClientCert mode, const net::TlsInfo* tls);

// Appends this connection's XFCC element, as Envoy writes it with subject, URI and DNS set:
// Hash=<sha256 of the DER certificate, hex>;Subject="<RFC 2253 subject>";URI=<uri>;DNS=<dns>,
// one URI= per URI SAN (an empty URI= when there is none, as Envoy writes it) and one DNS= per
// DNS SAN. A quoted value escapes '"' and '\' with '\'; a SAN holding one of , ; = " \ is
// quoted too, so it cannot split the element or the list.
void append_client_cert_element(const net::TlsInfo& tls, std::string& out);

}  // namespace sluice::http
