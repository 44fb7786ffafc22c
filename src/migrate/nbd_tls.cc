#include "migrate/nbd_tls.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/files.h"
#include "core/ids.h"
#include "core/unique_fd.h"
#include "crypto/aead.h"
#include "qemu/qmp_commands.h"
#include "qemu/qmp_disk_mirror.h"

namespace ferry::migrate {
namespace {

constexpr std::string_view kKeyLabel = "ferry nbd tls-psk v1";
// The identity the client presents and the server looks up: one key per file, per migration.
constexpr const char* kIdentity = "ferry";
// TLS 1.3 with AES-128-GCM only. GnuTLS's default order with a SHA-256 pre-shared key settles on
// ChaCha20-Poly1305, which made QEMU's copy of 512 MiB take 3.0 s where AES-128-GCM takes 1.1 s
// and plain NBD 0.9 s (two QEMUs, no guest, this host; bench/README.md "migration").
constexpr const char* kPriority = "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM";

Status Errno(const std::string& what) {
  return Status::Internal(what + ": " + std::strerror(errno));
}

// Removes a key directory, which its 0500 keeps even its owner from emptying.
Status RemoveKeyDir(const std::string& dir) {
  (void)::chmod(dir.c_str(), 0700);
  return RemoveAll(dir);
}

// keys.psk in a new directory `dir`, both owned by `uid` (QEMU's), readable by it alone.
Status WriteKeyDir(const std::string& dir, std::string_view key, uid_t uid, gid_t gid) {
  (void)RemoveKeyDir(dir);  // a directory of an earlier attempt
  FERRY_RETURN_IF_ERROR(MakeDirs(dir, 0700));
  const std::string file = dir + "/keys.psk";
  UniqueFd fd(::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0400));
  if (!fd.valid()) return Errno("creating " + file);
  std::string line = std::string(kIdentity) + ":" + HexOf(key) + "\n";
  const bool whole =
      ::write(fd.get(), line.data(), line.size()) == static_cast<ssize_t>(line.size());
  crypto::Wipe(line);
  if (!whole) return Errno("writing " + file);
  if (::fchown(fd.get(), uid, gid) != 0) return Errno("giving " + file + " to QEMU's uid");
  if (::chown(dir.c_str(), uid, gid) != 0 || ::chmod(dir.c_str(), 0500) != 0) {
    return Errno("giving " + dir + " to QEMU's uid");
  }
  return Status::Ok();
}

}  // namespace

Result<std::string> NbdTlsKey(std::string_view token) {
  return crypto::HmacSha256(token, kKeyLabel, "");
}

Result<NbdTlsKeyDir> AddNbdTlsCreds(vm::VmRuntime& rt, bool server, std::string_view key,
                                    const std::string& dir) {
  NbdTlsKeyDir keys{dir, -1};
  FERRY_RETURN_IF_ERROR(WriteKeyDir(dir, key, rt.uid(), ::getgid()));
  UniqueFd dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dir_fd.valid()) {
    (void)RemoveKeyDir(dir);
    return Errno("opening " + dir);
  }
  auto added = rt.QmpAddFd(dir_fd.get());
  if (!added.ok() || added->fd < 0) {
    if (added.ok()) (void)qemu::RemoveFdSet(rt, added->fdset);
    (void)RemoveKeyDir(dir);
    return added.ok() ? Status::Internal(
                            "QMP add-fd: QEMU did not say its number for the key "
                            "directory's descriptor")
                      : added.status();
  }
  keys.fdset = added->fdset;
  (void)qemu::ObjectDel(rt, kNbdTlsCredsId);  // left by an earlier attempt on this QEMU
  Status made =
      qemu::TlsCredsPskAdd(rt, kNbdTlsCredsId, server, "/proc/self/fd/" + std::to_string(added->fd),
                           kIdentity, kPriority);
  if (!made.ok()) {
    DropNbdTlsKeyDir(rt, keys);
    return made.WithContext("giving QEMU the disk copy's TLS key");
  }
  return keys;
}

void DropNbdTlsKeyDir(vm::VmRuntime& rt, const NbdTlsKeyDir& keys) {
  if (keys.fdset >= 0) (void)qemu::RemoveFdSet(rt, keys.fdset);
  if (!keys.dir.empty()) {
    if (Status removed = RemoveKeyDir(keys.dir); !removed.ok()) {
      spdlog::warn("removing the disk copy's key directory: {}", removed.message());
    }
  }
}

void RemoveNbdTlsCreds(vm::VmRuntime& rt, const NbdTlsKeyDir& keys) {
  DropNbdTlsKeyDir(rt, keys);
  (void)qemu::ObjectDel(rt, kNbdTlsCredsId);
}

}  // namespace ferry::migrate
