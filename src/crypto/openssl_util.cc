#include "crypto/openssl_util.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/files.h"

namespace ferry::crypto {

namespace {

struct BioFree {
  void operator()(BIO* p) const { BIO_free(p); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;

constexpr char kBase64Alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// A memory BIO over the file's bytes, so the file-not-found case is our own clear error.
Result<BioPtr> OpenPem(const std::string& path, std::string& storage) {
  FERRY_ASSIGN_OR_RETURN(storage, ReadFile(path));
  BioPtr bio(BIO_new_mem_buf(storage.data(), static_cast<int>(storage.size())));
  if (!bio) return OpenSslFailure(path + ": cannot allocate a BIO");
  return bio;
}

Result<std::string> BioContents(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  if (n < 0) return OpenSslFailure("reading PEM buffer");
  return std::string(data, static_cast<size_t>(n));
}

}  // namespace

std::string DrainOpenSslErrors() {
  std::string out;
  unsigned long e;
  char buf[256];
  while ((e = ERR_get_error()) != 0) {
    ERR_error_string_n(e, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

Status OpenSslFailure(const std::string& what) {
  std::string errors = DrainOpenSslErrors();
  return Status::Internal(errors.empty() ? what : what + ": " + errors);
}

std::string Base64Encode(const std::string& bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t v = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8) | uint8_t(bytes[i + 2]);
    out += kBase64Alphabet[(v >> 18) & 63];
    out += kBase64Alphabet[(v >> 12) & 63];
    out += kBase64Alphabet[(v >> 6) & 63];
    out += kBase64Alphabet[v & 63];
  }
  size_t rest = bytes.size() - i;
  if (rest == 1) {
    uint32_t v = uint8_t(bytes[i]) << 16;
    out += kBase64Alphabet[(v >> 18) & 63];
    out += kBase64Alphabet[(v >> 12) & 63];
    out += "==";
  } else if (rest == 2) {
    uint32_t v = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8);
    out += kBase64Alphabet[(v >> 18) & 63];
    out += kBase64Alphabet[(v >> 12) & 63];
    out += kBase64Alphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

Result<std::string> Base64Decode(const std::string& text) {
  if (text.size() % 4 != 0) {
    return Status::InvalidArgument("base64 text has a length that is not a multiple of 4");
  }
  auto value = [](char c) -> int {
    const char* at = std::strchr(kBase64Alphabet, c);
    return (c != '\0' && at) ? static_cast<int>(at - kBase64Alphabet) : -1;
  };
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    bool last = i + 4 == text.size();
    int pad = 0;
    if (last && text[i + 3] == '=') pad = text[i + 2] == '=' ? 2 : 1;
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      int d = 0;
      if (k < 4 - pad) {
        d = value(text[i + k]);
        if (d < 0) return Status::InvalidArgument("base64 text has an invalid character");
      }
      v = (v << 6) | uint32_t(d);
    }
    out += char((v >> 16) & 0xff);
    if (pad < 2) out += char((v >> 8) & 0xff);
    if (pad < 1) out += char(v & 0xff);
    // Non-canonical encodings (stray bits under the padding) are refused.
    if ((pad == 1 && (v & 0xff) != 0) || (pad == 2 && (v & 0xffff) != 0)) {
      return Status::InvalidArgument("base64 text is not canonically encoded");
    }
  }
  return out;
}

std::string Sha256Hex(const std::string& bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(bytes.data(), bytes.size(), md, &len, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

Result<X509Ptr> ReadCertificatePem(const std::string& path) {
  std::string storage;
  FERRY_ASSIGN_OR_RETURN(BioPtr bio, OpenPem(path, storage));
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) {
    DrainOpenSslErrors();
    return Status::Corruption(path +
                              ": not a PEM certificate; re-enroll the host or restore the "
                              "file");
  }
  return cert;
}

Result<EvpPkeyPtr> ReadPrivateKeyPem(const std::string& path) {
  std::string storage;
  FERRY_ASSIGN_OR_RETURN(BioPtr bio, OpenPem(path, storage));
  EvpPkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  OPENSSL_cleanse(storage.data(), storage.size());
  if (!key) {
    DrainOpenSslErrors();
    return Status::Corruption(path +
                              ": not an unencrypted PEM private key; regenerate it or "
                              "restore the file");
  }
  return key;
}

Result<EvpPkeyPtr> ReadPublicKeyPem(const std::string& path) {
  std::string storage;
  FERRY_ASSIGN_OR_RETURN(BioPtr bio, OpenPem(path, storage));
  EvpPkeyPtr key(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  if (!key) {
    DrainOpenSslErrors();
    return Status::Corruption(path + ": not a PEM public key");
  }
  return key;
}

Result<std::string> PrivateKeyToPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || !PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr)) {
    return OpenSslFailure("encoding private key");
  }
  return BioContents(bio.get());
}

Result<std::string> PublicKeyToPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || !PEM_write_bio_PUBKEY(bio.get(), key)) {
    return OpenSslFailure("encoding public key");
  }
  return BioContents(bio.get());
}

Result<std::string> CertificateToPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || !PEM_write_bio_X509(bio.get(), cert)) {
    return OpenSslFailure("encoding certificate");
  }
  return BioContents(bio.get());
}

}  // namespace ferry::crypto
