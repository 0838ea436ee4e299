#include "sluice/filters/local_actions.h"

#include <fmt/core.h>

#include "sluice/proxy/exchange.h"
#include "sluice/router/route_table.h"

namespace sluice::filters {

namespace {

uint16_t default_port(std::string_view scheme) { return scheme == "https" ? 443 : 80; }

// Splits "host:port" / "[v6]:port"; port 0 when absent.
std::pair<std::string_view, uint16_t> split_authority(std::string_view authority) {
  std::string_view host = router::host_without_port(authority);
  uint16_t port = 0;
  if (host.size() < authority.size() && authority[host.size()] == ':') {
    for (char c : authority.substr(host.size() + 1)) {
      if (c < '0' || c > '9' || port > 6553) return {host, 0};
      port = static_cast<uint16_t>(port * 10 + (c - '0'));
    }
  }
  return {host, port};
}

}  // namespace

Status DirectResponseFilter::on_request_head(proxy::Exchange& x) const {
  auto& reply = x.reply_locally(spec_.status, stats::LocalReason::kDirectResponse, spec_.body);
  reply.content_type = spec_.content_type;
  return Status::kLocalReply;
}

std::string RedirectFilter::location(std::string_view scheme, std::string_view authority,
                                     std::string_view path, std::string_view query,
                                     bool has_query) const {
  const std::string_view new_scheme = spec_.scheme ? std::string_view(*spec_.scheme) : scheme;
  auto [host, port] = split_authority(authority);
  std::string_view new_host = spec_.host ? std::string_view(*spec_.host) : host;
  // A port given with the request belonged to the old scheme: a scheme change drops it (nginx's
  // and Envoy's https_redirect do the same), unless the redirect names a port.
  uint16_t new_port = spec_.port ? *spec_.port : (new_scheme != scheme ? 0 : port);
  if (new_port == default_port(new_scheme)) new_port = 0;

  std::string new_path;
  if (spec_.path) {
    new_path = *spec_.path;
  } else if (spec_.prefix_rewrite) {
    new_path = *spec_.prefix_rewrite;
    new_path.append(path.substr(std::min(path.size(), route_prefix_.size())));
  } else {
    new_path.assign(path);
  }
  std::string out = fmt::format("{}://{}", new_scheme, new_host);
  if (new_port != 0) out += fmt::format(":{}", new_port);
  out += new_path;
  // A configured path with its own query replaces the request's query.
  bool path_has_query = new_path.find('?') != std::string::npos;
  if (has_query && !spec_.strip_query && !path_has_query) {
    out += '?';
    out.append(query);
  }
  return out;
}

Status RedirectFilter::on_request_head(proxy::Exchange& x) const {
  std::string loc = location(x.request.scheme, x.request.authority, x.request.path, x.request.query,
                             x.request.has_query);
  auto& reply = x.reply_locally(spec_.code, stats::LocalReason::kRedirect, {});
  reply.headers.add("location", std::move(loc));
  return Status::kLocalReply;
}

}  // namespace sluice::filters
