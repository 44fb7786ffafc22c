#include "crypto/owner_key.h"

#include <openssl/evp.h>

#include "core/files.h"
#include "crypto/key_file.h"

namespace ferry::crypto {

namespace {
struct MdCtxFree {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

Result<std::string> RawPublicKey(EVP_PKEY* key) {
  std::string raw(kOwnerPublicKeyBytes, '\0');
  size_t len = raw.size();
  if (EVP_PKEY_get_raw_public_key(key, reinterpret_cast<unsigned char*>(raw.data()), &len) != 1 ||
      len != kOwnerPublicKeyBytes) {
    return OpenSslFailure("reading the Ed25519 public key");
  }
  return raw;
}
}  // namespace

Status OwnerKey::Generate(const std::string& path) {
  const std::string pub_path = path + ".pub";
  for (const std::string& p : {path, pub_path}) {
    if (PathExists(p)) {
      return Status::AlreadyExists(p +
                                   " exists already; refusing to overwrite an owner key "
                                   "(choose another --out)");
    }
  }
  EvpPkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  if (!key) return OpenSslFailure("generating an Ed25519 key");
  FERRY_ASSIGN_OR_RETURN(std::string key_pem, PrivateKeyToPem(key.get()));
  FERRY_ASSIGN_OR_RETURN(std::string pub_pem, PublicKeyToPem(key.get()));
  Status st = WriteNewFile(path, key_pem, 0600);
  OPENSSL_cleanse(key_pem.data(), key_pem.size());
  FERRY_RETURN_IF_ERROR(st);
  return WriteNewFile(pub_path, pub_pem, 0644);
}

Result<OwnerKey> OwnerKey::Load(const std::string& path) {
  FERRY_RETURN_IF_ERROR(CheckKeyFileMode(path));
  FERRY_ASSIGN_OR_RETURN(EvpPkeyPtr key, ReadPrivateKeyPem(path));
  if (EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_ED25519) {
    return Status::InvalidArgument(path +
                                   ": not an Ed25519 key; create an owner key with "
                                   "'ferry owner keygen --out FILE'");
  }
  FERRY_ASSIGN_OR_RETURN(std::string pub, RawPublicKey(key.get()));
  return OwnerKey(std::move(key), std::move(pub));
}

Result<std::string> OwnerKey::Sign(const std::string& message) const {
  MdCtxPtr ctx(EVP_MD_CTX_new());
  std::string sig(kOwnerSignatureBytes, '\0');
  size_t len = sig.size();
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key_.get()) != 1 ||
      EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                     reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1 ||
      len != kOwnerSignatureBytes) {
    return OpenSslFailure("signing with the owner key");
  }
  return sig;
}

bool VerifyOwnerSignature(const std::string& public_key, const std::string& message,
                          const std::string& signature) {
  if (public_key.size() != kOwnerPublicKeyBytes || signature.size() != kOwnerSignatureBytes) {
    return false;
  }
  EvpPkeyPtr key(EVP_PKEY_new_raw_public_key(
      EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(public_key.data()),
      public_key.size()));
  MdCtxPtr ctx(EVP_MD_CTX_new());
  bool ok =
      key && ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) == 1 &&
      EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                       signature.size(), reinterpret_cast<const unsigned char*>(message.data()),
                       message.size()) == 1;
  DrainOpenSslErrors();
  return ok;
}

std::string OwnerKeyFingerprint(const std::string& public_key) { return Sha256Hex(public_key); }

}  // namespace ferry::crypto
