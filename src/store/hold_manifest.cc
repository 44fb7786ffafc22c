#include "store/hold_manifest.h"

#include <openssl/evp.h>

#include "core/json_fields.h"
#include "core/untrusted_json.h"
#include "crypto/openssl_util.h"
#include "store/byte_codec.h"
#include "store/chunk_table.h"
#include "store/store_keys.h"

namespace ferry::store {

using nlohmann::json;

namespace {

constexpr char kMagic[] = "FERRYHLD";
constexpr size_t kMaxHeaderBytes = size_t{4} << 20;
constexpr uint64_t kMaxTableBytes = uint64_t{1} << 30;
constexpr size_t kMaxSignatureBytes = 1024;
constexpr char kSigningPrefix[] = "ferry-hold-manifest-v1\n";
constexpr char kDamaged[] = "; the hold is damaged";

std::string Sha256(std::string_view bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(bytes.data(), bytes.size(), md, &len, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<const char*>(md), len);
}

Result<std::string> HeaderJson(const ManifestFile& file) {
  const HoldManifest& m = file.manifest;
  const HoldHeader& h = m.header;
  try {
    json j = {{"hold_id", h.hold_id},
              {"kind", h.kind},
              {"vm_name", h.vm_name},
              {"owner_fingerprint", h.owner_fingerprint},
              {"policy", h.policy_text},
              {"spec", h.spec_json},
              {"created_at", h.created_at},
              {"expires_at", h.expires_at},
              {"state", h.state},
              {"chunk_bytes", m.chunk_bytes},
              {"logical_bytes", m.logical_bytes},
              {"sealed_at", m.sealed_at},
              {"signer_host_id", m.signer_host_id},
              {"wrapped_data_key", crypto::Base64Encode(file.wrapped_data_key)}};
    return j.dump();
  } catch (const json::exception& e) {  // invalid UTF-8 in the spec, policy or a name
    return Status::InvalidArgument("hold " + h.hold_id +
                                   ": cannot encode its manifest: " + e.what());
  }
}

Status ReadHeader(std::string_view text, const std::string& path, ManifestFile& out) {
  JsonLimits limits;
  limits.max_bytes = kMaxHeaderBytes;
  FERRY_ASSIGN_OR_RETURN(json j, ParseUntrustedJson(text, "header", limits));
  FERRY_ASSIGN_OR_RETURN(JsonFields f, JsonFields::Of(j, "header"));
  HoldManifest& m = out.manifest;
  HoldHeader& h = m.header;
  FERRY_ASSIGN_OR_RETURN(h.hold_id, f.String("hold_id"));
  FERRY_ASSIGN_OR_RETURN(h.kind, f.String("kind", kKindHold));
  FERRY_ASSIGN_OR_RETURN(h.vm_name, f.String("vm_name"));
  FERRY_ASSIGN_OR_RETURN(h.owner_fingerprint, f.String("owner_fingerprint"));
  FERRY_ASSIGN_OR_RETURN(h.policy_text, f.String("policy"));
  FERRY_ASSIGN_OR_RETURN(h.spec_json, f.String("spec"));
  FERRY_ASSIGN_OR_RETURN(h.created_at, f.Int("created_at"));
  FERRY_ASSIGN_OR_RETURN(h.expires_at, f.Int("expires_at"));
  FERRY_ASSIGN_OR_RETURN(h.state, f.String("state"));
  FERRY_ASSIGN_OR_RETURN(uint64_t chunk_bytes, f.Uint("chunk_bytes"));
  FERRY_ASSIGN_OR_RETURN(m.logical_bytes, f.Uint("logical_bytes"));
  FERRY_ASSIGN_OR_RETURN(m.sealed_at, f.Int("sealed_at"));
  FERRY_ASSIGN_OR_RETURN(m.signer_host_id, f.String("signer_host_id"));
  FERRY_ASSIGN_OR_RETURN(std::string wrapped, f.String("wrapped_data_key"));
  auto key = crypto::Base64Decode(wrapped);
  if (!key.ok()) return Status::Corruption("wrapped_data_key is not base64");
  out.wrapped_data_key = std::move(key).value();
  if (chunk_bytes > UINT32_MAX || !ValidateChunkBytes(static_cast<uint32_t>(chunk_bytes)).ok()) {
    return Status::Corruption("chunk_bytes " + std::to_string(chunk_bytes) + " is out of range");
  }
  m.chunk_bytes = static_cast<uint32_t>(chunk_bytes);
  Status valid = ValidateHoldHeader(h);
  if (!valid.ok()) return Status::Corruption(valid.message());
  return Status::Ok();
}

}  // namespace

Status ValidateHoldId(const std::string& id) {
  bool ok = !id.empty() && id.size() <= 64;
  for (char c : id) ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-');
  if (!ok) {
    return Status::InvalidArgument("hold id \"" + id.substr(0, 80) +
                                   "\" must be 1-64 characters of [a-z0-9-]");
  }
  return Status::Ok();
}

Status ValidateHoldState(const std::string& state) {
  bool ok = !state.empty() && state.size() <= 32;
  for (char c : state) ok = ok && ((c >= 'a' && c <= 'z') || c == '-');
  if (!ok) {
    return Status::InvalidArgument("hold state \"" + state.substr(0, 40) +
                                   "\" must be 1-32 characters of [a-z-]");
  }
  return Status::Ok();
}

Status ValidateHoldHeader(const HoldHeader& h) {
  FERRY_RETURN_IF_ERROR(ValidateHoldId(h.hold_id));
  FERRY_RETURN_IF_ERROR(ValidateHoldState(h.state));
  if (h.kind != kKindHold && h.kind != kKindSnapshot) {
    return Status::InvalidArgument("hold " + h.hold_id + ": kind \"" + h.kind.substr(0, 32) +
                                   "\" is neither \"hold\" nor \"snapshot\"");
  }
  FERRY_RETURN_IF_ERROR(StoreKeys::ScopeName(h.owner_fingerprint).status());
  if (h.vm_name.empty() || h.vm_name.size() > 253) {
    return Status::InvalidArgument("hold " + h.hold_id + ": the VM name must be 1-253 bytes");
  }
  if (h.created_at < 0 || h.expires_at < 0) {
    return Status::InvalidArgument("hold " + h.hold_id + ": times must not be negative");
  }
  return Status::Ok();
}

Result<std::string> EncodeHoldManifest(const ManifestFile& file, const crypto::HostSigner& signer) {
  FERRY_ASSIGN_OR_RETURN(std::string header, HeaderJson(file));
  std::string out(kMagic, 8);
  PutU16(out, kManifestMajor);
  PutU16(out, kManifestMinor);
  PutU32(out, static_cast<uint32_t>(header.size()));
  PutU64(out, file.sealed_table.size());
  out += header;
  out += file.sealed_table;
  FERRY_ASSIGN_OR_RETURN(std::string sig, signer.Sign(kSigningPrefix + out));
  PutBytes(out, sig);
  out += Sha256(out);
  return out;
}

Result<ManifestFile> DecodeHoldManifest(std::string_view file, X509* signer_cert,
                                        const std::string& path) {
  auto bad = [&](const std::string& why) {
    return Status::Corruption("hold manifest " + path + ": " + why + kDamaged);
  };
  ByteReader r(file);
  if (r.Take(8) != std::string_view(kMagic, 8)) return bad("not a hold manifest (wrong magic)");
  const uint16_t major = r.U16(), minor = r.U16();
  const uint32_t header_len = r.U32();
  const uint64_t table_len = r.U64();
  if (!r.ok()) return bad("truncated");
  if (major > kManifestMajor) {
    return Status::FailedPrecondition("hold manifest " + path + ": format version " +
                                      std::to_string(major) + " is newer than this ferry reads (" +
                                      std::to_string(kManifestMajor) + "); upgrade ferry");
  }
  if (major != kManifestMajor) return bad("unknown format version " + std::to_string(major));
  if (header_len > kMaxHeaderBytes || table_len > kMaxTableBytes) return bad("sizes out of range");
  std::string_view header = r.Take(header_len), table = r.Take(table_len);
  const size_t signed_end = r.position();
  std::string_view sig = r.Bytes(kMaxSignatureBytes);
  const size_t body_end = r.position();
  std::string_view digest = r.Take(32);
  if (!r.ok()) return bad("truncated");
  if (r.remaining() != 0) return bad("trailing bytes");
  if (Sha256(file.substr(0, body_end)) != digest) return bad("checksum mismatch");
  Status signed_ok = crypto::VerifyHostSignature(
      kSigningPrefix + std::string(file.substr(0, signed_end)), sig, signer_cert);
  if (!signed_ok.ok()) {
    return bad(
        "the signature does not verify (edited after signing, or signed by another "
        "host)");
  }
  ManifestFile out;
  Status read = ReadHeader(header, path, out);
  if (!read.ok()) return bad(read.message());
  out.manifest.version_major = major;
  out.manifest.version_minor = minor;
  out.sealed_table = std::string(table);
  return out;
}

}  // namespace ferry::store
