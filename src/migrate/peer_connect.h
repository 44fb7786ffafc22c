// The client side of a peer link: connect to another agent's peer port and authenticate.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "core/status.h"
#include "crypto/host_credentials.h"
#include "migrate/peer_link.h"
#include "migrate/peer_tls.h"

namespace ferry::migrate {

// Connects to `address` ("host:port", "[ipv6]:port"), runs the TLS handshake as the client and
// waits for the server to accept this host (see peer_link.h), all within `timeout`. When
// `expected_host_id` is not empty, the server's certificate must carry that host id
// (FailedPrecondition otherwise). Errors: InvalidArgument for a bad address, DeadlineExceeded,
// Unavailable (refused connection, refused certificate, ...), each naming the address.
Result<std::unique_ptr<PeerLink>> ConnectToPeer(const std::string& address,
                                                const PeerTlsContext& context,
                                                const std::string& expected_host_id,
                                                std::chrono::milliseconds timeout);

// Same, building the TLS context from `credentials` first (for one-off links; a daemon that
// connects often keeps one PeerTlsContext).
Result<std::unique_ptr<PeerLink>> ConnectToPeer(const std::string& address,
                                                const crypto::HostCredentials& credentials,
                                                const std::string& expected_host_id,
                                                std::chrono::milliseconds timeout);

}  // namespace ferry::migrate
