#include "crypto/host_signer.h"

#include <openssl/evp.h>

#include "crypto/key_file.h"

namespace ferry::crypto {

namespace {

struct MdCtxFree {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

const unsigned char* Bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

}  // namespace

Result<std::unique_ptr<KeyHostSigner>> KeyHostSigner::Load(const std::string& key_file) {
  FERRY_RETURN_IF_ERROR(CheckKeyFileMode(key_file));
  FERRY_ASSIGN_OR_RETURN(EvpPkeyPtr key, ReadPrivateKeyPem(key_file));
  return std::make_unique<KeyHostSigner>(std::move(key));
}

Result<std::string> KeyHostSigner::Sign(std::string_view bytes) const {
  MdCtxPtr ctx(EVP_MD_CTX_new());
  size_t len = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key_.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len, Bytes(bytes), bytes.size()) != 1) {
    return OpenSslFailure("signing with the host key");
  }
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, Bytes(bytes),
                     bytes.size()) != 1) {
    return OpenSslFailure("signing with the host key");
  }
  sig.resize(len);
  return sig;
}

Status VerifyHostSignature(std::string_view bytes, std::string_view signature, X509* cert) {
  if (cert == nullptr) return Status::InvalidArgument("no certificate to check a signature with");
  EVP_PKEY* key = X509_get0_pubkey(cert);
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (key == nullptr || !ctx ||
      EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) != 1) {
    return OpenSslFailure("starting signature verification");
  }
  const int rc =
      EVP_DigestVerify(ctx.get(), Bytes(signature), signature.size(), Bytes(bytes), bytes.size());
  DrainOpenSslErrors();
  if (rc != 1) {
    return Status::Corruption("signature does not verify against the host's certificate");
  }
  return Status::Ok();
}

}  // namespace ferry::crypto
