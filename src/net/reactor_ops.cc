#include "sluice/net/reactor_ops.h"

#if SLUICE_REACTOR_OPS
namespace sluice::net::reactor_detail {

namespace {

// Asio 1.74 keeps the reactor of a registered descriptor in its descriptor state, a private
// member. An explicit instantiation may name private members ([temp.explicit]: access checking
// does not apply to the names in it), which is how this one pointer-to-member is taken; it is
// made once, here, as an explicit instantiation must be.
struct DescriptorReactorTag {
  using type = ad::epoll_reactor* ad::epoll_reactor::descriptor_state::*;
  friend type member(DescriptorReactorTag);
};

template <typename Tag, typename Tag::type Member>
struct Expose {
  friend typename Tag::type member(Tag) { return Member; }
};

template struct Expose<DescriptorReactorTag, &ad::epoll_reactor::descriptor_state::reactor_>;

}  // namespace

ad::reactor* registered_reactor(ad::reactor::per_descriptor_data descriptor) {
  return descriptor ? descriptor->*member(DescriptorReactorTag{}) : nullptr;
}

}  // namespace sluice::net::reactor_detail
#endif
