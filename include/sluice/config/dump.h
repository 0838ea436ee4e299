#pragma once
// The effective configuration (defaults filled in) as JSON, for /config_dump.
#include <string>

#include "sluice/config/config.h"

namespace sluice::config {

std::string to_json(const Config& config);

}  // namespace sluice::config
