// Thin RAII and error helpers over OpenSSL 3, shared by the crypto library only.
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <memory>
#include <string>

#include "core/status.h"

namespace ferry::crypto {

struct EvpPkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct X509Free {
  void operator()(X509* p) const { X509_free(p); }
};
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, EvpPkeyFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;

// The OpenSSL error queue as one line (and clears it); "" when the queue is empty.
std::string DrainOpenSslErrors();
// Status::Internal("what: <openssl errors>").
Status OpenSslFailure(const std::string& what);

std::string Base64Encode(const std::string& bytes);
// Strict: refuses characters outside the alphabet and bad padding.
Result<std::string> Base64Decode(const std::string& text);
// Lower-case hex of SHA-256(bytes).
std::string Sha256Hex(const std::string& bytes);

// PEM readers that name the file in every error.
Result<X509Ptr> ReadCertificatePem(const std::string& path);
Result<EvpPkeyPtr> ReadPrivateKeyPem(const std::string& path);
Result<EvpPkeyPtr> ReadPublicKeyPem(const std::string& path);
Result<std::string> PrivateKeyToPem(EVP_PKEY* key);
Result<std::string> PublicKeyToPem(EVP_PKEY* key);
Result<std::string> CertificateToPem(X509* cert);

}  // namespace ferry::crypto
