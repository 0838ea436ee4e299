#pragma once
// A protocol-neutral, mutable list of header (or trailer) fields for one exchange. Fields that
// arrived stay views into the codec's buffer; fields a step adds or rewrites are owned here, in
// storage whose addresses never move, so every view in the list stays valid until clear().
#include <forward_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/http/request_view.h"

namespace sluice::http {

class FieldList {
 public:
  std::vector<HeaderView>& items() { return items_; }
  const std::vector<HeaderView>& items() const { return items_; }
  void clear() {
    items_.clear();
    owned_.clear();
  }
  void push_back(HeaderView field) { items_.push_back(field); }

  // The first value of `name` (case-insensitive), if any.
  std::optional<std::string_view> get(std::string_view name) const;
  // Removes every field called `name`.
  void remove(std::string_view name);
  // Replaces every field called `name` by one with `value`.
  void set(std::string_view name, std::string value);
  // Appends a field, keeping the ones already there.
  void add(std::string_view name, std::string value);
  // Copies `s` into storage that lives as long as this list's current contents.
  std::string_view own(std::string s);

 private:
  std::vector<HeaderView> items_;
  // A forward_list: adding never moves the strings views point into, and an empty one allocates
  // nothing (a deque allocates ~600 bytes when constructed, four of them per connection).
  std::forward_list<std::string> owned_;
};

}  // namespace sluice::http
