// TLS between two ferryd agents: the context built from a host's fleet credentials, and the
// handshake that turns a connected TCP socket into an authenticated session.
//
// What the context enforces (DESIGN.md "Security model"):
//   - TLS 1.3 only (minimum and maximum), so no renegotiation exists and every handshake uses an
//     ephemeral key exchange; the groups are restricted to elliptic curves (X25519, P-256, P-384),
//     so that exchange is always ECDHE: a recorded link stays secret if a host key leaks later.
//   - Mutual authentication: each side presents its host certificate and verifies the other's
//     chain against the fleet CA (ca.crt) only, never the system trust store. A server refuses a
//     client that sends no certificate.
//   - No session tickets, no session cache, no resumption, no 0-RTT: every link is a full
//     handshake with fresh certificates.
//   - The peer's identity (host id, labels) is read from the certificate it proved it owns, never
//     from anything it says. A client may name the host id it means to reach; a server whose
//     certificate carries another id is refused.
#pragma once

#include <openssl/ssl.h>

#include <chrono>
#include <memory>
#include <string>

#include "core/status.h"
#include "crypto/host_credentials.h"
#include "crypto/host_identity.h"

namespace ferry::migrate {

enum class PeerRole { kClient, kServer };

struct SslFree {
  void operator()(SSL* ssl) const { SSL_free(ssl); }
};
using SslPtr = std::unique_ptr<SSL, SslFree>;

// The result of a successful handshake: the TLS session on the socket (which it does not own)
// and who is at the other end, as its certificate says.
struct TlsSession {
  SslPtr ssl;
  crypto::HostIdentity peer;
};

// An SSL_CTX configured for peer links. Immutable once created; thread-safe: any number of
// threads may run handshakes with one context at the same time.
class PeerTlsContext {
 public:
  // Loads the host's certificate and key and the fleet CA. Errors name the file and what to do.
  static Result<std::shared_ptr<const PeerTlsContext>> Create(
      const crypto::HostCredentials& credentials);

  ~PeerTlsContext();
  PeerTlsContext(const PeerTlsContext&) = delete;
  PeerTlsContext& operator=(const PeerTlsContext&) = delete;

  // This host, as its own certificate says.
  const crypto::HostIdentity& self() const { return self_; }

  // Runs the TLS handshake on `fd`, a connected TCP socket in non-blocking mode, until
  // `deadline`. As a client, when `expected_host_id` is not empty, the server's certificate must
  // carry that host id. `where` names the other end in errors ("peer 10.0.0.2:7700").
  // The socket stays owned by the caller and must outlive the returned session.
  // Errors: DeadlineExceeded when the deadline passed; FailedPrecondition when the server is not
  // the expected host; Unavailable for every other failure (refused certificate, garbage, the
  // peer went away), with OpenSSL's reason and the certificate verification result.
  Result<TlsSession> Handshake(int fd, PeerRole role, const std::string& expected_host_id,
                               std::chrono::steady_clock::time_point deadline,
                               const std::string& where) const;

 private:
  PeerTlsContext(SSL_CTX* ctx, crypto::HostIdentity self) : ctx_(ctx), self_(std::move(self)) {}

  SSL_CTX* const ctx_;
  const crypto::HostIdentity self_;
};

// OpenSSL's error queue of the calling thread as one line ("reason; reason"), and clears it.
// "" when the queue is empty.
std::string TakeTlsErrors();

// Milliseconds left until `deadline`, for poll(): 0 when passed, rounded up, capped at a minute.
int PollMillisUntil(std::chrono::steady_clock::time_point deadline);

}  // namespace ferry::migrate
