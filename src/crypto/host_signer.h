// Signatures made by this host with its fleet TLS key (ECDSA P-256 with SHA-256, the key of
// host.crt), for what the host vouches for on disk: a hold's manifest in the store. Anyone with
// the host's certificate can check them, so a peer that receives a hold can tell which host
// sealed it, and a manifest edited or written by another key is refused.
//
// HostSigner is an interface so that the key may later live elsewhere (a TPM, an HSM) and so
// tests can sign with a key of their own.
#pragma once

#include <openssl/x509.h>

#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"
#include "crypto/openssl_util.h"

namespace ferry::crypto {

class HostSigner {
 public:
  virtual ~HostSigner() = default;
  // A DER-encoded ECDSA-SHA256 signature of `bytes`. Thread-safe.
  virtual Result<std::string> Sign(std::string_view bytes) const = 0;
};

// Signs with a private key held in memory (the host's host.key).
class KeyHostSigner : public HostSigner {
 public:
  explicit KeyHostSigner(EvpPkeyPtr key) : key_(std::move(key)) {}
  // Reads a PEM private key file, refusing one that other users may read (CheckKeyFileMode).
  static Result<std::unique_ptr<KeyHostSigner>> Load(const std::string& key_file);
  Result<std::string> Sign(std::string_view bytes) const override;

 private:
  EvpPkeyPtr key_;
};

// Checks `signature` over `bytes` against the public key of `cert`. A signature that does not
// verify (another key, edited bytes, garbage) is Corruption; a null cert is InvalidArgument.
// Does not check the certificate itself (see VerifyHostCertificate).
Status VerifyHostSignature(std::string_view bytes, std::string_view signature, X509* cert);

}  // namespace ferry::crypto
