#include "sluice/filters/header_mutation.h"

#include "sluice/proxy/exchange.h"

namespace sluice::filters {

ValueTemplate::ValueTemplate(std::string_view text) {
  std::string literal;
  auto flush = [&] {
    if (!literal.empty()) parts_.push_back({Kind::kLiteral, std::move(literal)});
    literal.clear();
  };
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] != '%') {
      literal += text[i++];
      continue;
    }
    if (i + 1 < text.size() && text[i + 1] == '%') {  // "%%" is a literal percent
      literal += '%';
      i += 2;
      continue;
    }
    size_t close = text.find('%', i + 1);
    if (close == std::string_view::npos) {
      literal.append(text.substr(i));
      break;
    }
    std::string_view var = text.substr(i + 1, close - i - 1);
    std::optional<Part> part;
    if (var == "DOWNSTREAM_REMOTE_ADDRESS") part = Part{Kind::kRemoteAddress, {}};
    else if (var == "UPSTREAM_HOST") part = Part{Kind::kUpstreamHost, {}};
    else if (var == "REQUEST_ID") part = Part{Kind::kRequestId, {}};
    else if (var.starts_with("REQ(") && var.ends_with(")")) {
      part = Part{Kind::kRequestHeader, std::string(var.substr(4, var.size() - 5))};
    }
    if (!part) {
      literal.append(text.substr(i, close - i + 1));
    } else {
      flush();
      parts_.push_back(std::move(*part));
    }
    i = close + 1;
  }
  flush();
  if (parts_.empty()) parts_.push_back({Kind::kLiteral, {}});
}

std::string ValueTemplate::render(const proxy::Exchange& x) const {
  std::string out;
  for (const auto& p : parts_) {
    switch (p.kind) {
      case Kind::kLiteral: out += p.text; break;
      case Kind::kRequestHeader:
        if (auto v = x.request.fields.get(p.text)) out += *v;
        break;
      case Kind::kRemoteAddress: out += x.client_address; break;
      case Kind::kUpstreamHost: out += x.upstream_host; break;
      case Kind::kRequestId: out += x.request_id; break;
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

std::shared_ptr<const Filter> HeaderMutationFilter::create(
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
