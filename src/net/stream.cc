#include "sluice/net/stream.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <boost/asio/ssl/error.hpp>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <utility>

namespace sluice::net {

namespace {

// Pieces of a gather write shorter than this are copied into one record with their neighbours
// (a response head and a small body leave in one record and one send); longer ones are written
// from where they are, without a copy.
constexpr size_t kGatherBelow = 4096;
constexpr size_t kMaxRecord = 16384;  // TLS's largest record payload

// OpenSSL wants an empty error queue before a call whose outcome SSL_get_error() judges. Every
// path that leaves errors clears them afterwards, so the queue is normally empty already:
// peeking is cheap, while ERR_clear_error() walks all 16 slots every time (839 instructions of
// a keep-alive TLS GET, callgrind).
inline void clear_stale_errors() {
  if (ERR_peek_error() != 0) ERR_clear_error();
}

void read_peer_identity(X509* cert, TlsInfo& info) {
  info.peer_subject = x509_name_text(X509_get_subject_name(cert));
  auto* sans = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(sans, i);
    if (name->type != GEN_URI && name->type != GEN_DNS) continue;
    const ASN1_IA5STRING* s = name->type == GEN_URI ? name->d.uniformResourceIdentifier : name->d.dNSName;
    // The SANs go into request headers (x-forwarded-client-cert, %DOWNSTREAM_PEER_URI_SAN%) and
    // log lines. An IA5String is ASCII, but nothing stops a CA from signing CR, LF or NUL in
    // one: such bytes (and any outside printable ASCII) are percent-encoded, as a URI writes
    // them, so no certificate can split a header (the subject is escaped by XN_FLAG_RFC2253).
    std::string value;
    const unsigned char* data = ASN1_STRING_get0_data(s);
    for (int k = 0; k < ASN1_STRING_length(s); ++k) {
      const unsigned char c = data[k];
      if (c > 0x20 && c < 0x7f) {
        value.push_back(static_cast<char>(c));
      } else {
        static constexpr char kHex[] = "0123456789ABCDEF";
        value.append({'%', kHex[c >> 4], kHex[c & 15]});
      }
    }
    (name->type == GEN_URI ? info.peer_uri_sans : info.peer_dns_sans).push_back(std::move(value));
  }
  GENERAL_NAMES_free(sans);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (X509_digest(cert, EVP_sha256(), digest, &len) == 1) {
    static constexpr char kHex[] = "0123456789abcdef";
    info.peer_cert_sha256.reserve(len * 2);
    for (unsigned int i = 0; i < len; ++i) {
      info.peer_cert_sha256.push_back(kHex[digest[i] >> 4]);
      info.peer_cert_sha256.push_back(kHex[digest[i] & 15]);
    }
  }
}

// OpenSSL's own socket BIO writes with write(2) and reads with read(2): the VFS path (a file
// position lock per call) and SIGPIPE when the peer has gone. This one uses send/recv with
// MSG_NOSIGNAL | MSG_DONTWAIT, as HAProxy's does, and keeps the file descriptor (and whether the
// last read drained the socket) in the BIO's data, a SocketBio of the Stream.
int bio_write(BIO* b, const char* data, size_t size, size_t* written) {
  BIO_clear_retry_flags(b);
  const int fd = static_cast<SocketBio*>(BIO_get_data(b))->fd;
  const ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL | MSG_DONTWAIT);
  if (n >= 0) {
    *written = static_cast<size_t>(n);
    return 1;
  }
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) BIO_set_retry_write(b);
  return 0;
}

int bio_read(BIO* b, char* data, size_t size, size_t* read) {
  BIO_clear_retry_flags(b);
  auto* socket = static_cast<SocketBio*>(BIO_get_data(b));
  const ssize_t n = ::recv(socket->fd, data, size, MSG_DONTWAIT);
  if (n > 0) {
    *read = static_cast<size_t>(n);
    // A stream socket's recv returns less than asked only when its receive queue is empty.
    socket->drained = static_cast<size_t>(n) < size;
    return 1;
  }
  socket->drained = false;
  if (n == 0) {
    BIO_set_flags(b, BIO_FLAGS_IN_EOF);  // OpenSSL asks BIO_eof() to tell a close from an error
  } else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
    socket->drained = errno != EINTR;
    BIO_set_retry_read(b);
  }
  return 0;
}

long bio_ctrl(BIO* b, int cmd, long, void* ptr) {
  switch (cmd) {
    case BIO_CTRL_FLUSH:  // nothing is buffered here
      return 1;
    case BIO_CTRL_EOF:
      return BIO_test_flags(b, BIO_FLAGS_IN_EOF) != 0;
    case BIO_C_GET_FD: {
      const int fd = static_cast<SocketBio*>(BIO_get_data(b))->fd;
      if (ptr) *static_cast<int*>(ptr) = fd;
      return fd;
    }
    default:
      return 0;
  }
}

int bio_create(BIO* b) {
  BIO_set_init(b, 1);
  return 1;
}

// A BIO over `socket->fd` (not owned: the Stream's socket closes it), which records in `socket`
// whether its last read drained the socket; null if OpenSSL is out of memory.
BIO* socket_bio(SocketBio* socket) {
  static BIO_METHOD* const method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR,
                                 "sluice socket");
    if (m) {
      BIO_meth_set_write_ex(m, bio_write);
      BIO_meth_set_read_ex(m, bio_read);
      BIO_meth_set_ctrl(m, bio_ctrl);
      BIO_meth_set_create(m, bio_create);
    }
    return m;
  }();
  if (!method) return nullptr;
  BIO* bio = BIO_new(method);
  if (bio) BIO_set_data(bio, socket);
  return bio;
}

}  // namespace

const char* to_string(TlsFailure failure) {
  switch (failure) {
    case TlsFailure::kNone: return "none";
    case TlsFailure::kTimeout: return "timeout";
    case TlsFailure::kProtocolVersion: return "protocol_version";
    case TlsFailure::kNoSharedCipher: return "no_shared_cipher";
    case TlsFailure::kNoApplicationProtocol: return "no_application_protocol";
    case TlsFailure::kNoClientCertificate: return "no_client_certificate";
    case TlsFailure::kUnknownCa: return "unknown_ca";
    case TlsFailure::kBadCertificate: return "bad_certificate";
    case TlsFailure::kClosed: return "closed";
    case TlsFailure::kOther:
    case TlsFailure::kCount: return "other";
  }
  return "other";
}

Stream::Stream(tcp::socket socket, SslPtr ssl, std::shared_ptr<const void> owner)
    : socket_(std::move(socket)), tls_(std::make_unique<TlsState>()) {
  tls_->ssl = std::move(ssl);
  tls_->owner = std::move(owner);
  // OpenSSL reads and writes the socket itself through socket_bio(), whose send and recv pass
  // MSG_DONTWAIT, so they never block the worker whatever the descriptor's O_NONBLOCK says; the
  // socket needs no ioctl(FIONBIO) here (accepted sockets are non-blocking from accept4, and
  // Asio makes connected ones so itself).
  if (tls_->ssl) {
    tls_->bio.fd = socket_.native_handle();
    if (BIO* bio = socket_bio(&tls_->bio)) SSL_set_bio(tls_->ssl.get(), bio, bio);
  }
}

Stream::~Stream() = default;
Stream::Stream(Stream&&) noexcept = default;
Stream& Stream::operator=(Stream&&) noexcept = default;

void Stream::send_close_notify() {
  // One attempt, never a wait: the close_notify tells the peer the data ended here (so it can
  // tell a complete response from a cut one); if the socket cannot take it now, the FIN still
  // follows. Once per connection (SSL_shutdown remembers it was sent).
  if (!tls_->established || tls_->failed || !socket_.is_open()) return;
  if (SSL_get_shutdown(tls_->ssl.get()) & SSL_SENT_SHUTDOWN) return;
  clear_stale_errors();
  SSL_shutdown(tls_->ssl.get());
  ERR_clear_error();
}

void Stream::shutdown_send() {
  if (tls_) send_close_notify();
  error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_send, ignored);
}

Stream::Want Stream::tls_outcome(int ret, error_code& ec) {
  const int err = SSL_get_error(tls_->ssl.get(), ret);
  switch (err) {
    case SSL_ERROR_WANT_READ:
      return Want::kRead;
    case SSL_ERROR_WANT_WRITE:
      return Want::kWrite;
    case SSL_ERROR_ZERO_RETURN:  // the peer's close_notify: a clean end of its data
      ec = asio::error::eof;
      return Want::kDone;
    case SSL_ERROR_SYSCALL: {
      const int saved_errno = errno;
      tls_->failed = true;
      tls_->error = ERR_get_error();
      if (tls_->error == 0) {
        ec = saved_errno != 0 ? error_code(saved_errno, boost::system::system_category())
                              : error_code(asio::error::eof);
        return Want::kDone;
      }
      break;
    }
    default:
      tls_->failed = true;
      tls_->error = ERR_get_error();
      break;
  }
  tls_->verify_result = SSL_get_verify_result(tls_->ssl.get());
  ERR_clear_error();
  if (ERR_GET_REASON(tls_->error) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
    // The peer closed the TCP connection without a close_notify: for the HTTP layer that is an
    // end of stream like any other (its own framing tells a cut message).
    ec = asio::error::eof;
  } else {
    ec = error_code(static_cast<int>(tls_->error), asio::error::get_ssl_category());
  }
  return Want::kDone;
}

awaitable<bool> Stream::tls_wait(Want want, error_code& ec) {
  if (want == Want::kRead) {
    co_await async_wait_readable(socket_, asio::redirect_error(use_awaitable, ec));
  } else {
    co_await socket_.async_wait(tcp::socket::wait_write, asio::redirect_error(use_awaitable, ec));
  }
  co_return !ec;
}

awaitable<void> Stream::tls_handshake(error_code& ec) {
  ec = {};
  while (true) {
    const Want want = tls_handshake_step(ec);
    if (want == Want::kDone || !co_await tls_wait(want, ec)) co_return;
  }
}

awaitable<size_t> Stream::tls_read_some(asio::mutable_buffer target, bool next_message, error_code& ec) {
  ec = {};
  if (target.size() == 0) co_return 0;
  // The first read of the peer's next message, after the last recv drained the socket and with
  // nothing in OpenSSL (read-ahead: it takes all the socket has): SSL_read would only find the
  // socket empty, so wait first. The wait completes at once, without a system call, when bytes
  // came since (async_wait_readable).
  if (next_message && tls_->bio.drained && SSL_has_pending(tls_->ssl.get()) == 0 &&
      !co_await tls_wait(Want::kRead, ec)) {
    co_return 0;
  }
  while (true) {
    size_t n = 0;
    const Want want = tls_read_step(target, n, ec);
    if (want == Want::kDone) co_return n;
    if (!co_await tls_wait(want, ec)) co_return 0;
  }
}

awaitable<size_t> Stream::tls_write(WriteCursor cursor, error_code& ec) {
  ec = {};
  while (true) {
    const Want want = tls_write_step(cursor, ec);
    if (want == Want::kDone) co_return cursor.written;
    if (!co_await tls_wait(want, ec)) co_return cursor.written;
  }
}

Stream::Want Stream::tls_handshake_step(error_code& ec) {
  SSL* ssl = tls_->ssl.get();
  if (!ssl) {
    ec = asio::error::no_memory;
    return Want::kDone;
  }
  clear_stale_errors();
  const int ret = SSL_do_handshake(ssl);
  if (ret != 1) return tls_outcome(ret, ec);
  tls_->established = true;
  TlsInfo& info = tls_->info;
  info.version = SSL_get_version(ssl);
  info.cipher = SSL_get_cipher_name(ssl);
  info.resumed = SSL_session_reused(ssl) == 1;
  const unsigned char* alpn = nullptr;
  unsigned int alpn_len = 0;
  SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
  if (alpn) info.alpn.assign(reinterpret_cast<const char*>(alpn), alpn_len);
  if (SSL_is_server(ssl)) {
    if (const char* sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name)) info.sni = sni;
    // Only a verified certificate is an identity (optional mode lets a connection without one
    // through; one that fails verification never gets here).
    X509* peer = SSL_get0_peer_certificate(ssl);
    if (peer && SSL_get_verify_result(ssl) == X509_V_OK) {
      info.peer_certificate = true;
      read_peer_identity(peer, info);
    }
  }
  return Want::kDone;
}

Stream::Want Stream::tls_read_step(asio::mutable_buffer target, size_t& n, error_code& ec) {
  clear_stale_errors();
  const int ret = SSL_read_ex(tls_->ssl.get(), target.data(), target.size(), &n);
  if (ret == 1) return Want::kDone;
  n = 0;
  return tls_outcome(ret, ec);
}

Stream::Want Stream::tls_write_step(WriteCursor& c, error_code& ec) {
  TlsState& t = *tls_;
  SSL* ssl = t.ssl.get();
  while (true) {
    const char* data = nullptr;
    size_t size = 0;
    bool from_staging = false;
    if (t.staging_sent < t.staging.size()) {
      data = t.staging.data() + t.staging_sent;
      size = t.staging.size() - t.staging_sent;
      from_staging = true;
    } else {
      t.staging.clear();
      t.staging_sent = 0;
      if (c.index == c.pieces.size()) return Want::kDone;
      const asio::const_buffer& piece = c.pieces[c.index];
      const size_t left = piece.size() - c.offset;
      if (left >= kGatherBelow) {
        data = static_cast<const char*>(piece.data()) + c.offset;
        size = left;
      } else {
        // Gather small pieces (and the head of the next large one) into one record.
        while (c.index < c.pieces.size() && t.staging.size() < kMaxRecord) {
          const asio::const_buffer& p = c.pieces[c.index];
          const size_t rest = p.size() - c.offset;
          if (rest >= kGatherBelow && !t.staging.empty()) break;
          const size_t take = std::min(rest, kMaxRecord - t.staging.size());
          t.staging.append(static_cast<const char*>(p.data()) + c.offset, take);
          c.offset += take;
          if (c.offset == p.size()) {
            ++c.index;
            c.offset = 0;
          }
        }
        continue;
      }
    }
    size_t sent = 0;
    clear_stale_errors();
    const int ret = SSL_write_ex(ssl, data, size, &sent);
    if (ret != 1) return tls_outcome(ret, ec);
    c.written += sent;
    if (from_staging) {
      t.staging_sent += sent;
    } else {
      c.offset += sent;
      if (c.offset == c.pieces[c.index].size()) {
        ++c.index;
        c.offset = 0;
      }
    }
  }
}

bool Stream::tls_write_now(std::vector<asio::const_buffer>& pieces) {
  if (!tls_->established || tls_->failed) return false;
  WriteCursor c;
  c.pieces.assign(pieces.begin(), pieces.end());
  error_code ec;
  const Want want = tls_write_step(c, ec);
  if (want == Want::kDone && !ec) {
    pieces.clear();
    return true;
  }
  // What went into records, or into the staging record OpenSSL has not taken yet, leaves
  // `pieces`; the asynchronous write goes on from there (staging first, then the same bytes at
  // the same address, as SSL_write wants a retry).
  pieces.erase(pieces.begin(), pieces.begin() + static_cast<std::ptrdiff_t>(c.index));
  if (!pieces.empty() && c.offset > 0) pieces.front() += c.offset;
  // A staged record may still wait with every piece taken: an empty piece keeps the caller's
  // asynchronous write going (it skips empty pieces and sends the staging first).
  if (pieces.empty()) pieces.emplace_back();
  return false;
}

bool Stream::tls_idle_alive() {
  if (!tls_ || tls_->failed || !tls_->established) return false;
  char byte;
  size_t n = 0;
  clear_stale_errors();
  const int ret = SSL_read_ex(tls_->ssl.get(), &byte, 1, &n);
  if (ret == 1) return false;  // application data nobody asked for: the connection is unusable
  const int err = SSL_get_error(tls_->ssl.get(), ret);
  ERR_clear_error();
  if (err == SSL_ERROR_WANT_READ) return true;  // only records OpenSSL handles itself, or none
  tls_->failed = err != SSL_ERROR_ZERO_RETURN;
  return false;
}

SslSessionPtr Stream::tls_session() {
  if (!tls_ || !tls_->established || tls_->failed) return nullptr;
  SSL_SESSION* current = SSL_get0_session(tls_->ssl.get());
  if (!current || SSL_SESSION_is_resumable(current) != 1) return nullptr;
  // The pool asks after every request; the session changes only when a ticket arrives (OpenSSL
  // replaces the SSL's session object then), so the copy below is made once per ticket instead
  // of once per request.
  if (current == tls_->session_copied.get()) return nullptr;
  SSL_SESSION_up_ref(current);
  tls_->session_copied.reset(current);
  // A copy, not a reference: when this SSL is freed without a close_notify exchange (a pooled
  // connection closed when idle, a backend that closes after its response), OpenSSL marks the
  // SSL's own session object not resumable (ssl_clear_bad_session), and a session kept by
  // reference would then never be offered again.
  return SslSessionPtr(SSL_SESSION_dup(current));
}

TlsFailure Stream::tls_failure() const {
  if (!tls_) return TlsFailure::kNone;
  if (tls_->error == 0) return TlsFailure::kClosed;
  switch (ERR_GET_REASON(tls_->error)) {
    case SSL_R_NO_SHARED_CIPHER:
      return TlsFailure::kNoSharedCipher;
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_VERSION_TOO_LOW:
    case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
    case SSL_R_HTTP_REQUEST:
    case SSL_R_HTTPS_PROXY_REQUEST:
    case SSL_R_PACKET_LENGTH_TOO_LONG:
    case SSL_R_RECORD_LENGTH_MISMATCH:
      return TlsFailure::kProtocolVersion;
    case SSL_R_NO_APPLICATION_PROTOCOL:
      return TlsFailure::kNoApplicationProtocol;
    case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
      return TlsFailure::kNoClientCertificate;
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
      return TlsFailure::kUnknownCa;
    case SSL_R_CERTIFICATE_VERIFY_FAILED:
      switch (tls_->verify_result) {
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
        case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
        case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
        case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
          return TlsFailure::kUnknownCa;
        default:
          return TlsFailure::kBadCertificate;
      }
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
      return TlsFailure::kBadCertificate;
    case SSL_R_UNEXPECTED_EOF_WHILE_READING:
      return TlsFailure::kClosed;
    default:
      return TlsFailure::kOther;
  }
}

std::string Stream::tls_error() const {
  if (!tls_) return {};
  if (tls_->error == 0) return "connection closed during the TLS handshake";
  if (ERR_GET_REASON(tls_->error) == SSL_R_CERTIFICATE_VERIFY_FAILED && tls_->verify_result != X509_V_OK) {
    return std::string("certificate verify failed: ") + X509_verify_cert_error_string(tls_->verify_result);
  }
  const char* reason = ERR_reason_error_string(tls_->error);
  return reason ? reason : "TLS error";
}

bool Stream::write_now(std::vector<asio::const_buffer>& pieces, bool more_follows) {
  if (pieces.empty()) return true;
  if (tls_) return tls_write_now(pieces);
  constexpr size_t kMaxPieces = 64;  // more go in the asynchronous write
  iovec iov[kMaxPieces];
  const size_t count = std::min(pieces.size(), kMaxPieces);
  for (size_t i = 0; i < count; ++i) {
    iov[i].iov_base = const_cast<void*>(pieces[i].data());
    iov[i].iov_len = pieces[i].size();
  }
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = count;
  const int flags = MSG_DONTWAIT | MSG_NOSIGNAL | (more_follows ? MSG_MORE : 0);
  const ssize_t sent = ::sendmsg(socket_.native_handle(), &msg, flags);
  if (sent <= 0) return false;  // full, or an error the asynchronous write reports
  size_t left = static_cast<size_t>(sent);
  size_t done = 0;
  while (done < pieces.size() && left >= pieces[done].size()) left -= pieces[done++].size();
  if (done < pieces.size() && left > 0) pieces[done] += left;
  pieces.erase(pieces.begin(), pieces.begin() + static_cast<std::ptrdiff_t>(done));
  return pieces.empty();
}

}  // namespace sluice::net
