#pragma once
// The closed sets of the TLS policy that metrics label by: the protocol versions and cipher
// suites a Sluice listener can agree on (the fixed policy of tls_context.cc), and the reasons a
// handshake fails. Kept free of OpenSSL headers so the stats module can size its cells by them.
#include <array>
#include <cstddef>
#include <string_view>

namespace sluice::net {

// Why a TLS handshake failed (label `reason`).
enum class TlsFailure {
  kNone,
  kTimeout,              // the handshake did not finish within tls_handshake_timeout
  kProtocolVersion,      // no version in common (TLS 1.0/1.1 offers), or not TLS at all
  kNoSharedCipher,
  kNoApplicationProtocol,  // ALPN offered, none in common
  kNoClientCertificate,  // mTLS required and none was sent
  kUnknownCa,            // the peer's chain leads to no trusted CA
  kBadCertificate,       // expired, revoked, wrong name, bad signature, ...
  kClosed,               // the peer went away during the handshake
  kOther,
  kCount,
};
inline constexpr size_t kTlsFailureCount = static_cast<size_t>(TlsFailure::kCount);
const char* to_string(TlsFailure failure);  // "no_shared_cipher", ...

// Versions (label `version`), as OpenSSL names them.
inline constexpr std::array<std::string_view, 2> kTlsVersionNames = {"TLSv1.2", "TLSv1.3"};
// Cipher suites (label `cipher`), OpenSSL's names, in the policy's preference order.
inline constexpr std::array<std::string_view, 9> kTlsCipherNames = {
    "TLS_AES_128_GCM_SHA256",        "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",  "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",   "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",   "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
};

// The index of `name` in `names`, or names.size() when it is not there.
template <size_t N>
constexpr size_t index_of(const std::array<std::string_view, N>& names, std::string_view name) {
  for (size_t i = 0; i < N; ++i) {
    if (names[i] == name) return i;
  }
  return N;
}

}  // namespace sluice::net
