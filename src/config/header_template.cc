#include "sluice/config/header_template.h"

#include <fmt/core.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <utility>

#include "sluice/http/head_builder.h"

namespace sluice::config {

bool is_header_name(std::string_view name) {
  static constexpr std::string_view kTcharSymbols = "!#$%&'*+-.^_`|~";
  if (name.empty()) return false;
  for (char c : name) {
    bool ok = std::isalnum(static_cast<unsigned char>(c)) || kTcharSymbols.find(c) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

bool is_framing_header(std::string_view lower_case_name) {
  return lower_case_name == "content-length" || lower_case_name == "transfer-encoding" ||
         http::is_hop_by_hop(lower_case_name);
}

namespace {

// The variables without an argument, in the order the error message lists them.
constexpr std::array<std::pair<std::string_view, TemplatePart::Kind>, 10> kVariables{{
    {"DOWNSTREAM_REMOTE_ADDRESS", TemplatePart::Kind::kDownstreamRemoteAddress},
    {"UPSTREAM_HOST", TemplatePart::Kind::kUpstreamHost},
    {"REQUEST_ID", TemplatePart::Kind::kRequestId},
    {"DOWNSTREAM_TLS_VERSION", TemplatePart::Kind::kDownstreamTlsVersion},
    {"DOWNSTREAM_TLS_CIPHER", TemplatePart::Kind::kDownstreamTlsCipher},
    {"REQUESTED_SERVER_NAME", TemplatePart::Kind::kRequestedServerName},
    {"DOWNSTREAM_PEER_SUBJECT", TemplatePart::Kind::kDownstreamPeerSubject},
    {"DOWNSTREAM_PEER_URI_SAN", TemplatePart::Kind::kDownstreamPeerUriSan},
    {"DOWNSTREAM_PEER_DNS_SAN", TemplatePart::Kind::kDownstreamPeerDnsSan},
    {"DOWNSTREAM_PEER_FINGERPRINT_256", TemplatePart::Kind::kDownstreamPeerFingerprint256},
}};

}  // namespace

Result<std::vector<TemplatePart>> parse_header_template(std::string_view text) {
  std::vector<TemplatePart> parts;
  auto literal = [&](std::string_view s) {
    if (s.empty()) return;
    if (parts.empty() || parts.back().kind != TemplatePart::Kind::kLiteral) parts.push_back({});
    parts.back().text.append(s);
  };
  size_t i = 0;
  while (i < text.size()) {
    size_t percent = text.find('%', i);
    literal(text.substr(i, percent - i));
    if (percent == std::string_view::npos) break;
    if (percent + 1 < text.size() && text[percent + 1] == '%') {
      literal("%");
      i = percent + 2;
      continue;
    }
    size_t close = text.find('%', percent + 1);
    if (close == std::string_view::npos) {
      return Error{fmt::format("the '%' at byte {} has no closing '%' (write %% for a literal '%')",
                               percent + 1)};
    }
    std::string_view name = text.substr(percent + 1, close - percent - 1);
    i = close + 1;
    auto known = std::find_if(kVariables.begin(), kVariables.end(),
                              [name](const auto& v) { return v.first == name; });
    if (known != kVariables.end()) {
      parts.push_back({known->second, ""});
    } else if (name.size() >= 5 && name.substr(0, 4) == "REQ(" && name.back() == ')') {
      std::string header(name.substr(4, name.size() - 5));
      if (!is_header_name(header)) {
        return Error{fmt::format("%{}%: '{}' is not a header name", name, header)};
      }
      for (char& c : header) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      parts.push_back({TemplatePart::Kind::kRequestHeader, std::move(header)});
    } else {
      std::string list = "%REQ(header-name)%";
      for (const auto& v : kVariables) list.append(", %").append(v.first).append("%");
      return Error{fmt::format("unknown variable '%{}%' (known: {}; write %% for a literal '%')",
                               name, list)};
    }
  }
  return parts;
}

}  // namespace sluice::config
