#include "sluice/filters/header_mutation.h"

#include "sluice/net/stream.h"
#include "sluice/proxy/exchange.h"

namespace sluice::filters {

ValueTemplate::ValueTemplate(std::string_view text) {
  auto parsed = config::parse_header_template(text);
  if (parsed) parts_ = std::move(parsed).value();
  else parts_.push_back({config::TemplatePart::Kind::kLiteral, std::string(text)});
}

std::string ValueTemplate::render(const proxy::Exchange& x) const {
  using Kind = config::TemplatePart::Kind;
  // TLS variables are empty on plaintext, and the peer's without a verified client certificate,
  // like %UPSTREAM_HOST% before an endpoint is chosen.
  const net::TlsInfo* tls = x.tls;
  const net::TlsInfo* peer = tls && tls->peer_certificate ? tls : nullptr;
  auto join = [](std::string& s, const std::vector<std::string>& sans) {
    for (size_t i = 0; i < sans.size(); ++i) {
      if (i > 0) s += ',';
      s += sans[i];
    }
  };
  std::string out;
  for (const auto& p : parts_) {
    switch (p.kind) {
      case Kind::kLiteral: out += p.text; break;
      case Kind::kRequestHeader:
        if (auto v = x.request.fields.get(p.text)) out += *v;
        break;
      case Kind::kDownstreamRemoteAddress: out += x.client_address; break;
      case Kind::kUpstreamHost: out += x.upstream_host; break;
      case Kind::kRequestId: out += x.request_id; break;
      case Kind::kDownstreamTlsVersion:
        if (tls) out += tls->version;
        break;
      case Kind::kDownstreamTlsCipher:
        if (tls) out += tls->cipher;
        break;
      case Kind::kRequestedServerName:
        if (tls) out += tls->sni;
        break;
      case Kind::kDownstreamPeerSubject:
        if (peer) out += peer->peer_subject;
        break;
      case Kind::kDownstreamPeerUriSan:
        if (peer) join(out, peer->peer_uri_sans);
        break;
      case Kind::kDownstreamPeerDnsSan:
        if (peer) join(out, peer->peer_dns_sans);
        break;
      case Kind::kDownstreamPeerFingerprint256:
        if (peer) out += peer->peer_cert_sha256;
        break;
    }
  }
  return out;
}

CompiledMutation::CompiledMutation(const config::HeaderMutation& spec) : remove_(spec.remove) {
  for (const auto& [name, value] : spec.set) set_.push_back({name, ValueTemplate(value)});
  for (const auto& [name, value] : spec.add) add_.push_back({name, ValueTemplate(value)});
}

void CompiledMutation::apply(http::FieldList& fields, const proxy::Exchange& x) const {
  for (const auto& name : remove_) fields.remove(name);
  // Removals first (Envoy's order); then every value is rendered before any is applied, so
  // %REQ(h)% sees the fields as this level found them, whatever order the keys are written in.
  std::vector<std::string> rendered;
  rendered.reserve(set_.size() + add_.size());
  for (const auto& e : set_) rendered.push_back(e.value.render(x));
  for (const auto& e : add_) rendered.push_back(e.value.render(x));
  size_t k = 0;
  for (const auto& e : set_) fields.set(e.name, std::move(rendered[k++]));
  for (const auto& e : add_) fields.add(e.name, std::move(rendered[k++]));
}

HeaderMutationFilter::HeaderMutationFilter(const std::vector<const config::HeaderPolicy*>& levels) {
  for (const auto* level : levels) {
    if (!level) continue;
    if (!level->request.empty()) request_.emplace_back(level->request);
    if (!level->response.empty()) response_.emplace_back(level->response);
  }
}

std::shared_ptr<Filter> HeaderMutationFilter::create(
    const std::vector<const config::HeaderPolicy*>& levels) {
  for (const auto* level : levels) {
    if (level && !level->empty()) return std::make_shared<HeaderMutationFilter>(levels);
  }
  return nullptr;
}

void HeaderMutationFilter::on_upstream_request(proxy::Exchange& x) const {
  for (const auto& m : request_) m.apply(x.request.fields, x);
}

void HeaderMutationFilter::on_response_head(proxy::Exchange& x) const {
  for (const auto& m : response_) m.apply(x.response.fields, x);
}

}  // namespace sluice::filters
