#include "sluice/http/fields.h"

#include <algorithm>

namespace sluice::http {

std::optional<std::string_view> FieldList::get(std::string_view name) const {
  for (const auto& f : items_) {
    if (iequals(f.name, name)) return f.value;
  }
  return std::nullopt;
}

void FieldList::remove(std::string_view name) {
  std::erase_if(items_, [&](const HeaderView& f) { return iequals(f.name, name); });
}

void FieldList::set(std::string_view name, std::string value) {
  remove(name);
  add(name, std::move(value));
}

void FieldList::add(std::string_view name, std::string value) {
  items_.push_back({name, own(std::move(value))});
}

std::string_view FieldList::own(std::string s) { return owned_.emplace_front(std::move(s)); }

}  // namespace sluice::http
