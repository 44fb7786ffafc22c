#include "migrate/peer_tls.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

namespace ferry::migrate {

namespace {

using Clock = std::chrono::steady_clock;

// Elliptic-curve groups only: no finite-field DHE, so every key exchange is ECDHE.
constexpr char kGroups[] = "X25519:P-256:P-384";
// The fleet CA signs host certificates directly; allow one intermediate for a future layout.
constexpr int kVerifyDepth = 2;

Status ContextError(const std::string& what) {
  std::string errors = TakeTlsErrors();
  return Status::Internal("peer TLS context: " + what + (errors.empty() ? "" : ": " + errors));
}

Status CredentialError(const std::string& what, const std::string& file, const char* fix) {
  std::string errors = TakeTlsErrors();
  return Status::InvalidArgument("peer TLS context: " + what + " " + file +
                                 (errors.empty() ? "" : ": " + errors) + "; " + fix);
}

// A handshake failure as a Status that says what OpenSSL saw and, when this side verified the
// peer's certificate and refused it, why.
Status HandshakeFailure(SSL* ssl, int ssl_error, int saved_errno, const std::string& where) {
  std::string reason = TakeTlsErrors();
  if (ssl_error == SSL_ERROR_SYSCALL && reason.empty()) {
    reason =
        saved_errno != 0 ? std::string(std::strerror(saved_errno)) : "the connection was closed";
  } else if (ssl_error == SSL_ERROR_ZERO_RETURN) {
    reason = "the peer closed the connection";
  }
  if (reason.empty()) reason = "TLS error " + std::to_string(ssl_error);
  long verify = SSL_get_verify_result(ssl);
  std::string verdict;
  if (verify != X509_V_OK) {
    verdict = std::string("; its certificate was refused: ") +
              X509_verify_cert_error_string(verify) +
              " (is it signed by this fleet's CA and still valid?)";
  }
  return Status::Unavailable(where + ": TLS handshake failed: " + reason + verdict);
}

// A socket BIO that writes with send(MSG_NOSIGNAL): OpenSSL's own socket BIO uses write(), which
// raises SIGPIPE (killing the process by default) when the peer has gone. A library must not
// depend on its host process ignoring SIGPIPE.
struct SocketBioState {
  int fd;
  bool eof = false;  // recv() returned 0: lets OpenSSL tell an unexpected EOF from an error
};

int SocketBioWrite(BIO* bio, const char* data, size_t size, size_t* written) {
  BIO_clear_retry_flags(bio);
  auto* state = static_cast<SocketBioState*>(BIO_get_data(bio));
  ssize_t n;
  do {
    n = ::send(state->fd, data, size, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n >= 0) {
    *written = static_cast<size_t>(n);
    return 1;
  }
  if (errno == EAGAIN || errno == EWOULDBLOCK) BIO_set_retry_write(bio);
  return 0;  // errno says why; SSL_get_error reports SSL_ERROR_SYSCALL
}

int SocketBioRead(BIO* bio, char* data, size_t size, size_t* got) {
  BIO_clear_retry_flags(bio);
  auto* state = static_cast<SocketBioState*>(BIO_get_data(bio));
  ssize_t n;
  do {
    n = ::recv(state->fd, data, size, 0);
  } while (n < 0 && errno == EINTR);
  if (n > 0) {
    *got = static_cast<size_t>(n);
    return 1;
  }
  if (n == 0) {
    state->eof = true;
  } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
    BIO_set_retry_read(bio);
  }
  return 0;
}

long SocketBioCtrl(BIO* bio, int cmd, long num, void* ptr) {
  switch (cmd) {
    case BIO_CTRL_FLUSH:
      return 1;  // nothing is buffered here
    case BIO_CTRL_EOF:
      return static_cast<SocketBioState*>(BIO_get_data(bio))->eof ? 1 : 0;
    default:
      return 0;
  }
}

int SocketBioDestroy(BIO* bio) {
  delete static_cast<SocketBioState*>(BIO_get_data(bio));
  BIO_set_data(bio, nullptr);
  return 1;
}

const BIO_METHOD* SocketBioMethod() {
  static const BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR,
                                 "ferry peer socket");
    if (m == nullptr) return static_cast<BIO_METHOD*>(nullptr);
    BIO_meth_set_write_ex(m, SocketBioWrite);
    BIO_meth_set_read_ex(m, SocketBioRead);
    BIO_meth_set_ctrl(m, SocketBioCtrl);
    BIO_meth_set_destroy(m, SocketBioDestroy);
    return m;
  }();
  return method;
}

// A BIO over `fd` (which it does not close); nullptr on failure.
BIO* NewSocketBio(int fd) {
  const BIO_METHOD* method = SocketBioMethod();
  if (method == nullptr) return nullptr;
  BIO* bio = BIO_new(method);
  if (bio == nullptr) return nullptr;
  BIO_set_data(bio, new SocketBioState{fd});
  BIO_set_init(bio, 1);
  return bio;
}

}  // namespace

std::string TakeTlsErrors() {
  std::string out;
  const char* data = nullptr;
  int flags = 0;
  while (unsigned long e = ERR_get_error_all(nullptr, nullptr, nullptr, &data, &flags)) {
    const char* reason = ERR_reason_error_string(e);
    std::string item = reason != nullptr ? reason : "error " + std::to_string(ERR_GET_REASON(e));
    if ((flags & ERR_TXT_STRING) != 0 && data != nullptr && *data != '\0') {
      item += std::string(" (") + data + ")";
    }
    // OpenSSL often queues the same reason several times on the way up; keep one.
    if (out.find(item) == std::string::npos) out += (out.empty() ? "" : "; ") + item;
  }
  return out;
}

int PollMillisUntil(Clock::time_point deadline) {
  auto left = deadline - Clock::now();
  if (left <= Clock::duration::zero()) return 0;
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
  return static_cast<int>(std::min<int64_t>(ms, 60'000));
}

Result<std::shared_ptr<const PeerTlsContext>> PeerTlsContext::Create(
    const crypto::HostCredentials& credentials) {
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_method());
  if (ctx == nullptr) return ContextError("SSL_CTX_new");
  // Owns ctx until it is handed to the PeerTlsContext.
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> owned(ctx, &SSL_CTX_free);

  if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1) {
    return ContextError("cannot restrict the protocol to TLS 1.3");
  }
  if (SSL_CTX_set1_groups_list(ctx, kGroups) != 1) {
    return ContextError(std::string("cannot set key exchange groups ") + kGroups);
  }
  // No tickets (TLS 1.3 sends none when num_tickets is 0), no cache: nothing to resume from.
  SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  if (SSL_CTX_set_num_tickets(ctx, 0) != 1) return ContextError("cannot disable session tickets");
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_max_early_data(ctx, 0);
  // PeerLink writes from a buffer that stays put but may resume a write from a later offset.
  // No auto chain: peers hold the fleet CA already; sending it again only costs bytes.
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_NO_AUTO_CHAIN);

  if (SSL_CTX_use_certificate_chain_file(ctx, credentials.cert_file.c_str()) != 1) {
    return CredentialError("cannot load the host certificate", credentials.cert_file,
                           "re-enroll this host with the fleet CA");
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, credentials.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    return CredentialError("cannot load the host key", credentials.key_file,
                           "re-enroll this host with the fleet CA");
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return CredentialError("the host key does not match the certificate", credentials.cert_file,
                           "re-enroll this host with the fleet CA");
  }
  // Trust only the fleet CA: no default verify paths.
  if (SSL_CTX_load_verify_locations(ctx, credentials.ca_file.c_str(), nullptr) != 1) {
    return CredentialError("cannot load the fleet CA certificate", credentials.ca_file,
                           "copy the fleet's ca.crt into this host's TLS directory");
  }
  // Tells clients which CA to pick a certificate from (openssl s_client prints it).
  STACK_OF(X509_NAME)* ca_names = SSL_load_client_CA_file(credentials.ca_file.c_str());
  if (ca_names == nullptr) {
    return CredentialError("cannot read the CA name from", credentials.ca_file,
                           "copy the fleet's ca.crt into this host's TLS directory");
  }
  SSL_CTX_set_client_CA_list(ctx, ca_names);  // takes ownership
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  SSL_CTX_set_verify_depth(ctx, kVerifyDepth);

  // Our own identity, from our own certificate, so logs and the "talking to myself" check use
  // the same facts peers will see.
  X509* own = SSL_CTX_get0_certificate(ctx);
  if (own == nullptr) return ContextError("no certificate after loading one");
  auto self = crypto::HostIdentityFromCertificate(own);
  if (!self.ok()) {
    return Status::InvalidArgument("peer TLS context: " + credentials.cert_file +
                                   " carries no ferry host identity: " + self.status().message() +
                                   "; re-enroll this host with the fleet CA");
  }
  return std::shared_ptr<const PeerTlsContext>(
      new PeerTlsContext(owned.release(), std::move(self).value()));
}

PeerTlsContext::~PeerTlsContext() { SSL_CTX_free(ctx_); }

Result<TlsSession> PeerTlsContext::Handshake(int fd, PeerRole role,
                                             const std::string& expected_host_id,
                                             Clock::time_point deadline,
                                             const std::string& where) const {
  ERR_clear_error();
  SslPtr ssl(SSL_new(ctx_));
  if (ssl == nullptr) return ContextError("SSL_new for " + where);
  BIO* bio = NewSocketBio(fd);
  if (bio == nullptr) return ContextError("socket BIO for " + where);
  SSL_set_bio(ssl.get(), bio, bio);  // one reference, owned by ssl from here
  if (role == PeerRole::kServer) {
    SSL_set_verify(ssl.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    SSL_set_accept_state(ssl.get());
  } else {
    SSL_set_connect_state(ssl.get());
  }

  while (true) {
    ERR_clear_error();
    errno = 0;
    int ret = SSL_do_handshake(ssl.get());
    if (ret == 1) break;
    int saved_errno = errno;
    int error = SSL_get_error(ssl.get(), ret);
    short events = 0;
    if (error == SSL_ERROR_WANT_READ) {
      events = POLLIN;
    } else if (error == SSL_ERROR_WANT_WRITE) {
      events = POLLOUT;
    } else {
      return HandshakeFailure(ssl.get(), error, saved_errno, where);
    }
    pollfd pfd{fd, events, 0};
    int ready = ::poll(&pfd, 1, PollMillisUntil(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return Status::Internal(where + ": poll: " + std::strerror(errno));
    if (ready == 0) {
      return Status::DeadlineExceeded(where + ": TLS handshake did not complete in time; the " +
                                      "peer is not a ferry agent, or the network is too slow");
    }
  }

  // The chain was verified during the handshake (SSL_VERIFY_PEER fails it otherwise); this
  // guards against a future change of verify mode silently accepting anyone.
  X509* cert = SSL_get0_peer_certificate(ssl.get());
  if (cert == nullptr || SSL_get_verify_result(ssl.get()) != X509_V_OK) {
    return Status::Unavailable(where + ": the peer presented no verified certificate");
  }
  auto peer = crypto::HostIdentityFromCertificate(cert);
  if (!peer.ok()) {
    return Status::Unavailable(where + ": the peer's certificate is from this fleet's CA but " +
                               "carries no valid host identity: " + peer.status().message() +
                               "; re-enroll that host");
  }
  if (role == PeerRole::kClient && !expected_host_id.empty() && peer->host_id != expected_host_id) {
    return Status::FailedPrecondition(where + ": expected host " + expected_host_id +
                                      ", but its certificate says host " + peer->host_id +
                                      "; check the address you have for " + expected_host_id);
  }
  return TlsSession{std::move(ssl), std::move(peer).value()};
}

}  // namespace ferry::migrate
