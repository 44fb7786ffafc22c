// SSH public keys as the text line OpenSSH and dropbearkey print ("ssh-ed25519 AAAA... comment")
// and their OpenSSH-style fingerprints ("SHA256:" + unpadded base64 of the SHA-256 of the key
// blob, as `ssh-keygen -lf` prints them). The fingerprint is computed here rather than taken from
// dropbearkey's "Fingerprint:" line, whose format differs between dropbear versions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace ferry::guest {

struct SshPublicKey {
  std::string type;  // "ssh-ed25519"
  std::string blob;  // the decoded wire-format key, which starts with the type as an SSH string
};

// The first line of `text` that is a public key line "<type> <base64 blob>[ comment]" whose blob
// names the same type; nullopt when there is none.
std::optional<SshPublicKey> FindPublicKeyLine(std::string_view text);

// "SHA256:<base64 without padding>" of the blob.
std::string Sha256Fingerprint(std::string_view blob);

}  // namespace ferry::guest
