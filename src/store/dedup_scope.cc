#include "store/dedup_scope.h"

#include "crypto/aead.h"

namespace ferry::store {

DedupScope::~DedupScope() { crypto::Wipe(secret_); }

Result<ChunkKeys> DedupScope::KeysFor(std::string_view plaintext) const {
  ChunkKeys keys;
  FERRY_ASSIGN_OR_RETURN(keys.id, IdFor(plaintext));
  FERRY_ASSIGN_OR_RETURN(keys.key, crypto::HmacSha256(secret_, "key", plaintext));
  return keys;
}

Result<ChunkId> DedupScope::IdFor(std::string_view plaintext) const {
  FERRY_ASSIGN_OR_RETURN(std::string id, crypto::HmacSha256(secret_, "id", plaintext));
  return ChunkId::FromBytes(id);
}

}  // namespace ferry::store
