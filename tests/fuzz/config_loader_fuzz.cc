// Fuzzes the configuration loader with the input as the bytes of sluice.yaml, then builds the
// route tables and the /config_dump JSON from whatever it accepted, as a (re)load does.
//
// The loader runs on the control thread at start and on SIGHUP, so an exception that escapes
// it, a crash, or a file that takes seconds or hundreds of MiB (YAML alias bombs, regex bombs)
// is a finding: scripts/fuzz runs this target with -timeout=2 -rss_limit_mb=512.
#include <re2/re2.h>

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "sluice/config/dump.h"
#include "sluice/config/loader.h"
#include "sluice/server/snapshot.h"

namespace {

using namespace sluice;

bool is_lower(std::string_view s) {
  for (char c : s) {
    if (c >= 'A' && c <= 'Z') return false;
  }
  return true;
}

// List entries in the loaded configuration (valid or not): a measure of the work a load did.
size_t count_entries(const config::Config& c) {
  size_t n = c.listeners.size() + c.clusters.size();
  for (const auto& l : c.listeners) {
    n += l.virtual_hosts.size();
    for (const auto& vh : l.virtual_hosts) {
      n += vh.domains.size() + vh.routes.size();
      for (const auto& r : vh.routes) n += r.headers.size() + r.query.size();
    }
  }
  for (const auto& cl : c.clusters) {
    n += cl.endpoints.size();
    if (cl.health_check) n += cl.health_check->expected_statuses.size();
  }
  return n;
}

bool compiles(const std::string& pattern) { return re2::RE2(pattern, re2::RE2::Quiet).ok(); }

// What the code after the loader takes for granted about an accepted configuration.
void check_accepted(const config::Config& c) {
  FUZZ_CHECK(!c.listeners.empty(), "accepted a configuration without listeners");
  std::set<std::string> clusters;
  for (const auto& cl : c.clusters) {
    FUZZ_CHECK(!cl.name.empty(), "accepted a cluster without a name");
    FUZZ_CHECK(!cl.endpoints.empty(), "accepted a cluster without endpoints");
    clusters.insert(cl.name);
  }
  for (const auto& l : c.listeners) {
    FUZZ_CHECK(!l.virtual_hosts.empty(), "accepted a listener without virtual hosts");
    if (l.tls) {
      FUZZ_CHECK(!l.tls->certificates.empty(), "accepted a listener tls without certificates");
      FUZZ_CHECK(!l.tls->alpn.empty(), "accepted a listener tls without ALPN protocols");
    }
    for (const auto& vh : l.virtual_hosts) {
      FUZZ_CHECK(!vh.domains.empty(), "accepted a virtual host without domains");
      for (const auto& d : vh.domains) FUZZ_CHECK(!d.empty() && is_lower(d), "domain empty or not lower-case");
      FUZZ_CHECK(!vh.routes.empty(), "accepted a virtual host without routes");
      for (const auto& r : vh.routes) {
        if (r.action == config::Route::ActionKind::kCluster) {
          FUZZ_CHECK(clusters.count(r.cluster) == 1, "a route names a cluster that is not defined");
        }
        if (r.path_kind == config::Route::PathKind::kRegex) {
          // PathMatcher builds the RE2 without checking it (the loader validated it).
          FUZZ_CHECK(compiles(r.path), "accepted a path regex that RE2 rejects");
          FUZZ_CHECK(!r.prefix_rewrite, "accepted prefix_rewrite with a regex match");
        } else {
          FUZZ_CHECK(!r.path.empty() && r.path.front() == '/', "accepted a path that does not start with '/'");
        }
        for (const auto& h : r.headers) {
          FUZZ_CHECK(!h.name.empty() && is_lower(h.name), "header condition name empty or not lower-case");
          if (h.kind == config::HeaderMatch::Kind::kRegex) {
            FUZZ_CHECK(compiles(h.value), "accepted a header regex that RE2 rejects");
          }
        }
        for (const auto& q : r.query) FUZZ_CHECK(!q.name.empty(), "query condition without a name");
        if (r.client_cert) {
          FUZZ_CHECK(l.tls && l.tls->client_certificate, "a client_cert route on a listener that asks for none");
          for (const auto* m : {&r.client_cert->subject, &r.client_cert->uri_san, &r.client_cert->dns_san}) {
            if (!*m) continue;
            FUZZ_CHECK(!(*m)->value.empty(), "accepted an empty client_cert string match");
            if ((*m)->kind == config::StringMatch::Kind::kRegex) {
              FUZZ_CHECK(compiles((*m)->value), "accepted a client_cert regex that RE2 rejects");
            }
          }
        }
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view yaml(reinterpret_cast<const char*>(data), size);
  config::LoadResult loaded = config::load_string(yaml, "fuzz.yaml");
  // YAML aliases name a subtree again in a few bytes, and the loader walks and copies every
  // reference: nested aliases make a file of a few hundred bytes load for minutes into GiBs (a
  // "billion laughs"). Without aliases every entry and error costs bytes of its own; allow a
  // generous 16 per byte, which a small alias bomb exceeds deterministically, long before the
  // -timeout and -rss_limit_mb of scripts/fuzz would notice.
  FUZZ_CHECK(count_entries(loaded.config) + loaded.errors.size() <= 16 * size + 256,
             "the configuration expands to more entries than its size allows (alias bomb)");
  if (!loaded.ok()) {
    for (const auto& e : loaded.errors) {
      FUZZ_CHECK(e.file == "fuzz.yaml", "an error without the file name");
      FUZZ_CHECK(!e.message.empty(), "an error without a message");
      FUZZ_CHECK(e.line >= 0 && e.column >= 0, "an error with a negative position");
    }
    FUZZ_CHECK(!loaded.error_text().empty(), "errors but no error text");
    return 0;
  }
  check_accepted(loaded.config);
  auto routing = server::Routing::build(loaded.config);
  FUZZ_CHECK(routing->listeners.size() == loaded.config.listeners.size(), "a route table per listener");
  FUZZ_CHECK(!config::to_json(loaded.config).empty(), "empty /config_dump");
  return 0;
}
