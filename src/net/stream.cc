#include "sluice/net/stream.h"

namespace sluice::net {

PeerInfo Stream::peer() const {
  PeerInfo info;
  error_code ec;
  auto remote = socket_.remote_endpoint(ec);
  if (ec) {
    info.address = "unknown";
    return info;
  }
  info.address = remote.address().to_string();
  info.port = remote.port();
  return info;
}

}  // namespace sluice::net
