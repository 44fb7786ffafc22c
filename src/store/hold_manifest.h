// A hold's manifest file, STORE/holds/<hold id>.hold (mode 0600): what the hold is (its header,
// as the hold service wrote it) and the keys to its chunks, signed by the host that keeps it.
//
// Format 1.0, little-endian:
//   0     8  magic "FERRYHLD"
//   8     2  major version (1); a newer major is refused ("upgrade ferry")
//   10    2  minor version (1); a newer minor only adds header fields, which are kept unread
//   12    4  header length J (at most 4 MiB)
//   16    8  sealed table length T (at most 1 GiB)
//   24    J  header: a JSON object (hold_id, vm_name, owner_fingerprint, policy, spec,
//            created_at, expires_at, state, chunk_bytes, logical_bytes, sealed_at,
//            signer_host_id, wrapped_data_key: base64 of the data key wrapped by the host store
//            key, bound to the hold id; since 1.1 kind: "hold" or "snapshot", absent = "hold")
//   24+J  T  the chunk table (chunk_table.h) sealed under the hold's data key
//   ...   4  signature length S (at most 1024)
//   ...   S  ECDSA-SHA256 by the host's fleet key over "ferry-hold-manifest-v1\n" followed by
//            bytes 0..24+J+T
//   ...   32 SHA-256 of every byte before it
//
// The checksum tells damage (a flipped bit, a truncated copy) from forgery (an edit with the
// checksum fixed up, or a manifest signed by another host), which the signature catches.
#pragma once

#include <openssl/x509.h>

#include <string>
#include <string_view>

#include "core/status.h"
#include "crypto/host_signer.h"
#include "store/store.h"

namespace ferry::store {

inline constexpr int kManifestMajor = 1;
inline constexpr int kManifestMinor = 1;
// HoldHeader::kind: a 1.0 manifest, which has none, is a hold's.
inline constexpr const char* kKindHold = "hold";
inline constexpr const char* kKindSnapshot = "snapshot";

struct ManifestFile {
  HoldManifest manifest;  // blobs stay empty: they are in the sealed table
  std::string wrapped_data_key;
  std::string sealed_table;
};

Status ValidateHoldId(const std::string& hold_id);
Status ValidateHoldState(const std::string& state);
// The header's own rules (id, state, owner fingerprint, times); InvalidArgument.
Status ValidateHoldHeader(const HoldHeader& header);

// Lays out and signs the file.
Result<std::string> EncodeHoldManifest(const ManifestFile& file, const crypto::HostSigner& signer);

// Checks magic, version, lengths and checksum, then the signature against `signer_cert`, then
// the header's fields. Errors name `path` and say the hold is damaged (Corruption), or to
// upgrade (FailedPrecondition for a newer major version). The table stays sealed.
Result<ManifestFile> DecodeHoldManifest(std::string_view file, X509* signer_cert,
                                        const std::string& path);

}  // namespace ferry::store
