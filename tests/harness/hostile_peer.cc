#include "harness/hostile_peer.h"

#include "migrate/peer_connect.h"
#include "testbed/netns.h"

namespace ferry::testing {

Result<HostilePeer> HostilePeer::Load(const std::string& tls_dir, std::string netns) {
  FERRY_ASSIGN_OR_RETURN(crypto::HostCredentials credentials, crypto::LoadHostCredentials(tls_dir));
  return HostilePeer(std::move(credentials), std::move(netns));
}

Result<nlohmann::json> HostilePeer::SendOne(const std::string& address, const std::string& host_id,
                                            const std::string& bytes,
                                            std::chrono::milliseconds timeout) {
  Result<nlohmann::json> reply = Status::Internal("not sent");
  auto exchange = [&]() -> Status {
    auto link = migrate::ConnectToPeer(address, credentials_, host_id, std::chrono::seconds(10));
    if (!link.ok()) return link.status();
    FERRY_RETURN_IF_ERROR((*link)->SendControlBytes(bytes));
    reply = (*link)->ReceiveMessage(timeout);
    (*link)->Close();
    return Status::Ok();
  };
  Status done = netns_.empty() ? exchange() : testbed::InNetworkNamespace(netns_, exchange);
  if (!done.ok()) return done;
  return reply;
}

}  // namespace ferry::testing
