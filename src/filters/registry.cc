#include "sluice/filters/registry.h"

namespace sluice::filters {

namespace {
std::vector<StepFactory>& factories() {
  static std::vector<StepFactory> list;
  return list;
}
}  // namespace

void register_step_factory(StepFactory factory) { factories().push_back(std::move(factory)); }

void clear_step_factories() { factories().clear(); }

const std::vector<StepFactory>& step_factories() { return factories(); }

}  // namespace sluice::filters
