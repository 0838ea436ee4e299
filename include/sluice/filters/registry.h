#pragma once
// Compiled-in steps beyond the built-in ones. A registered factory sees every route's
// configuration while a snapshot is built (control thread) and may add one step to its chain,
// after header mutation and before the route's action (direct_response, redirect, router).
// This is how a step that has no configuration key yet, or a test's recording step, joins
// chains; the built-in steps with keys are wired in router::Route directly.
//
// Register before the first configuration load (the registry is not locked: snapshots are built
// on one thread, and registration must not race with that).
#include <functional>
#include <memory>
#include <vector>

#include "sluice/config/config.h"
#include "sluice/filters/filter.h"

namespace sluice::filters {

// Returns the step for `route`, or null to add nothing.
using StepFactory = std::function<std::shared_ptr<Filter>(const config::Route& route)>;

void register_step_factory(StepFactory factory);
// Removes every registered factory (tests).
void clear_step_factories();
const std::vector<StepFactory>& step_factories();

}  // namespace sluice::filters
