#include "sluice/server/snapshot.h"

namespace sluice::server {

const ListenerInfo* Snapshot::find_listener(std::string_view name) const {
  for (const auto& l : listeners()) {
    if (l.spec.name == name) return &l;
  }
  return nullptr;
}

std::shared_ptr<const Routing> Routing::build(config::Config config) {
  auto r = std::make_shared<Routing>();
  r->config = std::move(config);
  // After the move: ListenerInfo::spec refers into r->config, which never changes again.
  r->listeners.reserve(r->config.listeners.size());
  for (const auto& l : r->config.listeners) {
    r->listeners.push_back(ListenerInfo{l, router::RouteTable(l, r->config.clusters)});
  }
  for (auto& l : r->listeners) l.routes.assign_state_slots(l.spec.name, r->step_slots);
  return r;
}

}  // namespace sluice::server
