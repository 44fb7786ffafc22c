// A hostile peer for integration tests: it holds a valid fleet certificate (enrolled by the
// fleet's CA like any host) and speaks the peer protocol over real mutual TLS, but sends
// whatever control messages a test crafts -- the bytes as given, not checked here.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

#include "core/status.h"
#include "crypto/host_credentials.h"

namespace ferry::testing {

class HostilePeer {
 public:
  // `tls_dir`: this peer's credentials (ferry host enroll --out); `netns`: the network namespace
  // to connect from ("" for this process's own).
  static Result<HostilePeer> Load(const std::string& tls_dir, std::string netns);

  // Connects to `address` (which must present host `host_id`), sends `bytes` as one control
  // frame, and returns the first control message the other side answers with.
  Result<nlohmann::json> SendOne(const std::string& address, const std::string& host_id,
                                 const std::string& bytes,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(60));

 private:
  HostilePeer(crypto::HostCredentials credentials, std::string netns)
      : credentials_(std::move(credentials)), netns_(std::move(netns)) {}
  crypto::HostCredentials credentials_;
  std::string netns_;
};

}  // namespace ferry::testing
