#include "crypto/aead.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <memory>

#include "crypto/openssl_util.h"

namespace ferry::crypto {

namespace {

struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* p) const { EVP_CIPHER_CTX_free(p); }
};
struct MacCtxFree {
  void operator()(EVP_MAC_CTX* p) const { EVP_MAC_CTX_free(p); }
};
using CipherCtxPtr = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;

const unsigned char* Bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

// Fetched once: an implicit fetch per call (EVP_aes_256_gcm()) takes a lock on OpenSSL's
// provider store every time, which shows up when two threads seal 64 KiB chunks.
const EVP_CIPHER* AesGcm() {
  static EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  return cipher;
}
EVP_MAC* Hmac() {
  static EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  return mac;
}

Status CheckSizes(std::string_view key, std::string_view nonce) {
  if (key.size() != kAeadKeyBytes || nonce.size() != kAeadNonceBytes) {
    return Status::InvalidArgument("AES-256-GCM needs a 32-byte key and a 12-byte nonce");
  }
  return Status::Ok();
}

// A context initialised for one operation with key and nonce, aad already fed in.
Result<CipherCtxPtr> StartGcm(bool encrypt, std::string_view key, std::string_view nonce,
                              std::string_view aad) {
  FERRY_RETURN_IF_ERROR(CheckSizes(key, nonce));
  CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  if (!ctx || !AesGcm() ||
      EVP_CipherInit_ex2(ctx.get(), AesGcm(), Bytes(key), Bytes(nonce), encrypt ? 1 : 0, nullptr) !=
          1 ||
      (!aad.empty() &&
       EVP_CipherUpdate(ctx.get(), nullptr, &len, Bytes(aad), static_cast<int>(aad.size())) != 1)) {
    return OpenSslFailure("starting AES-256-GCM");
  }
  return ctx;
}

}  // namespace

Status AeadSeal(std::string_view key, std::string_view nonce, std::string_view aad,
                std::string_view plaintext, std::string& out) {
  FERRY_ASSIGN_OR_RETURN(CipherCtxPtr ctx, StartGcm(true, key, nonce, aad));
  const size_t at = out.size();
  out.resize(at + plaintext.size() + kAeadTagBytes);
  auto* dst = reinterpret_cast<unsigned char*>(out.data() + at);
  int len = 0, tail = 0;
  if (EVP_EncryptUpdate(ctx.get(), dst, &len, Bytes(plaintext),
                        static_cast<int>(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), dst + len, &tail) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kAeadTagBytes, dst + plaintext.size()) !=
          1) {
    out.resize(at);
    return OpenSslFailure("sealing with AES-256-GCM");
  }
  return Status::Ok();
}

Status AeadOpen(std::string_view key, std::string_view nonce, std::string_view aad,
                std::string_view sealed, std::string& out) {
  if (sealed.size() < kAeadTagBytes) {
    return Status::Corruption("authentication failed: sealed data is shorter than its tag");
  }
  FERRY_ASSIGN_OR_RETURN(CipherCtxPtr ctx, StartGcm(false, key, nonce, aad));
  const size_t text_len = sealed.size() - kAeadTagBytes;
  const size_t at = out.size();
  out.resize(at + text_len);
  auto* dst = reinterpret_cast<unsigned char*>(out.data() + at);
  std::string tag(sealed.substr(text_len));
  int len = 0, tail = 0;
  if (EVP_DecryptUpdate(ctx.get(), dst, &len, Bytes(sealed), static_cast<int>(text_len)) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kAeadTagBytes, tag.data()) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), dst + len, &tail) != 1) {
    DrainOpenSslErrors();
    OPENSSL_cleanse(dst, text_len);
    out.resize(at);
    return Status::Corruption(
        "authentication failed: wrong key, or the data was changed or truncated");
  }
  return Status::Ok();
}

Result<std::string> AeadSealWithRandomNonce(std::string_view key, std::string_view aad,
                                            std::string_view plaintext) {
  FERRY_ASSIGN_OR_RETURN(std::string boxed, RandomBytes(kAeadNonceBytes));
  const std::string nonce = boxed;
  FERRY_RETURN_IF_ERROR(AeadSeal(key, nonce, aad, plaintext, boxed));
  return boxed;
}

Result<std::string> AeadOpenWithNonce(std::string_view key, std::string_view aad,
                                      std::string_view boxed) {
  if (boxed.size() < kAeadNonceBytes + kAeadTagBytes) {
    return Status::Corruption("authentication failed: sealed data is too short");
  }
  std::string out;
  FERRY_RETURN_IF_ERROR(
      AeadOpen(key, boxed.substr(0, kAeadNonceBytes), aad, boxed.substr(kAeadNonceBytes), out));
  return out;
}

Result<std::string> HmacSha256(std::string_view key, std::string_view label,
                               std::string_view data) {
  std::string mac(kHmacSha256Bytes, '\0');
  std::unique_ptr<EVP_MAC_CTX, MacCtxFree> ctx(Hmac() ? EVP_MAC_CTX_new(Hmac()) : nullptr);
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                         OSSL_PARAM_construct_end()};
  size_t len = 0;
  if (!ctx || EVP_MAC_init(ctx.get(), Bytes(key), key.size(), params) != 1 ||
      EVP_MAC_update(ctx.get(), Bytes(label), label.size()) != 1 ||
      EVP_MAC_update(ctx.get(), Bytes(data), data.size()) != 1 ||
      EVP_MAC_final(ctx.get(), reinterpret_cast<unsigned char*>(mac.data()), &len, mac.size()) !=
          1 ||
      len != kHmacSha256Bytes) {
    return OpenSslFailure("computing HMAC-SHA256");
  }
  return mac;
}

Result<std::string> RandomBytes(size_t n) {
  std::string out(n, '\0');
  if (n > 0 && RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    return OpenSslFailure("drawing random bytes");
  }
  return out;
}

void Wipe(std::string& secret) {
  if (!secret.empty()) OPENSSL_cleanse(secret.data(), secret.size());
  secret.clear();
}

}  // namespace ferry::crypto
