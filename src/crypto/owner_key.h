// An owner's Ed25519 signing key. Owners sign their VMs' policies with it; hosts only ever see
// the raw 32-byte public key embedded in a policy, and compare owners by it.
#pragma once

#include <string>

#include "core/status.h"
#include "crypto/openssl_util.h"

namespace ferry::crypto {

inline constexpr size_t kOwnerPublicKeyBytes = 32;
inline constexpr size_t kOwnerSignatureBytes = 64;

class OwnerKey {
 public:
  // Writes a new Ed25519 private key PEM to `path` (0600) and its public key PEM to
  // `path` + ".pub" (0644). Refuses (AlreadyExists) if either exists.
  static Status Generate(const std::string& path);
  // Loads a private key written by Generate. Refuses a file group or others can read or write
  // and a key that is not Ed25519; errors name the file.
  static Result<OwnerKey> Load(const std::string& path);

  // The raw 32-byte public key.
  const std::string& public_key() const { return public_key_; }
  // Signs `message` (Ed25519, no pre-hash). Returns the 64-byte signature.
  Result<std::string> Sign(const std::string& message) const;

 private:
  OwnerKey(EvpPkeyPtr key, std::string public_key)
      : key_(std::move(key)), public_key_(std::move(public_key)) {}
  std::shared_ptr<EVP_PKEY> key_;  // shared, so OwnerKey copies cheaply; the key is immutable
  std::string public_key_;
};

// True iff `signature` is a valid Ed25519 signature of `message` by the raw 32-byte
// `public_key`. Malformed keys or signatures simply do not verify.
bool VerifyOwnerSignature(const std::string& public_key, const std::string& message,
                          const std::string& signature);

// Lower-case hex SHA-256 of the raw public key (64 characters); users see the first 16.
std::string OwnerKeyFingerprint(const std::string& public_key);
inline constexpr size_t kShortFingerprintChars = 16;

}  // namespace ferry::crypto
