#include "harness/hostile_peer.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <thread>

#include "migrate/peer_connect.h"

namespace ferry::testing {

Result<HostilePeer> HostilePeer::Load(const std::string& tls_dir, std::string netns) {
  FERRY_ASSIGN_OR_RETURN(crypto::HostCredentials credentials, crypto::LoadHostCredentials(tls_dir));
  return HostilePeer(std::move(credentials), std::move(netns));
}

Result<nlohmann::json> HostilePeer::SendOne(const std::string& address, const std::string& host_id,
                                            const std::string& bytes,
                                            std::chrono::milliseconds timeout) {
  Result<nlohmann::json> reply = Status::Internal("not sent");
  // A thread of its own: entering the namespace changes only the calling thread's network.
  std::thread worker([&] {
    if (!netns_.empty()) {
      int fd = ::open(("/var/run/netns/" + netns_).c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0 || ::setns(fd, CLONE_NEWNET) != 0) {
        if (fd >= 0) ::close(fd);
        reply = Status::Internal("cannot enter network namespace " + netns_);
        return;
      }
      ::close(fd);
    }
    auto link = migrate::ConnectToPeer(address, credentials_, host_id, std::chrono::seconds(10));
    if (!link.ok()) {
      reply = link.status();
      return;
    }
    Status sent = (*link)->SendControlBytes(bytes);
    if (!sent.ok()) {
      reply = sent;
      return;
    }
    reply = (*link)->ReceiveMessage(timeout);
    (*link)->Close();
  });
  worker.join();
  return reply;
}

}  // namespace ferry::testing
