// A sealed chunk: one chunk of a blob, compressed and encrypted, as a chunk file holds it and as
// it travels to a peer. The bytes are the same wherever the chunk lives, so a chunk file can be
// sent as is and checked on arrival.
//
// Format 2.0, little-endian (1.0 had a SHA-256 where 2.0 has a CRC-32C: one pass over the chunk
// fewer per seal; a 1.x chunk is refused as an unknown version):
//   offset  size  field
//   0       4     magic "FRCK"
//   4       1     major version (2); a newer major is refused
//   5       1     minor version (0); a newer minor only adds flags this reader refuses
//   6       1     flags: bit 0 = the plaintext was zstd-compressed before sealing; others 0
//   7       1     reserved, 0
//   8       4     plaintext bytes (the chunk before compression), 1..kMaxChunkBytes
//   12      4     sealed bytes N: ciphertext plus the 16-byte tag
//   16      N     AES-256-GCM of the (compressed) plaintext under the chunk key; the additional
//                 data is bytes 0..16, the nonce the first 12 bytes of HMAC(key, "nonce")
//   16+N    4     CRC-32C of bytes 0..16+N (crc32c.h), so `store verify` checks every chunk
//                 without keys; damage only: an edit with the CRC fixed up is the tag's to catch
//
// The nonce is derived, not random: a chunk key is HMAC(S_owner, "key" || plaintext), so it only
// ever seals one plaintext, and equal chunks seal to equal bytes (idempotent writes).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace ferry::store {

inline constexpr uint32_t kMaxChunkBytes = 1u << 20;
inline constexpr size_t kSealedChunkHeaderBytes = 16;
inline constexpr size_t kSealedChunkOverhead = kSealedChunkHeaderBytes + 16 + 4;

struct SealedChunkInfo {
  bool compressed = false;
  uint32_t plaintext_bytes = 0;
};

// Compresses `plaintext` with zstd at `zstd_level` (stored raw when that does not shrink it) and
// seals it under `key` (32 bytes). REQUIRES: 0 < plaintext.size() <= kMaxChunkBytes.
Result<std::string> SealChunk(std::string_view key, std::string_view plaintext, int zstd_level);

// The checks that need no key: magic, version, flags, lengths, checksum. `what` names the chunk
// in errors ("chunk file STORE/chunks/ab/ab12..."); damage is Corruption, a newer major version
// FailedPrecondition.
Result<SealedChunkInfo> CheckSealedChunk(std::string_view file, const std::string& what);

// CheckSealedChunk, then opens the chunk with `key` and decompresses it. A wrong key or edited
// bytes are Corruption naming `what`.
Result<std::string> OpenSealedChunk(std::string_view key, std::string_view file,
                                    const std::string& what);

}  // namespace ferry::store
