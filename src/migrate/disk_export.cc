#include "migrate/disk_export.h"

#include <openssl/crypto.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "crypto/aead.h"
#include "migrate/nbd_tls.h"
#include "migrate/socket_relay.h"
#include "qemu/launch_spec.h"
#include "qemu/qmp_commands.h"
#include "qemu/qmp_disk_mirror.h"

namespace ferry::migrate {
namespace {

constexpr const char* kListenFdName = "ferry-nbd-listen";
constexpr std::chrono::milliseconds kHandOverTimeout{30000};

Result<sockaddr_un> UnixAddress(const std::string& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.size() >= sizeof address.sun_path) {
    return Status::InvalidArgument("socket path " + path + " is too long for a UNIX socket");
  }
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  return address;
}

}  // namespace

void DiskExports::Add(const std::string& migration, Waiting waiting) {
  std::lock_guard<std::mutex> lock(mu_);
  waiting_[migration] = std::move(waiting);
}

void DiskExports::Remove(const std::string& migration) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = waiting_.find(migration);
  if (it == waiting_.end()) return;
  crypto::Wipe(it->second.token);
  waiting_.erase(it);
}

Result<DiskExports::Claimed> DiskExports::Claim(const DiskLinkRequest& request,
                                                const std::string& host) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = waiting_.find(request.migration);
  const bool match =
      it != waiting_.end() && it->second.source_host == host &&
      it->second.token.size() == request.token.size() &&
      CRYPTO_memcmp(it->second.token.data(), request.token.data(), request.token.size()) == 0;
  if (!match) {
    return Status::NotFound("no migration from host " + host +
                            " waits for a disk link with that id and token");
  }
  Claimed claimed{it->second.socket_path, it->second.turn};
  crypto::Wipe(it->second.token);
  waiting_.erase(it);
  return claimed;
}

Result<IncomingDiskExport> ExportIncomingDisk(vm::VmRuntime& rt, const std::string& socket_path,
                                              const std::string& key_dir) {
  FERRY_ASSIGN_OR_RETURN(std::string node, qemu::QueryBlockNodeName(rt, qemu::kDiskDeviceId));
  IncomingDiskExport out;
  FERRY_ASSIGN_OR_RETURN(out.token, crypto::RandomBytes(kDiskTokenBytes));
  FERRY_ASSIGN_OR_RETURN(std::string key, NbdTlsKey(out.token));
  auto keys = AddNbdTlsCreds(rt, /*server=*/true, key, key_dir);
  crypto::Wipe(key);
  if (!keys.ok()) return keys.status();
  out.keys = *keys;
  FERRY_ASSIGN_OR_RETURN(sockaddr_un address, UnixAddress(socket_path));
  UniqueFd listening(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (listening.get() < 0) return Status::Internal(std::string("socket: ") + std::strerror(errno));
  ::unlink(socket_path.c_str());
  if (::bind(listening.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    return Status::Internal("binding " + socket_path + ": " + std::strerror(errno));
  }
  // QEMU listens on its copy; ours closes at the end of this scope.
  FERRY_RETURN_IF_ERROR(rt.QmpPassFd(kListenFdName, listening.get()));
  FERRY_RETURN_IF_ERROR(qemu::NbdServerStartOnFd(rt, kListenFdName, kNbdTlsCredsId));
  FERRY_RETURN_IF_ERROR(qemu::BlockExportAddNbd(rt, "ferry-disk", node, qemu::kDiskExportName));
  return out;
}

Status EndIncomingDiskExport(vm::VmRuntime& rt, const NbdTlsKeyDir& keys) {
  FERRY_RETURN_IF_ERROR(qemu::NbdServerStop(rt));
  RemoveNbdTlsCreds(rt, keys);
  return Status::Ok();
}

Status ServeDiskLink(const std::shared_ptr<PeerLink>& link, const DiskExports::Claimed& claimed,
                     const std::string& what) {
  FERRY_ASSIGN_OR_RETURN(sockaddr_un address, UnixAddress(claimed.socket_path));
  UniqueFd socket(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!socket.valid()) return Status::Internal(std::string("socket: ") + std::strerror(errno));
  if (::connect(socket.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    return Status::Unavailable("this host's QEMU does not serve the " + what + " (" +
                               std::strerror(errno) + ")");
  }
  FERRY_RETURN_IF_ERROR(SendPeerMessage(*link, DiskLinkedReply{}));
  FERRY_ASSIGN_OR_RETURN(UniqueFd remote, link->HandOverSocket(kHandOverTimeout));
  FERRY_ASSIGN_OR_RETURN(
      auto relay, SocketRelay::Start(std::move(remote), std::move(socket), what, claimed.turn));
  return relay->Wait();
}

}  // namespace ferry::migrate
