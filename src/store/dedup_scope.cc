#include "store/dedup_scope.h"

#include "crypto/aead.h"

namespace ferry::store {

DedupScope::~DedupScope() { crypto::Wipe(secret_); }

// One pass over the plaintext, not two: the id is derived from the key, not from the plaintext
// again. Why this keeps docs/store.md's properties:
//   - Keyed and owner-scoped: the id is HMAC(S_owner, "id-of-key" || HMAC(S_owner, "key" || p)),
//     a composition of two PRFs under S_owner, so it is a PRF of p under S_owner: without
//     S_owner an id says nothing about p, and two owners' ids for equal pages are unrelated.
//   - Convergent within an owner: equal p, equal key, equal id, as before.
//   - The key is not derivable from the id: that would mean inverting HMAC-SHA256 over a 256-bit
//     input; even S_owner and the id give the key only to someone who also has (or guesses) p,
//     exactly as before, where S_owner and p gave both.
//   - Distinct labels ("key", "id-of-key") keep the two HMACs under S_owner apart: no key is
//     ever equal to an id of the same chunk.
Result<ChunkKeys> DedupScope::KeysFor(std::string_view plaintext) const {
  ChunkKeys keys;
  FERRY_ASSIGN_OR_RETURN(keys.key, crypto::HmacSha256(secret_, "key", plaintext));
  FERRY_ASSIGN_OR_RETURN(std::string id, crypto::HmacSha256(secret_, "id-of-key", keys.key));
  keys.id = ChunkId::FromBytes(id);
  return keys;
}

Result<ChunkId> DedupScope::IdFor(std::string_view plaintext) const {
  FERRY_ASSIGN_OR_RETURN(ChunkKeys keys, KeysFor(plaintext));
  crypto::Wipe(keys.key);
  return keys.id;
}

}  // namespace ferry::store
