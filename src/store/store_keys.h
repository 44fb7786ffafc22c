// The store's key hierarchy, under STORE/keys/ (0700):
//
//   host.key            the host store key K_host (32 random bytes), made on first open; it never
//                       leaves this host. It wraps everything below.
//   owners/<fp>.key     one owner's dedup secret S_owner (32 random bytes), wrapped by K_host;
//                       <fp> is the owner's 64-hex fingerprint, "unowned" for VMs without policy
//   (in each manifest)  the hold's data key, wrapped by K_host (see hold_manifest.h)
//
// Key file format 1.0 (both kinds), little-endian:
//   4   magic "FRHK" (host key) or "FROK" (owner secret)
//   1   major version (1), 1 minor version (0), 2 reserved (0)
//   4+N payload length N and payload: the raw key (host), or the fingerprint (u32 length and
//       bytes) then nonce || AES-256-GCM(K_host, S_owner) || tag, with additional data
//       "ferry-owner-secret-v1\n<fp>" so a file renamed to another owner does not open (owner)
//   32  SHA-256 of everything before
// Files are written once (temporary file, fsync, link: never replaced) with mode 0600, and a
// loader refuses a wrong magic, a newer major version, a bad checksum, or a mode that lets other
// users read the file, naming the file.
//
// Thread-safe.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "core/status.h"
#include "store/dedup_scope.h"

namespace ferry::store {

class StoreKeys {
 public:
  // Loads STORE/keys/host.key, creating keys/, keys/owners/ and the key on first use.
  static Result<std::unique_ptr<StoreKeys>> Open(const std::string& store_dir);
  ~StoreKeys();

  // An owner fingerprint as the store names it: "" -> "unowned"; anything but 64 lowercase hex
  // characters is InvalidArgument.
  static Result<std::string> ScopeName(const std::string& owner_fingerprint);

  // The owner's dedup scope, its secret created on first use.
  Result<std::shared_ptr<const DedupScope>> Scope(const std::string& owner_fingerprint);
  // S_owner in the clear, for a `send` over TLS; nullopt when this store has none yet.
  Result<std::optional<std::string>> ExportOwnerSecret(const std::string& owner_fingerprint);
  // Adopts a peer's S_owner when this store has none for the owner (true). With one of its own
  // it keeps it (false): holds from the peer are then still correct, they just do not dedup.
  Result<bool> AdoptOwnerSecret(const std::string& owner_fingerprint, const std::string& secret);

  // A hold's data key wrapped by K_host, bound to the hold's id.
  Result<std::string> WrapDataKey(const std::string& data_key, const std::string& hold_id) const;
  Result<std::string> UnwrapDataKey(const std::string& wrapped, const std::string& hold_id) const;

 private:
  StoreKeys(std::string dir, std::string host_key)
      : dir_(std::move(dir)), host_key_(std::move(host_key)) {}
  std::string OwnerFile(const std::string& scope_name) const;
  // REQUIRES: mu_ held. nullptr when the owner has no secret file yet.
  Result<std::shared_ptr<const DedupScope>> LoadScopeLocked(const std::string& scope_name);
  Status WriteScopeLocked(const std::string& scope_name, const std::string& secret);

  const std::string dir_;  // STORE/keys
  std::string host_key_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<const DedupScope>> scopes_;  // guarded by mu_
};

// The key file codec, exposed for tests and the fuzzer: `magic` is "FRHK" or "FROK".
std::string EncodeKeyFile(const char* magic, const std::string& payload);
Result<std::string> DecodeKeyFile(const char* magic, std::string_view file,
                                  const std::string& path);

}  // namespace ferry::store
