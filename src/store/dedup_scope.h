// One owner's dedup scope: the 32-byte secret S_owner and what it derives for a chunk.
//
//   chunk key = HMAC-SHA256(S_owner, "key" || plaintext)
//   chunk id  = HMAC-SHA256(S_owner, "id-of-key" || chunk key)   (one pass over the plaintext;
//                                                                  why it is sound: the .cc)
//
// Convergent within one owner: equal pages of one owner's VMs get the same id and the same
// sealed bytes, so they are stored once. Across owners nothing is comparable: without S_owner
// an id says nothing about the content, and two owners' ids for equal pages differ. The key is
// not derivable from the id (it needs the plaintext), so a chunk can only be opened through a
// hold's sealed chunk table, and shredding every hold that lists it makes it unreadable even
// while S_owner lives on.
#pragma once

#include <string>
#include <string_view>

#include "core/status.h"
#include "store/chunk_id.h"

namespace ferry::store {

struct ChunkKeys {
  ChunkId id;
  std::string key;  // 32 bytes, the AES-256-GCM key of this chunk
};

class DedupScope {
 public:
  static constexpr size_t kSecretBytes = 32;
  // REQUIRES: secret.size() == kSecretBytes.
  explicit DedupScope(std::string secret) : secret_(std::move(secret)) {}
  ~DedupScope();
  DedupScope(const DedupScope&) = delete;
  DedupScope& operator=(const DedupScope&) = delete;

  Result<ChunkKeys> KeysFor(std::string_view plaintext) const;
  // Only the id, for checking a chunk received from a peer.
  Result<ChunkId> IdFor(std::string_view plaintext) const;
  const std::string& secret() const { return secret_; }

 private:
  std::string secret_;
};

}  // namespace ferry::store
