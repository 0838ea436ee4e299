#include "sluice/config/header_template.h"

#include <fmt/core.h>

#include <cctype>

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
    if (name == "DOWNSTREAM_REMOTE_ADDRESS") {
      parts.push_back({TemplatePart::Kind::kDownstreamRemoteAddress, ""});
    } else if (name == "UPSTREAM_HOST") {
      parts.push_back({TemplatePart::Kind::kUpstreamHost, ""});
    } else if (name == "REQUEST_ID") {
      parts.push_back({TemplatePart::Kind::kRequestId, ""});
    } else if (name.size() >= 5 && name.substr(0, 4) == "REQ(" && name.back() == ')') {
      std::string header(name.substr(4, name.size() - 5));
      if (!is_header_name(header)) {
        return Error{fmt::format("%{}%: '{}' is not a header name", name, header)};
      }
      for (char& c : header) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      parts.push_back({TemplatePart::Kind::kRequestHeader, std::move(header)});
    } else {
      return Error{fmt::format("unknown variable '%{}%' (known: %REQ(header-name)%, "
                               "%DOWNSTREAM_REMOTE_ADDRESS%, %UPSTREAM_HOST%, %REQUEST_ID%; write %% "
                               "for a literal '%')", name)};
    }
  }
  return parts;
}

}  // namespace sluice::config
