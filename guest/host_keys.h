// DropbearHostKeys: the guest's SSH host keys, the files /etc/dropbear/dropbear_*_host_key that
// the image's dropbear serves with. A clone resumes with its parent's keys; Regenerate() gives it
// its own.
//
// Public keys come from the image's dropbearkey (`-y -f FILE`); the fingerprints are computed
// here. Reading a key costs a fork and exec (tens of ms under TCG emulation), so fingerprints are
// remembered by the SHA-256 of the key file's contents: a changed file is read again.
//
// Thread-safety: none; it belongs to the agent's single event loop.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "guest/guest_system.h"
#include "guest/sha256.h"

namespace ferry::guest {

inline constexpr const char* kHostKeyDir = "/etc/dropbear";
inline constexpr const char* kDropbearKeyProgram = "/usr/bin/dropbearkey";
// ed25519 only: RSA key generation takes seconds under TCG emulation.
inline constexpr const char* kHostKeyFile = "/etc/dropbear/dropbear_ed25519_host_key";

struct SshHostKey {
  std::string type;         // "ssh-ed25519"
  std::string fingerprint;  // "SHA256:..." as `ssh-keygen -lf` prints it
};

class DropbearHostKeys {
 public:
  // REQUIRES: system outlives this object.
  explicit DropbearHostKeys(GuestSystem& system) : system_(system) {}

  // The host keys there are now, in file name order. A file dropbearkey cannot read is left out.
  std::vector<SshHostKey> List();

  // Deletes every host key, then puts one new ed25519 key in place: `key_pair` (32-byte seed then
  // 32-byte public key) when given, else one dropbearkey makes. Deleting first means a failure
  // leaves no key rather than the parent's. Returns the new key or what failed.
  std::variant<SshHostKey, std::string> Regenerate(
      const std::optional<std::string>& key_pair = std::nullopt);

 private:
  std::vector<std::string> KeyFiles();
  // Writes dropbear's key file for a key pair made by the host.
  std::variant<SshHostKey, std::string> Install(const std::string& key_pair);
  // Remembers the key for the file's current contents.
  void Remember(const std::string& path, const SshHostKey& key);

  GuestSystem& system_;
  std::map<Sha256::Digest, SshHostKey> by_contents_;
};

}  // namespace ferry::guest
