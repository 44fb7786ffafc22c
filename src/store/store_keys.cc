#include "store/store_keys.h"

#include <openssl/evp.h>

#include <cstring>

#include "core/files.h"
#include "crypto/aead.h"
#include "crypto/key_file.h"
#include "store/byte_codec.h"

namespace ferry::store {

namespace {

constexpr char kHostMagic[] = "FRHK";
constexpr char kOwnerMagic[] = "FROK";
constexpr uint8_t kMajor = 1, kMinor = 0;
constexpr size_t kMaxPayload = 4096;
constexpr char kUnowned[] = "unowned";

std::string Sha256(std::string_view bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(bytes.data(), bytes.size(), md, &len, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<const char*>(md), len);
}

std::string OwnerAad(const std::string& scope_name) {
  return "ferry-owner-secret-v1\n" + scope_name;
}

// Reads a key file after checking its mode; `what` is used when it is damaged.
Result<std::string> ReadKeyFile(const char* magic, const std::string& path) {
  FERRY_RETURN_IF_ERROR(crypto::CheckKeyFileMode(path));
  FERRY_ASSIGN_OR_RETURN(std::string file, ReadFile(path));
  auto payload = DecodeKeyFile(magic, file, path);
  crypto::Wipe(file);
  return payload;
}

}  // namespace

std::string EncodeKeyFile(const char* magic, const std::string& payload) {
  std::string out(magic, 4);
  PutU8(out, kMajor);
  PutU8(out, kMinor);
  PutU16(out, 0);
  PutBytes(out, payload);
  out += Sha256(out);
  return out;
}

Result<std::string> DecodeKeyFile(const char* magic, std::string_view file,
                                  const std::string& path) {
  const std::string fix = "; restore it from a backup (holds sealed under it are lost otherwise)";
  auto bad = [&](const std::string& why) { return Status::Corruption(path + ": " + why + fix); };
  ByteReader r(file);
  if (r.Take(4) != std::string_view(magic, 4)) return bad("not a ferry store key file (magic)");
  const uint8_t major = r.U8();
  r.U8();
  r.U16();
  if (!r.ok()) return bad("truncated");
  if (major > kMajor) {
    return Status::FailedPrecondition(path + ": key file version " + std::to_string(major) +
                                      " is newer than this ferry reads; upgrade ferry");
  }
  std::string_view payload = r.Bytes(kMaxPayload);
  const size_t body = r.position();
  std::string_view digest = r.Take(32);
  if (!r.ok()) return bad("truncated");
  if (r.remaining() != 0) return bad("trailing bytes");
  if (Sha256(file.substr(0, body)) != digest) return bad("checksum mismatch");
  return std::string(payload);
}

Result<std::unique_ptr<StoreKeys>> StoreKeys::Open(const std::string& store_dir) {
  const std::string dir = store_dir + "/keys";
  FERRY_RETURN_IF_ERROR(EnsurePrivateDir(dir, "store key directory"));
  FERRY_RETURN_IF_ERROR(EnsurePrivateDir(dir + "/owners", "store key directory"));
  const std::string path = dir + "/host.key";
  if (!PathExists(path)) {
    FERRY_ASSIGN_OR_RETURN(std::string key, crypto::RandomBytes(crypto::kAeadKeyBytes));
    std::string file = EncodeKeyFile(kHostMagic, key);
    Status written = crypto::WriteNewFile(path, file, 0600);
    crypto::Wipe(key);
    crypto::Wipe(file);
    // Another process may have made it in between; reading it below settles which key holds.
    if (!written.ok() && written.code() != Status::Code::kAlreadyExists) return written;
  }
  FERRY_ASSIGN_OR_RETURN(std::string key, ReadKeyFile(kHostMagic, path));
  if (key.size() != crypto::kAeadKeyBytes) {
    return Status::Corruption(path + ": the host store key has " + std::to_string(key.size()) +
                              " bytes, not 32; restore it from a backup");
  }
  return std::unique_ptr<StoreKeys>(new StoreKeys(dir, std::move(key)));
}

StoreKeys::~StoreKeys() { crypto::Wipe(host_key_); }

Result<std::string> StoreKeys::ScopeName(const std::string& fp) {
  if (fp.empty()) return std::string(kUnowned);
  bool hex = fp.size() == 64;
  for (char c : fp) hex = hex && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
  if (!hex) {
    return Status::InvalidArgument(
        "owner fingerprint must be 64 lowercase hex characters or "
        "empty, not \"" +
        fp.substr(0, 80) + "\"");
  }
  return fp;
}

std::string StoreKeys::OwnerFile(const std::string& scope_name) const {
  return dir_ + "/owners/" + scope_name + ".key";
}

Result<std::shared_ptr<const DedupScope>> StoreKeys::LoadScopeLocked(const std::string& name) {
  if (auto it = scopes_.find(name); it != scopes_.end()) return it->second;
  const std::string path = OwnerFile(name);
  if (!PathExists(path)) return std::shared_ptr<const DedupScope>();
  FERRY_ASSIGN_OR_RETURN(std::string payload, ReadKeyFile(kOwnerMagic, path));
  ByteReader r(payload);
  std::string_view fp = r.Bytes(64);
  std::string_view boxed = r.Take(r.remaining());
  if (!r.ok() || fp != name) {
    return Status::Corruption(path + ": names another owner than its file name");
  }
  auto secret = crypto::AeadOpenWithNonce(host_key_, OwnerAad(name), boxed);
  if (!secret.ok() || secret->size() != DedupScope::kSecretBytes) {
    return Status::Corruption(path +
                              ": the owner secret does not open with this host's store "
                              "key (keys/host.key replaced?); restore both from one backup");
  }
  auto scope = std::make_shared<const DedupScope>(std::move(secret).value());
  scopes_[name] = scope;
  return scope;
}

Status StoreKeys::WriteScopeLocked(const std::string& name, const std::string& secret) {
  FERRY_ASSIGN_OR_RETURN(std::string boxed,
                         crypto::AeadSealWithRandomNonce(host_key_, OwnerAad(name), secret));
  std::string payload;
  PutBytes(payload, name);
  payload += boxed;
  return crypto::WriteNewFile(OwnerFile(name), EncodeKeyFile(kOwnerMagic, payload), 0600);
}

Result<std::shared_ptr<const DedupScope>> StoreKeys::Scope(const std::string& fp) {
  FERRY_ASSIGN_OR_RETURN(std::string name, ScopeName(fp));
  std::lock_guard<std::mutex> lock(mu_);
  FERRY_ASSIGN_OR_RETURN(auto scope, LoadScopeLocked(name));
  if (scope) return scope;
  FERRY_ASSIGN_OR_RETURN(std::string secret, crypto::RandomBytes(DedupScope::kSecretBytes));
  Status written = WriteScopeLocked(name, secret);
  crypto::Wipe(secret);
  FERRY_RETURN_IF_ERROR(written);
  FERRY_ASSIGN_OR_RETURN(scope, LoadScopeLocked(name));
  if (!scope) return Status::Internal(OwnerFile(name) + ": written but not found");
  return scope;
}

Result<std::optional<std::string>> StoreKeys::ExportOwnerSecret(const std::string& fp) {
  FERRY_ASSIGN_OR_RETURN(std::string name, ScopeName(fp));
  std::lock_guard<std::mutex> lock(mu_);
  FERRY_ASSIGN_OR_RETURN(auto scope, LoadScopeLocked(name));
  if (!scope) return std::optional<std::string>();
  return std::optional<std::string>(scope->secret());
}

Result<bool> StoreKeys::AdoptOwnerSecret(const std::string& fp, const std::string& secret) {
  FERRY_ASSIGN_OR_RETURN(std::string name, ScopeName(fp));
  if (secret.size() != DedupScope::kSecretBytes) {
    return Status::InvalidArgument("an owner dedup secret has 32 bytes");
  }
  std::lock_guard<std::mutex> lock(mu_);
  FERRY_ASSIGN_OR_RETURN(auto scope, LoadScopeLocked(name));
  if (scope) return false;
  FERRY_RETURN_IF_ERROR(WriteScopeLocked(name, secret));
  return true;
}

Result<std::string> StoreKeys::WrapDataKey(const std::string& data_key,
                                           const std::string& hold_id) const {
  return crypto::AeadSealWithRandomNonce(host_key_, "ferry-hold-data-key-v1\n" + hold_id, data_key);
}

Result<std::string> StoreKeys::UnwrapDataKey(const std::string& wrapped,
                                             const std::string& hold_id) const {
  auto key = crypto::AeadOpenWithNonce(host_key_, "ferry-hold-data-key-v1\n" + hold_id, wrapped);
  if (!key.ok() || key->size() != crypto::kAeadKeyBytes) {
    return Status::Corruption("the hold's data key does not open with this host's store key");
  }
  return key;
}

}  // namespace ferry::store
